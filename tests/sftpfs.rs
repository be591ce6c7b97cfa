//! sftpfs against a real OpenSSH sftp-server (run directly through `-o sftp_server=`,
//! and once over a real sshd on 127.0.0.1), and against a fake server that lies.
//! Needs Debian's openssh-sftp-server (and openssh-server + openssh-client for the
//! sshd test): skipped with a reason when missing, failed under CI.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use puffs_tests::*;

const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// Skips (fails under CI) when a program the test needs is missing.
macro_rules! require_program {
    ($path:expr) => {
        if !Path::new($path).exists() {
            let why = format!(
                "{} is missing (Debian openssh-sftp-server / openssh-server)",
                $path
            );
            if std::env::var_os("CI").is_some() {
                panic!("required under CI: {why}");
            }
            eprintln!("skipped: {why}");
            return;
        }
    };
}

/// A remote directory served by its own sftp-server (reached through a symlink with a
/// unique path, so the test can find and kill exactly its server), mounted by sftpfs.
struct Sftp {
    mnt: MountPoint,
    _tmp: tempfile::TempDir,
    remote: PathBuf,
    server: PathBuf,
}

impl Sftp {
    fn new(opts: &str) -> Self {
        Self::launched(opts, |_, server| {
            format!("sftp_server={}", server.display())
        })
    }

    /// Mounted with the server behind [`COUNTING_RELAY`], which holds each reply
    /// `delay_ms` and each WRITE request `write_delay_ms`; returns the file the relay keeps its counts in (see [`counts`]).
    fn relayed(delay_ms: u32, write_delay_ms: u32, opts: &str) -> (Self, PathBuf) {
        let mut stats = PathBuf::new();
        let s = Self::launched(opts, |tmp, server| {
            let relay = tmp.join("relay.py");
            fs::write(&relay, COUNTING_RELAY).unwrap();
            stats = tmp.join("counts");
            format!(
                "ssh_command=python3 {} {} {delay_ms} {write_delay_ms} {}",
                relay.display(),
                stats.display(),
                server.display()
            )
        });
        (s, stats)
    }

    /// Mounted with the server started as `launch` says, given the temp dir and the
    /// server's unique path.
    fn launched(opts: &str, launch: impl FnOnce(&Path, &Path) -> String) -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("sftpfs-remote-")
            .tempdir()
            .unwrap();
        let remote = tmp.path().join("remote");
        fs::create_dir(&remote).unwrap();
        let server = tmp.path().join("sftp-server");
        std::os::unix::fs::symlink(SFTP_SERVER, &server).unwrap();
        let opts = format!(
            "{}{}{opts}",
            launch(tmp.path(), &server),
            if opts.is_empty() { "" } else { "," }
        );
        let mnt = mount_sftpfs(&format!("local:{}", remote.display()), &opts);
        Sftp {
            mnt,
            _tmp: tmp,
            remote,
            server,
        }
    }

    fn join(&self, name: &str) -> PathBuf {
        self.mnt.join(name)
    }

    fn remote(&self, name: &str) -> PathBuf {
        self.remote.join(name)
    }

    /// The pid of this mount's sftp-server process(es): those run as our symlink
    /// (sftpfs's own command line names it too, in an option).
    fn server_pids(&self) -> Vec<i32> {
        let me = self.server.to_string_lossy();
        pids_with_arg(&me)
            .into_iter()
            .filter(|pid| {
                let argv0 = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                argv0.split(|b| *b == 0).next() == Some(me.as_bytes())
            })
            .collect()
    }

    fn signal_server(&self, sig: nix::sys::signal::Signal) {
        let pids = self.server_pids();
        assert!(!pids.is_empty(), "no sftp-server process found");
        for pid in pids {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
        }
    }
}

fn mount_sftpfs(source: &str, opts: &str) -> MountPoint {
    let mnt = MountPoint::new();
    let mut cmd = Command::new(bin("sftpfs"));
    cmd.arg("-o").arg(opts).arg(source).arg(mnt.path());
    let out = run_bounded(&mut cmd, Duration::from_secs(20));
    assert!(
        out.status.success(),
        "sftpfs failed to mount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        is_mounted(mnt.path()),
        "sftpfs exited 0 but nothing is mounted"
    );
    mnt
}

fn errno<T>(r: std::io::Result<T>) -> i32 {
    errno_or_zero(&r)
}

