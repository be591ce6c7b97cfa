//! The decoders against random, truncated and mutated bytes: they never panic, and
//! what they allocate stays within a small multiple of the input, whatever counts and
//! lengths the bytes claim. A seeded generator keeps failures reproducible.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use super::serve;
use crate::consts::*;
use crate::*;

/// Counts the bytes this thread asks the allocator for, so a test can bound what one
/// decode allocates (the test binary's only allocator; other threads are not counted).
struct CountingAlloc;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the count is a
// const-initialised thread-local Cell, which needs no allocation to reach.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get().saturating_add(layout.size())));
        // SAFETY: the caller's layout contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTER: CountingAlloc = CountingAlloc;

/// Bytes allocated on this thread while `f` runs.
fn allocated_by(f: impl FnOnce()) -> usize {
    let before = ALLOCATED.with(Cell::get);
    f();
    ALLOCATED.with(Cell::get) - before
}

/// Runs every decoder on `input` (a frame body); returns what they allocated.
fn decode_all(input: &[u8]) -> usize {
    allocated_by(|| {
        let _ = std::hint::black_box(decode_reply(input));
        let _ = std::hint::black_box(Version::decode(input));
        let _ = std::hint::black_box(Statvfs::decode(input));
        let _ = std::hint::black_box(Limits::decode(input));
        let _ = std::hint::black_box(split_frame(input));
        let _ = std::hint::black_box(reply_id(input));
    })
}

/// What one decode may allocate: a NAME entry (about 80 bytes in memory) for each
/// 12 bytes of input at most, plus slack.
fn bound(input: &[u8]) -> usize {
    8 * input.len() + 256
}

fn check(input: &[u8]) {
    let used = decode_all(input);
    assert!(
        used <= bound(input),
        "decoding {} bytes allocated {used}: {:?}",
        input.len(),
        &input[..input.len().min(64)]
    );
}

/// xorshift64*: small, seeded, good enough to spread bytes.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Well-formed reply bodies of every type, to truncate and mutate.
fn samples() -> Vec<Vec<u8>> {
    let a = Attrs {
        size: Some(7),
        uid_gid: Some((1, 2)),
        permissions: Some(0o100644),
        atime_mtime: Some((3, 4)),
    };
    let mut data = Vec::new();
    serve::string(&mut data, b"some data");
    let mut handle = Vec::new();
    serve::string(&mut handle, b"\0\0\0\x01");
    let mut ext = 3u32.to_be_bytes().to_vec();
    serve::string(&mut ext, EXT_LIMITS);
    serve::string(&mut ext, b"1");
    let stat: Vec<u8> = (0..11u64).flat_map(u64::to_be_bytes).collect();
    let frames = [
        serve::status(1, SSH_FX_FAILURE, b"Failure"),
        serve::reply(SSH_FXP_HANDLE, 2, &handle),
        serve::reply(SSH_FXP_DATA, 3, &data),
        serve::names(4, &[(b"a", a), (b"b\n\xff", Attrs::default()), (b"c", a)]),
        serve::reply(SSH_FXP_ATTRS, 5, &serve::attrs(&a)),
        serve::reply(SSH_FXP_EXTENDED_REPLY, 6, &stat),
        serve::frame(SSH_FXP_VERSION, &ext),
    ];
    frames.iter().map(|f| f[4..].to_vec()).collect()
}

#[test]
fn truncated_replies_never_panic() {
    for s in samples() {
        for cut in 0..=s.len() {
            check(&s[..cut]);
        }
    }
}

#[test]
fn mutated_and_random_replies_never_panic_nor_overallocate() {
    let mut rng = Rng(0x5EED_F00D_CAFE_D00D);
    let samples = samples();
    for _ in 0..20_000 {
        let mut input = samples[rng.below(samples.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(input.len());
            input[i] = match rng.below(4) {
                0 => 0xff,
                1 => 0,
                _ => rng.next() as u8,
            };
        }
        input.truncate(rng.below(input.len() + 1));
        check(&input);
    }
    for _ in 0..20_000 {
        let len = rng.below(300);
        let mut input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(first) = input.first_mut() {
            // Mostly valid types, so the decoders get past the first byte.
            *first = [SSH_FXP_VERSION, 101, 102, 103, 104, 105, 201, *first][rng.below(8)];
        }
        check(&input);
    }
}

#[test]
fn huge_claimed_counts_and_lengths_are_refused_not_allocated() {
    // A NAME claiming 2^32-1 entries in 9 bytes: refused before any Vec is sized.
    let mut name = vec![SSH_FXP_NAME, 0, 0, 0, 1];
    name.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        decode_reply(&name),
        Err(DecodeError::TooMany { count: u32::MAX })
    );
    check(&name);
    // As many entries as 12-byte minimums fit, but then less data: Truncated.
    let mut name = vec![SSH_FXP_NAME, 0, 0, 0, 1];
    name.extend_from_slice(&2u32.to_be_bytes());
    name.extend_from_slice(&[0; 24]);
    name[16] = 0xff; // the second entry's filename length
    assert_eq!(decode_reply(&name), Err(DecodeError::Truncated));
    // A DATA or HANDLE string claiming 4 GiB.
    let mut data = vec![SSH_FXP_DATA, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, b'x'];
    assert_eq!(decode_reply(&data), Err(DecodeError::Truncated));
    data[0] = SSH_FXP_HANDLE;
    assert_eq!(decode_reply(&data), Err(DecodeError::Truncated));
    // A handle longer than 256 bytes, present in full.
    let mut handle = vec![SSH_FXP_HANDLE, 0, 0, 0, 1];
    serve::string(&mut handle, &[7; 300]);
    assert!(matches!(
        decode_reply(&handle),
        Err(DecodeError::Oversized { .. })
    ));
    // ATTRS claiming 2^32-1 extended pairs: runs out of frame at once.
    let mut attrs = vec![SSH_FXP_ATTRS, 0, 0, 0, 1, 0x80, 0, 0, 0];
    attrs.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(decode_reply(&attrs), Err(DecodeError::Truncated));
    check(&attrs);
    // A frame prefix claiming 4 GiB.
    assert!(split_frame(&[0xff, 0xff, 0xff, 0xff, 1]).is_err());
}
