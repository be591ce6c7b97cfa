//! The file systems compared by the nullfs suite, all over one backing directory on the root
//! file system, and the guard that unmounts them.
//!
//! Each run gets a fresh, empty backing directory; the guard unmounts the FUSE target, waits for
//! its daemon to exit and only then removes the backing directory, and only when no mount is
//! left at or below it (so a removal never walks into a mounted file system).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::targets::{find_daemon, mount_type, process_alive, run_mount_command, unmount_path};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// The backing directory itself (ext4 under /var/tmp by default).
    Native,
    /// nullfs with kernel passthrough (its default) and aio=uring.
    NullfsPt,
    /// nullfs with `-o nopassthrough,aio=uring`: all data through the daemon.
    NullfsUring,
    /// nullfs with `-o nopassthrough,aio=posix`.
    NullfsPosix,
    /// nullfs with `-o nopassthrough,aio=linux`: kernel AIO for O_DIRECT opens, worker
    /// threads for the rest.
    NullfsLinux,
    /// nullfs with `-o nopassthrough,aio=threads`.
    NullfsThreads,
    Bindfs,
    Mergerfs,
}

impl Target {
    pub const ALL: [Target; 8] = [
        Target::Native,
        Target::NullfsPt,
        Target::NullfsUring,
        Target::NullfsPosix,
        Target::NullfsLinux,
        Target::NullfsThreads,
        Target::Bindfs,
        Target::Mergerfs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Native => "native",
            Target::NullfsPt => "nullfs-pt",
            Target::NullfsUring => "nullfs-uring",
            Target::NullfsPosix => "nullfs-posix",
            Target::NullfsLinux => "nullfs-linux",
            Target::NullfsThreads => "nullfs-threads",
            Target::Bindfs => "bindfs",
            Target::Mergerfs => "mergerfs",
        }
    }

    pub fn parse(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == s)
    }

    pub fn is_nullfs(self) -> bool {
        !matches!(self, Target::Native | Target::Bindfs | Target::Mergerfs)
    }

    /// The program that mounts this target, if it is a FUSE file system.
    fn program(self, nullfs: &Path) -> Option<PathBuf> {
        match self {
            Target::Native => None,
            Target::Bindfs => Some("bindfs".into()),
            Target::Mergerfs => Some("mergerfs".into()),
            _ => Some(nullfs.to_path_buf()),
        }
    }

    /// `-o` options for this target (before the user's extra ones).
    fn options(self) -> Vec<&'static str> {
        match self {
            Target::NullfsPt => vec!["aio=uring"],
            Target::NullfsUring => vec!["nopassthrough", "aio=uring"],
            Target::NullfsPosix => vec!["nopassthrough", "aio=posix"],
            Target::NullfsLinux => vec!["nopassthrough", "aio=linux"],
            Target::NullfsThreads => vec!["nopassthrough", "aio=threads"],
            _ => vec![],
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where backing directories and the mount point go, and the nullfs binary.
pub struct Env {
    pub base: PathBuf,
    pub nullfs: PathBuf,
    /// Extra `-o` options per FUSE program: nullfs, bindfs, mergerfs.
    pub nullfs_opts: Option<String>,
    pub bindfs_opts: Option<String>,
    pub mergerfs_opts: Option<String>,
}

impl Env {
    /// Makes the base directory (canonical from here on) and the mount point.
    pub fn prepare(&mut self) -> Result<(), String> {
        fs::create_dir_all(&self.base)
            .map_err(|e| format!("mkdir {}: {e}", self.base.display()))?;
        self.base = self
            .base
            .canonicalize()
            .map_err(|e| format!("{}: {e}", self.base.display()))?;
        let mp = self.mountpoint();
        if !mp.is_dir() {
            fs::create_dir(&mp).map_err(|e| format!("mkdir {}: {e}", mp.display()))?;
        }
        Ok(())
    }

    fn mountpoint(&self) -> PathBuf {
        self.base.join("mnt")
    }

    fn backing(&self) -> PathBuf {
        self.base.join("backing")
    }

    fn extra_opts(&self, t: Target) -> Option<&String> {
        match t {
            Target::Native => None,
            Target::Bindfs => self.bindfs_opts.as_ref(),
            Target::Mergerfs => self.mergerfs_opts.as_ref(),
            _ => self.nullfs_opts.as_ref(),
        }
    }

    /// A fresh, empty backing directory with `t` mounted over it (or, for native, the directory).
    pub fn mount(&self, t: Target) -> Result<Mounted, String> {
        let backing = self.backing();
        if backing.exists() {
            return Err(format!(
                "{} is left over from an earlier run: remove it first",
                backing.display()
            ));
        }
        fs::create_dir(&backing).map_err(|e| format!("mkdir {}: {e}", backing.display()))?;
        let mut guard = Mounted {
            target: t,
            path: backing.clone(),
            backing,
            mounted: false,
            pid: None,
        };
        let Some(program) = t.program(&self.nullfs) else {
            return Ok(guard);
        };
        let mp = self.mountpoint();
        let mut opts: Vec<String> = t.options().into_iter().map(String::from).collect();
        opts.extend(self.extra_opts(t).cloned());
        let mut cmd = Command::new(&program);
        if !opts.is_empty() {
            cmd.arg("-o").arg(opts.join(","));
        }
        cmd.arg(&guard.backing).arg(&mp);
        run_mount_command(cmd, t.name())?;
        guard.mounted = true;
        guard.path = mp.clone();
        wait_fuse_mounted(&mp)?;
        let name = program.file_name().map(|n| n.to_os_string());
        guard.pid = find_daemon(|argv| {
            argv.first()
                .is_some_and(|a| Path::new(a).file_name().map(|n| n.to_os_string()) == name)
                && argv.iter().skip(1).any(|a| Path::new(a) == mp)
        });
        Ok(guard)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // rmdir only: a directory that is still a mount point (or not empty) stays.
        let _ = fs::remove_dir(self.mountpoint());
        let _ = fs::remove_dir(&self.base);
    }
}

fn wait_fuse_mounted(mp: &Path) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if mount_type(mp).is_some_and(|t| t == "fuse" || t.starts_with("fuse.")) {
            return Ok(());
        }
        sleep(Duration::from_millis(10));
    }
    Err(format!(
        "{}: no FUSE mount appeared within 5 s",
        mp.display()
    ))
}