/// Deterministic pseudo-random bytes (xorshift64*), as random as the test needs.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha256(p: &Path) -> String {
    let out = run_bounded(Command::new("sha256sum").arg(p), Duration::from_secs(60));
    assert!(out.status.success(), "sha256sum {}", p.display());
    String::from_utf8_lossy(&out.stdout)
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn file_and_directory_semantics() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    let s = Sftp::new("");

    // create, write, read, append, truncate
    fs::write(s.join("f"), b"hello world").unwrap();
    assert_eq!(fs::read(s.remote("f")).unwrap(), b"hello world");
    assert_eq!(fs::read(s.join("f")).unwrap(), b"hello world");
    OpenOptions::new()
        .append(true)
        .open(s.join("f"))
        .unwrap()
        .write_all(b"!")
        .unwrap();
    assert_eq!(fs::read(s.join("f")).unwrap(), b"hello world!");
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(s.join("f"))
        .unwrap();
    assert_eq!(fs::metadata(s.join("f")).unwrap().len(), 0);
    fs::write(s.join("f"), b"0123456789").unwrap();
    File::options()
        .write(true)
        .open(s.join("f"))
        .unwrap()
        .set_len(4)
        .unwrap();
    assert_eq!(fs::read(s.remote("f")).unwrap(), b"0123");
    // O_EXCL on an existing name
    let r = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(s.join("f"));
    assert_eq!(errno(r), libc::EEXIST);

    // chmod and utimes reach the server
    fs::set_permissions(s.join("f"), fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(fs::metadata(s.remote("f")).unwrap().mode() & 0o777, 0o600);
    let c = cpath(&s.join("f"));
    let times = [
        libc::timespec {
            tv_sec: 1000,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: 2000,
            tv_nsec: 0,
        },
    ];
    // SAFETY: a valid path and two timespecs.
    assert_eq!(
        unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) },
        0
    );
    assert_eq!(fs::metadata(s.remote("f")).unwrap().mtime(), 2000);
    assert_eq!(fs::metadata(s.join("f")).unwrap().mtime(), 2000);

    // directories: mkdir EEXIST, rmdir ENOTEMPTY / ENOTDIR, unlink ENOENT
    fs::create_dir(s.join("d")).unwrap();
    assert_eq!(errno(fs::create_dir(s.join("d"))), libc::EEXIST);
    fs::write(s.join("d/x"), b"x").unwrap();
    assert_eq!(errno(fs::remove_dir(s.join("d"))), libc::ENOTEMPTY);
    assert_eq!(errno(fs::remove_file(s.join("nope"))), libc::ENOENT);
    assert_eq!(errno(fs::metadata(s.join("nope"))), libc::ENOENT);

    // rename: over an existing file (atomic replace), a directory with its subtree,
    // and RENAME_NOREPLACE
    fs::write(s.join("a"), b"a").unwrap();
    fs::write(s.join("b"), b"b").unwrap();
    fs::rename(s.join("a"), s.join("b")).unwrap();
    assert_eq!(fs::read(s.join("b")).unwrap(), b"a");
    assert!(!s.join("a").exists());
    fs::create_dir(s.join("d/sub")).unwrap();
    fs::write(s.join("d/sub/deep"), b"deep").unwrap();
    fs::rename(s.join("d"), s.join("moved")).unwrap();
    assert_eq!(fs::read(s.join("moved/sub/deep")).unwrap(), b"deep");
    assert_eq!(fs::read(s.remote("moved/sub/deep")).unwrap(), b"deep");
    fs::write(s.join("moved/sub/deep"), b"still").unwrap();
    assert_eq!(fs::read(s.remote("moved/sub/deep")).unwrap(), b"still");
    let (from, to) = (cpath(&s.join("b")), cpath(&s.join("f")));
    // SAFETY: two valid paths.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    assert_eq!((r, last_errno()), (-1, libc::EEXIST));
    assert_eq!(fs::read(s.join("b")).unwrap(), b"a");

    // a new file at a path whose node was unlinked while open is a new node
    let mut open = File::open(s.join("b")).unwrap();
    fs::remove_file(s.join("b")).unwrap();
    fs::write(s.join("b"), b"new b").unwrap();
    let mut old = String::new();
    open.read_to_string(&mut old).unwrap();
    assert_eq!(old, "a");
    assert_eq!(fs::read(s.join("b")).unwrap(), b"new b");

    // hard links share data
    fs::hard_link(s.join("b"), s.join("b2")).unwrap();
    fs::write(s.join("b2"), b"via b2").unwrap();
    assert_eq!(fs::read(s.join("b")).unwrap(), b"via b2");

    // fsync and statvfs
    let f = OpenOptions::new().write(true).open(s.join("b")).unwrap();
    f.sync_all().unwrap();
    let st = nix::sys::statvfs::statvfs(s.mnt.path()).unwrap();
    assert!(st.blocks() > 0);

    // copy_file_range stays on the server (copy-data)
    fs::write(s.join("src"), random_bytes(300_000, 7)).unwrap();
    let src = File::open(s.join("src")).unwrap();
    let dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(s.join("dst"))
        .unwrap();
    let mut copied = 0i64;
    while copied < 300_000 {
        // SAFETY: two open fds, null offsets (the fds' own).
        let n = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                std::ptr::null_mut(),
                dst.as_raw_fd(),
                std::ptr::null_mut(),
                1 << 20,
                0,
            )
        };
        assert!(n > 0, "copy_file_range: {}", last_errno());
        copied += n as i64;
    }
    drop(dst);
    assert_eq!(fs::read(s.remote("dst")).unwrap(), random_bytes(300_000, 7));

    // a listing longer than one READDIR reply (OpenSSH sends 100 names each)
    fs::create_dir(s.join("many")).unwrap();
    for i in 0..250 {
        File::create(s.remote(&format!("many/n{i}"))).unwrap();
    }
    let mut names: Vec<String> = fs::read_dir(s.join("many"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 250);
    assert!(names.contains(&"n249".to_string()));
}

#[test]
fn symlinks_from_the_server_are_never_followed_by_the_fs() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    let s = Sftp::new("");
    // Outside the remote directory, where a link could lead the server.
    fs::write(s.remote.parent().unwrap().join("secret"), b"secret").unwrap();
    std::os::unix::fs::symlink("..", s.remote("up")).unwrap();
    std::os::unix::fs::symlink("/", s.remote("root")).unwrap();

    let m = fs::symlink_metadata(s.join("up")).unwrap();
    assert!(m.file_type().is_symlink());
    assert_eq!(fs::read_link(s.join("up")).unwrap(), Path::new(".."));
    // The kernel resolves the target here, relative to the mount: ../secret next to
    // the mount point is not the server's file.
    assert_eq!(errno(fs::read(s.join("up/secret"))), libc::ENOENT);
    assert_eq!(fs::read_link(s.join("root")).unwrap(), Path::new("/"));

    // A symlink made through the mount is stored as given, not resolved.
    std::os::unix::fs::symlink("../../nowhere", s.join("made")).unwrap();
    assert_eq!(
        fs::read_link(s.remote("made")).unwrap(),
        Path::new("../../nowhere")
    );
    // utimensat(AT_SYMLINK_NOFOLLOW) changes the link (lsetstat), not its target.
    fs::write(s.remote("target"), b"t").unwrap();
    std::os::unix::fs::symlink("target", s.remote("l")).unwrap();
    let c = cpath(&s.join("l"));
    let times = [
        libc::timespec {
            tv_sec: 5000,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: 6000,
            tv_nsec: 0,
        },
    ];
    // SAFETY: a valid path and two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(r, 0, "utimensat: {}", last_errno());
    assert_ne!(fs::metadata(s.remote("target")).unwrap().mtime(), 6000);
    assert_eq!(fs::symlink_metadata(s.remote("l")).unwrap().mtime(), 6000);
}

