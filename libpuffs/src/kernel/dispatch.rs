//! The loop side of a request: resolve inode numbers to nodes, start a continuation
//! that runs the file system's op, and turn its result into the kernel reply. Reading
//! one arm of `dispatch` top to bottom is the whole path of that request.

use std::future::Future;
use std::rc::Rc;

use fuser::{FileHandle, Generation, INodeNo};

use super::convert::{errno, file_attr, file_type, open_flags};
use super::request::KOp;
use crate::attr::{Lock, Ttls};
use crate::cx::Cx;
use crate::dirbuf::{DirBuf, DirPlusBuf};
use crate::node::Node;
use crate::ops::{Cred, EntryOf, Op, OpResult, Ops};
use crate::runtime::Runtime;
use crate::Errno;

/// How much a readdir reply may hold. fuser does not tell us the kernel's buffer size:
/// it is one page on older kernels and getdents' count (32 KiB from glibc) on newer
/// ones. Filling 32 KiB is right for both: fuser's `add` says when the real buffer is
/// full, and we stop at the first entry that does not fit.
const DIR_REPLY_SIZE: usize = 32 * 1024;

/// Looks up a node the request names, or answers ESTALE for an inode number the
/// kernel should no longer use.
macro_rules! node {
    ($rt:expr, $ino:expr, $reply:expr) => {
        match $rt.node($ino) {
            Some(n) => n,
            None => {
                $reply.error(errno(Errno::ESTALE));
                return;
            }
        }
    };
}

/// Starts the continuation for `op`: runs the pre hook now, `body` in the executor,
/// and the post hook with the outcome.
fn start<F: Ops, Fut>(
    rt: &Rc<Runtime<F>>,
    cred: Cred,
    op: Op,
    body: impl FnOnce(Rc<Runtime<F>>, Cx<F>) -> Fut,
) where
    Fut: Future<Output = Option<Errno>> + 'static,
{
    rt.pre_op(op, &cred);
    let fut = body(Rc::clone(rt), Cx::new(cred, Rc::clone(rt)));
    let rt2 = Rc::clone(rt);
    rt.exec.spawn(async move {
        let failed = fut.await;
        rt2.post_op(op, &cred, failed);
    });
}

/// The errno of a result, for the post hook.
fn outcome<T>(r: &OpResult<T>) -> Option<Errno> {
    r.as_ref().err().copied()
}

/// Enters the node an entry names into the node table (one more kernel lookup).
fn enter<F: Ops>(rt: &Runtime<F>, e: EntryOf<F>) -> (Rc<Node<F>>, fuser::FileAttr, Ttls) {
    let ttls = rt.ttls(e.entry_ttl, e.attr_ttl);
    let node = rt
        .nodes
        .borrow_mut()
        .enter(e.key, e.data, e.attr.ino, e.generation);
    let attr = file_attr(&e.attr, node.ino());
    (node, attr, ttls)
}

fn reply_entry<F: Ops>(
    rt: &Runtime<F>,
    r: OpResult<EntryOf<F>>,
    reply: fuser::ReplyEntry,
) -> Option<Errno> {
    match r {
        Ok(e) => {
            let (node, attr, ttls) = enter(rt, e);
            reply.entry_with_ttls(
                &ttls.attr,
                &ttls.entry,
                &attr,
                Generation(node.generation()),
            );
            None
        }
        Err(e) => {
            reply.error(errno(e));
            Some(e)
        }
    }
}

fn reply_empty(r: OpResult<()>, reply: fuser::ReplyEmpty) -> Option<Errno> {
    match r {
        Ok(()) => {
            reply.ok();
            None
        }
        Err(e) => {
            reply.error(errno(e));
            Some(e)
        }
    }
}

fn reply_attr<F: Ops>(
    rt: &Runtime<F>,
    node: &Node<F>,
    r: OpResult<crate::Attr>,
    reply: fuser::ReplyAttr,
) -> Option<Errno> {
    match r {
        Ok(a) => {
            reply.attr(&rt.settings.attr_timeout, &file_attr(&a, node.ino()));
            None
        }
        Err(e) => {
            reply.error(errno(e));
            Some(e)
        }
    }
}

fn reply_open(r: OpResult<crate::Opened>, reply: fuser::ReplyOpen) -> Option<Errno> {
    match r {
        Ok(o) => {
            reply.opened(FileHandle(o.fh), open_flags(&o));
            None
        }
        Err(e) => {
            reply.error(errno(e));
            Some(e)
        }
    }
}

