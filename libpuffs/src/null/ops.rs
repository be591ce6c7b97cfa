//! The null layer's system calls, as plain blocking functions over backing fds and
//! single names: every path is one component relative to a directory fd, never
//! followed if it is a symlink, so nothing here can leave the backing directory or
//! needs a full path (trees deeper than PATH_MAX work). The `Ops` glue runs them on
//! the aio worker pool (`Aio::blocking`), off the loop thread; unlink and rename are
//! `aio::MetaCall`s (io_uring where the ring has them).

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::sys::time::TimeSpec;

use super::node::BackingKey;
use crate::args::Whence;
use crate::attr::{Attr, FileType, SetTime, Statvfs};

fn io_err(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// `name` as a C string: one path component (no '/', not "." or "..", no NUL).
pub fn component(name: &OsStr) -> io::Result<CString> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    if b.len() > 255 {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    CString::new(b).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The /proc path that reopens the file `fd` is open on (an O_PATH fd made into a
/// real open file, as the kernel allows for the file itself, not a path walk).
pub(super) fn proc_path(fd: &OwnedFd) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL in a number")
}

/// Opens `name` in `dir` as an O_PATH fd, not following a symlink.
pub fn lookup(dir: &OwnedFd, name: &CString) -> io::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    nix::fcntl::openat(dir.as_fd(), name.as_c_str(), flags, Mode::empty()).map_err(io_err)
}

/// `lookup`, done only if the name (and the directory) are in the kernel's name
/// cache (openat2 with RESOLVE_CACHED, Linux 5.12+): it then reads no disk, so it
/// may run on the loop thread. EAGAIN when it would have to wait; EINVAL, E2BIG or
/// ENOSYS from a kernel that cannot say. A cached negative entry answers ENOENT.
pub fn lookup_cached(dir: &OwnedFd, name: &CString) -> io::Result<OwnedFd> {
    use nix::fcntl::{OpenHow, ResolveFlag};
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let resolve = ResolveFlag::RESOLVE_BENEATH
        | ResolveFlag::RESOLVE_NO_MAGICLINKS
        | ResolveFlag::from_bits_retain(libc::RESOLVE_CACHED);
    let how = OpenHow::new().flags(flags).resolve(resolve);
    nix::fcntl::openat2(dir.as_fd(), name.as_c_str(), how).map_err(io_err)
}

/// The parent of the directory `dir` as an O_PATH fd (export's lookup of "..").
pub fn parent(dir: &OwnedFd) -> io::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    nix::fcntl::openat(dir.as_fd(), c"..", flags, Mode::empty()).map_err(io_err)
}

/// The attributes of the file `fd` is open on (a symlink itself, not its target).
pub fn stat(fd: &OwnedFd) -> io::Result<FileStat> {
    nix::sys::stat::fstatat(
        fd.as_fd(),
        c"",
        AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(io_err)
}

/// The node key of a stat.
pub fn key_of(st: &FileStat) -> BackingKey {
    BackingKey {
        dev: st.st_dev,
        ino: st.st_ino,
    }
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nsecs as u64)
    }
}

