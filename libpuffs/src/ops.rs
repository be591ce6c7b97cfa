//! The ops vtable (puffs_ops): one async method per kernel request, each defaulting to
//! ENOSYS; the opmask that says which of them a file system implements; and the
//! caller's credentials.
//!
//! Ops run on the mainloop thread, one continuation per request. They take `&self`:
//! keep mutable state in `Cell`/`RefCell` and never hold a borrow across an `.await`.

#![allow(async_fn_in_trait)] // ops futures are deliberately !Send: they never leave the loop thread

use std::ffi::{OsStr, OsString};
use std::hash::Hash;
use std::path::Path;

use crate::attr::{Attr, Entry, Lock, Opened, SetAttr, Statvfs};
use crate::cx::Cx;
use crate::dirbuf::{DirBuf, DirPlusBuf};
use crate::node::Node;
use crate::Errno;

/// The result of an op: a value, or the errno the caller sees.
pub type OpResult<T> = Result<T, Errno>;

/// The entry type of file system `F`.
pub type EntryOf<F> = Entry<<F as Ops>::Key, <F as Ops>::Node>;

/// One kernel request kind. The names match the `Ops` methods (in CamelCase).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Op {
    Statvfs,
    Sync,
    Unmount,
    Lookup,
    Getattr,
    Setattr,
    Access,
    Readlink,
    Mknod,
    Mkdir,
    Unlink,
    Rmdir,
    Symlink,
    Rename,
    Link,
    Open,
    Create,
    Read,
    Write,
    Flush,
    Release,
    Fsync,
    Opendir,
    Readdir,
    Readdirplus,
    Releasedir,
    Fsyncdir,
    Setxattr,
    Getxattr,
    Listxattr,
    Removexattr,
    Fallocate,
    Lseek,
    CopyFileRange,
    Getlk,
    Setlk,
}

/// The set of ops a file system implements (puffs' opmask). Requests for other ops are
/// answered ENOSYS by the kernel reader thread, without entering the mainloop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OpMask(u64);

impl OpMask {
    pub const EMPTY: OpMask = OpMask(0);

    /// The mask holding exactly `ops` (usable in a const).
    pub const fn of(ops: &[Op]) -> OpMask {
        let mut bits = 0u64;
        let mut i = 0;
        while i < ops.len() {
            bits |= 1 << ops[i] as u8;
            i += 1;
        }
        OpMask(bits)
    }

    pub const fn contains(self, op: Op) -> bool {
        self.0 & (1 << op as u8) != 0
    }

    pub const fn with(self, op: Op) -> OpMask {
        OpMask(self.0 | 1 << op as u8)
    }

    pub const fn without(self, op: Op) -> OpMask {
        OpMask(self.0 & !(1 << op as u8))
    }
}

/// Who made the request: the calling process's ids as the kernel gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cred {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
}

impl Cred {
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Whether the caller is in group `gid`, counting its supplementary groups (read
    /// from /proc/PID/status; a caller that has gone away counts only its own gid).
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups().contains(&gid)
    }

    /// The caller's supplementary groups, as the kernel lists them for its pid.
    pub fn groups(&self) -> Vec<u32> {
        supplementary_groups(self.pid).unwrap_or_default()
    }
}

#[cfg(target_os = "linux")]
fn supplementary_groups(pid: u32) -> Option<Vec<u32>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Groups:"))?;
    Some(
        line["Groups:".len()..]
            .split_whitespace()
            .filter_map(|g| g.parse().ok())
            .collect(),
    )
}

#[cfg(not(target_os = "linux"))]
fn supplementary_groups(_pid: u32) -> Option<Vec<u32>> {
    None
}

/// Flags of a rename request (renameat2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RenameFlags {
    /// RENAME_NOREPLACE: fail with EEXIST if the target exists.
    pub noreplace: bool,
    /// RENAME_EXCHANGE: swap source and target atomically; both must exist.
    pub exchange: bool,
    /// RENAME_WHITEOUT (overlayfs); file systems usually answer EINVAL.
    pub whiteout: bool,
}