#[test]
fn a_64_mib_random_file_round_trips() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    let s = Sftp::new("");
    let data = random_bytes(64 << 20, 64);
    let t = Instant::now();
    let mut f = File::create(s.join("big")).unwrap();
    for chunk in data.chunks(1 << 20) {
        f.write_all(chunk).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    let wrote = t.elapsed();
    let want = sha256(&s.remote("big"));
    let t = Instant::now();
    let got = sha256(&s.join("big"));
    eprintln!("64 MiB: write+fsync {wrote:?}, read {:?}", t.elapsed());
    assert_eq!(got, want);
    let mut back = Vec::new();
    File::open(s.join("big"))
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert!(back == data, "the data read back differs");
}

#[test]
fn eight_concurrent_readers_and_writers() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    let s = Sftp::new("");
    let shared = random_bytes(3 << 20, 99);
    fs::write(s.remote("shared"), &shared).unwrap();
    std::thread::scope(|scope| {
        for i in 0..8u64 {
            let (s, shared) = (&s, &shared);
            scope.spawn(move || {
                let mine = random_bytes(2 << 20, i + 1);
                let p = s.join(&format!("w{i}"));
                fs::write(&p, &mine).unwrap();
                for _ in 0..2 {
                    assert!(
                        fs::read(&p).unwrap() == mine,
                        "writer {i} read back other data"
                    );
                    assert!(fs::read(s.join("shared")).unwrap() == *shared, "reader {i}");
                }
            });
        }
    });
    for i in 0..8u64 {
        assert!(fs::read(s.remote(&format!("w{i}"))).unwrap() == random_bytes(2 << 20, i + 1));
    }
}

