//! Asynchronous file I/O for ops: positioned reads and writes and fsync that yield to
//! the loop instead of blocking it.
//!
//! Backends, one file each, chosen by `PuffsUserMount::aio_backend` or `-o aio=`
//! ([`AioBackend`]), with the same small surface (`submit`, `flush`, `reap`):
//! - `uring.rs`, io_uring (Linux; the default where the kernel allows it): completions
//!   arrive through an eventfd in the poller and are reaped on the loop thread;
//! - `posix.rs`, POSIX AIO (`lio_listio`): on Linux completions are a realtime signal
//!   read from a signalfd (`rtsignal.rs`: how a process-directed signal is kept from
//!   killing or escaping the process), on FreeBSD an EVFILT_AIO kevent;
//! - `linux.rs`, Linux kernel AIO (io_submit, an eventfd): asynchronous only for files
//!   opened O_DIRECT, so I/O on other files goes to the worker threads;
//! - `threads.rs`, a few worker threads doing pread/pwrite: the last resort, and what a
//!   backend that cannot start falls back to.
//!
//! O_DIRECT: for a file opened O_DIRECT the front gives every backend an aligned
//! window of an over-allocated buffer (`window.rs`), since Linux refuses O_DIRECT I/O
//! on unaligned memory.
//!
//! Ownership: the buffer and a reference to the fd belong to the in-flight operation
//! until its completion is reaped, so dropping the future (cancelling the op) never
//! frees memory the kernel may still write, nor closes an fd it still uses. Tearing the
//! backend down cancels and reaps every op still in flight before anything is freed.
//! An I/O error reaches the caller as the same errno from every backend.
//!
//! Metadata calls io_uring carries (openat2, unlinkat, renameat2: `meta.rs`) go
//! through the ring when the backend is io_uring and the kernel has the opcode
//! (`Aio::meta`); other blocking calls run on the worker threads through
//! `Aio::blocking`.
//!
//! Bounds: at most `cap` ops are in flight (`semaphore.rs`); past it an op waits for a
//! slot, it never fails. Ops are queued as they start and submitted once per mainloop
//! iteration (`Aio::flush`), so a burst of requests costs one system call.

use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

mod kind;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
mod meta;
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
mod posix;
#[cfg(target_os = "linux")]
mod rtsignal;
mod semaphore;
mod threads;
#[cfg(target_os = "linux")]
mod uring;
mod window;

use kind::Kind;
#[cfg(target_os = "linux")]
pub use meta::MetaCall;
use semaphore::Semaphore;

use crate::event::Poller;

/// Which backend carries a mount's file I/O (`PuffsUserMount::aio_backend`,
/// `-o aio=uring|posix|linux|threads`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AioBackend {
    /// io_uring where the kernel allows it, else worker threads; the environment
    /// variable PUFFS_AIO (uring, posix, linux, threads) overrides it.
    #[default]
    Auto,
    /// io_uring (Linux).
    Uring,
    /// POSIX AIO: a realtime signal on Linux (see `PuffsUserMount::aio_signal`),
    /// kqueue on FreeBSD.
    Posix,
    /// Linux kernel AIO for files opened O_DIRECT; other files use worker threads.
    Linux,
    /// Worker threads doing blocking pread / pwrite.
    Threads,
}

impl std::str::FromStr for AioBackend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => AioBackend::Auto,
            "uring" => AioBackend::Uring,
            "posix" => AioBackend::Posix,
            "linux" => AioBackend::Linux,
            "threads" => AioBackend::Threads,
            _ => return Err(format!("unknown aio backend '{s}'")),
        })
    }
}

impl AioBackend {
    /// `Auto` made concrete by PUFFS_AIO when it is set (an unknown value is ignored).
    pub(crate) fn resolve(self) -> AioBackend {
        if self != AioBackend::Auto {
            return self;
        }
        match std::env::var("PUFFS_AIO").map(|v| v.parse()) {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                log::warn!("PUFFS_AIO: {e}; using the default");
                AioBackend::Auto
            }
            Err(_) => AioBackend::Auto,
        }
    }
}