/// The device number in the kernel's 32-bit encoding (new_encode_dev), as FUSE
/// carries it.
fn encode_dev(rdev: u64) -> u32 {
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// The device number FUSE gives (new_encode_dev) as a `dev_t`.
pub fn decode_dev(dev: u32) -> u64 {
    let major = (dev & 0xfff00) >> 8;
    let minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    libc::makedev(major, minor)
}

/// A stat as the framework's attributes, with the backing inode number.
pub fn attr_of(st: &FileStat) -> Attr {
    let kind = FileType::from_mode(st.st_mode).unwrap_or(FileType::RegularFile);
    Attr {
        ino: st.st_ino,
        size: st.st_size as u64,
        blocks: st.st_blocks as u64,
        atime: time(st.st_atime, st.st_atime_nsec),
        mtime: time(st.st_mtime, st.st_mtime_nsec),
        ctime: time(st.st_ctime, st.st_ctime_nsec),
        kind,
        perm: (st.st_mode & 0o7777) as u16,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: encode_dev(st.st_rdev),
        blksize: st.st_blksize as u32,
    }
}

/// Who a new node belongs to: the caller, and its group unless the directory is
/// set-gid (then the directory's group, which the kernel already gave it).
#[derive(Clone, Copy, Debug)]
pub struct Owner {
    /// The caller's uid.
    pub uid: u32,
    /// The caller's gid.
    pub gid: u32,
    /// Whether the caller is in the directory's group (for a set-gid directory's
    /// rule that a non-member's new file loses S_ISGID).
    pub in_dir_group: bool,
}

/// Gives the new node `fd` to `owner` (it was made by the server), keeping the
/// group a set-gid directory gave it, and puts back set-id bits the chown cleared.
pub fn give(fd: &OwnedFd, dir: &FileStat, owner: Owner, mode: u32) -> io::Result<FileStat> {
    let sgid_dir = dir.st_mode & libc::S_ISGID != 0;
    let gid = (!sgid_dir).then_some(owner.gid);
    nix::unistd::fchownat(
        fd.as_fd(),
        c"",
        Some(owner.uid.into()),
        gid.map(Into::into),
        AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(io_err)?;
    let st = stat(fd)?;
    let mut want = mode & 0o7777;
    let regular = st.st_mode & libc::S_IFMT == libc::S_IFREG;
    if sgid_dir && regular && !owner.in_dir_group && owner.uid != 0 {
        want &= !libc::S_ISGID;
    }
    let is_link = st.st_mode & libc::S_IFMT == libc::S_IFLNK;
    if !is_link && st.st_mode & 0o7777 != want && (mode & 0o6000 != 0 || regular) {
        chmod(fd, want)?;
        return stat(fd);
    }
    Ok(st)
}

/// Clears set-uid, and set-gid when group-execute is set or the caller is not in the
/// file's group (`in_group`), of the regular file `fd` is open on: what the kernel
/// does on a write or truncate by an unprivileged caller, and on chown. The server
/// (root, CAP_FSETID) writing to the backing file would keep them.
pub fn kill_suidgid(fd: &OwnedFd, in_group: impl FnOnce(u32) -> bool) -> io::Result<FileStat> {
    let st = stat(fd)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Ok(st);
    }
    let mut kill = st.st_mode & libc::S_ISUID;
    let sgid = st.st_mode & libc::S_ISGID != 0;
    if sgid && (st.st_mode & libc::S_IXGRP != 0 || !in_group(st.st_gid)) {
        kill |= libc::S_ISGID;
    }
    if kill == 0 {
        return Ok(st);
    }
    chmod(fd, st.st_mode & 0o7777 & !kill)?;
    stat(fd)
}

/// mkdir `name` in `dir`; returns its O_PATH fd.
pub fn mkdir(dir: &OwnedFd, name: &CString, mode: u32) -> io::Result<OwnedFd> {
    nix::sys::stat::mkdirat(dir.as_fd(), name.as_c_str(), Mode::from_bits_truncate(mode))
        .map_err(io_err)?;
    lookup(dir, name)
}

/// mknod `name` in `dir` (`mode` with its type bits, `rdev` as FUSE encodes it).
pub fn mknod(dir: &OwnedFd, name: &CString, mode: u32, rdev: u32) -> io::Result<OwnedFd> {
    let kind = SFlag::from_bits_truncate(mode & libc::S_IFMT);
    let perm = Mode::from_bits_truncate(mode & 0o7777);
    nix::sys::stat::mknodat(dir.as_fd(), name.as_c_str(), kind, perm, decode_dev(rdev))
        .map_err(io_err)?;
    lookup(dir, name)
}

/// symlink `name` in `dir` pointing at `target`.
pub fn symlink(dir: &OwnedFd, name: &CString, target: &OsStr) -> io::Result<OwnedFd> {
    nix::unistd::symlinkat(target, dir.as_fd(), name.as_c_str()).map_err(io_err)?;
    lookup(dir, name)
}

/// Creates and opens the regular file `name` in `dir` (O_CREAT | O_EXCL, never
/// through a symlink); returns the open file and an O_PATH fd of it.
pub fn create(dir: &OwnedFd, name: &CString, mode: u32, flags: i32) -> io::Result<OwnedFd> {
    let flags = OFlag::from_bits_truncate(open_flags(flags))
        | OFlag::O_CREAT
        | OFlag::O_EXCL
        | OFlag::O_NOFOLLOW;
    nix::fcntl::openat(
        dir.as_fd(),
        name.as_c_str(),
        flags,
        Mode::from_bits_truncate(mode),
    )
    .map_err(io_err)
}

/// open(2) flags for the backing file: the caller's, less what the kernel has dealt
/// with (creation, symlink refusal, the controlling tty), close-on-exec.
pub fn open_flags(flags: i32) -> i32 {
    let flags = OFlag::from_bits_truncate(flags).bits();
    (flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_NOFOLLOW)) | libc::O_CLOEXEC
}

