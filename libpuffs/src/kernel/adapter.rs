//! The fuser `Filesystem` the reader thread calls. It owns no file system state: it
//! refuses ops outside the opmask with ENOSYS right here, copies each request's
//! arguments into a frame, and queues it for the mainloop.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, BsdFileFlags, CopyFileRangeFlags, Errno, FileHandle, Filesystem, INodeNo,
    InitFlags, IoctlFlags, KernelConfig, LockOwner, OpenFlags, PollEvents, PollFlags, PollNotifier,
    ReplyAttr, ReplyBmap, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, ReplyIoctl, ReplyLock, ReplyLseek, ReplyOpen, ReplyPoll, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request as FReq, TimeOrNow, WriteFlags,
};

use super::reply::{self as seam, Reply};
use super::request::{DirOp, FileOp, Inbox, KOp, MakeOp, NameOp, NodeOp, RangeOp, Request};
use crate::args::{
    AccessMask, FallocateFlags, LockType, Mode, NewNode, OpenFlags as Flags, Whence, XattrFlags,
};
use crate::attr::{Attr, Lock, SetAttr, SetTime, Statvfs};
use crate::op::{Cred, Op, OpMask, RenameFlags};

/// What the INIT handshake asks of the kernel.
pub(crate) struct InitParams {
    pub max_write: u32,
    /// The readahead window asked for; INIT can only lower the kernel's (see
    /// `super::readahead`).
    pub max_readahead: Option<u32>,
    pub writeback_cache: bool,
    /// The fs clears set-uid/set-gid itself (`Ops::KILLS_SUIDGID`).
    pub kills_suidgid: bool,
    /// File handles outlive the kernel's cache (`Ops::lookup_ino`).
    pub export_support: bool,
    /// Ask for kernel passthrough (`PuffsUserMount::passthrough`).
    pub passthrough: bool,
}

pub(crate) struct Adapter {
    inbox: Arc<Inbox>,
    mask: OpMask,
    /// The statvfs answer for file systems that do not implement statvfs.
    statvfs: Statvfs,
    /// The root's attributes for file systems that do not implement getattr.
    root_attr: Attr,
    init: InitParams,
    refused: Refused,
}

/// What the kernel asked for that the fs does not implement, so that each is logged
/// once (at debug level), not once per request: a stress run answering every ioctl
/// with a warning wrote 33 MB of them.
#[derive(Default)]
struct Refused {
    seen: AtomicU64,
}

/// Bits of `Refused::seen` for requests that are not `Op`s (those use `op as u8`).
const BIT_IOCTL: u32 = 61;
const BIT_BMAP: u32 = 62;
const BIT_POLL: u32 = 63;

impl Refused {
    fn note(&self, op: Op) {
        self.note_bit(op as u32, &format!("{op:?}"));
    }

    /// Logs `what` the first time `bit` is set.
    fn note_bit(&self, bit: u32, what: &str) {
        let b = 1u64 << bit;
        if self.seen.fetch_or(b, Ordering::Relaxed) & b == 0 {
            log::debug!(
                "{what}: not implemented by the file system; answered without further notice"
            );
        }
    }
}

impl Adapter {
    pub(crate) fn new(
        inbox: Arc<Inbox>,
        mask: OpMask,
        statvfs: Statvfs,
        root_attr: Attr,
        init: InitParams,
    ) -> Self {
        Adapter {
            inbox,
            mask,
            statvfs,
            root_attr,
            init,
            refused: Refused::default(),
        }
    }

    /// The reply, when the fs implements `op`; else None, with the request answered
    /// ENOSYS right here (before any argument is copied).
    fn admit<R: Reply>(&self, op: Op, reply: R) -> Option<R> {
        if self.mask.contains(op) {
            return Some(reply);
        }
        self.refused.note(op);
        reply.error(crate::errno::Errno::ENOSYS);
        None
    }