/// The async file I/O of a mount (`Cx::aio`).
pub struct Aio {
    backend: Backend,
    /// The in-flight cap.
    slots: Semaphore,
    /// Workers for blocking calls (`Aio::blocking`), started on first use unless the
    /// backend has its own.
    pool: std::cell::OnceCell<threads::Pool>,
}

/// The backend in use; clones are handles on the same ring, context or workers.
#[derive(Clone)]
enum Backend {
    #[cfg(target_os = "linux")]
    Uring(uring::Uring),
    #[cfg(any(target_os = "linux", target_os = "freebsd"))]
    Posix(posix::Posix),
    /// Kernel AIO for O_DIRECT files, the workers for the rest.
    #[cfg(target_os = "linux")]
    Linux(linux::Kaio, threads::Pool),
    Threads(threads::Pool),
}

/// Worker threads of the fallback pool.
const WORKERS: usize = 4;

impl Aio {
    /// The backend `choice` names (registered in `poller` under `token`), or worker
    /// threads when it cannot start here. At most `depth` (rounded to a power of two in
    /// 64..=4096, and lower where the backend needs it) ops are in flight at once.
    /// `signal` is POSIX AIO's completion signal on Linux (None: the default).
    pub(crate) fn new(
        poller: &mut Poller,
        token: crate::event::Token,
        depth: u32,
        choice: AioBackend,
        signal: Option<i32>,
    ) -> Aio {
        let mut cap = depth.clamp(64, 4096).next_power_of_two();
        let backend = match start(choice.resolve(), poller, token, cap, signal) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("aio backend {choice:?} unavailable ({e}); using worker threads");
                Backend::Threads(threads::Pool::new(WORKERS))
            }
        };
        #[cfg(any(target_os = "linux", target_os = "freebsd"))]
        if let (Backend::Posix(_), Some(limit)) = (&backend, posix::Posix::cap()) {
            cap = cap.min(limit);
        }
        let aio = Aio {
            backend,
            slots: Semaphore::new(cap as usize),
            pool: std::cell::OnceCell::new(),
        };
        log::info!(
            "file I/O through {} (at most {cap} in flight)",
            aio.backend()
        );
        aio
    }

    /// The backend in use: "io_uring", "posix-aio", "linux-aio" or "threads".
    pub fn backend(&self) -> &'static str {
        match self.backend {
            #[cfg(target_os = "linux")]
            Backend::Uring(_) => "io_uring",
            #[cfg(any(target_os = "linux", target_os = "freebsd"))]
            Backend::Posix(_) => "posix-aio",
            #[cfg(target_os = "linux")]
            Backend::Linux(..) => "linux-aio",
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

    /// Runs `f`, a blocking call (openat, statx, mkdirat, unlinkat, renameat2,
    /// getdents, ...), on a worker thread so that a slow disk does not stall the loop;
    /// resolves to its result. It counts against the in-flight cap like any I/O.
    /// Fails only if no worker thread could be started.
    pub fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = io::Result<T>> {
        let slot = self.slots.acquire();
        let pool = self.pool().clone();
        async move {
            let permit = slot.await;
            pool.call(f, permit).await
        }
    }

    /// Makes the metadata call `call` without blocking the loop: through io_uring
    /// when the ring has its opcode (no hop to a worker thread of ours), else on the
    /// worker pool. Resolves to the new fd (`MetaCall::Open`) or 0.
    #[cfg(target_os = "linux")]
    pub fn meta(&self, call: MetaCall) -> impl Future<Output = io::Result<i32>> {
        let op = self.meta_into(call, Vec::new());
        async move { op.await.map(|(n, _)| n) }
    }

    /// `meta` for a call that fills a buffer (`MetaCall::GetXattr`): resolves to its
    /// result and `buf` with what the call wrote at its start.
    #[cfg(target_os = "linux")]
    pub fn meta_into(
        &self,
        call: MetaCall,
        mut buf: Vec<u8>,
    ) -> impl Future<Output = io::Result<(i32, Vec<u8>)>> {
        let slot = self.slots.acquire();
        let ring = match &self.backend {
            Backend::Uring(u) if u.supports(&call) => Some(u.clone()),
            _ => None,
        };
        let pool = ring.is_none().then(|| self.pool().clone());
        async move {
            let permit = slot.await;
            match (ring, pool) {
                (Some(u), _) => {
                    let (n, buf) = u.submit_meta(call, buf, permit).await?;
                    Ok((n as i32, buf))
                }
                (None, Some(p)) => {
                    let run = move || call.run_blocking_into(&mut buf).map(|n| (n, buf));
                    p.call(run, permit).await?
                }
                (None, None) => unreachable!("one of the two is set"),
            }
        }
    }

    /// Whether `Aio::meta` carries `call` through io_uring (no worker thread).
    #[cfg(target_os = "linux")]
    pub fn meta_in_ring(&self, call: &MetaCall) -> bool {
        matches!(&self.backend, Backend::Uring(u) if u.supports(call))
    }

    /// The worker pool: the backend's own, or one started now.
    fn pool(&self) -> &threads::Pool {
        match &self.backend {
            Backend::Threads(p) => p,
            #[cfg(target_os = "linux")]
            Backend::Linux(_, p) => p,
            #[allow(unreachable_patterns)]
            _ => self.pool.get_or_init(|| threads::Pool::new(WORKERS)),
        }
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
            let direct = is_direct(&fd);
            // Every backend does its I/O on `buf[start..]`, aligned for O_DIRECT.
            let (buf, start) = window::open(kind, direct, buf);
            let (n, buf) = match backend {
                #[cfg(target_os = "linux")]
                Backend::Uring(u) => Pending::Uring(u.submit(kind, fd, offset, buf, start, permit)),
                #[cfg(any(target_os = "linux", target_os = "freebsd"))]
                Backend::Posix(p) => Pending::Posix(p.submit(kind, fd, offset, buf, start, permit)),
                #[cfg(target_os = "linux")]
                Backend::Linux(k, _) if direct => {
                    Pending::Linux(k.submit(kind, fd, offset, buf, start, permit))
                }
                #[cfg(target_os = "linux")]
                Backend::Linux(_, p) => {
                    Pending::Threads(p.submit(kind, fd, offset, buf, start, permit))
                }
                Backend::Threads(p) => {
                    Pending::Threads(p.submit(kind, fd, offset, buf, start, permit))
                }
            }
            .await?;
            Ok((n, window::close(buf, start, n)))
        }
    }

    /// Hands the ops queued since the last call to the kernel (one system call for
    /// all). The mainloop calls it before it sleeps.
    pub(crate) fn flush(&self) {
        match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Uring(u) => u.flush(),
            #[cfg(any(target_os = "linux", target_os = "freebsd"))]
            Backend::Posix(p) => p.flush(),
            #[cfg(target_os = "linux")]
            Backend::Linux(k, _) => k.flush(),
            Backend::Threads(_) => {}
        }
    }

    /// Whether completions wait to be reaped, seen without a system call (io_uring:
    /// a peek at the completion ring). The loop's spin asks this, so a completion
    /// that lands while it spins is reaped at once instead of after the spin. The
    /// threads backend wakes its continuations directly and always says false; POSIX
    /// and kernel AIO are seen through the poller.
    pub(crate) fn has_completions(&self) -> bool {
        match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Uring(u) => u.has_completions(),
            // Their completions come as poller events (a signalfd or an eventfd), which
            // the loop looks at right after the spin.
            #[cfg(any(target_os = "linux", target_os = "freebsd"))]
            Backend::Posix(_) => false,
            #[cfg(target_os = "linux")]
            Backend::Linux(..) => false,
            Backend::Threads(_) => false,
        }
    }

    /// Reaps completions (the backend's poller event fired).
    pub(crate) fn reap(&self) {
        match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Uring(u) => u.reap(),
            #[cfg(any(target_os = "linux", target_os = "freebsd"))]
            Backend::Posix(p) => p.reap(),
            #[cfg(target_os = "linux")]
            Backend::Linux(k, _) => k.reap(),
            Backend::Threads(_) => {}
        }
    }
}