/// Opens the file `fd` (O_PATH) names for I/O with open(2) `flags`.
pub fn open(fd: &OwnedFd, flags: i32) -> io::Result<OwnedFd> {
    let flags = OFlag::from_bits_truncate(open_flags(flags));
    nix::fcntl::open(proc_path(fd).as_c_str(), flags, Mode::empty()).map_err(io_err)
}

/// A new name `newname` in `newdir` for the file `fd` (O_PATH) is open on.
pub fn link(fd: &OwnedFd, newdir: &OwnedFd, newname: &CString) -> io::Result<()> {
    nix::unistd::linkat(
        fd.as_fd(),
        c"",
        newdir.as_fd(),
        newname.as_c_str(),
        AtFlags::AT_EMPTY_PATH,
    )
    .map_err(io_err)
}

/// The target of the symlink `fd` (O_PATH) is open on.
pub fn readlink(fd: &OwnedFd) -> io::Result<OsString> {
    nix::fcntl::readlinkat(fd.as_fd(), c"").map_err(io_err)
}

/// chmod the file `fd` (O_PATH, not a symlink) is open on.
pub fn chmod(fd: &OwnedFd, mode: u32) -> io::Result<()> {
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        proc_path(fd).as_c_str(),
        Mode::from_bits_truncate(mode & 0o7777),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(io_err)
}

