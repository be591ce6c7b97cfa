//! The Linux backend: epoll, edge-triggered, and an eventfd as the waker.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::{Event, Events, Interest, Token};

/// An epoll instance and the buffer its events land in (many per syscall).
pub struct Poller {
    epoll: Epoll,
    buf: Vec<EpollEvent>,
}

/// Edge-triggered flags for `interest`: an event per change, never one per wait.
fn flags(interest: Interest) -> EpollFlags {
    let mut f = EpollFlags::EPOLLET;
    if interest.readable {
        f |= EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
    }
    if interest.writable {
        f |= EpollFlags::EPOLLOUT;
    }
    f
}

fn event_of(ev: &EpollEvent) -> Event {
    let f = ev.events();
    let hup = f.contains(EpollFlags::EPOLLHUP);
    Event {
        token: Token(ev.data() as usize),
        readable: f.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLPRI),
        writable: f.contains(EpollFlags::EPOLLOUT),
        read_closed: hup || f.contains(EpollFlags::EPOLLRDHUP),
        write_closed: hup,
        error: f.contains(EpollFlags::EPOLLERR),
    }
}

impl Poller {
    /// A new epoll instance.
    pub fn new() -> io::Result<Poller> {
        Ok(Poller {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            buf: vec![EpollEvent::empty(); 256],
        })
    }

    /// Watches `fd` (edge-triggered) until `deregister`; its events carry `token`.
    pub fn register(
        &mut self,
        fd: BorrowedFd<'_>,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let ev = EpollEvent::new(flags(interest), token.0 as u64);
        Ok(self.epoll.add(fd, ev)?)
    }

    /// Changes what a registered `fd` is watched for.
    pub fn reregister(
        &mut self,
        fd: BorrowedFd<'_>,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let mut ev = EpollEvent::new(flags(interest), token.0 as u64);
        Ok(self.epoll.modify(fd, &mut ev)?)
    }

    /// Stops watching `fd`.
    pub fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        Ok(self.epoll.delete(fd)?)
    }

    /// Waits until an event or the timeout (None: forever); EINTR returns no events.
    pub fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.list.clear();
        let timeout = match timeout_ms(timeout) {
            None => EpollTimeout::NONE,
            Some(ms) => {
                EpollTimeout::try_from(ms.min(i32::MAX as u64) as i32).unwrap_or(EpollTimeout::NONE)
            }
        };
        let n = match self.epoll.wait(&mut self.buf, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        events.list.extend(self.buf[..n].iter().map(event_of));
        Ok(())
    }
}

/// Wakes a sleeping `Poller` from any thread. The eventfd is edge-triggered: every
/// write is a new edge, so it is never read and never needs resetting.
pub struct Waker {
    fd: EventFd,
}

impl Waker {
    /// An eventfd registered in `poller` under `token`.
    pub fn new(poller: &mut Poller, token: Token) -> io::Result<Waker> {
        let fd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        poller.register(fd.as_fd(), token, Interest::READABLE)?;
        Ok(Waker { fd })
    }

    /// Makes the poller's current or next `poll` return.
    pub fn wake(&self) -> io::Result<()> {
        match self.fd.write(1) {
            // The counter is full: the loop has a wake pending anyway.
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Nothing to undo: see the type's comment.
    pub fn reset(&self) {}
}

/// Converts a timeout to whole milliseconds, rounding up so a timer never fires early.
fn timeout_ms(timeout: Option<Duration>) -> Option<u64> {
    timeout.map(|d| d.as_nanos().div_ceil(1_000_000) as u64)
}
