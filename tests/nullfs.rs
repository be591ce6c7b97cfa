//! nullfs (and rot13fs) mounted for real over a backing directory on tmpfs, exercised
//! through ordinary system calls and compared with the backing directory itself.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use puffs_tests::*;

// ---------------------------------------------------------------------------------
// Helpers

/// A null-layer mount (nullfs or rot13fs) over `backing/`, a directory on a tmpfs of
/// its own. Fields drop in order: the mount first, then the tmpfs.
struct Null {
    mnt: MountPoint,
    tmpfs: Tmpfs,
    /// What the daemon wrote while mounting (before it detached).
    stderr: String,
}

impl Null {
    /// `fs` ("nullfs", "rot13fs") with `-o opts`, over a tmpfs mounted with `tmpfs_opts`.
    fn with(fs: &str, opts: &str, tmpfs_opts: &str) -> Null {
        let tmpfs = Tmpfs::new(tmpfs_opts);
        let backing = tmpfs.join("backing");
        fs::create_dir(&backing).unwrap();
        fs::set_permissions(&backing, fs::Permissions::from_mode(0o755)).unwrap();
        let (mnt, stderr) = mount(fs, opts, &backing);
        Null { mnt, tmpfs, stderr }
    }

    fn new(opts: &str) -> Null {
        Null::with("nullfs", opts, "size=64M")
    }

    fn path(&self) -> &Path {
        self.mnt.path()
    }

    fn join(&self, name: &str) -> PathBuf {
        self.mnt.join(name)
    }

    fn backing(&self) -> PathBuf {
        self.tmpfs.join("backing")
    }

    fn back(&self, name: &str) -> PathBuf {
        self.backing().join(name)
    }

    /// The daemon's pid (the process whose command line names this mount point).
    fn pid(&self) -> i32 {
        let pids = pids_with_arg(&self.path().to_string_lossy());
        assert_eq!(pids.len(), 1, "one daemon per mount: {pids:?}");
        pids[0]
    }
}

/// Mounts `fs` over `backing` with `-o opts`; the mount point and what the daemon
/// wrote while mounting.
fn mount(fs: &str, opts: &str, backing: &Path) -> (MountPoint, String) {
    let mnt = MountPoint::new();
    let mut cmd = Command::new(bin(fs));
    if !opts.is_empty() {
        cmd.arg("-o").arg(opts);
    }
    cmd.arg(backing).arg(mnt.path());
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
    (mnt, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The aio backends every data test runs with (passthrough off, so data goes through
/// the fs and its backend).
const BACKENDS: &[&str] = &["uring", "posix", "linux", "threads"];

fn errno<T>(r: std::io::Result<T>) -> i32 {
    errno_or_zero(&r)
}

/// What of a stat must be the same through the mount and in the backing directory.
fn seen(p: &Path) -> Option<(u64, u32, u64, u64, u32, u32, i64)> {
    let m = fs::symlink_metadata(p).ok()?;
    let size = if m.is_dir() { 0 } else { m.size() };
    Some((
        m.ino(),
        m.mode(),
        m.nlink(),
        size,
        m.uid(),
        m.gid(),
        m.mtime(),
    ))
}

/// xorshift64*: small, seeded, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn assert_alive(root: &Path) {
    let probe = root.join(".alive-probe");
    fs::write(&probe, b"alive").expect("the mount no longer answers");
    assert_eq!(fs::read(&probe).unwrap(), b"alive");
    fs::remove_file(&probe).unwrap();
}

// ---------------------------------------------------------------------------------
// Semantics (memfs_posix's, where they apply to a passthrough)

#[test]
fn files_dirs_links_and_their_errors_match_the_backing() {
    puffs_tests::require_fuse!();
    let m = Null::new("");
    fs::write(m.join("f"), b"hello").unwrap();
    assert_eq!(fs::read(m.back("f")).unwrap(), b"hello");
    fs::write(m.back("g"), b"from below").unwrap();
    assert_eq!(fs::read(m.join("g")).unwrap(), b"from below");
    // Inode numbers are the backing ones, and survive rename.
    let ino = lstat(&m.join("f")).ino();
    assert_eq!(ino, lstat(&m.back("f")).ino());
    fs::rename(m.join("f"), m.join("f2")).unwrap();
    assert_eq!(lstat(&m.join("f2")).ino(), ino);
    // Hard links are one node.
    fs::hard_link(m.join("f2"), m.join("h")).unwrap();
    assert_eq!(lstat(&m.join("h")).ino(), ino);
    assert_eq!(lstat(&m.join("f2")).nlink(), 2);
    assert_eq!(lstat(&m.back("h")).nlink(), 2);
    // Directories and their errors.
    fs::create_dir(m.join("d")).unwrap();
    assert_eq!(errno(fs::create_dir(m.join("d"))), libc::EEXIST);
    fs::write(m.join("d/x"), b"").unwrap();
    assert_eq!(errno(fs::remove_dir(m.join("d"))), libc::ENOTEMPTY);
    assert_eq!(errno(fs::remove_dir(m.join("f2"))), libc::ENOTDIR);
    assert_eq!(errno(fs::read(m.join("nope"))), libc::ENOENT);
    assert_eq!(errno(fs::write(m.join("f2/x"), b"")), libc::ENOTDIR);
    let long = "n".repeat(256);
    assert_eq!(errno(fs::write(m.join(&long), b"")), libc::ENAMETOOLONG);
    fs::remove_file(m.join("d/x")).unwrap();
    fs::remove_dir(m.join("d")).unwrap();
    assert!(!m.back("d").exists());
    // Symlinks are stored as given and read back.
    std::os::unix::fs::symlink("f2", m.join("s")).unwrap();
    assert_eq!(fs::read_link(m.back("s")).unwrap(), Path::new("f2"));
    assert_eq!(fs::read(m.join("s")).unwrap(), b"hello");
    // A fifo and a listing.
    nix::unistd::mkfifo(
        &m.join("p"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    assert!(lstat(&m.back("p")).mode() & libc::S_IFMT == libc::S_IFIFO);
    assert_eq!(names(m.path()), names(&m.backing()));
    assert_eq!(names(m.path()), ["f2", "g", "h", "p", "s"]);
}

#[test]
fn rename_flags_truncate_append_and_unlinked_open_files() {
    puffs_tests::require_fuse!();
    let m = Null::new("");
    let (a, b) = (m.join("a"), m.join("b"));
    fs::write(&a, b"A").unwrap();
    fs::write(&b, b"B").unwrap();
    let r = |flags| {
        // SAFETY: valid paths.
        sys(unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                cpath(&a).as_ptr(),
                libc::AT_FDCWD,
                cpath(&b).as_ptr(),
                flags,
            )
        })
    };
    assert_eq!(r(libc::RENAME_NOREPLACE), libc::EEXIST);
    assert_eq!(r(libc::RENAME_EXCHANGE), 0);
    assert_eq!(fs::read(&a).unwrap(), b"B");
    assert_eq!(fs::read(m.back("b")).unwrap(), b"A");
    // truncate grows with zeros, shrinks.
    let f = OpenOptions::new().read(true).write(true).open(&a).unwrap();
    f.set_len(10).unwrap();
    assert_eq!(fs::read(m.back("a")).unwrap(), b"B\0\0\0\0\0\0\0\0\0");
    f.set_len(0).unwrap();
    assert_eq!(lstat(&m.back("a")).len(), 0);
    // O_APPEND from two fds.
    let mut x = OpenOptions::new().append(true).open(&a).unwrap();
    let mut y = OpenOptions::new().append(true).open(&a).unwrap();
    x.write_all(b"12").unwrap();
    y.write_all(b"34").unwrap();
    x.write_all(b"56").unwrap();
    assert_eq!(fs::read(&a).unwrap(), b"123456");
    // An unlinked open file stays usable.
    let mut g = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(m.join("gone"))
        .unwrap();
    fs::remove_file(m.join("gone")).unwrap();
    g.write_all(b"still here").unwrap();
    assert_eq!(g.metadata().unwrap().len(), 10);
    let mut back = String::new();
    g.read_at(&mut [0; 0], 0).unwrap();
    File::open(format!("/proc/self/fd/{}", g.as_raw_fd()))
        .unwrap()
        .read_to_string(&mut back)
        .unwrap();
    assert_eq!(back, "still here");
    assert!(!m.back("gone").exists());
}

#[test]
fn chmod_chown_and_utimens_with_now_and_omit() {
    puffs_tests::require_fuse!();
    let m = Null::new("");
    let p = m.join("t");
    fs::write(&p, b"x").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(&p, Some(1000), Some(1000)).unwrap();
    let st = lstat(&m.back("t"));
    assert_eq!(
        (st.mode() & 0o7777, st.uid(), st.gid()),
        (0o640, 1000, 1000)
    );
    let t = |sec, nsec| libc::timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    };
    let set = |a: libc::timespec, b: libc::timespec| {
        // SAFETY: a valid path and two timespecs.
        sys(unsafe { libc::utimensat(libc::AT_FDCWD, cpath(&p).as_ptr(), [a, b].as_ptr(), 0) })
    };
    assert_eq!(set(t(1000, 5), t(2000, 7)), 0);
    assert_eq!(set(t(0, libc::UTIME_OMIT), t(3000, 9)), 0);
    let st = lstat(&m.back("t"));
    assert_eq!(
        (st.atime(), st.atime_nsec()),
        (1000, 5),
        "UTIME_OMIT kept atime"
    );
    assert_eq!((st.mtime(), st.mtime_nsec()), (3000, 9));
    assert_eq!(set(t(0, libc::UTIME_NOW), t(0, libc::UTIME_OMIT)), 0);
    let st = lstat(&m.back("t"));
    assert!(st.atime() > 1_700_000_000, "UTIME_NOW set atime to now");
    assert_eq!(st.mtime(), 3000);
    // Through the mount the same.
    assert_eq!(lstat(&p).mtime(), 3000);
}

#[test]
fn xattrs_fallocate_seek_hole_and_mmap() {
    puffs_tests::require_fuse!();
    let m = Null::new("");
    let p = m.join("x");
    fs::write(&p, b"").unwrap();
    let (cp, name) = (cpath(&p), cstr("user.k"));
    // SAFETY: valid path, name and value.
    let r = unsafe { libc::setxattr(cp.as_ptr(), name.as_ptr(), b"v".as_ptr().cast(), 1, 0) };
    assert_eq!(sys(r), 0);
    let mut buf = [0u8; 8];
    // SAFETY: buf has 8 bytes of room.
    let n = unsafe {
        libc::getxattr(
            cpath(&m.back("x")).as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            8,
        )
    };
    assert_eq!(&buf[..n as usize], b"v");
    // SAFETY: as above.
    assert_eq!(
        sys(unsafe { libc::removexattr(cp.as_ptr(), name.as_ptr()) }),
        0
    );
    // SAFETY: as above.
    let r = unsafe { libc::getxattr(cp.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), 8) };
    assert_eq!((r, last_errno()), (-1, libc::ENODATA));
    // fallocate, then data and a hole.
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    // SAFETY: a valid fd.
    assert_eq!(
        sys(unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, 8192) }),
        0
    );
    assert_eq!(f.metadata().unwrap().len(), 8192);
    f.set_len(0).unwrap();
    f.write_all_at(b"data", 1 << 20).unwrap();
    // SAFETY: a valid fd.
    let data = unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_DATA) };
    assert_eq!(data, 1 << 20);
    // mmap: a shared write lands in the backing file.
    let len = 4096;
    f.set_len(len as u64).unwrap();
    // SAFETY: a fresh shared mapping of a file of `len` bytes, unmapped below.
    unsafe {
        let a = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(a, libc::MAP_FAILED);
        std::ptr::copy_nonoverlapping(b"mapped".as_ptr(), a.cast(), 6);
        assert_eq!(libc::msync(a, len, libc::MS_SYNC), 0);
        libc::munmap(a, len);
    }
    assert_eq!(&fs::read(m.back("x")).unwrap()[..6], b"mapped");
}

