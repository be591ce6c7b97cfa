//! What continuations wait on besides each other: timers and fd readiness. The
//! mainloop asks the reactor how long it may sleep, polls, and hands the events back;
//! the reactor wakes the continuations they belong to.
//!
//! The reactor owns the poller's token namespace (`source.rs`): the loop's fixed
//! sources (its wakeup, aio completions, signals) and, from there on, a slot of the fd
//! slab each: one fd registration (`registration.rs`), registered once with the poller
//! and deregistered when dropped.

mod fd_state;
mod registration;
mod source;
mod timers;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io;
use std::os::fd::BorrowedFd;
use std::rc::Rc;
use std::task::Waker;
use std::time::{Duration, Instant};

use slab::Slab;

use crate::event::{Event, Events, Interest, Poller};
use fd_state::FdState;

pub use registration::{Readiness, Registration};
pub(crate) use source::Source;
pub use timers::Sleep;

/// Counts of what the reactor asked of the kernel, for tests and measurements.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReactorStats {
    /// Sleeps in the poller (epoll_wait / kevent calls that may block).
    pub polls: u64,
    /// Registrations and deregistrations (epoll_ctl / kevent change calls).
    pub ctl_calls: u64,
    /// Events handed to fd registrations.
    pub fd_events: u64,
}

pub(crate) struct Reactor {
    poller: RefCell<Poller>,
    timers: RefCell<BTreeMap<(Instant, u64), Waker>>,
    next_timer: Cell<u64>,
    fds: RefCell<Slab<FdState>>,
    stats: Cell<ReactorStats>,
}

impl Reactor {
    pub(crate) fn new(poller: Poller) -> Rc<Self> {
        Rc::new(Reactor {
            poller: RefCell::new(poller),
            timers: RefCell::new(BTreeMap::new()),
            next_timer: Cell::new(0),
            fds: RefCell::new(Slab::new()),
            stats: Cell::new(ReactorStats::default()),
        })
    }

    fn count(&self, f: impl FnOnce(&mut ReactorStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    pub(crate) fn stats(&self) -> ReactorStats {
        self.stats.get()
    }

    /// The nearest timer deadline, if any.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.borrow().keys().next().map(|(t, _)| *t)
    }

    /// Wakes every timer due by now.
    pub(crate) fn fire_timers(&self, now: Instant) {
        let mut timers = self.timers.borrow_mut();
        while let Some(entry) = timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            entry.remove().wake();
        }
    }

    /// Sleeps in the poller until an event or the timeout.
    pub(crate) fn poll(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        self.count(|s| s.polls += 1);
        self.poller.borrow_mut().poll(events, timeout)
    }

    /// Hands an event of the fd registration in `slot` (`Source::Fd`) to it, which
    /// wakes the continuations waiting for what became ready. Events for a slot no
    /// registration holds are stale.
    pub(crate) fn fd_event(&self, slot: usize, ev: &Event) {
        if let Some(source) = self.fds.borrow_mut().get_mut(slot) {
            self.count(|s| s.fd_events += 1);
            source.on_event(ev);
        }
    }

    pub(crate) fn with_poller<T>(&self, f: impl FnOnce(&mut Poller) -> T) -> T {
        f(&mut self.poller.borrow_mut())
    }

    /// Registers `fd` with the poller for both directions, once; returns its slot.
    fn add_source(&self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        let mut fds = self.fds.borrow_mut();
        let entry = fds.vacant_entry();
        let slot = entry.key();
        self.count(|s| s.ctl_calls += 1);
        let token = Source::Fd(slot).token();
        self.poller
            .borrow_mut()
            .register(fd, token, Interest::BOTH)?;
        entry.insert(FdState::default());
        Ok(slot)
    }

    /// Deregisters `fd` and frees its slot.
    fn remove_source(&self, fd: BorrowedFd<'_>, slot: usize) {
        self.count(|s| s.ctl_calls += 1);
        if let Err(e) = self.poller.borrow_mut().deregister(fd) {
            log::warn!("cannot deregister fd: {e}");
        }
        self.fds.borrow_mut().try_remove(slot);
    }

    fn with_source<T>(&self, slot: usize, f: impl FnOnce(&mut FdState) -> T) -> T {
        f(&mut self.fds.borrow_mut()[slot])
    }

    fn next_timer_id(&self) -> u64 {
        let id = self.next_timer.get();
        self.next_timer.set(id + 1);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::pin::pin;
    use std::task::{Context, Poll};

    fn pair() -> (UnixStream, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (a, b)
    }

    /// One loop iteration's worth of reactor work: poll without sleeping, dispatch.
    fn turn(reactor: &Reactor) {
        let mut events = Events::with_capacity(16);
        reactor.poll(&mut events, Some(Duration::ZERO)).unwrap();
        for ev in events.iter() {
            if let Some(Source::Fd(slot)) = Source::of(ev.token) {
                reactor.fd_event(slot, ev);
            }
        }
    }

    #[test]
    fn into_inner_deregisters_so_the_fd_can_be_registered_again() {
        let reactor = Reactor::new(Poller::new().unwrap());
        let (a, mut b) = pair();
        let reg = Registration::new(Rc::clone(&reactor), a).unwrap();
        let a = reg.into_inner();
        assert_eq!(reactor.stats().ctl_calls, 2);
        assert!(reactor.fds.borrow().is_empty());
        b.write_all(b"x").unwrap();
        turn(&reactor);
        assert_eq!(reactor.stats().fd_events, 0, "no events once deregistered");
        // Registered anew (no EEXIST), in the freed slot.
        let reg = Registration::new(Rc::clone(&reactor), &a).unwrap();
        assert_eq!(reg.slot, 0);
    }

    #[test]
    fn a_dropped_waiter_leaves_its_side() {
        let reactor = Reactor::new(Poller::new().unwrap());
        let (a, _b) = pair();
        let reg = Registration::new(Rc::clone(&reactor), a).unwrap();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        {
            let mut first = pin!(reg.readable());
            let mut second = pin!(reg.readable());
            assert!(first.as_mut().poll(&mut cx).is_pending());
            assert!(second.as_mut().poll(&mut cx).is_pending());
            assert!(first.as_mut().poll(&mut cx).is_pending(), "polled again");
            assert_eq!(reg.waiting_readers(), 2, "one entry per waiter");
        }
        assert_eq!(reg.waiting_readers(), 0);
        // The first edge (writable) does not wake readers, and leaves them waiting.
        turn(&reactor);
        let mut r = pin!(reg.readable());
        assert!(r.as_mut().poll(&mut cx).is_pending());
        assert!(matches!(
            pin!(reg.writable()).as_mut().poll(&mut cx),
            Poll::Ready(Ok(()))
        ));
    }
}
