//! The life of a file system process: daemonizing (success and each kind of failure),
//! staying in the foreground, and ending cleanly on signals and on `umount`; plus
//! hellofs, the smallest example, mounted read-only.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use puffs_tests::*;

const GONE_WITHIN: Duration = Duration::from_secs(10);

/// The one file system process (memfs or hellofs) serving the mount at `dir`; helper
/// processes (such as fusermount3 for auto_unmount) are not counted.
fn daemon_pid(dir: &Path) -> i32 {
    let pids: Vec<i32> = pids_with_arg(&dir.to_string_lossy())
        .into_iter()
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            ["memfs", "hellofs"].contains(&comm.trim())
        })
        .collect();
    assert_eq!(
        pids.len(),
        1,
        "expected exactly one process serving {}, found {pids:?}",
        dir.display()
    );
    pids[0]
}

/// Whether `pid` no longer runs (gone, or a zombie waiting for init to reap it).
fn ended(pid: i32) -> bool {
    is_zombie(pid)
}

/// Mounts memfs, sends `sig` to its daemon and checks the mount and process go away.
/// With `hold_open`, a file in the mount stays open throughout: the mount must still
/// leave the name space at once (lazily detached), and the daemon end within its grace
/// period for such users.
fn signal_ends_daemon(sig: Signal, hold_open: bool) {
    let m = Mounted::new("memfs", "");
    std::fs::write(m.join("f"), b"data").unwrap();
    let open = hold_open.then(|| std::fs::File::open(m.join("f")).unwrap());
    let pid = daemon_pid(m.path());
    kill(Pid::from_raw(pid), sig).unwrap();
    assert!(
        wait_until(Duration::from_secs(2), || !is_mounted(m.path())),
        "still mounted 2 s after {sig}"
    );
    assert!(
        wait_until(GONE_WITHIN, || ended(pid)),
        "memfs (pid {pid}) still runs {GONE_WITHIN:?} after {sig}"
    );
    drop(open);
}

#[test]
fn sigterm_unmounts_and_exits() {
    puffs_tests::require_fuse!();
    signal_ends_daemon(Signal::SIGTERM, false);
}

#[test]
fn sigterm_with_a_file_open_unmounts_and_exits() {
    puffs_tests::require_fuse!();
    signal_ends_daemon(Signal::SIGTERM, true);
}

#[test]
fn sigint_unmounts_and_exits() {
    puffs_tests::require_fuse!();
    signal_ends_daemon(Signal::SIGINT, false);
}

#[test]
fn sighup_unmounts_and_exits() {
    puffs_tests::require_fuse!();
    signal_ends_daemon(Signal::SIGHUP, false);
}

#[test]
fn umount_command_ends_daemon() {
    puffs_tests::require_fuse!();
    let m = Mounted::new("memfs", "");
    std::fs::create_dir(m.join("d")).unwrap();
    let pid = daemon_pid(m.path());
    let out = run_bounded(
        Command::new("umount").arg(m.path()),
        Duration::from_secs(10),
    );
    assert!(
        out.status.success(),
        "umount failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !is_mounted(m.path()),
        "umount returned but the mount is there"
    );
    assert!(
        wait_until(GONE_WITHIN, || ended(pid)),
        "memfs (pid {pid}) still runs {GONE_WITHIN:?} after umount"
    );
}

/// Kills (by its pid) and reaps a child this test started, unless it already ended.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits for a child with a bound; None if it still runs.
fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let mut status = None;
    wait_until(timeout, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    status
}

/// Output of a daemonizing command whose parent must exit within `timeout` and whose
/// stdout/stderr must reach end-of-file within `timeout` too (the daemon child must
/// not keep them open). Panics otherwise.
fn run_daemonizing(cmd: &mut Command, timeout: Duration) -> (ExitStatus, String, String) {
    let mut child = ChildGuard(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let start = Instant::now();
    let status = wait_child(&mut child.0, timeout)
        .unwrap_or_else(|| panic!("{cmd:?}: the parent did not exit within {timeout:?}"));
    let (tx, rx) = mpsc::channel();
    for (i, mut pipe) in [
        Box::new(child.0.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.0.stderr.take().unwrap()),
    ]
    .into_iter()
    .enumerate()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            let _ = tx.send((i, text));
        });
    }
    let mut texts = [String::new(), String::new()];
    for _ in 0..2 {
        let left = timeout.saturating_sub(start.elapsed());
        let (i, text) = rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!(
                "{cmd:?}: stdout/stderr still open {timeout:?} after start (held by the daemon?)"
            )
        });
        texts[i] = text;
    }
    let [out, err] = texts;
    (status, out, err)
}

