//! Framed fd channels (puffs_framev): requests go out in order through one queue,
//! responses come back in any order and find their request by tag. One continuation
//! per channel does the I/O (`driver.rs`); this file is what senders see and the state
//! they share with it.

use std::cell::RefCell;
use std::future::poll_fn;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Instant;

use crate::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::socket::Shutdown;

use super::driver;
use super::framing::Framing;
use super::inner::{Inner, Pending, State};
use super::options::ChannelOptions;
use super::Framebuf;
use crate::cx::Cx;
use crate::ops::Ops;
use crate::reactor::Sleep;

/// A framed channel over a stream fd (a socket, a pipe pair made into one socketpair, a
/// child's stdio): NetBSD's puffs_framev, made of a queue of outgoing frames, a table of
/// requests waiting for their responses, and one continuation that reads and writes.
///
/// Requests are pipelined: [`request`](Self::request) from any number of continuations
/// at once; responses may come in any order and find their request by
/// [`Framing::tag`]. When the fd closes or fails, every waiting request fails at once
/// (`ENOTCONN` if the peer went away, `EIO` otherwise), later ones fail straight away,
/// and [`Framing::closed`] is told. Dropping the channel does the same (`ENOTCONN`)
/// and closes the fd.
///
/// Lives on the loop thread; share it with `Rc`. Its I/O continuation is one more
/// continuation in the executor.
pub struct Channel<C: Framing> {
    inner: Rc<Inner<C>>,
}

impl<C: Framing> Channel<C> {
    /// Opens a channel on `fd` with default options: makes it non-blocking, registers
    /// it with the loop and starts its I/O continuation.
    pub fn new<F: Ops>(cx: &Cx<F>, fd: impl Into<OwnedFd>, framing: C) -> io::Result<Self> {
        Self::with_options(cx, fd, framing, ChannelOptions::default())
    }

    /// Opens a channel on `fd` with `opts`.
    pub fn with_options<F: Ops>(
        cx: &Cx<F>,
        fd: impl Into<OwnedFd>,
        framing: C,
        opts: ChannelOptions,
    ) -> io::Result<Self> {
        let fd: OwnedFd = fd.into();
        set_nonblocking(&fd)?;
        let inner = Rc::new(Inner {
            reg: cx.register(fd)?,
            framing: RefCell::new(framing),
            state: RefCell::new(State {
                flushed: true,
                ..State::default()
            }),
            opts,
            reactor: Rc::clone(cx.reactor()),
        });
        drop(cx.spawn(driver::drive(Rc::clone(&inner))));
        Ok(Channel { inner })
    }

    /// Sends `fb` and waits for the response with the same tag (puffs_framev_enqueue_cc),
    /// from any continuation. Fails with the channel's error if it ends first, with
    /// `ETIMEDOUT` past the channel's deadline (for a deadline of your own, wrap it in
    /// [`Cx::timeout`](crate::Cx::timeout)), `EEXIST` if a request with its tag is
    /// already waiting and `EINVAL` if it has no tag. Waits first for room in the
    /// queue (flow control).
    pub async fn request(&self, fb: Framebuf) -> Result<Framebuf, Errno> {
        self.deadline(self.inner.exchange(fb, false)).await
    }

    /// Like [`request`](Self::request), but the frame goes before every queued frame
    /// not yet being written, and does not wait for room.
    pub async fn request_urgent(&self, fb: Framebuf) -> Result<Framebuf, Errno> {
        self.deadline(self.inner.exchange(fb, true)).await
    }

    /// Queues `fb` (after waiting for room) and returns; `done` gets its response, or
    /// the channel's error if it ends first (puffs_framev_enqueue_cb). It runs on the
    /// loop thread, from the channel's I/O continuation: it must not block. No
    /// deadline applies.
    pub async fn request_with(
        &self,
        fb: Framebuf,
        done: impl FnOnce(Result<Framebuf, Errno>) + 'static,
    ) -> Result<(), Errno> {
        let tag = self.inner.tag_of(&fb)?;
        self.inner.room(fb.len()).await?;
        self.inner
            .enqueue(fb, Some((tag, Pending::Callback(Box::new(done)))), false)
    }

    /// Queues `fb`, which expects no response (puffs_framev_enqueue_justsend), after
    /// waiting for room; returns once it is queued.
    pub async fn send(&self, fb: Framebuf) -> Result<(), Errno> {
        self.inner.room(fb.len()).await?;
        self.inner.enqueue(fb, None, false)
    }

    /// Queues `fb`, which expects no response, ahead of every frame not yet being
    /// written; never waits.
    pub fn send_urgent(&self, fb: Framebuf) -> Result<(), Errno> {
        self.inner.enqueue(fb, None, true)
    }

    /// Waits until every queued frame has been written to the fd.
    pub async fn flush(&self) -> Result<(), Errno> {
        poll_fn(|cx| {
            let mut st = self.inner.state.borrow_mut();
            if let Some(e) = st.closed {
                Poll::Ready(Err(e))
            } else if st.flushed {
                Poll::Ready(Ok(()))
            } else {
                st.flush_waiters.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// Ends the channel now: every waiting request fails with `ENOTCONN`, later ones
    /// too, queued frames are dropped and a socket is shut down (the peer sees end of
    /// file). The fd itself closes when the last `Rc` of the channel goes.
    pub fn close(&self) {
        self.inner.fail(None);
        let fd = self.inner.reg.get_ref();
        if let Err(e) = nix::sys::socket::shutdown(fd.as_raw_fd(), Shutdown::Both) {
            log::debug!("framebuf: shutdown on close: {e}");
        }
    }

    /// Bytes of frames queued and not yet being written.
    pub fn queued_bytes(&self) -> usize {
        self.inner.state.borrow().queued_bytes
    }

    /// Requests waiting for a response (abandoned ones included until theirs comes).
    pub fn in_flight(&self) -> usize {
        self.inner.state.borrow().pending.len()
    }

    /// The error requests get once the channel has ended, `None` while it runs.
    pub fn closed(&self) -> Option<Errno> {
        self.inner.state.borrow().closed
    }

    /// The framing, e.g. to read state its callbacks keep. Do not hold it across an
    /// `.await`.
    pub fn framing(&self) -> std::cell::RefMut<'_, C> {
        self.inner.framing.borrow_mut()
    }

    /// Runs `exchange` within the channel's deadline, if it has one.
    async fn deadline(
        &self,
        exchange: impl std::future::Future<Output = Result<Framebuf, Errno>>,
    ) -> Result<Framebuf, Errno> {
        let Some(d) = self.inner.opts.timeout else {
            return exchange.await;
        };
        let timer = Sleep::new(Rc::clone(&self.inner.reactor), Instant::now() + d);
        let (mut exchange, mut timer) = (pin!(exchange), pin!(timer));
        poll_fn(|cx| match exchange.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => timer.as_mut().poll(cx).map(|()| Err(Errno::ETIMEDOUT)),
        })
        .await
    }
}

impl<C: Framing> Drop for Channel<C> {
    fn drop(&mut self) {
        self.inner.fail(None);
    }
}

impl<C: Framing> std::fmt::Debug for Channel<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.inner.state.borrow();
        f.debug_struct("Channel")
            .field("fd", &self.inner.reg.get_ref().as_fd())
            .field("queued_bytes", &st.queued_bytes)
            .field("in_flight", &st.pending.len())
            .field("closed", &st.closed)
            .finish()
    }
}

/// Channels need O_NONBLOCK: a blocking read would stall the whole loop.
fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    if !flags.contains(OFlag::O_NONBLOCK) {
        fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    }
    Ok(())
}
