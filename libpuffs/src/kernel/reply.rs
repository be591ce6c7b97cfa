//! The reply seam: one small trait per kind of answer, in the framework's own value
//! types, implemented here for fuser's reply types. `crate::dispatch` is generic over
//! them (through `Replies`), so it never sees fuser and its unit tests answer into
//! recording replies without /dev/fuse.

use std::ffi::OsStr;
use std::time::Duration;

use fuser::{FileHandle, Generation, INodeNo};

use super::convert::{errno, file_attr, file_type, open_flags};
use super::passthrough::{backing_id, passthrough_flags};
use crate::attr::{Attr, DirEntry, Lock, Opened, Statvfs, Ttls};
use crate::errno::Errno;

/// What every reply can do: fail. Replies are consumed by their answer, so a request
/// is answered once; one dropped unanswered answers EIO (fuser's `Drop`).
pub(crate) trait Reply: 'static {
    fn error(self, e: Errno);
}

/// No value: ok or an errno.
pub(crate) trait ReplyEmpty: Reply {
    fn ok(self);
}

/// A node entry (lookup, mknod, mkdir, symlink, link, lookup_ino).
pub(crate) trait ReplyEntry: Reply {
    fn entry(self, attr: &Attr, ino: u64, generation: u64, ttls: &Ttls);
}

/// Attributes (getattr, setattr).
pub(crate) trait ReplyAttr: Reply {
    fn attr(self, attr: &Attr, ino: u64, ttl: Duration);
}

/// Bytes (read, readlink).
pub(crate) trait ReplyData: Reply {
    fn data(self, data: &[u8]);
}

/// An open file (open, opendir).
pub(crate) trait ReplyOpen: Reply {
    fn opened(self, o: &Opened);
}

/// A new node and its open file (create).
pub(crate) trait ReplyCreate: Reply {
    fn created(self, attr: &Attr, ino: u64, generation: u64, ttls: &Ttls, o: &Opened);
}

/// A byte count (write, copy_file_range).
pub(crate) trait ReplyWrite: Reply {
    fn written(self, n: u32);
}

/// The statfs answer.
pub(crate) trait ReplyStatfs: Reply {
    fn statfs(self, s: &Statvfs);
}

/// An xattr value or name list, or just its size (a size probe).
pub(crate) trait ReplyXattr: Reply {
    fn size(self, n: u32);
    fn value(self, data: &[u8]);
}

/// Directory entries, added until the kernel's buffer is full.
pub(crate) trait ReplyDir: Reply {
    /// Adds `e`; true when it did not fit (the reply is full).
    fn add(&mut self, e: &DirEntry) -> bool;
    fn done(self);
}

/// Directory entries with their nodes (readdirplus).
pub(crate) trait ReplyDirPlus: Reply {
    /// Adds an entry for node `ino`; true when it did not fit (the reply is full).
    fn add(&mut self, name: &OsStr, offset: u64, e: PlusEntry<'_>) -> bool;
    fn done(self);
}

/// One readdirplus entry's node: its number, generation, attributes and lifetimes.
pub(crate) struct PlusEntry<'a> {
    pub ino: u64,
    pub generation: u64,
    pub attr: &'a Attr,
    pub ttls: Ttls,
}

/// A file offset (lseek).
pub(crate) trait ReplyLseek: Reply {
    fn offset(self, off: i64);
}

/// A lock (getlk).
pub(crate) trait ReplyLock: Reply {
    fn locked(self, lock: &Lock);
}

/// One reply type per kind of answer: a request frame names its reply through this,
/// so the same frames carry fuser's replies in a mount and recording ones in tests.
pub(crate) trait Replies: 'static {
    type Empty: ReplyEmpty;
    type Entry: ReplyEntry;
    type Attr: ReplyAttr;
    type Data: ReplyData;
    type Open: ReplyOpen;
    type Create: ReplyCreate;
    type Write: ReplyWrite;
    type Statfs: ReplyStatfs;
    type Xattr: ReplyXattr;
    type Dir: ReplyDir;
    type DirPlus: ReplyDirPlus;
    type Lseek: ReplyLseek;
    type Lock: ReplyLock;
}

/// fuser's reply types: what a mount answers with.
pub(crate) struct Fuser;

impl Replies for Fuser {
    type Empty = fuser::ReplyEmpty;
    type Entry = fuser::ReplyEntry;
    type Attr = fuser::ReplyAttr;
    type Data = fuser::ReplyData;
    type Open = fuser::ReplyOpen;
    type Create = fuser::ReplyCreate;
    type Write = fuser::ReplyWrite;
    type Statfs = fuser::ReplyStatfs;
    type Xattr = fuser::ReplyXattr;
    type Dir = fuser::ReplyDirectory;
    type DirPlus = fuser::ReplyDirectoryPlus;
    type Lseek = fuser::ReplyLseek;
    type Lock = fuser::ReplyLock;
}

