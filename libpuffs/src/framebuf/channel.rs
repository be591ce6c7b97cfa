//! Framed fd channels (puffs_framev): requests go out in order through one queue,
//! responses come back in any order and find their request by tag. One continuation
//! per channel does the I/O (`driver.rs`); this file is what senders see and the state
//! they share with it.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::socket::Shutdown;

use super::driver;
use super::framing::{Closed, Framing};
use super::Framebuf;
use crate::cx::Cx;
use crate::ops::Ops;
use crate::reactor::{Reactor, Registration, Sleep};

/// A completion callback of [`Channel::request_with`].
type Callback = Box<dyn FnOnce(Result<Framebuf, Errno>)>;

/// How a [`Channel`] behaves; `ChannelOptions::default()` then the setters.
#[derive(Clone, Debug)]
pub struct ChannelOptions {
    pub(super) timeout: Option<Duration>,
    pub(super) max_queued: usize,
    pub(super) read_buffer: usize,
    pub(super) write_buffer: usize,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            timeout: None,
            max_queued: 1 << 20,
            read_buffer: 64 << 10,
            write_buffer: 64 << 10,
        }
    }
}

impl ChannelOptions {
    /// A deadline for every [`Channel::request`]: past it the request fails with
    /// `ETIMEDOUT` (and a late response is dropped). Default: none.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Flow control: senders wait while this many bytes of frames are queued and not
    /// yet written (urgent frames and a frame into an empty queue always go in).
    /// Default 1 MiB.
    pub fn max_queued(mut self, bytes: usize) -> Self {
        self.max_queued = bytes.max(1);
        self
    }

    /// The size of the read buffer (one `read(2)` fills it). Default 64 KiB.
    pub fn read_buffer(mut self, bytes: usize) -> Self {
        self.read_buffer = bytes;
        self
    }

    /// The size of the write buffer that batches small frames into one `write(2)`;
    /// larger frames go out without a copy. Default 64 KiB.
    pub fn write_buffer(mut self, bytes: usize) -> Self {
        self.write_buffer = bytes;
        self
    }
}

/// Where a response goes.
pub(super) enum Pending {
    /// A continuation in `Channel::request`.
    Waiter(Rc<Slot>),
    /// A `Channel::request_with` callback.
    Callback(Callback),
    /// Its request timed out or was dropped: a late response is dropped.
    Abandoned,
}

/// What a request gets: its response, or the channel's error.
type Response = Result<Framebuf, Errno>;

/// A response (or the channel's failure) for one waiting continuation, and its waker.
#[derive(Default)]
pub(super) struct Slot {
    inner: RefCell<(Option<Response>, Option<Waker>)>,
}

impl Slot {
    pub(super) fn complete(&self, r: Result<Framebuf, Errno>) {
        let mut s = self.inner.borrow_mut();
        s.0 = Some(r);
        if let Some(w) = s.1.take() {
            w.wake();
        }
    }
}

/// What senders and the driver share.
#[derive(Default)]
pub(super) struct State {
    pub(super) queue: VecDeque<Framebuf>,
    pub(super) queued_bytes: usize,
    pub(super) pending: HashMap<u64, Pending>,
    /// Senders waiting for room in the queue.
    pub(super) room_waiters: Vec<Waker>,
    /// Continuations in `flush`.
    pub(super) flush_waiters: Vec<Waker>,
    /// The driver's waker, and whether it sleeps for want of frames to send.
    pub(super) driver: Option<Waker>,
    pub(super) writer_idle: bool,
    /// Whether the queue, the frame in hand and the write buffer are all empty.
    pub(super) flushed: bool,
    /// Set once the channel has ended: what every request gets from now on.
    pub(super) closed: Option<Errno>,
}

pub(super) struct Inner<C: Framing> {
    pub(super) reg: Registration<OwnedFd>,
    pub(super) framing: RefCell<C>,
    pub(super) state: RefCell<State>,
    pub(super) opts: ChannelOptions,
    /// For request deadlines.
    reactor: Rc<Reactor>,
}

impl<C: Framing> Inner<C> {
    /// Queues a frame, recording where its response goes.
    fn enqueue(
        &self,
        fb: Framebuf,
        response: Option<(u64, Pending)>,
        urgent: bool,
    ) -> Result<(), Errno> {
        let mut st = self.state.borrow_mut();
        if let Some(e) = st.closed {
            return Err(e);
        }
        if let Some((tag, to)) = response {
            if matches!(st.pending.get(&tag), Some(p) if !matches!(p, Pending::Abandoned)) {
                log::warn!("framebuf: tag {tag} is already in flight");
                return Err(Errno::EEXIST);
            }
            st.pending.insert(tag, to);
        }
        // The frame goes out from its start; its cursor then tracks the writing.
        let mut fb = fb;
        fb.seek(0).expect("0 is within every buffer");
        st.queued_bytes += fb.len();
        st.flushed = false;
        if urgent {
            st.queue.push_front(fb);
        } else {
            st.queue.push_back(fb);
        }
        if std::mem::take(&mut st.writer_idle) {
            if let Some(w) = &st.driver {
                w.wake_by_ref();
            }
        }
        Ok(())
    }

