//! memfs (and nullfs, rot13fs: see `suite!` below) against a native tmpfs where the
//! kernel's semantics are subtle and the FUSE protocol has to carry them exactly:
//! open(O_TRUNC) (atomic, in every access mode),
//! set-uid/set-gid and file capabilities taken away by writes, truncates and chowns
//! (the fs does it: FUSE_HANDLE_KILLPRIV_V2), and a log that stays quiet about what
//! the fs does not implement.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use puffs_tests::*;

puffs_tests::suite! {
    // What a write does (through the aio backend when passthrough is off, or by the
    // kernel to the backing file when on): memfs, nullfs with and without passthrough
    // on each backend, rot13fs.
    data on [memfs, nullfs, nullfs_uring, nullfs_posix, nullfs_linux, nullfs_threads, rot13fs] {
        modifying_a_file_clears_set_ids_compare_with_tmpfs,
        modifying_a_file_drops_its_capabilities_compare_with_tmpfs,
        group_member_write_keeps_set_gid_without_group_exec,
    }
    // Opens, truncates and chowns: no data through the backend, once per file system.
    meta on [memfs, nullfs, rot13fs] {
        o_trunc_with_every_access_mode_compare_with_tmpfs,
        truncate_of_an_empty_file_open_for_writing_compare_with_tmpfs,
        chown_clears_set_ids_compare_with_tmpfs,
    }
}
// memfs only, as plain tests below: unimplemented_requests_and_shutdown_are_quiet,
// debug_log_shows_each_request_once and writes_do_not_each_ask_for_capabilities read
// the log of a memfs run in the foreground (its own messages and fuser's -d lines).

fn ts(sec: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: sec,
        tv_nsec: 0,
    }
}

/// Sets atime 100 and mtime 200 on `p`.
fn age(p: &Path) {
    let c = cpath(p);
    let times = [ts(100), ts(200)];
    // SAFETY: a valid path and two timespecs.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
    assert_eq!(r, 0, "utimensat {}", p.display());
}

fn ctime(p: &Path) -> (i64, i64) {
    let m = fs::metadata(p).unwrap();
    (m.ctime(), m.ctime_nsec())
}

/// Runs `step` on `p` after ageing it, and tells (size, mtime moved, ctime moved).
fn time_effect(p: &Path, step: impl FnOnce()) -> (u64, bool, bool) {
    age(p);
    let c0 = ctime(p);
    // Past the coarse clock's tick, so a change shows.
    std::thread::sleep(Duration::from_millis(25));
    step();
    let m = fs::metadata(p).unwrap();
    (m.len(), m.mtime() != 200, ctime(p) != c0)
}

/// open(path, flags) and close; 0 or the errno.
fn open_close(p: &Path, flags: i32) -> i32 {
    let c = cpath(p);
    // SAFETY: a valid path; the fd is closed at once.
    unsafe {
        let fd = libc::open(c.as_ptr(), flags);
        if fd < 0 {
            return last_errno();
        }
        libc::close(fd);
    }
    0
}

// ---------------------------------------------------------------------------------
// O_TRUNC

/// open(O_TRUNC) of an existing file truncates it and moves mtime and ctime, even when
/// it was already empty and whatever the access mode (O_RDONLY|O_TRUNC truncates too
/// on Linux). memfs used to guess O_TRUNC from "an OPEN, then a size-0 SETATTR from the
/// same pid", which missed O_RDONLY.
fn o_trunc_with_every_access_mode_compare_with_tmpfs(t: &Target) {
    let both = Both::new(t, "allow_other", "size=64M");
    let modes = [
        ("O_RDONLY", libc::O_RDONLY),
        ("O_WRONLY", libc::O_WRONLY),
        ("O_RDWR", libc::O_RDWR),
    ];
    let got = both.check("open(O_TRUNC)", |root| {
        let mut rows = Vec::new();
        for (name, acc) in modes {
            for content in [&b""[..], b"some data"] {
                let p = root.join(format!("{name}-{}", content.len()));
                fs::write(&p, content).unwrap();
                let mut err = 0;
                let effect = time_effect(&p, || err = open_close(&p, acc | libc::O_TRUNC));
                rows.push((name, content.len(), err, effect));
            }
        }
        rows
    });
    for (name, len, err, effect) in got {
        assert_eq!(err, 0, "{name} of a {len}-byte file");
        assert_eq!(effect, (0, true, true), "{name} of a {len}-byte file");
    }
}