#[test]
fn a_big_directory_lists_each_entry_once_with_the_backing_inode_numbers() {
    puffs_tests::require_fuse!();
    let m = Null::new("");
    for i in 0..1000 {
        fs::write(m.back(&format!("entry-{i:04}")), b"").unwrap();
    }
    let mut seen: Vec<(String, u64)> = fs::read_dir(m.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::os::unix::fs::DirEntryExt::ino(&e),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(seen.len(), 1000);
    for (name, ino) in &seen {
        assert_eq!(*ino, lstat(&m.join(name)).ino(), "{name}: d_ino and st_ino");
        assert_eq!(
            *ino,
            lstat(&m.back(name)).ino(),
            "{name}: the backing inode number"
        );
    }
    // A second pass sees a file added meanwhile.
    fs::write(m.back("late"), b"").unwrap();
    assert_eq!(fs::read_dir(m.path()).unwrap().count(), 1001);
}

#[test]
fn tree_deeper_than_path_max() {
    puffs_tests::require_fuse!();
    let m = Null::new("");
    let name = cstr(&"deep-component-".repeat(2));
    let depth = 160; // 160 * 31 bytes: past PATH_MAX
    let mut fds = vec![File::open(m.path()).unwrap()];
    for _ in 0..depth {
        let at = fds.last().unwrap().as_raw_fd();
        // SAFETY: a valid dirfd and name.
        assert_eq!(sys(unsafe { libc::mkdirat(at, name.as_ptr(), 0o755) }), 0);
        // SAFETY: as above; the fd is owned by the File at once.
        let fd = unsafe { libc::openat(at, name.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY) };
        assert!(fd >= 0, "openat: {}", last_errno());
        // SAFETY: a fresh fd.
        fds.push(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) });
    }
    let leaf = cstr("leaf");
    let at = fds.last().unwrap().as_raw_fd();
    // SAFETY: a valid dirfd and name; the fd is closed at once.
    unsafe {
        let fd = libc::openat(at, leaf.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o644);
        assert!(fd >= 0, "create at the bottom: {}", last_errno());
        assert_eq!(libc::write(fd, b"bottom".as_ptr().cast(), 6), 6);
        libc::close(fd);
    }
    // The kernel forgets the chain, the fs finds it again by handle.
    drop(fds.drain(1..).collect::<Vec<_>>());
    drop_dentries_and_inodes();
    let mut at = File::open(m.path()).unwrap();
    for _ in 0..depth {
        // SAFETY: a valid dirfd and name.
        let fd = unsafe {
            libc::openat(
                at.as_raw_fd(),
                name.as_ptr(),
                libc::O_DIRECTORY | libc::O_RDONLY,
            )
        };
        assert!(fd >= 0, "walk down: {}", last_errno());
        // SAFETY: a fresh fd.
        at = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
    }
    let mut s = String::new();
    // SAFETY: a valid dirfd and name.
    let fd = unsafe { libc::openat(at.as_raw_fd(), leaf.as_ptr(), libc::O_RDONLY) };
    assert!(fd >= 0);
    // SAFETY: a fresh fd.
    let mut f: File = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "bottom");
}