    /// As `admit`, for release and releasedir: they reach the loop when the fs opens
    /// (the framework keeps its open-file objects and must drop them) or releases;
    /// otherwise nothing was opened by the fs, so nothing is left to release and the
    /// answer is Ok.
    fn admit_release<R: seam::ReplyEmpty>(&self, op: Op, open: Op, reply: R) -> Option<R> {
        let creates = open == Op::Open && self.mask.contains(Op::Create);
        if self.mask.contains(op) || self.mask.contains(open) || creates {
            return Some(reply);
        }
        reply.ok();
        None
    }

    /// Queues an admitted request for the loop, with the caller's credentials.
    fn queue(&self, req: &FReq, op: KOp) {
        let cred = Cred {
            uid: req.uid(),
            gid: req.gid(),
            pid: req.pid(),
        };
        self.inbox.push(Request::Op(cred, op));
    }

    /// The capabilities we serve, from an explicit list (never whatever the kernel
    /// offers: some bits, like FUSE_OVER_IO_URING, need support we do not have).
    fn wanted_capabilities(&self) -> InitFlags {
        let mut want = InitFlags::FUSE_ASYNC_READ
            | InitFlags::FUSE_BIG_WRITES
            | InitFlags::FUSE_MAX_PAGES
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_CACHE_SYMLINKS
            | InitFlags::FUSE_AUTO_INVAL_DATA
            | InitFlags::FUSE_ASYNC_DIO
            // An fs without open/opendir is stateless: ENOSYS then means "no handle".
            | InitFlags::FUSE_NO_OPEN_SUPPORT
            | InitFlags::FUSE_NO_OPENDIR_SUPPORT;
        if self.mask.contains(Op::Readdirplus) {
            want |= InitFlags::FUSE_DO_READDIRPLUS | InitFlags::FUSE_READDIRPLUS_AUTO;
        }
        if self.mask.contains(Op::Setlk) {
            want |= InitFlags::FUSE_POSIX_LOCKS;
        }
        // O_TRUNC reaches the fs's open, which truncates atomically; the kernel then
        // sends no SETATTR (which could not be told from truncate(2)).
        if self.mask.contains(Op::Open) {
            want |= InitFlags::FUSE_ATOMIC_O_TRUNC;
        }
        // The kernel stops asking for security.capability before every write.
        if self.init.kills_suidgid {
            want |= InitFlags::FUSE_HANDLE_KILLPRIV_V2;
        }
        if self.init.writeback_cache {
            want |= InitFlags::FUSE_WRITEBACK_CACHE;
        }
        // The kernel then looks up "." (-> lookup_ino) and ".." to decode file handles
        // of nodes it has forgotten.
        if self.init.export_support {
            if !self.mask.contains(Op::LookupIno) {
                log::warn!(
                    "export support without lookup_ino: file handles go stale once \
                     the kernel forgets their node"
                );
            }
            want |= InitFlags::FUSE_EXPORT_SUPPORT;
        }
        if self.init.passthrough {
            want |= InitFlags::FUSE_PASSTHROUGH;
        }
        want
    }
}

/// Passthrough needs a stacking depth of at least 1 (the backing files' own file
/// system is at depth 0); says whether the kernel offered it.
fn log_passthrough(config: &mut KernelConfig, want: InitFlags) {
    if want.contains(InitFlags::FUSE_PASSTHROUGH) && config.set_max_stack_depth(1).is_ok() {
        log::info!("kernel passthrough: on");
    } else {
        log::info!("kernel passthrough: not offered by the kernel; file data goes through the fs");
    }
}

fn set_time(t: Option<TimeOrNow>) -> Option<SetTime> {
    t.map(|t| match t {
        TimeOrNow::Now => SetTime::Now,
        TimeOrNow::SpecificTime(t) => SetTime::At(undo_fuser_pre_epoch(t)),
    })
}

