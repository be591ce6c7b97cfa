//! Shared helpers for the integration tests: is FUSE usable here, where are the built
//! binaries, temp mount points that are always unmounted, and waiting with a bound.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod target;
pub use target::{targets, Both, Fs, Target, TargetMount};

/// Why FUSE cannot be used here, or None when it can.
pub fn fuse_unavailable() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("/dev/fuse does not exist (load the fuse module)".into());
    }
    if !nix::unistd::geteuid().is_root() {
        return Some("the tests mount as root and are not root".into());
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        return Some(format!("cannot open /dev/fuse: {e}"));
    }
    None
}

/// Skips the test (returns early) when FUSE is unavailable, printing why; under CI
/// (env CI set) it fails instead, since CI must run the real thing.
#[macro_export]
macro_rules! require_fuse {
    () => {
        if let Some(why) = $crate::fuse_unavailable() {
            if std::env::var_os("CI").is_some() {
                panic!("FUSE is required under CI but unavailable: {why}");
            }
            eprintln!("skipped: {why}");
            return;
        }
    };
}

/// The directory holding the workspace's built binaries (target/debug or release):
/// the test executable lives in its deps/ subdirectory.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// Path of the workspace binary `name`; panics with the build command if it is missing.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --workspace --bins` before the tests",
        p.display()
    );
    p
}

/// Whether `dir` is a mount point now, according to /proc/self/mountinfo.
pub fn is_mounted(dir: &Path) -> bool {
    mount_entry(dir).is_some()
}

/// The mountinfo fields (fstype, source) of the mount on `dir`, if any.
pub fn mount_entry(dir: &Path) -> Option<(String, String)> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let want = dir.to_string_lossy().replace(' ', "\\040");
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        (fields.get(4) == Some(&want.as_str()))
            .then(|| (fields[sep + 1].to_string(), fields[sep + 2].to_string()))
    })
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A temporary mount point that is unmounted (lazily, so it never blocks) and removed
/// when dropped, whether the test passed or not.
pub struct MountPoint {
    dir: tempfile::TempDir,
}

impl MountPoint {
    pub fn new() -> Self {
        MountPoint {
            dir: tempfile::Builder::new()
                .prefix("puffs-test-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Path of `name` inside the mount.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Unmounts (umount2 without flags); Err if the kernel refuses. EBUSY is retried
    /// for up to a second: tests run side by side, and a sibling test's child between
    /// fork and exec briefly holds copies of this test's fds (close-on-exec closes them
    /// only at the exec), which keeps the mount busy for that moment.
    pub fn unmount(&self) -> nix::Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            match nix::mount::umount(self.path()) {
                Err(nix::errno::Errno::EBUSY) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                r => return r,
            }
        }
    }
}

impl Default for MountPoint {
    fn default() -> Self {
        MountPoint::new()
    }
}

impl Drop for MountPoint {
    fn drop(&mut self) {
        while is_mounted(self.path()) {
            if nix::mount::umount2(self.path(), nix::mount::MntFlags::MNT_DETACH).is_err() {
                break;
            }
        }
    }
}

/// Runs a command to completion with a bound on its run time; panics on timeout.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let end = Instant::now() + timeout;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{cmd:?} ran past {timeout:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A mounted example file system (started with `bin`, daemonized) on its own temp
/// mount point; unmounted when dropped.
pub struct Mounted {
    pub mnt: MountPoint,
}

impl Mounted {
    /// Mounts `fs` (a binary name such as "memfs") with `-o opts` (may be empty).
    pub fn new(fs: &str, opts: &str) -> Self {
        Mounted::mount(fs, opts, None)
    }

    /// Mounts `fs` (a null layer such as "nullfs") over the directory `backing`.
    pub fn over(fs: &str, opts: &str, backing: &Path) -> Self {
        Mounted::mount(fs, opts, Some(backing))
    }

    fn mount(fs: &str, opts: &str, source: Option<&Path>) -> Self {
        let mnt = MountPoint::new();
        let mut cmd = Command::new(bin(fs));
        if !opts.is_empty() {
            cmd.arg("-o").arg(opts);
        }
        cmd.args(source).arg(mnt.path());
        let out = run_bounded(&mut cmd, Duration::from_secs(20));
        assert!(
            out.status.success(),
            "{fs} failed to mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            is_mounted(mnt.path()),
            "{fs} exited 0 but nothing is mounted"
        );
        Mounted { mnt }
    }