// ---------------------------------------------------------------------------------
// Safety: symlinks, users, bounded fds, a vanishing backing directory

#[test]
fn a_symlink_pointing_outside_is_never_followed() {
    puffs_tests::require_fuse!();
    let m = Null::new("");
    let outside = m.tmpfs.join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"secret").unwrap();
    std::os::unix::fs::symlink("../outside", m.back("esc")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), m.back("abs")).unwrap();
    // The fs hands the links back as links.
    assert!(lstat(&m.join("esc")).file_type().is_symlink());
    assert_eq!(
        fs::read_link(m.join("esc")).unwrap(),
        Path::new("../outside")
    );
    // The relative one resolves inside the mount's own parent, not the backing's.
    assert_eq!(errno(fs::read(m.join("esc/secret"))), libc::ENOENT);
    assert_eq!(errno(fs::write(m.join("esc/new"), b"x")), libc::ENOENT);
    assert!(!outside.join("new").exists());
    // Ops on the link itself never reach its target.
    let before = lstat(&outside.join("secret"));
    std::os::unix::fs::lchown(m.join("abs"), Some(1000), Some(1000)).unwrap();
    let ts = [
        libc::timespec {
            tv_sec: 5,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: 5,
            tv_nsec: 0,
        },
    ];
    // SAFETY: a valid path and two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            cpath(&m.join("abs")).as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(sys(r), 0);
    let after = lstat(&outside.join("secret"));
    assert_eq!((after.uid(), after.mtime()), (before.uid(), before.mtime()));
    assert_eq!(lstat(&m.back("abs")).uid(), 1000, "the link itself changed");
    assert_eq!(lstat(&m.back("abs")).mtime(), 5);
    // O_NOFOLLOW open of the link fails as on any file system.
    let e = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(m.join("abs"));
    assert_eq!(errno(e), libc::ELOOP);
}

#[test]
fn two_users_cannot_read_each_others_private_files() {
    puffs_tests::require_fuse!();
    let m = Null::new("allow_other");
    let d = m.join("pub");
    fs::create_dir(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o1777)).unwrap();
    let (a, b) = (cpath(&d.join("a")), cpath(&d.join("b")));
    let create = |p: &CString| {
        // SAFETY: a valid path; the fd is closed at once.
        unsafe {
            let fd = libc::open(p.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o600);
            if fd < 0 {
                return last_errno();
            }
            let ok = libc::write(fd, b"mine".as_ptr().cast(), 4) == 4;
            libc::close(fd);
            if ok {
                0
            } else {
                99
            }
        }
    };
    let read = |p: &CString| {
        // SAFETY: a valid path; the fd is closed at once.
        unsafe {
            let fd = libc::open(p.as_ptr(), libc::O_RDONLY);
            if fd < 0 {
                return last_errno();
            }
            libc::close(fd);
            0
        }
    };
    assert_eq!(run_as(1000, 1000, &[], || create(&a)), 0);
    assert_eq!(run_as(1001, 1001, &[], || create(&b)), 0);
    let st = lstat(&m.back("pub/a"));
    assert_eq!((st.uid(), st.gid(), st.mode() & 0o777), (1000, 1000, 0o600));
    assert_eq!(lstat(&m.back("pub/b")).uid(), 1001);
    assert_eq!(run_as(1000, 1000, &[], || read(&a)), 0);
    assert_eq!(run_as(1000, 1000, &[], || read(&b)), libc::EACCES);
    assert_eq!(run_as(1001, 1001, &[], || read(&a)), libc::EACCES);
    // Set-gid directories give their group, as on any file system.
    let sg = m.join("sg");
    fs::create_dir(&sg).unwrap();
    std::os::unix::fs::chown(&sg, Some(0), Some(50)).unwrap();
    fs::set_permissions(&sg, fs::Permissions::from_mode(0o2777)).unwrap();
    let (f, sub) = (cpath(&sg.join("f")), cpath(&sg.join("sub")));
    let code = run_as(1000, 1000, &[], || {
        // SAFETY: a valid path.
        if unsafe { libc::mkdir(sub.as_ptr(), 0o755) } != 0 {
            return last_errno();
        }
        create(&f)
    });
    assert_eq!(code, 0);
    let st = lstat(&m.back("sg/f"));
    assert_eq!((st.uid(), st.gid()), (1000, 50));
    let st = lstat(&m.back("sg/sub"));
    assert_eq!((st.uid(), st.gid(), st.mode() & 0o7777), (1000, 50, 0o2755));
}

#[test]
fn thousands_of_files_keep_the_fds_bounded() {
    puffs_tests::require_fuse!();
    let m = Null::new("fd_cache=64");
    let n = 3000;
    for i in 0..n {
        File::create(m.join(&format!("f{i}"))).unwrap();
    }
    drop_dentries_and_inodes();
    for i in (0..n).step_by(7) {
        assert_eq!(lstat(&m.join(&format!("f{i}"))).len(), 0);
    }
    let fds = fs::read_dir(format!("/proc/{}/fd", m.pid()))
        .unwrap()
        .count();
    assert!(fds < 200, "the daemon holds {fds} fds for {n} files");
    assert_eq!(fs::read_dir(m.path()).unwrap().count(), n);
}

#[test]
fn nodes_whose_fd_left_the_cache_are_reopened_by_handle() {
    puffs_tests::require_fuse!();
    let m = Null::new("fd_cache=8");
    fs::create_dir(m.join("d")).unwrap();
    fs::write(m.join("d/old"), b"old").unwrap();
    let keep = File::open(m.join("d")).unwrap(); // the kernel keeps the node
    for i in 0..40 {
        fs::write(m.join(&format!("f{i}")), b"").unwrap();
    }
    // d's fd has left the cache; the kernel still knows d, so no lookup finds it.
    fs::write(m.join("d/new"), b"new").unwrap();
    assert_eq!(fs::read(m.back("d/new")).unwrap(), b"new");
    assert_eq!(fs::read(m.join("d/old")).unwrap(), b"old");
    drop(keep);
}

