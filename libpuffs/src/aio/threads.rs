//! The fallback backend: a few worker threads doing blocking pread / pwrite / fsync,
//! and any blocking call (`Pool::call`: metadata system calls, for every backend).
//! Each job owns its buffer, fd reference and permit (the in-flight cap) until a worker
//! has finished it; the result goes back through a shared slot and the op's waker
//! (wakers may fire from any thread). The workers end when the last handle on the pool
//! is dropped and the queue is empty.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::kind::Kind;
use super::semaphore::Permit;

type Outcome = io::Result<(usize, Vec<u8>)>;

#[derive(Default)]
struct Done {
    outcome: Option<Outcome>,
    waker: Option<Waker>,
}

/// What a worker runs: an I/O, or any blocking call (`Pool::call`).
enum Work {
    Io(Job),
    Call(Box<dyn FnOnce() + Send>),
}

struct Job {
    kind: Kind,
    fd: Arc<OwnedFd>,
    offset: u64,
    buf: Vec<u8>,
    /// The I/O is on `buf[start..]`.
    start: usize,
    done: Arc<Mutex<Done>>,
    /// Given back when the job is dropped, after the result is in place.
    _permit: Permit,
}

/// A handle on the workers; clones share them.
#[derive(Clone)]
pub(crate) struct Pool {
    jobs: Sender<Work>,
}

impl Pool {
    pub(crate) fn new(workers: usize) -> Pool {
        let (tx, rx) = channel::<Work>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("puffs-aio-{i}"))
                .spawn(move || work(&rx));
            if let Err(e) = spawned {
                log::error!("cannot start an I/O worker: {e}");
            }
        }
        Pool { jobs: tx }
    }

    /// Queues one op on `buf[start..]` for the workers.
    pub(crate) fn submit(
        &self,
        kind: Kind,
        fd: Arc<OwnedFd>,
        offset: u64,
        buf: Vec<u8>,
        start: usize,
        permit: Permit,
    ) -> Op {
        let done = Arc::new(Mutex::new(Done::default()));
        let job = Job {
            kind,
            fd,
            offset,
            buf,
            start,
            done: Arc::clone(&done),
            _permit: permit,
        };
        if self.jobs.send(Work::Io(job)).is_err() {
            done.lock().unwrap_or_else(|e| e.into_inner()).outcome =
                Some(Err(io::Error::other("no I/O workers")));
        }
        Op { done }
    }
}

impl Pool {
    /// Runs `f` on a worker (a blocking system call that must not stall the loop);
    /// resolves to its result. `permit` is held until `f` has returned.
    pub(crate) fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
        permit: Permit,
    ) -> Call<T> {
        let done = Arc::new(Mutex::new(CallDone::default()));
        let slot = Arc::clone(&done);
        let work = Work::Call(Box::new(move || {
            let value = f();
            drop(permit);
            let mut d = slot.lock().unwrap_or_else(|e| e.into_inner());
            d.value = Some(value);
            if let Some(w) = d.waker.take() {
                w.wake();
            }
        }));
        let sent = self.jobs.send(work).is_ok();
        Call { done, sent }
    }
}

struct CallDone<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

impl<T> Default for CallDone<T> {
    fn default() -> Self {
        CallDone {
            value: None,
            waker: None,
        }
    }
}

/// A blocking call under way on a worker.
pub(crate) struct Call<T> {
    done: Arc<Mutex<CallDone<T>>>,
    /// False if no worker could take it.
    sent: bool,
}

impl<T> std::future::Future for Call<T> {
    type Output = io::Result<T>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if !self.sent {
            return Poll::Ready(Err(io::Error::other("no I/O workers")));
        }
        let mut d = self.done.lock().unwrap_or_else(|e| e.into_inner());
        match d.value.take() {
            Some(v) => Poll::Ready(Ok(v)),
            None => {
                d.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

fn work(jobs: &Mutex<Receiver<Work>>) {
    loop {
        // The queue's lock is released at the end of this statement, before the work.
        let work = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let job = match work {
            Ok(Work::Io(job)) => job,
            Ok(Work::Call(f)) => {
                f();
                continue;
            }
            Err(_) => return, // the pool is gone
        };
        let outcome = run(job.kind, &job.fd, job.offset, job.buf, job.start);
        let mut done = job.done.lock().unwrap_or_else(|e| e.into_inner());
        done.outcome = Some(outcome);
        if let Some(w) = done.waker.take() {
            w.wake();
        }
    }
}

fn run(kind: Kind, fd: &OwnedFd, offset: u64, mut buf: Vec<u8>, start: usize) -> Outcome {
    let off = i64::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    let n = match kind {
        Kind::Read => nix::sys::uio::pread(fd.as_fd(), &mut buf[start..], off)?,
        Kind::Write => nix::sys::uio::pwrite(fd.as_fd(), &buf[start..], off)?,
        Kind::Fsync { datasync: false } => nix::unistd::fsync(fd.as_fd()).map(|_| 0)?,
        #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "netbsd"))]
        Kind::Fsync { datasync: true } => nix::unistd::fdatasync(fd.as_fd()).map(|_| 0)?,
        #[cfg(not(any(target_os = "linux", target_os = "freebsd", target_os = "netbsd")))]
        Kind::Fsync { datasync: true } => nix::unistd::fsync(fd.as_fd()).map(|_| 0)?,
    };
    Ok((n, buf))
}

/// A job under way.
pub(crate) struct Op {
    done: Arc<Mutex<Done>>,
}

impl std::future::Future for Op {
    type Output = Outcome;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        match done.outcome.take() {
            Some(o) => Poll::Ready(o),
            None => {
                done.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
