//! The poller the mainloop sleeps in: a small `Poller` / `Events` / `Token` / `Waker`
//! surface (after mio) over one backend file per OS: epoll on Linux, kqueue on the BSDs
//! and macOS.

#[cfg(target_os = "linux")]
#[path = "epoll.rs"]
mod sys;

#[cfg(not(target_os = "linux"))]
#[path = "kqueue.rs"]
mod sys;

/// Names what an event belongs to (the request queue, a timer, an fd being waited on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub usize);

/// What readiness to wait for on an fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest {
    pub readable: bool,
    pub writable: bool,
}

impl Interest {
    pub const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    pub const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };
}

/// One readiness event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub token: Token,
    pub readable: bool,
    pub writable: bool,
    /// Error or hang-up: whoever waits should look at the fd.
    pub closed: bool,
}

/// Events filled in by one `Poller::poll`.
#[derive(Debug, Default)]
pub struct Events {
    list: Vec<Event>,
}

impl Events {
    pub fn with_capacity(n: usize) -> Self {
        Events {
            list: Vec::with_capacity(n),
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.list.iter()
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

pub use sys::{Poller, Waker};