#[test]
fn the_backing_directory_removed_or_replaced_gives_errors_not_a_crash() {
    puffs_tests::require_fuse!();
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("nullfs.log");
    let m = Null::new(&format!("logfile={}", log.display()));
    fs::write(m.join("f"), b"x").unwrap();
    let keep = File::open(m.join("f")).unwrap();
    fs::remove_dir_all(m.backing()).unwrap();
    // The daemon says why the errors come, once, naming the directory.
    let said = format!("backing directory {} was removed", m.backing().display());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let logged = loop {
        let text = fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&said) || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(logged.matches(&said).count(), 1, "log: {logged}");
    let e = errno(fs::write(m.join("g"), b"y"));
    assert!(
        e == libc::ENOENT || e == libc::ESTALE,
        "create in a removed dir: {e}"
    );
    fs::create_dir(m.backing()).unwrap();
    fs::write(m.back("new"), b"z").unwrap();
    let e = errno(fs::read(m.join("new")));
    assert!(
        e == libc::ENOENT || e == libc::ESTALE,
        "the new dir is not the mount's: {e}"
    );
    // An open file of the old tree still reads.
    let mut s = String::new();
    (&keep).read_to_string(&mut s).unwrap();
    assert_eq!(s, "x");
    assert!(fs::metadata(m.path()).is_ok(), "the root still answers");
    let pid = m.pid();
    assert!(!is_zombie(pid), "the daemon is alive");
}

#[test]
fn enospc_on_a_full_backing_keeps_the_fs_serving_and_data_intact() {
    puffs_tests::require_fuse!();
    for opts in ["nopassthrough", "passthrough"] {
        let m = Null::with("nullfs", opts, "size=16M");
        let pattern: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        fs::write(m.join("keep"), &pattern).unwrap();
        let mut f = File::create(m.join("fill")).unwrap();
        let mut e = 0;
        for _ in 0..32 {
            if let Err(err) = f.write_all(&pattern).and_then(|()| f.sync_all()) {
                e = errno_of(&err);
                break;
            }
        }
        assert_eq!(e, libc::ENOSPC, "{opts}: the 16 MiB backing filled up");
        drop(f);
        assert_eq!(fs::read(m.join("keep")).unwrap(), pattern, "{opts}");
        assert_eq!(fs::read(m.back("keep")).unwrap(), pattern, "{opts}");
        fs::remove_file(m.join("fill")).unwrap();
        assert_alive(m.path());
    }
}

// ---------------------------------------------------------------------------------
// Data integrity and the op-by-op comparison

/// Seeded random pwrite / pread / truncate / fsync through the mount, each checked
/// against a model, and the backing file byte for byte at the end.
fn random_io(m: &Null, seed: u64) {
    let mut rng = Rng(seed);
    let p = m.join("data");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    let mut model: Vec<u8> = Vec::new();
    for step in 0..300 {
        match rng.below(10) {
            0..=4 => {
                let off = rng.below(1 << 20) as usize;
                let len = 1 + rng.below(70_000) as usize;
                let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                f.write_all_at(&data, off as u64).unwrap();
                if model.len() < off + len {
                    model.resize(off + len, 0);
                }
                model[off..off + len].copy_from_slice(&data);
            }
            5..=7 => {
                let off = rng.below(model.len() as u64 + 10) as usize;
                let len = 1 + rng.below(100_000) as usize;
                let mut buf = vec![0; len];
                let n = f.read_at(&mut buf, off as u64).unwrap();
                let want = model.get(off..(off + len).min(model.len())).unwrap_or(&[]);
                assert_eq!(&buf[..n], want, "seed {seed} step {step}: read at {off}");
            }
            8 => {
                let len = rng.below(1 << 20) as usize;
                f.set_len(len as u64).unwrap();
                model.resize(len, 0);
            }
            _ => f.sync_data().unwrap(),
        }
    }
    f.sync_all().unwrap();
    assert_eq!(
        fs::read(m.back("data")).unwrap(),
        model,
        "seed {seed}: backing file"
    );
}

#[test]
fn data_integrity_for_every_backend_and_passthrough() {
    puffs_tests::require_fuse!();
    for (i, b) in BACKENDS.iter().enumerate() {
        let m = Null::new(&format!("aio={b},nopassthrough"));
        random_io(&m, 0x5eed + i as u64);
    }
    let m = Null::new("passthrough");
    random_io(&m, 0x5eed_00ff);
    let m = Null::new("writeback");
    random_io(&m, 0x5eed_0100);
}

#[test]
fn a_refused_backing_file_falls_back_to_serving_the_data() {
    puffs_tests::require_fuse!();
    // The kernel stacks passthrough one level deep: a nullfs whose backing files are
    // on another passthrough nullfs has its backing files refused.
    let inner = Null::new("passthrough");
    fs::create_dir(inner.join("sub")).unwrap();
    // SAFETY: set before the daemon starts and taken back at once.
    std::env::set_var("RUST_LOG", "info");
    let log = tempfile::NamedTempFile::new().unwrap();
    let opts = format!("passthrough,logfile={}", log.path().display());
    let (outer, stderr) = mount("nullfs", &opts, &inner.join("sub"));
    std::env::remove_var("RUST_LOG");
    assert!(stderr.contains("kernel passthrough: on"), "log: {stderr}");
    let p = outer.join("f");
    fs::write(&p, b"served by the fs").unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"served by the fs");
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    f.write_all_at(b"SERVED", 0).unwrap();
    assert_eq!(fs::read(inner.back("sub/f")).unwrap(), b"SERVED by the fs");
    drop(f);
    let text = fs::read_to_string(log.path()).unwrap();
    assert!(
        text.contains("serving file data through the fs"),
        "log: {text}"
    );
}

#[test]
fn o_direct_data_through_linux_aio() {
    puffs_tests::require_fuse!();
    // tmpfs has no O_DIRECT; ext4 or the like under /var/tmp usually has.
    let m = Null::new("aio=linux,nopassthrough");
    let p = m.join("direct");
    let data: Vec<u8> = (0..1 << 16).map(|i: u32| (i * 7) as u8).collect();
    fs::write(&p, &data).unwrap();
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&p);
    match f {
        Ok(f) => {
            let mut buf = vec![0; data.len()];
            f.read_exact_at(&mut buf, 0).unwrap();
            assert_eq!(buf, data);
        }
        Err(e) => assert_eq!(errno_of(&e), libc::EINVAL, "tmpfs refuses O_DIRECT"),
    }
}

/// One random op on `root` (a path under it chosen from a few names); its errno.
fn random_op(rng: &mut Rng, root: &Path) -> (String, i32) {
    const NAMES: &[&str] = &["a", "b", "d", "d/a", "d/e", "d/e/b"];
    let pick = |rng: &mut Rng| root.join(NAMES[rng.below(NAMES.len() as u64) as usize]);
    let (x, y) = (pick(rng), pick(rng));
    let data = vec![b'x'; rng.below(5000) as usize];
    let op = rng.below(9);
    let r = match op {
        0 => fs::write(&x, &data),
        1 => fs::create_dir(&x),
        2 => fs::remove_file(&x),
        3 => fs::remove_dir(&x),
        4 => fs::rename(&x, &y),
        5 => fs::hard_link(&x, &y),
        6 => std::os::unix::fs::symlink("a", &x),
        7 => OpenOptions::new()
            .write(true)
            .open(&x)
            .and_then(|f| f.set_len(rng.below(9000))),
        _ => fs::set_permissions(
            &x,
            fs::Permissions::from_mode(0o600 + rng.below(0o100) as u32),
        ),
    };
    let rel = |p: &Path| p.strip_prefix(root).unwrap().display().to_string();
    (format!("op {op} {} {}", rel(&x), rel(&y)), errno(r))
}

