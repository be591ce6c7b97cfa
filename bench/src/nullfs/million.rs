//! The million-file run: 1,000,000 empty files in one directory created, listed and removed
//! through nullfs, while a sampler thread watches the daemon's open fds and memory.
//!
//! RLIMIT_NOFILE is 20,000 on these machines and cannot be raised, so a null layer that keeps
//! an fd per known inode runs out long before the end; nullfs must keep its fds bounded.
//! Reported: the three times, the daemon's peak fd count, its fd limit, its peak RSS (VmHWM)
//! and its RSS after the files are gone.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::workloads::{check_interrupt, create_all, names, timed, workdir, Sample};

/// What the sampler saw of the daemon.
#[derive(Default, Clone, Copy)]
struct Peak {
    fds: u64,
    hwm_kib: u64,
}

/// Samples /proc/PID every 200 ms until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Peak>,
}

impl Sampler {
    fn start(pid: i32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let mut peak = Peak::default();
            loop {
                if let Some(n) = fd_count(pid) {
                    peak.fds = peak.fds.max(n);
                }
                if let Some(k) = status_kib(pid, "VmHWM:") {
                    peak.hwm_kib = peak.hwm_kib.max(k);
                }
                if flag.load(Ordering::Relaxed) {
                    return peak;
                }
                thread::sleep(Duration::from_millis(200));
            }
        });
        Sampler { stop, handle }
    }

    fn finish(self) -> Peak {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

fn fd_count(pid: i32) -> Option<u64> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// A `Vm...:` line of /proc/PID/status, in KiB.
pub fn status_kib(pid: i32, key: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, key)
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    let rest = status.lines().find_map(|l| l.strip_prefix(key))?;
    rest.trim().trim_end_matches("kB").trim().parse().ok()
}

/// The soft "Max open files" of /proc/PID/limits.
fn fd_limit(pid: i32) -> Option<u64> {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let rest = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    rest.split_whitespace().next()?.parse().ok()
}

fn list_count(mount: &Path) -> Result<usize, String> {
    let d = mount.join("d");
    let mut n = 0;
    for (i, e) in fs::read_dir(&d)
        .map_err(|e| format!("readdir {}: {e}", d.display()))?
        .enumerate()
    {
        check_interrupt(i)?;
        e.map_err(|e| format!("readdir {}: {e}", d.display()))?;
        n += 1;
    }
    Ok(n)
}

fn remove_all(dir: &OwnedFd, names: &[std::ffi::CString]) -> Result<(), String> {
    for (i, n) in names.iter().enumerate() {
        check_interrupt(i)?;
        unlinkat(dir, n.as_c_str(), UnlinkatFlags::NoRemoveDir)
            .map_err(|e| format!("unlink {}: {e}", n.to_string_lossy()))?;
    }
    Ok(())
}

/// Create `n` files in one directory, list it (the count must be `n`), unlink them all.
/// `pid` is the nullfs daemon's.
pub fn run(mount: &Path, n: usize, pid: i32) -> Result<Vec<Sample>, String> {
    let limit = fd_limit(pid);
    let sampler = Sampler::start(pid);
    let result = (|| {
        let dir = workdir(mount)?;
        let names = names(n);
        let create = timed(|| create_all(&dir, &names)).map_err(|e| format!("create: {e}"))?;
        let mut listed = 0;
        let list = timed(|| {
            listed = list_count(mount)?;
            Ok(())
        })
        .map_err(|e| format!("list: {e}"))?;
        if listed != n {
            return Err(format!("list: {listed} entries, expected {n}"));
        }
        let unlink = timed(|| remove_all(&dir, &names)).map_err(|e| format!("unlink: {e}"))?;
        Ok((create, list, unlink))
    })();
    let peak = sampler.finish();
    let (create, list, unlink) = result.map_err(|e| {
        format!(
            "{e} (daemon peak: {} fds of {} allowed, VmHWM {} MiB)",
            peak.fds,
            limit.map_or("?".into(), |l| l.to_string()),
            peak.hwm_kib / 1024
        )
    })?;
    thread::sleep(Duration::from_millis(300));
    let rss_after = status_kib(pid, "VmRSS:").unwrap_or(0);
    let mut out = vec![
        ("million_files", n as f64),
        ("million_create", create),
        ("million_list", list),
        ("million_unlink", unlink),
        ("million_peak_fds", peak.fds as f64),
        ("million_hwm_mib", peak.hwm_kib as f64 / 1024.0),
        ("million_rss_after_mib", rss_after as f64 / 1024.0),
    ];
    if let Some(l) = limit {
        out.push(("million_fd_limit", l as f64));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_in_kib() {
        let s = "Name:\tnullfs\nVmHWM:\t   12345 kB\nVmRSS:\t    1000 kB\n";
        assert_eq!(parse_status_kib(s, "VmHWM:"), Some(12345));
        assert_eq!(parse_status_kib(s, "VmRSS:"), Some(1000));
        assert_eq!(parse_status_kib(s, "VmSwap:"), None);
    }
}
