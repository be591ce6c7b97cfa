//! The ops vtable (puffs_ops): one async method per kernel request, each defaulting to
//! ENOSYS. The opmask and the caller's credentials it uses live in `op`.
//!
//! Ops run on the mainloop thread, one continuation per request. They take `&self`:
//! keep mutable state in `Cell`/`RefCell` and never hold a borrow across an `.await`.

#![allow(async_fn_in_trait)] // ops futures are deliberately !Send: they never leave the loop thread

use std::ffi::{OsStr, OsString};
use std::hash::Hash;
use std::path::Path;

pub use crate::args::{
    AccessMask, AccessMode, FallocateFlags, LockType, Mode, NewNode, OpenFlags, Whence, XattrFlags,
};
use crate::attr::{AttrReply, Entry, Lock, Open, SetAttr, Statvfs};
use crate::cx::Cx;
use crate::data::Data;
use crate::dirbuf::{DirBuf, DirPlusBuf};
use crate::errno::Errno;
use crate::node::Node;
pub use crate::op::{Cred, Op, OpMask, RenameFlags};

/// The result of an op: a value, or the errno the caller sees.
pub type OpResult<T> = Result<T, Errno>;

/// The entry type of file system `F`.
pub type EntryOf<F> = Entry<<F as Ops>::Key, <F as Ops>::Node>;

