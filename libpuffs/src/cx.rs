//! The call context every op receives (puffs_cc plus puffs_cred): who is calling, and
//! a handle on the running mount: its node table, timers, fd readiness, spawning
//! other continuations, and exit.

use std::future::Future;
use std::io;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::errno::Errno;

use crate::cc::{JoinHandle, YieldNow};
use crate::node::{Node, NodeTable};
use crate::ops::{Cred, Ops};
use crate::reactor::{Reactor, ReactorStats, Registration, Sleep};
use crate::runtime::{Runtime, State};

/// The call context of one op (puffs_cc with puffs_cred): who called, and the
/// running mount's services (node table, timers, fd readiness, async I/O, spawning,
/// notifications, exit). Each request gets its own; it lives on the loop thread.
pub struct Cx<F: Ops> {
    cred: Cred,
    rt: Rc<Runtime<F>>,
}

impl<F: Ops> Cx<F> {
    pub(crate) fn new(cred: Cred, rt: Rc<Runtime<F>>) -> Self {
        Cx { cred, rt }
    }

    /// The caller's credentials.
    pub fn cred(&self) -> &Cred {
        &self.cred
    }

    /// The node the kernel knows as `ino`.
    pub fn node(&self, ino: u64) -> Option<Rc<Node<F>>> {
        self.rt.node(ino)
    }

    /// The live node with the file system's key `key`, if the kernel knows one.
    pub fn node_by_key(&self, key: &F::Key) -> Option<Rc<Node<F>>> {
        self.rt.nodes.borrow().by_key(key).cloned()
    }

    /// Runs `f` on the whole node table, for walking it. The table is lent only for
    /// the call, so no borrow of it can be held across an `.await` (where the loop
    /// may need to change it, to forget a node).
    pub fn with_nodes<T>(&self, f: impl FnOnce(&NodeTable<F>) -> T) -> T {
        f(&self.rt.nodes.borrow())
    }

    /// The mount's state (running, or unmounting during the last ops).
    pub fn state(&self) -> State {
        self.rt.state.get()
    }

    /// The mount's type name and source ("mntfromname").
    pub fn names(&self) -> (&str, &str) {
        (&self.rt.typename, &self.rt.source)
    }

    /// Sleeps without blocking the loop: other requests go on meanwhile.
    pub fn sleep(&self, d: Duration) -> Sleep {
        Sleep::new(Rc::clone(&self.rt.reactor), Instant::now() + d)
    }

    /// Runs `fut` with a deadline: its output, or `Err(ETIMEDOUT)` once `d` has passed
    /// (then `fut` is dropped, which cancels it). Other requests go on meanwhile.
    pub async fn timeout<T>(&self, d: Duration, fut: impl Future<Output = T>) -> Result<T, Errno> {
        let (mut fut, mut timer) = (std::pin::pin!(fut), std::pin::pin!(self.sleep(d)));
        std::future::poll_fn(|c| match fut.as_mut().poll(c) {
            std::task::Poll::Ready(v) => std::task::Poll::Ready(Ok(v)),
            std::task::Poll::Pending => timer.as_mut().poll(c).map(|()| Err(Errno::ETIMEDOUT)),
        })
        .await
    }

    /// Registers a non-blocking fd (a socket, a pipe, a framebuf channel; owned, or
    /// borrowed as `&fd`) with the loop's poller, once, to wait on its readiness from
    /// any number of continuations; dropping the registration deregisters it.
    pub fn register<T: AsFd>(&self, io: T) -> io::Result<Registration<T>> {
        Registration::new(Rc::clone(&self.rt.reactor), io)
    }

    /// The loop's reactor, for framework parts that make timers after the op that
    /// created them has returned (a framebuf channel's request deadlines).
    pub(crate) fn reactor(&self) -> &Rc<Reactor> {
        &self.rt.reactor
    }

    /// What the reactor has asked of the kernel so far (for tests and measurements).
    #[doc(hidden)]
    pub fn reactor_stats(&self) -> ReactorStats {
        self.rt.reactor.stats()
    }

    /// Kernel notifications (invalidate a node's attributes, data or a name; announce
    /// a deletion; store data in the page cache). Safe inside an op: they are queued
    /// and written by another thread, so the loop never waits for the kernel.
    pub fn notifier(&self) -> &crate::notify::Notifier {
        &self.rt.notifier
    }

    /// The forget frames the loop has taken (for tests and measurements).
    #[doc(hidden)]
    pub fn forget_stats(&self) -> crate::runtime::ForgetStats {
        self.rt.forgets.get()
    }

    /// Async file I/O (io_uring, or worker threads where it is missing): reads,
    /// writes and fsyncs that let other requests run while they wait.
    pub fn aio(&self) -> &crate::aio::Aio {
        self.rt.aio()
    }

    /// Runs `fut` as a continuation of its own; await the handle for its output.
    pub fn spawn<T: 'static>(&self, fut: impl Future<Output = T> + 'static) -> JoinHandle<T> {
        JoinHandle::spawn(&self.rt.exec, fut)
    }

    /// Lets other continuations run before this one goes on.
    pub fn yield_now(&self) -> impl Future<Output = ()> {
        YieldNow::new()
    }

    /// Asks the mainloop to unmount and return (puffs_exit).
    pub fn exit(&self) {
        self.rt.request_exit();
    }

    /// The file system value itself.
    pub fn fs(&self) -> &F {
        &self.rt.fs
    }
}