/// chown the file `fd` (O_PATH) is open on (a symlink itself).
pub fn chown(fd: &OwnedFd, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    nix::unistd::fchownat(
        fd.as_fd(),
        c"",
        uid.map(Into::into),
        gid.map(Into::into),
        AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(io_err)
}

/// Truncates (or extends) to `size` through `file`, an fd open for writing.
pub fn truncate(file: &OwnedFd, size: u64) -> io::Result<()> {
    nix::unistd::ftruncate(file.as_fd(), size as i64).map_err(io_err)
}

/// Truncates (or extends) to `size` the file `fd` (O_PATH) is open on, as truncate(2)
/// by path does it (which, unlike ftruncate, leaves the times alone when the size
/// stays the same).
pub fn truncate_path(fd: &OwnedFd, size: u64) -> io::Result<()> {
    nix::unistd::truncate(proc_path(fd).as_c_str(), size as i64).map_err(io_err)
}

fn timespec(t: Option<SetTime>) -> TimeSpec {
    match t {
        None => TimeSpec::UTIME_OMIT,
        Some(SetTime::Now) => TimeSpec::UTIME_NOW,
        Some(SetTime::At(t)) => {
            let d = match t.duration_since(UNIX_EPOCH) {
                Ok(d) => d,
                Err(e) => {
                    return TimeSpec::from_duration(Duration::ZERO)
                        - TimeSpec::from_duration(e.duration())
                }
            };
            TimeSpec::from_duration(d)
        }
    }
}

/// Sets atime / mtime (None: leave it, UTIME_OMIT; `Now`: UTIME_NOW) of the file
/// `fd` (O_PATH) is open on; a symlink's own.
pub fn utimes(
    fd: &OwnedFd,
    is_link: bool,
    atime: Option<SetTime>,
    mtime: Option<SetTime>,
) -> io::Result<()> {
    let (a, m) = (timespec(atime), timespec(mtime));
    if !is_link {
        return nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            proc_path(fd).as_c_str(),
            &a,
            &m,
            nix::sys::stat::UtimensatFlags::FollowSymlink,
        )
        .map_err(io_err);
    }
    let times = [*a.as_ref(), *m.as_ref()];
    // SAFETY: a valid fd, a NUL-terminated empty path and two timespecs.
    let r = unsafe {
        libc::utimensat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            times.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One directory entry of the backing directory.
#[derive(Clone, Debug)]
pub struct DirEnt {
    /// Its name in the backing directory.
    pub name: OsString,
    /// Its backing inode number.
    pub ino: u64,
    /// Its type.
    pub kind: FileType,
}

/// All entries of the directory `dir` (O_PATH) but "." and "..", which the caller
/// adds.
pub fn list(dir: &OwnedFd) -> io::Result<Vec<DirEnt>> {
    use std::os::unix::fs::DirEntryExt;
    let path = OsString::from_vec(proc_path(dir).into_bytes());
    let mut out = Vec::new();
    for e in std::fs::read_dir(path)? {
        let e = e?;
        let t = e.file_type()?;
        out.push(DirEnt {
            name: e.file_name(),
            ino: e.ino(),
            kind: kind_of(t),
        });
    }
    Ok(out)
}

fn kind_of(t: std::fs::FileType) -> FileType {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        FileType::Directory
    } else if t.is_symlink() {
        FileType::Symlink
    } else if t.is_fifo() {
        FileType::Fifo
    } else if t.is_char_device() {
        FileType::CharDevice
    } else if t.is_block_device() {
        FileType::BlockDevice
    } else if t.is_socket() {
        FileType::Socket
    } else {
        FileType::RegularFile
    }
}

/// statvfs of the backing file system.
pub fn statvfs(fd: &OwnedFd) -> io::Result<Statvfs> {
    let s = nix::sys::statvfs::fstatvfs(fd.as_fd()).map_err(io_err)?;
    Ok(Statvfs {
        blocks: s.blocks(),
        bfree: s.blocks_free(),
        bavail: s.blocks_available(),
        files: s.files(),
        ffree: s.files_free(),
        bsize: s.block_size() as u32,
        namemax: s.name_max() as u32,
        frsize: s.fragment_size() as u32,
    })
}

/// fallocate(2) through `file`.
pub fn fallocate(file: &OwnedFd, mode: i32, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: a plain call on a valid fd.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), mode, offset as i64, len as i64) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// lseek(2) (SEEK_DATA / SEEK_HOLE) through `file`.
pub fn lseek(file: &OwnedFd, offset: i64, whence: Whence) -> io::Result<i64> {
    let whence = match whence {
        Whence::Set => libc::SEEK_SET,
        Whence::Cur => libc::SEEK_CUR,
        Whence::End => libc::SEEK_END,
        Whence::Data => libc::SEEK_DATA,
        Whence::Hole => libc::SEEK_HOLE,
    };
    // SAFETY: a plain call on a valid fd.
    let r = unsafe { libc::lseek(file.as_raw_fd(), offset, whence) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

/// copy_file_range(2) between two open files.
pub fn copy_range(
    src: &OwnedFd,
    off_in: u64,
    dst: &OwnedFd,
    off_out: u64,
    len: u64,
) -> io::Result<u32> {
    let (mut i, mut o) = (off_in as i64, off_out as i64);
    let len = len.min(u32::MAX as u64 & !0xfff) as usize;
    // SAFETY: valid fds and offsets the call may update.
    let r =
        unsafe { libc::copy_file_range(src.as_raw_fd(), &mut i, dst.as_raw_fd(), &mut o, len, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as u32)
}

/// The extended attribute calls on the file `fd` (O_PATH, not a symlink) is open on.
pub mod xattr {
    use super::*;

    fn check(r: isize) -> io::Result<usize> {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as usize)
        }
    }

    /// getxattr; the whole value.
    pub fn get(fd: &OwnedFd, name: &CString) -> io::Result<Vec<u8>> {
        let path = proc_path(fd);
        // SAFETY: a size probe with a null buffer of length 0.
        let n = check(unsafe {
            libc::getxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0)
        })?;
        let mut buf = vec![0u8; n];
        // SAFETY: buf has buf.len() writable bytes.
        let n = check(unsafe {
            libc::getxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        })?;
        buf.truncate(n);
        Ok(buf)
    }

    /// listxattr; the names, each NUL-terminated.
    pub fn list(fd: &OwnedFd) -> io::Result<Vec<u8>> {
        let path = proc_path(fd);
        // SAFETY: a size probe with a null buffer of length 0.
        let n = check(unsafe { libc::listxattr(path.as_ptr(), std::ptr::null_mut(), 0) })?;
        let mut buf = vec![0u8; n];
        // SAFETY: buf has buf.len() writable bytes.
        let n =
            check(unsafe { libc::listxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })?;
        buf.truncate(n);
        Ok(buf)
    }

    /// setxattr.
    pub fn set(fd: &OwnedFd, name: &CString, value: &[u8], flags: i32) -> io::Result<()> {
        let path = proc_path(fd);
        // SAFETY: value is valid for value.len() bytes.
        let r = unsafe {
            libc::setxattr(
                path.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                flags,
            )
        };
        check(r as isize).map(|_| ())
    }

    /// removexattr.
    pub fn remove(fd: &OwnedFd, name: &CString) -> io::Result<()> {
        let path = proc_path(fd);
        // SAFETY: NUL-terminated path and name.
        let r = unsafe { libc::removexattr(path.as_ptr(), name.as_ptr()) };
        check(r as isize).map(|_| ())
    }
}
