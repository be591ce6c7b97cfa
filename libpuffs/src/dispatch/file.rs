//! Requests on an open file: open, read, write, flush, release, fsync; and on a range
//! of it: fallocate, lseek, copy_file_range and locks.

use std::rc::Rc;

use super::{answer, answer_empty, file_of, node_of, start, take_last};
use crate::errno::Errno;
use crate::kernel::reply::{
    Replies, ReplyData, ReplyEmpty, ReplyLock, ReplyLseek, ReplyOpen, ReplyWrite,
};
use crate::kernel::request::{FileOp, RangeOp};
use crate::ops::{Cred, FileAt, Op, OpResult, Ops};
use crate::runtime::Runtime;

pub(super) fn dispatch<F: Ops, R: Replies>(rt: &Rc<Runtime<F>>, cred: Cred, op: FileOp<R>) {
    match op {
        FileOp::Open { ino, flags, reply } => {
            let node = node_of!(rt, ino, reply);
            start(rt, cred, Op::Open, |rt, cx| async move {
                answer(rt.fs.open(&cx, &node, flags).await, reply, |o, reply| {
                    reply.opened(&o.keep(|f| rt.files.open_file(f)))
                })
            })
        }
        FileOp::Read {
            ino,
            fh,
            offset,
            size,
            reply,
        } => {
            let node = node_of!(rt, ino, reply);
            let file = file_of!(rt, fh, reply);
            start(rt, cred, Op::Read, |rt, cx| async move {
                let r = rt.fs.read(&cx, &node, &file, offset, size).await;
                let r = at_most(
                    &rt,
                    Op::Read,
                    r,
                    |d| d.len() as u64,
                    size.into(),
                    "read returned more bytes than asked",
                );
                answer(r, reply, |d, reply| reply.data(d.as_bytes()))
            })
        }
        FileOp::Write {
            ino,
            fh,
            offset,
            data,
            flags,
            reply,
        } => {
            let node = node_of!(rt, ino, reply);
            let file = file_of!(rt, fh, reply);
            start(rt, cred, Op::Write, |rt, cx| async move {
                let given = data.len() as u64;
                let r = rt.fs.write(&cx, &node, &file, offset, data, flags).await;
                answer_written(&rt, Op::Write, r, given, reply)
            })
        }
        FileOp::Flush {
            ino,
            fh,
            lock_owner,
            reply,
        } => {
            let node = node_of!(rt, ino, reply);
            let file = file_of!(rt, fh, reply);
            start(rt, cred, Op::Flush, |rt, cx| async move {
                answer_empty(rt.fs.flush(&cx, &node, &file, lock_owner).await, reply)
            })
        }
        FileOp::Release { ino, fh, reply } => {
            let node = node_of!(rt, ino, reply);
            let Some(file) = rt.files.close_file(fh) else {
                return reply.ok(); // nothing of the fs's was open under fh
            };
            start(rt, cred, Op::Release, |rt, cx| async move {
                let file = take_last(&cx, file).await;
                if !F::OPMASK.contains(Op::Release) {
                    drop(file);
                    return answer_empty(Ok(()), reply);
                }
                answer_empty(rt.fs.release(&cx, &node, file).await, reply)
            })
        }
        FileOp::Fsync {
            ino,
            fh,
            datasync,
            reply,
        } => {
            let node = node_of!(rt, ino, reply);
            let file = file_of!(rt, fh, reply);
            start(rt, cred, Op::Fsync, |rt, cx| async move {
                answer_empty(rt.fs.fsync(&cx, &node, &file, datasync).await, reply)
            })
        }
    }
}

/// Requests on a range of an open file: fallocate, lseek, copy_file_range, locks.
pub(super) fn dispatch_range<F: Ops, R: Replies>(rt: &Rc<Runtime<F>>, cred: Cred, op: RangeOp<R>) {
    match op {
        RangeOp::Fallocate {
            ino,
            fh,
            offset,
            length,
            mode,
            reply,
        } => {
            let node = node_of!(rt, ino, reply);
            let file = file_of!(rt, fh, reply);
            start(rt, cred, Op::Fallocate, |rt, cx| async move {
                let r = rt
                    .fs
                    .fallocate(&cx, &node, &file, offset, length, mode)
                    .await;
                answer_empty(r, reply)
            })
        }
        RangeOp::Lseek {
            ino,
            fh,
            offset,
            whence,
            reply,
        } => {
            let node = node_of!(rt, ino, reply);
            let file = file_of!(rt, fh, reply);
            start(rt, cred, Op::Lseek, |rt, cx| async move {
                let r = rt.fs.lseek(&cx, &node, &file, offset, whence).await;
                answer(r, reply, |off, reply| reply.offset(off))
            })
        }
        RangeOp::CopyFileRange {
            ino_in,
            fh_in,
            off_in,
            ino_out,
            fh_out,
            off_out,
            len,
            reply,
        } => {
            let src = node_of!(rt, ino_in, reply);
            let dst = node_of!(rt, ino_out, reply);
            let src_file = file_of!(rt, fh_in, reply);
            let dst_file = file_of!(rt, fh_out, reply);
            start(rt, cred, Op::CopyFileRange, |rt, cx| async move {
                let from = FileAt {
                    node: &src,
                    file: &src_file,
                    offset: off_in,
                };
                let to = FileAt {
                    node: &dst,
                    file: &dst_file,
                    offset: off_out,
                };
                let r = rt.fs.copy_file_range(&cx, from, to, len).await;
                answer_written(&rt, Op::CopyFileRange, r, len, reply)
            })
        }
        RangeOp::Getlk {
            ino,
            fh,
            lock,
            reply,
        } => {
            let node = node_of!(rt, ino, reply);
            let file = file_of!(rt, fh, reply);
            start(rt, cred, Op::Getlk, |rt, cx| async move {
                answer(
                    rt.fs.getlk(&cx, &node, &file, lock).await,
                    reply,
                    |l, reply| reply.locked(&l),
                )
            })
        }
        RangeOp::Setlk {
            ino,
            fh,
            lock,
            sleep,
            reply,
        } => {
            let node = node_of!(rt, ino, reply);
            let file = file_of!(rt, fh, reply);
            start(rt, cred, Op::Setlk, |rt, cx| async move {
                answer_empty(rt.fs.setlk(&cx, &node, &file, lock, sleep).await, reply)
            })
        }
    }
}

/// An op that answers more bytes than it was asked for or given is a bug in the fs:
/// the caller gets EIO and the errnotify hook hears of it.
fn at_most<F: Ops, T>(
    rt: &Runtime<F>,
    op: Op,
    r: OpResult<T>,
    len: impl Fn(&T) -> u64,
    limit: u64,
    what: &str,
) -> OpResult<T> {
    match r {
        Ok(v) if len(&v) > limit => {
            rt.errnotify(op, Errno::EIO, what);
            Err(Errno::EIO)
        }
        r => r,
    }
}

fn answer_written<F: Ops, R: ReplyWrite>(
    rt: &Runtime<F>,
    op: Op,
    r: OpResult<u32>,
    given: u64,
    reply: R,
) -> Option<Errno> {
    let what = "reported more bytes written than it was given";
    let r = at_most(rt, op, r, |n| u64::from(*n), given, what);
    answer(r, reply, |n, reply| reply.written(n))
}