/// getxattr / listxattr: a size probe (size 0) gets the length, a short buffer ERANGE.
fn reply_xattr(r: OpResult<Vec<u8>>, size: u32, reply: fuser::ReplyXattr) -> Option<Errno> {
    match r {
        Ok(v) if size == 0 => {
            reply.size(v.len() as u32);
            None
        }
        Ok(v) if v.len() > size as usize => {
            reply.error(errno(Errno::ERANGE));
            Some(Errno::ERANGE)
        }
        Ok(v) => {
            reply.data(&v);
            None
        }
        Err(e) => {
            reply.error(errno(e));
            Some(e)
        }
    }
}

fn reply_written(
    r: OpResult<u32>,
    asked: u64,
    reply: fuser::ReplyWrite,
    rt_err: impl Fn(&str),
) -> Option<Errno> {
    match r {
        Ok(n) if u64::from(n) > asked => {
            rt_err("reported more bytes written than it was given");
            reply.error(errno(Errno::EIO));
            Some(Errno::EIO)
        }
        Ok(n) => {
            reply.written(n);
            None
        }
        Err(e) => {
            reply.error(errno(e));
            Some(e)
        }
    }
}

/// Runs one kernel request: everything from the frame to the reply.
pub(crate) fn dispatch<F: Ops>(rt: &Rc<Runtime<F>>, cred: Cred, kop: KOp) {
    let op = kop.op();
    match kop {
        KOp::Statfs { reply } => start(rt, cred, op, |rt, cx| async move {
            match rt.fs.statvfs(&cx).await {
                Ok(s) => {
                    reply.statfs(
                        s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namemax, s.frsize,
                    );
                    None
                }
                Err(e) => {
                    reply.error(errno(e));
                    Some(e)
                }
            }
        }),
        KOp::Lookup {
            parent: ino,
            name,
            reply,
        } if name == "." && F::OPMASK.contains(Op::LookupIno) => {
            // A file handle names a node the kernel has forgotten (export support);
            // it may or may not be in our table still: the fs finds it by number.
            start(rt, cred, Op::LookupIno, |rt, cx| async move {
                let r = rt.fs.lookup_ino(&cx, ino).await;
                reply_entry(&rt, r, reply)
            })
        }
        KOp::Lookup {
            parent,
            name,
            reply,
        } => {
            let dir = node!(rt, parent, reply);
            start(rt, cred, op, |rt, cx| async move {
                let r = rt.fs.lookup(&cx, &dir, &name).await;
                reply_entry(&rt, r, reply)
            })
        }
        KOp::Getattr { ino, fh, reply } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                let r = rt.fs.getattr(&cx, &node, fh).await;
                reply_attr(&rt, &node, r, reply)
            })
        }
        KOp::Setattr { ino, set, reply } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                let r = rt.fs.setattr(&cx, &node, &set).await;
                reply_attr(&rt, &node, r, reply)
            })
        }
        KOp::Access { ino, mask, reply } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                reply_empty(rt.fs.access(&cx, &node, mask).await, reply)
            })
        }
        KOp::Readlink { ino, reply } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                match rt.fs.readlink(&cx, &node).await {
                    Ok(target) => {
                        reply.data(std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()));
                        None
                    }
                    Err(e) => {
                        reply.error(errno(e));
                        Some(e)
                    }
                }
            })
        }
        KOp::Mknod {
            parent,
            name,
            mode,
            umask,
            rdev,
            reply,
        } => {
            let dir = node!(rt, parent, reply);
            start(rt, cred, op, |rt, cx| async move {
                let r = rt.fs.mknod(&cx, &dir, &name, mode, umask, rdev).await;
                reply_entry(&rt, r, reply)
            })
        }
        KOp::Mkdir {
            parent,
            name,
            mode,
            umask,
            reply,
        } => {
            let dir = node!(rt, parent, reply);
            start(rt, cred, op, |rt, cx| async move {
                let r = rt.fs.mkdir(&cx, &dir, &name, mode, umask).await;
                reply_entry(&rt, r, reply)
            })
        }
        KOp::Unlink {
            parent,
            name,
            reply,
        } => {
            let dir = node!(rt, parent, reply);
            start(rt, cred, op, |rt, cx| async move {
                reply_empty(rt.fs.unlink(&cx, &dir, &name).await, reply)
            })
        }
        KOp::Rmdir {
            parent,
            name,
            reply,
        } => {
            let dir = node!(rt, parent, reply);
            start(rt, cred, op, |rt, cx| async move {
                reply_empty(rt.fs.rmdir(&cx, &dir, &name).await, reply)
            })
        }
        KOp::Symlink {
            parent,
            name,
            target,
            reply,
        } => {
            let dir = node!(rt, parent, reply);
            start(rt, cred, op, |rt, cx| async move {
                let r = rt.fs.symlink(&cx, &dir, &name, &target).await;
                reply_entry(&rt, r, reply)
            })
        }
        KOp::Rename {
            parent,
            name,
            newparent,
            newname,
            flags,
            reply,
        } => {
            let dir = node!(rt, parent, reply);
            let newdir = node!(rt, newparent, reply);
            start(rt, cred, op, |rt, cx| async move {
                let r = rt
                    .fs
                    .rename(&cx, &dir, &name, &newdir, &newname, flags)
                    .await;
                reply_empty(r, reply)
            })
        }
        KOp::Link {
            ino,
            newparent,
            newname,
            reply,
        } => {
            let node = node!(rt, ino, reply);
            let newdir = node!(rt, newparent, reply);
            start(rt, cred, op, |rt, cx| async move {
                let r = rt.fs.link(&cx, &node, &newdir, &newname).await;
                reply_entry(&rt, r, reply)
            })
        }
        KOp::Open { ino, flags, reply } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                reply_open(rt.fs.open(&cx, &node, flags).await, reply)
            })
        }
        KOp::Create {
            parent,
            name,
            mode,
            umask,
            flags,
            reply,
        } => {
            let dir = node!(rt, parent, reply);
            start(rt, cred, op, |rt, cx| async move {
                match rt.fs.create(&cx, &dir, &name, mode, umask, flags).await {
                    Ok((e, o)) => {
                        let (node, attr, ttls) = enter(&rt, e);
                        let gen = Generation(node.generation());
                        reply.created(&ttls.entry, &attr, gen, FileHandle(o.fh), open_flags(&o));
                        None
                    }
                    Err(e) => {
                        reply.error(errno(e));
                        Some(e)
                    }
                }
            })
        }
        KOp::Read {
            ino,
            fh,
            offset,
            size,
            reply,
        } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                match rt.fs.read(&cx, &node, fh, offset, size).await {
                    Ok(data) if data.len() > size as usize => {
                        rt.errnotify(op, Errno::EIO, "read returned more bytes than asked");
                        reply.error(errno(Errno::EIO));
                        Some(Errno::EIO)
                    }
                    Ok(data) => {
                        reply.data(&data);
                        None
                    }
                    Err(e) => {
                        reply.error(errno(e));
                        Some(e)
                    }
                }
            })
        }
        KOp::Write {
            ino,
            fh,
            offset,
            data,
            flags,
            reply,
        } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                let r = rt.fs.write(&cx, &node, fh, offset, &data, flags).await;
                reply_written(r, data.len() as u64, reply, |m| {
                    rt.errnotify(op, Errno::EIO, m)
                })
            })
        }
        KOp::Flush {
            ino,
            fh,
            lock_owner,
            reply,
        } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                reply_empty(rt.fs.flush(&cx, &node, fh, lock_owner).await, reply)
            })
        }
        KOp::Release {
            ino,
            fh,
            flags,
            reply,
        } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                reply_empty(rt.fs.release(&cx, &node, fh, flags).await, reply)
            })
        }
        KOp::Fsync {
            ino,
            fh,
            datasync,
            reply,
        } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                reply_empty(rt.fs.fsync(&cx, &node, fh, datasync).await, reply)
            })
        }
        KOp::Opendir { ino, flags, reply } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                reply_open(rt.fs.opendir(&cx, &node, flags).await, reply)
            })
        }
        KOp::Readdir {
            ino,
            fh,
            offset,
            mut reply,
        } => {
            let dir = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                let mut buf = DirBuf::new(DIR_REPLY_SIZE);
                match rt.fs.readdir(&cx, &dir, fh, offset, &mut buf).await {
                    Ok(()) => {
                        for e in buf.into_entries() {
                            if reply.add(INodeNo(e.ino), e.offset, file_type(e.kind), &e.name) {
                                break;
                            }
                        }
                        reply.ok();
                        None
                    }
                    Err(e) => {
                        reply.error(errno(e));
                        Some(e)
                    }
                }
            })
        }
        KOp::Readdirplus {
            ino,
            fh,
            offset,
            mut reply,
        } => {
            let dir = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                let mut buf = DirPlusBuf::new(DIR_REPLY_SIZE);
                match rt.fs.readdirplus(&cx, &dir, fh, offset, &mut buf).await {
                    Ok(()) => {
                        for e in buf.into_entries() {
                            if add_plus(&rt, &dir, &mut reply, e) {
                                break;
                            }
                        }
                        reply.ok();
                        None
                    }
                    Err(e) => {
                        reply.error(errno(e));
                        Some(e)
                    }
                }
            })
        }
        KOp::Releasedir { ino, fh, reply } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                reply_empty(rt.fs.releasedir(&cx, &node, fh).await, reply)
            })
        }
        KOp::Fsyncdir {
            ino,
            fh,
            datasync,
            reply,
        } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                reply_empty(rt.fs.fsyncdir(&cx, &node, fh, datasync).await, reply)
            })
        }
        KOp::Setxattr {
            ino,
            name,
            value,
            flags,
            reply,
        } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                reply_empty(
                    rt.fs.setxattr(&cx, &node, &name, &value, flags).await,
                    reply,
                )
            })
        }
        KOp::Getxattr {
            ino,
            name,
            size,
            reply,
        } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                reply_xattr(rt.fs.getxattr(&cx, &node, &name).await, size, reply)
            })
        }
        KOp::Listxattr { ino, size, reply } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                reply_xattr(rt.fs.listxattr(&cx, &node).await, size, reply)
            })
        }
        KOp::Removexattr { ino, name, reply } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                reply_empty(rt.fs.removexattr(&cx, &node, &name).await, reply)
            })
        }
        KOp::Fallocate {
            ino,
            fh,
            offset,
            length,
            mode,
            reply,
        } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                reply_empty(
                    rt.fs.fallocate(&cx, &node, fh, offset, length, mode).await,
                    reply,
                )
            })
        }
        KOp::Lseek {
            ino,
            fh,
            offset,
            whence,
            reply,
        } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                let r = rt.fs.lseek(&cx, &node, fh, offset, whence).await;
                let failed = outcome(&r);
                match r {
                    Ok(off) => reply.offset(off),
                    Err(e) => reply.error(errno(e)),
                }
                failed
            })
        }
        KOp::CopyFileRange {
            ino_in,
            fh_in,
            off_in,
            ino_out,
            fh_out,
            off_out,
            len,
            reply,
        } => {
            let src = node!(rt, ino_in, reply);
            let dst = node!(rt, ino_out, reply);
            start(rt, cred, op, |rt, cx| async move {
                let r = rt
                    .fs
                    .copy_file_range(&cx, &src, fh_in, off_in, &dst, fh_out, off_out, len)
                    .await;
                reply_written(r, len, reply, |m| rt.errnotify(op, Errno::EIO, m))
            })
        }
        KOp::Getlk {
            ino,
            fh,
            lock,
            reply,
        } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                let r = rt.fs.getlk(&cx, &node, fh, lock).await;
                let failed = outcome(&r);
                match r {
                    Ok(Lock {
                        start,
                        end,
                        typ,
                        pid,
                        ..
                    }) => reply.locked(start, end, typ, pid),
                    Err(e) => reply.error(errno(e)),
                }
                failed
            })
        }
        KOp::Setlk {
            ino,
            fh,
            lock,
            sleep,
            reply,
        } => {
            let node = node!(rt, ino, reply);
            start(rt, cred, op, |rt, cx| async move {
                reply_empty(rt.fs.setlk(&cx, &node, fh, lock, sleep).await, reply)
            })
        }
    }
}

