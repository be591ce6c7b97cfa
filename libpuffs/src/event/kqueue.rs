//! The BSD and macOS backend: kqueue through nix::sys::event, the same surface as
//! epoll.rs. Filters are added edge-triggered (EV_CLEAR), changes go in one kevent call
//! per registration, events come back many per call, and the waker is an EVFILT_USER
//! event, so no pipe is needed.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::event::{EvFlags, EventFilter, FilterFlag, KEvent, Kqueue};
use nix::sys::time::TimeSpec;

use super::{Event, Events, Interest, Token};

/// A kqueue and the buffer its events land in (many per syscall).
pub struct Poller {
    kq: Arc<Kqueue>,
    buf: Vec<KEvent>,
}

fn change(ident: usize, filter: EventFilter, flags: EvFlags, token: Token) -> KEvent {
    KEvent::new(
        ident,
        filter,
        flags | EvFlags::EV_RECEIPT,
        FilterFlag::empty(),
        0,
        token.0 as isize,
    )
}

/// The filters `interest` names.
fn filters(interest: Interest) -> impl Iterator<Item = EventFilter> {
    [
        (interest.readable, EventFilter::EVFILT_READ),
        (interest.writable, EventFilter::EVFILT_WRITE),
    ]
    .into_iter()
    .filter_map(|(on, f)| on.then_some(f))
}

fn timespec(d: Duration) -> libc::timespec {
    *TimeSpec::from(d).as_ref()
}

fn event_of(ev: &KEvent) -> Event {
    let eof = ev.flags().contains(EvFlags::EV_EOF);
    // With EV_EOF, fflags holds the socket's error, if it has one.
    let error = ev.flags().contains(EvFlags::EV_ERROR) || (eof && ev.fflags().bits() != 0);
    let filter = ev.filter().ok();
    let is = |f: EventFilter| filter == Some(f);
    Event {
        token: Token(ev.udata() as usize),
        readable: is(EventFilter::EVFILT_READ) || is(EventFilter::EVFILT_USER),
        writable: is(EventFilter::EVFILT_WRITE),
        read_closed: eof && is(EventFilter::EVFILT_READ),
        write_closed: eof && is(EventFilter::EVFILT_WRITE),
        error,
    }
}

impl Poller {
    /// A new kqueue.
    pub fn new() -> io::Result<Poller> {
        let kq = Kqueue::new()?;
        fcntl(&kq, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
        let empty = change(0, EventFilter::EVFILT_READ, EvFlags::empty(), Token(0));
        Ok(Poller {
            kq: Arc::new(kq),
            buf: vec![empty; 256],
        })
    }

    /// The kqueue's fd: POSIX AIO posts its EVFILT_AIO completions to it (SIGEV_KEVENT).
    #[cfg(target_os = "freebsd")]
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsFd;
        self.kq.as_fd().as_raw_fd()
    }

    /// Submits `changes` in one call and returns the first error their receipts carry
    /// (an errno in `ignore` is no error).
    fn apply(&self, changes: &[KEvent], ignore: &[Errno]) -> io::Result<()> {
        let mut receipts = changes.to_vec();
        let n = match self
            .kq
            .kevent(changes, &mut receipts, Some(timespec(Duration::ZERO)))
        {
            Ok(n) => n,
            // "When kevent() fails with EINTR, all changes have been applied" (FreeBSD).
            Err(Errno::EINTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for r in &receipts[..n] {
            if r.flags().contains(EvFlags::EV_ERROR) && r.data() != 0 {
                let e = Errno::from_raw(r.data() as i32);
                if !ignore.contains(&e) {
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// Watches `fd` (edge-triggered) until `deregister`; its events carry `token`.
    pub fn register(
        &mut self,
        fd: BorrowedFd<'_>,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let ident = fd.as_raw_fd() as usize;
        let flags = EvFlags::EV_ADD | EvFlags::EV_CLEAR;
        let changes: Vec<KEvent> = filters(interest)
            .map(|f| change(ident, f, flags, token))
            .collect();
        // macOS answers EPIPE for a pipe whose other end is gone, yet reports its
        // events: the hang-up then arrives as an event like any other.
        self.apply(&changes, &[Errno::EPIPE])
    }

    /// Changes what a registered `fd` is watched for: adds the filters `interest` names
    /// and deletes the others.
    pub fn reregister(
        &mut self,
        fd: BorrowedFd<'_>,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let ident = fd.as_raw_fd() as usize;
        let add = EvFlags::EV_ADD | EvFlags::EV_CLEAR;
        let changes: Vec<KEvent> = filters(Interest::BOTH)
            .map(|f| {
                let wanted = filters(interest).any(|w| w == f);
                change(
                    ident,
                    f,
                    if wanted { add } else { EvFlags::EV_DELETE },
                    token,
                )
            })
            .collect();
        self.apply(&changes, &[Errno::ENOENT, Errno::EPIPE])
    }

    /// Stops watching `fd` (a filter that was never added is no error).
    pub fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let ident = fd.as_raw_fd() as usize;
        let changes: Vec<KEvent> = filters(Interest::BOTH)
            .map(|f| change(ident, f, EvFlags::EV_DELETE, Token(0)))
            .collect();
        self.apply(&changes, &[Errno::ENOENT])
    }

    /// Waits until an event or the timeout (None: forever); EINTR returns no events.
    pub fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.list.clear();
        let timeout = timeout.map(timespec);
        let n = match self.kq.kevent(&[], &mut self.buf, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        events.list.extend(self.buf[..n].iter().map(event_of));
        Ok(())
    }
}

/// Wakes a sleeping `Poller` from any thread: an EVFILT_USER event on its kqueue.
/// EV_CLEAR resets it when the poller reports it, so `reset` has nothing to do.
pub struct Waker {
    kq: Arc<Kqueue>,
    token: Token,
}

impl Waker {
    /// An EVFILT_USER event added to `poller` under `token`.
    pub fn new(poller: &mut Poller, token: Token) -> io::Result<Waker> {
        let add = EvFlags::EV_ADD | EvFlags::EV_CLEAR;
        poller.apply(
            &[change(token.0, EventFilter::EVFILT_USER, add, token)],
            &[],
        )?;
        Ok(Waker {
            kq: Arc::clone(&poller.kq),
            token,
        })
    }

    /// Makes the poller's current or next `poll` return.
    pub fn wake(&self) -> io::Result<()> {
        let trigger = KEvent::new(
            self.token.0,
            EventFilter::EVFILT_USER,
            EvFlags::EV_ADD | EvFlags::EV_RECEIPT,
            FilterFlag::NOTE_TRIGGER,
            0,
            self.token.0 as isize,
        );
        let mut receipt = [trigger];
        self.kq
            .kevent(&[trigger], &mut receipt, Some(timespec(Duration::ZERO)))?;
        Ok(())
    }

    /// Nothing to undo: see the type's comment.
    pub fn reset(&self) {}
}
