//! Request frames: a kernel request with owned arguments, the caller's credentials and
//! fuser's reply handle, queued from the reader thread to the mainloop.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use fuser::{
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry,
    ReplyLock, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr,
};

use crate::attr::{Lock, SetAttr};
use crate::op::{Cred, Op, RenameFlags};
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
///
/// Two lanes: ops obey the in-flight cap, while control (signals, the end of the
/// connection) and FORGETs (free to run, and they release memory) bypass it, so a
/// mount whose cap is taken by parked ops still hears that it must stop.
pub(crate) struct Inbox {
    lanes: Mutex<Lanes>,
    /// How many requests each lane holds, readable without the lock: the loop's spin
    /// reads them while the reader thread pushes.
    queued_control: AtomicUsize,
    queued_ops: AtomicUsize,
    wakeup: Arc<Wakeup>,
}

#[derive(Default)]
struct Lanes {
    control: VecDeque<Request>,
    ops: VecDeque<Request>,
}

impl Inbox {
    pub(crate) fn new(wakeup: Arc<Wakeup>) -> Self {
        Inbox {
            lanes: Mutex::new(Lanes::default()),
            queued_control: AtomicUsize::new(0),
            queued_ops: AtomicUsize::new(0),
            wakeup,
        }
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes the lanes' lengths for lock-free readers (called with the lock held).
    fn publish(&self, lanes: &Lanes) {
        self.queued_control
            .store(lanes.control.len(), Ordering::SeqCst);
        self.queued_ops.store(lanes.ops.len(), Ordering::SeqCst);
    }

    pub(crate) fn push(&self, req: Request) {
        let mut lanes = self.lanes();
        match req {
            Request::Op(..) => lanes.ops.push_back(req),
            _ => lanes.control.push_back(req),
        }
        self.publish(&lanes);
        drop(lanes);
        self.wakeup.wake();
    }

    /// Queues a forget in the control lane, joined to the forget frame at its tail when
    /// there is one (a BATCH_FORGET of thousands of inodes becomes one frame, not
    /// thousands). The kernel forgets only lookups it has been answered, so a forget
    /// never overtakes the lookup it counts.
    pub(crate) fn push_forget(&self, ino: u64, count: u64) {
        let mut lanes = self.lanes();
        match lanes.control.back_mut() {
            Some(Request::Forget(list)) => list.push((ino, count)),
            _ => lanes.control.push_back(Request::Forget(vec![(ino, count)])),
        }
        self.publish(&lanes);
        drop(lanes);
        self.wakeup.wake();
    }

    /// Takes every control request and up to `max` ops (backpressure: the rest wait in
    /// the queue). Control comes first in `into`.
    pub(crate) fn take(&self, max: usize, into: &mut Vec<Request>) {
        let mut lanes = self.lanes();
        into.extend(lanes.control.drain(..));
        let n = max.min(lanes.ops.len());
        into.extend(lanes.ops.drain(..n));
        self.publish(&lanes);
    }

    /// Whether anything waits that `take(max, ..)` would hand out (lock-free).
    pub(crate) fn has_work(&self, max: usize) -> bool {
        self.queued_control.load(Ordering::SeqCst) > 0
            || (max > 0 && self.queued_ops.load(Ordering::SeqCst) > 0)
    }

    /// Empties both lanes (the loop is done): the ops' replies, dropped unsent, answer
    /// EIO.
    pub(crate) fn drain(&self) {
        let mut guard = self.lanes();
        let lanes = std::mem::take(&mut *guard);
        self.publish(&guard);
        drop(guard);
        drop(lanes);
    }
}
