//! Request frames: a kernel request with owned arguments, the caller's credentials and
//! fuser's reply handle, queued from the reader thread to the mainloop.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use fuser::{
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry,
    ReplyLock, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr,
};

use crate::attr::{Lock, SetAttr};
use crate::ops::{Cred, Op, RenameFlags};
use crate::wakeup::Wakeup;

/// What the reader side hands the loop.
pub(crate) enum Request {
    /// A request to run as a continuation.
    Op(Cred, KOp),
    /// The kernel drops lookups: (ino, count) pairs. No reply; ordered with lookups.
    Forget(Vec<(u64, u64)>),
    /// The kernel connection ended (unmounted from outside or by us).
    Destroyed,
    /// SIGINT, SIGTERM or SIGHUP arrived: unmount cleanly.
    Signal(i32),
}

/// One kernel request, its arguments owned, with the reply handle.
pub(crate) enum KOp {
    Statfs {
        reply: ReplyStatfs,
    },
    Lookup {
        parent: u64,
        name: OsString,
        reply: ReplyEntry,
    },
    Getattr {
        ino: u64,
        fh: Option<u64>,
        reply: ReplyAttr,
    },
    Setattr {
        ino: u64,
        set: SetAttr,
        reply: ReplyAttr,
    },
    Access {
        ino: u64,
        mask: i32,
        reply: ReplyEmpty,
    },
    Readlink {
        ino: u64,
        reply: ReplyData,
    },
    Mknod {
        parent: u64,
        name: OsString,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    },
    Mkdir {
        parent: u64,
        name: OsString,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    },
    Unlink {
        parent: u64,
        name: OsString,
        reply: ReplyEmpty,
    },
    Rmdir {
        parent: u64,
        name: OsString,
        reply: ReplyEmpty,
    },
    Symlink {
        parent: u64,
        name: OsString,
        target: PathBuf,
        reply: ReplyEntry,
    },
    Rename {
        parent: u64,
        name: OsString,
        newparent: u64,
        newname: OsString,
        flags: RenameFlags,
        reply: ReplyEmpty,
    },
    Link {
        ino: u64,
        newparent: u64,
        newname: OsString,
        reply: ReplyEntry,
    },
    Open {
        ino: u64,
        flags: i32,
        reply: ReplyOpen,
    },
    Create {
        parent: u64,
        name: OsString,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    },
    Read {
        ino: u64,
        fh: u64,
        offset: u64,
        size: u32,
        reply: ReplyData,
    },
    Write {
        ino: u64,
        fh: u64,
        offset: u64,
        data: Vec<u8>,
        flags: i32,
        reply: ReplyWrite,
    },
    Flush {
        ino: u64,
        fh: u64,
        lock_owner: u64,
        reply: ReplyEmpty,
    },
    Release {
        ino: u64,
        fh: u64,
        flags: i32,
        reply: ReplyEmpty,
    },
    Fsync {
        ino: u64,
        fh: u64,
        datasync: bool,
        reply: ReplyEmpty,
    },
    Opendir {
        ino: u64,
        flags: i32,
        reply: ReplyOpen,
    },
    Readdir {
        ino: u64,
        fh: u64,
        offset: u64,
        reply: ReplyDirectory,
    },
    Readdirplus {
        ino: u64,
        fh: u64,
        offset: u64,
        reply: ReplyDirectoryPlus,
    },
    Releasedir {
        ino: u64,
        fh: u64,
        reply: ReplyEmpty,
    },
    Fsyncdir {
        ino: u64,
        fh: u64,
        datasync: bool,
        reply: ReplyEmpty,
    },
    Setxattr {
        ino: u64,
        name: OsString,
        value: Vec<u8>,
        flags: i32,
        reply: ReplyEmpty,
    },
    Getxattr {
        ino: u64,
        name: OsString,
        size: u32,
        reply: ReplyXattr,
    },
    Listxattr {
        ino: u64,
        size: u32,
        reply: ReplyXattr,
    },
    Removexattr {
        ino: u64,
        name: OsString,
        reply: ReplyEmpty,
    },
    Fallocate {
        ino: u64,
        fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    },
    Lseek {
        ino: u64,
        fh: u64,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    },
    CopyFileRange {
        ino_in: u64,
        fh_in: u64,
        off_in: u64,
        ino_out: u64,
        fh_out: u64,
        off_out: u64,
        len: u64,
        reply: ReplyWrite,
    },
    Getlk {
        ino: u64,
        fh: u64,
        lock: Lock,
        reply: ReplyLock,
    },
    Setlk {
        ino: u64,
        fh: u64,
        lock: Lock,
        sleep: bool,
        reply: ReplyEmpty,
    },
}

