//! Requests on names in a directory: lookup, unlink, rmdir, rename; and the ones that
//! make a node or a name for one: mknod, mkdir, symlink, link, create.

use std::rc::Rc;

use super::{answer, answer_empty, answer_entry, enter, node_of, start};
use crate::kernel::reply::{Replies, ReplyCreate};
use crate::kernel::request::{MakeOp, NameOp};
use crate::ops::{Cred, Op, Ops};
use crate::runtime::Runtime;

pub(super) fn dispatch<F: Ops, R: Replies>(rt: &Rc<Runtime<F>>, cred: Cred, op: NameOp<R>) {
    match op {
        NameOp::Lookup {
            parent: ino,
            name,
            reply,
        } if name == "." && F::OPMASK.contains(Op::LookupIno) => {
            // A file handle names a node the kernel has forgotten (export support);
            // it may or may not be in our table still: the fs finds it by number.
            start(rt, cred, Op::LookupIno, |rt, cx| async move {
                answer_entry(&rt, rt.fs.lookup_ino(&cx, ino).await, reply)
            })
        }
        NameOp::Lookup {
            parent,
            name,
            reply,
        } => {
            let dir = node_of!(rt, parent, reply);
            start(rt, cred, Op::Lookup, |rt, cx| async move {
                answer_entry(&rt, rt.fs.lookup(&cx, &dir, &name).await, reply)
            })
        }
        NameOp::Unlink {
            parent,
            name,
            reply,
        } => {
            let dir = node_of!(rt, parent, reply);
            start(rt, cred, Op::Unlink, |rt, cx| async move {
                answer_empty(rt.fs.unlink(&cx, &dir, &name).await, reply)
            })
        }
        NameOp::Rmdir {
            parent,
            name,
            reply,
        } => {
            let dir = node_of!(rt, parent, reply);
            start(rt, cred, Op::Rmdir, |rt, cx| async move {
                answer_empty(rt.fs.rmdir(&cx, &dir, &name).await, reply)
            })
        }
        NameOp::Rename {
            parent,
            name,
            newparent,
            newname,
            flags,
            reply,
        } => {
            let dir = node_of!(rt, parent, reply);
            let newdir = node_of!(rt, newparent, reply);
            start(rt, cred, Op::Rename, |rt, cx| async move {
                let r = rt
                    .fs
                    .rename(&cx, &dir, &name, &newdir, &newname, flags)
                    .await;
                answer_empty(r, reply)
            })
        }
    }
}

pub(super) fn dispatch_make<F: Ops, R: Replies>(rt: &Rc<Runtime<F>>, cred: Cred, op: MakeOp<R>) {
    match op {
        MakeOp::Mknod {
            parent,
            name,
            new,
            reply,
        } => {
            let dir = node_of!(rt, parent, reply);
            start(rt, cred, Op::Mknod, |rt, cx| async move {
                let r = rt.fs.mknod(&cx, &dir, &name, new).await;
                answer_entry(&rt, r, reply)
            })
        }
        MakeOp::Mkdir {
            parent,
            name,
            new,
            reply,
        } => {
            let dir = node_of!(rt, parent, reply);
            start(rt, cred, Op::Mkdir, |rt, cx| async move {
                answer_entry(&rt, rt.fs.mkdir(&cx, &dir, &name, new).await, reply)
            })
        }
        MakeOp::Symlink {
            parent,
            name,
            target,
            reply,
        } => {
            let dir = node_of!(rt, parent, reply);
            start(rt, cred, Op::Symlink, |rt, cx| async move {
                answer_entry(&rt, rt.fs.symlink(&cx, &dir, &name, &target).await, reply)
            })
        }
        MakeOp::Link {
            ino,
            newparent,
            newname,
            reply,
        } => {
            let node = node_of!(rt, ino, reply);
            let newdir = node_of!(rt, newparent, reply);
            start(rt, cred, Op::Link, |rt, cx| async move {
                answer_entry(&rt, rt.fs.link(&cx, &node, &newdir, &newname).await, reply)
            })
        }
        MakeOp::Create {
            parent,
            name,
            new,
            flags,
            reply,
        } => {
            let dir = node_of!(rt, parent, reply);
            start(rt, cred, Op::Create, |rt, cx| async move {
                let r = rt.fs.create(&cx, &dir, &name, new, flags).await;
                answer(r, reply, |(e, o), reply: R::Create| {
                    let (node, attr, ttls) = enter(&rt, e);
                    let o = o.keep(|f| rt.files.open_file(f));
                    reply.created(&attr, node.ino(), node.generation(), &ttls, &o);
                })
            })
        }
    }
}