/// fuser 0.18 turns a wire time (secs < 0, nsec) into EPOCH - (|secs| s + nsec ns)
/// where it should be EPOCH - |secs| s + nsec ns (its own TODO says so). Both parts
/// are still there (nsec < 1 s), so the mistake can be undone exactly.
fn undo_fuser_pre_epoch(t: SystemTime) -> SystemTime {
    match SystemTime::UNIX_EPOCH.duration_since(t) {
        Ok(d) if d.subsec_nanos() != 0 => {
            SystemTime::UNIX_EPOCH - Duration::from_secs(d.as_secs())
                + Duration::from_nanos(d.subsec_nanos().into())
        }
        _ => t,
    }
}

/// What mknod, mkdir and create make.
fn new_node(mode: u32, umask: u32, rdev: u32) -> NewNode {
    NewNode {
        mode: Mode::from_bits(mode),
        umask: Mode::from_bits(umask),
        rdev,
    }
}

/// renameat2 flags as the FUSE protocol carries them (Linux's values on every OS).
const RENAME_NOREPLACE: u32 = 1 << 0;
const RENAME_EXCHANGE: u32 = 1 << 1;
const RENAME_WHITEOUT: u32 = 1 << 2;

fn rename_flags(f: fuser::RenameFlags) -> RenameFlags {
    let bits = f.bits();
    RenameFlags {
        noreplace: bits & RENAME_NOREPLACE != 0,
        exchange: bits & RENAME_EXCHANGE != 0,
        whiteout: bits & RENAME_WHITEOUT != 0,
    }
}

impl Filesystem for Adapter {
    fn init(&mut self, _req: &FReq, config: &mut KernelConfig) -> io::Result<()> {
        let want = self.wanted_capabilities() & config.capabilities();
        if let Err(missing) = config.add_capabilities(want) {
            log::warn!("kernel refused capabilities {missing:?}");
        }
        if let Err(max) = config.set_max_write(self.init.max_write) {
            let _ = config.set_max_write(max);
        }
        if let Some(ra) = self.init.max_readahead {
            if let Err(offered) = config.set_max_readahead(ra) {
                // Larger than the kernel's default: set after the mount is up.
                let _ = config.set_max_readahead(offered);
            }
        }
        let _ = config.set_max_background(64);
        if self.init.passthrough {
            log_passthrough(config, want);
        }
        log::trace!("INIT: capabilities {:?}", config.capabilities() & want);
        Ok(())
    }

    fn destroy(&mut self) {
        self.inbox.push(Request::Destroyed);
    }

    fn lookup(&self, req: &FReq, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(reply) = self.admit(Op::Lookup, reply) else {
            return;
        };
        let name = name.to_owned();
        self.queue(
            req,
            KOp::Name(NameOp::Lookup {
                parent: parent.0,
                name,
                reply,
            }),
        );
    }

    /// Also the whole of a BATCH_FORGET: fuser 0.18 does not export the type its
    /// `batch_forget` takes, so its default calls this once per inode, back to back on
    /// this thread, and the inbox joins them into the forget frame at its tail.
    fn forget(&self, _req: &FReq, ino: INodeNo, nlookup: u64) {
        self.inbox.push_forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &FReq, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        if !self.mask.contains(Op::Getattr) && ino.0 == crate::op::ROOT_INO {
            reply.attr(
                &Duration::from_secs(1),
                &super::convert::file_attr(&self.root_attr, ino.0),
            );
            return;
        }
        let Some(reply) = self.admit(Op::Getattr, reply) else {
            return;
        };
        self.queue(
            req,
            KOp::Node(NodeOp::Getattr {
                ino: ino.0,
                fh: fh.map(|f| f.0),
                reply,
            }),
        );
    }

    fn setattr(
        &self,
        req: &FReq,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let Some(reply) = self.admit(Op::Setattr, reply) else {
            return;
        };
        let set = SetAttr {
            mode: mode.map(Mode::from_bits),
            uid,
            gid,
            size,
            atime: set_time(atime),
            mtime: set_time(mtime),
            ctime: ctime.map(undo_fuser_pre_epoch),
        };
        self.queue(
            req,
            KOp::Node(NodeOp::Setattr {
                ino: ino.0,
                fh: fh.map(|f| f.0),
                set,
                reply,
            }),
        );
    }

