//! The sftpfs-vs-sshfs workloads. Each returns its wall time in seconds.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::workloads::drop_caches;

const MIB: usize = 1 << 20;

/// Writes `mib` MiB in 1 MiB writes and fsyncs: the fsync is in the time, so nothing is left
/// in a write-back cache when the clock stops.
pub fn seq_write(file: &Path, mib: usize) -> Result<f64, String> {
    let buf: Vec<u8> = (0..MIB).map(|i| (i * 31 % 251) as u8).collect();
    let start = Instant::now();
    let mut f = File::create(file).map_err(|e| format!("create {}: {e}", file.display()))?;
    for _ in 0..mib {
        f.write_all(&buf)
            .map_err(|e| format!("write {}: {e}", file.display()))?;
    }
    f.sync_all()
        .map_err(|e| format!("fsync {}: {e}", file.display()))?;
    drop(f);
    Ok(start.elapsed().as_secs_f64())
}

/// Reads the file back with caches dropped first, so the data crosses the transport.
pub fn seq_read(file: &Path, mib: usize) -> Result<f64, String> {
    drop_caches()?;
    let mut buf = vec![0u8; MIB];
    let start = Instant::now();
    let mut f = File::open(file).map_err(|e| format!("open {}: {e}", file.display()))?;
    let mut total = 0usize;
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => return Err(format!("read {}: {e}", file.display())),
        }
    }
    let t = start.elapsed().as_secs_f64();
    if total != mib * MIB {
        return Err(format!("read {total} bytes, expected {}", mib * MIB));
    }
    Ok(t)
}

/// The round trip to the server as the file system sees it: the median time of `stat` on
/// names that do not exist (each an uncached lookup, one request and its answer).
pub fn round_trip(dir: &Path) -> Result<f64, String> {
    let mut times = Vec::new();
    for i in 0..21 {
        let p = dir.join(format!("no-such-file-{i}"));
        let start = Instant::now();
        match fs::symlink_metadata(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => return Err(format!("stat {}: {other:?}", p.display())),
        }
        times.push(start.elapsed().as_secs_f64());
    }
    crate::report::median(&times).ok_or_else(|| "no round trip timed".into())
}

/// Creates `n` files of 1 KiB each (create, write, close) in a new directory.
pub fn create(dir: &Path, n: usize) -> Result<f64, String> {
    let data = [b'x'; 1024];
    let start = Instant::now();
    fs::create_dir(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    for i in 0..n {
        let p = dir.join(format!("f{i:06}"));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&p)
            .map_err(|e| format!("create {}: {e}", p.display()))?;
        f.write_all(&data)
            .map_err(|e| format!("write {}: {e}", p.display()))?;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Runs a command to completion with its output discarded, timing it.
fn timed(cmd: &mut Command, what: &str) -> Result<f64, String> {
    let start = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    let t = start.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(t)
}

/// `ls -lR` over the listing tree (readdir + an lstat per entry), on a fresh mount.
pub fn list(tree: &Path) -> Result<f64, String> {
    timed(Command::new("ls").arg("-lR").arg(tree), "ls -lR")
}

/// `cp -r` of a source tree into the mount.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<f64, String> {
    timed(Command::new("cp").arg("-r").arg(src).arg(dst), "cp -r")
}

/// Fills `dir` (on the backing fs, not through a mount) with about `n` entries: square-root
/// many directories of as many files, so `ls -lR` does both readdir and stat work.
pub fn make_list_tree(dir: &Path, n: usize) -> Result<usize, String> {
    let dirs = (n as f64).sqrt().ceil().max(1.0) as usize;
    let per = n.div_ceil(dirs).saturating_sub(1).max(1);
    let mut made = 0;
    fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    for d in 0..dirs {
        let sub = dir.join(format!("d{d:04}"));
        fs::create_dir(&sub).map_err(|e| format!("mkdir {}: {e}", sub.display()))?;
        made += 1;
        for f in 0..per {
            let p = sub.join(format!("f{f:05}"));
            fs::write(&p, b"entry").map_err(|e| format!("write {}: {e}", p.display()))?;
            made += 1;
        }
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_tree_has_about_n_entries() {
        let dir = std::env::temp_dir().join(format!("sftp-bench-tree-{}", std::process::id()));
        let made = make_list_tree(&dir, 100).unwrap();
        let mut counted = 0;
        for d in fs::read_dir(&dir).unwrap() {
            counted += 1 + fs::read_dir(d.unwrap().path()).unwrap().count();
        }
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(made, counted);
        assert!((90..=110).contains(&made), "{made} entries for 100");
    }
}