/// Every path under `root`, sorted, with what matters of its stat.
fn tree(root: &Path) -> Vec<(String, u32, u64, u64)> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let st = lstat(&p);
            let size = if st.is_dir() { 0 } else { st.len() };
            out.push((
                p.strip_prefix(root).unwrap().display().to_string(),
                st.mode(),
                st.nlink(),
                size,
            ));
            if st.is_dir() {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn seeded_random_ops_match_the_backing_directory_op_by_op() {
    puffs_tests::require_fuse!();
    let m = Null::new("");
    let reference = Tmpfs::new("size=16M");
    let mut rng = Rng(0xc0ffee);
    let mut twin = Rng(0xc0ffee);
    for step in 0..400 {
        let (what, got) = random_op(&mut rng, m.path());
        let (_, want) = random_op(&mut twin, reference.path());
        assert_eq!(
            got, want,
            "step {step}: {what}: errno through nullfs vs tmpfs"
        );
        for name in ["a", "b", "d", "d/a", "d/e", "d/e/b"] {
            assert_eq!(
                seen(&m.join(name)),
                seen(&m.back(name)),
                "step {step}: {what}: {name}"
            );
        }
    }
    assert_eq!(tree(m.path()), tree(reference.path()));
}

// ---------------------------------------------------------------------------------
// Passthrough and rot13fs

#[test]
fn passthrough_is_negotiated_and_logged() {
    puffs_tests::require_fuse!();
    // SAFETY: set before the daemon starts and taken back at once; the tests of this
    // file read no environment meanwhile.
    std::env::set_var("RUST_LOG", "info");
    let m = Null::new("passthrough,keep_cache,attr_timeout=60,entry_timeout=60");
    std::env::remove_var("RUST_LOG");
    assert!(
        m.stderr.contains("kernel passthrough: on"),
        "log: {}",
        m.stderr
    );
    fs::write(m.join("p"), b"through the kernel").unwrap();
    assert_eq!(fs::read(m.join("p")).unwrap(), b"through the kernel");
    assert_eq!(fs::read(m.back("p")).unwrap(), b"through the kernel");
    assert_eq!(
        stale_read(&m),
        b"new!",
        "passthrough reads the backing file itself"
    );
}

/// Reads a file through the mount (keep_cache: its pages stay cached), changes it in
/// the backing directory, and reads it again at once: what the second read sees.
fn stale_read(m: &Null) -> Vec<u8> {
    fs::write(m.join("c"), b"old!").unwrap();
    assert_eq!(fs::read(m.join("c")).unwrap(), b"old!");
    assert_eq!(fs::read(m.join("c")).unwrap(), b"old!");
    // Same size and mtime: nothing tells the kernel the file changed.
    let mtime = fs::metadata(m.back("c")).unwrap().modified().unwrap();
    let f = OpenOptions::new().write(true).open(m.back("c")).unwrap();
    f.write_all_at(b"new!", 0).unwrap();
    f.set_modified(mtime).unwrap();
    fs::read(m.join("c")).unwrap()
}

#[test]
fn without_passthrough_kept_pages_serve_reads() {
    puffs_tests::require_fuse!();
    // The control for the passthrough test: the page cache answers here.
    let m = Null::new("nopassthrough,keep_cache,attr_timeout=60,entry_timeout=60");
    assert_eq!(stale_read(&m), b"old!");
}

#[test]
fn rot13fs_names_and_data_round_trip() {
    puffs_tests::require_fuse!();
    let m = Null::with("rot13fs", "", "size=16M");
    fs::create_dir(m.join("Dir")).unwrap();
    fs::write(m.join("Dir/Hello.txt"), b"Hello, World 42").unwrap();
    assert_eq!(
        fs::read(m.back("Qve/Uryyb.gkg")).unwrap(),
        b"Uryyb, Jbeyq 42"
    );
    assert_eq!(
        fs::read(m.join("Dir/Hello.txt")).unwrap(),
        b"Hello, World 42"
    );
    assert_eq!(names(&m.join("Dir")), ["Hello.txt"]);
    fs::write(m.back("nop"), b"Terra").unwrap();
    assert_eq!(fs::read(m.join("abc")).unwrap(), b"Green");
    std::os::unix::fs::symlink("Dir/Hello.txt", m.join("link")).unwrap();
    assert_eq!(
        fs::read_link(m.back("yvax")).unwrap(),
        Path::new("Qve/Uryyb.gkg")
    );
    assert_eq!(fs::read(m.join("link")).unwrap(), b"Hello, World 42");
    fs::rename(m.join("abc"), m.join("xyz")).unwrap();
    assert!(m.back("klm").exists());
    let f = OpenOptions::new().write(true).open(m.join("xyz")).unwrap();
    f.write_all_at(b"Q", 2).unwrap();
    assert_eq!(fs::read(m.join("xyz")).unwrap(), b"GrQen");
}

// ---------------------------------------------------------------------------------
// Export: file handles of the mount outlive the kernel's cache

/// `struct file_handle` with room for the largest handle (MAX_HANDLE_SZ).
#[repr(C)]
struct FileHandle {
    bytes: u32,
    kind: i32,
    data: [u8; 128],
}

fn handle_of(path: &Path) -> FileHandle {
    let mut h = FileHandle {
        bytes: 128,
        kind: 0,
        data: [0; 128],
    };
    let mut mount_id = 0;
    // SAFETY: a file_handle header with `bytes` of room, a valid path and out pointer.
    let r = unsafe {
        libc::name_to_handle_at(
            libc::AT_FDCWD,
            cpath(path).as_ptr(),
            (&mut h as *mut FileHandle).cast(),
            &mut mount_id,
            0,
        )
    };
    assert_eq!(r, 0, "name_to_handle_at: errno {}", last_errno());
    h
}

fn open_by_handle(mount: &File, h: &mut FileHandle) -> Result<File, i32> {
    // SAFETY: `h` came from name_to_handle_at; the returned fd is owned at once.
    let fd = unsafe {
        libc::open_by_handle_at(
            mount.as_raw_fd(),
            (h as *mut FileHandle).cast(),
            libc::O_RDONLY,
        )
    };
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: a fresh fd.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

#[test]
fn file_handles_outlive_the_kernel_cache_with_export() {
    puffs_tests::require_fuse!();
    let m = Null::new("export");
    fs::create_dir(m.join("d")).unwrap();
    fs::write(m.join("d/f"), b"by handle").unwrap();
    fs::write(m.join("gone"), b"").unwrap();
    let (mut hf, mut hd, mut hg) = (
        handle_of(&m.join("d/f")),
        handle_of(&m.join("d")),
        handle_of(&m.join("gone")),
    );
    fs::remove_file(m.join("gone")).unwrap();
    let mount = File::open(m.path()).unwrap();
    fs::write("/proc/sys/vm/drop_caches", b"3").unwrap();
    let mut s = String::new();
    open_by_handle(&mount, &mut hf)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "by handle");
    assert!(
        open_by_handle(&mount, &mut hd).is_ok(),
        "a directory by handle"
    );
    assert_eq!(open_by_handle(&mount, &mut hg).err(), Some(libc::ESTALE));
}

#[test]
fn mount_puffs_mounts_nullfs_and_rot13fs_from_a_backing_directory() {
    puffs_tests::require_fuse!();
    let tmpfs = Tmpfs::new("size=8M");
    fs::write(tmpfs.join("uryyb"), b"Uryyb").unwrap();
    for (ty, name, want) in [
        ("nullfs", "uryyb", "Uryyb"),
        ("puffs.rot13fs", "hello", "Hello"),
    ] {
        let mnt = MountPoint::new();
        let mut cmd = Command::new(bin("mount_puffs"));
        cmd.args(["-t", ty]).arg(tmpfs.path()).arg(mnt.path());
        cmd.env("PUFFS_FS_DIR", bin_dir());
        let out = run_bounded(&mut cmd, Duration::from_secs(20));
        assert!(
            out.status.success(),
            "{ty}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (fstype, source) = mount_entry(mnt.path()).expect("mounted");
        assert_eq!(fstype, format!("fuse.{}", ty.trim_start_matches("puffs.")));
        assert_eq!(Path::new(&source), tmpfs.path());
        assert_eq!(fs::read_to_string(mnt.join(name)).unwrap(), want);
    }
}

/// Set-uid / set-gid after chown, a write and a truncate by others, as on tmpfs.
fn setid_effects(root: &Path) -> Vec<u32> {
    let mode = |p: &Path| lstat(p).mode() & 0o7777;
    let d = root.join("pub");
    fs::create_dir(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
    let a = d.join("a");
    fs::write(&a, b"x").unwrap();
    fs::set_permissions(&a, fs::Permissions::from_mode(0o6755)).unwrap();
    std::os::unix::fs::chown(&a, Some(1000), Some(1000)).unwrap();
    let mut out = vec![mode(&a)];
    // A write, a truncate and an O_TRUNC open, each by a non-owner (world-writable
    // set-id files: 4777, 2777 (no group x: stays for a member), 2770 + group member).
    for (name, perm, how) in [
        ("w", 0o4777, 0),
        ("g", 0o2777, 0),
        ("t", 0o6777, 1),
        ("o", 0o4777, 2),
        ("m", 0o2676, 0),
    ] {
        let p = d.join(name);
        fs::write(&p, b"xyz").unwrap();
        std::os::unix::fs::chown(&p, Some(0), Some(50)).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(perm)).unwrap();
        let c = cpath(&p);
        let code = run_as(1001, 1001, &[50], || {
            // SAFETY: a valid path; the fd is closed before returning.
            unsafe {
                let flags = if how == 2 {
                    libc::O_WRONLY | libc::O_TRUNC
                } else {
                    libc::O_WRONLY
                };
                let fd = libc::open(c.as_ptr(), flags);
                if fd < 0 {
                    return last_errno();
                }
                let ok = match how {
                    0 => libc::write(fd, b"y".as_ptr().cast(), 1) == 1,
                    1 => libc::ftruncate(fd, 1) == 0,
                    _ => true,
                };
                libc::close(fd);
                if !ok {
                    return 99;
                }
            }
            0
        });
        out.push(code as u32);
        out.push(mode(&p));
    }
    out
}

#[test]
fn chown_write_and_truncate_clear_set_id_bits_as_on_tmpfs() {
    puffs_tests::require_fuse!();
    let tmpfs = Tmpfs::new("size=8M");
    let want = setid_effects(tmpfs.path());
    assert_eq!(want[0], 0o755, "tmpfs: chown of a 6755 file");
    for opts in ["allow_other,nopassthrough", "allow_other,passthrough"] {
        let m = Null::new(opts);
        assert_eq!(
            setid_effects(m.path()),
            want,
            "{opts} (left) vs tmpfs (right)"
        );
    }
}

#[test]
fn passthrough_and_page_cached_opens_of_one_file_do_not_collide() {
    puffs_tests::require_fuse!();
    // The kernel refuses a page-cached open of an inode with a passthrough open and
    // back. Set-id files are opened page-cached (their writes clear the bits), so
    // chmod moves a file between the two kinds while it is open.
    let m = Null::new("passthrough");
    let (a, b) = (m.join("a"), m.join("b"));
    fs::write(&a, b"a").unwrap();
    fs::write(&b, b"b").unwrap();
    fs::set_permissions(&a, fs::Permissions::from_mode(0o4755)).unwrap();
    let cached = File::open(&a).unwrap(); // page-cached: set-uid
    fs::set_permissions(&a, fs::Permissions::from_mode(0o644)).unwrap();
    let second = OpenOptions::new().read(true).write(true).open(&a);
    let second = second.expect("a second open beside a page-cached one");
    second.write_all_at(b"A", 0).unwrap();
    assert_eq!(fs::read(m.back("a")).unwrap(), b"A");
    drop((cached, second));

    let through = File::open(&b).unwrap(); // passthrough
    fs::set_permissions(&b, fs::Permissions::from_mode(0o4755)).unwrap();
    let second = OpenOptions::new().read(true).write(true).open(&b);
    let second = second.expect("a second open beside a passthrough one");
    second.write_all_at(b"B", 0).unwrap();
    assert_eq!(fs::read(m.back("b")).unwrap(), b"B");
    drop((through, second));
    // Once both are closed, the file is opened afresh by its own kind.
    assert_eq!(fs::read(&b).unwrap(), b"B");
}

#[test]
fn eight_threads_in_one_directory() {
    puffs_tests::require_fuse!();
    let m = Null::new("");
    let root = m.path().to_path_buf();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let root = root.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    let p = root.join(format!("t{t}-{i}"));
                    let data = format!("{t}:{i}").repeat(i + 1);
                    fs::write(&p, &data).unwrap();
                    assert_eq!(fs::read_to_string(&p).unwrap(), data);
                    if i % 2 == 0 {
                        fs::rename(&p, root.join(format!("t{t}-{i}-moved"))).unwrap();
                    } else {
                        fs::remove_file(&p).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(names(m.path()), names(&m.backing()));
    assert_eq!(names(m.path()).len(), 8 * 50);
}

#[test]
fn sticky_directories_and_supplementary_groups() {
    puffs_tests::require_fuse!();
    let m = Null::new("allow_other");
    let d = m.join("tmp");
    fs::create_dir(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o1777)).unwrap();
    let theirs = d.join("theirs");
    fs::write(&theirs, b"x").unwrap();
    std::os::unix::fs::chown(&theirs, Some(1000), Some(1000)).unwrap();
    let g = m.join("group-only");
    fs::write(&g, b"for group 50").unwrap();
    std::os::unix::fs::chown(&g, Some(0), Some(50)).unwrap();
    fs::set_permissions(&g, fs::Permissions::from_mode(0o640)).unwrap();
    let (t, gp) = (cpath(&theirs), cpath(&g));
    let unlink = || {
        // SAFETY: a valid path.
        sys(unsafe { libc::unlink(t.as_ptr()) })
    };
    let read = || {
        // SAFETY: a valid path; the fd is closed at once.
        unsafe {
            let fd = libc::open(gp.as_ptr(), libc::O_RDONLY);
            if fd < 0 {
                return last_errno();
            }
            libc::close(fd);
            0
        }
    };
    assert_eq!(
        run_as(1001, 1001, &[], unlink),
        libc::EPERM,
        "sticky: not theirs"
    );
    assert_eq!(
        run_as(1001, 1001, &[], read),
        libc::EACCES,
        "not in group 50"
    );
    assert_eq!(
        run_as(1001, 1001, &[50], read),
        0,
        "in group 50 by supplementary"
    );
    assert_eq!(run_as(1000, 1000, &[], unlink), 0, "sticky: the owner may");
    assert!(!m.back("tmp/theirs").exists());
}

// ---------------------------------------------------------------------------------
// Metadata costs: FUSE requests per op, counted from the kernel's own tracepoints, and
// thread hops per lookup (docs/performance.md, nullfs "metadata").

/// Counts the FUSE requests the kernel sends one mount, by opcode, from the
/// fuse:fuse_request_send tracepoint in a private trace instance filtered on the
/// mount's connection (other mounts on the machine do not count). None (with the
/// reason printed) where tracefs or the fuse tracepoints are missing.
struct FuseRequests {
    instance: PathBuf,
}

const TRACEFS: &str = "/sys/kernel/tracing";

impl FuseRequests {
    fn start(mount: &Path) -> Option<FuseRequests> {
        let events = Path::new(TRACEFS).join("events/fuse/fuse_request_send");
        if !events.exists() {
            eprintln!("skipping: no fuse tracepoints under {TRACEFS}");
            return None;
        }
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("puffs-test-{}-{n}", std::process::id());
        let instance = Path::new(TRACEFS).join("instances").join(name);
        fs::create_dir(&instance).expect("a trace instance");
        let t = FuseRequests { instance };
        let dev = fs::metadata(mount).unwrap().dev();
        // The tracepoint prints the kernel's dev_t (major << 20 | minor).
        let conn = (libc::major(dev) << 20) | libc::minor(dev);
        let ev = t.instance.join("events/fuse/fuse_request_send");
        fs::write(ev.join("filter"), format!("connection == {conn}")).unwrap();
        fs::write(ev.join("enable"), "1").unwrap();
        Some(t)
    }

    /// Requests sent since the last call, by opcode name ("FLUSH", "LOOKUP", ...).
    fn take(&self) -> std::collections::HashMap<String, usize> {
        let text = fs::read_to_string(self.instance.join("trace")).unwrap();
        assert!(!text.contains("LOST"), "the trace buffer overflowed");
        fs::write(self.instance.join("trace"), "").unwrap();
        let mut count = std::collections::HashMap::new();
        for op in text.split(" (FUSE_").skip(1) {
            let op = op.split(')').next().unwrap_or("").to_string();
            *count.entry(op).or_insert(0) += 1;
        }
        count
    }
}

impl Drop for FuseRequests {
    fn drop(&mut self) {
        let ev = self.instance.join("events/fuse/fuse_request_send/enable");
        let _ = fs::write(ev, "0");
        let _ = fs::remove_dir(&self.instance);
    }
}

fn requests(count: &std::collections::HashMap<String, usize>, op: &str) -> usize {
    count.get(op).copied().unwrap_or(0)
}

#[test]
fn closes_send_no_flush_and_writes_ask_for_no_capability_each() {
    if let Some(why) = fuse_unavailable() {
        return eprintln!("skipping: {why}");
    }
    let m = Null::new("nopassthrough");
    let Some(trace) = FuseRequests::start(m.path()) else {
        return;
    };
    let (files, writes) = (20, 4);
    for i in 0..files {
        let mut f = File::create(m.join(&format!("f{i}"))).unwrap();
        for _ in 0..writes {
            f.write_all(&[7u8; 4096]).unwrap();
        }
    }
    let n = trace.take();
    assert_eq!(requests(&n, "WRITE"), files * writes, "{n:?}");
    assert_eq!(requests(&n, "CREATE"), files, "{n:?}");
    // The first close learns that the fs has no flush (ENOSYS); no later one asks.
    assert!(requests(&n, "FLUSH") <= 1, "a FLUSH per close: {n:?}");
    // KILLPRIV_V2: the kernel asks for security.capability once per new inode at
    // most, never once per write.
    assert!(requests(&n, "GETXATTR") <= files, "{n:?}");
    for i in 0..files {
        assert_eq!(
            fs::read(m.back(&format!("f{i}"))).unwrap().len(),
            4096 * writes
        );
    }
}

/// The voluntary context switches of the daemon's aio worker threads: one (at least)
/// per call handed to them.
fn pool_switches(pid: i32) -> u64 {
    let mut sum = 0;
    for task in fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let comm = fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("puffs-aio") {
            continue;
        }
        let status = fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if let Some(v) = line.strip_prefix("voluntary_ctxt_switches:") {
                sum += v.trim().parse::<u64>().unwrap();
            }
        }
    }
    sum
}

