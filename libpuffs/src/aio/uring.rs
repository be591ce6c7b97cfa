//! The io_uring backend (Linux). Ops queue their entries in the submission ring; the
//! mainloop submits them all with one `io_uring_enter` per iteration (`flush`), just
//! before it sleeps. The ring signals completions on an eventfd the poller watches, and
//! the loop reaps them here. Each in-flight entry owns its buffer, fd and permit until
//! its completion is reaped; the ring is torn down only after every entry is reaped.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types, IoUring, Probe};
use nix::sys::eventfd::{EfdFlags, EventFd};
use slab::Slab;

use super::kind::Kind;
use super::meta::MetaCall;
use super::semaphore::Permit;
use crate::event::{Interest, Poller, Token};

/// user_data of the cancel requests sent at teardown (slab keys never reach it).
const CANCEL: u64 = u64::MAX;
/// How long teardown waits for cancelled ops before it gives up on them.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

struct InFlight {
    /// Kept alive (not read) until the kernel is done with them.
    _fd: Arc<OwnedFd>,
    _permit: Permit,
    buf: Vec<u8>,
    /// A metadata call's names and open_how, which the kernel reads at submission.
    meta: Option<Box<Meta>>,
    result: Option<i32>,
    waker: Option<Waker>,
    /// The future was dropped: free the entry when the completion comes.
    abandoned: bool,
}

struct Meta {
    call: MetaCall,
    how: types::OpenHow,
}

impl InFlight {
    /// Closes the fd a finished openat2 made, when nobody will take it.
    fn discard(&self, result: i32) {
        if result >= 0 && self.meta.as_ref().is_some_and(|m| m.call.makes_fd()) {
            // SAFETY: the kernel gave us this fd and nobody else has seen it.
            drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(result) });
        }
    }
}

struct Ring {
    ring: IoUring,
    slots: Slab<InFlight>,
    eventfd: EventFd,
    /// The metadata opcodes this kernel's ring has: openat2, unlinkat, renameat,
    /// getxattr.
    meta_ops: [bool; 4],
}

/// A handle on the ring; clones share it.
#[derive(Clone)]
pub(crate) struct Uring {
    inner: Rc<RefCell<Ring>>,
}

impl Uring {
    /// A ring of `entries` submission slots (a power of two); the caller caps in-flight
    /// ops at that, so the submission queue never overflows and the completion queue
    /// (twice as large) never drops a completion.
    pub(crate) fn new(poller: &mut Poller, token: Token, entries: u32) -> io::Result<Uring> {
        let ring = IoUring::new(entries)?;
        let eventfd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        ring.submitter()
            .register_eventfd(eventfd.as_fd().as_raw_fd())?;
        poller.register(eventfd.as_fd(), token, Interest::READABLE)?;
        let mut probe = Probe::new();
        let meta_ops = match ring.submitter().register_probe(&mut probe) {
            Ok(()) => [
                opcode::OpenAt2::CODE,
                opcode::UnlinkAt::CODE,
                opcode::RenameAt::CODE,
                opcode::GetXattr::CODE,
            ]
            .map(|op| probe.is_supported(op)),
            Err(_) => [false; 4],
        };
        Ok(Uring {
            inner: Rc::new(RefCell::new(Ring {
                ring,
                slots: Slab::new(),
                eventfd,
                meta_ops,
            })),
        })
    }

    /// Whether the ring can carry `call` (else it goes to the worker pool).
    pub(crate) fn supports(&self, call: &MetaCall) -> bool {
        let i = match call {
            MetaCall::Open { .. } => 0,
            MetaCall::Unlink { .. } => 1,
            MetaCall::Rename { .. } => 2,
            MetaCall::GetXattr { .. } => 3,
        };
        self.inner.borrow().meta_ops[i]
    }

    /// Queues one metadata call (getxattr's value goes into `buf`); it reaches the
    /// kernel at the next `flush`.
    pub(crate) fn submit_meta(&self, call: MetaCall, mut buf: Vec<u8>, permit: Permit) -> Op {
        let mut meta = Box::new(Meta {
            how: types::OpenHow::new(),
            call,
        });
        let sqe = match &meta.call {
            MetaCall::Open {
                dir,
                name,
                flags,
                resolve,
            } => {
                meta.how = types::OpenHow::new().flags(*flags as u64).resolve(*resolve);
                opcode::OpenAt2::new(types::Fd(dir.as_raw_fd()), name.as_ptr(), &meta.how).build()
            }
            MetaCall::Unlink { dir, name, flags } => {
                opcode::UnlinkAt::new(types::Fd(dir.as_raw_fd()), name.as_ptr())
                    .flags(*flags)
                    .build()
            }
            MetaCall::Rename {
                dir,
                name,
                newdir,
                newname,
                flags,
            } => opcode::RenameAt::new(
                types::Fd(dir.as_raw_fd()),
                name.as_ptr(),
                types::Fd(newdir.as_raw_fd()),
                newname.as_ptr(),
            )
            .flags(*flags)
            .build(),
            MetaCall::GetXattr { path, name, .. } => {
                let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
                opcode::GetXattr::new(name.as_ptr(), buf.as_mut_ptr().cast(), path.as_ptr(), len)
                    .build()
            }
        };
        let fd = Arc::clone(meta.call.fd());
        self.queue(sqe, fd, buf, Some(meta), permit)
    }

