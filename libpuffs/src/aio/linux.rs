//! The Linux kernel AIO backend (io_setup / io_submit / io_getevents), for files
//! opened O_DIRECT: only there is it truly asynchronous. On a page-cached file the
//! kernel does the whole read or write inside io_submit, blocking the loop, so the
//! front (`mod.rs`) sends I/O on other files to worker threads instead.
//!
//! Ops queue their control blocks as they start; `flush` submits them all with one
//! io_submit per loop iteration. Each control block asks (IOCB_FLAG_RESFD) for an
//! eventfd signal on completion; the eventfd is in the loop's poller and `reap` takes
//! the events with a non-blocking io_getevents. Each in-flight op owns its control
//! block, buffer, fd and permit until its event is reaped; teardown calls io_destroy,
//! which cancels what it can and waits for the rest, before anything is freed.
//!
//! O_DIRECT wants the buffer aligned: the front (`window.rs`) hands this backend an
//! aligned window of an over-allocated buffer, as it does every backend.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use nix::sys::eventfd::{EfdFlags, EventFd};
use slab::Slab;

use super::kind::Kind;
use super::semaphore::Permit;
use crate::event::{Interest, Poller, Token};

/// Events taken per io_getevents call.
const EVENTS: usize = 64;

// From <linux/aio_abi.h>.
const IOCB_CMD_PREAD: u16 = 0;
const IOCB_CMD_PWRITE: u16 = 1;
const IOCB_CMD_FSYNC: u16 = 2;
const IOCB_CMD_FDSYNC: u16 = 3;
const IOCB_FLAG_RESFD: u32 = 1;

/// `struct io_event` of <linux/aio_abi.h>.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct IoEvent {
    data: u64,
    obj: u64,
    res: i64,
    res2: i64,
}

struct InFlight {
    /// Boxed: the kernel reads it during io_submit (and reports its address back).
    cb: Box<libc::iocb>,
    /// Kept alive (not read) until the kernel is done with them.
    _fd: Arc<OwnedFd>,
    _permit: Permit,
    buf: Vec<u8>,
    result: Option<i64>,
    waker: Option<Waker>,
    /// The future was dropped: free the entry when the event comes.
    abandoned: bool,
}

struct Ctx {
    ctx: libc::c_ulong,
    slots: Slab<InFlight>,
    /// Built, not yet submitted, oldest first.
    queued: VecDeque<usize>,
    eventfd: EventFd,
}

/// A handle on the AIO context; clones share it.
#[derive(Clone)]
pub(crate) struct Kaio {
    inner: Rc<RefCell<Ctx>>,
}

impl Kaio {
    /// A context for `entries` ops in flight (the caller caps them at that).
    pub(crate) fn new(poller: &mut Poller, token: Token, entries: u32) -> io::Result<Kaio> {
        let mut ctx: libc::c_ulong = 0;
        // SAFETY: io_setup writes the new context id into `ctx`.
        if unsafe { libc::syscall(libc::SYS_io_setup, entries as libc::c_long, &mut ctx) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut me = Ctx {
            ctx,
            slots: Slab::new(),
            queued: VecDeque::new(),
            eventfd: EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?,
        };
        poller.register(me.eventfd.as_fd(), token, Interest::READABLE)?;
        me.slots.reserve(entries as usize);
        Ok(Kaio {
            inner: Rc::new(RefCell::new(me)),
        })
    }

    /// Builds one op on `buf[start..]`; it reaches the kernel at the next `flush`.
    pub(crate) fn submit(
        &self,
        kind: Kind,
        fd: Arc<OwnedFd>,
        offset: u64,
        mut buf: Vec<u8>,
        start: usize,
        permit: Permit,
    ) -> Op {
        let mut c = self.inner.borrow_mut();
        let len = buf.len() - start;
        let key = c.slots.vacant_key();
        // SAFETY: an all-zero iocb is its documented initial state.
        let mut cb: Box<libc::iocb> = Box::new(unsafe { std::mem::zeroed() });
        cb.aio_data = key as u64;
        cb.aio_lio_opcode = match kind {
            Kind::Read => IOCB_CMD_PREAD,
            Kind::Write => IOCB_CMD_PWRITE,
            Kind::Fsync { datasync: false } => IOCB_CMD_FSYNC,
            Kind::Fsync { datasync: true } => IOCB_CMD_FDSYNC,
        };
        cb.aio_fildes = fd.as_raw_fd() as u32;
        if !matches!(kind, Kind::Fsync { .. }) {
            // The kernel refuses an fsync with a buffer, offset or length set.
            // The Vec's heap buffer does not move when the Vec is moved into the slab.
            cb.aio_buf = buf[start..].as_mut_ptr() as u64;
            cb.aio_nbytes = len as u64;
            cb.aio_offset = offset as i64;
        }
        cb.aio_flags = IOCB_FLAG_RESFD;
        cb.aio_resfd = c.eventfd.as_fd().as_raw_fd() as u32;
        c.slots.insert(InFlight {
            cb,
            _fd: fd,
            _permit: permit,
            buf,
            result: None,
            waker: None,
            abandoned: false,
        });
        c.queued.push_back(key);
        Op {
            ctx: Rc::clone(&self.inner),
            key: Some(key),
        }
    }

    /// Submits every queued op, as few io_submit calls as the kernel allows. An op
    /// the kernel refuses at submission ends with that errno.
    pub(crate) fn flush(&self) {
        let mut c = self.inner.borrow_mut();
        while !c.queued.is_empty() {
            let Ctx {
                ctx, slots, queued, ..
            } = &mut *c;
            let mut list: Vec<*mut libc::iocb> = queued
                .iter()
                .map(|&k| &mut *slots[k].cb as *mut _)
                .collect();
            // SAFETY: each pointer is a boxed control block owned by its slot until
            // its event is reaped (teardown destroys the context first).
            let n = unsafe {
                libc::syscall(
                    libc::SYS_io_submit,
                    *ctx,
                    list.len() as libc::c_long,
                    list.as_mut_ptr(),
                )
            };
            if n > 0 {
                queued.drain(..n as usize);
                continue;
            }
            // The first op was refused: it ends with the errno; go on with the rest.
            let errno = if n == 0 {
                libc::EAGAIN
            } else {
                io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO)
            };
            let key = queued.pop_front().expect("not empty");
            complete(slots, key, -i64::from(errno));
        }
    }

