//! The loop side of a request: resolve inode numbers to nodes, start a continuation
//! that runs the file system's op, and turn its result into the reply. It answers
//! through the reply traits of `kernel::reply`, never fuser's types, so the tests
//! below run it with recording replies and no /dev/fuse. One file per group of
//! requests; reading one arm top to bottom is the whole path of that request.

mod dir;
mod file;
mod name;
mod node;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::rc::Rc;

use crate::attr::Ttls;
use crate::cx::Cx;
use crate::errno::Errno;
use crate::kernel::reply::{PlusEntry, Replies, Reply, ReplyEmpty, ReplyEntry};
use crate::kernel::request::KOp;
use crate::node::Node;
use crate::ops::{Cred, EntryOf, Op, OpResult, Ops};
use crate::runtime::Runtime;

/// Runs one kernel request: everything from the frame to the reply.
pub(crate) fn dispatch<F: Ops, R: Replies>(rt: &Rc<Runtime<F>>, cred: Cred, kop: KOp<R>) {
    match kop {
        KOp::Name(op) => name::dispatch(rt, cred, op),
        KOp::Make(op) => name::dispatch_make(rt, cred, op),
        KOp::Node(op) => node::dispatch(rt, cred, op),
        KOp::File(op) => file::dispatch(rt, cred, op),
        KOp::Range(op) => file::dispatch_range(rt, cred, op),
        KOp::Dir(op) => dir::dispatch(rt, cred, op),
    }
}

/// Looks up a node the request names, or answers ESTALE for an inode number the
/// kernel should no longer use (and returns from the dispatching function).
macro_rules! node_of {
    ($rt:expr, $ino:expr, $reply:expr) => {
        match $rt.node($ino) {
            Some(n) => n,
            None => {
                $crate::kernel::reply::Reply::error($reply, $crate::errno::Errno::ESTALE);
                return;
            }
        }
    };
}
pub(crate) use node_of;

/// Looks up the open file (`file_of!`) or open directory (`dir_of!`) a handle names,
/// or answers EBADF for one the framework never gave out.
macro_rules! open_of {
    ($table:ident, $rt:expr, $fh:expr, $reply:expr) => {
        match $rt.files.$table($fh) {
            Some(f) => f,
            None => {
                $crate::kernel::reply::Reply::error($reply, $crate::errno::Errno::EBADF);
                return;
            }
        }
    };
}
pub(crate) use open_of;
macro_rules! file_of {
    ($rt:expr, $fh:expr, $reply:expr) => {
        $crate::dispatch::open_of!(file, $rt, $fh, $reply)
    };
}
pub(crate) use file_of;
macro_rules! dir_of {
    ($rt:expr, $fh:expr, $reply:expr) => {
        $crate::dispatch::open_of!(dir, $rt, $fh, $reply)
    };
}
pub(crate) use dir_of;

/// The object of a released file or directory, once no op holds it any more. The
/// kernel releases a file after the requests on it are answered, but their
/// continuations may not have dropped it yet; waiting a millisecond at a time is for
/// that rare case (and for an op still parked on the file, e.g. a lock wait the
/// caller gave up on, which keeps this release waiting as long as it stays parked).
async fn take_last<F: Ops, T>(cx: &Cx<F>, mut obj: Rc<T>) -> T {
    loop {
        match Rc::try_unwrap(obj) {
            Ok(v) => return v,
            Err(shared) => obj = shared,
        }
        cx.sleep(std::time::Duration::from_millis(1)).await;
    }
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
    rt.exec.spawn_request(async move {
        let failed = fut.await;
        rt2.post_op(op, &cred, failed);
    });
}

/// Sends an op's result: `ok` answers the value, an error goes to `reply.error`.
/// Returns the errno, for the post hook.
fn answer<T, R: Reply>(r: OpResult<T>, reply: R, ok: impl FnOnce(T, R)) -> Option<Errno> {
    match r {
        Ok(v) => {
            ok(v, reply);
            None
        }
        Err(e) => {
            reply.error(e);
            Some(e)
        }
    }
}

fn answer_empty<R: ReplyEmpty>(r: OpResult<()>, reply: R) -> Option<Errno> {
    answer(r, reply, |(), reply| reply.ok())
}

/// Enters the node an entry names into the node table (one more kernel lookup).
fn enter<F: Ops>(rt: &Runtime<F>, e: EntryOf<F>) -> (Rc<Node<F>>, crate::attr::Attr, Ttls) {
    let ttls = rt.ttls(e.entry_ttl, e.attr_ttl);
    let node = rt
        .nodes
        .borrow_mut()
        .enter(e.key, e.data, e.attr.ino, e.generation);
    (node, e.attr, ttls)
}

fn answer_entry<F: Ops, R: ReplyEntry>(
    rt: &Runtime<F>,
    r: OpResult<EntryOf<F>>,
    reply: R,
) -> Option<Errno> {
    answer(r, reply, |e, reply| {
        let (node, attr, ttls) = enter(rt, e);
        reply.entry(&attr, node.ino(), node.generation(), &ttls);
    })
}

/// The readdirplus entry for a node that enters the table (or is already there).
fn plus_entry<'a>(
    node_ino: u64,
    generation: u64,
    attr: &'a crate::attr::Attr,
    ttls: Ttls,
) -> PlusEntry<'a> {
    PlusEntry {
        ino: node_ino,
        generation,
        attr,
        ttls,
    }
}
