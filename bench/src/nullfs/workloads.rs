//! The workloads the nullfs suite adds to the shared ones (meta, small, seq in
//! crate::workloads): stat after dropping caches, 4 KiB random reads at queue depth 1, and the
//! sequential and random reads again through O_DIRECT.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use nix::sys::uio::{pread, pwrite};
use nix::unistd::fsync;

use crate::workloads::{
    check_interrupt, create_all, drop_caches, names, stat_all, timed, workdir, Sample,
};

const PAGE: usize = 4096;
const MIB: usize = 1 << 20;

/// Create `n` empty files (not timed), sync and drop caches, then stat each: every stat finds
/// neither a cached dentry nor a cached inode, whatever the target's own timeouts are.
pub fn stat_cold(mount: &Path, n: usize) -> Result<Vec<Sample>, String> {
    let dir = workdir(mount)?;
    let names = names(n);
    create_all(&dir, &names).map_err(|e| format!("stat_cold setup: {e}"))?;
    drop_caches()?;
    let t = timed(|| stat_all(&dir, &names, 0)).map_err(|e| format!("stat_cold: {e}"))?;
    Ok(vec![("stat_cold", t)])
}

/// A small xorshift generator: the same offsets on every target and every round.
struct Offsets(u64);

impl Offsets {
    fn next_page(&mut self, pages: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % pages as u64) as usize
    }
}

fn pread_loop(fd: &std::os::fd::OwnedFd, pages: usize, reads: usize) -> Result<(), String> {
    let mut rng = Offsets(0x9e37_79b9_7f4a_7c15);
    let mut buf = [0u8; PAGE];
    for i in 0..reads {
        check_interrupt(i)?;
        let page = rng.next_page(pages);
        let got = pread(fd, &mut buf, (page * PAGE) as i64)
            .map_err(|e| format!("pread page {page}: {e}"))?;
        // The seq workload starts each MiB block with its index: check those pages.
        let block = page * PAGE / MIB;
        if got != PAGE || (page * PAGE % MIB == 0 && buf[..8] != (block as u64).to_le_bytes()) {
            return Err(format!(
                "pread page {page}: got {got} bytes or wrong content"
            ));
        }
    }
    Ok(())
}

/// `reads` 4 KiB preads at random page offsets of the `mib` MiB file the seq workload left in
/// `d/big`, one at a time (queue depth 1): first after dropping caches (cold), then the same
/// offsets again (warm).
pub fn rand_read(mount: &Path, mib: usize, reads: usize) -> Result<Vec<Sample>, String> {
    let name = CString::new("d/big").expect("no NUL");
    let root = nix::fcntl::open(mount, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
        .map_err(|e| format!("open {}: {e}", mount.display()))?;
    let pages = mib * MIB / PAGE;
    drop_caches()?;
    let fd = openat(
        &root,
        name.as_c_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open d/big: {e}"))?;
    let cold =
        timed(|| pread_loop(&fd, pages, reads)).map_err(|e| format!("rand_read_cold: {e}"))?;
    let warm =
        timed(|| pread_loop(&fd, pages, reads)).map_err(|e| format!("rand_read_warm: {e}"))?;
    Ok(vec![("rand_read_cold", cold), ("rand_read_warm", warm)])
}

/// A `len`-byte buffer aligned to the page, as O_DIRECT wants (no unsafe: an over-sized
/// vector and the aligned window in it).
struct Aligned {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Aligned {
        let raw = vec![0u8; len + PAGE];
        let start = raw.as_ptr().align_offset(PAGE);
        Aligned { raw, start, len }
    }

    fn buf(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

fn fill_block(buf: &mut [u8], b: usize) {
    buf.fill((b % 251) as u8);
    buf[..8].copy_from_slice(&(b as u64).to_le_bytes());
}

fn open_direct(root: &OwnedFd, name: &CStr, flags: OFlag) -> Result<OwnedFd, String> {
    openat(
        root,
        name,
        flags | OFlag::O_DIRECT | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| format!("open {} O_DIRECT: {e}", name.to_string_lossy()))
}

/// The seq and rand_read workloads through O_DIRECT: `mib` MiB written in 1 MiB blocks + fsync
/// (`direct_write`), read back (`direct_read`: no page cache anywhere, so no cold/warm), then
/// `reads` 4 KiB preads at the random offsets of rand_read, one at a time (`direct_rand_read`).
/// On FUSE the kernel sends O_DIRECT reads and writes to the daemon as they come, and nullfs
/// opens its backing file O_DIRECT too: with aio=linux that is where kernel AIO does the I/O.
pub fn direct(mount: &Path, mib: usize, reads: usize) -> Result<Vec<Sample>, String> {
    let root = workdir(mount)?;
    let name = CString::new("big").expect("no NUL");
    let mut big = Aligned::new(MIB);
    let write = timed(|| {
        let fd = open_direct(
            &root,
            &name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY,
        )?;
        for b in 0..mib {
            check_interrupt(b)?;
            fill_block(big.buf(), b);
            let n = pwrite(&fd, big.buf(), (b * MIB) as i64)
                .map_err(|e| format!("pwrite block {b}: {e}"))?;
            if n != MIB {
                return Err(format!("pwrite block {b}: short write of {n}"));
            }
        }
        fsync(fd.as_fd()).map_err(|e| format!("fsync: {e}"))
    })
    .map_err(|e| format!("direct_write: {e}"))?;
    let fd = open_direct(&root, &name, OFlag::O_RDONLY)?;
    let read = timed(|| {
        for b in 0..mib {
            check_interrupt(b)?;
            let buf = big.buf();
            let n =
                pread(&fd, buf, (b * MIB) as i64).map_err(|e| format!("pread block {b}: {e}"))?;
            if n != MIB || buf[..8] != (b as u64).to_le_bytes() || buf[MIB - 1] != (b % 251) as u8 {
                return Err(format!("pread block {b}: {n} bytes or wrong content"));
            }
        }
        Ok(())
    })
    .map_err(|e| format!("direct_read: {e}"))?;
    let pages = mib * MIB / PAGE;
    let mut page = Aligned::new(PAGE);
    let rand = timed(|| {
        let mut rng = Offsets(0x9e37_79b9_7f4a_7c15);
        for i in 0..reads {
            check_interrupt(i)?;
            let p = rng.next_page(pages);
            let buf = page.buf();
            let n =
                pread(&fd, buf, (p * PAGE) as i64).map_err(|e| format!("pread page {p}: {e}"))?;
            let block = p * PAGE / MIB;
            if n != PAGE || (p * PAGE % MIB == 0 && buf[..8] != (block as u64).to_le_bytes()) {
                return Err(format!("pread page {p}: {n} bytes or wrong content"));
            }
        }
        Ok(())
    })
    .map_err(|e| format!("direct_rand_read: {e}"))?;
    Ok(vec![
        ("direct_write", write),
        ("direct_read", read),
        ("direct_rand_read", rand),
    ])
}