#[test]
fn a_dead_or_silent_server_gives_errors_within_the_deadline() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    use nix::sys::signal::Signal;
    let s = Sftp::new("timeout=2");
    fs::write(s.join("f"), b"x").unwrap();

    // Silent: the server stops; a request fails with ETIMEDOUT after ~2 s, not never.
    s.signal_server(Signal::SIGSTOP);
    let t = Instant::now();
    let r = fs::metadata(s.join("not-cached"));
    let took = t.elapsed();
    assert_eq!(errno(r), libc::ETIMEDOUT);
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "took {took:?}"
    );
    s.signal_server(Signal::SIGCONT);

    // Dead mid-transfer: the writer gets an error soon after, the mount answers.
    let writer = {
        let p = s.join("stream");
        std::thread::spawn(move || -> (i32, Instant) {
            let mut f = File::create(p).unwrap();
            let chunk = vec![7u8; 1 << 20];
            loop {
                if let Err(e) = f.write_all(&chunk) {
                    return (errno_of(&e), Instant::now());
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    s.signal_server(Signal::SIGKILL);
    let (e, when) = writer.join().unwrap();
    assert!(
        matches!(e, libc::ENOTCONN | libc::EIO),
        "write failed with errno {e}"
    );
    assert!(
        when - killed < Duration::from_secs(3),
        "write error came after {:?}",
        when - killed
    );
    let t = Instant::now();
    assert_eq!(errno(fs::metadata(s.join("other"))), libc::ENOTCONN);
    assert!(t.elapsed() < Duration::from_secs(1));
    // No reconnect asked for: the mount stays, answering, until a clean unmount.
    s.mnt.unmount().expect("clean unmount");
}

#[test]
fn reconnect_reopens_open_files() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    use nix::sys::signal::Signal;
    let s = Sftp::new("reconnect,timeout=3");
    fs::write(s.join("f"), b"0123456789").unwrap();
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(s.join("f"))
        .unwrap();
    let mut head = [0u8; 4];
    f.read_exact(&mut head).unwrap();
    let first = s.server_pids();
    s.signal_server(Signal::SIGKILL);
    assert!(wait_until(Duration::from_secs(2), || s
        .server_pids()
        .is_empty()));
    std::thread::sleep(Duration::from_millis(100));

    // Through the same open file: a write at an offset, then fstat and a new file.
    f.seek(SeekFrom::Start(2)).unwrap();
    f.write_all(b"AB").unwrap();
    // Writes are answered once queued (write-behind): fsync waits for the server.
    f.sync_all().unwrap();
    assert_eq!(fs::read(s.remote("f")).unwrap(), b"01AB456789");
    assert_eq!(f.metadata().unwrap().len(), 10);
    fs::write(s.join("g"), b"after").unwrap();
    assert_eq!(fs::read(s.remote("g")).unwrap(), b"after");
    let now = s.server_pids();
    assert!(
        !now.is_empty() && now != first,
        "no new server: {first:?} -> {now:?}"
    );
}

/// A fake SFTP server (Python) that completes the handshake and then answers LSTAT
/// of certain names with a broken reply.
const FAKE_SERVER: &str = r#"
import os, struct, sys, time
inp, out = sys.stdin.buffer, sys.stdout.buffer
def frame(body):
    out.write(struct.pack(">I", len(body)) + body); out.flush()
def read_exact(n):
    b = b""
    while len(b) < n:
        c = inp.read(n - len(b))
        if not c: sys.exit(0)
        b += c
    return b
def s(b): return struct.pack(">I", len(b)) + b
DIR = struct.pack(">II", 4, 0o40755)
while True:
    n = struct.unpack(">I", read_exact(4))[0]
    body = read_exact(n)
    t = body[0]
    if t == 1:
        frame(bytes([2]) + struct.pack(">I", 3)); continue
    rid = body[1:5]
    arg = body[9:9 + struct.unpack(">I", body[5:9])[0]] if len(body) >= 9 else b""
    if t == 16:
        frame(bytes([104]) + rid + struct.pack(">I", 1) + s(b"/") + s(b"") + struct.pack(">I", 0))
    elif t == 17 or (t == 7 and arg == b"/"):
        frame(bytes([105]) + rid + DIR)
    elif arg == b"/short":       # ATTRS that says a size follows, and none does
        frame(bytes([105]) + rid + struct.pack(">I", 1))
    elif arg == b"/names":       # a NAME claiming 2^32-1 entries
        frame(bytes([104]) + rid + struct.pack(">I", 0xffffffff))
    elif arg == b"/wrongtype":   # a HANDLE where ATTRS belongs
        frame(bytes([102]) + rid + s(b"h"))
    elif arg == b"/garbage":     # an unknown message type
        frame(bytes([0x77]) + rid + os.urandom(50))
    elif arg == b"/oversized":   # a length no frame may have
        out.write(struct.pack(">I", 0x7fffffff) + b"\0" * 64); out.flush(); time.sleep(30)
    else:
        frame(bytes([101]) + rid + struct.pack(">I", 2) + s(b"no") + s(b""))
"#;

fn rss_kib(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_lying_server_gets_eio_never_a_panic() {
    require_fuse!();
    if Command::new("python3")
        .arg("-c")
        .arg("0")
        .status()
        .map_or(true, |s| !s.success())
    {
        eprintln!("skipped: python3 is missing (the fake server is a Python script)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("fake_sftp.py");
    fs::write(&script, FAKE_SERVER).unwrap();
    let mnt = mount_sftpfs(
        "fake:/",
        &format!("ssh_command=python3 {},timeout=3", script.display()),
    );
    let daemon = *pids_with_arg(&mnt.path().to_string_lossy())
        .first()
        .unwrap();
    for name in ["short", "names", "wrongtype", "garbage"] {
        let t = Instant::now();
        assert_eq!(errno(fs::metadata(mnt.join(name))), libc::EIO, "{name}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{name} took {:?}",
            t.elapsed()
        );
    }
    assert_eq!(errno(fs::metadata(mnt.join("absent"))), libc::ENOENT);
    // The framing is lost: the channel ends, this request and later ones fail.
    let t = Instant::now();
    assert_eq!(errno(fs::metadata(mnt.join("oversized"))), libc::EIO);
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(errno(fs::metadata(mnt.join("after"))), libc::ENOTCONN);
    assert!(!is_zombie(daemon), "sftpfs died");
    assert!(
        rss_kib(daemon) < 100 * 1024,
        "sftpfs grew to {} KiB",
        rss_kib(daemon)
    );
    mnt.unmount().expect("clean unmount");
}

#[test]
fn bad_sources_and_missing_directories_fail_the_mount() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    let mnt = MountPoint::new();
    for (source, opts) in [
        ("-oProxyCommand=evil:/", ""),
        ("host", ""),
        (
            "local:/nonexistent/dir",
            "sftp_server=/usr/lib/openssh/sftp-server",
        ),
        (
            "local:/etc/passwd",
            "sftp_server=/usr/lib/openssh/sftp-server",
        ),
        ("local:/", "sftp_server=/nonexistent/server"),
        // A server that never answers INIT: the mount gives up after the deadline.
        ("local:/", "ssh_command=sleep 30,timeout=1"),
    ] {
        let t = Instant::now();
        let mut cmd = Command::new(bin("sftpfs"));
        if !opts.is_empty() {
            cmd.arg("-o").arg(opts);
        }
        let out = run_bounded(cmd.arg(source).arg(mnt.path()), Duration::from_secs(10));
        assert!(!out.status.success(), "{source} {opts} mounted");
        assert!(!out.stderr.is_empty(), "{source}: no message");
        assert!(!is_mounted(mnt.path()));
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{source} {opts}: {:?}",
            t.elapsed()
        );
    }
}

#[test]
fn over_a_real_sshd_on_localhost() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    require_program!("/usr/sbin/sshd");
    require_program!("/usr/bin/ssh");
    require_program!("/usr/bin/ssh-keygen");
    let tmp = tempfile::Builder::new()
        .prefix("sftpfs-sshd-")
        .tempdir()
        .unwrap();
    let d = tmp.path();
    for key in ["host_key", "user_key"] {
        let out = run_bounded(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(key)),
            Duration::from_secs(10),
        );
        assert!(
            out.status.success(),
            "ssh-keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = format!(
        "HostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\n\
         PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
         UsePAM no\nStrictModes no\nSubsystem sftp {SFTP_SERVER}\n",
        d = d.display()
    );
    fs::write(d.join("sshd_config"), config).unwrap();
    // sshd wants its privilege separation directory (a runtime dir, not config).
    let _ = fs::create_dir_all("/run/sshd");
    let mut sshd = Command::new("/usr/sbin/sshd")
        .arg("-D")
        .arg("-f")
        .arg(d.join("sshd_config"))
        .args(["-p", &port.to_string(), "-o", "ListenAddress=127.0.0.1"])
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let up = wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    if !up {
        let _ = sshd.kill();
        panic!("sshd did not start: {:?}", sshd.wait());
    }
    let _sshd = Kill(sshd);

    let remote = d.join("remote");
    fs::create_dir(&remote).unwrap();
    fs::write(remote.join("hello"), b"over ssh").unwrap();
    let opts = format!(
        "port={port},ssh_option=IdentityFile={key},ssh_option=StrictHostKeyChecking=no,\
         ssh_option=UserKnownHostsFile=/dev/null,ssh_option=BatchMode=yes,ssh_option=LogLevel=ERROR,timeout=5",
        key = d.join("user_key").display()
    );
    let mnt = mount_sftpfs(&format!("root@127.0.0.1:{}", remote.display()), &opts);
    assert_eq!(fs::read(mnt.join("hello")).unwrap(), b"over ssh");
    let data = random_bytes(8 << 20, 5);
    fs::write(mnt.join("data"), &data).unwrap();
    assert!(fs::read(remote.join("data")).unwrap() == data);
    assert!(fs::read(mnt.join("data")).unwrap() == data);
    mnt.unmount().expect("clean unmount");
}

#[test]
fn mount_puffs_and_mount8_mount_sftpfs() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("file"), b"through the helper").unwrap();
    let source = format!("local:{}", tmp.path().display());
    let opts = format!("sftp_server={SFTP_SERVER},timeout=5");
    for how in ["mount_puffs", "mount"] {
        let mnt = MountPoint::new();
        let mut cmd = match how {
            "mount_puffs" => {
                let mut c = Command::new(bin("mount_puffs"));
                c.args(["-t", "sftpfs"]);
                c
            }
            _ => {
                // mount(8) runs /sbin/mount.puffs[.TYPE]; without it installed, skip.
                if !Path::new("/sbin/mount.puffs").exists() {
                    eprintln!("skipped mount(8): /sbin/mount.puffs is not installed");
                    continue;
                }
                let mut c = Command::new("mount");
                c.args(["-t", "puffs.sftpfs"]);
                c
            }
        };
        cmd.arg("-o").arg(&opts).arg(&source).arg(mnt.path());
        let out = run_bounded(&mut cmd, Duration::from_secs(20));
        assert!(
            out.status.success(),
            "{how}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(fs::read(mnt.join("file")).unwrap(), b"through the helper");
        assert_eq!(mount_entry(mnt.path()).unwrap().0, "fuse.sftpfs");
        mnt.unmount().expect("clean unmount");
    }
}

#[test]
fn reads_sent_ahead_are_dropped_when_the_file_is_written() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let s = Sftp::new("");
    let data = random_bytes(8 << 20, 3);
    fs::write(s.remote("f"), &data).unwrap();
    // O_DIRECT: every read reaches the fs as asked, past the page cache.
    let reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(s.join("f"))
        .unwrap();
    let chunk = 128 << 10;
    let mut buf = vec![0u8; chunk];
    for i in 0..8 {
        reader.read_exact_at(&mut buf, (i * chunk) as u64).unwrap();
        assert!(buf == data[i * chunk..(i + 1) * chunk]);
    }
    std::thread::sleep(Duration::from_millis(100)); // the reads sent ahead are back
    let writer = OpenOptions::new().write(true).open(s.join("f")).unwrap();
    writer
        .write_all_at(&[b'X'; 100], (12 * chunk) as u64 + 10)
        .unwrap();
    for i in 8..16 {
        reader.read_exact_at(&mut buf, (i * chunk) as u64).unwrap();
        if i == 12 {
            assert!(
                buf[10..110].iter().all(|b| *b == b'X'),
                "a stale read-ahead was served"
            );
        } else {
            assert!(buf == data[i * chunk..(i + 1) * chunk], "chunk {i}");
        }
    }
}

/// Skips (fails under CI) when python3, which runs the test's relays and fake
/// servers, is missing.
macro_rules! require_python {
    () => {
        if Command::new("python3")
            .arg("-c")
            .arg("0")
            .status()
            .map_or(true, |s| !s.success())
        {
            if std::env::var_os("CI").is_some() {
                panic!("required under CI: python3");
            }
            eprintln!("skipped: python3 is missing (the relay is a Python script)");
            return;
        }
    };
}

/// A relay (Python) between sftpfs and the server:
/// `relay.py COUNTS DELAY_MS WRITE_DELAY_MS SERVER`. It holds each reply DELAY_MS (a
/// link with latency), holds each WRITE request WRITE_DELAY_MS while later requests
/// of other kinds pass (a server that does not run requests in the order they came,
/// which the protocol allows), and counts what crossed it into COUNTS: the most
/// WRITEs in flight at once (sent, reply not yet passed on), and the round trips a
/// client waited for: requests sent while none was in flight.
const COUNTING_RELAY: &str = r#"
import os, queue, struct, subprocess, sys, threading, time
counts_path, delay, write_delay = sys.argv[1], float(sys.argv[2]) / 1000.0, float(sys.argv[3]) / 1000.0
srv = subprocess.Popen(sys.argv[4:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
to_server = threading.Lock()
def send(fr):
    with to_server:
        srv.stdin.write(fr); srv.stdin.flush()
held = queue.Queue()
def send_held():
    while True:
        due, fr = held.get()
        time.sleep(max(0.0, due - time.monotonic()))
        send(fr)
if write_delay > 0: threading.Thread(target=send_held, daemon=True).start()
lock = threading.Lock()
waiting = {}
c = {"most_writes": 0, "rounds": 0}
def read_frame(f):
    h = f.read(4)
    if len(h) < 4: return None
    n = struct.unpack(">I", h)[0]
    b = f.read(n)
    return h + b if len(b) == n else None
def save():
    with open(counts_path + ".tmp", "w") as f:
        f.write("".join("%s %d\n" % kv for kv in c.items()))
    os.rename(counts_path + ".tmp", counts_path)
def up():
    while True:
        fr = read_frame(sys.stdin.buffer)
        if fr is None: break
        with lock:
            if fr[4] != 1:
                if not waiting: c["rounds"] += 1
                waiting[fr[5:9]] = fr[4]
                writes = sum(1 for t in waiting.values() if t == 6)
                c["most_writes"] = max(c["most_writes"], writes)
            save()
        if fr[4] == 6 and write_delay > 0: held.put((time.monotonic() + write_delay, fr))
        else: send(fr)
    time.sleep(write_delay + 0.1)
    with to_server: srv.stdin.close()
replies = queue.Queue()
def down():
    while True:
        fr = read_frame(srv.stdout)
        replies.put((time.monotonic() + delay, fr))
        if fr is None: break
threading.Thread(target=up, daemon=True).start()
threading.Thread(target=down, daemon=True).start()
while True:
    due, fr = replies.get()
    if fr is None: break
    time.sleep(max(0.0, due - time.monotonic()))
    with lock:
        if fr[4] != 2: waiting.pop(fr[5:9], None)
    sys.stdout.buffer.write(fr); sys.stdout.buffer.flush()
"#;

/// What the counting relay counted so far: (most WRITEs in flight, round trips).
fn counts(path: &Path) -> (u64, u64) {
    let text = fs::read_to_string(path).unwrap_or_default();
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            .unwrap_or(0)
    };
    (get("most_writes "), get("rounds "))
}

#[test]
fn sequential_writes_are_pipelined_not_a_round_trip_each() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    require_python!();
    let (s, stats) = Sftp::relayed(30, 0, "");
    let data = random_bytes(32 << 20, 5);
    let (_, before) = counts(&stats);
    let mut f = File::create(s.join("big")).unwrap();
    for chunk in data.chunks(1 << 20) {
        f.write_all(chunk).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    let (most, after) = counts(&stats);
    // Waiting for each kernel WRITE's answers is one round trip per 1 MiB (32 here),
    // with its 5 SFTP WRITEs in flight; write-behind keeps the window full.
    assert!(most >= 16, "at most {most} WRITEs were in flight at once");
    let rounds = after - before;
    assert!(rounds <= 12, "32 MiB took {rounds} round trips");
    assert!(fs::read(s.remote("big")).unwrap() == data);
}

#[test]
fn listing_a_tree_waits_two_round_trips_per_directory() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    require_python!();
    let (s, stats) = Sftp::relayed(20, 0, "");
    let dirs = 16;
    for d in 0..dirs {
        fs::create_dir(s.remote(&format!("d{d}"))).unwrap();
        for f in 0..8 {
            fs::write(s.remote(&format!("d{d}/f{f}")), b"x").unwrap();
        }
    }
    let (_, before) = counts(&stats);
    let out = run_bounded(
        Command::new("ls").arg("-lR").arg(s.mnt.path()),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "ls -lR failed");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listed.matches(" f7\n").count(), dirs, "{listed}");
    let (_, after) = counts(&stats);
    // OPENDIR, then the READDIRs together; the CLOSE is not waited for (it was: 3).
    let rounds = after - before;
    assert!(
        rounds <= 2 * dirs as u64 + 6,
        "ls -lR of {dirs} directories took {rounds} round trips"
    );
}

