//! A seeded randomized model test: one sequence of operations runs on memfs and on a
//! native tmpfs side by side, and every result (the value, or the errno) must agree.
//! The name space is small so that names collide: creating over existing names,
//! renaming onto files and directories, links and symlinks between them, loops.
//! Every few hundred ops, and at the end, the whole trees are compared too.
//!
//! On a divergence the test stops with the seed, the op index, the op, both results
//! and the ops that led there (MODEL_OPS=N changes the number of ops per seed).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt;
use std::fs::{self, File};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use puffs_tests::*;

/// xorshift64*: small, seeded, the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const LEVEL1: &[&str] = &["a", "b", "c", "d"];
const LEVEL2: &[&str] = &["x", "y", "z"];
const LEVEL3: &[&str] = &["p", "q"];
const SLOTS: usize = 4;
const XATTRS: &[&str] = &["user.k1", "user.k2", "user.k3"];

fn random_path(rng: &mut Rng) -> String {
    let depth = match rng.below(10) {
        0..=3 => 1,
        4..=7 => 2,
        _ => 3,
    };
    let mut p = rng.pick(LEVEL1).to_string();
    if depth >= 2 {
        p = format!("{p}/{}", rng.pick(LEVEL2));
    }
    if depth >= 3 {
        p = format!("{p}/{}", rng.pick(LEVEL3));
    }
    p
}

/// A symlink target: relative, without "..", so it never leaves the tree.
fn random_target(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => String::new(),
        1 => ".".into(),
        2..=5 => rng.pick(&[LEVEL1, LEVEL2, LEVEL3].concat()).to_string(),
        _ => random_path(rng),
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// open(path, flags, 0644) + pwrite(len bytes of `fill` at off) + close.
    Write {
        path: String,
        flags: i32,
        off: u64,
        len: usize,
        fill: u8,
    },
    Read {
        path: String,
        off: u64,
        len: usize,
    },
    Truncate {
        path: String,
        len: u64,
    },
    Mkdir {
        path: String,
        mode: u32,
    },
    /// A fifo (all opens are O_NONBLOCK, so a fifo never blocks the test).
    Mkfifo {
        path: String,
    },
    Rmdir {
        path: String,
    },
    Unlink {
        path: String,
    },
    /// Removes `path` and, for a directory, everything below it (rm -r).
    RemoveAll {
        path: String,
    },
    Rename {
        from: String,
        to: String,
        flags: u32,
    },
    Link {
        from: String,
        to: String,
    },
    Symlink {
        target: String,
        path: String,
    },
    Readlink {
        path: String,
    },
    Chmod {
        path: String,
        mode: u32,
    },
    Stat {
        path: String,
        follow: bool,
    },
    SameFile {
        a: String,
        b: String,
    },
    Readdir {
        path: String,
    },
    SetXattr {
        path: String,
        name: &'static str,
        value: Vec<u8>,
        flags: i32,
    },
    GetXattr {
        path: String,
        name: &'static str,
    },
    ListXattr {
        path: String,
    },
    RemoveXattr {
        path: String,
        name: &'static str,
    },
    Utimens {
        path: String,
        atime: (i64, i64),
        mtime: (i64, i64),
    },
    /// Opens `path` into fd slot `slot` (closing what was there).
    Open {
        slot: usize,
        path: String,
        flags: i32,
    },
    FdWrite {
        slot: usize,
        off: u64,
        len: usize,
        fill: u8,
    },
    FdRead {
        slot: usize,
        off: u64,
        len: usize,
    },
    FdStat {
        slot: usize,
    },
    FdTruncate {
        slot: usize,
        len: u64,
    },
    Close {
        slot: usize,
    },
}

/// Added to every open: nothing blocks on a fifo, no fd leaks into children.
const OPEN_ALWAYS: i32 = libc::O_CLOEXEC | libc::O_NONBLOCK;