/// True if any mount point is `dir` or lies below it.
fn has_mount_under(dir: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return true;
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| Path::new(mp).starts_with(dir))
}

/// One run's target. Dropping it unmounts, waits for the daemon and removes the backing data.
pub struct Mounted {
    target: Target,
    path: PathBuf,
    backing: PathBuf,
    mounted: bool,
    pid: Option<i32>,
}

impl Mounted {
    /// Where the workload runs.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    pub fn unmount(mut self) -> Result<(), String> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.mounted {
            self.mounted = false;
            if let Err(e) = unmount_path(&self.path) {
                problems.push(e);
            }
        }
        if let Some(pid) = self.pid.take() {
            let start = Instant::now();
            while process_alive(pid) && start.elapsed() < Duration::from_secs(10) {
                sleep(Duration::from_millis(5));
            }
            if process_alive(pid) {
                problems.push(format!(
                    "{} daemon (pid {pid}) still running 10 s after unmount",
                    self.target
                ));
            }
        }
        if self.backing.exists() {
            if has_mount_under(&self.backing) {
                problems.push(format!(
                    "{} still has a mount under it: left in place",
                    self.backing.display()
                ));
            } else if let Err(e) = fs::remove_dir_all(&self.backing) {
                problems.push(format!("remove {}: {e}", self.backing.display()));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("puffs-bench nullfs: teardown of {}: {e}", self.target);
        }
    }
}
