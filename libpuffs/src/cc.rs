//! Continuations (puffs_cc): every request runs as a future in a slab on the mainloop
//! thread. A future that waits yields back to the loop; its waker puts it on the run
//! queue, from any thread, and pokes the loop awake if it sleeps.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use slab::Slab;

use crate::wakeup::Wakeup;

type Task = Pin<Box<dyn Future<Output = ()>>>;

/// The ids of continuations ready to run. Shared with wakers, which may fire on other
/// threads (AIO completion, a reader thread).
struct RunQueue {
    ids: Mutex<VecDeque<usize>>,
    wakeup: Arc<Wakeup>,
}

impl RunQueue {
    fn push(&self, id: usize) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(id);
        self.wakeup.wake();
    }

    fn pop(&self) -> Option<usize> {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }

    fn is_empty(&self) -> bool {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
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
}

impl Executor {
    pub(crate) fn new(wakeup: Arc<Wakeup>) -> Self {
        Executor {
            tasks: RefCell::new(Slab::new()),
            queue: Arc::new(RunQueue {
                ids: Mutex::new(VecDeque::new()),
                wakeup,
            }),
        }
    }

    /// Number of continuations not yet finished.
    pub(crate) fn len(&self) -> usize {
        self.tasks.borrow().len()
    }

    pub(crate) fn has_ready(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Starts a continuation; it first runs at the next `run_ready`.
    pub(crate) fn spawn(&self, fut: impl Future<Output = ()> + 'static) {
        let id = self.tasks.borrow_mut().insert(Some(Box::pin(fut)));
        self.queue.push(id);
    }

    /// Runs every ready continuation until none is ready. A continuation that panics is
    /// dropped (its reply, unsent, answers EIO) and the loop goes on.
    pub(crate) fn run_ready(&self) {
        while let Some(id) = self.queue.pop() {
            self.poll_one(id);
        }
    }

    /// Drops every continuation (the loop has ended). Their `Cx`s hold the runtime,
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
        while self.queue.pop().is_some() {}
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
        let mut tasks = self.tasks.borrow_mut();
        if done {
            tasks.remove(id);
        } else if let Some(slot) = tasks.get_mut(id) {
            *slot = Some(task);
        }
    }
}

/// Handle to a continuation started with `Cx::spawn`; await it for its output.
pub struct JoinHandle<T> {
    state: Rc<RefCell<JoinState<T>>>,
}

struct JoinState<T> {
    output: Option<T>,
    waiter: Option<Waker>,
}

impl<T: 'static> JoinHandle<T> {
    pub(crate) fn spawn(exec: &Executor, fut: impl Future<Output = T> + 'static) -> Self {
        let state = Rc::new(RefCell::new(JoinState {
            output: None,
            waiter: None,
        }));
        let theirs = Rc::clone(&state);
        exec.spawn(async move {
            let out = fut.await;
            let mut st = theirs.borrow_mut();
            st.output = Some(out);
            if let Some(w) = st.waiter.take() {
                w.wake();
            }
        });
        JoinHandle { state }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
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