const WRITE_FLAGS: &[i32] = &[
    libc::O_WRONLY,
    libc::O_WRONLY | libc::O_CREAT,
    libc::O_WRONLY | libc::O_CREAT,
    libc::O_RDWR | libc::O_CREAT,
    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
    libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
    libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND,
];

const OPEN_FLAGS: &[i32] = &[
    libc::O_RDONLY,
    libc::O_RDWR,
    libc::O_RDWR | libc::O_CREAT,
    libc::O_RDWR | libc::O_CREAT | libc::O_APPEND,
    libc::O_RDONLY | libc::O_DIRECTORY,
    libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
];

const MODES: &[u32] = &[
    0o644, 0o600, 0o755, 0o700, 0o000, 0o4755, 0o2755, 0o1777, 0o444,
];

fn random_offset(rng: &mut Rng) -> u64 {
    match rng.below(20) {
        0 => (1 << 20) + rng.below(10_000),
        1..=4 => 0,
        _ => rng.below(20_000),
    }
}

fn random_len(rng: &mut Rng) -> usize {
    match rng.below(10) {
        0 => 0,
        1 => 4096,
        2 => rng.below(70_000) as usize,
        _ => rng.below(5_000) as usize,
    }
}

fn random_op(rng: &mut Rng) -> Op {
    let path = random_path(rng);
    match rng.below(100) {
        0..=11 => Op::Write {
            path,
            flags: *rng.pick(WRITE_FLAGS),
            off: random_offset(rng),
            len: random_len(rng),
            fill: rng.below(256) as u8,
        },
        12..=17 => Op::Read {
            path,
            off: random_offset(rng),
            len: random_len(rng),
        },
        18..=20 => Op::Truncate {
            path,
            len: random_offset(rng),
        },
        21 => Op::Mkfifo { path },
        22..=25 => Op::Mkdir {
            path,
            mode: *rng.pick(&[0o755, 0o755, 0o700, 0o1777, 0o2775]),
        },
        26..=29 => Op::Rmdir { path },
        30..=31 => Op::RemoveAll { path },
        32..=38 => Op::Unlink { path },
        39..=46 => Op::Rename {
            from: path,
            to: random_path(rng),
            flags: *rng.pick(&[0, 0, 0, libc::RENAME_NOREPLACE, libc::RENAME_EXCHANGE]),
        },
        47..=50 => Op::Link {
            from: path,
            to: random_path(rng),
        },
        51..=54 => Op::Symlink {
            target: random_target(rng),
            path,
        },
        55..=56 => Op::Readlink { path },
        57..=59 => Op::Chmod {
            path,
            mode: *rng.pick(MODES),
        },
        60..=67 => Op::Stat {
            path,
            follow: rng.chance(50),
        },
        68..=69 => Op::SameFile {
            a: path,
            b: random_path(rng),
        },
        70..=74 => Op::Readdir {
            path: if rng.chance(20) { String::new() } else { path },
        },
        75..=77 => Op::SetXattr {
            path,
            name: XATTRS[rng.below(XATTRS.len() as u64) as usize],
            value: vec![rng.below(256) as u8; rng.below(40) as usize],
            flags: *rng.pick(&[0, 0, libc::XATTR_CREATE, libc::XATTR_REPLACE]),
        },
        78..=79 => Op::GetXattr {
            path,
            name: XATTRS[rng.below(XATTRS.len() as u64) as usize],
        },
        80 => Op::ListXattr { path },
        81 => Op::RemoveXattr {
            path,
            name: XATTRS[rng.below(XATTRS.len() as u64) as usize],
        },
        82..=83 => Op::Utimens {
            path,
            atime: (
                rng.below(2_000_000_000) as i64,
                rng.below(1_000_000_000) as i64,
            ),
            mtime: (
                rng.below(2_000_000_000) as i64,
                rng.below(1_000_000_000) as i64,
            ),
        },
        84..=87 => Op::Open {
            slot: rng.below(SLOTS as u64) as usize,
            path,
            flags: *rng.pick(OPEN_FLAGS),
        },
        88..=91 => Op::FdWrite {
            slot: rng.below(SLOTS as u64) as usize,
            off: random_offset(rng),
            len: random_len(rng),
            fill: rng.below(256) as u8,
        },
        92..=94 => Op::FdRead {
            slot: rng.below(SLOTS as u64) as usize,
            off: random_offset(rng),
            len: random_len(rng),
        },
        95..=96 => Op::FdStat {
            slot: rng.below(SLOTS as u64) as usize,
        },
        97 => Op::FdTruncate {
            slot: rng.below(SLOTS as u64) as usize,
            len: random_offset(rng),
        },
        _ => Op::Close {
            slot: rng.below(SLOTS as u64) as usize,
        },
    }
}