    /// Takes every completion event and wakes the waiting op.
    pub(crate) fn reap(&self) {
        let mut c = self.inner.borrow_mut();
        let mut counter = [0u8; 8];
        let _ = nix::unistd::read(c.eventfd.as_fd(), &mut counter);
        let mut events = [IoEvent::default(); EVENTS];
        loop {
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: the kernel writes at most EVENTS events into `events`.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_io_getevents,
                    c.ctx,
                    0 as libc::c_long,
                    EVENTS as libc::c_long,
                    events.as_mut_ptr(),
                    &zero,
                )
            };
            if n <= 0 {
                return;
            }
            for ev in &events[..n as usize] {
                complete(&mut c.slots, ev.data as usize, ev.res);
            }
            if (n as usize) < EVENTS {
                return;
            }
        }
    }
}

/// Records op `key`'s result and wakes it (or frees it if abandoned).
fn complete(slots: &mut Slab<InFlight>, key: usize, res: i64) {
    let Some(op) = slots.get_mut(key) else { return };
    if op.abandoned {
        slots.remove(key);
        return;
    }
    op.result = Some(res);
    if let Some(w) = op.waker.take() {
        w.wake();
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // io_destroy cancels what it can and waits for every other op, so the
        // buffers are free to go afterwards.
        // SAFETY: our context, destroyed once.
        if unsafe { libc::syscall(libc::SYS_io_destroy, self.ctx) } != 0 && !self.slots.is_empty() {
            log::error!(
                "io_destroy failed ({}); leaking the buffers of {} ops",
                io::Error::last_os_error(),
                self.slots.len()
            );
            std::mem::forget(std::mem::take(&mut self.slots));
        }
    }
}

/// A kernel AIO operation under way.
pub(crate) struct Op {
    ctx: Rc<RefCell<Ctx>>,
    key: Option<usize>,
}

impl std::future::Future for Op {
    type Output = io::Result<(usize, Vec<u8>)>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(key) = self.key else {
            return Poll::Ready(Err(io::Error::other("polled after completion")));
        };
        let ctx = Rc::clone(&self.ctx);
        let mut c = ctx.borrow_mut();
        let op = &mut c.slots[key];
        let Some(res) = op.result else {
            op.waker = Some(cx.waker().clone());
            return Poll::Pending;
        };
        let op = c.slots.remove(key);
        self.key = None;
        Poll::Ready(if res < 0 {
            Err(io::Error::from_raw_os_error(-res as i32))
        } else {
            Ok((res as usize, op.buf))
        })
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut c = self.ctx.borrow_mut();
        if let Some(pos) = c.queued.iter().position(|&k| k == key) {
            // Never submitted: nobody else knows of it.
            c.queued.remove(pos);
            c.slots.remove(key);
            return;
        }
        match c.slots.get_mut(key) {
            Some(op) if op.result.is_some() => {
                c.slots.remove(key);
            }
            Some(op) => op.abandoned = true,
            None => {}
        }
    }
}