macro_rules! fuser_error {
    ($($t:ty),*) => {$(
        impl Reply for $t {
            fn error(self, e: Errno) {
                <$t>::error(self, errno(e));
            }
        }
    )*};
}

fuser_error!(
    fuser::ReplyEmpty,
    fuser::ReplyEntry,
    fuser::ReplyAttr,
    fuser::ReplyData,
    fuser::ReplyOpen,
    fuser::ReplyCreate,
    fuser::ReplyWrite,
    fuser::ReplyStatfs,
    fuser::ReplyXattr,
    fuser::ReplyDirectory,
    fuser::ReplyDirectoryPlus,
    fuser::ReplyLseek,
    fuser::ReplyLock
);

impl ReplyEmpty for fuser::ReplyEmpty {
    fn ok(self) {
        fuser::ReplyEmpty::ok(self);
    }
}

impl ReplyEntry for fuser::ReplyEntry {
    fn entry(self, attr: &Attr, ino: u64, generation: u64, ttls: &Ttls) {
        let attr = file_attr(attr, ino);
        self.entry_with_ttls(&ttls.attr, &ttls.entry, &attr, Generation(generation));
    }
}

impl ReplyAttr for fuser::ReplyAttr {
    fn attr(self, attr: &Attr, ino: u64, ttl: Duration) {
        fuser::ReplyAttr::attr(self, &ttl, &file_attr(attr, ino));
    }
}

impl ReplyData for fuser::ReplyData {
    fn data(self, data: &[u8]) {
        fuser::ReplyData::data(self, data);
    }
}

/// An open carrying a passthrough backing file is answered as a passthrough open when
/// the kernel takes the backing file (`super::passthrough`), else as an ordinary one.
impl ReplyOpen for fuser::ReplyOpen {
    fn opened(self, o: &Opened) {
        let (fh, flags) = (FileHandle(o.fh), open_flags(o));
        let id = o
            .passthrough
            .as_deref()
            .and_then(|b| backing_id(b, |b| self.open_backing(b.fd().as_ref())));
        match id {
            Some(id) => self.opened_passthrough(fh, passthrough_flags(flags), &id),
            None => fuser::ReplyOpen::opened(self, fh, flags),
        }
    }
}

impl ReplyCreate for fuser::ReplyCreate {
    fn created(self, attr: &Attr, ino: u64, generation: u64, ttls: &Ttls, o: &Opened) {
        let (attr, gen) = (file_attr(attr, ino), Generation(generation));
        let (fh, flags) = (FileHandle(o.fh), open_flags(o));
        let id = o
            .passthrough
            .as_deref()
            .and_then(|b| backing_id(b, |b| self.open_backing(b.fd().as_ref())));
        match id {
            Some(id) => {
                let flags = passthrough_flags(flags);
                self.created_passthrough(&ttls.entry, &attr, gen, fh, flags, &id)
            }
            None => fuser::ReplyCreate::created(self, &ttls.entry, &attr, gen, fh, flags),
        }
    }
}

impl ReplyWrite for fuser::ReplyWrite {
    fn written(self, n: u32) {
        fuser::ReplyWrite::written(self, n);
    }
}

impl ReplyStatfs for fuser::ReplyStatfs {
    fn statfs(self, s: &Statvfs) {
        fuser::ReplyStatfs::statfs(
            self, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namemax, s.frsize,
        );
    }
}

impl ReplyXattr for fuser::ReplyXattr {
    fn size(self, n: u32) {
        fuser::ReplyXattr::size(self, n);
    }
    fn value(self, data: &[u8]) {
        fuser::ReplyXattr::data(self, data);
    }
}

impl ReplyDir for fuser::ReplyDirectory {
    fn add(&mut self, e: &DirEntry) -> bool {
        fuser::ReplyDirectory::add(self, INodeNo(e.ino), e.offset, file_type(e.kind), &e.name)
    }
    fn done(self) {
        fuser::ReplyDirectory::ok(self);
    }
}

impl ReplyDirPlus for fuser::ReplyDirectoryPlus {
    fn add(&mut self, name: &OsStr, offset: u64, e: PlusEntry<'_>) -> bool {
        let attr = file_attr(e.attr, e.ino);
        let gen = Generation(e.generation);
        fuser::ReplyDirectoryPlus::add(self, attr.ino, offset, name, &e.ttls.entry, &attr, gen)
    }
    fn done(self) {
        fuser::ReplyDirectoryPlus::ok(self);
    }
}

impl ReplyLseek for fuser::ReplyLseek {
    fn offset(self, off: i64) {
        fuser::ReplyLseek::offset(self, off);
    }
}

impl ReplyLock for fuser::ReplyLock {
    fn locked(self, l: &Lock) {
        fuser::ReplyLock::locked(self, l.start, l.end, l.typ.raw(), l.pid);
    }
}