/// truncate(2) to the size it has of an empty file that some process holds open for
/// writing changes nothing (tmpfs has no pages to drop); ftruncate does move the
/// times. memfs used to take the truncate(2) for the open's O_TRUNC.
fn truncate_of_an_empty_file_open_for_writing_compare_with_tmpfs(t: &Target) {
    let both = Both::new(t, "allow_other", "size=64M");
    let got = both.check("truncate(2) and ftruncate of an empty open file", |root| {
        let p = root.join("empty");
        fs::write(&p, b"").unwrap();
        let c = cpath(&p);
        // The open comes right before the truncate (no request in between), as in
        // `fd = open(p, O_WRONLY); truncate(p, 0)`.
        let mut held = None;
        let by_path = time_effect(&p, || {
            held = Some(OpenOptions::new().write(true).open(&p).unwrap());
            // SAFETY: a valid path.
            assert_eq!(unsafe { libc::truncate(c.as_ptr(), 0) }, 0);
        });
        let held = held.unwrap();
        let by_fd = time_effect(&p, || held.set_len(0).unwrap());
        (by_path, by_fd)
    });
    assert_eq!(got, ((0, false, false), (0, true, true)));
}

// ---------------------------------------------------------------------------------
// set-uid, set-gid and file capabilities

const NOBODY: u32 = 65534;
const OTHER: u32 = 65533;

/// What a scenario does to its file, and as whom.
#[derive(Clone, Copy, Debug)]
enum Act {
    Write,
    Truncate,
    Ftruncate,
    OpenTrunc,
    Fallocate,
}

fn act(p: &std::ffi::CStr, act: Act) -> i32 {
    // SAFETY: a valid path; the fd is closed before returning.
    unsafe {
        if let Act::Truncate = act {
            return if libc::truncate(p.as_ptr(), 1) == 0 {
                0
            } else {
                last_errno()
            };
        }
        let flags = match act {
            Act::OpenTrunc => libc::O_WRONLY | libc::O_TRUNC,
            _ => libc::O_WRONLY,
        };
        let fd = libc::open(p.as_ptr(), flags);
        if fd < 0 {
            return last_errno();
        }
        let ok = match act {
            Act::Write => libc::write(fd, b"y".as_ptr().cast(), 1) == 1,
            Act::Ftruncate => libc::ftruncate(fd, 0) == 0,
            Act::Fallocate => libc::fallocate(fd, 0, 0, 8192) == 0,
            _ => true,
        };
        let e = if ok { 0 } else { last_errno().max(1) };
        libc::close(fd);
        e
    }
}

/// Each scenario: the file's mode and owner, who acts (uid = gid), and the act.
const SCENARIOS: &[(&str, u32, u32, u32, Act)] = &[
    (
        "write by the owner, 6775",
        0o6775,
        NOBODY,
        NOBODY,
        Act::Write,
    ),
    (
        "write by the owner, 6765",
        0o6765,
        NOBODY,
        NOBODY,
        Act::Write,
    ),
    ("write by another, 2767", 0o2767, NOBODY, OTHER, Act::Write),
    ("write by another, 4777", 0o4777, NOBODY, OTHER, Act::Write),
    ("write by root, 6775", 0o6775, NOBODY, 0, Act::Write),
    (
        "truncate(2) by the owner",
        0o6775,
        NOBODY,
        NOBODY,
        Act::Truncate,
    ),
    ("truncate(2) by root", 0o6775, NOBODY, 0, Act::Truncate),
    (
        "ftruncate by the owner",
        0o6775,
        NOBODY,
        NOBODY,
        Act::Ftruncate,
    ),
    (
        "open O_TRUNC by the owner",
        0o6775,
        NOBODY,
        NOBODY,
        Act::OpenTrunc,
    ),
    (
        "open O_TRUNC by the owner, 6765",
        0o6765,
        NOBODY,
        NOBODY,
        Act::OpenTrunc,
    ),
    ("open O_TRUNC by root", 0o6775, NOBODY, 0, Act::OpenTrunc),
    (
        "fallocate by the owner",
        0o6775,
        NOBODY,
        NOBODY,
        Act::Fallocate,
    ),
];

