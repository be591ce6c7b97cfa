//! Value types that ops take and return: attributes, attribute changes, entries,
//! open results, locks and the statvfs answer. Plain data, no kernel types.

use std::ffi::OsString;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

pub use crate::args::FileType;
use crate::args::{LockType, Mode};
use crate::passthrough::Backing;

/// A node's attributes (`struct stat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    /// The inode number the fs would like (its own, stable across the kernel forgetting
    /// and finding the node again); 0: the framework picks one. Used when a node enters
    /// the node table and the number is free; st_ino is always the node's `Node::ino`.
    pub ino: u64,
    /// Size in bytes (a symlink: the length of its target).
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Last access.
    pub atime: SystemTime,
    /// Last change of the contents.
    pub mtime: SystemTime,
    /// Last change of the contents or the attributes.
    pub ctime: SystemTime,
    /// The node type (the `S_IFMT` bits of st_mode).
    pub kind: FileType,
    /// Permission bits including set-uid, set-gid and sticky (`mode & 07777`).
    pub perm: u16,
    /// Number of hard links (a directory: 2 plus its subdirectories).
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number of a device node; 0 otherwise.
    pub rdev: u32,
    /// Preferred I/O size (st_blksize).
    pub blksize: u32,
}

impl Attr {
    /// Attributes of a new node of `kind` with permission bits `perm`, owned by root,
    /// all times set to now.
    pub fn new(kind: FileType, perm: u16) -> Attr {
        let now = SystemTime::now();
        Attr {
            ino: 0,
            size: 0,
            blocks: 0,
            atime: now,
            mtime: now,
            ctime: now,
            kind,
            perm,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
        }
    }

    /// `st_mode`: type bits and permission bits.
    pub fn mode(&self) -> u32 {
        self.kind.mode_bits() | u32::from(self.perm)
    }
}

/// A time to set with setattr: a given instant or "now" (`UTIME_NOW`). `UTIME_OMIT` is
/// the absence of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetTime {
    /// The time the request is handled (`UTIME_NOW`).
    Now,
    /// A given instant.
    At(SystemTime),
}

impl SetTime {
    /// The instant this stands for, with "now" read once by the caller.
    pub fn resolve(self, now: SystemTime) -> SystemTime {
        match self {
            SetTime::Now => now,
            SetTime::At(t) => t,
        }
    }
}

/// What a setattr request changes; each field that is None stays as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New mode (chmod): the permission bits are [`Mode::perm`]; the type bits, when
    /// present, are the node's own and do not change.
    pub mode: Option<Mode>,
    /// New owner (chown).
    pub uid: Option<u32>,
    /// New group (chown, chgrp).
    pub gid: Option<u32>,
    /// New size (truncate, ftruncate, open with O_TRUNC): cut off or extend with zeros.
    pub size: Option<u64>,
    /// New access time (utimensat, touch).
    pub atime: Option<SetTime>,
    /// New modification time (utimensat, touch).
    pub mtime: Option<SetTime>,
    /// New change time, when the kernel sets it explicitly.
    pub ctime: Option<SystemTime>,
}

/// The reply to lookup, create, mkdir, mknod, symlink and link: the node (found or
/// new) and its attributes. `key` names the node in the file system's terms (its own
/// inode number, a backing (st_dev, st_ino), ...): when a node with that key is already
/// known the framework reuses it and drops `data`, so hard links share one node.
#[derive(Debug)]
pub struct Entry<K, N> {
    /// Names the node in the file system's terms; equal keys are one node.
    pub key: K,
    /// The node's private data, kept only when the node is new to the table.
    pub data: N,
    /// The node's attributes, as getattr would answer.
    pub attr: Attr,
    /// How long the kernel may cache the name (None: the mount's entry timeout).
    pub entry_ttl: Option<Duration>,
    /// How long the kernel may cache the attributes (None: the mount's attr timeout).
    pub attr_ttl: Option<Duration>,
    /// The node's generation (st_gen; 0 by default), which with the inode number names
    /// the node in the kernel's file handles (export, NFS). Used when the node gets
    /// the number `attr.ino` asked for: a file system that reuses its inode numbers
    /// gives each reuse a new generation, so an old handle is stale (ESTALE) instead
    /// of naming the new file; one that never reuses them can leave it 0.
    pub generation: u64,
}

impl<K, N> Entry<K, N> {
    /// An entry with the mount's default timeouts.
    pub fn new(key: K, data: N, attr: Attr) -> Self {
        Entry {
            key,
            data,
            attr,
            entry_ttl: None,
            attr_ttl: None,
            generation: 0,
        }
    }
}

