//! Request frames: a kernel request with owned arguments, the caller's credentials and
//! fuser's reply handle, queued from the reader thread to the mainloop.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::reply::{Fuser, Replies};
use crate::args::{AccessMask, FallocateFlags, NewNode, OpenFlags, Whence, XattrFlags};
use crate::attr::{Lock, SetAttr};
use crate::op::{Cred, RenameFlags};
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

/// One kernel request, its arguments owned, with its reply, grouped by what it acts
/// on (each group's dispatch stays one short match). `R` names the reply types: fuser's
/// in a mount, recording ones in dispatch's unit tests.
pub(crate) enum KOp<R: Replies = Fuser> {
    Name(NameOp<R>),
    Make(MakeOp<R>),
    Node(NodeOp<R>),
    File(FileOp<R>),
    Range(RangeOp<R>),
    Dir(DirOp<R>),
}

/// Requests on names in a directory.
pub(crate) enum NameOp<R: Replies> {
    Lookup {
        parent: u64,
        name: OsString,
        reply: R::Entry,
    },
    Unlink {
        parent: u64,
        name: OsString,
        reply: R::Empty,
    },
    Rmdir {
        parent: u64,
        name: OsString,
        reply: R::Empty,
    },
    Rename {
        parent: u64,
        name: OsString,
        newparent: u64,
        newname: OsString,
        flags: RenameFlags,
        reply: R::Empty,
    },
}

/// Requests that make a node, or a new name for one.
pub(crate) enum MakeOp<R: Replies> {
    Mknod {
        parent: u64,
        name: OsString,
        new: NewNode,
        reply: R::Entry,
    },
    Mkdir {
        parent: u64,
        name: OsString,
        new: NewNode,
        reply: R::Entry,
    },
    Symlink {
        parent: u64,
        name: OsString,
        target: PathBuf,
        reply: R::Entry,
    },
    Link {
        ino: u64,
        newparent: u64,
        newname: OsString,
        reply: R::Entry,
    },
    Create {
        parent: u64,
        name: OsString,
        new: NewNode,
        flags: OpenFlags,
        reply: R::Create,
    },
}

/// Requests on a node, not through an open file.
pub(crate) enum NodeOp<R: Replies> {
    Statfs {
        reply: R::Statfs,
    },
    Getattr {
        ino: u64,
        fh: Option<u64>,
        reply: R::Attr,
    },
    Setattr {
        ino: u64,
        fh: Option<u64>,
        set: SetAttr,
        reply: R::Attr,
    },
    Access {
        ino: u64,
        mask: AccessMask,
        reply: R::Empty,
    },
    Readlink {
        ino: u64,
        reply: R::Data,
    },
    Setxattr {
        ino: u64,
        name: OsString,
        value: Vec<u8>,
        flags: XattrFlags,
        reply: R::Empty,
    },
    Getxattr {
        ino: u64,
        name: OsString,
        size: u32,
        reply: R::Xattr,
    },
    Listxattr {
        ino: u64,
        size: u32,
        reply: R::Xattr,
    },
    Removexattr {
        ino: u64,
        name: OsString,
        reply: R::Empty,
    },
}

/// Requests on an open file.
pub(crate) enum FileOp<R: Replies> {
    Open {
        ino: u64,
        flags: OpenFlags,
        reply: R::Open,
    },
    Read {
        ino: u64,
        fh: u64,
        offset: u64,
        size: u32,
        reply: R::Data,
    },
    Write {
        ino: u64,
        fh: u64,
        offset: u64,
        data: Vec<u8>,
        flags: OpenFlags,
        reply: R::Write,
    },
    Flush {
        ino: u64,
        fh: u64,
        lock_owner: u64,
        reply: R::Empty,
    },
    Release {
        ino: u64,
        fh: u64,
        reply: R::Empty,
    },
    Fsync {
        ino: u64,
        fh: u64,
        datasync: bool,
        reply: R::Empty,
    },
}

/// Requests on a range of an open file.
pub(crate) enum RangeOp<R: Replies> {
    Fallocate {
        ino: u64,
        fh: u64,
        offset: u64,
        length: u64,
        mode: FallocateFlags,
        reply: R::Empty,
    },
    Lseek {
        ino: u64,
        fh: u64,
        offset: i64,
        whence: Whence,
        reply: R::Lseek,
    },
    CopyFileRange {
        ino_in: u64,
        fh_in: u64,
        off_in: u64,
        ino_out: u64,
        fh_out: u64,
        off_out: u64,
        len: u64,
        reply: R::Write,
    },
    Getlk {
        ino: u64,
        fh: u64,
        lock: Lock,
        reply: R::Lock,
    },
    Setlk {
        ino: u64,
        fh: u64,
        lock: Lock,
        sleep: bool,
        reply: R::Empty,
    },
}

/// Requests on an open directory.
pub(crate) enum DirOp<R: Replies> {
    Opendir {
        ino: u64,
        flags: OpenFlags,
        reply: R::Open,
    },
    Readdir {
        ino: u64,
        fh: u64,
        offset: u64,
        reply: R::Dir,
    },
    Readdirplus {
        ino: u64,
        fh: u64,
        offset: u64,
        reply: R::DirPlus,
    },
    Releasedir {
        ino: u64,
        fh: u64,
        reply: R::Empty,
    },
    Fsyncdir {
        ino: u64,
        fh: u64,
        datasync: bool,
        reply: R::Empty,
    },
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