impl KOp {
    pub(crate) fn op(&self) -> Op {
        match self {
            KOp::Statfs { .. } => Op::Statvfs,
            KOp::Lookup { .. } => Op::Lookup,
            KOp::Getattr { .. } => Op::Getattr,
            KOp::Setattr { .. } => Op::Setattr,
            KOp::Access { .. } => Op::Access,
            KOp::Readlink { .. } => Op::Readlink,
            KOp::Mknod { .. } => Op::Mknod,
            KOp::Mkdir { .. } => Op::Mkdir,
            KOp::Unlink { .. } => Op::Unlink,
            KOp::Rmdir { .. } => Op::Rmdir,
            KOp::Symlink { .. } => Op::Symlink,
            KOp::Rename { .. } => Op::Rename,
            KOp::Link { .. } => Op::Link,
            KOp::Open { .. } => Op::Open,
            KOp::Create { .. } => Op::Create,
            KOp::Read { .. } => Op::Read,
            KOp::Write { .. } => Op::Write,
            KOp::Flush { .. } => Op::Flush,
            KOp::Release { .. } => Op::Release,
            KOp::Fsync { .. } => Op::Fsync,
            KOp::Opendir { .. } => Op::Opendir,
            KOp::Readdir { .. } => Op::Readdir,
            KOp::Readdirplus { .. } => Op::Readdirplus,
            KOp::Releasedir { .. } => Op::Releasedir,
            KOp::Fsyncdir { .. } => Op::Fsyncdir,
            KOp::Setxattr { .. } => Op::Setxattr,
            KOp::Getxattr { .. } => Op::Getxattr,
            KOp::Listxattr { .. } => Op::Listxattr,
            KOp::Removexattr { .. } => Op::Removexattr,
            KOp::Fallocate { .. } => Op::Fallocate,
            KOp::Lseek { .. } => Op::Lseek,
            KOp::CopyFileRange { .. } => Op::CopyFileRange,
            KOp::Getlk { .. } => Op::Getlk,
            KOp::Setlk { .. } => Op::Setlk,
        }
    }
}

/// The queue from the reader thread(s) to the mainloop. Pushing wakes the loop only
/// when it sleeps, so a burst of requests costs one wakeup.
pub(crate) struct Inbox {
    queue: Mutex<VecDeque<Request>>,
    wakeup: Arc<Wakeup>,
}

impl Inbox {
    pub(crate) fn new(wakeup: Arc<Wakeup>) -> Self {
        Inbox {
            queue: Mutex::new(VecDeque::new()),
            wakeup,
        }
    }

    pub(crate) fn push(&self, req: Request) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(req);
        self.wakeup.wake();
    }

    /// Queues a forget, joined to the forget frame at the tail of the queue when there
    /// is one (a BATCH_FORGET of thousands of inodes becomes one frame, not thousands);
    /// order with the other requests is kept, since only the tail is joined.
    pub(crate) fn push_forget(&self, ino: u64, count: u64) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        match q.back_mut() {
            Some(Request::Forget(list)) => list.push((ino, count)),
            _ => q.push_back(Request::Forget(vec![(ino, count)])),
        }
        drop(q);
        self.wakeup.wake();
    }

    /// Takes up to `max` requests (backpressure: the rest wait in the queue).
    pub(crate) fn take(&self, max: usize, into: &mut Vec<Request>) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let n = max.min(q.len());
        into.extend(q.drain(..n));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }
}