#[test]
fn daemonize_success_returns_mounted_with_stdio_closed() {
    puffs_tests::require_fuse!();
    let mnt = MountPoint::new();
    let (status, out, err) = run_daemonizing(
        Command::new(bin("memfs"))
            .args(["-o", "size=16M"])
            .arg("lifecycle-src")
            .arg(mnt.path()),
        Duration::from_secs(10),
    );
    assert!(status.success(), "memfs exited {status}: {err}");
    assert!(
        out.is_empty() && err.is_empty(),
        "chatty success: {out:?} {err:?}"
    );
    let (fstype, source) = mount_entry(mnt.path()).expect("mounted once memfs exited 0");
    assert_eq!(fstype, "fuse.memfs");
    assert_eq!(source, "lifecycle-src");
    // The daemon serves, and stays after its parent left.
    std::fs::write(mnt.join("x"), b"hello").unwrap();
    assert_eq!(std::fs::read(mnt.join("x")).unwrap(), b"hello");
    let pid = daemon_pid(mnt.path());
    assert!(!ended(pid));
    // size=16M is in effect.
    let vfs = nix::sys::statvfs::statvfs(mnt.path()).unwrap();
    let bytes = vfs.blocks() as u64 * vfs.fragment_size() as u64;
    assert!(
        (15 << 20..=17 << 20).contains(&bytes),
        "statvfs says {bytes} bytes for size=16M"
    );
    mnt.unmount().unwrap();
    assert!(wait_until(GONE_WITHIN, || ended(pid)));
}

/// Runs memfs expecting a failure; returns its stderr.
fn expect_failure(args: &[&std::ffi::OsStr], needle: &str) -> String {
    let (status, _out, err) = run_daemonizing(
        Command::new(bin("memfs")).args(args),
        Duration::from_secs(10),
    );
    assert!(!status.success(), "memfs {args:?} succeeded");
    assert_eq!(status.code(), Some(1), "memfs {args:?}: {status}, {err}");
    assert!(
        wait_until(Duration::from_secs(2), || pids_with_arg(needle).is_empty()),
        "a process with {needle} in its arguments outlived the failed mount: {:?}",
        pids_with_arg(needle)
    );
    err
}

#[test]
fn daemonize_fails_on_missing_directory() {
    puffs_tests::require_fuse!();
    let parent = MountPoint::new();
    let missing = parent.join("no-such-dir-4711");
    let err = expect_failure(&[missing.as_os_str()], "no-such-dir-4711");
    assert!(
        err.contains(&*missing.to_string_lossy()),
        "message does not name the path: {err}"
    );
    assert!(err.contains("does not exist"), "message: {err}");
    assert!(!is_mounted(&missing));
}

#[test]
fn daemonize_fails_on_file_as_mount_point() {
    puffs_tests::require_fuse!();
    let parent = MountPoint::new();
    let file = parent.join("plain-file-4712");
    std::fs::write(&file, b"").unwrap();
    let err = expect_failure(&[file.as_os_str()], "plain-file-4712");
    assert!(err.contains(&*file.to_string_lossy()), "message: {err}");
    assert!(err.contains("not a directory"), "message: {err}");
    assert!(!is_mounted(&file));
}

#[test]
fn unknown_option_is_refused_by_name() {
    puffs_tests::require_fuse!();
    let mnt = MountPoint::new();
    let err = expect_failure(
        &[
            "-o".as_ref(),
            "size=8M,frobnicate4713=3".as_ref(),
            mnt.path().as_os_str(),
        ],
        "frobnicate4713",
    );
    assert!(err.contains("frobnicate4713"), "message: {err}");
    assert!(!is_mounted(mnt.path()));
}

#[test]
fn bad_size_option_is_refused() {
    puffs_tests::require_fuse!();
    let mnt = MountPoint::new();
    let err = expect_failure(
        &[
            "-o".as_ref(),
            "size=lots4714".as_ref(),
            mnt.path().as_os_str(),
        ],
        "lots4714",
    );
    assert!(
        err.contains("size"),
        "message does not name the option: {err}"
    );
    assert!(!is_mounted(mnt.path()));
}