/// The comparable part of a stat: type and mode, size (not for directories, whose
/// size is the file system's own business), link count, owner.
#[derive(PartialEq, Eq, Debug, Clone)]
struct StatInfo {
    mode: u32,
    size: Option<u64>,
    nlink: u64,
    uid: u32,
    gid: u32,
}

fn stat_info(m: &fs::Metadata) -> StatInfo {
    StatInfo {
        mode: m.mode(),
        size: (!m.is_dir()).then(|| m.size()),
        nlink: m.nlink(),
        uid: m.uid(),
        gid: m.gid(),
    }
}

#[derive(PartialEq, Eq, Clone)]
enum Outcome {
    Done,
    Err(i32),
    Count(usize),
    Bytes(Vec<u8>),
    Text(String),
    Stat(StatInfo),
    Bool(bool),
    Names(Vec<(String, char)>),
    List(Vec<String>),
    Times((i64, i64), (i64, i64)),
    NoFd,
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Err(e) => write!(f, "Err({})", std::io::Error::from_raw_os_error(*e)),
            Outcome::Bytes(b) => {
                let first_nonzero = b.iter().position(|x| *x != 0);
                write!(
                    f,
                    "Bytes(len {}, first nonzero at {first_nonzero:?}, sum {})",
                    b.len(),
                    b.iter().map(|x| *x as u64).sum::<u64>()
                )
            }
            Outcome::Done => write!(f, "Done"),
            Outcome::Count(n) => write!(f, "Count({n})"),
            Outcome::Text(t) => write!(f, "Text({t:?})"),
            Outcome::Stat(s) => write!(f, "{s:?} mode {:o}", s.mode),
            Outcome::Bool(b) => write!(f, "Bool({b})"),
            Outcome::Names(n) => write!(f, "Names({n:?})"),
            Outcome::List(l) => write!(f, "List({l:?})"),
            Outcome::Times(a, m) => write!(f, "Times(atime {a:?}, mtime {m:?})"),
            Outcome::NoFd => write!(f, "NoFd"),
        }
    }
}

fn c(root: &Path, rel: &str) -> CString {
    cpath(&root.join(rel))
}

/// -1 → Err(errno), else the value.
fn check(ret: isize) -> Result<isize, Outcome> {
    if ret < 0 {
        Err(Outcome::Err(last_errno()))
    } else {
        Ok(ret)
    }
}

fn done(ret: libc::c_int) -> Outcome {
    match check(ret as isize) {
        Ok(_) => Outcome::Done,
        Err(e) => e,
    }
}

fn io_outcome(e: std::io::Error) -> Outcome {
    Outcome::Err(errno_of(&e))
}

fn pwrite(fd: i32, off: u64, len: usize, fill: u8) -> Outcome {
    let buf = vec![fill; len];
    // SAFETY: a buffer of `len` bytes.
    match check(unsafe { libc::pwrite(fd, buf.as_ptr().cast(), len, off as i64) }) {
        Ok(n) => Outcome::Count(n as usize),
        Err(e) => e,
    }
}

