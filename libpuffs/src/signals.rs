//! SIGINT, SIGTERM and SIGHUP -> a clean unmount, for the mainloop. Installed by
//! `mount()` just before the kernel mount (the mount shows in /proc/mounts from
//! mount(2) on, before the INIT handshake, so a signal sent as soon as it shows
//! unmounts it rather than killing the process), and undone when the mount fails, when
//! `mainloop` returns, or when a mount that never ran its loop is dropped.
//!
//! How: a signal handler that writes the signal's number into a pipe per running loop;
//! the pipe's read end is in the loop's poller, and the loop forwards what it reads as
//! `Request::Signal` on its inbox, the control path that unmounts. Why a handler rather
//! than blocking the signals and reading them from a signalfd (Linux) or EVFILT_SIGNAL
//! (BSD): a process-directed signal goes to any thread that does not block it, and a
//! library cannot make every thread block them (the host's own threads, or the fuser
//! reader, which exists before the loop runs); one unblocked thread and the default
//! action kills the process. A handler catches the signal on whichever thread gets it,
//! touches no thread's signal mask, works the same on every Unix, and is undone exactly
//! by putting back the dispositions it replaced.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::event::{Interest, Poller, Token};
use crate::kernel::{Inbox, Request};

/// The signals that unmount.
const SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// How many loops in one process may handle signals at once.
const MAX_LOOPS: usize = 16;

/// Write ends of the running loops' pipes (-1: free). Read by the handler, so atomics.
static PIPES: [AtomicI32; MAX_LOOPS] = [const { AtomicI32::new(-1) }; MAX_LOOPS];

/// Handlers running now: a pipe is closed only once none may still write to it.
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// The dispositions replaced while at least one loop handles signals.
static REPLACED: Mutex<Option<Vec<(Signal, SigAction)>>> = Mutex::new(None);

/// One loop's subscription to the termination signals; dropping it unsubscribes, and
/// the last one out restores the old dispositions.
pub(crate) struct Signals {
    read: OwnedFd,
    /// Kept open for the handler, which writes to it by number from `PIPES`.
    _write: OwnedFd,
    slot: usize,
}

impl Signals {
    /// Subscribes a loop: its pipe is registered in `poller` under `token`.
    pub(crate) fn install(poller: &mut Poller, token: Token) -> io::Result<Signals> {
        let (read, write) = nix::unistd::pipe()?;
        for fd in [&read, &write] {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
            fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        }
        poller.register(read.as_fd(), token, Interest::READABLE)?;
        let mut replaced = REPLACED.lock().unwrap_or_else(|e| e.into_inner());
        let slot = PIPES
            .iter()
            .position(|p| {
                p.compare_exchange(-1, write.as_raw_fd(), Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            })
            .ok_or_else(|| io::Error::other("too many mainloops handle signals at once"))?;
        if replaced.is_none() {
            match catch_signals() {
                Ok(old) => *replaced = Some(old),
                Err(e) => {
                    PIPES[slot].store(-1, Ordering::SeqCst);
                    return Err(e);
                }
            }
        }
        Ok(Signals {
            read,
            _write: write,
            slot,
        })
    }

    /// Pushes every signal received since the last call onto `inbox`.
    pub(crate) fn forward(&self, inbox: &Inbox) {
        let mut buf = [0u8; 32];
        while let Ok(n @ 1..) = nix::unistd::read(self.read.as_fd(), &mut buf) {
            for sig in &buf[..n] {
                inbox.push(Request::Signal(i32::from(*sig)));
            }
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        let mut replaced = REPLACED.lock().unwrap_or_else(|e| e.into_inner());
        PIPES[self.slot].store(-1, Ordering::SeqCst);
        if PIPES.iter().all(|p| p.load(Ordering::SeqCst) < 0) {
            for (sig, old) in replaced.take().unwrap_or_default() {
                // SAFETY: puts back the disposition that was there before us.
                if let Err(e) = unsafe { sigaction(sig, &old) } {
                    log::error!("cannot restore the disposition of {sig}: {e}");
                }
            }
        }
        drop(replaced);
        // A handler that read our fd before it was cleared may still be writing to it:
        // wait it out (handlers are a few instructions), so the fd number is not closed
        // and reused under its write.
        while IN_HANDLER.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        // The pipe's fds close now, after the wait (fields drop after this body).
    }
}

/// Installs the handler for the termination signals; returns what it replaced.
fn catch_signals() -> io::Result<Vec<(Signal, SigAction)>> {
    let ours = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    let mut old = Vec::new();
    for sig in SIGNALS {
        // SAFETY: `on_signal` is async-signal-safe: it touches only atomics, write(2)
        // and errno.
        match unsafe { sigaction(sig, &ours) } {
            Ok(prev) => old.push((sig, prev)),
            Err(e) => {
                for (sig, prev) in old {
                    // SAFETY: puts back the disposition that was there before us.
                    let _ = unsafe { sigaction(sig, &prev) };
                }
                return Err(e.into());
            }
        }
    }
    Ok(old)
}

extern "C" fn on_signal(sig: libc::c_int) {
    let errno = Errno::last_raw();
    IN_HANDLER.fetch_add(1, Ordering::SeqCst);
    let byte = sig as u8;
    for pipe in &PIPES {
        let fd = pipe.load(Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: `fd` is the write end of a live loop's pipe: it is closed only
            // after its slot is cleared and no handler runs (see `Drop for Signals`).
            // A full pipe drops the byte, which is fine: the loop has signals to read.
            unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
        }
    }
    IN_HANDLER.fetch_sub(1, Ordering::SeqCst);
    Errno::set_raw(errno);
}
