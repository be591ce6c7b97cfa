//! The BSD and macOS backend: kqueue (through the kqueue crate), and a pipe as the waker.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use kqueue::{EventData, EventFilter, FilterFlag, Ident, Watcher};
use nix::fcntl::OFlag;

use super::{Event, Events, Interest, Token};

pub struct Poller {
    watcher: Watcher,
    tokens: HashMap<RawFd, Token>,
}

impl Poller {
    pub fn new() -> io::Result<Poller> {
        Ok(Poller {
            watcher: Watcher::new()?,
            tokens: HashMap::new(),
        })
    }

    fn add(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        if interest.readable {
            self.watcher
                .add_fd(fd, EventFilter::EVFILT_READ, FilterFlag::empty())?;
        }
        if interest.writable {
            self.watcher
                .add_fd(fd, EventFilter::EVFILT_WRITE, FilterFlag::empty())?;
        }
        self.watcher.watch()
    }

    pub fn register(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        self.tokens.insert(fd, token);
        self.add(fd, interest)
    }

    pub fn reregister(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        self.deregister(fd)?;
        self.register(fd, token, interest)
    }

    pub fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        self.tokens.remove(&fd);
        // Either filter may be absent; removing an absent one is not an error here.
        let _ = self.watcher.remove_fd(fd, EventFilter::EVFILT_READ);
        let _ = self.watcher.remove_fd(fd, EventFilter::EVFILT_WRITE);
        self.watcher.watch()
    }

    /// Waits until an event or the timeout (None: forever).
    pub fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.list.clear();
        let mut next = self
            .watcher
            .poll(Some(timeout.unwrap_or(Duration::from_secs(3600))));
        while let Some(ev) = next {
            if let Ident::Fd(fd) = ev.ident {
                if let Some(&token) = self.tokens.get(&fd) {
                    events.list.push(Event {
                        token,
                        readable: matches!(ev.data, EventData::ReadReady(_)),
                        writable: matches!(ev.data, EventData::WriteReady(_)),
                        closed: ev.is_err(),
                    });
                }
            }
            next = self.watcher.poll(Some(Duration::ZERO));
        }
        Ok(())
    }
}

/// Wakes a sleeping `Poller` from any thread: a byte written to a pipe it watches.
pub struct Waker {
    read: OwnedFd,
    write: OwnedFd,
}

impl Waker {
    pub fn new(poller: &mut Poller, token: Token) -> io::Result<Waker> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        poller.register(read.as_raw_fd(), token, Interest::READABLE)?;
        Ok(Waker { read, write })
    }

    pub fn wake(&self) -> io::Result<()> {
        match nix::unistd::write(&self.write, &[1]) {
            // The pipe is full: the loop has a wake pending anyway.
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Drains the pipe so the next wake is a new event.
    pub fn reset(&self) {
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(&self.read, &mut buf), Ok(n) if n > 0) {}
    }
}
