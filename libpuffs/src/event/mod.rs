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

/// The backend contract, the same on every OS (run here on epoll; `cargo test` on a BSD
/// runs it on kqueue).
#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    const T: Token = Token(42);

    fn poll_once(p: &mut Poller) -> Vec<Event> {
        let mut events = Events::with_capacity(8);
        p.poll(&mut events, Some(Duration::from_millis(200)))
            .expect("poll");
        events.iter().copied().collect()
    }

    fn merged(evs: &[Event]) -> Event {
        evs.iter()
            .filter(|e| e.token == T)
            .fold(Event::default(), |a, e| Event {
                token: e.token,
                readable: a.readable || e.readable,
                writable: a.writable || e.writable,
                read_closed: a.read_closed || e.read_closed,
                write_closed: a.write_closed || e.write_closed,
                error: a.error || e.error,
            })
    }

    #[test]
    fn an_edge_is_reported_once_then_again_on_new_data() {
        let mut p = Poller::new().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        p.register(a.as_fd(), T, Interest::READABLE).unwrap();
        assert!(poll_once(&mut p).is_empty(), "nothing to read yet");
        b.write_all(b"x").unwrap();
        assert!(merged(&poll_once(&mut p)).readable);
        // Edge-triggered: unread data is not reported again...
        assert!(poll_once(&mut p).is_empty());
        // ...new data is.
        b.write_all(b"y").unwrap();
        assert!(merged(&poll_once(&mut p)).readable);
        p.deregister(a.as_fd()).unwrap();
        b.write_all(b"z").unwrap();
        assert!(poll_once(&mut p).is_empty(), "deregistered");
    }

    #[test]
    fn a_hang_up_is_reported_as_closed() {
        let mut p = Poller::new().unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        p.register(a.as_fd(), T, Interest::BOTH).unwrap();
        let first = merged(&poll_once(&mut p));
        assert!(first.writable && !first.read_closed);
        drop(b);
        let ev = merged(&poll_once(&mut p));
        assert!(ev.read_closed, "{ev:?}");
    }

    #[test]
    fn the_waker_wakes_a_sleeping_poll() {
        let mut p = Poller::new().unwrap();
        let w = std::sync::Arc::new(Waker::new(&mut p, Token(0)).unwrap());
        let w2 = std::sync::Arc::clone(&w);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w2.wake().unwrap();
        });
        let mut events = Events::with_capacity(8);
        p.poll(&mut events, Some(Duration::from_secs(5))).unwrap();
        t.join().unwrap();
        assert!(events.iter().any(|e| e.token == Token(0)));
        w.reset();
    }
}
