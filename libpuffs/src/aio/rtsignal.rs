//! The completion signal of the POSIX AIO backend on Linux: a realtime signal that
//! glibc queues to the process when an op finishes, read by the loop from a signalfd.
//!
//! The signal is process-directed: the kernel gives it to any thread that does not
//! block it, and a library cannot make every thread of a host block it. So:
//! - `prepare` blocks it in the thread that mounts, before the framework starts any
//!   thread (they inherit the mask), so normally it stays pending and the signalfd
//!   reads it;
//! - it installs a handler, so a thread that does not block it (one the host created
//!   earlier) never dies of it: the handler only pokes every listening loop's eventfd;
//! - a signal is only a hint: on every wakeup the backend sweeps all its in-flight ops
//!   with `aio_error`, so a signal read by another loop's signalfd, or caught by the
//!   handler, loses nothing. A loop that reads a signal pokes the other loops too, since
//!   it may have consumed one of theirs.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::event::{Interest, Poller, Token};

/// How many POSIX AIO backends may listen at once in one process.
const MAX_LISTENERS: usize = 16;

/// The wake eventfds of the live listeners (-1: free). Read by the handler: atomics.
static WAKERS: [AtomicI32; MAX_LISTENERS] = [const { AtomicI32::new(-1) }; MAX_LISTENERS];

/// Handlers running now: an eventfd is closed only once none may still write to it.
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// The signals our handler is installed for (never removed: a late completion signal
/// after the last backend is gone must still not kill the process).
static HANDLED: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// The default completion signal: SIGRTMIN+4 (glibc keeps the two below SIGRTMIN
/// for itself; +4 leaves the first few to programs that pick "the first free one").
pub(crate) fn default_signal() -> i32 {
    libc::SIGRTMIN() + 4
}

/// A signal set holding `signo` alone.
fn set_of(signo: i32) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set; sigaddset adds a signal number that
    // `check` has validated.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signo);
        set
    }
}

fn check(signo: i32) -> io::Result<()> {
    if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&signo) {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "the aio signal must be a realtime signal ({}..={}), not {signo}",
            libc::SIGRTMIN(),
            libc::SIGRTMAX()
        ),
    ))
}

/// Blocks `signo` in the calling thread (threads it starts later inherit that) and
/// installs the handler. Refuses a signal the host already handles itself.
pub(crate) fn prepare(signo: i32) -> io::Result<()> {
    check(signo)?;
    let set = set_of(signo);
    // SAFETY: changes only the calling thread's mask, adding one valid signal.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    install_handler(signo)
}

fn install_handler(signo: i32) -> io::Result<()> {
    let mut handled = HANDLED.lock().unwrap_or_else(|e| e.into_inner());
    if handled.contains(&signo) {
        return Ok(());
    }
    // SAFETY: a zeroed sigaction is a valid value to fill in; the handler is
    // async-signal-safe (atomics, write(2), errno only).
    let (ours, mut old) = unsafe {
        let mut sa = std::mem::zeroed::<libc::sigaction>();
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        (sa, std::mem::zeroed::<libc::sigaction>())
    };
    // SAFETY: valid pointers to initialised sigactions; `signo` is checked.
    if unsafe { libc::sigaction(signo, &ours, &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN {
        // SAFETY: puts back the host's own handler.
        unsafe { libc::sigaction(signo, &old, std::ptr::null_mut()) };
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("signal {signo} already has a handler; choose another aio signal"),
        ));
    }
    handled.push(signo);
    Ok(())
}

extern "C" fn on_signal(_sig: libc::c_int, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let errno = Errno::last_raw();
    IN_HANDLER.fetch_add(1, Ordering::SeqCst);
    poke_all(-1);
    IN_HANDLER.fetch_sub(1, Ordering::SeqCst);
    Errno::set_raw(errno);
}

/// Wakes every listener but the one whose eventfd is `except`. Async-signal-safe.
fn poke_all(except: i32) {
    let one = 1u64.to_ne_bytes();
    for waker in &WAKERS {
        let fd = waker.load(Ordering::SeqCst);
        if fd >= 0 && fd != except {
            // SAFETY: `fd` is a live listener's eventfd: it is closed only after its
            // slot is cleared and no handler runs (see `Drop for Listener`). A full
            // counter drops the write, which is fine: a wake is pending anyway.
            unsafe { libc::write(fd, one.as_ptr().cast(), one.len()) };
        }
    }
}

/// One backend's ears: a signalfd for the signal and an eventfd the handler and the
/// other listeners poke, both registered in the loop's poller under one token.
pub(crate) struct Listener {
    signalfd: OwnedFd,
    wake: EventFd,
    slot: usize,
}

impl Listener {
    pub(crate) fn new(poller: &mut Poller, token: Token, signo: i32) -> io::Result<Listener> {
        prepare(signo)?;
        let set = set_of(signo);
        // SAFETY: creates a new fd from a valid set; checked below.
        let raw = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new fd that nothing else owns.
        let signalfd = unsafe { OwnedFd::from_raw_fd(raw) };
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        poller.register(signalfd.as_fd(), token, Interest::READABLE)?;
        poller.register(wake.as_fd(), token, Interest::READABLE)?;
        let slot = WAKERS
            .iter()
            .position(|w| {
                w.compare_exchange(-1, wake.as_raw_fd(), Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            })
            .ok_or_else(|| io::Error::other("too many POSIX AIO backends at once"))?;
        let listener = Listener {
            signalfd,
            wake,
            slot,
        };
        listener.drain(); // signals of ops of an earlier backend, still pending
        Ok(listener)
    }

    /// Reads every queued completion signal; returns how many. Each is only a hint
    /// (the caller sweeps all its ops), and may have been meant for another loop, so
    /// those are poked.
    pub(crate) fn drain(&self) -> usize {
        let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>() * 16];
        let mut n = 0;
        while let Ok(got @ 1..) = nix::unistd::read(self.signalfd.as_fd(), &mut info) {
            n += got / std::mem::size_of::<libc::signalfd_siginfo>();
        }
        if n > 0 {
            poke_all(self.wake.as_raw_fd());
        }
        n
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        WAKERS[self.slot].store(-1, Ordering::SeqCst);
        // A handler that read our fd before it was cleared may still write to it.
        while IN_HANDLER.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        // Signals still queued would stay pending (blocked everywhere) and count
        // against RLIMIT_SIGPENDING: take them, passing the hint on.
        self.drain();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_realtime_signal_is_accepted() {
        let e = prepare(libc::SIGTERM).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("realtime signal"), "{e}");
    }

    extern "C" fn foreign(_: libc::c_int) {}

    #[test]
    fn a_signal_the_host_handles_is_refused_and_its_handler_kept() {
        let sig = libc::SIGRTMIN() + 9;
        // SAFETY: installs a do-nothing handler for a signal no one sends here.
        let theirs = unsafe { libc::signal(sig, foreign as *const () as libc::sighandler_t) };
        assert_ne!(theirs, libc::SIG_ERR);
        let e = prepare(sig).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        // SAFETY: reads the disposition back (SIG_DFL is put in and then restored).
        let now = unsafe {
            let cur = libc::signal(sig, libc::SIG_DFL);
            libc::signal(sig, cur);
            cur
        };
        assert_eq!(now, foreign as *const () as libc::sighandler_t);
    }
}