    pub fn path(&self) -> &Path {
        self.mnt.path()
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.mnt.join(name)
    }
}

/// Pids of processes whose command line mentions `needle` (to find a daemon, or to
/// prove none was left behind).
pub fn pids_with_arg(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if is_zombie(pid) {
            continue;
        }
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// Whether `pid` has exited and only waits to be reaped (it holds nothing any more).
pub fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// A native tmpfs mounted on its own temp dir (the reference a FUSE file system is
/// compared with); unmounted when dropped.
pub struct Tmpfs {
    pub mnt: MountPoint,
}

impl Tmpfs {
    /// Mounts tmpfs with the mount data `opts` (e.g. "size=64M,nr_inodes=100"; may be empty).
    pub fn new(opts: &str) -> Self {
        let mnt = MountPoint::new();
        let data = (!opts.is_empty()).then_some(opts);
        nix::mount::mount(
            Some("tmpfs"),
            mnt.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            data,
        )
        .expect("mount tmpfs");
        Tmpfs { mnt }
    }

    pub fn path(&self) -> &Path {
        self.mnt.path()
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.mnt.join(name)
    }
}

/// The errno of an io::Error (0 when it carries none).
pub fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// The errno of a failed result, or 0 when it succeeded.
pub fn errno_or_zero<T>(r: &std::io::Result<T>) -> i32 {
    r.as_ref().err().map_or(0, errno_of)
}

/// Runs `f` in a forked child that first takes the supplementary `groups`, then `gid`,
/// then `uid`; returns what `f` returned (the child's exit status, 0..=255), or 255 if
/// `f` panicked or the credentials could not be taken. `f` should use plain system
/// calls (the child of a multi-threaded process must not print or take locks another
/// thread may hold) and report failure as a small code, such as an errno.
pub fn run_as(uid: u32, gid: u32, groups: &[u32], f: impl FnOnce() -> i32) -> i32 {
    use nix::unistd::{fork, ForkResult, Gid, Uid};
    let groups: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
    // SAFETY: the child runs only `f` (documented to use plain system calls) and
    // leaves with _exit, never returning into the test harness.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if nix::unistd::setgroups(&groups).is_err()
                    || nix::unistd::setgid(Gid::from_raw(gid)).is_err()
                    || nix::unistd::setuid(Uid::from_raw(uid)).is_err()
                {
                    return 255;
                }
                f()
            }))
            .unwrap_or(255);
            // SAFETY: _exit ends the child at once, running no atexit handlers or
            // destructors that belong to the parent's state.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => match nix::sys::wait::waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => code,
            other => panic!("child {child} did not exit normally: {other:?}"),
        },
    }
}

/// The calling thread's errno after a failed libc call.
pub fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The errno of a libc call returning -1 on failure, 0 for success.
pub fn sys(ret: libc::c_int) -> i32 {
    if ret == -1 {
        last_errno()
    } else {
        0
    }
}

/// A C string, for libc calls.
pub fn cstr(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s).unwrap()
}

/// The names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// lstat(2) of `p`, which must exist.
pub fn lstat(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()))
}

/// A C string of a path, for libc calls.
pub fn cpath(p: &Path) -> std::ffi::CString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

/// Makes the kernel drop its unused dentries and inodes (echo 2 >
/// /proc/sys/vm/drop_caches), so a FUSE file system receives FORGETs for every node
/// nobody holds and must answer fresh lookups. Page cache is left alone.
pub fn drop_dentries_and_inodes() {
    std::fs::write("/proc/sys/vm/drop_caches", b"2").expect("write /proc/sys/vm/drop_caches");
}

/// A file system mounted in this process on a temp dir, its mainloop on a thread of its
/// own: `mount` builds the mount (settings, `mount(dir)`) on that thread, where the fs
/// then lives. Dropping it stops the loop, detaches the mount and joins the thread.
pub struct InProcessMount {
    /// Where it is mounted.
    pub mnt: MountPoint,
    stop: puffs::ExitHandle,
    /// The loop's thread, which returns the mainloop's result.
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl InProcessMount {
    /// Mounts with `mount` on a new thread and serves there; panics if it fails.
    pub fn start<F: puffs::Ops>(
        mount: impl FnOnce(&Path) -> Result<puffs::Mounted<F>, puffs::Error> + Send + 'static,
    ) -> InProcessMount {
        let mnt = MountPoint::new();
        let dir = mnt.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || match mount(&dir) {
            Ok(mounted) => {
                let _ = tx.send(Ok(mounted.exit_handle()));
                mounted.mainloop().map_err(|e| e.to_string())
            }
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                Err(e.to_string())
            }
        });
        let stop = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the mount thread answers")
            .expect("the file system mounts");
        InProcessMount {
            mnt,
            stop,
            thread: Some(thread),
        }
    }

    /// A path inside the mount.
    pub fn join(&self, name: &str) -> PathBuf {
        self.mnt.join(name)
    }

    /// Waits for the mainloop to return (after an exit or an unmount): its result.
    pub fn wait(&mut self) -> Result<(), String> {
        self.thread
            .take()
            .expect("waited for once")
            .join()
            .unwrap_or_else(|_| Err("the mainloop thread panicked".into()))
    }

    /// Reads file `name` of the mount as text (a probe's scenario report).
    pub fn read_text(&self, name: &str) -> String {
        let text = std::fs::read(self.join(name)).expect("the file reads");
        String::from_utf8_lossy(&text).into_owned()
    }
}

impl Drop for InProcessMount {
    fn drop(&mut self) {
        self.stop.exit();
        let _ = nix::mount::umount2(self.mnt.path(), nix::mount::MntFlags::MNT_DETACH);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
