//! fd registrations, as mio does it: an fd is registered with the poller once,
//! edge-triggered, for both directions, and deregistered when its `Registration` is
//! dropped. Events only set readiness bits; a bit stays set until the user's I/O sees
//! `WouldBlock` (an edge never comes twice for the same readiness). Each side has its
//! own waiters, any number of them, so a reader and a writer, or several readers, can
//! wait on one fd at once. The registration owns (or borrows) the fd through `AsFd`, so
//! it can never outlive it, and a closed fd's reused number can never be confused with it.

use std::future::Future;
use std::io;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use nix::errno::Errno;

use super::fd_state::{Side, State};
use super::Reactor;

/// An fd registered with the mount's poller (from `Cx::register`). Wait with
/// [`readable`](Self::readable) / [`writable`](Self::writable), do the I/O through
/// [`try_read`](Self::try_read) / [`try_write`](Self::try_write) (which note a
/// `WouldBlock` so the next wait really waits), or let
/// [`read_with`](Self::read_with) / [`write_with`](Self::write_with) do both.
///
/// The fd must be non-blocking. Share the registration (e.g. in an `Rc`) to let several
/// continuations wait on it. Dropping it deregisters the fd; `T` closes it, if it owns it.
///
/// ```no_run
/// # use puffs::{Cx, Ops};
/// # use std::io::Read;
/// # use std::os::unix::net::UnixStream;
/// async fn receive<F: Ops>(cx: &Cx<F>, sock: UnixStream) -> std::io::Result<Vec<u8>> {
///     sock.set_nonblocking(true)?;
///     let reg = cx.register(sock)?;
///     let mut buf = vec![0; 4096];
///     let n = reg.read_with(|mut s| s.read(&mut buf)).await?;
///     buf.truncate(n);
///     Ok(buf)
/// }
/// ```
pub struct Registration<T: AsFd> {
    /// Always `Some` but inside `into_inner` and `drop`.
    io: Option<T>,
    reactor: Rc<Reactor>,
    pub(super) slot: usize,
}

impl<T: AsFd> Registration<T> {
    pub(crate) fn new(reactor: Rc<Reactor>, io: T) -> io::Result<Self> {
        let slot = reactor.add_source(io.as_fd())?;
        Ok(Registration {
            io: Some(io),
            reactor,
            slot,
        })
    }

    /// The registered fd (or the value that owns it).
    pub fn get_ref(&self) -> &T {
        self.io
            .as_ref()
            .expect("a registration holds its fd until into_inner")
    }

    /// Deregisters the fd and gives it back.
    pub fn into_inner(mut self) -> T {
        let io = self
            .io
            .take()
            .expect("a registration holds its fd until into_inner");
        self.reactor.remove_source(io.as_fd(), self.slot);
        io
    }