/// A bind mount, undone (lazily) when dropped.
struct BindMount(PathBuf);

impl BindMount {
    fn new(from: &Path, to: &Path) -> Self {
        use nix::mount::{mount, MsFlags};
        mount(Some(from), to, None::<&str>, MsFlags::MS_BIND, None::<&str>).expect("bind mount");
        BindMount(to.to_path_buf())
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// close(2) through the raw fd, whose error `File`'s drop would swallow.
fn close_fd(f: File) -> i32 {
    use std::os::fd::IntoRawFd;
    let fd = f.into_raw_fd();
    // SAFETY: `fd` is ours (taken from the File), closed once.
    if unsafe { libc::close(fd) } == 0 {
        0
    } else {
        last_errno()
    }
}

#[test]
fn writes_to_a_full_disk_fail_at_the_latest_at_fsync_or_close() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    let s = Sftp::new("");
    // A remote directory on a 1 MiB tmpfs: the server's writes fail (ENOSPC).
    let full = Tmpfs::new("size=1m");
    fs::create_dir(s.remote("full")).unwrap();
    let _bound = BindMount::new(full.path(), &s.remote("full"));
    let data = random_bytes(4 << 20, 9);
    for finish in ["fsync", "close"] {
        let mut f = File::create(s.join(&format!("full/{finish}"))).unwrap();
        let wrote = data.chunks(256 << 10).all(|c| f.write_all(c).is_ok());
        let e = match finish {
            "fsync" => errno(f.sync_all()),
            _ => close_fd(f),
        };
        assert!(
            !wrote || e != 0,
            "4 MiB on a 1 MiB disk: every write and the {finish} succeeded"
        );
    }
}

#[test]
fn writes_in_flight_when_the_server_dies_fail_close() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    use nix::sys::signal::Signal;
    let s = Sftp::new("timeout=5");
    let mut f = File::create(s.join("f")).unwrap();
    // A stopped server answers nothing: the writes are answered once queued...
    s.signal_server(Signal::SIGSTOP);
    let killer = {
        let pids = s.server_pids();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            for pid in pids {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
        })
    };
    let t = Instant::now();
    let r = f.write_all(&random_bytes(1 << 20, 11));
    let took = t.elapsed();
    // ...and the server dies with them in flight: close reports it.
    let closed = close_fd(f);
    killer.join().unwrap();
    assert!(r.is_ok(), "write: {r:?} after {took:?}");
    assert!(
        took < Duration::from_millis(400),
        "the write waited {took:?} for a stopped server"
    );
    assert!(
        matches!(closed, libc::ENOTCONN | libc::EIO),
        "close after the server died with writes in flight: errno {closed}"
    );
}

