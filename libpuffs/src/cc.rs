//! Continuations (puffs_cc): every request runs as a future in a slab on the mainloop
//! thread. A future that waits yields back to the loop; its waker puts it on the run
//! queue, from any thread, and pokes the loop awake if it sleeps.
//!
//! The executor is fair: each tick runs only the continuations that were ready when it
//! began, so one that keeps waking itself (a `yield_now` loop) cannot keep timers, I/O
//! and new requests from their turn.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use slab::Slab;

use crate::errno::Errno;
use crate::wakeup::Wakeup;

type Task = Pin<Box<dyn Future<Output = ()>>>;

/// The ids of continuations ready to run. Shared with wakers, which may fire on other
/// threads (AIO completion, a reader thread).
struct RunQueue {
    ids: Mutex<VecDeque<usize>>,
    /// How many ids are queued, readable without the lock (the loop's spin reads it).
    len: AtomicUsize,
    wakeup: Arc<Wakeup>,
}

impl RunQueue {
    fn push(&self, id: usize) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.push_back(id);
        self.len.store(ids.len(), Ordering::SeqCst);
        drop(ids);
        self.wakeup.wake();
    }

    /// Takes every id queued now; ids queued later wait for the next tick.
    fn take_all(&self, into: &mut VecDeque<usize>) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *ids, into);
        self.len.store(0, Ordering::SeqCst);
    }

    fn is_empty(&self) -> bool {
        self.len.load(Ordering::SeqCst) == 0
    }
}

struct TaskWaker {
    id: usize,
    queue: Arc<RunQueue>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.queue.push(self.id);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.queue.push(self.id);
    }
}

/// The continuation slab and its run queue.
pub(crate) struct Executor {
    /// A slot is None while its future is being polled (it is taken out so that the
    /// future may spawn others).
    tasks: RefCell<Slab<Option<Task>>>,
    queue: Arc<RunQueue>,
    /// The ids this tick runs (kept to reuse its allocation).
    tick: RefCell<VecDeque<usize>>,
    /// Kernel requests in flight (see `requests`).
    requests: Rc<Cell<usize>>,
}

/// One kernel request counted in flight, for as long as its continuation lives.
struct RequestSlot(Rc<Cell<usize>>);

impl RequestSlot {
    fn take(count: Rc<Cell<usize>>) -> Self {
        count.set(count.get() + 1);
        RequestSlot(count)
    }
}

impl Drop for RequestSlot {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl Executor {
    pub(crate) fn new(wakeup: Arc<Wakeup>) -> Self {
        Executor {
            tasks: RefCell::new(Slab::new()),
            queue: Arc::new(RunQueue {
                ids: Mutex::new(VecDeque::new()),
                len: AtomicUsize::new(0),
                wakeup,
            }),
            tick: RefCell::new(VecDeque::new()),
            requests: Rc::new(Cell::new(0)),
        }
    }

    /// Number of kernel requests in flight: what the in-flight cap counts. Other
    /// continuations (a framebuf channel's I/O, an op's spawned children) live as
    /// long as their owner decides and do not take a request's place.
    pub(crate) fn requests(&self) -> usize {
        self.requests.get()
    }

    /// Starts the continuation of a kernel request, counted in `requests` until it
    /// finishes or is dropped.
    pub(crate) fn spawn_request(&self, fut: impl Future<Output = ()> + 'static) {
        let counted = RequestSlot::take(Rc::clone(&self.requests));
        self.spawn(async move {
            let _counted = counted;
            fut.await
        });
    }