/// Starts the backend `choice` names.
fn start(
    choice: AioBackend,
    poller: &mut Poller,
    token: crate::event::Token,
    cap: u32,
    signal: Option<i32>,
) -> io::Result<Backend> {
    let _ = (&poller, token, cap, signal);
    match choice {
        #[cfg(target_os = "linux")]
        AioBackend::Auto => match uring::Uring::new(poller, token, cap) {
            Ok(u) => Ok(Backend::Uring(u)),
            Err(e) => {
                log::info!("io_uring unavailable ({e}); file I/O uses worker threads");
                Ok(Backend::Threads(threads::Pool::new(WORKERS)))
            }
        },
        #[cfg(target_os = "linux")]
        AioBackend::Uring => Ok(Backend::Uring(uring::Uring::new(poller, token, cap)?)),
        #[cfg(target_os = "linux")]
        AioBackend::Posix => {
            let signo = signal.unwrap_or_else(rtsignal::default_signal);
            Ok(Backend::Posix(posix::Posix::new(poller, token, signo)?))
        }
        #[cfg(target_os = "freebsd")]
        AioBackend::Posix => Ok(Backend::Posix(posix::Posix::new(poller, token, 0)?)),
        #[cfg(target_os = "linux")]
        AioBackend::Linux => Ok(Backend::Linux(
            linux::Kaio::new(poller, token, cap)?,
            threads::Pool::new(WORKERS),
        )),
        AioBackend::Threads => Ok(Backend::Threads(threads::Pool::new(WORKERS))),
        #[allow(unreachable_patterns)]
        _ => Err(io::Error::from_raw_os_error(libc::ENOSYS)),
    }
}

