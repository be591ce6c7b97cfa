//! The POSIX AIO backend (Linux with glibc, FreeBSD). Ops queue their control blocks
//! as they start; `flush` hands the reads and writes to `lio_listio` in batches (and
//! each fsync to `aio_fsync`) once per loop iteration. Completion notices:
//! - Linux: a realtime signal per op (its si_value is the op's slab key), read from a
//!   signalfd in the loop's poller (`rtsignal.rs` says how a process-directed signal is
//!   kept from killing or escaping the process);
//! - FreeBSD: SIGEV_KEVENT, an EVFILT_AIO event straight into the loop's kqueue.
//!
//! A notice is only a hint: every `reap` sweeps all in-flight ops with `aio_error`.
//! Each in-flight op owns its control block (boxed: glibc keeps its address), buffer,
//! fd and permit until its result is collected with `aio_return`; teardown cancels
//! and waits for every op before anything is freed.
//!
//! nix's AioRead / AioWrite / AioFsync are not used: they borrow their buffer for a
//! lifetime (the slot must own it), and nix's `Signal` has no realtime signals; a
//! plain `libc::aiocb` in a box is what they wrap anyway.
//!
//! On Linux, glibc overwrites a finished op's result with EAGAIN when it cannot queue
//! the signal (RLIMIT_SIGPENDING reached), so `cap` keeps in-flight ops well below it.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

use super::kind::Kind;
use super::semaphore::Permit;
use crate::event::{Poller, Token};

/// How many ops one `lio_listio` call takes (FreeBSD's default AIO_LISTIO_MAX).
const LISTIO_MAX: usize = 16;
/// How long teardown waits for cancelled ops before it gives up on them.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Where an op is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Built, waiting for `flush`.
    Queued,
    /// Handed to the C library.
    Submitted,
    /// Finished: bytes, or a negative errno.
    Done(i64),
}

struct InFlight {
    /// Boxed: the C library keeps a pointer to it while the op runs.
    cb: Box<libc::aiocb>,
    kind: Kind,
    /// Kept alive (not read) until the op is done.
    _fd: Arc<OwnedFd>,
    _permit: Permit,
    buf: Vec<u8>,
    stage: Stage,
    waker: Option<Waker>,
    /// The future was dropped: free the entry when the op is done.
    abandoned: bool,
}

/// How completions reach the loop.
#[cfg(target_os = "linux")]
struct Notify {
    listener: super::rtsignal::Listener,
    signo: i32,
}

#[cfg(target_os = "freebsd")]
struct Notify {
    kq: std::os::fd::RawFd,
    token: Token,
}

struct State {
    slots: Slab<InFlight>,
    queued: Vec<usize>,
    notify: Notify,
}

/// A handle on the backend; clones share it.
#[derive(Clone)]
pub(crate) struct Posix {
    inner: Rc<RefCell<State>>,
}

impl Posix {
    /// Starts listening for completions in `poller` under `token`; `signo` is the
    /// completion signal on Linux (ignored on FreeBSD).
    pub(crate) fn new(poller: &mut Poller, token: Token, signo: i32) -> io::Result<Posix> {
        #[cfg(target_os = "linux")]
        let notify = Notify {
            listener: super::rtsignal::Listener::new(poller, token, signo)?,
            signo,
        };
        #[cfg(target_os = "freebsd")]
        let notify = {
            let _ = signo;
            Notify {
                kq: poller.raw_fd(),
                token,
            }
        };
        Ok(Posix {
            inner: Rc::new(RefCell::new(State {
                slots: Slab::new(),
                queued: Vec::new(),
                notify,
            })),
        })
    }