    fn readlink(&self, req: &FReq, ino: INodeNo, reply: ReplyData) {
        let Some(reply) = self.admit(Op::Readlink, reply) else {
            return;
        };
        self.queue(req, KOp::Node(NodeOp::Readlink { ino: ino.0, reply }));
    }

    fn mknod(
        &self,
        req: &FReq,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let Some(reply) = self.admit(Op::Mknod, reply) else {
            return;
        };
        let name = name.to_owned();
        self.queue(
            req,
            KOp::Make(MakeOp::Mknod {
                parent: parent.0,
                name,
                new: new_node(mode, umask, rdev),
                reply,
            }),
        );
    }

    fn mkdir(
        &self,
        req: &FReq,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let Some(reply) = self.admit(Op::Mkdir, reply) else {
            return;
        };
        let name = name.to_owned();
        self.queue(
            req,
            KOp::Make(MakeOp::Mkdir {
                parent: parent.0,
                name,
                new: new_node(mode, umask, 0),
                reply,
            }),
        );
    }

    fn unlink(&self, req: &FReq, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let Some(reply) = self.admit(Op::Unlink, reply) else {
            return;
        };
        let name = name.to_owned();
        self.queue(
            req,
            KOp::Name(NameOp::Unlink {
                parent: parent.0,
                name,
                reply,
            }),
        );
    }

    fn rmdir(&self, req: &FReq, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let Some(reply) = self.admit(Op::Rmdir, reply) else {
            return;
        };
        let name = name.to_owned();
        self.queue(
            req,
            KOp::Name(NameOp::Rmdir {
                parent: parent.0,
                name,
                reply,
            }),
        );
    }

    fn symlink(
        &self,
        req: &FReq,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let Some(reply) = self.admit(Op::Symlink, reply) else {
            return;
        };
        let (name, target) = (link_name.to_owned(), target.to_owned());
        self.queue(
            req,
            KOp::Make(MakeOp::Symlink {
                parent: parent.0,
                name,
                target,
                reply,
            }),
        );
    }

    fn rename(
        &self,
        req: &FReq,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        let Some(reply) = self.admit(Op::Rename, reply) else {
            return;
        };
        let op = KOp::Name(NameOp::Rename {
            parent: parent.0,
            name: name.to_owned(),
            newparent: newparent.0,
            newname: newname.to_owned(),
            flags: rename_flags(flags),
            reply,
        });
        self.queue(req, op);
    }

    fn link(
        &self,
        req: &FReq,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let Some(reply) = self.admit(Op::Link, reply) else {
            return;
        };
        let newname = newname.to_owned();
        self.queue(
            req,
            KOp::Make(MakeOp::Link {
                ino: ino.0,
                newparent: newparent.0,
                newname,
                reply,
            }),
        );
    }

    fn open(&self, req: &FReq, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let Some(reply) = self.admit(Op::Open, reply) else {
            return;
        };
        self.queue(
            req,
            KOp::File(FileOp::Open {
                ino: ino.0,
                flags: Flags::from_bits(flags.0),
                reply,
            }),
        );
    }

    fn read(
        &self,
        req: &FReq,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(reply) = self.admit(Op::Read, reply) else {
            return;
        };
        self.queue(
            req,
            KOp::File(FileOp::Read {
                ino: ino.0,
                fh: fh.0,
                offset,
                size,
                reply,
            }),
        );
    }

    fn write(
        &self,
        req: &FReq,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let Some(reply) = self.admit(Op::Write, reply) else {
            return;
        };
        // The data lives in fuser's read buffer, which the next request reuses: the
        // one copy, into a buffer the fs then owns (and may hand to aio as is).
        let data = data.to_vec();
        self.queue(
            req,
            KOp::File(FileOp::Write {
                ino: ino.0,
                fh: fh.0,
                offset,
                data,
                flags: Flags::from_bits(flags.0),
                reply,
            }),
        );
    }

