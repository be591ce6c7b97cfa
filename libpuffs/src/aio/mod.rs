//! Asynchronous file I/O for ops: positioned reads and writes and fsync that yield to
//! the loop instead of blocking it.
//!
//! Backends, one file each: `uring.rs` (io_uring, Linux; completions arrive through an
//! eventfd in the poller and are reaped on the loop thread) and `threads.rs` (a few
//! worker threads doing pread/pwrite, for kernels without io_uring and the BSDs).
//! POSIX AIO (nix::sys::aio) was the plan for the fallback; it was not used because its
//! completion notice is a signal, which a library cannot safely direct in a host
//! process whose other threads may not block it (and glibc implements POSIX AIO with
//! threads anyway).
//!
//! Ownership: the buffer and a reference to the fd belong to the in-flight operation
//! until its completion is reaped, so dropping the future (cancelling the op) never
//! frees memory the kernel may still write, nor closes an fd it still uses. Tearing the
//! backend down cancels and reaps every op still in flight before anything is freed.
//!
//! Bounds: at most `cap` ops are in flight (`semaphore.rs`); past it an op waits for a
//! slot, it never fails. io_uring entries are queued as ops start and submitted once
//! per mainloop iteration (`Aio::flush`), so a burst of requests costs one system call.

use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

mod kind;
mod semaphore;
mod threads;
#[cfg(target_os = "linux")]
mod uring;

use kind::Kind;
use semaphore::Semaphore;

use crate::event::Poller;

/// The async file I/O of a mount (`Cx::aio`).
pub struct Aio {
    backend: Backend,
    /// The in-flight cap.
    slots: Semaphore,
}

/// The backend in use; clones are handles on the same ring or workers.
#[derive(Clone)]
enum Backend {
    #[cfg(target_os = "linux")]
    Uring(uring::Uring),
    Threads(threads::Pool),
}

impl Aio {
    /// io_uring when the kernel has it (registered in `poller` under `token`), else
    /// worker threads. `threads` (or PUFFS_AIO=threads) forces the fallback. At most
    /// `depth` (rounded to a power of two in 64..=4096) ops are in flight at once.
    pub(crate) fn new(
        poller: &mut Poller,
        token: crate::event::Token,
        depth: u32,
        threads: bool,
    ) -> Aio {
        let forced = threads || std::env::var("PUFFS_AIO").is_ok_and(|v| v == "threads");
        let cap = depth.clamp(64, 4096).next_power_of_two();
        let slots = Semaphore::new(cap as usize);
        #[cfg(target_os = "linux")]
        if !forced {
            match uring::Uring::new(poller, token, cap) {
                Ok(u) => {
                    return Aio {
                        backend: Backend::Uring(u),
                        slots,
                    }
                }
                Err(e) => log::info!("io_uring unavailable ({e}); file I/O uses worker threads"),
            }
        }
        let _ = (poller, token, forced);
        Aio {
            backend: Backend::Threads(threads::Pool::new(4)),
            slots,
        }
    }

    /// The backend in use: "io_uring" or "threads".
    pub fn backend(&self) -> &'static str {
        match self.backend {
            #[cfg(target_os = "linux")]
            Backend::Uring(_) => "io_uring",
            Backend::Threads(_) => "threads",
        }
    }

    /// Reads up to `len` bytes at `offset` (fewer at end of file).
    pub fn read_at(
        &self,
        fd: &Arc<OwnedFd>,
        offset: u64,
        len: usize,
    ) -> impl Future<Output = io::Result<Vec<u8>>> {
        let op = self.submit(Kind::Read, fd, offset, vec![0; len]);
        async move {
            let (n, mut buf) = op.await?;
            buf.truncate(n);
            Ok(buf)
        }
    }

    /// Writes `data` at `offset`; returns the number of bytes written.
    pub fn write_at(
        &self,
        fd: &Arc<OwnedFd>,
        offset: u64,
        data: Vec<u8>,
    ) -> impl Future<Output = io::Result<usize>> {
        let op = self.submit(Kind::Write, fd, offset, data);
        async move { op.await.map(|(n, _)| n) }
    }

    /// Flushes the file to stable storage (`datasync`: data only, as fdatasync).
    pub fn fsync(&self, fd: &Arc<OwnedFd>, datasync: bool) -> impl Future<Output = io::Result<()>> {
        let op = self.submit(Kind::Fsync { datasync }, fd, 0, Vec::new());
        async move { op.await.map(|_| ()) }
    }

    /// Waits for a slot under the cap, then starts the op.
    fn submit(
        &self,
        kind: Kind,
        fd: &Arc<OwnedFd>,
        offset: u64,
        buf: Vec<u8>,
    ) -> impl Future<Output = io::Result<(usize, Vec<u8>)>> {
        let slot = self.slots.acquire();
        let (backend, fd) = (self.backend.clone(), Arc::clone(fd));
        async move {
            let permit = slot.await;
            match backend {
                #[cfg(target_os = "linux")]
                Backend::Uring(u) => Pending::Uring(u.submit(kind, fd, offset, buf, permit)),
                Backend::Threads(p) => Pending::Threads(p.submit(kind, fd, offset, buf, permit)),
            }
            .await
        }
    }

    /// Hands the ops queued since the last call to the kernel (one system call for
    /// all). The mainloop calls it before it sleeps.
    pub(crate) fn flush(&self) {
        #[cfg(target_os = "linux")]
        if let Backend::Uring(u) = &self.backend {
            u.flush();
        }
    }

    /// Whether completions wait to be reaped, seen without a system call (io_uring:
    /// a peek at the completion ring). The loop's spin asks this, so a completion
    /// that lands while it spins is reaped at once instead of after the spin. The
    /// threads backend wakes its continuations directly and always says false.
    pub(crate) fn has_completions(&self) -> bool {
        match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Uring(u) => u.has_completions(),
            Backend::Threads(_) => false,
        }
    }

    /// Reaps completions (the backend's poller event fired).
    pub(crate) fn reap(&self) {
        #[cfg(target_os = "linux")]
        if let Backend::Uring(u) = &self.backend {
            u.reap();
        }
    }
}