#[test]
fn lookups_of_names_the_backing_has_cached_stay_on_the_loop() {
    if let Some(why) = fuse_unavailable() {
        return eprintln!("skipping: {why}");
    }
    if fs::read_to_string("/proc/sys/kernel/io_uring_disabled").is_ok_and(|v| v.trim() == "2") {
        // A name the backing's cache let go of would go to the workers then.
        return eprintln!("skipping: io_uring is disabled here");
    }
    // No kernel caching: every stat is a LOOKUP.
    let m = Null::new("entry_timeout=0,attr_timeout=0");
    let names: Vec<String> = (0..50).map(|i| format!("n{i}")).collect();
    for n in &names {
        fs::write(m.back(n), b"x").unwrap();
        fs::symlink_metadata(m.back(n)).unwrap(); // now in the backing's dcache
    }
    // Starts the worker pool (a create goes through it), so there are workers to watch.
    fs::write(m.join("started"), b"").unwrap();
    let trace = FuseRequests::start(m.path());
    let pid = m.pid();
    let before = pool_switches(pid);
    for _ in 0..4 {
        for n in &names {
            assert_eq!(lstat(&m.join(n)).len(), 1);
        }
    }
    let hops = pool_switches(pid) - before;
    if let Some(t) = trace {
        let n = t.take();
        assert!(
            requests(&n, "LOOKUP") >= 200,
            "the stats were not lookups: {n:?}"
        );
    }
    assert!(
        hops < 20,
        "{hops} worker wakeups for 200 lookups of cached names"
    );
}

