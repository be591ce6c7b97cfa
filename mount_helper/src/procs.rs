//! Finding file system processes by their command lines.
//!
//! The kernel does not say which process serves a FUSE mount, so we look for
//! it: a puffs file system is started as `TYPE [-f] [-o OPTS] [SOURCE]
//! MOUNTPOINT`, so a process whose program is named TYPE and which has the
//! mount point as an argument is the one. A relative argument is taken
//! relative to the process's working directory as it is now (a daemon moves
//! to /, so a relative path is resolved against where it was started only
//! while it runs in the foreground). When several mounts stack on one mount
//! point, the one mounted first (lower in the table) belongs to the process
//! started first. Needs /proc (Linux); elsewhere nothing is found.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A running process and its arguments.
pub struct Proc {
    /// Its process id.
    pub pid: i32,
    /// Its command line.
    pub argv: Vec<OsString>,
    /// Its working directory, when it can be read.
    pub cwd: Option<PathBuf>,
    /// When it started, in clock ticks after boot (orders processes).
    pub start: u64,
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
                cwd: std::fs::read_link(format!("/proc/{pid}/cwd")).ok(),
                start: start_time(pid).unwrap_or(u64::MAX),
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

/// Field 22 of /proc/PID/stat, after the command name (which may hold
/// spaces and parentheses, so split after its last ')').
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_comm) = stat.rsplit_once(')')?;
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// The pid of the `fstype` process serving `mountpoint`, if one is found,
/// leaving out the pids in `taken` (those of mounts below on the same mount
/// point): the earliest started of the others.
pub fn fs_pid(procs: &[Proc], fstype: &str, mountpoint: &Path, taken: &[i32]) -> Option<i32> {
    procs
        .iter()
        .filter(|p| !taken.contains(&p.pid) && serves(p, fstype, mountpoint))
        .min_by_key(|p| (p.start, p.pid))
        .map(|p| p.pid)
}

fn serves(p: &Proc, fstype: &str, mountpoint: &Path) -> bool {
    let Some((program, args)) = p.argv.split_first() else {
        return false;
    };
    let named = Path::new(program).file_name() == Some(std::ffi::OsStr::new(fstype));
    named && args.iter().any(|a| names(p, Path::new(a), mountpoint))
}

/// Whether the argument `arg` of process `p` names `mountpoint`.
fn names(p: &Proc, arg: &Path, mountpoint: &Path) -> bool {
    if arg.is_absolute() {
        return normalize(arg) == mountpoint;
    }
    p.cwd
        .as_ref()
        .is_some_and(|cwd| normalize(&cwd.join(arg)) == mountpoint)
}

/// `path` without `.` components and trailing slashes (`..` is left, as it
/// may cross a symbolic link).
fn normalize(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
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
            cwd: Some(PathBuf::from("/")),
            start: pid as u64,
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
        assert_eq!(fs_pid(&procs, "memfs", Path::new("/mnt/x"), &[]), Some(12));
        assert_eq!(fs_pid(&procs, "memfs", Path::new("/mnt/y"), &[]), Some(11));
        assert_eq!(fs_pid(&procs, "hellofs", Path::new("/mnt/x"), &[]), None);
    }

    #[test]
    fn relative_arguments_resolve_against_the_cwd() {
        let mut p = proc_of(20, &["memfs", "./m/"]);
        p.cwd = Some(PathBuf::from("/tmp/d"));
        assert_eq!(fs_pid(&[p], "memfs", Path::new("/tmp/d/m"), &[]), Some(20));
    }

    #[test]
    fn stacked_mounts_go_to_processes_in_start_order() {
        let mut late = proc_of(30, &["memfs", "/mnt/s"]);
        late.start = 900;
        let mut early = proc_of(31, &["memfs", "/mnt/s"]);
        early.start = 100;
        let procs = [late, early];
        let first = fs_pid(&procs, "memfs", Path::new("/mnt/s"), &[]);
        assert_eq!(first, Some(31));
        assert_eq!(
            fs_pid(&procs, "memfs", Path::new("/mnt/s"), &[31]),
            Some(30)
        );
    }

    #[test]
    fn reads_its_own_start_time() {
        let me = std::process::id() as i32;
        let t = start_time(me).expect("start time of this process");
        assert!(t > 0 && t < u64::MAX);
    }

    #[test]
    fn sees_itself_not() {
        let me = std::process::id() as i32;
        assert!(processes().iter().all(|p| p.pid != me));
    }
}