/// A file system: its node data, its node keys and the ops it implements.
///
/// Put `#[puffs::ops]` on the impl to derive `OPMASK` from the methods it defines.
/// `cx` carries the caller's credentials ([`Cx::cred`]) and a handle on the running
/// mount (node table, timers, spawning, exit). docs/api.md has the same
/// contract as one table.
///
/// # The contract
///
/// - **When ops run.** Each kernel request becomes one call, run as a continuation
///   on the loop thread. An op that awaits lets other requests run meanwhile (even
///   on the same node), so an op must not assume that what it saw before an `.await`
///   still holds after it, and must never hold a `RefCell` borrow across one.
/// - **What to return.** `Ok` with the value the op names, or `Err(errno)`: the errno
///   reaches the calling process as is (for open, stat, read, ...), so use the one
///   the system call's man page lists for the case (ENOENT, EEXIST, ENOTEMPTY,
///   EACCES, ENOSPC, ...). `?` turns an `io::Error` (or nix's errno) into its errno.
/// - **Open files.** `open`, `create` and `opendir` return an object ([`Ops::File`],
///   [`Ops::Dir`]); the framework keeps it per kernel file handle, every op on the
///   open file gets a reference, and `release` / `releasedir` get it back by value.
/// - **Ops left out.** An op outside `OPMASK` is answered by the kernel reader
///   thread without reaching the file system. The answer is ENOSYS, and the kernel
///   turns that into the right thing for each op: each method below says what the
///   caller then sees. Returning `Err(ENOSYS)` from an op that *is* implemented has
///   the same effect, and for most ops the kernel then stops asking for the rest of
///   the mount.
/// - **Permissions.** Without the `default_permissions` mount option the kernel
///   checks nothing: an op that should refuse a caller checks [`Cx::cred`] against
///   the node's owner and mode itself. With it, the kernel checks the mode bits
///   before each request (from the attributes it has cached or asks getattr for),
///   and the ops only see calls that passed.
/// - **Nodes and the kernel's references.** Every entry an op returns (lookup,
///   create, mkdir, mknod, symlink, link, readdirplus) is one more reference the
///   kernel holds on the node. A node may still be reached (through an open file, or
///   a name the kernel resolved just before) after its last name is gone: keep its
///   data until [`Ops::reclaim`] says the kernel has forgotten it and no file is
///   open on it.
pub trait Ops: Sized + 'static {
    /// Private data of each node (puffs' pn_data).
    type Node: 'static;
    /// What names a node in the file system's own terms; nodes with equal keys are one
    /// node (hard links, repeated lookups).
    type Key: Eq + Hash + Clone + std::fmt::Debug + 'static;
    /// The state of one open file: what [`Ops::open`] and [`Ops::create`] return and
    /// every op on the open file gets back (a null layer's backing descriptor, memfs'
    /// open flags), up to [`Ops::release`], which gets it by value. The framework
    /// keeps the kernel's file handles; the file system never sees one.
    /// `#[puffs::ops]` makes it `()` when the impl does not name it.
    type File: 'static;
    /// The state of one open directory, as `File` for [`Ops::opendir`] and the ops on
    /// the directory up to [`Ops::releasedir`]; `()` when the impl does not name it.
    type Dir: 'static;
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

    /// The root node's key and data, taken once when the mount is created
    /// (`PuffsUserMount::new`). The root is never forgotten.
    fn root(&self) -> (Self::Key, Self::Node);

    /// The kernel forgot the node (its lookup count reached zero, after FORGET):
    /// nothing can reach it through the kernel any more. If it has no name left and
    /// no open file, free what it holds now. Continuations still running may hold the
    /// node a little longer. Not an op: it is never masked, and the default does
    /// nothing.
    fn reclaim(&self, _node: &Node<Self>) {}

    /// The mainloop has started serving: called once, as a continuation of its own,
    /// before the loop waits for its first event. Start background work here (a
    /// watcher on a backing directory, keepalives, a cache refresher): spawn it with
    /// [`Cx::spawn`] or run it in this future, which may live as long as the mount.
    /// Not an op: it is never masked, and the default does nothing. A panic in it is
    /// logged and ends only this continuation.
    async fn started(&self, _cx: &Cx<Self>) {}

    /// The object every open shares when the file system leaves [`Ops::open`] out (the
    /// kernel then opens without asking). `#[puffs::ops]` writes it as
    /// `Some(Default::default())` for such an impl, so `File` must then be `Default`.
    #[doc(hidden)]
    fn stateless_file() -> Option<Self::File> {
        None
    }
    /// As `stateless_file`, for [`Ops::opendir`] and `Dir`.
    #[doc(hidden)]
    fn stateless_dir() -> Option<Self::Dir> {
        None
    }

    // --- file system ops ---

    /// statfs(2) and df: the file system's size and free space.
    ///
    /// Left out: the framework answers with `PuffsUserMount::statvfs` (zeros by
    /// default, so df shows an empty file system of size 0).
    async fn statvfs(&self, _cx: &Cx<Self>) -> OpResult<Statvfs> {
        Err(Errno::ENOSYS)
    }
    /// Write back everything. The framework calls it once before unmounting (the
    /// kernel never sends it); an error is logged and the unmount goes on.
    ///
    /// Left out: nothing is called.
    async fn sync(&self, _cx: &Cx<Self>) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// The file system is being unmounted (after [`Ops::sync`]); the last op it sees.
    /// An error is logged and the unmount goes on.
    ///
    /// Left out: nothing is called.
    async fn unmount(&self, _cx: &Cx<Self>) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }

    // --- node ops ---

    /// Resolve `name` in the directory `dir`: path walks ask for each component the
    /// kernel has not cached (or whose `entry_ttl` ran out). Return the node's
    /// [`Entry`]; an entry whose key is already known reuses that node.
    ///
    /// Errors: ENOENT when there is no such name (the caller sees it), ENOTDIR when
    /// `dir` is not a directory, ENAMETOOLONG. The kernel never looks up "." (that
    /// goes to [`Ops::lookup_ino`]), and ".." only with export support
    /// (`PuffsUserMount::export_support`): the parent of a directory it found by a
    /// file handle.
    ///
    /// Left out: every name fails with ENOSYS, so only the root can be reached.
    async fn lookup(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        _name: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        Err(Errno::ENOSYS)
    }
    /// Find the node the kernel numbers `ino` when the kernel no longer has it
    /// (puffs' fhtonode): a file handle (`open_by_handle_at`, an NFS server's) names
    /// a node the kernel has forgotten since, and the kernel asks for it by number
    /// (FUSE's LOOKUP of "." in `ino`). Only with export support
    /// (`PuffsUserMount::export_support`). Return the node's [`Entry`] with the same
    /// key, `attr.ino` = `ino` and the [`Entry::generation`] it had: the kernel
    /// compares the generation with the handle's and answers ESTALE on a mismatch (a
    /// number reused for another file), EIO on another inode number.
    ///
    /// Errors: ESTALE when the node is gone (deleted and forgotten).
    ///
    /// Left out: a handle outlives the kernel's cache only while the node is cached
    /// (ESTALE after that).
    async fn lookup_ino(&self, _cx: &Cx<Self>, _ino: u64) -> OpResult<EntryOf<Self>> {
        Err(Errno::ESTALE)
    }
    /// The node's attributes, for stat(2) and whenever the kernel's cached copy is older
    /// than the attribute timeout (and, with `default_permissions`, for its permission
    /// checks). `file` is the open file when the call comes through one (fstat; None
    /// for an open directory).
    ///
    /// Return `Ok(attr.into())` for the mount's attribute timeout, or
    /// `AttrReply::with_ttl(attr, d)` for a lifetime of the fs's own (a network fs gives
    /// what it fetched from a server a short one). setattr answers the same way.
    ///
    /// Left out: the root answers with `PuffsUserMount::root_attr`; every other node
    /// with ENOSYS.
    async fn getattr(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _file: Option<&Self::File>,
    ) -> OpResult<AttrReply> {
        Err(Errno::ENOSYS)
    }
    /// Change what `set` names (chmod, chown, truncate, utimes; `file` is the open
    /// file when the change comes through one: ftruncate, fchmod) and return the
    /// node's attributes after the change. A size change cuts the file or extends it
    /// with zeros; any change moves ctime, and a size change mtime. A truncate without
    /// `file` is truncate(2); an open with O_TRUNC never comes here (it reaches
    /// `open`). See `KILLS_SUIDGID`.
    ///
    /// Errors: EPERM / EACCES for a caller not allowed to (see Permissions above),
    /// EFBIG or ENOSPC for a size that cannot be, EROFS on a read-only file system.
    ///
    /// Left out: chmod, chown, truncate and utimes fail with ENOSYS.
    async fn setattr(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _file: Option<&Self::File>,
        _set: &SetAttr,
    ) -> OpResult<AttrReply> {
        Err(Errno::ENOSYS)
    }
    /// access(2) and faccessat: may the caller use the node as `mask` says (read,
    /// write, execute; empty: F_OK, does it exist)? Ok or EACCES. Not sent with
    /// `default_permissions` (the kernel decides itself).
    ///
    /// Left out: the kernel stops asking and every access check succeeds.
    async fn access(&self, _cx: &Cx<Self>, _node: &Node<Self>, _mask: AccessMask) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// The target of the symlink `node`, for readlink(2) and for path walks through it
    /// (the kernel caches it with the page cache). EINVAL when `node` is not a symlink.
    ///
    /// Left out: readlink and every path through a symlink fail with ENOSYS.
    async fn readlink(&self, _cx: &Cx<Self>, _node: &Node<Self>) -> OpResult<OsString> {
        Err(Errno::ENOSYS)
    }
    /// Create a node that is not a directory or a symlink (mknod(2), mkfifo; and
    /// open(O_CREAT) when [`Ops::create`] is left out) and return its entry.
    /// `new.mode` holds type and permission bits (no type bits: a regular file),
    /// already masked by `new.umask` when the kernel applies it (it does unless the fs
    /// asked otherwise). `new.rdev` is the device number of a device node. The new node
    /// is owned by the caller ([`Cx::cred`]).
    ///
    /// Errors: EEXIST when the name exists, ENOSPC, EPERM for device nodes the fs does
    /// not allow.
    ///
    /// Left out: mknod and mkfifo fail with ENOSYS (and so does creating a file, when
    /// create is left out too).
    async fn mknod(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        _name: &OsStr,
        _new: NewNode,
    ) -> OpResult<EntryOf<Self>> {
        Err(Errno::ENOSYS)
    }
    /// Create the directory `name` in `dir` (mkdir(2)) and return its entry: nlink 2,
    /// owned by the caller, `new.mode` (permission bits only) already masked as for
    /// [`Ops::mknod`]; `dir` gains a link (its "..").
    ///
    /// Errors: EEXIST, ENOSPC, EMLINK.
    ///
    /// Left out: mkdir fails with ENOSYS.
    async fn mkdir(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        _name: &OsStr,
        _new: NewNode,
    ) -> OpResult<EntryOf<Self>> {
        Err(Errno::ENOSYS)
    }
    /// Remove the name `name` (not a directory) from `dir` (unlink(2)); the node loses
    /// a link. Its data must stay while the node is open or the kernel still holds it:
    /// free it at [`Ops::reclaim`].
    ///
    /// Errors: ENOENT, EPERM / EACCES (sticky directories: see Permissions).
    ///
    /// Left out: unlink fails with ENOSYS.
    async fn unlink(&self, _cx: &Cx<Self>, _dir: &Node<Self>, _name: &OsStr) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// Remove the empty directory `name` from `dir` (rmdir(2)).
    ///
    /// Errors: ENOTEMPTY when it holds anything besides "." and "..", ENOENT, ENOTDIR.
    ///
    /// Left out: rmdir fails with ENOSYS.
    async fn rmdir(&self, _cx: &Cx<Self>, _dir: &Node<Self>, _name: &OsStr) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// Create the symlink `name` in `dir` pointing at `target` (stored as given, not
    /// resolved) and return its entry: size is the target's length.
    ///
    /// Errors: EEXIST, ENOSPC, ENAMETOOLONG.
    ///
    /// Left out: symlink fails with ENOSYS.
    async fn symlink(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        _name: &OsStr,
        _target: &Path,
    ) -> OpResult<EntryOf<Self>> {
        Err(Errno::ENOSYS)
    }
    /// Move `name` in `dir` to `newname` in `newdir` (rename(2), renameat2). An existing
    /// target is replaced atomically: a file by a file, a directory by an empty
    /// directory; the replaced node keeps its data while it can still be reached (as
    /// for [`Ops::unlink`]). See [`RenameFlags`] for NOREPLACE and EXCHANGE.
    ///
    /// Errors: ENOENT, EEXIST (NOREPLACE), ENOTEMPTY, EISDIR / ENOTDIR (a file over a
    /// directory or back), EINVAL (a directory into itself, unsupported flags).
    ///
    /// Left out: rename fails with ENOSYS (renameat2 with flags with EINVAL).
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
    /// Give `node` the new name `newname` in `newdir` (link(2)) and return the entry:
    /// the same key as the node's (so the framework keeps one node), nlink one more.
    ///
    /// Errors: EEXIST, EMLINK, EPERM for a directory.
    ///
    /// Left out: link fails with ENOSYS.
    async fn link(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _newdir: &Node<Self>,
        _newname: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        Err(Errno::ENOSYS)
    }
    /// open(2) of a node that is not a directory. `flags` are the open(2) flags
    /// (O_ACCMODE, O_APPEND, O_TRUNC, ...), less O_CREAT, O_EXCL and O_NOCTTY, which
    /// the kernel has dealt with. Return the open-file object ([`Ops::File`]) in an
    /// [`Open`]: every later op on this open file gets it, up to [`Ops::release`].
    ///
    /// A file system that implements `open` gets O_TRUNC here (the framework asks the
    /// kernel for FUSE_ATOMIC_O_TRUNC) and must truncate a regular file to 0 itself,
    /// moving mtime and ctime even when it was empty, as tmpfs does; the kernel sends
    /// no SETATTR for it. See `KILLS_SUIDGID`.
    ///
    /// Errors: EACCES, EISDIR, ENXIO, EROFS for writing on a read-only file system.
    ///
    /// Left out: the file system is stateless: the kernel stops asking, every open
    /// succeeds and shares one `File::default()`, and release is never sent.
    async fn open(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _flags: OpenFlags,
    ) -> OpResult<Open<Self::File>> {
        Err(Errno::ENOSYS)
    }
    /// Atomically create the file `name` in `dir` and open it (open(2) with O_CREAT
    /// when the name does not exist): return its entry and the open file, as
    /// [`Ops::mknod`] and [`Ops::open`] would. `new.mode` has permission bits only.
    ///
    /// Errors: EEXIST (another caller got there first), ENOSPC.
    ///
    /// Left out: the kernel stops asking and creates through [`Ops::mknod`] then
    /// [`Ops::open`].
    async fn create(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        _name: &OsStr,
        _new: NewNode,
        _flags: OpenFlags,
    ) -> OpResult<(EntryOf<Self>, Open<Self::File>)> {
        Err(Errno::ENOSYS)
    }
    /// Up to `size` bytes at `offset` of the open file `file`; fewer only at end of
    /// file (a short read is the end of the file to the kernel, which fills the rest
    /// of a cached page with zeros). Return them as [`Data`]: an owned `Vec`, a static
    /// slice or a shared buffer, sent as it is. Reads usually come from the page cache's readahead, in page-sized
    /// pieces, not as the caller asked. More bytes than `size` is a bug: the caller
    /// gets EIO and the `errnotify` hook hears of it.
    ///
    /// Errors: EIO, EISDIR.
    ///
    /// Left out: read fails with ENOSYS.
    async fn read(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _file: &Self::File,
        _offset: u64,
        _size: u32,
    ) -> OpResult<Data> {
        Err(Errno::ENOSYS)
    }
    /// Write `data` at `offset` of the open file `file` and return the number of bytes
    /// written: all of them, unless an error stops it (a short count is a short write
    /// to the caller). `data` is the file system's to keep or to hand to
    /// [`crate::Aio::write_at`] as it is (it was copied once, out of the kernel
    /// channel's buffer). The
    /// file grows as needed; a write moves mtime and ctime. `flags` are the open
    /// file's flags now (fcntl(F_SETFL) may have changed them since open; O_APPEND is handled by the kernel unless writeback caching is off
    /// and the fs wants to do it: the offset given is already the end of file then).
    /// With writeback caching, writes come later from the page cache, and the
    /// credentials need not be the writer's. See `KILLS_SUIDGID` for what a write by
    /// an unprivileged caller must clear.
    ///
    /// Errors: ENOSPC, EFBIG, EIO. More bytes than given is answered EIO.
    ///
    /// Left out: write fails with ENOSYS.
    async fn write(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _file: &Self::File,
        _offset: u64,
        _data: Vec<u8>,
        _flags: OpenFlags,
    ) -> OpResult<u32> {
        Err(Errno::ENOSYS)
    }
    /// close(2) of one file descriptor of the open file (each dup'd one: there may be
    /// several per open), before [`Ops::release`]. The error is what close returns:
    /// report deferred write errors here. `lock_owner` identifies the closing
    /// process's POSIX locks.
    ///
    /// Left out: the kernel stops asking and close succeeds.
    async fn flush(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _file: &Self::File,
        _lock_owner: u64,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// The open file is gone (its last descriptor closed, its last mapping undone):
    /// `file` is the file system's again, to free or to finish with. It comes when no
    /// other op holds it any more. The kernel does not wait for the answer and ignores
    /// errors.
    ///
    /// Left out: the framework drops `file` (closing what it owns) and answers Ok.
    async fn release(&self, _cx: &Cx<Self>, _node: &Node<Self>, _file: Self::File) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// fsync(2) / fdatasync (`datasync`: the data only, not the metadata): make what
    /// was written through `file` durable.
    ///
    /// Left out: the kernel stops asking and fsync succeeds.
    async fn fsync(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _file: &Self::File,
        _datasync: bool,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// Open the directory `node` for reading (opendir(3)); as [`Ops::open`] for
    /// directories: the [`Ops::Dir`] object goes to readdir, releasedir and fsyncdir.
    ///
    /// Left out: stateless, as for open: every opendir succeeds and shares one
    /// `Dir::default()`.
    async fn opendir(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _flags: OpenFlags,
    ) -> OpResult<Open<Self::Dir>> {
        Err(Errno::ENOSYS)
    }
    /// getdents: fill `out` with entries from cookie `offset` on (0: the start) until
    /// it says it is full; each entry carries the cookie of the entry after it.
    /// Include "." and "..". An empty `out` is the end of the directory. Cookies must
    /// stay valid while entries are added and removed between calls (an entry removed
    /// may be skipped, but no other may be repeated or lost).
    ///
    /// Errors: ENOTDIR.
    ///
    /// Left out: listing a directory fails with ENOSYS.
    async fn readdir(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        _open: &Self::Dir,
        _offset: u64,
        _out: &mut DirBuf,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// readdir with each entry's node and attributes (saves the kernel a lookup each).
    /// Implement it and the kernel is asked for READDIRPLUS (it then chooses between
    /// this and readdir). Every entry added, except "." and "..", counts as a lookup,
    /// as if lookup had returned it.
    ///
    /// Left out: the kernel uses [`Ops::readdir`] and looks names up one by one.
    async fn readdirplus(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        _open: &Self::Dir,
        _offset: u64,
        _out: &mut DirPlusBuf<Self>,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// The directory opened by [`Ops::opendir`] is closed: `dir` is the file system's
    /// again, as for [`Ops::release`].
    ///
    /// Left out: the framework drops `dir` and answers Ok.
    async fn releasedir(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _dir: Self::Dir,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// fsync(2) on a directory: make its entries durable.
    ///
    /// Left out: the kernel stops asking and fsync succeeds.
    async fn fsyncdir(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _dir: &Self::Dir,
        _datasync: bool,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// Set the extended attribute `name` to `value` (setxattr(2)). `flags`:
    /// [`XattrFlags::CREATE`] (EEXIST if it exists) / [`XattrFlags::REPLACE`] (ENODATA
    /// if it does not); empty: either.
    ///
    /// Errors: ENOSPC / E2BIG for a value too big, EOPNOTSUPP for a namespace the fs
    /// does not keep, EPERM.
    ///
    /// Left out: for this and the other xattr ops, the kernel stops asking and every
    /// xattr call fails with EOPNOTSUPP.
    async fn setxattr(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _name: &OsStr,
        _value: &[u8],
        _flags: XattrFlags,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// The whole value of the extended attribute `name`; ENODATA when there is none.
    /// The framework answers size probes and ERANGE.
    ///
    /// Left out: xattr calls fail with EOPNOTSUPP (see [`Ops::setxattr`]).
    async fn getxattr(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _name: &OsStr,
    ) -> OpResult<Vec<u8>> {
        Err(Errno::ENOSYS)
    }
    /// The names of the node's extended attributes, each followed by a NUL byte; the
    /// framework answers size probes and ERANGE.
    ///
    /// Left out: xattr calls fail with EOPNOTSUPP (see [`Ops::setxattr`]).
    async fn listxattr(&self, _cx: &Cx<Self>, _node: &Node<Self>) -> OpResult<Vec<u8>> {
        Err(Errno::ENOSYS)
    }
    /// Remove the extended attribute `name`; ENODATA when there is none.
    ///
    /// Left out: xattr calls fail with EOPNOTSUPP (see [`Ops::setxattr`]).
    async fn removexattr(&self, _cx: &Cx<Self>, _node: &Node<Self>, _name: &OsStr) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// fallocate(2) on `offset..offset + length`. `mode`: empty (allocate, growing the
    /// file) or [`FallocateFlags::KEEP_SIZE`], [`FallocateFlags::PUNCH_HOLE`] (always
    /// with KEEP_SIZE), ...; EOPNOTSUPP for the modes the fs does not do.
    ///
    /// Errors: ENOSPC, EFBIG, EOPNOTSUPP.
    ///
    /// Left out: the kernel stops asking and fallocate fails with EOPNOTSUPP.
    async fn fallocate(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _file: &Self::File,
        _offset: u64,
        _length: u64,
        _mode: FallocateFlags,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
    /// lseek(2) with [`Whence::Data`] / [`Whence::Hole`] (the kernel handles the
    /// others); returns the new offset. ENXIO when `offset` is at or past the end of file (or no data
    /// follows, for SEEK_DATA).
    ///
    /// Left out: the kernel stops asking and treats the whole file as data.
    async fn lseek(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _file: &Self::File,
        _offset: i64,
        _whence: Whence,
    ) -> OpResult<i64> {
        Err(Errno::ENOSYS)
    }
    /// copy_file_range(2): copy `len` bytes from `src` to `dst` (each an open file at
    /// an offset) without passing them through user space. Returns the number of
    /// bytes copied (fewer at the end of the source).
    ///
    /// Left out: the kernel stops asking and copies through read and write.
    async fn copy_file_range(
        &self,
        _cx: &Cx<Self>,
        _src: FileAt<'_, Self>,
        _dst: FileAt<'_, Self>,
        _len: u64,
    ) -> OpResult<u32> {
        Err(Errno::ENOSYS)
    }
    /// fcntl(F_GETLK): the first lock that conflicts with `lock`, or `lock` with typ
    /// [`LockType::Unlock`] if none does. Only sent when [`Ops::setlk`] is implemented.
    ///
    /// Left out (with setlk): the kernel keeps POSIX locks itself, which is right for
    /// a file system that only this machine uses.
    async fn getlk(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _file: &Self::File,
        _lock: Lock,
    ) -> OpResult<Lock> {
        Err(Errno::ENOSYS)
    }
    /// fcntl(F_SETLK / F_SETLKW) and the implicit unlock at close: set or clear
    /// `lock`; `sleep`: wait (await) for a conflicting lock to go (F_SETLKW),
    /// otherwise EAGAIN. Implement it and the kernel is asked for POSIX_LOCKS: every
    /// fcntl lock then comes here.
    ///
    /// Left out: the kernel keeps POSIX locks itself.
    async fn setlk(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _file: &Self::File,
        _lock: Lock,
        _sleep: bool,
    ) -> OpResult<()> {
        Err(Errno::ENOSYS)
    }
}

/// One side of [`Ops::copy_file_range`]: an open file of a node, at an offset.
pub struct FileAt<'a, F: Ops> {
    /// The node.
    pub node: &'a Node<F>,
    /// The open file.
    pub file: &'a F::File,
    /// Where in it.
    pub offset: u64,
}