    fn flush(
        &self,
        req: &FReq,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let Some(reply) = self.admit(Op::Flush, reply) else {
            return;
        };
        self.queue(
            req,
            KOp::File(FileOp::Flush {
                ino: ino.0,
                fh: fh.0,
                lock_owner: lock_owner.0,
                reply,
            }),
        );
    }

    fn release(
        &self,
        req: &FReq,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let Some(reply) = self.admit_release(Op::Release, Op::Open, reply) else {
            return;
        };
        self.queue(
            req,
            KOp::File(FileOp::Release {
                ino: ino.0,
                fh: fh.0,
                reply,
            }),
        );
    }

    fn fsync(&self, req: &FReq, ino: INodeNo, fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        let Some(reply) = self.admit(Op::Fsync, reply) else {
            return;
        };
        self.queue(
            req,
            KOp::File(FileOp::Fsync {
                ino: ino.0,
                fh: fh.0,
                datasync,
                reply,
            }),
        );
    }

    fn opendir(&self, req: &FReq, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let Some(reply) = self.admit(Op::Opendir, reply) else {
            return;
        };
        self.queue(
            req,
            KOp::Dir(DirOp::Opendir {
                ino: ino.0,
                flags: Flags::from_bits(flags.0),
                reply,
            }),
        );
    }

    fn readdir(
        &self,
        req: &FReq,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        let Some(reply) = self.admit(Op::Readdir, reply) else {
            return;
        };
        self.queue(
            req,
            KOp::Dir(DirOp::Readdir {
                ino: ino.0,
                fh: fh.0,
                offset,
                reply,
            }),
        );
    }

    fn readdirplus(
        &self,
        req: &FReq,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        let Some(reply) = self.admit(Op::Readdirplus, reply) else {
            return;
        };
        self.queue(
            req,
            KOp::Dir(DirOp::Readdirplus {
                ino: ino.0,
                fh: fh.0,
                offset,
                reply,
            }),
        );
    }

    fn releasedir(
        &self,
        req: &FReq,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let Some(reply) = self.admit_release(Op::Releasedir, Op::Opendir, reply) else {
            return;
        };
        self.queue(
            req,
            KOp::Dir(DirOp::Releasedir {
                ino: ino.0,
                fh: fh.0,
                reply,
            }),
        );
    }

    fn fsyncdir(
        &self,
        req: &FReq,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let Some(reply) = self.admit(Op::Fsyncdir, reply) else {
            return;
        };
        self.queue(
            req,
            KOp::Dir(DirOp::Fsyncdir {
                ino: ino.0,
                fh: fh.0,
                datasync,
                reply,
            }),
        );
    }