#[test]
fn many_writes_in_flight_read_back_and_stat_as_written() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    use std::os::unix::fs::FileExt;
    // The server runs each WRITE 20 ms late, after requests that came later: what
    // must see the data waits for the writes itself.
    let (s, _) = Sftp::relayed(0, 20, "");
    let p = s.join("f");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    let other = File::open(&p).unwrap();
    let mut model: Vec<u8> = Vec::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    for i in 0..120u64 {
        let off = next(12 << 20);
        let len = 1 + next(400 << 10) as usize;
        let bytes = random_bytes(len, i + 100);
        f.write_all_at(&bytes, off).unwrap();
        let end = off as usize + len;
        if model.len() < end {
            model.resize(end, 0);
        }
        model[off as usize..end].copy_from_slice(&bytes);
        // The size never lags what was written; reads see it, through any fd.
        assert_eq!(f.metadata().unwrap().len(), model.len() as u64, "write {i}");
        assert_eq!(
            fs::metadata(&p).unwrap().len(),
            model.len() as u64,
            "write {i}"
        );
        if i % 10 == 0 {
            let at = next(model.len() as u64) as usize;
            let n = (model.len() - at).min(300 << 10);
            let mut buf = vec![0u8; n];
            other.read_exact_at(&mut buf, at as u64).unwrap();
            assert!(buf == model[at..at + n], "read after write {i}");
        }
        if i == 90 {
            f.set_len(5 << 20).unwrap();
            model.truncate(5 << 20);
        }
    }
    f.sync_all().unwrap();
    drop((f, other));
    let want = {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        fs::write(tmp.path(), &model).unwrap();
        sha256(tmp.path())
    };
    assert_eq!(sha256(&s.remote("f")), want);
    assert_eq!(sha256(&p), want);
}

