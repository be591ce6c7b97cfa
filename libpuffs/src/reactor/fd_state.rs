//! The reactor's record of one registered fd: readiness bits kept until the user sees
//! `WouldBlock`, and a reader and a writer list of waiters.

use std::task::Waker;

use slab::Slab;

use crate::event::Event;

/// The side of an fd a waiter waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    Read,
    Write,
}

/// What a waiter finds when it looks at its side.
pub(super) enum State {
    Ready,
    HungUp,
    Failed,
    Waiting,
}

/// Readiness seen since the user last saw `WouldBlock` (closed and error are for good).
#[derive(Clone, Copy, Debug, Default)]
struct Ready {
    readable: bool,
    writable: bool,
    read_closed: bool,
    write_closed: bool,
    error: bool,
}

/// The reactor's record of one registered fd: its readiness and its waiters.
#[derive(Default)]
pub(crate) struct FdState {
    ready: Ready,
    pub(super) readers: Slab<Waker>,
    writers: Slab<Waker>,
}

impl FdState {
    /// Records what the event says and wakes every waiter of a side it concerns.
    pub(crate) fn on_event(&mut self, ev: &Event) {
        let r = &mut self.ready;
        r.readable |= ev.readable;
        r.writable |= ev.writable;
        r.read_closed |= ev.read_closed;
        r.write_closed |= ev.write_closed;
        r.error |= ev.error;
        if ev.readable || ev.read_closed || ev.error {
            self.readers.iter().for_each(|(_, w)| w.wake_by_ref());
        }
        if ev.writable || ev.write_closed || ev.error {
            self.writers.iter().for_each(|(_, w)| w.wake_by_ref());
        }
    }

    /// Errors first, then hang-ups: a waiter must not sleep on a side that is done.
    pub(super) fn state(&self, side: Side) -> State {
        let r = &self.ready;
        let (ready, closed) = match side {
            Side::Read => (r.readable, r.read_closed),
            Side::Write => (r.writable, r.write_closed),
        };
        if r.error {
            State::Failed
        } else if closed {
            State::HungUp
        } else if ready {
            State::Ready
        } else {
            State::Waiting
        }
    }

    pub(super) fn waiters(&mut self, side: Side) -> &mut Slab<Waker> {
        match side {
            Side::Read => &mut self.readers,
            Side::Write => &mut self.writers,
        }
    }

    pub(super) fn clear(&mut self, side: Side) {
        match side {
            Side::Read => self.ready.readable = false,
            Side::Write => self.ready.writable = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(f: impl FnOnce(&mut Event)) -> Event {
        let mut e = Event {
            token: crate::reactor::Source::Fd(0).token(),
            ..Event::default()
        };
        f(&mut e);
        e
    }

    #[test]
    fn readiness_stays_until_cleared_and_sides_are_separate() {
        let mut s = FdState::default();
        assert!(matches!(s.state(Side::Read), State::Waiting));
        s.on_event(&ev(|e| e.readable = true));
        assert!(matches!(s.state(Side::Read), State::Ready));
        assert!(matches!(s.state(Side::Read), State::Ready), "still set");
        assert!(matches!(s.state(Side::Write), State::Waiting));
        s.clear(Side::Read);
        assert!(matches!(s.state(Side::Read), State::Waiting));
    }

    #[test]
    fn errors_and_hang_ups_outrank_readiness_and_stay() {
        let mut s = FdState::default();
        s.on_event(&ev(|e| {
            e.readable = true;
            e.read_closed = true;
        }));
        assert!(matches!(s.state(Side::Read), State::HungUp));
        assert!(matches!(s.state(Side::Write), State::Waiting));
        s.clear(Side::Read);
        assert!(matches!(s.state(Side::Read), State::HungUp));
        s.on_event(&ev(|e| e.error = true));
        assert!(matches!(s.state(Side::Write), State::Failed));
    }
}