fn pread(fd: i32, off: u64, len: usize) -> Outcome {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    // Short reads are allowed mid-file by POSIX only for special files; loop anyway
    // so both sides are compared on the full answer.
    while got < len {
        // SAFETY: the buffer has `len - got` bytes left from `got`.
        let n = unsafe {
            libc::pread(
                fd,
                buf[got..].as_mut_ptr().cast(),
                len - got,
                (off + got as u64) as i64,
            )
        };
        match check(n) {
            Ok(0) => break,
            Ok(n) => got += n as usize,
            Err(e) => return e,
        }
    }
    buf.truncate(got);
    Outcome::Bytes(buf)
}

fn xattr_value(ret: isize, buf: Vec<u8>) -> Outcome {
    match check(ret) {
        Ok(n) => Outcome::Bytes(buf[..n as usize].to_vec()),
        Err(e) => e,
    }
}

/// Runs one op on the tree at `root` with the fd table `fds`.
fn apply(root: &Path, fds: &mut [Option<File>; SLOTS], op: &Op) -> Outcome {
    let p = |rel: &str| root.join(rel);
    match op {
        Op::Write {
            path,
            flags,
            off,
            len,
            fill,
        } => {
            let cp = c(root, path);
            // SAFETY: a valid path; the fd is owned by the File below.
            let fd = unsafe { libc::open(cp.as_ptr(), *flags | OPEN_ALWAYS, 0o644) };
            if fd < 0 {
                return Outcome::Err(last_errno());
            }
            // SAFETY: fd was just opened and is owned by nobody else.
            let file = unsafe { File::from_raw_fd(fd) };
            pwrite(file.as_raw_fd(), *off, *len, *fill)
        }
        Op::Read { path, off, len } => {
            let cp = c(root, path);
            // SAFETY: a valid path; the fd is owned by the File below.
            let fd = unsafe { libc::open(cp.as_ptr(), OPEN_ALWAYS | libc::O_RDONLY) };
            if fd < 0 {
                return Outcome::Err(last_errno());
            }
            // SAFETY: fd was just opened and is owned by nobody else.
            let file = unsafe { File::from_raw_fd(fd) };
            pread(file.as_raw_fd(), *off, *len)
        }
        Op::Mkfifo { path } => {
            // SAFETY: a valid path.
            done(unsafe { libc::mkfifo(c(root, path).as_ptr(), 0o640) })
        }
        Op::Truncate { path, len } => {
            // SAFETY: a valid path.
            done(unsafe { libc::truncate(c(root, path).as_ptr(), *len as i64) })
        }
        Op::Mkdir { path, mode } => {
            // SAFETY: a valid path.
            done(unsafe { libc::mkdir(c(root, path).as_ptr(), *mode) })
        }
        Op::Rmdir { path } => {
            // SAFETY: a valid path.
            done(unsafe { libc::rmdir(c(root, path).as_ptr()) })
        }
        Op::Unlink { path } => {
            // SAFETY: a valid path.
            done(unsafe { libc::unlink(c(root, path).as_ptr()) })
        }
        Op::RemoveAll { path } => {
            let r = match fs::symlink_metadata(p(path)) {
                Ok(m) if m.is_dir() => fs::remove_dir_all(p(path)),
                Ok(_) => fs::remove_file(p(path)),
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => Outcome::Done,
                Err(e) => io_outcome(e),
            }
        }
        Op::Rename { from, to, flags } => {
            let (f, t) = (c(root, from), c(root, to));
            // SAFETY: valid paths.
            done(unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    f.as_ptr(),
                    libc::AT_FDCWD,
                    t.as_ptr(),
                    *flags,
                )
            })
        }
        Op::Link { from, to } => match fs::hard_link(p(from), p(to)) {
            Ok(()) => Outcome::Done,
            Err(e) => io_outcome(e),
        },
        Op::Symlink { target, path } => {
            let t = CString::new(target.as_str()).unwrap();
            // SAFETY: valid C strings.
            done(unsafe { libc::symlink(t.as_ptr(), c(root, path).as_ptr()) })
        }
        Op::Readlink { path } => match fs::read_link(p(path)) {
            Ok(t) => Outcome::Text(t.to_string_lossy().into_owned()),
            Err(e) => io_outcome(e),
        },
        Op::Chmod { path, mode } => {
            // SAFETY: a valid path.
            done(unsafe { libc::chmod(c(root, path).as_ptr(), *mode) })
        }
        Op::Stat { path, follow } => {
            let r = if *follow {
                fs::metadata(p(path))
            } else {
                fs::symlink_metadata(p(path))
            };
            match r {
                Ok(m) => Outcome::Stat(stat_info(&m)),
                Err(e) => io_outcome(e),
            }
        }
        Op::SameFile { a, b } => match (fs::symlink_metadata(p(a)), fs::symlink_metadata(p(b))) {
            (Ok(x), Ok(y)) => Outcome::Bool(x.ino() == y.ino()),
            (Err(e), _) | (_, Err(e)) => io_outcome(e),
        },
        Op::Readdir { path } => match fs::read_dir(p(path)) {
            Ok(rd) => {
                let mut v = Vec::new();
                for e in rd {
                    match e {
                        Ok(e) => v.push((
                            e.file_name().to_string_lossy().into_owned(),
                            type_char(&e.file_type().unwrap()),
                        )),
                        Err(e) => return io_outcome(e),
                    }
                }
                v.sort();
                Outcome::Names(v)
            }
            Err(e) => io_outcome(e),
        },
        Op::SetXattr {
            path,
            name,
            value,
            flags,
        } => {
            let n = CString::new(*name).unwrap();
            // SAFETY: valid C strings and a buffer of the given length.
            done(unsafe {
                libc::setxattr(
                    c(root, path).as_ptr(),
                    n.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    *flags,
                )
            })
        }
        Op::GetXattr { path, name } => {
            let n = CString::new(*name).unwrap();
            let mut buf = vec![0u8; 256];
            // SAFETY: a buffer of 256 bytes.
            let r = unsafe {
                libc::getxattr(
                    c(root, path).as_ptr(),
                    n.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    256,
                )
            };
            xattr_value(r, buf)
        }
        Op::ListXattr { path } => {
            let mut buf = vec![0u8; 4096];
            // SAFETY: a buffer of 4096 bytes.
            let r =
                unsafe { libc::listxattr(c(root, path).as_ptr(), buf.as_mut_ptr().cast(), 4096) };
            match check(r) {
                Ok(n) => {
                    let mut l: Vec<String> = buf[..n as usize]
                        .split(|b| *b == 0)
                        .filter(|s| !s.is_empty())
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect();
                    l.sort();
                    Outcome::List(l)
                }
                Err(e) => e,
            }
        }
        Op::RemoveXattr { path, name } => {
            let n = CString::new(*name).unwrap();
            // SAFETY: valid C strings.
            done(unsafe { libc::removexattr(c(root, path).as_ptr(), n.as_ptr()) })
        }
        Op::Utimens { path, atime, mtime } => {
            let times = [
                libc::timespec {
                    tv_sec: atime.0,
                    tv_nsec: atime.1,
                },
                libc::timespec {
                    tv_sec: mtime.0,
                    tv_nsec: mtime.1,
                },
            ];
            // SAFETY: a valid path and two timespecs.
            let r = unsafe {
                libc::utimensat(libc::AT_FDCWD, c(root, path).as_ptr(), times.as_ptr(), 0)
            };
            if r < 0 {
                return Outcome::Err(last_errno());
            }
            match fs::metadata(p(path)) {
                Ok(m) => Outcome::Times((m.atime(), m.atime_nsec()), (m.mtime(), m.mtime_nsec())),
                Err(e) => io_outcome(e),
            }
        }
        Op::Open { slot, path, flags } => {
            fds[*slot] = None;
            let cp = c(root, path);
            // SAFETY: a valid path; the fd is owned by the File below.
            let fd = unsafe { libc::open(cp.as_ptr(), *flags | OPEN_ALWAYS, 0o644) };
            if fd < 0 {
                return Outcome::Err(last_errno());
            }
            // SAFETY: fd was just opened and is owned by nobody else.
            fds[*slot] = Some(unsafe { File::from_raw_fd(fd) });
            Outcome::Done
        }
        Op::FdWrite {
            slot,
            off,
            len,
            fill,
        } => match &fds[*slot] {
            Some(f) => pwrite(f.as_raw_fd(), *off, *len, *fill),
            None => Outcome::NoFd,
        },
        Op::FdRead { slot, off, len } => match &fds[*slot] {
            Some(f) => pread(f.as_raw_fd(), *off, *len),
            None => Outcome::NoFd,
        },
        Op::FdStat { slot } => match &fds[*slot] {
            Some(f) => match f.metadata() {
                Ok(m) => Outcome::Stat(stat_info(&m)),
                Err(e) => io_outcome(e),
            },
            None => Outcome::NoFd,
        },
        Op::FdTruncate { slot, len } => match &fds[*slot] {
            // SAFETY: an open fd.
            Some(f) => done(unsafe { libc::ftruncate(f.as_raw_fd(), *len as i64) }),
            None => Outcome::NoFd,
        },
        Op::Close { slot } => {
            let had = fds[*slot].take().is_some();
            Outcome::Bool(had)
        }
    }
}

