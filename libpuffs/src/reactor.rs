//! What continuations wait on besides each other: timers and fd readiness. The
//! mainloop asks the reactor how long it may sleep, polls, and hands the events back;
//! the reactor wakes the continuations they belong to.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::event::{Event, Events, Interest, Poller, Token};

/// Tokens below this are the loop's own (the wakeup); fd waits get tokens above.
const FIRST_FD_TOKEN: usize = 16;

struct FdWait {
    fd: RawFd,
    waker: Option<Waker>,
    fired: bool,
}

pub(crate) struct Reactor {
    poller: RefCell<Poller>,
    timers: RefCell<BTreeMap<(Instant, u64), Waker>>,
    fd_waits: RefCell<HashMap<Token, FdWait>>,
    next_id: Cell<u64>,
}

impl Reactor {
    pub(crate) fn new(poller: Poller) -> Rc<Self> {
        Rc::new(Reactor {
            poller: RefCell::new(poller),
            timers: RefCell::new(BTreeMap::new()),
            fd_waits: RefCell::new(HashMap::new()),
            next_id: Cell::new(FIRST_FD_TOKEN as u64),
        })
    }

    fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
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
        self.poller.borrow_mut().poll(events, timeout)
    }

    /// Wakes the continuation waiting on the fd this event names.
    pub(crate) fn dispatch(&self, ev: &Event) {
        let mut waits = self.fd_waits.borrow_mut();
        if let Some(w) = waits.get_mut(&ev.token) {
            w.fired = true;
            // One-shot: stop watching until somebody waits again.
            let _ = self.poller.borrow_mut().deregister(w.fd);
            if let Some(waker) = w.waker.take() {
                waker.wake();
            }
        }
    }

    pub(crate) fn with_poller<T>(&self, f: impl FnOnce(&mut Poller) -> T) -> T {
        f(&mut self.poller.borrow_mut())
    }
}

/// Future of `Cx::sleep`: ready at its deadline.
pub struct Sleep {
    reactor: Rc<Reactor>,
    deadline: Instant,
    id: Option<u64>,
}

impl Sleep {
    pub(crate) fn new(reactor: Rc<Reactor>, deadline: Instant) -> Self {
        Sleep {
            reactor,
            deadline,
            id: None,
        }
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            if let Some(id) = self.id.take() {
                self.reactor
                    .timers
                    .borrow_mut()
                    .remove(&(self.deadline, id));
            }
            return Poll::Ready(());
        }
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = self.reactor.next_id();
                self.id = Some(id);
                id
            }
        };
        let key = (self.deadline, id);
        self.reactor
            .timers
            .borrow_mut()
            .insert(key, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.reactor
                .timers
                .borrow_mut()
                .remove(&(self.deadline, id));
        }
    }
}

/// Future of `Cx::readable` / `Cx::writable`: ready when the fd is.
pub struct FdReady {
    reactor: Rc<Reactor>,
    fd: RawFd,
    interest: Interest,
    token: Option<Token>,
}

impl FdReady {
    pub(crate) fn new(reactor: Rc<Reactor>, fd: RawFd, interest: Interest) -> Self {
        FdReady {
            reactor,
            fd,
            interest,
            token: None,
        }
    }
}

impl Future for FdReady {
    type Output = io::Result<()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let reactor = Rc::clone(&self.reactor);
        match self.token {
            None => {
                let token = Token(reactor.next_id() as usize);
                reactor.with_poller(|p| p.register(self.fd, token, self.interest))?;
                reactor.fd_waits.borrow_mut().insert(
                    token,
                    FdWait {
                        fd: self.fd,
                        waker: Some(cx.waker().clone()),
                        fired: false,
                    },
                );
                self.token = Some(token);
                Poll::Pending
            }
            Some(token) => {
                let mut waits = reactor.fd_waits.borrow_mut();
                match waits.get_mut(&token) {
                    Some(w) if w.fired => {
                        waits.remove(&token);
                        drop(waits);
                        self.token = None;
                        Poll::Ready(Ok(()))
                    }
                    Some(w) => {
                        w.waker = Some(cx.waker().clone());
                        Poll::Pending
                    }
                    None => Poll::Ready(Ok(())),
                }
            }
        }
    }
}

impl Drop for FdReady {
    fn drop(&mut self) {
        if let Some(token) = self.token {
            if let Some(w) = self.reactor.fd_waits.borrow_mut().remove(&token) {
                if !w.fired {
                    let _ = self.reactor.with_poller(|p| p.deregister(w.fd));
                }
            }
        }
    }
}