/// Blocks POSIX AIO's completion signal in the calling thread and installs its
/// handler, if `choice` is POSIX AIO on Linux; the mount calls it before the framework
/// starts any thread, so they all inherit the blocked signal.
pub(crate) fn prepare(choice: AioBackend, signal: Option<i32>) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    if choice.resolve() == AioBackend::Posix {
        return rtsignal::prepare(signal.unwrap_or_else(rtsignal::default_signal));
    }
    let _ = (choice, signal);
    Ok(())
}

/// Whether `fd` was opened O_DIRECT: its I/O then needs an aligned buffer
/// (`window.rs`), and kernel AIO is asynchronous only then.
#[cfg(target_os = "linux")]
fn is_direct(fd: &OwnedFd) -> bool {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).is_ok_and(|fl| fl & libc::O_DIRECT != 0)
}

/// FreeBSD's O_DIRECT asks for no alignment, and there is no kernel AIO backend.
#[cfg(not(target_os = "linux"))]
fn is_direct(_fd: &OwnedFd) -> bool {
    false
}

/// An I/O under way: resolves to (bytes, buffer).
enum Pending {
    #[cfg(target_os = "linux")]
    Uring(uring::Op),
    #[cfg(any(target_os = "linux", target_os = "freebsd"))]
    Posix(posix::Op),
    #[cfg(target_os = "linux")]
    Linux(linux::Op),
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
            #[cfg(any(target_os = "linux", target_os = "freebsd"))]
            Pending::Posix(op) => std::pin::Pin::new(op).poll(cx),
            #[cfg(target_os = "linux")]
            Pending::Linux(op) => std::pin::Pin::new(op).poll(cx),
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
        let aio = Aio::new(
            &mut poller,
            crate::event::Token(1),
            depth,
            AioBackend::Uring,
            None,
        );
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

/// Every backend, through the poller as the mainloop drives it: data round trips and
/// errno equality.
#[cfg(all(test, target_os = "linux"))]
mod every_backend {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    use std::time::{Duration, Instant};

    const ALL: [AioBackend; 4] = [
        AioBackend::Uring,
        AioBackend::Posix,
        AioBackend::Linux,
        AioBackend::Threads,
    ];

    fn start(backend: AioBackend) -> (Aio, Poller) {
        let mut poller = Poller::new().unwrap();
        let aio = Aio::new(&mut poller, crate::event::Token(1), 64, backend, None);
        let want = match backend {
            AioBackend::Uring => "io_uring",
            AioBackend::Posix => "posix-aio",
            AioBackend::Linux => "linux-aio",
            _ => "threads",
        };
        assert_eq!(aio.backend(), want, "{backend:?} starts here");
        (aio, poller)
    }