    /// The most ops that may be in flight: on Linux a quarter of RLIMIT_SIGPENDING
    /// (pending completion signals of reaped ops may linger, and other signals of the
    /// same user count too), so no completion signal fails to queue.
    pub(crate) fn cap() -> Option<u32> {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: getrlimit fills in the struct it is given.
            let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
            // SAFETY: a valid resource and a pointer to a live rlimit.
            if unsafe { libc::getrlimit(libc::RLIMIT_SIGPENDING, &mut lim) } != 0 {
                return None;
            }
            let soft = lim.rlim_cur;
            (soft != libc::RLIM_INFINITY).then(|| (soft / 4).clamp(1, u32::MAX as u64) as u32)
        }
        #[cfg(not(target_os = "linux"))]
        None
    }

    /// Builds one op on `buf[start..]`; it reaches the C library at the next `flush`.
    pub(crate) fn submit(
        &self,
        kind: Kind,
        fd: Arc<OwnedFd>,
        offset: u64,
        mut buf: Vec<u8>,
        start: usize,
        permit: Permit,
    ) -> Op {
        let mut st = self.inner.borrow_mut();
        let Ok(offset) = libc::off_t::try_from(offset) else {
            return Op::failed(&self.inner, io::Error::from_raw_os_error(libc::EFBIG));
        };
        let key = st.slots.vacant_key();
        // SAFETY: an all-zero aiocb is its documented initial state.
        let mut cb: Box<libc::aiocb> = Box::new(unsafe { std::mem::zeroed() });
        cb.aio_fildes = fd.as_raw_fd();
        cb.aio_offset = offset;
        // The Vec's heap buffer does not move when the Vec is moved into the slab.
        let window = &mut buf[start..];
        cb.aio_buf = window.as_mut_ptr().cast();
        cb.aio_nbytes = window.len();
        cb.aio_lio_opcode = match kind {
            Kind::Read => libc::LIO_READ,
            Kind::Write => libc::LIO_WRITE,
            Kind::Fsync { .. } => libc::LIO_NOP,
        };
        cb.aio_sigevent = st.notify.sigevent(key);
        st.slots.insert(InFlight {
            cb,
            kind,
            _fd: fd,
            _permit: permit,
            buf,
            stage: Stage::Queued,
            waker: None,
            abandoned: false,
        });
        st.queued.push(key);
        Op {
            state: Rc::clone(&self.inner),
            key: Some(key),
            error: None,
        }
    }

    /// Hands every queued op to the C library: reads and writes `LISTIO_MAX` at a
    /// time through `lio_listio`, fsyncs one by one through `aio_fsync`.
    pub(crate) fn flush(&self) {
        let mut st = self.inner.borrow_mut();
        if st.queued.is_empty() {
            return;
        }
        let queued = std::mem::take(&mut st.queued);
        let mut failed = false;
        let mut batch: Vec<*mut libc::aiocb> = Vec::with_capacity(LISTIO_MAX);
        for key in queued {
            let Some(op) = st.slots.get_mut(key) else {
                continue;
            };
            op.stage = Stage::Submitted;
            match op.kind {
                Kind::Fsync { datasync } => {
                    let mode = if datasync {
                        libc::O_DSYNC
                    } else {
                        libc::O_SYNC
                    };
                    // SAFETY: the control block is boxed in its slot, which stays
                    // until the op is done (see `Drop for State`).
                    if unsafe { libc::aio_fsync(mode, &mut *op.cb) } != 0 {
                        op.stage = Stage::Done(-i64::from(Errno::last_raw()));
                        failed = true;
                    }
                }
                _ => batch.push(&mut *op.cb),
            }
            if batch.len() == LISTIO_MAX {
                failed |= listio(&mut batch);
            }
        }
        failed |= listio(&mut batch);
        drop(st);
        if failed {
            // Ops that never started send no notice: collect them now.
            self.reap();
        }
    }

    /// Collects every finished op and wakes its future (a notice came, or may have).
    pub(crate) fn reap(&self) {
        let mut st = self.inner.borrow_mut();
        st.notify.drain();
        let State { slots, .. } = &mut *st;
        let mut freed = Vec::new();
        for (key, op) in slots.iter_mut() {
            if op.stage == Stage::Submitted {
                match finished(&mut op.cb) {
                    Some(res) => op.stage = Stage::Done(res),
                    None => continue,
                }
            }
            if !matches!(op.stage, Stage::Done(_)) {
                continue;
            }
            if op.abandoned {
                freed.push(key);
            } else if let Some(w) = op.waker.take() {
                w.wake();
            }
        }
        for key in freed {
            slots.remove(key);
        }
    }
}

use nix::errno::Errno;

/// Submits `batch` with one `lio_listio` and empties it; true if some op did not
/// start (it then has its error, and no notice will come for it).
fn listio(batch: &mut Vec<*mut libc::aiocb>) -> bool {
    if batch.is_empty() {
        return false;
    }
    let n = batch.len() as libc::c_int;
    // SAFETY: each pointer is a boxed control block owned by its slot until the op is
    // done; the list itself is only read during the call.
    let rc = unsafe { libc::lio_listio(libc::LIO_NOWAIT, batch.as_ptr(), n, std::ptr::null_mut()) };
    if rc != 0 {
        log::debug!("lio_listio: {}", io::Error::last_os_error());
    }
    batch.clear();
    rc != 0
}

/// The op's result once it has finished (bytes, or a negative errno); None while it
/// runs. Collects the result with `aio_return`, which frees the library's record.
fn finished(cb: &mut libc::aiocb) -> Option<i64> {
    // SAFETY: `cb` is a control block that was submitted and not yet returned.
    let err = match unsafe { libc::aio_error(cb) } {
        libc::EINPROGRESS => return None,
        -1 => Errno::last_raw(),
        e => e,
    };
    // SAFETY: as above; called once, after the op finished.
    let ret = unsafe { libc::aio_return(cb) };
    Some(if err != 0 {
        -i64::from(err)
    } else {
        ret as i64
    })
}