    /// Queues one op on `buf[start..]`; it reaches the kernel at the next `flush`.
    pub(crate) fn submit(
        &self,
        kind: Kind,
        fd: Arc<OwnedFd>,
        offset: u64,
        mut buf: Vec<u8>,
        start: usize,
        permit: Permit,
    ) -> Op {
        let raw = types::Fd(fd.as_raw_fd());
        let window = &mut buf[start..];
        let len = u32::try_from(window.len()).unwrap_or(u32::MAX);
        let sqe = match kind {
            Kind::Read => opcode::Read::new(raw, window.as_mut_ptr(), len)
                .offset(offset)
                .build(),
            Kind::Write => opcode::Write::new(raw, window.as_ptr(), len)
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
        };
        self.queue(sqe, fd, buf, None, permit)
    }

    /// Puts `sqe` (whose pointers lead into `buf` or `meta`) in the submission ring
    /// under a new slot that owns what it points at.
    fn queue(
        &self,
        sqe: squeue::Entry,
        fd: Arc<OwnedFd>,
        buf: Vec<u8>,
        meta: Option<Box<Meta>>,
        permit: Permit,
    ) -> Op {
        let mut r = self.inner.borrow_mut();
        let entry = r.slots.vacant_entry();
        let id = entry.key();
        let sqe = sqe.user_data(id as u64);
        // The Vec's heap buffer and the Box do not move when moved into the slab.
        entry.insert(InFlight {
            _fd: fd,
            _permit: permit,
            buf,
            meta,
            result: None,
            waker: None,
            abandoned: false,
        });
        let error = push(&mut r.ring, &sqe).err();
        if error.is_some() {
            r.slots.remove(id);
        }
        Op {
            ring: Rc::clone(&self.inner),
            id: error.is_none().then_some(id),
            error,
        }
    }

    /// Submits every queued entry with one system call.
    pub(crate) fn flush(&self) {
        let mut r = self.inner.borrow_mut();
        if r.ring.submission().is_empty() {
            return;
        }
        match r.ring.submit() {
            Ok(_) => {}
            // Out of kernel resources for now: the entries stay queued for the next try.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EAGAIN | libc::EBUSY | libc::EINTR)
                ) =>
            {
                log::debug!("io_uring submit deferred: {e}")
            }
            Err(e) => log::error!("io_uring submit failed: {e}"),
        }
    }

    /// Whether the completion ring holds entries (reads its tail: no system call).
    pub(crate) fn has_completions(&self) -> bool {
        !self.inner.borrow_mut().ring.completion().is_empty()
    }

    /// Moves every completion into its entry and wakes the waiting op.
    pub(crate) fn reap(&self) {
        let mut r = self.inner.borrow_mut();
        let _ = r.eventfd.read(); // level-triggered: clear it before looking
        let Ring { ring, slots, .. } = &mut *r;
        for cqe in ring.completion() {
            let id = cqe.user_data() as usize;
            let Some(slot) = slots.get_mut(id) else {
                continue;
            };
            if slot.abandoned {
                slots.remove(id).discard(cqe.result());
                continue;
            }
            slot.result = Some(cqe.result());
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
    }
}

/// Queues one entry, submitting what is queued first if the ring is full (it cannot be
/// while in-flight ops are capped at its size, but a full ring must never lose an op).
fn push(ring: &mut IoUring, sqe: &squeue::Entry) -> io::Result<()> {
    // SAFETY: the entry points at a buffer and fd owned by its slab slot, which stays
    // until the completion is reaped (a dropped future only marks it abandoned, and the
    // ring is dropped only after every slot is reaped: see `Drop for Ring`).
    if unsafe { ring.submission().push(sqe) }.is_ok() {
        return Ok(());
    }
    ring.submit()?;
    // SAFETY: as above.
    unsafe { ring.submission().push(sqe) }.map_err(|_| io::Error::other("io_uring queue full"))
}

impl Ring {
    /// Cancels every op still in flight and reaps them all, so that no buffer is freed
    /// while the kernel may still write into it. Gives up after `DRAIN_LIMIT` and then
    /// leaks the buffers rather than free memory the kernel still owns.
    fn drain(&mut self) {
        if self.slots.is_empty() {
            return;
        }
        let ids: Vec<u64> = self.slots.iter().map(|(id, _)| id as u64).collect();
        for id in ids {
            let cancel = opcode::AsyncCancel::new(id).build().user_data(CANCEL);
            if let Err(e) = push(&mut self.ring, &cancel) {
                log::debug!("cannot cancel io_uring op {id}: {e}");
            }
        }
        let end = Instant::now() + DRAIN_LIMIT;
        while !self.slots.is_empty() && Instant::now() < end {
            if let Err(e) = self.wait_one(end) {
                log::debug!("waiting for cancelled io_uring ops: {e}");
            }
            for cqe in self.ring.completion() {
                if cqe.user_data() != CANCEL {
                    if let Some(slot) = self.slots.try_remove(cqe.user_data() as usize) {
                        slot.discard(cqe.result());
                    }
                }
            }
        }
        if !self.slots.is_empty() {
            log::error!(
                "{} io_uring ops did not finish in {DRAIN_LIMIT:?}; leaking their buffers",
                self.slots.len()
            );
            std::mem::forget(std::mem::take(&mut self.slots));
        }
    }

    /// Submits what is queued and waits for a completion, at most until `end`.
    fn wait_one(&mut self, end: Instant) -> io::Result<()> {
        let left = end.saturating_duration_since(Instant::now());
        let ts = types::Timespec::from(left.min(Duration::from_millis(100)));
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => Ok(()),
            // Kernels before 5.11 take no timeout: wait without one (the ops were
            // cancelled, so they end).
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                self.ring.submit_and_wait(1).map(drop)
            }
            Err(e) => Err(e),
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        self.drain();
    }
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
                    let result = slot.result.unwrap_or(-1);
                    r.slots.remove(id).discard(result);
                }
                Some(slot) => slot.abandoned = true,
                None => {}
            }
        }
    }
}