    /// Whether a continuation is ready to run (lock-free: an atomic count).
    pub(crate) fn has_ready(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Starts a continuation; it first runs at the next `run_ready`.
    pub(crate) fn spawn(&self, fut: impl Future<Output = ()> + 'static) {
        let id = self.tasks.borrow_mut().insert(Some(Box::pin(fut)));
        self.queue.push(id);
    }

    /// Runs the continuations that are ready now, once each. Those woken meanwhile
    /// (including one that yields) run at the next tick, after the loop has looked at
    /// timers, I/O and new requests. A continuation that panics is dropped (its reply,
    /// unsent, answers EIO) and the loop goes on.
    pub(crate) fn run_ready(&self) {
        let mut tick = self.tick.take();
        self.queue.take_all(&mut tick);
        for id in tick.drain(..) {
            self.poll_one(id);
        }
        *self.tick.borrow_mut() = tick;
    }

    /// Drops every continuation (the loop has ended): their unsent replies answer EIO,
    /// so no caller waits forever on a file system that stopped serving. Their `Cx`s hold the runtime,
    /// which holds this executor: without this the cycle keeps the whole mount, its fds
    /// and its I/O buffers alive after `mainloop` returns. Dropping a task may drop
    /// futures that spawn or wake others, so the slab is taken out first and the loop
    /// repeats until nothing is left.
    pub(crate) fn clear(&self) {
        loop {
            let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
            if tasks.is_empty() {
                break;
            }
            drop(tasks);
        }
        self.queue.take_all(&mut VecDeque::new());
    }

    fn poll_one(&self, id: usize) {
        // A stale wake for a finished (or reused) slot is harmless: futures tolerate
        // being polled spuriously.
        let Some(mut task) = self.tasks.borrow_mut().get_mut(id).and_then(Option::take) else {
            return;
        };
        let waker = Waker::from(Arc::new(TaskWaker {
            id,
            queue: Arc::clone(&self.queue),
        }));
        let mut cx = Context::from_waker(&waker);
        let done = match catch_unwind(AssertUnwindSafe(|| task.as_mut().poll(&mut cx))) {
            Ok(Poll::Ready(())) => true,
            Ok(Poll::Pending) => false,
            Err(_) => {
                log::error!("continuation {id} panicked; its request fails with EIO");
                true
            }
        };
        if done {
            self.tasks.borrow_mut().remove(id);
            // Dropped outside the borrow: its drop may wake or spawn others.
            drop(task);
        } else if let Some(slot) = self.tasks.borrow_mut().get_mut(id) {
            *slot = Some(task);
        }
    }
}

/// Runs `f`, code of the file system's called on the loop thread outside any
/// continuation (hooks, `reclaim`, the loop function); a panic in it is logged
/// instead of ending the mount.
pub(crate) fn guarded(what: &str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        log::error!("{what} panicked; the mount goes on");
    }
}

/// Why a continuation started with `Cx::spawn` gave no output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinError {
    /// It panicked.
    Panicked,
    /// It was dropped before it finished (the mainloop ended).
    Cancelled,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked => f.write_str("the spawned continuation panicked"),
            JoinError::Cancelled => f.write_str("the spawned continuation was dropped"),
        }
    }
}

impl std::error::Error for JoinError {}

/// A failed child fails its parent's request with EIO: `handle.await?` in an op.
impl From<JoinError> for Errno {
    fn from(_: JoinError) -> Errno {
        Errno::EIO
    }
}

/// Handle to a continuation started with `Cx::spawn`; await it for its output, or for
/// a `JoinError` when it panicked or was dropped. Dropping the handle detaches it.
pub struct JoinHandle<T> {
    state: Rc<RefCell<JoinState<T>>>,
}

struct JoinState<T> {
    output: Option<Result<T, JoinError>>,
    waiter: Option<Waker>,
}

impl<T> JoinState<T> {
    fn finish(&mut self, out: Result<T, JoinError>) {
        self.output = Some(out);
        if let Some(w) = self.waiter.take() {
            w.wake();
        }
    }
}

/// Owned by the child: reports its output, or `Cancelled` if it is dropped unfinished.
struct Completion<T> {
    state: Option<Rc<RefCell<JoinState<T>>>>,
}

impl<T> Completion<T> {
    fn send(mut self, out: Result<T, JoinError>) {
        if let Some(st) = self.state.take() {
            st.borrow_mut().finish(out);
        }
    }
}

impl<T> Drop for Completion<T> {
    fn drop(&mut self) {
        if let Some(st) = self.state.take() {
            st.borrow_mut().finish(Err(JoinError::Cancelled));
        }
    }
}

/// Polls a future, turning a panic into `Err(JoinError::Panicked)`.
struct CatchPanic<Fut>(Pin<Box<Fut>>);

impl<Fut: Future> Future for CatchPanic<Fut> {
    type Output = Result<Fut::Output, JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => {
                log::error!("a spawned continuation panicked; its parent sees JoinError");
                Poll::Ready(Err(JoinError::Panicked))
            }
        }
    }
}

impl<T: 'static> JoinHandle<T> {
    pub(crate) fn spawn(exec: &Executor, fut: impl Future<Output = T> + 'static) -> Self {
        let state = Rc::new(RefCell::new(JoinState {
            output: None,
            waiter: None,
        }));
        let done = Completion {
            state: Some(Rc::clone(&state)),
        };
        exec.spawn(async move {
            let done = done;
            let out = CatchPanic(Box::pin(fut)).await;
            done.send(out);
        });
        JoinHandle { state }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = self.state.borrow_mut();
        match st.output.take() {
            Some(out) => Poll::Ready(out),
            None => {
                st.waiter = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Yields once to the loop, letting other continuations run.
pub(crate) struct YieldNow(bool);

impl YieldNow {
    pub(crate) fn new() -> Self {
        YieldNow(false)
    }
}

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
