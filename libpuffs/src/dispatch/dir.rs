//! Requests on an open directory: opendir, readdir, readdirplus, releasedir, fsyncdir.

use std::rc::Rc;

use super::{answer, answer_empty, dir_of, enter, node_of, plus_entry, start, take_last};
use crate::dirbuf::{DirBuf, DirPlusBuf, DirPlusEntry};
use crate::kernel::reply::{Replies, ReplyDir, ReplyDirPlus, ReplyEmpty, ReplyOpen};
use crate::kernel::request::DirOp;
use crate::node::Node;
use crate::ops::{Cred, Op, Ops};
use crate::runtime::Runtime;

/// How much a readdir reply may hold. fuser does not tell us the kernel's buffer size:
/// it is one page on older kernels and getdents' count (32 KiB from glibc) on newer
/// ones. Filling 32 KiB is right for both: fuser's `add` says when the real buffer is
/// full, and we stop at the first entry that does not fit.
const DIR_REPLY_SIZE: usize = 32 * 1024;

pub(super) fn dispatch<F: Ops, R: Replies>(rt: &Rc<Runtime<F>>, cred: Cred, op: DirOp<R>) {
    match op {
        DirOp::Opendir { ino, flags, reply } => {
            let node = node_of!(rt, ino, reply);
            start(rt, cred, Op::Opendir, |rt, cx| async move {
                answer(rt.fs.opendir(&cx, &node, flags).await, reply, |o, reply| {
                    reply.opened(&o.keep(|d| rt.files.open_dir(d)))
                })
            })
        }
        DirOp::Readdir {
            ino,
            fh,
            offset,
            reply,
        } => {
            let dir = node_of!(rt, ino, reply);
            let open = dir_of!(rt, fh, reply);
            start(rt, cred, Op::Readdir, |rt, cx| async move {
                let mut buf = DirBuf::new(DIR_REPLY_SIZE);
                let r = rt.fs.readdir(&cx, &dir, &open, offset, &mut buf).await;
                answer(r, reply, |(), mut reply| {
                    for e in buf.into_entries() {
                        if reply.add(&e) {
                            break;
                        }
                    }
                    reply.done();
                })
            })
        }
        DirOp::Readdirplus {
            ino,
            fh,
            offset,
            reply,
        } => {
            let dir = node_of!(rt, ino, reply);
            let open = dir_of!(rt, fh, reply);
            start(rt, cred, Op::Readdirplus, |rt, cx| async move {
                let mut buf = DirPlusBuf::new(DIR_REPLY_SIZE);
                let r = rt.fs.readdirplus(&cx, &dir, &open, offset, &mut buf).await;
                answer(r, reply, |(), mut reply| {
                    for e in buf.into_entries() {
                        if add_plus(&rt, &dir, &mut reply, e) {
                            break;
                        }
                    }
                    reply.done();
                })
            })
        }
        DirOp::Releasedir { ino, fh, reply } => {
            let node = node_of!(rt, ino, reply);
            let Some(open) = rt.files.close_dir(fh) else {
                return reply.ok(); // nothing of the fs's was open under fh
            };
            start(rt, cred, Op::Releasedir, |rt, cx| async move {
                let open = take_last(&cx, open).await;
                if !F::OPMASK.contains(Op::Releasedir) {
                    drop(open);
                    return answer_empty(Ok(()), reply);
                }
                answer_empty(rt.fs.releasedir(&cx, &node, open).await, reply)
            })
        }
        DirOp::Fsyncdir {
            ino,
            fh,
            datasync,
            reply,
        } => {
            let node = node_of!(rt, ino, reply);
            let open = dir_of!(rt, fh, reply);
            start(rt, cred, Op::Fsyncdir, |rt, cx| async move {
                answer_empty(rt.fs.fsyncdir(&cx, &node, &open, datasync).await, reply)
            })
        }
    }
}

/// Adds one readdirplus entry to the reply; true when the reply is full. "." and ".."
/// are not lookups to the kernel, so they do not enter the node table.
fn add_plus<F: Ops, R: ReplyDirPlus>(
    rt: &Runtime<F>,
    dir: &Node<F>,
    reply: &mut R,
    e: DirPlusEntry<F>,
) -> bool {
    if e.name == "." || e.name == ".." {
        let ttls = rt.ttls(e.entry.entry_ttl, e.entry.attr_ttl);
        let known = rt.nodes.borrow().by_key(&e.entry.key).map(|n| n.ino());
        let ino = known.unwrap_or(dir.ino());
        return reply.add(&e.name, e.offset, plus_entry(ino, 0, &e.entry.attr, ttls));
    }
    // The entry goes into the table before we know it fits; if it does not, the lookup
    // is given back, so lookup counts match what the kernel received.
    let (node, attr, ttls) = enter(rt, e.entry);
    let full = reply.add(
        &e.name,
        e.offset,
        plus_entry(node.ino(), node.generation(), &attr, ttls),
    );
    if full {
        rt.forget(node.ino(), 1);
    }
    full
}
