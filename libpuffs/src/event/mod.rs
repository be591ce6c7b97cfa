//! The poller the mainloop sleeps in: a small `Poller` / `Events` / `Token` / `Waker`
//! surface (after mio) over one backend file per OS: epoll on Linux, kqueue on the BSDs
//! and macOS. Every fd is registered once, edge-triggered: an event says "this changed",
//! and the reactor keeps the readiness until the user sees `WouldBlock`.

#[cfg(target_os = "linux")]
#[path = "epoll.rs"]
mod sys;

#[cfg(not(target_os = "linux"))]
#[path = "kqueue.rs"]
mod sys;

/// Names what an event belongs to (the request queue, aio completions, a registered fd).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub usize);

/// What readiness to watch an fd for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest {
    /// Data to read, or the read side hung up.
    pub readable: bool,
    /// Room to write, or the write side hung up.
    pub writable: bool,
}

impl Interest {
    /// Reading only.
    pub const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    /// Writing only.
    pub const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };
    /// Both directions: what a registration watches, so one syscall serves every waiter.
    pub const BOTH: Interest = Interest {
        readable: true,
        writable: true,
    };
}

/// One readiness event: what became true of the fd `token` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// Whom the event is for.
    pub token: Token,
    /// A read would not block.
    pub readable: bool,
    /// A write would not block.
    pub writable: bool,
    /// The peer will send nothing more (EPOLLRDHUP / EPOLLHUP, EV_EOF on the read filter).
    pub read_closed: bool,
    /// Nothing more can be written (EPOLLHUP, EV_EOF on the write filter).
    pub write_closed: bool,
    /// The fd has a pending error (EPOLLERR, EV_ERROR, a socket error with EV_EOF).
    pub error: bool,
}

impl Default for Token {
    fn default() -> Self {
        Token(usize::MAX)
    }
}

/// Events filled in by one `Poller::poll`.
#[derive(Debug, Default)]
pub struct Events {
    list: Vec<Event>,
}

impl Events {
    /// An empty list with room for `n` events.
    pub fn with_capacity(n: usize) -> Self {
        Events {
            list: Vec::with_capacity(n),
        }
    }
    /// The events of the last poll.
    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.list.iter()
    }
    /// Whether the last poll returned no events.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

pub use sys::{Poller, Waker};