/// The answer to open, opendir and create: the file system's object for the open file
/// (or directory), which the framework keeps and hands to every later op on it up to
/// release, and how the kernel should treat the open file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Open<T> {
    /// The open-file object ([`crate::Ops::File`] / [`crate::Ops::Dir`]).
    pub file: T,
    /// Bypass the page cache for this open file (FOPEN_DIRECT_IO).
    pub direct_io: bool,
    /// Keep cached pages from an earlier open (FOPEN_KEEP_CACHE).
    pub keep_cache: bool,
    /// The file is not seekable (FOPEN_NONSEEKABLE).
    pub nonseekable: bool,
    /// Kernel passthrough: the kernel reads and writes this backing file itself
    /// (see [`crate::passthrough`]); None: the fs serves the data.
    pub passthrough: Option<Rc<Backing>>,
}

impl<T> Open<T> {
    /// `file`, opened with the kernel's default caching.
    pub fn new(file: T) -> Self {
        Open {
            file,
            direct_io: false,
            keep_cache: false,
            nonseekable: false,
            passthrough: None,
        }
    }

    /// The object, and the open's flags under the handle `keep` gives it.
    pub(crate) fn keep(self, keep: impl FnOnce(T) -> u64) -> Opened {
        Opened {
            direct_io: self.direct_io,
            keep_cache: self.keep_cache,
            nonseekable: self.nonseekable,
            passthrough: self.passthrough,
            fh: keep(self.file),
        }
    }
}

/// An open as the kernel sees it: the handle the framework numbered it with, and the
/// flags of [`Open`], and its passthrough backing file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Opened {
    pub fh: u64,
    pub direct_io: bool,
    pub keep_cache: bool,
    pub nonseekable: bool,
    pub passthrough: Option<Rc<Backing>>,
}

/// A POSIX record lock (getlk / setlk), byte range `start..=end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lock {
    /// First byte of the range.
    pub start: u64,
    /// Last byte of the range (`i64::MAX as u64`: to the end of the file, however long).
    pub end: u64,
    /// Shared, exclusive or none.
    pub typ: LockType,
    /// The process holding the lock (getlk answers it; 0 when unknown).
    pub pid: u32,
    /// The lock owner the kernel gives (one per open file description / process).
    pub owner: u64,
}

/// The answer to statvfs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Statvfs {
    /// Total blocks of `frsize` bytes.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Free blocks that unprivileged users may take.
    pub bavail: u64,
    /// Total inodes (file nodes).
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Preferred block size for I/O.
    pub bsize: u32,
    /// Longest file name, in bytes.
    pub namemax: u32,
    /// Fragment size: the unit of `blocks`, `bfree` and `bavail`.
    pub frsize: u32,
}

impl Default for Statvfs {
    fn default() -> Self {
        Statvfs {
            blocks: 0,
            bfree: 0,
            bavail: 0,
            files: 0,
            ffree: 0,
            bsize: 4096,
            namemax: 255,
            frsize: 4096,
        }
    }
}

/// One directory entry for readdir. `ino` is the `d_ino` user space sees: the node's
/// inode number when the kernel knows the node (`Cx::node_by_key`), else any nonzero
/// number (a hint only). `offset` is the cookie of the *next* entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The d_ino user space sees.
    pub ino: u64,
    /// The cookie of the entry after this one.
    pub offset: u64,
    /// The entry's type (d_type).
    pub kind: FileType,
    /// The entry's name.
    pub name: OsString,
}

/// Cache lifetimes of one reply: the entry's own or the mount's.
pub(crate) struct Ttls {
    pub entry: Duration,
    pub attr: Duration,
}

/// The reply to getattr and setattr: the attributes and, when the fs wants one, how
/// long the kernel may cache them (None: the mount's attr timeout). A network file
/// system gives attributes it fetched from a server a short life and its own a long
/// one, as [`Entry::attr_ttl`] does for lookups. An `Attr` converts into it with the
/// mount's timeout (`Ok(attr.into())`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttrReply {
    /// The node's attributes.
    pub attr: Attr,
    /// How long the kernel may cache them (None: the mount's attr timeout).
    pub ttl: Option<Duration>,
}

impl AttrReply {
    /// `attr`, cached for `ttl` instead of the mount's attr timeout.
    pub fn with_ttl(attr: Attr, ttl: Duration) -> Self {
        AttrReply {
            attr,
            ttl: Some(ttl),
        }
    }
}

impl From<Attr> for AttrReply {
    fn from(attr: Attr) -> Self {
        AttrReply { attr, ttl: None }
    }
}
