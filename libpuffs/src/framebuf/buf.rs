//! `Framebuf`: a growable byte buffer with a cursor (puffs_framebuf). Writes go at the
//! cursor, overwrite what is there and extend the buffer; reads take from the cursor
//! and fail with a [`Short`] value, never a panic, when the buffer ends first.

use std::io;

use crate::errno::Errno;

/// A read (or a window) reaching past the end of a [`Framebuf`]: how many bytes it
/// needed at which offset, and how many the buffer had. Converts to `Errno::EIO`
/// (a truncated frame from a peer is an I/O error for whoever waits on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Short {
    /// Where the read started.
    pub offset: usize,
    /// How many bytes it wanted.
    pub wanted: usize,
    /// How many the buffer had from `offset` on.
    pub available: usize,
}

impl std::fmt::Display for Short {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "frame too short: {} bytes wanted at offset {}, {} there",
            self.wanted, self.offset, self.available
        )
    }
}

impl std::error::Error for Short {}

impl From<Short> for Errno {
    fn from(_: Short) -> Errno {
        Errno::EIO
    }
}

impl From<Short> for io::Error {
    fn from(s: Short) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, s)
    }
}

/// A growable byte buffer with a cursor, for building and taking apart protocol frames.
///
/// Its length is the end of what was written (or read into it); the cursor is where the
/// next `put_*` writes and the next `get_*` reads. `put_*` never fails (the buffer
/// grows); `get_*` fails with [`Short`] and leaves the cursor where it was when the
/// buffer ends too soon.
///
/// ```
/// use puffs::framebuf::Framebuf;
/// let mut fb = Framebuf::new();
/// fb.put_u32_be(0);                       // length, patched below
/// fb.put_u8(3);
/// fb.put_string_u32_be(b"/etc");
/// let len = (fb.len() - 4) as u32;
/// fb.window_mut(0, 4).copy_from_slice(&len.to_be_bytes());
///
/// fb.seek(0).unwrap();
/// assert_eq!(fb.get_u32_be(), Ok(9));
/// assert_eq!(fb.get_u8(), Ok(3));
/// assert_eq!(fb.get_string_u32_be(), Ok(&b"/etc"[..]));
/// assert!(fb.get_u8().is_err(), "past the end");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Framebuf {
    data: Vec<u8>,
    pos: usize,
}

impl std::fmt::Debug for Framebuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framebuf")
            .field("len", &self.data.len())
            .field("pos", &self.pos)
            .finish()
    }
}

/// `get_*` and `put_*` of one integer type in both byte orders.
macro_rules! ints {
    ($($t:ty: $get_be:ident $get_le:ident $put_be:ident $put_le:ident;)*) => {$(
        #[doc = concat!("Reads a big-endian `", stringify!($t), "` at the cursor.")]
        pub fn $get_be(&mut self) -> Result<$t, Short> {
            Ok(<$t>::from_be_bytes(self.get_array()?))
        }
        #[doc = concat!("Reads a little-endian `", stringify!($t), "` at the cursor.")]
        pub fn $get_le(&mut self) -> Result<$t, Short> {
            Ok(<$t>::from_le_bytes(self.get_array()?))
        }
        #[doc = concat!("Writes a big-endian `", stringify!($t), "` at the cursor.")]
        pub fn $put_be(&mut self, v: $t) {
            self.put_bytes(&v.to_be_bytes());
        }
        #[doc = concat!("Writes a little-endian `", stringify!($t), "` at the cursor.")]
        pub fn $put_le(&mut self, v: $t) {
            self.put_bytes(&v.to_le_bytes());
        }
    )*};
}

