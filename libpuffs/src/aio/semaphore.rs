//! The cap on in-flight I/O: a counting semaphore whose `acquire` waits for a permit
//! (first come, first served) instead of failing. A permit belongs to the operation
//! until its completion is reaped, even when the future that started it was dropped,
//! so the cap bounds what the kernel (or the worker threads) holds, buffers included.
//! Permits are `Send`: the worker-thread backend returns them from its workers.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

struct State {
    free: usize,
    /// Waiting acquirers, oldest first: (ticket, waker).
    waiters: VecDeque<(u64, Waker)>,
    next_ticket: u64,
}

impl State {
    /// Wakes the oldest waiter if a permit is free for it.
    fn wake_front(&self) -> Option<Waker> {
        (self.free > 0)
            .then(|| self.waiters.front().map(|(_, w)| w.clone()))
            .flatten()
    }
}

#[derive(Clone)]
pub(crate) struct Semaphore {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Semaphore {
    pub(crate) fn new(permits: usize) -> Self {
        Semaphore {
            state: Arc::new(Mutex::new(State {
                free: permits,
                waiters: VecDeque::new(),
                next_ticket: 0,
            })),
        }
    }

    /// Waits for a permit.
    pub(crate) fn acquire(&self) -> Acquire {
        Acquire {
            state: Arc::clone(&self.state),
            ticket: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn free(&self) -> usize {
        lock(&self.state).free
    }
}

/// One slot of the cap; given back when dropped.
pub(crate) struct Permit {
    state: Arc<Mutex<State>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let waker = {
            let mut st = lock(&self.state);
            st.free += 1;
            st.wake_front()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Future of `Semaphore::acquire`.
pub(crate) struct Acquire {
    state: Arc<Mutex<State>>,
    /// Our place in the queue, once we have had to wait.
    ticket: Option<u64>,
}

impl Future for Acquire {
    type Output = Permit;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        let state = Arc::clone(&self.state);
        let mut st = lock(&state);
        let first = match self.ticket {
            None => st.waiters.is_empty(),
            Some(t) => st.waiters.front().is_some_and(|(f, _)| *f == t),
        };
        if first && st.free > 0 {
            st.free -= 1;
            if self.ticket.take().is_some() {
                st.waiters.pop_front();
            }
            let next = st.wake_front();
            drop(st);
            if let Some(w) = next {
                w.wake();
            }
            return Poll::Ready(Permit { state });
        }
        match self.ticket {
            Some(t) => {
                if let Some(entry) = st.waiters.iter_mut().find(|(f, _)| *f == t) {
                    entry.1 = cx.waker().clone();
                }
            }
            None => {
                let t = st.next_ticket;
                st.next_ticket += 1;
                st.waiters.push_back((t, cx.waker().clone()));
                self.ticket = Some(t);
            }
        }
        Poll::Pending
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let Some(t) = self.ticket else { return };
        let waker = {
            let mut st = lock(&self.state);
            st.waiters.retain(|(f, _)| *f != t);
            // We may have been woken to take a permit we now leave: pass the turn on.
            st.wake_front()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(f: &mut Acquire, w: &Waker) -> Poll<Permit> {
        Pin::new(f).poll(&mut Context::from_waker(w))
    }

    #[test]
    fn waits_in_order_and_never_fails() {
        let sem = Semaphore::new(1);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let w = Waker::from(Arc::clone(&count));
        let Poll::Ready(first) = poll(&mut sem.acquire(), &w) else {
            panic!("a free permit is taken at once");
        };
        let (mut a, mut b) = (sem.acquire(), sem.acquire());
        assert!(poll(&mut a, &w).is_pending());
        assert!(poll(&mut b, &w).is_pending());
        drop(first);
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "the oldest waiter is woken"
        );
        assert!(poll(&mut b, &w).is_pending(), "the younger waits its turn");
        let Poll::Ready(second) = poll(&mut a, &w) else {
            panic!("the oldest waiter gets the permit");
        };
        drop(second);
        assert!(poll(&mut b, &w).is_ready());
    }

    #[test]
    fn a_dropped_waiter_passes_its_turn_on() {
        let sem = Semaphore::new(1);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let w = Waker::from(Arc::clone(&count));
        let Poll::Ready(held) = poll(&mut sem.acquire(), &w) else {
            panic!("free permit");
        };
        let (mut a, mut b) = (sem.acquire(), sem.acquire());
        assert!(poll(&mut a, &w).is_pending());
        assert!(poll(&mut b, &w).is_pending());
        drop(held); // wakes a
        drop(a); // a leaves without taking it: b must hear about it
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert!(poll(&mut b, &w).is_ready());
        assert_eq!(sem.free(), 1, "the permit came back when b's was dropped");
    }
}
