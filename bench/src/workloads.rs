//! The workloads. Each runs inside a freshly mounted, empty target and returns named timings.
//!
//! All file access goes through a directory fd and `*at` calls with names prepared before the
//! clock starts, so what is timed is the file system (and the kernel's caches in front of it), not
//! path formatting or walking the benchmark's base directory. Every read is checked against what
//! was written, so a file system that returns wrong data fails loudly instead of looking fast.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::{open, openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, Mode};
use nix::unistd::{fsync, read, unlinkat, write, UnlinkatFlags};

/// Set by the SIGINT/SIGTERM handler; long loops poll it so the guards can unmount.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// One timed result: metric name, seconds (or microseconds / bytes for the special metrics).
pub type Sample = (&'static str, f64);

const SMALL_SIZE: usize = 4096;
const BLOCK: usize = 1 << 20;

pub(crate) fn check_interrupt(i: usize) -> Result<(), String> {
    if i % 1024 == 0 && INTERRUPTED.load(Ordering::Relaxed) {
        return Err("interrupted".into());
    }
    Ok(())
}

/// `f000000`, `f000001`, ...: 7 bytes each below a million.
pub fn names(n: usize) -> Vec<CString> {
    (0..n)
        .map(|i| CString::new(format!("f{i:06}")).expect("no NUL in name"))
        .collect()
}

fn err(what: &str, name: &CString, e: Errno) -> String {
    format!("{what} {}: {e} ({})", name.to_string_lossy(), e.desc())
}

/// Opens the mount's root and makes the work directory `d` in it.
pub(crate) fn workdir(mount: &Path) -> Result<OwnedFd, String> {
    let root = open(mount, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
        .map_err(|e| format!("open {}: {e}", mount.display()))?;
    mkdirat(&root, "d", Mode::from_bits_truncate(0o755)).map_err(|e| format!("mkdir d: {e}"))?;
    openat(
        &root,
        "d",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
    .map_err(|e| format!("open d: {e}"))
}

pub(crate) fn create_all(dir: &OwnedFd, names: &[CString]) -> Result<(), String> {
    for (i, n) in names.iter().enumerate() {
        check_interrupt(i)?;
        let fd = openat(
            dir,
            n.as_c_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(|e| err("create", n, e))?;
        drop(fd);
    }
    Ok(())
}

pub(crate) fn stat_all(dir: &OwnedFd, names: &[CString], size: i64) -> Result<(), String> {
    for (i, n) in names.iter().enumerate() {
        check_interrupt(i)?;
        let st = fstatat(dir, n.as_c_str(), AtFlags::empty()).map_err(|e| err("stat", n, e))?;
        if st.st_size != size || st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(format!(
                "stat {}: size {} mode {:o}, expected a regular file of {size} bytes",
                n.to_string_lossy(),
                st.st_size,
                st.st_mode
            ));
        }
    }
    Ok(())
}

fn unlink_all(dir: &OwnedFd, names: &[CString]) -> Result<(), String> {
    for (i, n) in names.iter().enumerate() {
        check_interrupt(i)?;
        unlinkat(dir, n.as_c_str(), UnlinkatFlags::NoRemoveDir).map_err(|e| err("unlink", n, e))?;
    }
    Ok(())
}

pub(crate) fn timed(f: impl FnOnce() -> Result<(), String>) -> Result<f64, String> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64())
}

/// Workloads 1, 2 (hot) and 3 on one mount: create `n` empty files in one directory, stat each
/// (kernel caches as the file system's defaults leave them), unlink each.
pub fn meta(mount: &Path, n: usize) -> Result<Vec<Sample>, String> {
    let dir = workdir(mount)?;
    let names = names(n);
    let create = timed(|| create_all(&dir, &names)).map_err(|e| format!("create: {e}"))?;
    let stat = timed(|| stat_all(&dir, &names, 0)).map_err(|e| format!("stat_hot: {e}"))?;
    let unlink = timed(|| unlink_all(&dir, &names)).map_err(|e| format!("unlink: {e}"))?;
    Ok(vec![
        ("create", create),
        ("stat_hot", stat),
        ("unlink", unlink),
    ])
}

/// Workload 2 (cold): on a mount with attr_timeout=0,entry_timeout=0, create `n` files (not
/// timed) and stat each one: every stat is a LOOKUP and a GETATTR round trip to the daemon.
pub fn stat_cold(mount: &Path, n: usize) -> Result<Vec<Sample>, String> {
    let dir = workdir(mount)?;
    let names = names(n);
    create_all(&dir, &names).map_err(|e| format!("stat_cold setup: {e}"))?;
    let stat = timed(|| stat_all(&dir, &names, 0)).map_err(|e| format!("stat_cold: {e}"))?;
    Ok(vec![("stat_cold", stat)])
}

/// Writes `3` to /proc/sys/vm/drop_caches after a sync: page cache, dentries and inodes of every
/// file system that can drop them. tmpfs keeps its pages (they are the storage); FUSE mounts
/// lose their cached pages and inodes, so the next access goes to the daemon.
pub fn drop_caches() -> Result<(), String> {
    nix::unistd::sync();
    std::fs::write("/proc/sys/vm/drop_caches", "3").map_err(|e| format!("drop_caches: {e}"))
}

fn small_content(i: usize) -> [u8; SMALL_SIZE] {
    let mut buf = [(i % 251) as u8; SMALL_SIZE];
    buf[..8].copy_from_slice(&(i as u64).to_le_bytes());
    buf
}

fn write_full(fd: &OwnedFd, mut data: &[u8]) -> Result<(), Errno> {
    while !data.is_empty() {
        let n = write(fd.as_fd(), data)?;
        if n == 0 {
            return Err(Errno::EIO);
        }
        data = &data[n..];
    }
    Ok(())
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut got = 0;
    while got < buf.len() {
        match read(fd.as_fd(), &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn small_write_all(dir: &OwnedFd, names: &[CString]) -> Result<(), String> {
    for (i, n) in names.iter().enumerate() {
        check_interrupt(i)?;
        let fd = openat(
            dir,
            n.as_c_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(|e| err("create", n, e))?;
        write_full(&fd, &small_content(i)).map_err(|e| err("write", n, e))?;
    }
    Ok(())
}

fn small_read_all(dir: &OwnedFd, names: &[CString]) -> Result<(), String> {
    // One byte more than the file, so a file that is too long is noticed.
    let mut buf = [0u8; SMALL_SIZE + 1];
    for (i, n) in names.iter().enumerate() {
        check_interrupt(i)?;
        let fd = openat(
            dir,
            n.as_c_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err("open", n, e))?;
        let got = read_full(&fd, &mut buf).map_err(|e| err("read", n, e))?;
        if got != SMALL_SIZE || buf[..SMALL_SIZE] != small_content(i) {
            return Err(format!(
                "read {}: got {got} bytes, content {}",
                n.to_string_lossy(),
                if buf[..got.min(SMALL_SIZE)] == small_content(i)[..got.min(SMALL_SIZE)] {
                    "matches as far as read"
                } else {
                    "differs from what was written"
                }
            ));
        }
    }
    Ok(())
}

/// Workload 4: `n` files of 4 KiB: create+write+close each; sync and drop caches; read each
/// back (cold); read each again (warm); unlink each.
pub fn small(mount: &Path, n: usize) -> Result<Vec<Sample>, String> {
    let dir = workdir(mount)?;
    let names = names(n);
    let w = timed(|| small_write_all(&dir, &names)).map_err(|e| format!("small_write: {e}"))?;
    drop_caches()?;
    let rc = timed(|| small_read_all(&dir, &names)).map_err(|e| format!("small_read_cold: {e}"))?;
    let rw = timed(|| small_read_all(&dir, &names)).map_err(|e| format!("small_read_warm: {e}"))?;
    let d = timed(|| unlink_all(&dir, &names)).map_err(|e| format!("small_delete: {e}"))?;
    Ok(vec![
        ("small_write", w),
        ("small_read_cold", rc),
        ("small_read_warm", rw),
        ("small_delete", d),
    ])
}

fn block_header_ok(buf: &[u8], block: usize) -> bool {
    buf[..8] == (block as u64).to_le_bytes() && buf[BLOCK - 1] == (block % 251) as u8
}

fn seq_read(dir: &OwnedFd, name: &CString, blocks: usize, buf: &mut [u8]) -> Result<(), String> {
    let fd = openat(
        dir,
        name.as_c_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err("open", name, e))?;
    for b in 0..blocks {
        check_interrupt(b)?;
        let got = read_full(&fd, buf).map_err(|e| err("read", name, e))?;
        if got != BLOCK || !block_header_ok(buf, b) {
            return Err(format!(
                "read {} block {b}: got {got} bytes, {}",
                name.to_string_lossy(),
                if got == BLOCK {
                    "wrong content"
                } else {
                    "short read"
                }
            ));
        }
    }
    let got = read_full(&fd, &mut buf[..1]).map_err(|e| err("read", name, e))?;
    if got != 0 {
        return Err(format!(
            "read {}: data past the end of the file",
            name.to_string_lossy()
        ));
    }
    Ok(())
}

/// Workload 5: one file of `mib` MiB written sequentially in 1 MiB blocks (timed up to and
/// including fsync and close), read back cold (after sync + drop caches) and warm (again).
pub fn seq(mount: &Path, mib: usize) -> Result<Vec<Sample>, String> {
    let dir = workdir(mount)?;
    let name = CString::new("big").expect("no NUL");
    let mut buf = vec![0u8; BLOCK];
    let write_secs = timed(|| {
        let fd = openat(
            &dir,
            name.as_c_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(|e| err("create", &name, e))?;
        for b in 0..mib {
            check_interrupt(b)?;
            buf.fill((b % 251) as u8);
            buf[..8].copy_from_slice(&(b as u64).to_le_bytes());
            write_full(&fd, &buf).map_err(|e| err("write", &name, e))?;
        }
        fsync(fd.as_fd()).map_err(|e| err("fsync", &name, e))?;
        Ok(())
    })
    .map_err(|e| format!("seq_write: {e}"))?;
    let st = fstatat(&dir, name.as_c_str(), AtFlags::empty())
        .map_err(|e| format!("seq_write: {}", err("stat", &name, e)))?;
    if st.st_size as u64 != (mib * BLOCK) as u64 {
        return Err(format!(
            "seq_write: size after write is {}, expected {}",
            st.st_size,
            mib * BLOCK
        ));
    }
    drop_caches()?;
    let cold = timed(|| seq_read(&dir, &name, mib, &mut buf))
        .map_err(|e| format!("seq_read_cold: {e}"))?;
    let warm = timed(|| seq_read(&dir, &name, mib, &mut buf))
        .map_err(|e| format!("seq_read_warm: {e}"))?;
    Ok(vec![
        ("seq_write", write_secs),
        ("seq_read_cold", cold),
        ("seq_read_warm", warm),
    ])
}

/// Round trip of one uncached getattr: on a mount with attr_timeout=0, `fstat` an open file
/// `iters` times, timing each call. Returns the mean and the 99th percentile in microseconds,
/// and, when the daemon's `pid` is known, the daemon's CPU time (user + system, from
/// /proc/PID/stat) per call in microseconds: what the latency costs the machine.
pub fn getattr_latency(
    mount: &Path,
    iters: usize,
    pid: Option<i32>,
) -> Result<Vec<Sample>, String> {
    let dir = workdir(mount)?;
    let name = CString::new("f000000").expect("no NUL");
    let fd = openat(
        &dir,
        name.as_c_str(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| format!("getattr: {}", err("create", &name, e)))?;
    // Warm up: the first calls may allocate and fault in code on both sides.
    for _ in 0..1000 {
        fstat(fd.as_fd()).map_err(|e| format!("getattr: {}", err("fstat", &name, e)))?;
    }
    let cpu_before = pid.map(crate::targets::cpu_time).transpose()?;
    let mut each = Vec::with_capacity(iters);
    let t = Instant::now();
    for i in 0..iters {
        check_interrupt(i)?;
        let one = Instant::now();
        fstat(fd.as_fd()).map_err(|e| format!("getattr: {}", err("fstat", &name, e)))?;
        each.push(one.elapsed());
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / iters as f64;
    each.sort_unstable();
    let p99 = each[(each.len() * 99 / 100).min(each.len() - 1)].as_secs_f64() * 1e6;
    let mut out = vec![("getattr_us", us), ("getattr_p99_us", p99)];
    if let (Some(pid), Some(before)) = (pid, cpu_before) {
        let cpu = crate::targets::cpu_time(pid)? - before;
        out.push(("getattr_cpu_us", cpu * 1e6 / iters as f64));
    }
    Ok(out)
}

/// Resident memory of the memfs daemon `pid` (VmRSS) before, with and after `mib` MiB of file
/// data: empty right after mount; warm after writing and deleting one 1 MiB file (the
/// framework's request buffers are then touched: a fixed cost that no deletion gives back);
/// full after writing `mib` files of 1 MiB, each followed by a
/// 4 KiB file so that small allocations sit between the large ones as in real use; and after
/// deleting every file (once the kernel's forgets have arrived and the figure has settled).
pub fn data_memory(mount: &Path, pid: i32, mib: usize) -> Result<Vec<Sample>, String> {
    let rss = || crate::targets::vm_rss(pid);
    let settled = || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        rss()
    };
    let empty = settled()?;
    let dir = workdir(mount)?;
    let block = vec![0x5au8; BLOCK];
    let warmup = CString::new("warmup").expect("no NUL in name");
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC;
    let fd = openat(
        &dir,
        warmup.as_c_str(),
        flags,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| err("data_memory: create", &warmup, e))?;
    write_full(&fd, &block).map_err(|e| err("data_memory: write", &warmup, e))?;
    drop(fd);
    unlink_all(&dir, std::slice::from_ref(&warmup))?;
    let warm = settled()?;
    let bigs: Vec<CString> = names(mib);
    let smalls: Vec<CString> = (0..mib)
        .map(|i| CString::new(format!("s{i:06}")).expect("no NUL in name"))
        .collect();
    for (i, (big, small)) in bigs.iter().zip(&smalls).enumerate() {
        check_interrupt(i)?;
        for (name, data) in [(big, &block[..]), (small, &block[..SMALL_SIZE])] {
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC;
            let fd = openat(
                &dir,
                name.as_c_str(),
                flags,
                Mode::from_bits_truncate(0o644),
            )
            .map_err(|e| err("data_memory: create", name, e))?;
            write_full(&fd, data).map_err(|e| err("data_memory: write", name, e))?;
        }
    }
    let full = settled()?;
    unlink_all(&dir, &bigs).map_err(|e| format!("data_memory: {e}"))?;
    unlink_all(&dir, &smalls).map_err(|e| format!("data_memory: {e}"))?;
    drop(dir);
    let mut deleted = settled()?;
    // The forgets that free the data follow the unlinks at once; wait a little longer
    // only while the figure still falls.
    for _ in 0..10 {
        let now = settled()?;
        if now >= deleted {
            break;
        }
        deleted = now;
    }
    Ok(vec![
        ("rss_data_empty_bytes", empty as f64),
        ("rss_data_warm_bytes", warm as f64),
        ("rss_data_full_bytes", full as f64),
        ("rss_data_deleted_bytes", deleted as f64),
    ])
}

/// Resident memory of the memfs daemon `pid` holding `n` empty files named f000000.. (7 bytes):
/// baseline VmRSS right after mount, VmRSS after creating the files; returns the baseline, the
/// growth, and bytes per file beyond the name.
pub fn memory(mount: &Path, pid: i32, n: usize) -> Result<Vec<Sample>, String> {
    let base = crate::targets::vm_rss(pid)?;
    let dir = workdir(mount)?;
    let names = names(n);
    create_all(&dir, &names).map_err(|e| format!("memory: {e}"))?;
    // Let the daemon finish anything queued (forgets, replies) before sampling.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let after = crate::targets::vm_rss(pid)?;
    let name_len = names.first().map_or(0, |s| s.as_bytes().len()) as f64;
    let per_file = (after as f64 - base as f64) / n as f64 - name_len;
    Ok(vec![
        ("rss_base_bytes", base as f64),
        ("rss_growth_bytes", after as f64 - base as f64),
        ("bytes_per_file", per_file),
    ])
}