#[test]
fn foreground_stays_until_unmounted() {
    puffs_tests::require_fuse!();
    let mnt = MountPoint::new();
    let mut child = ChildGuard(
        Command::new(bin("memfs"))
            .arg("-f")
            .arg(mnt.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn memfs -f"),
    );
    assert!(
        wait_until(Duration::from_secs(10), || is_mounted(mnt.path())),
        "memfs -f did not mount within 10 s"
    );
    // It is the foreground process itself that serves: no fork.
    assert_eq!(daemon_pid(mnt.path()), child.0.id() as i32);
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "memfs -f exited while mounted"
    );
    std::fs::write(mnt.join("f"), b"fg").unwrap();
    assert_eq!(std::fs::read(mnt.join("f")).unwrap(), b"fg");
    mnt.unmount().unwrap();
    let status =
        wait_child(&mut child.0, GONE_WITHIN).expect("memfs -f still runs 10 s after umount");
    assert!(status.success(), "memfs -f exited {status} after umount");
}

#[test]
fn foreground_sigterm_exits_zero() {
    puffs_tests::require_fuse!();
    let mnt = MountPoint::new();
    let mut child = ChildGuard(
        Command::new(bin("memfs"))
            .arg("-f")
            .arg(mnt.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn memfs -f"),
    );
    assert!(wait_until(Duration::from_secs(10), || is_mounted(
        mnt.path()
    )));
    kill(Pid::from_raw(child.0.id() as i32), Signal::SIGTERM).unwrap();
    let status = wait_child(&mut child.0, GONE_WITHIN).expect("memfs -f survived SIGTERM");
    assert!(status.success(), "memfs -f exited {status} on SIGTERM");
    assert!(!is_mounted(mnt.path()));
}

/// A SIGTERM sent the moment the mount shows in /proc unmounts it (exit 0): the handler
/// is in place before mount(2), not after the INIT handshake, so no signal can kill a
/// process whose mount is up. Rounds, since each hits the window only sometimes.
#[test]
fn sigterm_the_moment_the_mount_shows_unmounts_it() {
    puffs_tests::require_fuse!();
    for round in 0..15 {
        let mnt = MountPoint::new();
        let mut child = ChildGuard(
            Command::new(bin("memfs"))
                .arg("-f")
                .arg(mnt.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn memfs -f"),
        );
        let end = Instant::now() + Duration::from_secs(10);
        while !is_mounted(mnt.path()) {
            assert!(Instant::now() < end, "memfs -f did not mount within 10 s");
            std::thread::yield_now();
        }
        kill(Pid::from_raw(child.0.id() as i32), Signal::SIGTERM).unwrap();
        let status = wait_child(&mut child.0, GONE_WITHIN).expect("memfs -f survived SIGTERM");
        assert!(
            status.success(),
            "round {round}: memfs -f exited {status} on SIGTERM"
        );
        assert!(!is_mounted(mnt.path()));
    }
}

#[test]
fn hellofs_reads_lists_and_refuses_writes() {
    puffs_tests::require_fuse!();
    let m = Mounted::new("hellofs", "");
    let (fstype, _) = mount_entry(m.path()).unwrap();
    assert_eq!(fstype, "fuse.hellofs");

    assert_eq!(
        std::fs::read_to_string(m.join("hello")).unwrap(),
        "Hello, world!\n"
    );
    let meta = std::fs::metadata(m.join("hello")).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.len(), 14);
    assert_eq!(meta.mode() & 0o7777, 0o444);

    let mut names: Vec<String> = std::fs::read_dir(m.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["hello"]);

    let erofs = |r: std::io::Result<()>| errno_or_zero(&r);
    assert_eq!(
        erofs(
            std::fs::OpenOptions::new()
                .write(true)
                .open(m.join("hello"))
                .map(drop)
        ),
        libc::EROFS,
        "open for write"
    );
    assert_eq!(
        erofs(std::fs::write(m.join("new"), b"x")),
        libc::EROFS,
        "create"
    );
    assert_eq!(
        erofs(std::fs::create_dir(m.join("dir"))),
        libc::EROFS,
        "mkdir"
    );
    assert_eq!(
        erofs(std::fs::remove_file(m.join("hello"))),
        libc::EROFS,
        "unlink"
    );
    assert_eq!(
        errno_or_zero(&std::fs::metadata(m.join("nothing"))),
        libc::ENOENT
    );

    let vfs = nix::sys::statvfs::statvfs(m.path()).expect("statvfs on hellofs");
    assert!(
        vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
        "hellofs is mounted ro: {:?}",
        vfs.flags()
    );
}

#[test]
fn hellofs_sigterm_unmounts() {
    puffs_tests::require_fuse!();
    let m = Mounted::new("hellofs", "");
    let pid = daemon_pid(m.path());
    kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    assert!(wait_until(GONE_WITHIN, || !is_mounted(m.path())));
    assert!(wait_until(GONE_WITHIN, || ended(pid)));
}

#[test]
fn help_exits_zero_and_usage_errors_exit_one() {
    puffs_tests::require_fuse!();
    let out = run_bounded(
        Command::new(bin("memfs")).arg("--help"),
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "memfs --help: {}", out.status);
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["Usage", "MOUNTPOINT", "size=", "inodes=", "-f"] {
        assert!(
            help.contains(word),
            "--help does not mention {word}: {help}"
        );
    }
    for args in [&[][..], &["a", "b", "c"][..]] {
        let out = run_bounded(
            Command::new(bin("memfs")).args(args),
            Duration::from_secs(10),
        );
        assert_eq!(out.status.code(), Some(1), "memfs {args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Usage"),
            "memfs {args:?} says: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn fsname_and_subtype_show_in_the_mount_table() {
    puffs_tests::require_fuse!();
    let m = Mounted::new("memfs", "fsname=scratch4715,subtype=scratchfs");
    let (fstype, source) = mount_entry(m.path()).unwrap();
    assert_eq!(fstype, "fuse.scratchfs");
    assert_eq!(source, "scratch4715");
}

#[test]
fn umount_of_a_busy_mount_is_refused_and_it_keeps_serving() {
    puffs_tests::require_fuse!();
    let m = Mounted::new("memfs", "");
    std::fs::write(m.join("f"), b"busy").unwrap();
    let open = std::fs::File::open(m.join("f")).unwrap();
    let pid = daemon_pid(m.path());
    assert_eq!(m.mnt.unmount(), Err(nix::errno::Errno::EBUSY));
    assert!(is_mounted(m.path()));
    assert!(!ended(pid));
    assert_eq!(std::fs::read(m.join("f")).unwrap(), b"busy");
    drop(open);
    m.mnt.unmount().unwrap();
    assert!(wait_until(GONE_WITHIN, || ended(pid)));
}

/// `stat` of `p` in a child process, bounded (a dead file system must fail calls, not
/// hang them): Ok on success, else what stat said.
fn stat_bounded(p: &Path) -> Result<(), String> {
    let out = run_bounded(Command::new("stat").arg(p), Duration::from_secs(10));
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn sigkill_leaves_a_dead_mount_that_umount_clears() {
    puffs_tests::require_fuse!();
    let m = Mounted::new("memfs", "");
    std::fs::write(m.join("f"), b"x").unwrap();
    let pid = daemon_pid(m.path());
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    assert!(wait_until(GONE_WITHIN, || ended(pid)));
    // Nothing else may hold the connection open: calls fail at once.
    let err = stat_bounded(&m.join("f")).expect_err("stat on a dead mount succeeded");
    assert!(err.contains("not connected"), "stat on a dead mount: {err}");
    let out = run_bounded(
        Command::new("umount").arg(m.path()),
        Duration::from_secs(10),
    );
    assert!(
        out.status.success(),
        "umount of a dead mount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!is_mounted(m.path()));
}

#[test]
fn sigkill_with_auto_unmount_clears_the_mount() {
    puffs_tests::require_fuse!();
    // auto_unmount is fusermount3's work: without it the mount fails, and says so.
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("fusermount3").exists()));
    if !on_path {
        assert!(
            std::env::var_os("CI").is_none(),
            "fusermount3 is required under CI (install fuse3)"
        );
        eprintln!("skipped: fusermount3 is not installed (install fuse3)");
        return;
    }
    let m = Mounted::new("memfs", "auto_unmount");
    let pid = daemon_pid(m.path());
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    assert!(wait_until(GONE_WITHIN, || ended(pid)));
    assert!(
        wait_until(GONE_WITHIN, || !is_mounted(m.path())),
        "auto_unmount: still mounted {GONE_WITHIN:?} after the daemon was killed"
    );
    // Whatever did the unmount has finished too.
    assert!(wait_until(GONE_WITHIN, || pids_with_arg(
        &m.path().to_string_lossy()
    )
    .is_empty()));
}