/// An I/O under way: resolves to (bytes, buffer).
enum Pending {
    #[cfg(target_os = "linux")]
    Uring(uring::Op),
    Threads(threads::Op),
}

impl Future for Pending {
    type Output = io::Result<(usize, Vec<u8>)>;
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.get_mut() {
            #[cfg(target_os = "linux")]
            Pending::Uring(op) => std::pin::Pin::new(op).poll(cx),
            Pending::Threads(op) => std::pin::Pin::new(op).poll(cx),
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    type Io = Pin<Box<dyn Future<Output = io::Result<(usize, Vec<u8>)>>>>;

    fn uring(depth: u32) -> (Aio, Poller) {
        let mut poller = Poller::new().unwrap();
        let aio = Aio::new(&mut poller, crate::event::Token(1), depth, false);
        assert_eq!(aio.backend(), "io_uring", "these tests need io_uring");
        (aio, poller)
    }

    fn pipe() -> (Arc<OwnedFd>, Arc<OwnedFd>) {
        let (r, w) = nix::unistd::pipe().unwrap();
        (Arc::new(r), Arc::new(w))
    }

    /// Polls every op once; returns how many are done.
    fn poll_all(ops: &mut [Io]) -> usize {
        let mut cx = Context::from_waker(Waker::noop());
        let mut done = 0;
        for op in ops.iter_mut() {
            done += usize::from(op.as_mut().poll(&mut cx).is_ready());
        }
        done
    }

    /// Reaps until `ops` are all done (bounded).
    fn finish(aio: &Aio, ops: &mut Vec<Io>) {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut cx = Context::from_waker(Waker::noop());
        while !ops.is_empty() {
            assert!(std::time::Instant::now() < end, "ops never completed");
            aio.flush();
            aio.reap();
            ops.retain_mut(|op| match op.as_mut().poll(&mut cx) {
                Poll::Ready(r) => {
                    r.expect("no op fails for want of a slot");
                    false
                }
                Poll::Pending => true,
            });
        }
    }

    #[test]
    fn ops_reach_the_kernel_only_at_flush_and_all_at_once() {
        let (aio, _poller) = uring(64);
        let (r, w) = pipe();
        let mut ops: Vec<Io> = (0..10)
            .map(|_| Box::pin(aio.submit(Kind::Write, &w, 0, vec![7])) as Io)
            .collect();
        assert_eq!(poll_all(&mut ops), 0);
        let mut buf = [0u8; 16];
        nix::fcntl::fcntl(
            &*r,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        assert_eq!(
            nix::unistd::read(r.as_fd(), &mut buf),
            Err(nix::errno::Errno::EAGAIN),
            "queued writes are not submitted before flush"
        );
        finish(&aio, &mut ops);
        assert_eq!(nix::unistd::read(r.as_fd(), &mut buf), Ok(10));
    }

    #[test]
    fn past_the_cap_ops_wait_and_then_all_complete() {
        let (aio, _poller) = uring(64);
        let (r, w) = pipe();
        // 200 one-byte reads of an empty pipe: they stay in flight until written to.
        let mut ops: Vec<Io> = (0..200)
            .map(|_| Box::pin(aio.submit(Kind::Read, &r, 0, vec![0])) as Io)
            .collect();
        assert_eq!(poll_all(&mut ops), 0);
        aio.flush();
        assert_eq!(aio.slots.free(), 0, "the first 64 took every slot");
        nix::unistd::write(w.as_fd(), &[1u8; 200]).unwrap();
        finish(&aio, &mut ops);
        assert_eq!(aio.slots.free(), 64, "every slot came back");
    }

    #[test]
    fn dropping_the_aio_reaps_ops_still_in_flight() {
        let (aio, _poller) = uring(64);
        let (r, _w) = pipe();
        let mut ops: Vec<Io> = (0..8)
            .map(|_| Box::pin(aio.submit(Kind::Read, &r, 0, vec![0; 4096])) as Io)
            .collect();
        assert_eq!(poll_all(&mut ops), 0);
        aio.flush();
        drop(ops); // abandoned: their buffers now belong to the ring until reaped
        let started = std::time::Instant::now();
        drop(aio); // cancels the 8 reads and reaps them before freeing anything
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(Arc::strong_count(&r), 1, "the ops' fd references are gone");
    }
}