#[test]
fn writes_lost_with_a_session_are_an_error_after_reconnect_never_replayed() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    use nix::sys::signal::Signal;
    let s = Sftp::new("reconnect,timeout=5");
    let mut f = File::create(s.join("f")).unwrap();
    // Writes answered while the stopped server holds them, then it dies with them.
    s.signal_server(Signal::SIGSTOP);
    let lost = random_bytes(1 << 20, 13);
    f.write_all(&lost).unwrap();
    s.signal_server(Signal::SIGKILL);
    let e = errno(f.sync_all());
    assert!(
        matches!(e, libc::ENOTCONN | libc::EIO),
        "fsync after the session died with writes in flight: errno {e}"
    );
    // Reported once; the file goes on through a new session.
    f.write_all(b"after").unwrap();
    f.sync_all().unwrap();
    let remote = fs::read(s.remote("f")).unwrap();
    assert_eq!(remote.len(), (1 << 20) + 5);
    assert!(
        remote[..1 << 20].iter().all(|b| *b == 0),
        "the lost writes were replayed"
    );
    assert_eq!(&remote[1 << 20..], b"after");
}

#[test]
fn creating_a_file_waits_two_round_trips() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    require_python!();
    use std::os::unix::fs::OpenOptionsExt;
    let (s, stats) = Sftp::relayed(20, 0, "");
    fs::write(s.remote("old"), b"data").unwrap();
    let (_, before) = counts(&stats);
    for i in 0..10 {
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(s.join(&format!("n{i}")))
            .unwrap();
        let m = f.metadata().unwrap();
        assert!(m.is_file() && m.len() == 0 && m.mode() & 0o777 == 0o640);
    }
    // LOOKUP (LSTAT), then CREATE: OPEN with its LSTAT (an FSTAT after it was a third).
    let (_, after) = counts(&stats);
    let rounds = after - before;
    assert!(rounds <= 2 * 10 + 2, "10 creates took {rounds} round trips");
    // O_CREAT over an existing file without O_TRUNC keeps (and reports) its data.
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(s.join("old"))
        .unwrap();
    assert_eq!(f.metadata().unwrap().len(), 4);
}

// ---- -o connections=N (issue 10 §3) ----

/// This mount's sftp-server processes in the order they started: with
/// `connections=N` the first one carries the metadata, the others the data.
fn servers_in_start_order(s: &Sftp) -> Vec<i32> {
    let started = |pid: &i32| -> u64 {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The fields after the command name, which may hold spaces: starttime is 22nd.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        rest.split_whitespace()
            .nth(19)
            .and_then(|t| t.parse().ok())
            .unwrap_or(u64::MAX)
    };
    let mut pids = s.server_pids();
    pids.sort_by_key(|p| (started(p), *p));
    pids
}

/// Bytes a process has read through read(2) and friends (/proc/PID/io rchar): a
/// server's socket input (requests, write data) and file input (read data).
fn rchar(pid: i32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Continues stopped processes when dropped, so a failing test leaves none stopped.
struct Stopped(Vec<i32>);

impl Stopped {
    fn new(pids: &[i32]) -> Self {
        for &p in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGSTOP,
            );
        }
        Stopped(pids.to_vec())
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        for &p in &self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGCONT,
            );
        }
    }
}