impl Framebuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Framebuf::default()
    }

    /// An empty buffer with room for `n` bytes before it reallocates.
    pub fn with_capacity(n: usize) -> Self {
        Framebuf {
            data: Vec::with_capacity(n),
            pos: 0,
        }
    }

    /// A buffer holding `bytes`, cursor at the start (for reading them).
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        Framebuf {
            data: bytes,
            pos: 0,
        }
    }

    /// The contents, cursor ignored.
    pub fn into_vec(self) -> Vec<u8> {
        self.data
    }

    /// All the contents, whatever the cursor.
    pub fn as_slice(&self) -> &[u8] {
        &self.data
    }

    /// The end of the contents (puffs_framebuf_tellsize).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the buffer holds nothing.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The cursor (puffs_framebuf_telloff).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes from the cursor to the end (puffs_framebuf_remaining).
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// The bytes from the cursor to the end.
    pub fn rest(&self) -> &[u8] {
        &self.data[self.pos..]
    }

    /// Moves the cursor to `pos`, which may be at most the length (puffs_framebuf_seekset;
    /// to write past the end, [`resize`](Self::resize) first).
    pub fn seek(&mut self, pos: usize) -> Result<(), Short> {
        if pos > self.data.len() {
            return Err(Short {
                offset: pos,
                wanted: 0,
                available: 0,
            });
        }
        self.pos = pos;
        Ok(())
    }

    /// Moves the cursor `n` bytes on, failing if that passes the end.
    pub fn skip(&mut self, n: usize) -> Result<(), Short> {
        self.take(n).map(|_| ())
    }

    /// Makes room for `n` more bytes past the length without reallocating
    /// (puffs_framebuf_reserve_space).
    pub fn reserve(&mut self, n: usize) {
        self.data.reserve(n);
    }

    /// Sets the length, cutting the contents or padding them with zeros; the cursor
    /// stays at most at the new end.
    pub fn resize(&mut self, len: usize) {
        self.data.resize(len, 0);
        self.pos = self.pos.min(len);
    }

    /// Empties the buffer (keeping its allocation) and puts the cursor at the start
    /// (puffs_framebuf_recycle).
    pub fn clear(&mut self) {
        self.data.clear();
        self.pos = 0;
    }

    /// Writes `bytes` at the cursor, over what is there and past the end, and moves the
    /// cursor past them (puffs_framebuf_putdata).
    pub fn put_bytes(&mut self, bytes: &[u8]) {
        // The cursor is never past the end: overwrite up to the end, append the rest.
        let overlap = (self.data.len() - self.pos).min(bytes.len());
        self.data[self.pos..self.pos + overlap].copy_from_slice(&bytes[..overlap]);
        self.data.extend_from_slice(&bytes[overlap..]);
        self.pos += bytes.len();
    }

    /// Writes a `u32` big-endian length, then `bytes` (an SFTP/XDR-style string).
    /// Panics if `bytes` is longer than `u32::MAX`: no frame can carry it.
    pub fn put_string_u32_be(&mut self, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).expect("a string longer than u32::MAX");
        self.put_u32_be(len);
        self.put_bytes(bytes);
    }

    /// Writes a `u32` little-endian length, then `bytes`.
    /// Panics if `bytes` is longer than `u32::MAX`: no frame can carry it.
    pub fn put_string_u32_le(&mut self, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).expect("a string longer than u32::MAX");
        self.put_u32_le(len);
        self.put_bytes(bytes);
    }

    /// Reads `n` bytes at the cursor, without copying (puffs_framebuf_getdata).
    pub fn get_bytes(&mut self, n: usize) -> Result<&[u8], Short> {
        let start = self.pos;
        self.take(n)?;
        Ok(&self.data[start..start + n])
    }

    /// Reads a `u32` big-endian length and that many bytes. The length is checked
    /// against what the buffer holds before anything is taken, so a peer's oversized
    /// length is a `Short`, never an allocation.
    pub fn get_string_u32_be(&mut self) -> Result<&[u8], Short> {
        let start = self.pos;
        let len = self.get_u32_be()?;
        self.get_string_body(start, len)
    }

    /// Reads a `u32` little-endian length and that many bytes (see
    /// [`get_string_u32_be`](Self::get_string_u32_be)).
    pub fn get_string_u32_le(&mut self) -> Result<&[u8], Short> {
        let start = self.pos;
        let len = self.get_u32_le()?;
        self.get_string_body(start, len)
    }

    ints! {
        u16: get_u16_be get_u16_le put_u16_be put_u16_le;
        u32: get_u32_be get_u32_le put_u32_be put_u32_le;
        u64: get_u64_be get_u64_le put_u64_be put_u64_le;
    }

    /// Reads one byte at the cursor.
    pub fn get_u8(&mut self) -> Result<u8, Short> {
        Ok(self.get_array::<1>()?[0])
    }

    /// Writes one byte at the cursor.
    pub fn put_u8(&mut self, v: u8) {
        self.put_bytes(&[v]);
    }

    /// `len` bytes at `offset`, for reading in place; the cursor does not move
    /// (puffs_framebuf_getwindow, read side).
    pub fn window(&self, offset: usize, len: usize) -> Result<&[u8], Short> {
        let available = self.data.len().saturating_sub(offset);
        if offset > self.data.len() || len > available {
            return Err(Short {
                offset,
                wanted: len,
                available,
            });
        }
        Ok(&self.data[offset..offset + len])
    }

    /// `len` bytes at `offset`, for writing in place (e.g. a `read(2)` straight into the
    /// frame, or a length patched in after the body); the buffer grows, zero-filled, to
    /// reach `offset + len`. The cursor does not move.
    pub fn window_mut(&mut self, offset: usize, len: usize) -> &mut [u8] {
        if offset + len > self.data.len() {
            self.data.resize(offset + len, 0);
        }
        &mut self.data[offset..offset + len]
    }

    /// Appends at most `max` bytes read with `read` (e.g. from a non-blocking fd) to the
    /// end; returns how many. A read of 0 bytes (end of file) when `max > 0` is an
    /// `UnexpectedEof` error: a frame was wanted and none can come. The cursor does not
    /// move.
    pub fn fill_from(&mut self, read: &mut dyn io::Read, max: usize) -> io::Result<usize> {
        let old = self.data.len();
        self.data.resize(old + max, 0);
        let r = read.read(&mut self.data[old..]);
        let n = *r.as_ref().unwrap_or(&0);
        self.data.truncate(old + n);
        match r {
            Ok(0) if max > 0 => Err(io::ErrorKind::UnexpectedEof.into()),
            r => r,
        }
    }

    /// Reads into the buffer until it holds `len` bytes (partial reads are kept across
    /// calls: call again on `WouldBlock`). The cursor does not move.
    pub fn fill_to(&mut self, read: &mut dyn io::Read, len: usize) -> io::Result<()> {
        while self.data.len() < len {
            self.fill_from(read, len - self.data.len())?;
        }
        Ok(())
    }

    /// Writes the bytes from the cursor on with `write`, moving the cursor past what
    /// was written, until none remain (partial writes are kept across calls: call
    /// again on `WouldBlock`).
    pub fn drain_to(&mut self, write: &mut dyn io::Write) -> io::Result<()> {
        while self.pos < self.data.len() {
            match write.write(&self.data[self.pos..])? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => self.pos += n,
            }
        }
        Ok(())
    }

    fn get_string_body(&mut self, start: usize, len: u32) -> Result<&[u8], Short> {
        let body = self.pos;
        match self.take(len as usize) {
            Ok(()) => Ok(&self.data[body..body + len as usize]),
            Err(e) => {
                self.pos = start;
                Err(e)
            }
        }
    }

    fn get_array<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        let start = self.pos;
        self.take(N)?;
        let mut a = [0; N];
        a.copy_from_slice(&self.data[start..start + N]);
        Ok(a)
    }

    /// Moves the cursor `n` on if the buffer has `n` bytes left.
    fn take(&mut self, n: usize) -> Result<(), Short> {
        let available = self.remaining();
        if n > available {
            return Err(Short {
                offset: self.pos,
                wanted: n,
                available,
            });
        }
        self.pos += n;
        Ok(())
    }
}