/// Adds one readdirplus entry to the reply; true when the reply is full. "." and ".."
/// are not lookups to the kernel, so they do not enter the node table.
fn add_plus<F: Ops>(
    rt: &Runtime<F>,
    dir: &Node<F>,
    reply: &mut fuser::ReplyDirectoryPlus,
    e: crate::dirbuf::DirPlusEntry<F>,
) -> bool {
    if e.name == "." || e.name == ".." {
        let ttls = rt.ttls(e.entry.entry_ttl, e.entry.attr_ttl);
        let known = rt.nodes.borrow().by_key(&e.entry.key).map(|n| n.ino());
        let attr = file_attr(&e.entry.attr, known.unwrap_or(dir.ino()));
        return reply.add(
            attr.ino,
            e.offset,
            &e.name,
            &ttls.entry,
            &attr,
            Generation(0),
        );
    }
    // The entry goes into the table before we know it fits; if it does not, the lookup
    // is given back, so lookup counts match what the kernel received.
    let (node, attr, ttls) = enter(rt, e.entry);
    let full = reply.add(
        INodeNo(node.ino()),
        e.offset,
        &e.name,
        &ttls.entry,
        &attr,
        Generation(node.generation()),
    );
    if full {
        // Not sent: give the lookup back.
        rt.forget(node.ino(), 1);
    }
    full
}
