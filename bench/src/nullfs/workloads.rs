//! The two workloads the nullfs suite adds to the shared ones (meta, small, seq in
//! crate::workloads): stat after dropping caches, and 4 KiB random reads at queue depth 1.

use std::ffi::CString;
use std::path::Path;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use nix::sys::uio::pread;

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