impl From<Vec<u8>> for Framebuf {
    fn from(v: Vec<u8>) -> Self {
        Framebuf::from_vec(v)
    }
}

impl From<&[u8]> for Framebuf {
    fn from(v: &[u8]) -> Self {
        Framebuf::from_vec(v.to_vec())
    }
}

impl AsRef<[u8]> for Framebuf {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl io::Write for Framebuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.put_bytes(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Read for Framebuf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.remaining());
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_in_both_byte_orders() {
        let mut fb = Framebuf::new();
        fb.put_u8(0xab);
        fb.put_u16_be(0x0102);
        fb.put_u16_le(0x0102);
        fb.put_u32_be(0x0102_0304);
        fb.put_u32_le(0x0102_0304);
        fb.put_u64_be(0x0102_0304_0506_0708);
        fb.put_u64_le(0x0102_0304_0506_0708);
        assert_eq!(&fb.as_slice()[..5], &[0xab, 1, 2, 2, 1]);
        assert_eq!(fb.len(), 1 + 4 + 8 + 16);
        fb.seek(0).unwrap();
        assert_eq!(fb.get_u8(), Ok(0xab));
        assert_eq!(fb.get_u16_be(), Ok(0x0102));
        assert_eq!(fb.get_u16_le(), Ok(0x0102));
        assert_eq!(fb.get_u32_be(), Ok(0x0102_0304));
        assert_eq!(fb.get_u32_le(), Ok(0x0102_0304));
        assert_eq!(fb.get_u64_be(), Ok(0x0102_0304_0506_0708));
        assert_eq!(fb.get_u64_le(), Ok(0x0102_0304_0506_0708));
        assert_eq!(fb.remaining(), 0);
    }

    #[test]
    fn a_read_past_the_end_is_an_error_and_moves_nothing() {
        let mut fb = Framebuf::from_vec(vec![1, 2, 3]);
        fb.skip(1).unwrap();
        let e = fb.get_u32_be().unwrap_err();
        assert_eq!(
            e,
            Short {
                offset: 1,
                wanted: 4,
                available: 2
            }
        );
        assert_eq!(fb.position(), 1);
        assert_eq!(Errno::from(e), Errno::EIO);
        assert!(fb.get_bytes(3).is_err());
        assert_eq!(fb.get_bytes(2), Ok(&[2, 3][..]));
        assert!(fb.get_u8().is_err());
        assert!(fb.seek(4).is_err());
        assert!(fb.window(2, 2).is_err());
        assert!(fb.window(usize::MAX, 1).is_err());
    }