/// With FUSE_HANDLE_KILLPRIV_V2 the kernel leaves clearing set-uid/set-gid to the fs
/// (and fuser drops the FATTR_KILL_SUIDGID and FUSE_OPEN_KILL_SUIDGID hints), so memfs
/// must apply the kernel's rules itself on every path that modifies a file.
fn modifying_a_file_clears_set_ids_compare_with_tmpfs(t: &Target) {
    let both = Both::new(t, "allow_other", "size=64M");
    let got = both.check("set-uid/set-gid after each act", |root| {
        let d = root.join("pub");
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
        let mut rows = Vec::new();
        for (i, &(name, mode, owner, who, a)) in SCENARIOS.iter().enumerate() {
            let p = d.join(format!("f{i}"));
            fs::write(&p, b"data").unwrap();
            std::os::unix::fs::chown(&p, Some(owner), Some(owner)).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            let c = cpath(&p);
            let code = if who == 0 {
                act(&c, a)
            } else {
                run_as(who, who, &[], || act(&c, a))
            };
            let after = fs::metadata(&p).unwrap().mode() & 0o7777;
            rows.push((name, code, format!("{after:o}")));
        }
        rows
    });
    let row = |n: &str| got.iter().find(|r| r.0 == n).unwrap().2.clone();
    assert_eq!(row("write by the owner, 6775"), "775");
    assert_eq!(row("write by root, 6775"), "6775");
    assert_eq!(row("open O_TRUNC by the owner"), "775");
}

/// chown of a non-directory clears set-uid (and set-gid with group-execute) whoever
/// does it, root included; a directory keeps both.
fn chown_clears_set_ids_compare_with_tmpfs(t: &Target) {
    let both = Both::new(t, "allow_other", "size=64M");
    let got = both.check("mode after chown", |root| {
        let mode = |p: &Path| format!("{:o}", fs::metadata(p).unwrap().mode() & 0o7777);
        let f = root.join("f");
        fs::write(&f, b"x").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o6775)).unwrap();
        std::os::unix::fs::chown(&f, Some(NOBODY), Some(NOBODY)).unwrap();
        let by_root = mode(&f);
        // The owner changes the group to its own group (a chown to the same ids).
        let g = root.join("g");
        fs::write(&g, b"x").unwrap();
        std::os::unix::fs::chown(&g, Some(NOBODY), Some(NOBODY)).unwrap();
        fs::set_permissions(&g, fs::Permissions::from_mode(0o6755)).unwrap();
        fs::set_permissions(root, fs::Permissions::from_mode(0o777)).unwrap();
        let gc = cpath(&g);
        // SAFETY: a valid path.
        let code = run_as(NOBODY, NOBODY, &[], || unsafe {
            if libc::chown(gc.as_ptr(), u32::MAX, NOBODY) == 0 {
                0
            } else {
                last_errno()
            }
        });
        let d = root.join("d");
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o2755)).unwrap();
        std::os::unix::fs::chown(&d, Some(NOBODY), Some(NOBODY)).unwrap();
        (by_root, code, mode(&g), mode(&d))
    });
    assert_eq!(got.0, "775", "chown of a 6775 file by root");
}

