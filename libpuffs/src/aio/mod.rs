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
//! frees memory the kernel may still write, nor closes an fd it still uses.

use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

mod threads;
#[cfg(target_os = "linux")]
mod uring;

use crate::event::Poller;

/// What one I/O does.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Read,
    Write,
    Fsync { datasync: bool },
}

/// The async file I/O of a mount (`Cx::aio`).
pub struct Aio {
    backend: Backend,
}

enum Backend {
    #[cfg(target_os = "linux")]
    Uring(uring::Uring),
    Threads(threads::Pool),
}

impl Aio {
    /// io_uring when the kernel has it (registered in `poller` under `token`), else
    /// worker threads. `threads` (or PUFFS_AIO=threads) forces the fallback.
    pub(crate) fn new(
        poller: &mut Poller,
        token: crate::event::Token,
        depth: u32,
        threads: bool,
    ) -> Aio {
        let forced = threads || std::env::var("PUFFS_AIO").is_ok_and(|v| v == "threads");
        #[cfg(target_os = "linux")]
        if !forced {
            match uring::Uring::new(poller, token, depth) {
                Ok(u) => {
                    return Aio {
                        backend: Backend::Uring(u),
                    }
                }
                Err(e) => log::info!("io_uring unavailable ({e}); file I/O uses worker threads"),
            }
        }
        let _ = (poller, token, depth, forced);
        Aio {
            backend: Backend::Threads(threads::Pool::new(4)),
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

    fn submit(&self, kind: Kind, fd: &Arc<OwnedFd>, offset: u64, buf: Vec<u8>) -> Pending {
        match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Uring(u) => Pending::Uring(u.submit(kind, Arc::clone(fd), offset, buf)),
            Backend::Threads(p) => Pending::Threads(p.submit(kind, Arc::clone(fd), offset, buf)),
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