    #[test]
    fn strings_carry_their_length_and_an_oversized_one_is_refused() {
        let mut fb = Framebuf::new();
        fb.put_string_u32_be(b"hello");
        fb.put_string_u32_le(b"");
        fb.seek(0).unwrap();
        assert_eq!(fb.get_string_u32_be(), Ok(&b"hello"[..]));
        assert_eq!(fb.get_string_u32_le(), Ok(&b""[..]));
        // A peer claims 4 GiB: an error, the cursor back before the length, no allocation.
        let mut fb = Framebuf::from_vec(vec![0xff, 0xff, 0xff, 0xff, b'x']);
        assert!(fb.get_string_u32_be().is_err());
        assert_eq!(fb.position(), 0);
    }

    #[test]
    fn writes_overwrite_then_extend_and_windows_patch_in_place() {
        let mut fb = Framebuf::from_vec(b"abcdef".to_vec());
        fb.seek(4).unwrap();
        fb.put_bytes(b"XYZ");
        assert_eq!(fb.as_slice(), b"abcdXYZ");
        assert_eq!(fb.position(), 7);
        fb.window_mut(0, 2).copy_from_slice(b"AB");
        assert_eq!(fb.position(), 7, "a window does not move the cursor");
        fb.window_mut(9, 1)[0] = b'!';
        assert_eq!(fb.as_slice(), b"ABcdXYZ\0\0!");
        assert_eq!(fb.window(4, 3), Ok(&b"XYZ"[..]));
        fb.resize(3);
        assert_eq!(fb.position(), 3);
        fb.clear();
        assert!(fb.is_empty());
        assert_eq!(fb.position(), 0);
    }

    /// A reader handing out at most `step` bytes per call, then `WouldBlock`, then EOF.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
        blocked: bool,
    }

    impl io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.blocked = !self.blocked;
            if self.blocked {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = out.len().min(self.step).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn partial_reads_accumulate_across_would_block() {
        let data = b"0123456789";
        let mut r = Trickle {
            data,
            step: 3,
            blocked: false,
        };
        let mut fb = Framebuf::new();
        let mut blocks = 0;
        loop {
            match fb.fill_to(&mut r, 8) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => blocks += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(fb.as_slice(), b"01234567");
        assert!(blocks >= 3);
        // The rest, then end of file mid-frame.
        let e = loop {
            match fb.fill_to(&mut r, 20) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => break other.unwrap_err(),
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(fb.as_slice(), data);
    }

    /// A writer taking at most 2 bytes per call.
    struct Narrow(Vec<u8>);

    impl io::Write for Narrow {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let n = b.len().min(2);
            self.0.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn drain_writes_the_rest_through_partial_writes() {
        let mut fb = Framebuf::from_vec(b"hello world".to_vec());
        fb.seek(6).unwrap();
        let mut w = Narrow(Vec::new());
        fb.drain_to(&mut w).unwrap();
        assert_eq!(w.0, b"world");
        assert_eq!(fb.remaining(), 0);
    }

    /// xorshift64: a seeded sequence without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> usize {
            (self.next() % n) as usize
        }
    }

    /// Random operations with random arguments never panic, and keep the invariants:
    /// the cursor within the contents, a failed read moves nothing.
    #[test]
    fn random_operations_never_panic() {
        for seed in 1..=200u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut fb = Framebuf::new();
            for _ in 0..500 {
                let arg = rng.below(40);
                let before = fb.position();
                let failed = match rng.below(14) {
                    0 => fb.get_u8().is_err(),
                    1 => fb.get_u16_le().is_err(),
                    2 => fb.get_u32_be().is_err(),
                    3 => fb.get_u64_le().is_err(),
                    4 => fb.get_bytes(arg).is_err(),
                    5 => fb.get_string_u32_be().is_err(),
                    6 => fb.seek(arg).is_err(),
                    7 => fb.skip(arg).is_err(),
                    8 => fb.window(arg, rng.below(40)).is_err(),
                    9 => {
                        fb.put_bytes(&vec![arg as u8; rng.below(40)]);
                        false
                    }
                    10 => {
                        fb.put_u32_be(rng.next() as u32);
                        false
                    }
                    11 => {
                        fb.window_mut(arg, rng.below(10)).fill(7);
                        false
                    }
                    12 => {
                        fb.resize(arg);
                        false
                    }
                    _ => {
                        fb.put_string_u32_le(&vec![1; arg]);
                        false
                    }
                };
                if failed {
                    assert_eq!(fb.position(), before, "seed {seed}: a failed op moved");
                }
                assert!(fb.position() <= fb.len(), "seed {seed}");
            }
        }
    }
}