fn type_char(t: &fs::FileType) -> char {
    if t.is_dir() {
        'd'
    } else if t.is_symlink() {
        'l'
    } else if t.is_file() {
        'f'
    } else if t.is_fifo() {
        'p'
    } else {
        '?'
    }
}

/// Everything comparable about one tree entry.
#[derive(PartialEq, Eq, Debug)]
struct Snap {
    stat: StatInfo,
    /// File contents (as a length and a checksum, to keep messages short), or the
    /// symlink target.
    content: String,
    xattrs: Vec<(String, Vec<u8>)>,
}

fn snapshot(root: &Path) -> BTreeMap<String, Snap> {
    fn walk(root: &Path, rel: &str, out: &mut BTreeMap<String, Snap>) {
        let dir = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let path = root.join(&rel);
            let m = fs::symlink_metadata(&path).unwrap();
            let content = if m.is_file() {
                let data = fs::read(&path).unwrap();
                let sum = data.iter().enumerate().fold(0u64, |s, (i, b)| {
                    s.wrapping_mul(31).wrapping_add(*b as u64 ^ i as u64)
                });
                format!("{} bytes, sum {sum:x}", data.len())
            } else if m.file_type().is_symlink() {
                fs::read_link(&path).unwrap().to_string_lossy().into_owned()
            } else {
                String::new()
            };
            let mut xattrs = Vec::new();
            if !m.file_type().is_symlink() {
                if let Outcome::List(names) = apply(
                    root,
                    &mut Default::default(),
                    &Op::ListXattr { path: rel.clone() },
                ) {
                    for n in names {
                        let cn = CString::new(n.as_str()).unwrap();
                        let mut buf = vec![0u8; 256];
                        // SAFETY: a buffer of 256 bytes.
                        let r = unsafe {
                            libc::getxattr(
                                cpath(&path).as_ptr(),
                                cn.as_ptr(),
                                buf.as_mut_ptr().cast(),
                                256,
                            )
                        };
                        xattrs.push((n, buf[..r.max(0) as usize].to_vec()));
                    }
                }
            }
            out.insert(
                rel.clone(),
                Snap {
                    stat: stat_info(&m),
                    content,
                    xattrs,
                },
            );
            if m.is_dir() {
                walk(root, &rel, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, "", &mut out);
    out
}

fn compare_trees(seed: u64, at: usize, memfs: &Path, tmpfs: &Path) {
    let (got, want) = (snapshot(memfs), snapshot(tmpfs));
    if got == want {
        return;
    }
    let keys: std::collections::BTreeSet<&String> = got.keys().chain(want.keys()).collect();
    for k in keys {
        let (g, w) = (got.get(k), want.get(k));
        if g != w {
            panic!(
                "seed {seed}: after op {at} the trees differ at {k:?}:\n  memfs: {g:?}\n  tmpfs: {w:?}"
            );
        }
    }
}

fn ops_per_seed() -> usize {
    std::env::var("MODEL_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
}

/// Seeds run in parallel, except the one that drops the kernel's caches: it runs
/// alone, so the others never see an eviction between two calls of one op.
static EXCLUSIVE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Runs the ops of `seed` on memfs (mounted with `opts`) and tmpfs; with `evict_every`,
/// the kernel drops its dentries and inodes every that many ops, so memfs gets FORGETs
/// and fresh lookups of everything nobody holds.
fn run_model(seed: u64, opts: &str, evict_every: Option<usize>) {
    let _shared;
    let _alone;
    if evict_every.is_some() {
        _alone = EXCLUSIVE.write().unwrap_or_else(|e| e.into_inner());
    } else {
        _shared = EXCLUSIVE.read().unwrap_or_else(|e| e.into_inner());
    }
    let memfs = Mounted::new("memfs", opts);
    let tmpfs = Tmpfs::new("");
    // Both roots alike: tmpfs's root is 1777.
    for root in [memfs.path(), tmpfs.path()] {
        fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let mut rng = Rng::new(seed);
    let mut fds_m: [Option<File>; SLOTS] = Default::default();
    let mut fds_t: [Option<File>; SLOTS] = Default::default();
    let mut history: Vec<String> = Vec::new();
    let n = ops_per_seed();
    let start = std::time::Instant::now();
    for i in 0..n {
        let op = random_op(&mut rng);
        let want = apply(tmpfs.path(), &mut fds_t, &op);
        let got = apply(memfs.path(), &mut fds_m, &op);
        if got != want {
            let from = history.len().saturating_sub(30);
            panic!(
                "seed {seed} ({opts}): op {i} diverges: {op:?}\n  memfs: {got:?}\n  tmpfs: {want:?}\n\
                 the ops before it:\n{}",
                history[from..].join("\n")
            );
        }
        history.push(format!("  {i}: {op:?} -> {want:?}"));
        if evict_every.is_some_and(|n| i % n == n - 1) {
            drop_dentries_and_inodes();
        }
        if i % 500 == 499 {
            compare_trees(seed, i, memfs.path(), tmpfs.path());
        }
    }
    // Closing all fds may free unlinked files; then the trees must still agree.
    drop((fds_m, fds_t));
    compare_trees(seed, n, memfs.path(), tmpfs.path());
    eprintln!(
        "seed {seed} ({opts}): {n} ops agree in {:.1?}",
        start.elapsed()
    );
}

#[test]
fn model_seed_1() {
    puffs_tests::require_fuse!();
    run_model(1, "", None);
}

#[test]
fn model_seed_2() {
    puffs_tests::require_fuse!();
    run_model(2, "", None);
}

#[test]
fn model_seed_3() {
    puffs_tests::require_fuse!();
    run_model(3, "", None);
}

#[test]
fn model_seed_4() {
    puffs_tests::require_fuse!();
    run_model(4, "", None);
}

#[test]
fn model_seed_5_uncached() {
    puffs_tests::require_fuse!();
    run_model(5, "attr_timeout=0,entry_timeout=0", None);
}

#[test]
fn model_seed_6_evicting() {
    puffs_tests::require_fuse!();
    run_model(6, "", Some(250));
}

#[test]
fn rng_is_deterministic() {
    let a: Vec<u64> = {
        let mut r = Rng::new(42);
        (0..5).map(|_| r.next()).collect()
    };
    let mut r = Rng::new(42);
    assert_eq!(a, (0..5).map(|_| r.next()).collect::<Vec<_>>());
    assert_ne!(Rng::new(1).next(), Rng::new(2).next());
}
