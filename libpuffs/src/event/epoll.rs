//! The Linux backend: epoll, and an eventfd as the waker.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::time::Duration;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::{Event, Events, Interest, Token};

pub struct Poller {
    epoll: Epoll,
    buf: Vec<EpollEvent>,
}

fn flags(interest: Interest) -> EpollFlags {
    let mut f = EpollFlags::empty();
    if interest.readable {
        f |= EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
    }
    if interest.writable {
        f |= EpollFlags::EPOLLOUT;
    }
    f
}

fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: the caller registered `fd` and keeps it open until it deregisters it;
    // the borrow lives only for the epoll_ctl call.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

impl Poller {
    pub fn new() -> io::Result<Poller> {
        Ok(Poller {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            buf: vec![EpollEvent::empty(); 256],
        })
    }

    pub fn register(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        let ev = EpollEvent::new(flags(interest), token.0 as u64);
        Ok(self.epoll.add(borrow(fd), ev)?)
    }

    pub fn reregister(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        let mut ev = EpollEvent::new(flags(interest), token.0 as u64);
        Ok(self.epoll.modify(borrow(fd), &mut ev)?)
    }

    pub fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        Ok(self.epoll.delete(borrow(fd))?)
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
        for ev in &self.buf[..n] {
            let f = ev.events();
            events.list.push(Event {
                token: Token(ev.data() as usize),
                readable: f.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLPRI),
                writable: f.contains(EpollFlags::EPOLLOUT),
                closed: f.intersects(
                    EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP | EpollFlags::EPOLLRDHUP,
                ),
            });
        }
        Ok(())
    }
}

/// Wakes a sleeping `Poller` from any thread. The eventfd is edge-triggered: every
/// write is a new edge, so it is never read and never needs resetting.
pub struct Waker {
    fd: EventFd,
}

impl Waker {
    pub fn new(poller: &mut Poller, token: Token) -> io::Result<Waker> {
        let fd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        let ev = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, token.0 as u64);
        poller.epoll.add(fd.as_fd(), ev)?;
        Ok(Waker { fd })
    }

    pub fn wake(&self) -> io::Result<()> {
        match self.fd.write(1) {
            // The counter is full: the loop has a wake pending anyway.
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn reset(&self) {}
}

/// Converts a timeout to whole milliseconds, rounding up so a timer never fires early.
fn timeout_ms(timeout: Option<Duration>) -> Option<u64> {
    timeout.map(|d| d.as_nanos().div_ceil(1_000_000) as u64)
}