    /// Runs `fut` as the mainloop would: flush, sleep in the poller, reap.
    fn run<T>(aio: &Aio, poller: &mut Poller, fut: impl Future<Output = T>) -> T {
        let mut fut = pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        let mut events = crate::event::Events::with_capacity(8);
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
            assert!(Instant::now() < end, "the op never completed");
            aio.flush();
            poller
                .poll(&mut events, Some(Duration::from_millis(20)))
                .unwrap();
            aio.reap();
        }
    }

    /// A file on the root file system (O_DIRECT works there; not on every tmpfs),
    /// unlinked at once. `direct`: opened O_DIRECT.
    fn scratch(direct: bool) -> Arc<OwnedFd> {
        try_scratch(direct).unwrap()
    }

    /// `scratch`, or the open's error (EINVAL: the file system has no O_DIRECT).
    fn try_scratch(direct: bool) -> io::Result<Arc<OwnedFd>> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = format!("/var/tmp/puffs-aio-{}-{n}", std::process::id());
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(if direct { libc::O_DIRECT } else { 0 })
            .open(&path);
        let _ = std::fs::remove_file(&path);
        Ok(Arc::new(f?.into()))
    }

    fn pattern(len: usize, seed: usize) -> Vec<u8> {
        (0..len).map(|i| ((i * 31 + seed) % 251) as u8).collect()
    }

    #[test]
    fn every_backend_writes_syncs_and_reads_back() {
        for backend in ALL {
            let (aio, mut poller) = start(backend);
            // O_DIRECT wants aligned buffers: the front arranges them for every backend.
            for direct in [false, true] {
                let fd = match try_scratch(direct) {
                    Ok(fd) => fd,
                    Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => {
                        println!("skipping O_DIRECT: /var/tmp does not support it ({e})");
                        continue;
                    }
                    Err(e) => panic!("scratch file: {e}"),
                };
                let data = pattern(256 * 1024, direct as usize);
                let n = run(&aio, &mut poller, aio.write_at(&fd, 8192, data.clone()));
                assert_eq!(n.unwrap(), data.len(), "{backend:?} direct={direct}");
                run(&aio, &mut poller, aio.fsync(&fd, true))
                    .unwrap_or_else(|e| panic!("{backend:?} direct={direct}: {e}"));
                run(&aio, &mut poller, aio.fsync(&fd, false)).unwrap();
                let back = run(&aio, &mut poller, aio.read_at(&fd, 8192, 300 * 1024)).unwrap();
                assert!(
                    back == data,
                    "{backend:?} direct={direct}: read back differs"
                );
                let hole = run(&aio, &mut poller, aio.read_at(&fd, 0, 4096)).unwrap();
                assert!(
                    hole == vec![0; 4096],
                    "{backend:?}: the hole reads as zeros"
                );
            }
        }
    }

    #[test]
    fn many_ops_at_once_all_complete_with_their_own_data() {
        for backend in ALL {
            let (aio, mut poller) = start(backend);
            let fd = scratch(backend == AioBackend::Linux);
            let writes: Vec<_> = (0..100)
                .map(|i| aio.write_at(&fd, i * 4096, pattern(4096, i as usize)))
                .collect();
            let all = async {
                let mut out = Vec::new();
                for w in writes {
                    out.push(w.await);
                }
                out
            };
            for r in run(&aio, &mut poller, all) {
                assert_eq!(r.unwrap(), 4096, "{backend:?}");
            }
            let reads: Vec<_> = (0..100).map(|i| aio.read_at(&fd, i * 4096, 4096)).collect();
            let all = async {
                let mut out = Vec::new();
                for r in reads {
                    out.push(r.await);
                }
                out
            };
            for (i, r) in run(&aio, &mut poller, all).into_iter().enumerate() {
                assert!(r.unwrap() == pattern(4096, i), "{backend:?}: block {i}");
            }
        }
    }

    #[test]
    fn an_io_error_is_the_same_errno_from_every_backend() {
        for backend in ALL {
            let (aio, mut poller) = start(backend);
            // Writing to a read-only fd (O_DIRECT, so kernel AIO takes it too).
            let path = format!("/var/tmp/puffs-aio-ro-{}", std::process::id());
            std::fs::write(&path, vec![1u8; 4096]).unwrap();
            let ro: Arc<OwnedFd> = Arc::new(
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECT)
                    .open(&path)
                    .unwrap()
                    .into(),
            );
            std::fs::remove_file(&path).unwrap();
            let e = run(&aio, &mut poller, aio.write_at(&ro, 0, vec![0; 4096])).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{backend:?}: {e}");
            // Reading a directory.
            let dir: Arc<OwnedFd> = Arc::new(std::fs::File::open("/var/tmp").unwrap().into());
            let e = run(&aio, &mut poller, aio.read_at(&dir, 0, 4096)).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EISDIR), "{backend:?}: {e}");
        }
    }

    #[test]
    fn dropping_the_aio_waits_for_ops_still_in_flight() {
        for backend in [AioBackend::Posix, AioBackend::Linux] {
            let (aio, mut poller) = start(backend);
            let fd = scratch(true);
            let mut ops: Vec<_> = (0..32)
                .map(|i| Box::pin(aio.write_at(&fd, i * 65536, vec![7; 65536])))
                .collect();
            let mut cx = Context::from_waker(Waker::noop());
            for op in &mut ops {
                assert!(op.as_mut().poll(&mut cx).is_pending());
            }
            aio.flush();
            drop(ops); // abandoned: their buffers now belong to the backend
            let _ = poller.poll(
                &mut crate::event::Events::with_capacity(8),
                Some(Duration::ZERO),
            );
            drop(aio); // waits for every op before freeing
            assert_eq!(
                Arc::strong_count(&fd),
                1,
                "{backend:?}: ops' fd refs are gone"
            );
        }
    }

    /// The child half of the next test: 64 reads at once, left unreaped for a while
    /// (so every completion signal stays queued), then collected.
    #[test]
    fn sigpending_child() {
        if std::env::var_os("PUFFS_SIGPENDING_CHILD").is_none() {
            return; // run by the test below only
        }
        let (aio, mut poller) = start(AioBackend::Posix);
        let fd = scratch(false);
        let data = pattern(64 * 4096, 3);
        run(&aio, &mut poller, aio.write_at(&fd, 0, data.clone())).unwrap();
        let mut reads: Vec<_> = (0..64)
            .map(|i| Box::pin(aio.read_at(&fd, i * 4096, 4096)))
            .collect();
        let mut cx = Context::from_waker(Waker::noop());
        for r in &mut reads {
            assert!(r.as_mut().poll(&mut cx).is_pending());
        }
        aio.flush();
        std::thread::sleep(Duration::from_millis(300));
        let all = async {
            let mut out = Vec::new();
            for r in reads {
                out.push(r.await);
            }
            out
        };
        for (i, r) in run(&aio, &mut poller, all).into_iter().enumerate() {
            let got = r.unwrap_or_else(|e| panic!("read {i}: {e}"));
            assert!(got[..] == data[i * 4096..][..4096], "read {i}");
        }
        println!("sigpending child done");
    }

    /// Under RLIMIT_SIGPENDING 8, with the signal blocked in every thread: glibc turns
    /// an op whose completion signal cannot be queued into EAGAIN, so POSIX AIO keeps
    /// its in-flight ops at a quarter of the limit.
    #[test]
    fn posix_aio_in_flight_stays_below_rlimit_sigpending() {
        use std::os::unix::process::CommandExt;
        let sig = rtsignal::default_signal();
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "aio::every_backend::sigpending_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PUFFS_SIGPENDING_CHILD", "1");
        let setup = move || {
            let lim = libc::rlimit {
                rlim_cur: 8,
                rlim_max: 8,
            };
            // SAFETY: plain system calls on initialised arguments, in the child.
            unsafe {
                if libc::setrlimit(libc::RLIMIT_SIGPENDING, &lim) != 0 {
                    return Err(io::Error::last_os_error());
                }
                let mut set = std::mem::zeroed::<libc::sigset_t>();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, sig);
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            }
            Ok(())
        };
        // SAFETY: `setup` makes only async-signal-safe system calls.
        unsafe { cmd.pre_exec(setup) };
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.contains("sigpending child done"),
            "{:?}\n{text}",
            out.status
        );
    }

    /// A blocking call runs on a worker: the loop keeps serving I/O meanwhile, and
    /// the call's result comes back.
    #[test]
    fn a_blocking_call_does_not_stall_other_io() {
        for backend in ALL {
            let (aio, mut poller) = start(backend);
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let slow = aio.blocking(move || {
                rx.recv_timeout(Duration::from_secs(5)).ok(); // a stuck disk
                nix::sys::stat::stat("/var/tmp").map(|st| st.st_mode & libc::S_IFMT)
            });
            let mut slow = Box::pin(slow);
            let mut cx = Context::from_waker(Waker::noop());
            assert!(slow.as_mut().poll(&mut cx).is_pending());
            let fd = scratch(false);
            let n = run(&aio, &mut poller, aio.write_at(&fd, 0, vec![1; 4096]));
            assert_eq!(n.unwrap(), 4096, "{backend:?}: I/O went on meanwhile");
            assert!(
                slow.as_mut().poll(&mut cx).is_pending(),
                "{backend:?}: still stuck"
            );
            tx.send(()).unwrap();
            let mode = run(&aio, &mut poller, slow).unwrap().unwrap();
            assert_eq!(mode, libc::S_IFDIR, "{backend:?}");
        }
    }

    #[test]
    fn metadata_calls_give_the_same_results_and_errnos_from_every_backend() {
        use std::ffi::CString;
        for backend in ALL {
            let (aio, mut poller) = start(backend);
            let dir = format!("/var/tmp/puffs-meta-{}-{backend:?}", std::process::id());
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(format!("{dir}/a"), b"x").unwrap();
            let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
            let d: Arc<OwnedFd> = Arc::new(
                nix::fcntl::open(
                    dir.as_str(),
                    nix::fcntl::OFlag::from_bits_truncate(flags),
                    nix::sys::stat::Mode::empty(),
                )
                .unwrap(),
            );
            let name = |n: &str| CString::new(n).unwrap();
            let open = |n: &str| MetaCall::Open {
                dir: Arc::clone(&d),
                name: name(n),
                flags: libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                resolve: libc::RESOLVE_BENEATH,
            };
            let fd = run(&aio, &mut poller, aio.meta(open("a"))).unwrap();
            // SAFETY: a new fd from openat2, ours alone.
            drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
            let err = |r: io::Result<i32>| r.unwrap_err().raw_os_error();
            assert_eq!(
                err(run(&aio, &mut poller, aio.meta(open("none")))),
                Some(libc::ENOENT)
            );
            assert_eq!(
                err(run(&aio, &mut poller, aio.meta(open("../x")))),
                Some(libc::EXDEV),
                "{backend:?}: RESOLVE_BENEATH"
            );
            let getxattr = MetaCall::GetXattr {
                fd: Arc::clone(&d),
                path: name(&format!("{dir}/a")),
                name: name("user.none"),
            };
            let got = run(&aio, &mut poller, aio.meta_into(getxattr, vec![0; 64]));
            assert_eq!(err(got.map(|(n, _)| n)), Some(libc::ENODATA), "{backend:?}");
            let rename = MetaCall::Rename {
                dir: Arc::clone(&d),
                name: name("a"),
                newdir: Arc::clone(&d),
                newname: name("b"),
                flags: 0,
            };
            assert_eq!(run(&aio, &mut poller, aio.meta(rename)).unwrap(), 0);
            let unlink = |n: &str| MetaCall::Unlink {
                dir: Arc::clone(&d),
                name: name(n),
                flags: 0,
            };
            assert_eq!(
                err(run(&aio, &mut poller, aio.meta(unlink("a")))),
                Some(libc::ENOENT)
            );
            assert_eq!(run(&aio, &mut poller, aio.meta(unlink("b"))).unwrap(), 0);
            std::fs::remove_dir(&dir).unwrap();
        }
    }
}
