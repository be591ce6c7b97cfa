//! The io_uring backend (Linux). Submissions go straight to the ring; the ring signals
//! completions on an eventfd the poller watches, and the loop reaps them here. Each
//! in-flight entry owns its buffer and fd until its completion is reaped.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use io_uring::{opcode, types, IoUring};
use nix::sys::eventfd::{EfdFlags, EventFd};
use slab::Slab;

use super::Kind;
use crate::event::{Interest, Poller, Token};

struct InFlight {
    /// Kept alive (not read) until the kernel is done with them.
    _fd: Arc<OwnedFd>,
    buf: Vec<u8>,
    result: Option<i32>,
    waker: Option<Waker>,
    /// The future was dropped: free the entry when the completion comes.
    abandoned: bool,
}

struct Ring {
    ring: IoUring,
    slots: Slab<InFlight>,
}

pub(crate) struct Uring {
    inner: Rc<RefCell<Ring>>,
    eventfd: EventFd,
}

impl Uring {
    pub(crate) fn new(poller: &mut Poller, token: Token, depth: u32) -> io::Result<Uring> {
        let ring = IoUring::new(depth.clamp(64, 4096).next_power_of_two())?;
        let eventfd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        ring.submitter()
            .register_eventfd(eventfd.as_fd().as_raw_fd())?;
        poller.register(eventfd.as_fd().as_raw_fd(), token, Interest::READABLE)?;
        Ok(Uring {
            inner: Rc::new(RefCell::new(Ring {
                ring,
                slots: Slab::new(),
            })),
            eventfd,
        })
    }

    pub(crate) fn submit(&self, kind: Kind, fd: Arc<OwnedFd>, offset: u64, mut buf: Vec<u8>) -> Op {
        let mut r = self.inner.borrow_mut();
        let raw = types::Fd(fd.as_raw_fd());
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let entry = r.slots.vacant_entry();
        let id = entry.key();
        let sqe = match kind {
            Kind::Read => opcode::Read::new(raw, buf.as_mut_ptr(), len)
                .offset(offset)
                .build(),
            Kind::Write => opcode::Write::new(raw, buf.as_ptr(), len)
                .offset(offset)
                .build(),
            Kind::Fsync { datasync } => {
                let flags = if datasync {
                    types::FsyncFlags::DATASYNC
                } else {
                    types::FsyncFlags::empty()
                };
                opcode::Fsync::new(raw).flags(flags).build()
            }
        }
        .user_data(id as u64);
        // The Vec's heap buffer does not move when the Vec is moved into the slab.
        entry.insert(InFlight {
            _fd: fd,
            buf,
            result: None,
            waker: None,
            abandoned: false,
        });
        if let Err(e) = push(&mut r.ring, &sqe) {
            r.slots.remove(id);
            return Op {
                ring: Rc::clone(&self.inner),
                id: None,
                error: Some(e),
            };
        }
        Op {
            ring: Rc::clone(&self.inner),
            id: Some(id),
            error: None,
        }
    }

    /// Whether the completion ring holds entries (reads its tail: no system call).
    pub(crate) fn has_completions(&self) -> bool {
        !self.inner.borrow_mut().ring.completion().is_empty()
    }

    /// Moves every completion into its entry and wakes the waiting op.
    pub(crate) fn reap(&self) {
        let _ = self.eventfd.read(); // level-triggered: clear it before looking
        let mut r = self.inner.borrow_mut();
        let Ring { ring, slots } = &mut *r;
        for cqe in ring.completion() {
            let id = cqe.user_data() as usize;
            let Some(slot) = slots.get_mut(id) else {
                continue;
            };
            if slot.abandoned {
                slots.remove(id);
                continue;
            }
            slot.result = Some(cqe.result());
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
    }
}

/// Queues one entry and submits it, flushing a full submission queue first.
fn push(ring: &mut IoUring, sqe: &io_uring::squeue::Entry) -> io::Result<()> {
    // SAFETY: the entry points at a buffer and fd owned by its slab slot, which stays
    // until the completion is reaped (a dropped future only marks it abandoned).
    if unsafe { ring.submission().push(sqe) }.is_err() {
        ring.submit()?;
        // SAFETY: as above.
        unsafe { ring.submission().push(sqe) }
            .map_err(|_| io::Error::other("io_uring queue full"))?;
    }
    ring.submit()?;
    Ok(())
}

/// An io_uring operation under way.
pub(crate) struct Op {
    ring: Rc<RefCell<Ring>>,
    id: Option<usize>,
    error: Option<io::Error>,
}

impl std::future::Future for Op {
    type Output = io::Result<(usize, Vec<u8>)>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(e) = self.error.take() {
            return Poll::Ready(Err(e));
        }
        let Some(id) = self.id else {
            return Poll::Ready(Err(io::Error::other("polled after completion")));
        };
        let ring = Rc::clone(&self.ring);
        let mut r = ring.borrow_mut();
        let slot = &mut r.slots[id];
        match slot.result {
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Some(res) => {
                let slot = r.slots.remove(id);
                self.id = None;
                Poll::Ready(if res < 0 {
                    Err(io::Error::from_raw_os_error(-res))
                } else {
                    Ok((res as usize, slot.buf))
                })
            }
        }
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            let mut r = self.ring.borrow_mut();
            match r.slots.get_mut(id) {
                Some(slot) if slot.result.is_some() => {
                    r.slots.remove(id);
                }
                Some(slot) => slot.abandoned = true,
                None => {}
            }
        }
    }
}