    /// Waits until a read would not block. It fails once the fd has an error (the
    /// socket's pending error, else EPIPE) or the peer hung up (ECONNRESET): data sent
    /// before a hang-up can still be read with `try_read` / `read_with`, which try the
    /// read before they wait.
    pub fn readable(&self) -> Readiness<'_, T> {
        Readiness::new(self, Side::Read)
    }

    /// Waits until a write would not block. It fails once the fd has an error (the
    /// socket's pending error, else EPIPE) or can take no more writes (EPIPE).
    pub fn writable(&self) -> Readiness<'_, T> {
        Readiness::new(self, Side::Write)
    }

    /// Runs a read `f` on the fd now; a `WouldBlock` from it clears the read readiness,
    /// so the next `readable()` waits for new data.
    pub fn try_read<R>(&self, f: impl FnOnce(&T) -> io::Result<R>) -> io::Result<R> {
        self.try_io(Side::Read, f)
    }

    /// Runs a write `f` on the fd now; a `WouldBlock` from it clears the write
    /// readiness, so the next `writable()` waits for room.
    pub fn try_write<R>(&self, f: impl FnOnce(&T) -> io::Result<R>) -> io::Result<R> {
        self.try_io(Side::Write, f)
    }

    /// Reads with `f`, waiting for readiness whenever it answers `WouldBlock`.
    pub async fn read_with<R>(&self, mut f: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        loop {
            match self.try_read(&mut f) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable().await?,
                r => return r,
            }
        }
    }

    /// Writes with `f`, waiting for readiness whenever it answers `WouldBlock`.
    pub async fn write_with<R>(&self, mut f: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        loop {
            match self.try_write(&mut f) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable().await?,
                r => return r,
            }
        }
    }

    #[cfg(test)]
    pub(super) fn waiting_readers(&self) -> usize {
        self.reactor.with_source(self.slot, |s| s.readers.len())
    }

    fn try_io<R>(&self, side: Side, f: impl FnOnce(&T) -> io::Result<R>) -> io::Result<R> {
        let r = f(self.get_ref());
        if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            self.reactor.with_source(self.slot, |s| s.clear(side));
        }
        r
    }

    /// The fd's pending error: a socket's SO_ERROR, else EPIPE (a pipe whose reader
    /// has gone, or a socket whose error an earlier call took).
    fn pending_error(&self) -> io::Error {
        use nix::sys::socket::{getsockopt, sockopt::SocketError};
        match getsockopt(&self.get_ref().as_fd(), SocketError) {
            Ok(e) if e != 0 => io::Error::from_raw_os_error(e),
            _ => Errno::EPIPE.into(),
        }
    }

    fn outcome(&self, state: State, side: Side) -> io::Result<()> {
        match (state, side) {
            (State::Failed, _) => Err(self.pending_error()),
            (State::HungUp, Side::Read) => Err(Errno::ECONNRESET.into()),
            (State::HungUp, Side::Write) => Err(Errno::EPIPE.into()),
            _ => Ok(()),
        }
    }
}

impl<T: AsFd> Drop for Registration<T> {
    fn drop(&mut self) {
        if let Some(io) = self.io.take() {
            self.reactor.remove_source(io.as_fd(), self.slot);
        }
    }
}

impl<T: AsFd + std::fmt::Debug> std::fmt::Debug for Registration<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("io", &self.io)
            .field("slot", &self.slot)
            .finish()
    }
}

/// Future of [`Registration::readable`] / [`Registration::writable`].
pub struct Readiness<'a, T: AsFd> {
    reg: &'a Registration<T>,
    side: Side,
    /// This waiter's key in its side's waiter slab, once it has waited.
    waiter: Option<usize>,
}

impl<'a, T: AsFd> Readiness<'a, T> {
    fn new(reg: &'a Registration<T>, side: Side) -> Self {
        Readiness {
            reg,
            side,
            waiter: None,
        }
    }

    /// Puts (or refreshes) this waiter's waker in its side's slab.
    fn wait(&mut self, waker: &Waker) {
        let (side, key) = (self.side, self.waiter);
        let key = self.reg.reactor.with_source(self.reg.slot, |s| {
            let waiters = s.waiters(side);
            match key.and_then(|k| waiters.get_mut(k).map(|w| (k, w))) {
                Some((k, w)) => {
                    if !w.will_wake(waker) {
                        *w = waker.clone();
                    }
                    k
                }
                None => waiters.insert(waker.clone()),
            }
        });
        self.waiter = Some(key);
    }

    fn stop_waiting(&mut self) {
        if let Some(k) = self.waiter.take() {
            let side = self.side;
            self.reg.reactor.with_source(self.reg.slot, |s| {
                s.waiters(side).try_remove(k);
            });
        }
    }
}

impl<T: AsFd> Future for Readiness<'_, T> {
    type Output = io::Result<()>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let side = this.side;
        match this
            .reg
            .reactor
            .with_source(this.reg.slot, |s| s.state(side))
        {
            State::Waiting => {
                this.wait(cx.waker());
                Poll::Pending
            }
            state => {
                this.stop_waiting();
                Poll::Ready(this.reg.outcome(state, side))
            }
        }
    }
}

impl<T: AsFd> Drop for Readiness<'_, T> {
    fn drop(&mut self) {
        self.stop_waiting();
    }
}
