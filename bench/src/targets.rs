//! The three file systems under test and how each is mounted and unmounted.
//!
//! Every mount is owned by a [`Mounted`] guard whose `Drop` unmounts it (and the tmpfs that backs
//! bindfs), so a failing workload, an early `return` or a panic never leaves a mount behind. Only
//! `rmdir` is ever used on directories: nothing here deletes recursively, so a mount that could not
//! be removed is never walked into.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Size given to every tmpfs (the native target and the one under bindfs) and to memfs.
const FS_SIZE: &str = "4G";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Memfs,
    Tmpfs,
    Bindfs,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Memfs, Kind::Tmpfs, Kind::Bindfs];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Memfs => "memfs",
            Kind::Tmpfs => "tmpfs",
            Kind::Bindfs => "bindfs",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Kernel caching wanted from a FUSE mount. tmpfs has no such knob and ignores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caching {
    /// The file system's own defaults (memfs: whatever it chooses; bindfs: libfuse's 1 s timeouts).
    Default,
    /// `attr_timeout=0,entry_timeout=0`: every lookup and every stat goes to the daemon.
    Uncached,
}

/// Where mounts go and which memfs binary to run.
pub struct Env {
    pub base: PathBuf,
    pub memfs: PathBuf,
    /// Extra `-o` options appended for memfs (for measuring levers).
    pub memfs_opts: Option<String>,
    /// Extra `-o` options appended for bindfs.
    pub bindfs_opts: Option<String>,
}

impl Env {
    /// Creates the base directory and one mount point per target.
    pub fn create(
        base: PathBuf,
        memfs: PathBuf,
        memfs_opts: Option<String>,
        bindfs_opts: Option<String>,
    ) -> Result<Env, String> {
        fs::create_dir_all(&base).map_err(|e| format!("mkdir {}: {e}", base.display()))?;
        let env = Env {
            base,
            memfs,
            memfs_opts,
            bindfs_opts,
        };
        for d in Self::DIRS {
            let p = env.base.join(d);
            if !p.is_dir() {
                fs::create_dir(&p).map_err(|e| format!("mkdir {}: {e}", p.display()))?;
            }
        }
        Ok(env)
    }

    const DIRS: [&'static str; 4] = ["memfs", "tmpfs", "bindfs", "bindfs-backing"];

    fn dir(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    /// Mounts a fresh, empty instance of `kind`.
    pub fn mount(&self, kind: Kind, caching: Caching) -> Result<Mounted, String> {
        match kind {
            Kind::Tmpfs => {
                let mp = self.dir("tmpfs");
                mount_tmpfs(&mp)?;
                Ok(Mounted::new(kind, mp, None, None))
            }
            Kind::Bindfs => {
                let backing = self.dir("bindfs-backing");
                let mp = self.dir("bindfs");
                mount_tmpfs(&backing)?;
                // From here on the guard owns the backing tmpfs too.
                let mut guard = Mounted::new(kind, mp.clone(), Some(backing.clone()), None);
                guard.active = false;
                let mut opts: Vec<String> = Vec::new();
                if caching == Caching::Uncached {
                    opts.push("attr_timeout=0,entry_timeout=0".into());
                }
                if let Some(o) = &self.bindfs_opts {
                    opts.push(o.clone());
                }
                let mut cmd = Command::new("bindfs");
                if !opts.is_empty() {
                    cmd.arg("-o").arg(opts.join(","));
                }
                cmd.arg(&backing).arg(&mp);
                run_mount_command(cmd, "bindfs")?;
                guard.active = true;
                wait_mounted(&mp, "fuse")?;
                guard.pid = find_daemon(|argv| {
                    argv.first().is_some_and(|a| a.ends_with("bindfs"))
                        && argv.iter().any(|a| Path::new(a) == mp)
                });
                Ok(guard)
            }
            Kind::Memfs => {
                let mp = self.dir("memfs");
                let mut opts = vec![format!("size={FS_SIZE}")];
                if caching == Caching::Uncached {
                    opts.push("attr_timeout=0,entry_timeout=0".into());
                }
                if let Some(o) = &self.memfs_opts {
                    opts.push(o.clone());
                }
                let mut cmd = Command::new(&self.memfs);
                cmd.arg("-o").arg(opts.join(",")).arg(&mp);
                let mut guard = Mounted::new(kind, mp.clone(), None, None);
                guard.active = false;
                run_mount_command(cmd, "memfs")?;
                guard.active = true;
                wait_mounted(&mp, "fuse.memfs")?;
                let exe = self.memfs.clone();
                guard.pid = find_daemon(|argv| {
                    argv.first().is_some_and(|a| {
                        Path::new(a) == exe || Path::new(a).file_name() == exe.file_name()
                    }) && argv.iter().skip(1).any(|a| Path::new(a) == mp)
                });
                Ok(guard)
            }
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // rmdir only: a directory that is still a mount point (or not empty) stays.
        for d in Self::DIRS {
            let _ = fs::remove_dir(self.base.join(d));
        }
        let _ = fs::remove_dir(&self.base);
    }
}

fn mount_tmpfs(dir: &Path) -> Result<(), String> {
    let data = format!("size={FS_SIZE}");
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| format!("mount -t tmpfs {}: {e}", dir.display()))
}

pub(crate) fn run_mount_command(mut cmd: Command, what: &str) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot run {shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what}: {shown} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ));
    }
    Ok(())
}

