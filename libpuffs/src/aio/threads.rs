//! The fallback backend: a few worker threads doing blocking pread / pwrite / fsync.
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

struct Job {
    kind: Kind,
    fd: Arc<OwnedFd>,
    offset: u64,
    buf: Vec<u8>,
    done: Arc<Mutex<Done>>,
    /// Given back when the job is dropped, after the result is in place.
    _permit: Permit,
}

/// A handle on the workers; clones share them.
#[derive(Clone)]
pub(crate) struct Pool {
    jobs: Sender<Job>,
}

impl Pool {
    pub(crate) fn new(workers: usize) -> Pool {
        let (tx, rx) = channel::<Job>();
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

    pub(crate) fn submit(
        &self,
        kind: Kind,
        fd: Arc<OwnedFd>,
        offset: u64,
        buf: Vec<u8>,
        permit: Permit,
    ) -> Op {
        let done = Arc::new(Mutex::new(Done::default()));
        let job = Job {
            kind,
            fd,
            offset,
            buf,
            done: Arc::clone(&done),
            _permit: permit,
        };
        if self.jobs.send(job).is_err() {
            done.lock().unwrap_or_else(|e| e.into_inner()).outcome =
                Some(Err(io::Error::other("no I/O workers")));
        }
        Op { done }
    }
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = match jobs.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return, // the pool is gone
        };
        let outcome = run(job.kind, &job.fd, job.offset, job.buf);
        let mut done = job.done.lock().unwrap_or_else(|e| e.into_inner());
        done.outcome = Some(outcome);
        if let Some(w) = done.waker.take() {
            w.wake();
        }
    }
}

fn run(kind: Kind, fd: &OwnedFd, offset: u64, mut buf: Vec<u8>) -> Outcome {
    let off = i64::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    let n = match kind {
        Kind::Read => nix::sys::uio::pread(fd.as_fd(), &mut buf, off)?,
        Kind::Write => nix::sys::uio::pwrite(fd.as_fd(), &buf, off)?,
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