#[test]
fn unlink_rename_and_uncached_lookups_go_through_io_uring_not_the_workers() {
    if let Some(why) = fuse_unavailable() {
        return eprintln!("skipping: {why}");
    }
    if fs::read_to_string("/proc/sys/kernel/io_uring_disabled").is_ok_and(|v| v.trim() == "2") {
        return eprintln!("skipping: io_uring is disabled here");
    }
    let m = Null::new("aio=uring,entry_timeout=0,attr_timeout=0");
    let files: Vec<String> = (0..50).map(|i| format!("u{i}")).collect();
    for n in &files {
        fs::write(m.back(n), b"x").unwrap();
    }
    // Starts the worker pool (a create goes through it), so there are workers to watch.
    fs::write(m.join("started"), b"").unwrap();
    let pid = m.pid();
    let before = pool_switches(pid);
    for n in &files {
        // Names the backing has never looked up: not in its name cache.
        assert_eq!(
            errno(fs::symlink_metadata(m.join(&format!("missing-{n}")))),
            libc::ENOENT
        );
        fs::rename(m.join(n), m.join(&format!("{n}.r"))).unwrap();
        fs::remove_file(m.join(&format!("{n}.r"))).unwrap();
    }
    fs::create_dir(m.back("d")).unwrap();
    fs::remove_dir(m.join("d")).unwrap();
    let hops = pool_switches(pid) - before;
    assert_eq!(names(&m.backing()), ["started"]);
    assert!(
        hops < 20,
        "{hops} worker wakeups for 150 lookups, renames and unlinks"
    );
}