/// The file system type of the mount at `mp`, if `mp` is a mount point (last one wins).
pub fn mount_type(mp: &Path) -> Option<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = mp.to_str()?;
    let mut found = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 7 || unescape_mountinfo(fields[4]) != want {
            continue;
        }
        if let Some(sep) = fields.iter().position(|f| *f == "-") {
            if let Some(t) = fields.get(sep + 1) {
                found = Some((*t).to_string());
            }
        }
    }
    found
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

pub fn wait_mounted(mp: &Path, fstype: &str) -> Result<(), String> {
    let start = Instant::now();
    loop {
        match mount_type(mp) {
            Some(t) if t == fstype => return Ok(()),
            Some(t) if start.elapsed() > Duration::from_secs(5) => {
                return Err(format!(
                    "{}: mounted as {t}, expected {fstype}",
                    mp.display()
                ))
            }
            None if start.elapsed() > Duration::from_secs(5) => {
                return Err(format!(
                    "{}: no {fstype} mount appeared within 5 s",
                    mp.display()
                ))
            }
            _ => sleep(Duration::from_millis(10)),
        }
    }
}

/// Scans /proc for the process whose argv matches (the daemonized file system).
pub fn find_daemon(matches: impl Fn(&[String]) -> bool) -> Option<i32> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !argv.is_empty() && matches(&argv) && process_alive(pid) {
            found.push(pid);
        }
    }
    // A daemonizing parent may linger for a moment; the daemon is the newest (highest) pid
    // unless pids wrapped, which is rare enough for a benchmark.
    found.into_iter().max()
}

/// True while `pid` exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the command name, which is in parentheses and may contain spaces.
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// `VmRSS` of `pid` in bytes.
/// CPU time (user + system, all threads) process `pid` has used so far, in seconds.
pub fn cpu_time(pid: i32) -> Result<f64, String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("read /proc/{pid}/stat: {e}"))?;
    // Fields after the command name (in parentheses, may contain spaces): utime and stime
    // are the 14th and 15th fields of the line, the 12th and 13th after the name.
    let rest = stat.rfind(')').map(|i| &stat[i + 1..]).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64, String> {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: no field {i}"))
    };
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(11)? + ticks(12)?) / hz)
}

pub fn vm_rss(pid: i32) -> Result<u64, String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("read /proc/{pid}/status: {e}"))?;
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kib: u64 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .map_err(|e| format!("VmRSS of {pid}: {e}"))?;
            return Ok(kib * 1024);
        }
    }
    Err(format!("no VmRSS in /proc/{pid}/status"))
}

/// A mounted target. Dropping it unmounts (and waits for a FUSE daemon to exit).
pub struct Mounted {
    kind: Kind,
    mountpoint: PathBuf,
    backing: Option<PathBuf>,
    pid: Option<i32>,
    active: bool,
}

impl Mounted {
    fn new(kind: Kind, mountpoint: PathBuf, backing: Option<PathBuf>, pid: Option<i32>) -> Self {
        Mounted {
            kind,
            mountpoint,
            backing,
            pid,
            active: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The daemon's pid (FUSE targets), if it was found.
    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    /// Unmounts now, reporting problems (Drop does the same but can only print them).
    pub fn unmount(mut self) -> Result<(), String> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.active {
            self.active = false;
            if let Err(e) = unmount_path(&self.mountpoint) {
                problems.push(e);
            }
            if let Some(pid) = self.pid.take() {
                if let Err(e) = wait_exit(pid, self.kind) {
                    problems.push(e);
                }
            }
        }
        if let Some(b) = self.backing.take() {
            if let Err(e) = unmount_path(&b) {
                problems.push(e);
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
            eprintln!("puffs-bench: unmount {}: {e}", self.kind);
        }
    }
}

/// Unmounts `mp` if it is a mount point: retries while busy, then detaches lazily.
pub(crate) fn unmount_path(mp: &Path) -> Result<(), String> {
    if mount_type(mp).is_none() {
        return Ok(());
    }
    let mut last = Errno::UnknownErrno;
    for _ in 0..50 {
        match umount2(mp, MntFlags::empty()) {
            Ok(()) => return Ok(()),
            Err(Errno::EBUSY) => {
                last = Errno::EBUSY;
                sleep(Duration::from_millis(100));
            }
            Err(Errno::EINVAL) if mount_type(mp).is_none() => return Ok(()),
            Err(e) => {
                last = e;
                break;
            }
        }
    }
    umount2(mp, MntFlags::MNT_DETACH)
        .map_err(|e| format!("umount {}: {last}, then lazy umount: {e}", mp.display()))?;
    Err(format!(
        "umount {}: {last}; detached lazily instead",
        mp.display()
    ))
}

/// Waits for a FUSE daemon to exit after its unmount; terminates it (by its pid) if it lingers.
fn wait_exit(pid: i32, kind: Kind) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if !process_alive(pid) {
            return Ok(());
        }
        sleep(Duration::from_millis(5));
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    sleep(Duration::from_secs(1));
    if process_alive(pid) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    Err(format!(
        "{kind} daemon (pid {pid}) still running 10 s after unmount; sent SIGTERM"
    ))
}