impl Notify {
    /// The sigevent that tells the loop op `key` finished.
    fn sigevent(&self, key: usize) -> libc::sigevent {
        // SAFETY: an all-zero sigevent is valid (SIGEV_SIGNAL with signal 0 until set).
        let mut ev: libc::sigevent = unsafe { std::mem::zeroed() };
        #[cfg(target_os = "linux")]
        {
            ev.sigev_notify = libc::SIGEV_SIGNAL;
            ev.sigev_signo = self.signo;
            ev.sigev_value = libc::sigval {
                sival_ptr: key as *mut libc::c_void,
            };
        }
        #[cfg(target_os = "freebsd")]
        {
            let _ = key;
            ev.sigev_notify = libc::SIGEV_KEVENT;
            // sigev_notify_kqueue is a C alias of sigev_signo; the kevent's udata is
            // sigev_value, so the EVFILT_AIO event comes back under our token.
            ev.sigev_signo = self.kq;
            ev.sigev_value = libc::sigval {
                sival_ptr: self.token.0 as *mut libc::c_void,
            };
        }
        ev
    }

    /// Takes the pending notices (Linux: the signals queued on the signalfd).
    fn drain(&self) {
        #[cfg(target_os = "linux")]
        self.listener.drain();
    }
}

impl State {
    /// Cancels every op still running and waits for them all, so that no buffer is
    /// freed while the C library may still write into it. Gives up after
    /// `DRAIN_LIMIT` and then leaks the buffers rather than free memory in use.
    fn drain(&mut self) {
        let end = Instant::now() + DRAIN_LIMIT;
        let running = |slots: &mut Slab<InFlight>| -> Vec<usize> {
            let mut keys = Vec::new();
            for (key, op) in slots.iter_mut() {
                if op.stage == Stage::Submitted {
                    match finished(&mut op.cb) {
                        Some(res) => op.stage = Stage::Done(res),
                        None => keys.push(key),
                    }
                }
            }
            keys
        };
        for key in running(&mut self.slots) {
            let cb = &mut *self.slots[key].cb;
            // SAFETY: a submitted control block of ours; cancelling is only a request.
            unsafe { libc::aio_cancel(cb.aio_fildes, cb) };
        }
        loop {
            let left = running(&mut self.slots);
            if left.is_empty() {
                return;
            }
            if Instant::now() >= end {
                log::error!(
                    "{} POSIX AIO ops did not finish in {DRAIN_LIMIT:?}; leaking their buffers",
                    left.len()
                );
                std::mem::forget(std::mem::take(&mut self.slots));
                return;
            }
            let list: Vec<*const libc::aiocb> = left
                .iter()
                .map(|&k| &*self.slots[k].cb as *const _)
                .collect();
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 50_000_000,
            };
            // SAFETY: the list points at live submitted control blocks; a timeout or
            // EINTR just goes round the loop again.
            unsafe { libc::aio_suspend(list.as_ptr(), list.len() as libc::c_int, &ts) };
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.drain();
    }
}

/// A POSIX AIO operation under way.
pub(crate) struct Op {
    state: Rc<RefCell<State>>,
    key: Option<usize>,
    error: Option<io::Error>,
}

impl Op {
    fn failed(state: &Rc<RefCell<State>>, e: io::Error) -> Op {
        Op {
            state: Rc::clone(state),
            key: None,
            error: Some(e),
        }
    }
}

impl std::future::Future for Op {
    type Output = io::Result<(usize, Vec<u8>)>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(e) = self.error.take() {
            return Poll::Ready(Err(e));
        }
        let Some(key) = self.key else {
            return Poll::Ready(Err(io::Error::other("polled after completion")));
        };
        let state = Rc::clone(&self.state);
        let mut st = state.borrow_mut();
        let op = &mut st.slots[key];
        match op.stage {
            Stage::Done(res) => {
                let op = st.slots.remove(key);
                self.key = None;
                Poll::Ready(if res < 0 {
                    Err(io::Error::from_raw_os_error(-res as i32))
                } else {
                    Ok((res as usize, op.buf))
                })
            }
            _ => {
                op.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut st = self.state.borrow_mut();
        let done = match st.slots.get_mut(key) {
            Some(op) if op.stage == Stage::Queued => {
                // Out of the queue too, or a new op reusing the key would go twice.
                st.queued.retain(|&k| k != key);
                true
            }
            Some(op) if op.stage != Stage::Submitted => true,
            Some(op) => {
                op.abandoned = true;
                false
            }
            None => false,
        };
        if done {
            // Finished, or never submitted.
            st.slots.remove(key);
        }
    }
}