#[test]
fn opens_go_through_io_uring_not_the_workers() {
    if let Some(why) = fuse_unavailable() {
        return eprintln!("skipping: {why}");
    }
    if fs::read_to_string("/proc/sys/kernel/io_uring_disabled").is_ok_and(|v| v.trim() == "2") {
        return eprintln!("skipping: io_uring is disabled here");
    }
    for opts in ["aio=uring,nopassthrough", "aio=uring"] {
        let m = Null::new(opts);
        fs::write(m.join("f"), b"data").unwrap();
        let pid = m.pid();
        let before = pool_switches(pid);
        for _ in 0..50 {
            assert_eq!(fs::read(m.join("f")).unwrap(), b"data");
            let mut f = OpenOptions::new().append(true).open(m.join("f")).unwrap();
            f.write_all(b"").unwrap();
        }
        let hops = pool_switches(pid) - before;
        assert!(hops < 20, "{opts}: {hops} worker wakeups for 100 opens");
    }
}

fn getxattr(p: &Path, name: &str) -> Result<Vec<u8>, i32> {
    let (path, name) = (cpath(p), cstr(name));
    let mut buf = vec![0u8; 4096];
    // SAFETY: NUL-terminated path and name, a buffer of buf.len() bytes.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(last_errno());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

#[test]
fn getxattr_goes_through_io_uring_and_long_values_still_arrive_whole() {
    if let Some(why) = fuse_unavailable() {
        return eprintln!("skipping: {why}");
    }
    if fs::read_to_string("/proc/sys/kernel/io_uring_disabled").is_ok_and(|v| v.trim() == "2") {
        return eprintln!("skipping: io_uring is disabled here");
    }
    let m = Null::new("aio=uring");
    fs::write(m.back("f"), b"").unwrap();
    let long: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    for (name, value) in [("user.short", &b"v"[..]), ("user.long", &long[..])] {
        let (p, n) = (cpath(&m.back("f")), cstr(name));
        // SAFETY: NUL-terminated path and name, a value of value.len() bytes.
        let r = unsafe {
            libc::setxattr(
                p.as_ptr(),
                n.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        assert_eq!(r, 0, "setxattr {name} on the backing (tmpfs user xattrs)");
    }
    // Starts the worker pool (a create goes through it), so there are workers to watch.
    fs::write(m.join("started"), b"").unwrap();
    let pid = m.pid();
    let before = pool_switches(pid);
    for _ in 0..50 {
        assert_eq!(getxattr(&m.join("f"), "user.short"), Ok(b"v".to_vec()));
        assert_eq!(getxattr(&m.join("f"), "user.none"), Err(libc::ENODATA));
    }
    let hops = pool_switches(pid) - before;
    assert!(hops < 20, "{hops} worker wakeups for 100 getxattrs");
    assert_eq!(getxattr(&m.join("f"), "user.long"), Ok(long));
}

#[test]
fn inline_meta_keeps_the_semantics_and_starts_no_worker() {
    puffs_tests::require_fuse!();
    let m = Null::new("inline_meta,nopassthrough");
    let reference = Tmpfs::new("size=16M");
    let (mut rng, mut twin) = (Rng(0x1badcafe), Rng(0x1badcafe));
    for step in 0..300 {
        let (what, got) = random_op(&mut rng, m.path());
        let (_, want) = random_op(&mut twin, reference.path());
        assert_eq!(
            got, want,
            "step {step}: {what}: errno through nullfs vs tmpfs"
        );
    }
    assert_eq!(tree(m.path()), tree(reference.path()));
    fs::write(m.join("x"), b"data").unwrap();
    assert_eq!(fs::read(m.join("x")).unwrap(), b"data");
    // Every metadata call ran on the loop: the worker pool never had to start.
    let pid = m.pid();
    let workers = fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter(|t| {
            let comm = fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            comm.starts_with("puffs-aio")
        })
        .count();
    assert_eq!(workers, 0, "inline_meta started worker threads");
}

/// A nullfs mount over a directory on the disk file system under /var/tmp (ext4 or
/// the like: O_DIRECT there wants aligned memory, unlike tmpfs). Fields drop in
/// order: the mount first, then the directory.
struct DiskNull {
    mnt: MountPoint,
    dir: tempfile::TempDir,
}

impl DiskNull {
    /// None (with the reason printed) when the disk fs under /var/tmp has no O_DIRECT.
    fn new(opts: &str) -> Option<DiskNull> {
        let dir = tempfile::Builder::new()
            .prefix("puffs-nullfs-direct-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let probe = dir.path().join("probe");
        let opened = OpenOptions::new()
            .write(true)
            .create(true)
            .custom_flags(libc::O_DIRECT)
            .open(&probe);
        if let Err(e) = opened {
            println!("skipping: /var/tmp does not support O_DIRECT ({e})");
            return None;
        }
        fs::remove_file(&probe).unwrap();
        let (mnt, _) = mount("nullfs", opts, dir.path());
        Some(DiskNull { mnt, dir })
    }
}

/// `len` bytes of `raw` starting at a page boundary (O_DIRECT wants aligned memory).
fn page_aligned(raw: &mut Vec<u8>, len: usize) -> &mut [u8] {
    raw.resize(len + 4096, 0);
    let start = raw.as_ptr().align_offset(4096);
    &mut raw[start..start + len]
}

#[test]
fn o_direct_write_and_read_on_a_disk_backing_work_with_every_backend() {
    puffs_tests::require_fuse!();
    const LEN: usize = 1 << 20;
    let data: Vec<u8> = (0..LEN).map(|i| (i * 13 % 251) as u8).collect();
    for backend in BACKENDS {
        let Some(m) = DiskNull::new(&format!("nopassthrough,aio={backend}")) else {
            return;
        };
        let p = m.mnt.join("direct");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(&p)
            .unwrap_or_else(|e| panic!("aio={backend}: O_DIRECT open: {e}"));
        let mut raw = Vec::new();
        let out = page_aligned(&mut raw, LEN);
        out.copy_from_slice(&data);
        f.write_all_at(out, 0)
            .unwrap_or_else(|e| panic!("aio={backend}: O_DIRECT write: {e}"));
        let mut raw = Vec::new();
        let back = page_aligned(&mut raw, LEN);
        f.read_exact_at(back, 0)
            .unwrap_or_else(|e| panic!("aio={backend}: O_DIRECT read: {e}"));
        assert!(back == &data[..], "aio={backend}: read back differs");
        drop(f);
        let on_disk = fs::read(m.dir.path().join("direct")).unwrap();
        assert!(on_disk == data, "aio={backend}: the backing file differs");
    }
}
