//! The state a channel's senders share with its I/O continuation (`driver.rs`): the
//! send queue, the requests waiting for their response, and how the channel ended.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::task::{Poll, Waker};

use crate::errno::Errno;

use super::framing::{Closed, Framing};
use super::options::ChannelOptions;
use super::Framebuf;
use crate::reactor::{Reactor, Registration};

/// A completion callback of [`Channel::request_with`](super::Channel::request_with)(super::Channel::request_with).
pub(super) type Callback = Box<dyn FnOnce(Result<Framebuf, Errno>)>;

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
    pub(super) reactor: Rc<Reactor>,
}

impl<C: Framing> Inner<C> {
    /// Queues a frame, recording where its response goes.
    pub(super) fn enqueue(
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
    pub(super) async fn room(&self, len: usize) -> Result<(), Errno> {
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

    pub(super) fn tag_of(&self, fb: &Framebuf) -> Result<u64, Errno> {
        self.framing.borrow().tag(fb).ok_or_else(|| {
            log::warn!("framebuf: a request without a tag cannot get a response");
            Errno::EINVAL
        })
    }

    /// Sends `fb` and waits for its response.
    pub(super) async fn exchange(&self, fb: Framebuf, urgent: bool) -> Result<Framebuf, Errno> {
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