    /// Waits until a frame of `len` bytes may join the queue (flow control).
    async fn room(&self, len: usize) -> Result<(), Errno> {
        poll_fn(|cx| {
            let mut st = self.state.borrow_mut();
            if let Some(e) = st.closed {
                Poll::Ready(Err(e))
            } else if st.queued_bytes == 0 || st.queued_bytes + len <= self.opts.max_queued {
                Poll::Ready(Ok(()))
            } else {
                st.room_waiters.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    fn tag_of(&self, fb: &Framebuf) -> Result<u64, Errno> {
        self.framing.borrow().tag(fb).ok_or_else(|| {
            log::warn!("framebuf: a request without a tag cannot get a response");
            Errno::EINVAL
        })
    }

    /// Sends `fb` and waits for its response.
    async fn exchange(&self, fb: Framebuf, urgent: bool) -> Result<Framebuf, Errno> {
        let tag = self.tag_of(&fb)?;
        if !urgent {
            self.room(fb.len()).await?;
        }
        let slot = Rc::new(Slot::default());
        self.enqueue(fb, Some((tag, Pending::Waiter(Rc::clone(&slot)))), urgent)?;
        let mut guard = Abandon {
            inner: self,
            tag,
            slot,
            done: false,
        };
        let r = poll_fn(|cx| {
            let mut s = guard.slot.inner.borrow_mut();
            match s.0.take() {
                Some(r) => Poll::Ready(r),
                None => {
                    s.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        guard.done = true;
        r
    }

    /// Hands a received frame to its request, or to the framing if it has none.
    pub(super) fn deliver(&self, mut fb: Framebuf) {
        fb.seek(0).expect("0 is within every buffer");
        let tag = self.framing.borrow().tag(&fb);
        let to = tag.and_then(|t| self.state.borrow_mut().pending.remove(&t));
        match to {
            Some(Pending::Waiter(slot)) => slot.complete(Ok(fb)),
            Some(Pending::Callback(cb)) => cb(Ok(fb)),
            Some(Pending::Abandoned) => {
                log::debug!("framebuf: dropped a late response (tag {tag:?})")
            }
            None => self.framing.borrow_mut().unsolicited(fb),
        }
    }

    /// Ends the channel: every waiting request fails at once, with ENOTCONN if the
    /// peer went away and EIO for anything else; then the framing hears of it. Once.
    pub(super) fn fail(&self, why: Option<Closed>) {
        let errno = match &why {
            None => Errno::ENOTCONN,
            Some(c) => match c.error.kind() {
                io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::NotConnected => Errno::ENOTCONN,
                _ => Errno::EIO,
            },
        };
        let (pending, wakers) = {
            let mut st = self.state.borrow_mut();
            if st.closed.is_some() {
                return;
            }
            st.closed = Some(errno);
            st.queue.clear();
            st.queued_bytes = 0;
            let mut wakers = std::mem::take(&mut st.room_waiters);
            wakers.append(&mut st.flush_waiters);
            wakers.extend(st.driver.take());
            (std::mem::take(&mut st.pending), wakers)
        };
        for (_, p) in pending {
            match p {
                Pending::Waiter(slot) => slot.complete(Err(errno)),
                Pending::Callback(cb) => cb(Err(errno)),
                Pending::Abandoned => {}
            }
        }
        wakers.into_iter().for_each(Waker::wake);
        if let Some(why) = why {
            self.framing.borrow_mut().closed(&why);
        }
    }
}

/// Marks a request's tag abandoned if its future is dropped before the response came
/// (a deadline, or a cancelled caller), so the late response is dropped, not taken for
/// a frame nobody asked for.
struct Abandon<'a, C: Framing> {
    inner: &'a Inner<C>,
    tag: u64,
    slot: Rc<Slot>,
    done: bool,
}

impl<C: Framing> Drop for Abandon<'_, C> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut st = self.inner.state.borrow_mut();
        if let Some(p) = st.pending.get_mut(&self.tag) {
            if matches!(p, Pending::Waiter(s) if Rc::ptr_eq(s, &self.slot)) {
                *p = Pending::Abandoned;
            }
        }
    }
}

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