    fn statfs(&self, req: &FReq, _ino: INodeNo, reply: ReplyStatfs) {
        if !self.mask.contains(Op::Statvfs) {
            let s = self.statvfs;
            reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namemax, s.frsize,
            );
            return;
        }
        self.queue(req, KOp::Node(NodeOp::Statfs { reply }));
    }

    fn setxattr(
        &self,
        req: &FReq,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let Some(reply) = self.admit(Op::Setxattr, reply) else {
            return;
        };
        let (name, value) = (name.to_owned(), value.to_vec());
        self.queue(
            req,
            KOp::Node(NodeOp::Setxattr {
                ino: ino.0,
                name,
                value,
                flags: XattrFlags::from_bits(flags),
                reply,
            }),
        );
    }

    fn getxattr(&self, req: &FReq, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let Some(reply) = self.admit(Op::Getxattr, reply) else {
            return;
        };
        let name = name.to_owned();
        self.queue(
            req,
            KOp::Node(NodeOp::Getxattr {
                ino: ino.0,
                name,
                size,
                reply,
            }),
        );
    }

    fn listxattr(&self, req: &FReq, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let Some(reply) = self.admit(Op::Listxattr, reply) else {
            return;
        };
        self.queue(
            req,
            KOp::Node(NodeOp::Listxattr {
                ino: ino.0,
                size,
                reply,
            }),
        );
    }

    fn removexattr(&self, req: &FReq, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let Some(reply) = self.admit(Op::Removexattr, reply) else {
            return;
        };
        let name = name.to_owned();
        self.queue(
            req,
            KOp::Node(NodeOp::Removexattr {
                ino: ino.0,
                name,
                reply,
            }),
        );
    }

    fn access(&self, req: &FReq, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let Some(reply) = self.admit(Op::Access, reply) else {
            return;
        };
        self.queue(
            req,
            KOp::Node(NodeOp::Access {
                ino: ino.0,
                mask: AccessMask::from_bits(mask.bits()),
                reply,
            }),
        );
    }

    fn create(
        &self,
        req: &FReq,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let Some(reply) = self.admit(Op::Create, reply) else {
            return;
        };
        let name = name.to_owned();
        self.queue(
            req,
            KOp::Make(MakeOp::Create {
                parent: parent.0,
                name,
                new: new_node(mode, umask, 0),
                flags: Flags::from_bits(flags),
                reply,
            }),
        );
    }

    fn getlk(
        &self,
        req: &FReq,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        reply: ReplyLock,
    ) {
        let Some(reply) = self.admit(Op::Getlk, reply) else {
            return;
        };
        let Some(typ) = LockType::from_raw(typ) else {
            return reply.error(Errno::EINVAL);
        };
        let lock = Lock {
            start,
            end,
            typ,
            pid,
            owner: lock_owner.0,
        };
        self.queue(
            req,
            KOp::Range(RangeOp::Getlk {
                ino: ino.0,
                fh: fh.0,
                lock,
                reply,
            }),
        );
    }

    fn setlk(
        &self,
        req: &FReq,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        let Some(reply) = self.admit(Op::Setlk, reply) else {
            return;
        };
        let Some(typ) = LockType::from_raw(typ) else {
            return reply.error(Errno::EINVAL);
        };
        let lock = Lock {
            start,
            end,
            typ,
            pid,
            owner: lock_owner.0,
        };
        self.queue(
            req,
            KOp::Range(RangeOp::Setlk {
                ino: ino.0,
                fh: fh.0,
                lock,
                sleep,
                reply,
            }),
        );
    }

    fn fallocate(
        &self,
        req: &FReq,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let Some(reply) = self.admit(Op::Fallocate, reply) else {
            return;
        };
        self.queue(
            req,
            KOp::Range(RangeOp::Fallocate {
                ino: ino.0,
                fh: fh.0,
                offset,
                length,
                mode: FallocateFlags::from_bits(mode),
                reply,
            }),
        );
    }

    fn lseek(
        &self,
        req: &FReq,
        ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let Some(reply) = self.admit(Op::Lseek, reply) else {
            return;
        };
        let Some(whence) = Whence::from_raw(whence) else {
            return reply.error(Errno::EINVAL);
        };
        self.queue(
            req,
            KOp::Range(RangeOp::Lseek {
                ino: ino.0,
                fh: fh.0,
                offset,
                whence,
                reply,
            }),
        );
    }

    fn copy_file_range(
        &self,
        req: &FReq,
        ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        let Some(reply) = self.admit(Op::CopyFileRange, reply) else {
            return;
        };
        let op = KOp::Range(RangeOp::CopyFileRange {
            ino_in: ino_in.0,
            fh_in: fh_in.0,
            off_in: offset_in,
            ino_out: ino_out.0,
            fh_out: fh_out.0,
            off_out: offset_out,
            len,
            reply,
        });
        self.queue(req, op);
    }

    // What the framework has no op for: answered as tmpfs answers, quietly (fuser's
    // defaults warn on every request).

    fn ioctl(
        &self,
        _req: &FReq,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        // tmpfs answers an ioctl it does not know with ENOTTY (and so does the kernel
        // when a FUSE fs answers ENOSYS).
        self.refused.note_bit(BIT_IOCTL, "ioctl");
        reply.error(Errno::ENOTTY);
    }

    fn bmap(&self, _req: &FReq, _ino: INodeNo, _bs: u32, _idx: u64, reply: ReplyBmap) {
        self.refused.note_bit(BIT_BMAP, "bmap");
        reply.error(Errno::ENOSYS);
    }

    fn poll(
        &self,
        _req: &FReq,
        _ino: INodeNo,
        _fh: FileHandle,
        _ph: PollNotifier,
        _events: PollEvents,
        _flags: PollFlags,
        reply: ReplyPoll,
    ) {
        // ENOSYS: the kernel stops asking and treats the file as always ready.
        self.refused.note_bit(BIT_POLL, "poll");
        reply.error(Errno::ENOSYS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A reply that records its answer.
    struct Rec(Arc<Mutex<Vec<String>>>);

    impl Reply for Rec {
        fn error(self, e: crate::errno::Errno) {
            self.0.lock().unwrap().push(format!("error {e:?}"));
        }
    }
    impl seam::ReplyEmpty for Rec {
        fn ok(self) {
            self.0.lock().unwrap().push("ok".into());
        }
    }

    fn adapter(mask: OpMask) -> (Adapter, Arc<Inbox>) {
        let mut poller = crate::event::Poller::new().unwrap();
        let wakeup = crate::wakeup::Wakeup::new(&mut poller, crate::event::Token(0)).unwrap();
        let inbox = Arc::new(Inbox::new(Arc::new(wakeup)));
        let init = InitParams {
            max_write: 4096,
            max_readahead: None,
            writeback_cache: false,
            kills_suidgid: false,
            export_support: false,
            passthrough: false,
        };
        let attr = Attr::new(crate::attr::FileType::Directory, 0o755);
        let a = Adapter::new(Arc::clone(&inbox), mask, Statvfs::default(), attr, init);
        (a, inbox)
    }

    #[test]
    fn a_refused_op_is_answered_here_and_never_queued() {
        let (a, inbox) = adapter(OpMask::of(&[Op::Read]));
        let log = Arc::new(Mutex::new(Vec::new()));
        assert!(a.admit(Op::Write, Rec(Arc::clone(&log))).is_none());
        assert!(a
            .admit_release(Op::Release, Op::Open, Rec(Arc::clone(&log)))
            .is_none());
        assert_eq!(*log.lock().unwrap(), ["error ENOSYS", "ok"]);
        assert!(a.admit(Op::Read, Rec(Arc::clone(&log))).is_some());
        assert_eq!(
            log.lock().unwrap().len(),
            2,
            "an admitted op is not answered"
        );
        assert!(!inbox.has_work(usize::MAX), "nothing reached the loop");
    }

    #[test]
    fn release_reaches_the_loop_when_the_fs_opens() {
        // The framework keeps the open-file objects, so it must hear of the release
        // even when the fs does not implement release itself.
        let log = Arc::new(Mutex::new(Vec::new()));
        for mask in [OpMask::of(&[Op::Open]), OpMask::of(&[Op::Create])] {
            let (a, _inbox) = adapter(mask);
            assert!(a
                .admit_release(Op::Release, Op::Open, Rec(Arc::clone(&log)))
                .is_some());
        }
        let (a, _inbox) = adapter(OpMask::of(&[Op::Opendir]));
        assert!(a
            .admit_release(Op::Releasedir, Op::Opendir, Rec(Arc::clone(&log)))
            .is_some());
        assert!(log.lock().unwrap().is_empty(), "nothing answered here");
    }

    #[test]
    fn pre_epoch_times_keep_their_nanoseconds() {
        // What fuser makes of the wire time (-1 s, 500 ns), and what it means.
        let fuser = SystemTime::UNIX_EPOCH - Duration::new(1, 500);
        let meant = SystemTime::UNIX_EPOCH - Duration::from_secs(1) + Duration::from_nanos(500);
        assert_eq!(undo_fuser_pre_epoch(fuser), meant);
        let whole = SystemTime::UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(undo_fuser_pre_epoch(whole), whole);
        let after = SystemTime::UNIX_EPOCH + Duration::new(5, 7);
        assert_eq!(undo_fuser_pre_epoch(after), after);
    }
}