/// A valid version-2 `security.capability` value (CAP_NET_RAW permitted).
fn caps_value() -> Vec<u8> {
    let words: [u32; 5] = [0x0200_0000, 1 << 13, 0, 0, 0];
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn has_caps(p: &Path) -> bool {
    let c = cpath(p);
    let name = c"security.capability";
    // SAFETY: valid strings; a null buffer of size 0 asks only for the size.
    unsafe { libc::getxattr(c.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) > 0 }
}

/// A write, a truncate or a chown takes file capabilities away, even when root does it
/// (security_inode_killpriv); a read does not.
fn modifying_a_file_drops_its_capabilities_compare_with_tmpfs(t: &Target) {
    let both = Both::new(t, "allow_other", "size=64M");
    let got = both.check("security.capability after each act", |root| {
        let mut rows = Vec::new();
        type Act = (&'static str, fn(&Path));
        let acts: [Act; 4] = [
            ("read", |p| {
                let mut s = Vec::new();
                File::open(p).unwrap().read_to_end(&mut s).unwrap();
            }),
            ("write", |p| fs::write(p, b"new").unwrap()),
            ("truncate", |p| {
                OpenOptions::new()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .set_len(1)
                    .unwrap()
            }),
            ("chown", |p| {
                std::os::unix::fs::chown(p, Some(NOBODY), None).unwrap()
            }),
        ];
        for (name, a) in acts {
            let p = root.join(name);
            fs::write(&p, b"data").unwrap();
            let c = cpath(&p);
            let v = caps_value();
            // SAFETY: valid strings and buffer.
            let set = unsafe {
                libc::setxattr(
                    c.as_ptr(),
                    c"security.capability".as_ptr(),
                    v.as_ptr().cast(),
                    v.len(),
                    0,
                )
            };
            assert_eq!(set, 0, "setxattr security.capability: {}", last_errno());
            let before = has_caps(&p);
            a(&p);
            rows.push((name, before, has_caps(&p)));
        }
        rows
    });
    assert!(
        got.iter().all(|r| r.1),
        "the capabilities were set: {got:?}"
    );
    assert_eq!(got[0], ("read", true, true));
    assert_eq!(got[1], ("write", true, false));
}

// ---------------------------------------------------------------------------------
// A quiet log

/// memfs in the foreground with its log in a file; killed (by pid) and unmounted when
/// dropped.
struct Foreground {
    mnt: MountPoint,
    child: Child,
    log: PathBuf,
    _logdir: tempfile::TempDir,
}

impl Foreground {
    fn start(args: &[&str]) -> Self {
        let mnt = MountPoint::new();
        let logdir = tempfile::tempdir().unwrap();
        let log = logdir.path().join("stderr");
        let child = Command::new(bin("memfs"))
            .args(args)
            .arg(mnt.path())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("start memfs");
        let fg = Foreground {
            mnt,
            child,
            log,
            _logdir: logdir,
        };
        assert!(
            wait_until(Duration::from_secs(10), || is_mounted(fg.mnt.path())),
            "memfs did not mount: {}",
            fg.log()
        );
        fg
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `sig` and waits (bounded) for a clean exit; returns the log.
    fn stop_with(mut self, sig: nix::sys::signal::Signal) -> String {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
        let exited = wait_until(Duration::from_secs(10), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        assert!(exited, "memfs did not exit on {sig}: {}", self.log());
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "memfs exited with {status}: {}",
            self.log()
        );
        self.log()
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// ioctl(fd, cmd): 0 or the errno.
fn ioctl(fd: i32, cmd: libc::c_ulong) -> i32 {
    let mut arg = [0u8; 8];
    // SAFETY: an open fd and an 8-byte buffer for whatever the command writes.
    if unsafe { libc::ioctl(fd, cmd, arg.as_mut_ptr()) } == 0 {
        0
    } else {
        last_errno()
    }
}

/// Requests the fs does not implement (here: ioctl) are answered as tmpfs answers
/// them, without a warning per request; a signalled shutdown logs no error.
#[test]
fn unimplemented_requests_and_shutdown_are_quiet() {
    require_fuse!();
    let tmpfs = Tmpfs::new("size=1M");
    let unknown: libc::c_ulong = 0x1234;
    for sig in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGHUP,
    ] {
        let fg = Foreground::start(&["-f"]);
        let (p, q) = (fg.mnt.join("f"), tmpfs.join("f"));
        fs::write(&p, b"x").unwrap();
        fs::write(&q, b"x").unwrap();
        let (f, g) = (File::open(&p).unwrap(), File::open(&q).unwrap());
        for _ in 0..50 {
            assert_eq!(
                ioctl(f.as_raw_fd(), unknown),
                ioctl(g.as_raw_fd(), unknown),
                "errno of an unknown ioctl: memfs (left), tmpfs (right)"
            );
        }
        drop(f);
        let log = fg.stop_with(sig);
        let noisy: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        assert!(noisy.is_empty(), "after {sig}: {noisy:#?}");
    }
}

/// With -d each request shows once with its arguments (fuser's line), its outcome once
/// (ours), and the INIT capability chatter stays out.
#[test]
fn debug_log_shows_each_request_once() {
    require_fuse!();
    let fg = Foreground::start(&["-d"]);
    assert!(fs::metadata(fg.mnt.join("findme-once")).is_err());
    let log = fg.stop_with(nix::sys::signal::Signal::SIGTERM);
    let named = log.lines().filter(|l| l.contains("findme-once")).count();
    assert_eq!(named, 1, "lines naming the looked-up file:\n{log}");
    assert!(
        log.lines().any(|l| l.contains("<- Lookup ENOENT")),
        "no outcome line for the lookup:\n{log}"
    );
    let chatter = log.lines().filter(|l| l.contains("capability")).count();
    assert_eq!(chatter, 0, "INIT chatter at debug level:\n{log}");
}

/// A set-gid file written by a member of its group who lacks group-execute keeps the
/// bit (only an outsider's write clears it then): the rule is the kernel's, not "clear
/// everything".
fn group_member_write_keeps_set_gid_without_group_exec(t: &Target) {
    let both = Both::new(t, "allow_other", "size=64M");
    let got = both.check("mode after a member's write", |root| {
        let p = root.join("f");
        fs::write(&p, b"x").unwrap();
        std::os::unix::fs::chown(&p, Some(NOBODY), Some(OTHER)).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o2766)).unwrap();
        let c = cpath(&p);
        let code = run_as(NOBODY, NOBODY, &[OTHER], || act(&c, Act::Write));
        (code, fs::metadata(&p).unwrap().mode() & 0o7777)
    });
    assert_eq!(got, (0, 0o2766));
}

/// With FUSE_HANDLE_KILLPRIV_V2 negotiated the kernel asks for `security.capability`
/// before the first write to an inode only, not before every write (each ask is a
/// round trip: +1 request per 1 MiB written). Counted in the -d log, which shows every
/// request fuser receives.
#[test]
fn writes_do_not_each_ask_for_capabilities() {
    require_fuse!();
    let fg = Foreground::start(&["-d"]);
    let p = fg.mnt.join("f");
    {
        let f = File::create(&p).unwrap();
        for i in 0..8u64 {
            std::os::unix::fs::FileExt::write_all_at(&f, &[7u8; 4096], i * 4096).unwrap();
        }
    }
    assert_eq!(fs::metadata(&p).unwrap().len(), 8 * 4096);
    let log = fg.stop_with(nix::sys::signal::Signal::SIGTERM);
    let count = |what: &str| log.lines().filter(|l| l.contains(what)).count();
    assert_eq!(count(" WRITE "), 8, "eight WRITE requests:\n{log}");
    let asks = count("GETXATTR name \"security.capability\"");
    assert!(asks <= 1, "{asks} GETXATTRs for 8 writes:\n{log}");
}