/// A file system: its node data, its node keys and the ops it implements.
///
/// Put `#[puffs::ops]` on the impl to derive `OPMASK` from the methods it defines.
/// Every op defaults to ENOSYS; `cx` carries the caller's credentials and a handle on
/// the running mount (node table, timers, spawning, exit).
pub trait Ops: Sized + 'static {
    /// Private data of each node (puffs' pn_data).
    type Node: 'static;
    /// What names a node in the file system's own terms; nodes with equal keys are one
    /// node (hard links, repeated lookups).
    type Key: Eq + Hash + Clone + std::fmt::Debug + 'static;
    /// The ops this file system implements. Written by `#[puffs::ops]`.
    const OPMASK: OpMask;
    /// Whether the file system clears set-uid/set-gid itself, as the kernel file
    /// systems do (FUSE_HANDLE_KILLPRIV_V2): on `write` and on truncation (`setattr`
    /// with a size, `open` with O_TRUNC) by a caller other than root, set-uid goes,
    /// and set-gid when group-execute is set or the caller is not in the file's
    /// group; on a chown of a non-directory (`setattr` with uid or gid, even by root)
    /// set-uid goes, and set-gid as above. It also drops the `security.capability`
    /// xattr, if it keeps xattrs, on each of these. In return the kernel stops asking
    /// for `security.capability` (a GETXATTR) before every write. Leave it false and
    /// the kernel does all this itself, through getxattr, setattr and removexattr.
    const KILLS_SUIDGID: bool = false;

    /// The root node's key and data, taken once when the mount is created.
    fn root(&self) -> (Self::Key, Self::Node);

    /// The kernel forgot the node (its lookup count reached zero): last chance to free
    /// what it holds. Continuations still running may hold the node a little longer.
    fn reclaim(&self, _node: &Node<Self>) {}

    // --- file system ops ---

    async fn statvfs(&self, _cx: &Cx<Self>) -> OpResult<Statvfs> {
        Err(Errno::ENOSYS)
    }
    /// Write back everything (called before unmount).
    async fn sync(&self, _cx: &Cx<Self>) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// The file system is being unmounted; the last op it sees.
    async fn unmount(&self, _cx: &Cx<Self>) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }

    // --- node ops ---

    async fn lookup(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        _name: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        Err(Errno::ENOSYS)
    }
    async fn getattr(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _fh: Option<u64>,
    ) -> OpResult<Attr> {
        Err(Errno::ENOSYS)
    }
    /// chmod, chown, truncate, utimes. A truncate without `fh` is truncate(2); an
    /// open with O_TRUNC never comes here (it reaches `open`). See `KILLS_SUIDGID`.
    async fn setattr(&self, _cx: &Cx<Self>, _node: &Node<Self>, _set: &SetAttr) -> OpResult<Attr> {
        Err(Errno::ENOSYS)
    }
    /// `mask` is R_OK | W_OK | X_OK, or F_OK (0).
    async fn access(&self, _cx: &Cx<Self>, _node: &Node<Self>, _mask: i32) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    async fn readlink(&self, _cx: &Cx<Self>, _node: &Node<Self>) -> OpResult<OsString> {
        Err(Errno::ENOSYS)
    }
    /// `mode` holds type and permission bits, already masked by `umask` when the kernel
    /// applies it (it does unless the fs asked otherwise); `umask` is given for reference.
    async fn mknod(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
    ) -> OpResult<EntryOf<Self>> {
        Err(Errno::ENOSYS)
    }
    async fn mkdir(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
    ) -> OpResult<EntryOf<Self>> {
        Err(Errno::ENOSYS)
    }
    async fn unlink(&self, _cx: &Cx<Self>, _dir: &Node<Self>, _name: &OsStr) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    async fn rmdir(&self, _cx: &Cx<Self>, _dir: &Node<Self>, _name: &OsStr) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    async fn symlink(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        _name: &OsStr,
        _target: &Path,
    ) -> OpResult<EntryOf<Self>> {
        Err(Errno::ENOSYS)
    }
    async fn rename(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        _name: &OsStr,
        _newdir: &Node<Self>,
        _newname: &OsStr,
        _flags: RenameFlags,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    async fn link(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _newdir: &Node<Self>,
        _newname: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        Err(Errno::ENOSYS)
    }
    /// `flags` are the open(2) flags (O_ACCMODE, O_APPEND, O_TRUNC, ...), less O_CREAT,
    /// O_EXCL and O_NOCTTY. A file system that implements `open` gets O_TRUNC here
    /// (the framework asks the kernel for FUSE_ATOMIC_O_TRUNC) and must truncate a
    /// regular file to 0 itself, moving mtime and ctime even when it was empty, as
    /// tmpfs does; the kernel sends no SETATTR for it. See `KILLS_SUIDGID`.
    async fn open(&self, _cx: &Cx<Self>, _node: &Node<Self>, _flags: i32) -> OpResult<Opened> {
        Err(Errno::ENOSYS)
    }
    async fn create(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
    ) -> OpResult<(EntryOf<Self>, Opened)> {
        Err(Errno::ENOSYS)
    }
    /// Up to `size` bytes at `offset`; fewer only at end of file.
    async fn read(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _fh: u64,
        _offset: u64,
        _size: u32,
    ) -> OpResult<Vec<u8>> {
        Err(Errno::ENOSYS)
    }
    /// Returns the number of bytes written. `flags` are the open file's flags
    /// (O_APPEND is handled by the kernel unless writeback caching is off and the fs
    /// wants to do it: the offset given is already the end of file then).
    /// See `KILLS_SUIDGID` for what a write by an unprivileged caller must clear.
    async fn write(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _fh: u64,
        _offset: u64,
        _data: &[u8],
        _flags: i32,
    ) -> OpResult<u32> {
        Err(Errno::ENOSYS)
    }
    async fn flush(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _fh: u64,
        _lock_owner: u64,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    async fn release(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _fh: u64,
        _flags: i32,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    async fn fsync(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _fh: u64,
        _datasync: bool,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    async fn opendir(&self, _cx: &Cx<Self>, _node: &Node<Self>, _flags: i32) -> OpResult<Opened> {
        Err(Errno::ENOSYS)
    }
    /// Fill `out` with entries from cookie `offset` on (0: the start) until it says it
    /// is full; each entry carries the cookie of the entry after it.
    async fn readdir(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        _fh: u64,
        _offset: u64,
        _out: &mut DirBuf,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// readdir with each entry's node and attributes (saves the kernel a lookup each).
    /// Implement it and the kernel is asked for READDIRPLUS.
    async fn readdirplus(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        _fh: u64,
        _offset: u64,
        _out: &mut DirPlusBuf<Self>,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    async fn releasedir(&self, _cx: &Cx<Self>, _node: &Node<Self>, _fh: u64) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    async fn fsyncdir(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _fh: u64,
        _datasync: bool,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// `flags`: XATTR_CREATE / XATTR_REPLACE.
    async fn setxattr(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// The whole value; the framework answers size probes and ERANGE.
    async fn getxattr(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _name: &OsStr,
    ) -> OpResult<Vec<u8>> {
        Err(Errno::ENOSYS)
    }
    /// The names, each followed by a NUL byte; the framework answers size probes and ERANGE.
    async fn listxattr(&self, _cx: &Cx<Self>, _node: &Node<Self>) -> OpResult<Vec<u8>> {
        Err(Errno::ENOSYS)
    }
    async fn removexattr(&self, _cx: &Cx<Self>, _node: &Node<Self>, _name: &OsStr) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// `mode`: 0 or FALLOC_FL_KEEP_SIZE / FALLOC_FL_PUNCH_HOLE / ...
    async fn fallocate(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _fh: u64,
        _offset: u64,
        _length: u64,
        _mode: i32,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// SEEK_DATA / SEEK_HOLE (the kernel handles the others); returns the new offset.
    async fn lseek(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _fh: u64,
        _offset: i64,
        _whence: i32,
    ) -> OpResult<i64> {
        Err(Errno::ENOSYS)
    }
    /// Returns the number of bytes copied.
    #[allow(clippy::too_many_arguments)]
    async fn copy_file_range(
        &self,
        _cx: &Cx<Self>,
        _src: &Node<Self>,
        _fh_in: u64,
        _offset_in: u64,
        _dst: &Node<Self>,
        _fh_out: u64,
        _offset_out: u64,
        _len: u64,
    ) -> OpResult<u32> {
        Err(Errno::ENOSYS)
    }
    /// The first lock that conflicts with `lock`, or `lock` with typ F_UNLCK if none does.
    async fn getlk(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _fh: u64,
        _lock: Lock,
    ) -> OpResult<Lock> {
        Err(Errno::ENOSYS)
    }
    /// Set or clear `lock`; `sleep`: wait for a conflicting lock to go (F_SETLKW).
    async fn setlk(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _fh: u64,
        _lock: Lock,
        _sleep: bool,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opmask_holds_exactly_its_ops() {
        const M: OpMask = OpMask::of(&[Op::Lookup, Op::CopyFileRange, Op::Statvfs]);
        assert!(M.contains(Op::Lookup));
        assert!(M.contains(Op::CopyFileRange));
        assert!(M.contains(Op::Statvfs));
        assert!(!M.contains(Op::Getattr));
        assert!(!M.contains(Op::Setlk));
        assert!(!M.without(Op::Lookup).contains(Op::Lookup));
        assert!(OpMask::EMPTY.with(Op::Setlk).contains(Op::Setlk));
    }
}
