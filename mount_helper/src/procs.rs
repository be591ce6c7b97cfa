//! Finding file system processes by their command lines.
//!
//! The kernel does not say which process serves a FUSE mount, so we look for
//! it: a puffs file system is started as `TYPE [-f] [-o OPTS] [SOURCE]
//! MOUNTPOINT`, and mount_puffs always passes the canonical mount point, so a
//! process whose program is named TYPE and which has the mount point as an
//! argument is the one. A file system started by hand with a relative or
//! non-canonical path is not found this way. Needs /proc (Linux); elsewhere
//! nothing is found.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A running process and its arguments.
pub struct Proc {
    pub pid: i32,
    pub argv: Vec<OsString>,
}

/// All processes but this one whose command line can be read.
pub fn processes() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            Some(Proc {
                pid,
                argv: split_cmdline(&cmdline),
            })
        })
        .collect()
}

fn split_cmdline(cmdline: &[u8]) -> Vec<OsString> {
    cmdline
        .split(|&b| b == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| std::ffi::OsStr::from_bytes(arg).to_os_string())
        .collect()
}

/// The pid of the `fstype` process serving `mountpoint`, if one is found.
pub fn fs_pid(procs: &[Proc], fstype: &str, mountpoint: &Path) -> Option<i32> {
    procs
        .iter()
        .find(|p| serves(p, fstype, mountpoint))
        .map(|p| p.pid)
}

fn serves(p: &Proc, fstype: &str, mountpoint: &Path) -> bool {
    let Some((program, args)) = p.argv.split_first() else {
        return false;
    };
    let named = Path::new(program).file_name() == Some(std::ffi::OsStr::new(fstype));
    named && args.iter().any(|a| Path::new(a) == mountpoint)
}

/// Processes started with exactly `argv`: what is left of a file system
/// that mount_puffs ran (its daemon keeps the command line).
pub fn with_argv(argv: &[OsString]) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|p| p.argv == argv)
        .map(|p| p.pid)
        .collect()
}

/// Makes sure no process runs with `argv`: waits `grace` for them to exit
/// on their own, then sends SIGTERM, then SIGKILL. Returns the pids that
/// had to be signalled.
pub fn end_leftovers(argv: &[OsString], grace: Duration) -> Vec<i32> {
    if !wait_gone(argv, grace) {
        let pids = with_argv(argv);
        signal_all(&pids, Signal::SIGTERM);
        if !wait_gone(argv, grace) {
            signal_all(&with_argv(argv), Signal::SIGKILL);
        }
        return pids;
    }
    Vec::new()
}

fn wait_gone(argv: &[OsString], limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        if with_argv(argv).is_empty() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        sleep(Duration::from_millis(20));
    }
}

fn signal_all(pids: &[i32], sig: Signal) {
    for &pid in pids {
        // It may have exited meanwhile; nothing to do then.
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_of(pid: i32, argv: &[&str]) -> Proc {
        Proc {
            pid,
            argv: argv.iter().map(OsString::from).collect(),
        }
    }

    #[test]
    fn splits_cmdline() {
        assert_eq!(
            split_cmdline(b"memfs\0-o\0size=1M\0/mnt\0"),
            vec!["memfs", "-o", "size=1M", "/mnt"]
        );
    }

    #[test]
    fn finds_the_serving_process() {
        let procs = [
            proc_of(10, &["/usr/bin/vi", "/mnt/x"]),
            proc_of(11, &["/opt/bin/memfs", "-o", "size=1M", "none", "/mnt/y"]),
            proc_of(12, &["/opt/bin/memfs", "none", "/mnt/x"]),
        ];
        assert_eq!(fs_pid(&procs, "memfs", Path::new("/mnt/x")), Some(12));
        assert_eq!(fs_pid(&procs, "memfs", Path::new("/mnt/y")), Some(11));
        assert_eq!(fs_pid(&procs, "hellofs", Path::new("/mnt/x")), None);
    }

    #[test]
    fn sees_itself_not() {
        let me = std::process::id() as i32;
        assert!(processes().iter().all(|p| p.pid != me));
    }
}