#[test]
fn connections_spread_one_files_data_and_keep_metadata_apart() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    let s = Sftp::new("connections=3");
    let servers = servers_in_start_order(&s);
    assert_eq!(servers.len(), 3, "sftp-server processes: {servers:?}");
    let moved = |what: &str, run: &dyn Fn()| {
        let before: Vec<u64> = servers.iter().map(|p| rchar(*p)).collect();
        run();
        let moved: Vec<u64> = servers
            .iter()
            .zip(&before)
            .map(|(p, b)| rchar(*p) - b)
            .collect();
        eprintln!("{what}: bytes read by each server (metadata first): {moved:?}");
        // 24 MiB of one file crossed: each data session carried a good share of it,
        // the metadata one none.
        for (i, m) in moved.iter().enumerate().skip(1) {
            assert!(*m > 8 << 20, "{what}: data session {i} carried {m} bytes");
        }
        assert!(
            moved[0] < 1 << 20,
            "{what}: the metadata session read {}",
            moved[0]
        );
    };
    let data = random_bytes(24 << 20, 3);
    moved("write", &|| {
        let mut f = File::create(s.join("up")).unwrap();
        for chunk in data.chunks(1 << 20) {
            f.write_all(chunk).unwrap();
        }
        f.sync_all().unwrap();
    });
    assert!(
        fs::read(s.remote("up")).unwrap() == data,
        "written data differs"
    );
    fs::write(s.remote("down"), random_bytes(24 << 20, 4)).unwrap();
    moved("read", &|| {
        assert_eq!(sha256(&s.join("down")), sha256(&s.remote("down")));
    });
    s.mnt.unmount().expect("clean unmount");
    assert!(
        wait_until(Duration::from_secs(3), || s.server_pids().is_empty()),
        "servers left after unmount: {:?}",
        s.server_pids()
    );
}

#[test]
fn metadata_stays_answerable_while_the_data_sessions_are_stalled() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    let s = Sftp::new("connections=3,timeout=4");
    let want = random_bytes(16 << 20, 5);
    fs::write(s.remote("big"), &want).unwrap();
    let servers = servers_in_start_order(&s);
    assert_eq!(servers.len(), 3, "sftp-server processes: {servers:?}");

    // A bulk read whose sessions stall (stopped servers: a transfer stuck on a slow
    // link) must not hold up lookups and listings.
    let stalled = Stopped::new(&servers[1..]);
    let reader = {
        let p = s.join("big");
        std::thread::spawn(move || fs::read(p))
    };
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..20 {
        fs::write(s.remote(&format!("new-{i}")), b"x").unwrap();
    }
    let t = Instant::now();
    let mut answered = 0;
    for i in 0..20 {
        let m = fs::metadata(s.join(&format!("new-{i}"))).map(|m| m.len());
        let missing = fs::metadata(s.join(&format!("missing-{i}")));
        if m.ok() != Some(1) || errno(missing) != libc::ENOENT {
            break;
        }
        answered += 1;
    }
    let listed = fs::read_dir(s.join("")).map_or(0, |d| d.count());
    let took = t.elapsed();
    assert!(!reader.is_finished(), "the read did not stall");
    drop(stalled);
    let got = reader
        .join()
        .unwrap()
        .expect("the read completes once resumed");
    assert!(got == want, "data read back differs");
    assert_eq!(answered, 20, "lookups answered while the data stalled");
    assert_eq!(listed, 21);
    assert!(took < Duration::from_secs(5), "metadata took {took:?}");
}

#[test]
fn one_session_ending_ends_all_without_reconnect() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    let s = Sftp::new("connections=3,timeout=2");
    fs::write(s.remote("f"), random_bytes(4 << 20, 6)).unwrap();
    fs::write(s.remote("g"), b"g").unwrap();
    // All sessions in use: the mount has seen them up.
    assert_eq!(fs::read(s.join("f")).unwrap().len(), 4 << 20);
    let servers = servers_in_start_order(&s);
    assert_eq!(servers.len(), 3, "sftp-server processes: {servers:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(servers[2]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // Metadata (whose session is alive) and data alike: ENOTCONN, at once.
    let t = Instant::now();
    assert_eq!(errno(fs::metadata(s.join("g"))), libc::ENOTCONN);
    assert_eq!(errno(fs::read(s.join("f"))), libc::ENOTCONN);
    assert_eq!(errno(fs::read_dir(s.join(""))), libc::ENOTCONN);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    assert!(
        wait_until(Duration::from_secs(3), || s.server_pids().is_empty()),
        "the other sessions were not ended: {:?}",
        s.server_pids()
    );
    s.mnt.unmount().expect("clean unmount");
}

#[test]
fn reconnect_restarts_each_session_on_its_own() {
    require_fuse!();
    require_program!(SFTP_SERVER);
    let s = Sftp::new("connections=3,reconnect,timeout=3");
    let want = random_bytes(6 << 20, 7);
    fs::write(s.remote("f"), &want).unwrap();
    let mut f = File::open(s.join("f")).unwrap();
    let mut head = vec![0u8; 3 << 20];
    f.read_exact(&mut head).unwrap();
    let servers = servers_in_start_order(&s);
    assert_eq!(servers.len(), 3, "sftp-server processes: {servers:?}");
    // Both data sessions die; the metadata one lives on.
    for &p in &servers[1..] {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    assert!(wait_until(Duration::from_secs(2), || s.server_pids().len() == 1));
    std::thread::sleep(Duration::from_millis(100));
    let mut rest = Vec::new();
    f.read_to_end(&mut rest).unwrap();
    head.extend_from_slice(&rest);
    assert!(head == want, "data read across the reconnect differs");
    let now = servers_in_start_order(&s);
    assert_eq!(now.len(), 3, "sessions after reconnect: {now:?}");
    assert_eq!(now[0], servers[0], "the metadata session was restarted");
    fs::write(s.join("g"), b"after").unwrap();
    assert_eq!(fs::read(s.remote("g")).unwrap(), b"after");
}
