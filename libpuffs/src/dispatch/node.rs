//! Requests on a node, not through an open file: statfs, attributes, access,
//! readlink and the extended attributes.

use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

use super::{answer, answer_empty, node_of, start};
use crate::errno::Errno;
use crate::kernel::reply::{Replies, ReplyAttr, ReplyData, ReplyStatfs, ReplyXattr};
use crate::kernel::request::NodeOp;
use crate::node::Node;
use crate::ops::{Cred, Op, OpResult, Ops};
use crate::runtime::Runtime;

pub(super) fn dispatch<F: Ops, R: Replies>(rt: &Rc<Runtime<F>>, cred: Cred, op: NodeOp<R>) {
    match op {
        NodeOp::Statfs { reply } => start(rt, cred, Op::Statvfs, |rt, cx| async move {
            answer(rt.fs.statvfs(&cx).await, reply, |s, reply| reply.statfs(&s))
        }),
        NodeOp::Getattr { ino, fh, reply } => {
            let node = node_of!(rt, ino, reply);
            let file = fh.and_then(|fh| rt.files.file(fh));
            start(rt, cred, Op::Getattr, |rt, cx| async move {
                let r = rt.fs.getattr(&cx, &node, file.as_deref()).await;
                answer_attr(&rt, &node, r, reply)
            })
        }
        NodeOp::Setattr {
            ino,
            fh,
            set,
            reply,
        } => {
            let node = node_of!(rt, ino, reply);
            let file = fh.and_then(|fh| rt.files.file(fh));
            start(rt, cred, Op::Setattr, |rt, cx| async move {
                let r = rt.fs.setattr(&cx, &node, file.as_deref(), &set).await;
                answer_attr(&rt, &node, r, reply)
            })
        }
        NodeOp::Access { ino, mask, reply } => {
            let node = node_of!(rt, ino, reply);
            start(rt, cred, Op::Access, |rt, cx| async move {
                answer_empty(rt.fs.access(&cx, &node, mask).await, reply)
            })
        }
        NodeOp::Readlink { ino, reply } => {
            let node = node_of!(rt, ino, reply);
            start(rt, cred, Op::Readlink, |rt, cx| async move {
                answer(rt.fs.readlink(&cx, &node).await, reply, |t, reply| {
                    reply.data(t.as_os_str().as_bytes())
                })
            })
        }
        NodeOp::Setxattr {
            ino,
            name,
            value,
            flags,
            reply,
        } => {
            let node = node_of!(rt, ino, reply);
            start(rt, cred, Op::Setxattr, |rt, cx| async move {
                answer_empty(
                    rt.fs.setxattr(&cx, &node, &name, &value, flags).await,
                    reply,
                )
            })
        }
        NodeOp::Getxattr {
            ino,
            name,
            size,
            reply,
        } => {
            let node = node_of!(rt, ino, reply);
            start(rt, cred, Op::Getxattr, |rt, cx| async move {
                answer_xattr(rt.fs.getxattr(&cx, &node, &name).await, size, reply)
            })
        }
        NodeOp::Listxattr { ino, size, reply } => {
            let node = node_of!(rt, ino, reply);
            start(rt, cred, Op::Listxattr, |rt, cx| async move {
                answer_xattr(rt.fs.listxattr(&cx, &node).await, size, reply)
            })
        }
        NodeOp::Removexattr { ino, name, reply } => {
            let node = node_of!(rt, ino, reply);
            start(rt, cred, Op::Removexattr, |rt, cx| async move {
                answer_empty(rt.fs.removexattr(&cx, &node, &name).await, reply)
            })
        }
    }
}

fn answer_attr<F: Ops, R: ReplyAttr>(
    rt: &Runtime<F>,
    node: &Node<F>,
    r: OpResult<crate::attr::AttrReply>,
    reply: R,
) -> Option<Errno> {
    answer(r, reply, |a, reply| {
        reply.attr(&a.attr, node.ino(), rt.attr_ttl(a.ttl))
    })
}

/// getxattr / listxattr: a size probe (size 0) gets the length, a short buffer ERANGE.
fn answer_xattr<R: ReplyXattr>(r: OpResult<Vec<u8>>, size: u32, reply: R) -> Option<Errno> {
    let r = r.and_then(|v| match v.len() {
        n if size != 0 && n > size as usize => Err(Errno::ERANGE),
        _ => Ok(v),
    });
    answer(r, reply, |v, reply| match size {
        0 => reply.size(v.len() as u32),
        _ => reply.value(&v),
    })
}
