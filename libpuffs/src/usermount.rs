//! `PuffsUserMount` (puffs_usermount): the public builder and its states, as types so
//! that no call can come at the wrong time:
//!
//! - configure: [`PuffsUserMount`] holds the file system and every setting (each a
//!   method that takes and returns it), and may `daemon()`;
//! - `mount()` -> [`Mounted`]: the mount is up; `exit_handle()` and `notifier()` reach
//!   it from other threads, `mainloop()` serves it;
//! - done: `mainloop(self)` consumed it and returns once the fs is unmounted.
//!
//! Settings cannot change once mounted, and the loop cannot run before mount: both
//! are compile errors (the examples on [`PuffsUserMount`] are tested as such).

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::attr::{Attr, Statvfs};
use crate::cx::Cx;
use crate::daemon::Daemon;
use crate::errno::Errno;
use crate::error::Error;
use crate::exit::ExitHandle;
use crate::kernel::{self, Inbox, MountParams, Session};
use crate::mainloop::{LoopFn, Served};
use crate::mount_flags::MountFlags;
use crate::notify::Notifier;
use crate::ops::{Cred, Op, Ops};
use crate::options::MountOptions;
use crate::reactor::Source;
use crate::runtime::{Runtime, Settings};
use crate::signals::Signals;

/// A file system and its settings, before mount: create it, adjust settings,
/// optionally `daemon()`, then `mount()` it, which gives the [`Mounted`] value that
/// runs the mainloop.
///
/// Settings cannot change once mounted, and the loop cannot run before mount: both
/// are compile errors.
///
/// ```compile_fail,E0599
/// # use puffs::*;
/// # struct Hello;
/// # #[puffs::ops] impl Ops for Hello { type Node = (); type Key = u64; fn root(&self) -> (u64, ()) { (1, ()) } }
/// let pu = PuffsUserMount::new(Hello, "hellofs", "hello");
/// pu.mainloop() // no mainloop before mount
/// # ; Ok::<(), puffs::Error>(())
/// ```
///
/// ```compile_fail,E0599
/// # use puffs::*;
/// # struct Hello;
/// # #[puffs::ops] impl Ops for Hello { type Node = (); type Key = u64; fn root(&self) -> (u64, ()) { (1, ()) } }
/// let mounted = PuffsUserMount::new(Hello, "hellofs", "hello").mount("/mnt")?;
/// let mounted = mounted.max_write(4096); // no settings once mounted
/// # Ok::<(), puffs::Error>(())
/// ```
///
/// ```compile_fail,E0599
/// # use puffs::*;
/// # struct Hello;
/// # #[puffs::ops] impl Ops for Hello { type Node = (); type Key = u64; fn root(&self) -> (u64, ()) { (1, ()) } }
/// let mounted = PuffsUserMount::new(Hello, "hellofs", "hello").mount("/mnt")?;
/// let mounted = mounted.daemon()?; // daemonizing comes before mount
/// # Ok::<(), puffs::Error>(())
/// ```
///
/// The same lines in the right order compile (the tests above fail for the reason
/// they show, not for a typo):
///
/// ```no_run
/// # use puffs::*;
/// # struct Hello;
/// # #[puffs::ops] impl Ops for Hello { type Node = (); type Key = u64; fn root(&self) -> (u64, ()) { (1, ()) } }
/// let pu = PuffsUserMount::new(Hello, "hellofs", "hello").max_write(4096);
/// let pu = pu.daemon()?;
/// let mounted = pu.mount("/mnt")?;
/// mounted.mainloop()?;
/// # Ok::<(), puffs::Error>(())
/// ```
pub struct PuffsUserMount<F: Ops> {
    fs: F,
    typename: String,
    source: String,
    settings: Settings,
    loop_fn: Option<LoopFn<F>>,
    /// Handed out before mount (refusing with ENOTCONN), connected by `mount`.
    notifier: Notifier,
    daemon: Option<Daemon>,
}

impl<F: Ops> PuffsUserMount<F> {
    /// A mount of `fs`, of type `typename` (shown as fuse.TYPENAME), from `source` (the
    /// "mntfromname": a device, a host:path, or "none"). Nothing is opened or started
    /// until `mount`.
    pub fn new(fs: F, typename: &str, source: &str) -> Self {
        PuffsUserMount {
            fs,
            typename: typename.to_owned(),
            source: source.to_owned(),
            settings: Settings::default(),
            loop_fn: None,
            notifier: Notifier::default(),
            daemon: None,
        }
    }

    /// Applies parsed standard mount options (ro, nosuid, timeouts, max_write, ...).
    pub fn options(mut self, o: &MountOptions) -> Self {
        let s = &mut self.settings;
        let f = &mut s.flags;
        f.ro |= o.ro;
        f.nosuid |= o.nosuid;
        f.nodev |= o.nodev;
        f.noexec |= o.noexec;
        f.noatime |= o.noatime;
        f.allow_other |= o.allow_other;
        f.default_permissions |= o.default_permissions;
        f.auto_unmount |= o.auto_unmount;
        f.overmount |= o.overmount;
        if o.fsname.is_some() {
            f.fsname = o.fsname.clone();
        }
        if o.subtype.is_some() {
            f.subtype = o.subtype.clone();
        }
        s.export_support |= o.export;
        if let Some(w) = o.max_write {
            s.max_write = w;
        }
        if let Some(r) = o.max_readahead {
            s.max_readahead = Some(r);
        }
        if let Some(t) = o.entry_timeout {
            s.entry_timeout = t;
        }
        if let Some(t) = o.attr_timeout {
            s.attr_timeout = t;
        }
        if let Some(path) = &o.logfile {
            s.logfile = Some(path.into());
        }
        if let Some(b) = o.aio.as_deref().and_then(|b| b.parse().ok()) {
            s.aio_backend = b;
        }
        self
    }

    /// Mount flags, replacing all of them.
    pub fn flags(mut self, flags: MountFlags) -> Self {
        self.settings.flags = flags;
        self
    }

    /// Mounts read-only (the kernel refuses writes with EROFS before they reach the fs).
    pub fn read_only(mut self, on: bool) -> Self {
        self.settings.flags.ro = on;
        self
    }

    /// Asks the kernel to check permissions itself from the mode bits.
    pub fn default_permissions(mut self, on: bool) -> Self {
        self.settings.flags.default_permissions = on;
        self
    }

    /// Attributes answered for the root when the fs does not implement getattr.
    pub fn root_attr(mut self, attr: Attr) -> Self {
        self.settings.root_attr = attr;
        self
    }

    /// The statvfs answer when the fs does not implement statvfs.
    pub fn statvfs(mut self, s: Statvfs) -> Self {
        self.settings.statvfs = s;
        self
    }

    /// The largest write request the kernel sends (default 1 MiB).
    pub fn max_write(mut self, bytes: u32) -> Self {
        self.settings.max_write = bytes;
        self
    }

    /// The kernel's readahead window for the mount: how far ahead of a sequential
    /// reader it sends READs (default: the kernel's, 128 KiB). FUSE's INIT can only
    /// lower the kernel's default; a larger window is written to the mount's
    /// `/sys/class/bdi/MAJOR:MINOR/read_ahead_kb` once it is up, which needs root
    /// (otherwise a warning is logged and the default stays). Each READ is at most
    /// [`max_write`](Self::max_write) bytes: fuser derives FUSE's `max_pages` from it.
    pub fn max_readahead(mut self, bytes: u32) -> Self {
        self.settings.max_readahead = Some(bytes);
        self
    }

    /// How long the kernel caches names (default 1 s).
    pub fn entry_timeout(mut self, d: Duration) -> Self {
        self.settings.entry_timeout = d;
        self
    }

    /// How long the kernel caches attributes (default 1 s).
    pub fn attr_timeout(mut self, d: Duration) -> Self {
        self.settings.attr_timeout = d;
        self
    }

    /// Lets the kernel cache writes (FUSE writeback cache): faster small writes, but
    /// the fs then sees writes late and must not rely on O_APPEND offsets.
    pub fn writeback_cache(mut self, on: bool) -> Self {
        self.settings.writeback_cache = on;
        self
    }

    /// Asks the kernel for export support (FUSE_EXPORT_SUPPORT; `-o export`): file
    /// handles (`name_to_handle_at`, an NFS server's) then outlive the kernel's cache,
    /// which finds a forgotten node through [`Ops::lookup_ino`] and a directory's
    /// parent through a lookup of "..". The fs must implement `lookup_ino` and keep
    /// its inode numbers (`Attr::ino`) and generations (`Entry::generation`) stable.
    pub fn export_support(mut self, on: bool) -> Self {
        self.settings.export_support = on;
        self
    }

    /// Asks the kernel for FUSE passthrough (Linux 6.9+, a privileged server): opens
    /// answered with an [`Open::passthrough`](crate::Open::passthrough) backing file
    /// then have their reads, writes and mmap done by the kernel on it. Where the
    /// kernel does not offer it, those opens are answered as ordinary ones (logged).
    /// Default off.
    pub fn passthrough(mut self, on: bool) -> Self {
        self.settings.passthrough = on;
        self
    }

    /// A function called once each mainloop iteration (puffs_ml_setloopfn).
    pub fn loop_fn(mut self, f: impl FnMut(&Cx<F>) + 'static) -> Self {
        self.loop_fn = Some(Box::new(f));
        self
    }

    /// The longest the loop sleeps between iterations (default: until an event).
    pub fn loop_timeout(mut self, d: Duration) -> Self {
        self.settings.loop_timeout = Some(d);
        self
    }

    /// At most this many requests run at once; the rest wait in the queue.
    pub fn max_inflight(mut self, n: usize) -> Self {
        self.settings.max_inflight = n.max(1);
        self
    }

    /// Whether SIGINT, SIGTERM and SIGHUP unmount cleanly (default on). The handler is
    /// installed by `mount`, just before the kernel mount, and the old dispositions are
    /// put back when the mount fails, when `mainloop` returns, or when the [`Mounted`]
    /// value is dropped; no thread's signal mask is touched. Turn it off when the
    /// process has other uses for them.
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.settings.handle_signals = on;
        self
    }

    /// How long the loop may spin waiting for the next request before it sleeps, while
    /// requests arrive back to back (default 50 us; zero: never spin). Spinning saves a
    /// vCPU wakeup per request but costs CPU that other processes may want.
    pub fn spin(mut self, d: Duration) -> Self {
        self.settings.spin = d;
        self
    }

    /// Which backend carries `Cx::aio` (default: io_uring where the kernel allows it,
    /// else worker threads; `-o aio=` sets it too). One that cannot start falls back
    /// to worker threads; the one in use is logged when the mount first does I/O.
    pub fn aio_backend(mut self, backend: crate::aio::AioBackend) -> Self {
        self.settings.aio_backend = backend;
        self
    }

    /// The realtime signal POSIX AIO completions arrive as on Linux (default
    /// SIGRTMIN+4). `mount` blocks it in the calling thread and installs a handler
    /// for it; it fails if the signal is not a realtime one or already has a handler.
    pub fn aio_signal(mut self, signo: i32) -> Self {
        self.settings.aio_signal = Some(signo);
        self
    }

    /// Use worker threads for `Cx::aio` (true), or the default backend (false).
    pub fn aio_threads(self, on: bool) -> Self {
        self.aio_backend(if on {
            crate::aio::AioBackend::Threads
        } else {
            crate::aio::AioBackend::Auto
        })
    }

    /// Called before each op runs.
    pub fn pre_op(mut self, f: impl Fn(Op, &Cred) + 'static) -> Self {
        self.settings.pre_op = Some(Box::new(f));
        self
    }

    /// Called after each op is answered, with its errno if it failed.
    pub fn post_op(mut self, f: impl Fn(Op, &Cred, Option<Errno>) + 'static) -> Self {
        self.settings.post_op = Some(Box::new(f));
        self
    }

    /// Called when the framework rejects an answer of the fs (puffs_set_errnotify).
    pub fn errnotify(mut self, f: impl Fn(Op, Errno, &str) + 'static) -> Self {
        self.settings.errnotify = Some(Box::new(f));
        self
    }

    /// The file system value.
    pub fn fs(&self) -> &F {
        &self.fs
    }

    /// The mount's kernel notifications (puffs_inval_*), for any thread: they go out
    /// while the file system is mounted and are refused (ENOTCONN) before and after.
    pub fn notifier(&self) -> Notifier {
        self.notifier.clone()
    }

    /// Forks into the background (puffs_daemon). Call before `mount`, before any other
    /// thread exists. The parent waits until `mount` succeeds (exit 0) or fails (prints
    /// the error, exits 1); it never returns. The child gets the builder back and goes on.
    pub fn daemon(self) -> Result<Self, Error> {
        self.daemonize(true)
    }

    /// `daemon()`, but the child keeps its stdin, stdout and stderr (for debugging a
    /// daemon, or a supervisor that collects its output).
    pub fn daemon_keep_stdio(self) -> Result<Self, Error> {
        self.daemonize(false)
    }

    fn daemonize(mut self, detach_stdio: bool) -> Result<Self, Error> {
        if self.daemon.is_some() {
            return Err(Error::State("daemon() must be called once"));
        }
        let log = match &self.settings.logfile {
            Some(path) => Some(crate::daemon::open_logfile(path)?),
            None => None,
        };
        self.daemon = Some(Daemon::fork(detach_stdio, log)?);
        Ok(self)
    }

    /// Mounts on `dir`. Returns once the kernel has finished the INIT handshake: from
    /// then on the mount is up and requests queue for the mainloop. A daemon's parent
    /// learns the outcome here.
    pub fn mount(self, dir: impl AsRef<Path>) -> Result<Mounted<F>, Error> {
        let dir = dir.as_ref();
        let PuffsUserMount {
            fs,
            typename,
            source,
            settings,
            loop_fn,
            notifier,
            daemon,
        } = self;
        let result = refuse_stacked(&settings, dir)
            .and_then(|()| prepare_aio(&settings))
            .and_then(|()| Runtime::new(fs, (typename, source), settings, notifier))
            .and_then(|rt| Mounted::start(rt, dir, loop_fn));
        match (&result, daemon) {
            (Ok(_), Some(d)) => d.report_success(),
            (Err(e), Some(d)) => d.report_failure(&e.to_string()),
            (_, None) => {}
        }
        result
    }
}

impl<F: Ops> std::fmt::Debug for PuffsUserMount<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PuffsUserMount")
            .field("typename", &self.typename)
            .field("source", &self.source)
            .field("daemon", &self.daemon.is_some())
            .finish_non_exhaustive()
    }
}

/// Readies what the aio backend needs before the framework starts any thread
/// (POSIX AIO's completion signal, blocked here so every later thread inherits it).
fn prepare_aio(settings: &Settings) -> Result<(), Error> {
    Ok(crate::aio::prepare(
        settings.aio_backend,
        settings.aio_signal,
    )?)
}

fn refuse_stacked(settings: &Settings, dir: &Path) -> Result<(), Error> {
    if settings.flags.overmount {
        return Ok(());
    }
    crate::stacking::refuse_stacked(dir)
}

/// A mounted file system: reach it from other threads (`exit_handle`, `notifier`),
/// then serve it with `mainloop`. Dropped without running the loop, it unmounts.
pub struct Mounted<F: Ops> {
    rt: Rc<Runtime<F>>,
    inbox: Arc<Inbox>,
    /// Taken by `mainloop`; still here on drop: the loop never ran.
    session: Option<Session>,
    /// SIGINT/SIGTERM/SIGHUP handling, from a successful mount until the loop returns.
    signals: Option<Signals>,
    loop_fn: Option<LoopFn<F>>,
}

impl<F: Ops> Mounted<F> {
    /// Starts handling signals, then mounts `rt`'s file system on `dir`; on failure
    /// nothing is left behind (no mount, no thread, no handler).
    fn start(rt: Runtime<F>, dir: &Path, loop_fn: Option<LoopFn<F>>) -> Result<Self, Error> {
        let rt = Rc::new(rt);
        let inbox = Arc::new(Inbox::new(Arc::clone(&rt.wakeup)));
        let mounted = catch_signals(&rt).and_then(|signals| {
            // A failed mount drops `signals`, which puts the old dispositions back.
            let session = mount_kernel(&rt, dir, &inbox)?;
            Ok(Mounted {
                rt: Rc::clone(&rt),
                inbox,
                session: Some(session),
                signals,
                loop_fn,
            })
        });
        if mounted.is_err() {
            rt.notifier.close();
        }
        mounted
    }

    /// The file system value.
    pub fn fs(&self) -> &F {
        &self.rt.fs
    }

    /// The mount's kernel notifications (puffs_inval_*), for any thread: they go out
    /// while the file system is mounted and are refused (ENOTCONN) after the loop
    /// returned.
    pub fn notifier(&self) -> Notifier {
        self.rt.notifier.clone()
    }

    /// A handle that stops this mount's mainloop from any thread (`ExitHandle::exit`);
    /// used before the loop runs, the loop returns as soon as it starts.
    pub fn exit_handle(&self) -> ExitHandle {
        ExitHandle {
            flag: self.rt.exit_requested.clone(),
            wakeup: Arc::clone(&self.rt.wakeup),
        }
    }

    /// Serves requests until the file system is unmounted (by `umount`, a signal, an
    /// `ExitHandle` or `Cx::exit`), then returns Ok. Signal handling ends when it
    /// returns, and everything the mount held is freed.
    pub fn mainloop(mut self) -> Result<(), Error> {
        // Only this consuming call and the drop take it: it is always here.
        let Some(mut session) = self.session.take() else {
            return Err(Error::State("the mount's session is gone"));
        };
        let served = crate::mainloop::run(
            &self.rt,
            Served {
                inbox: &self.inbox,
                session: &mut session,
                signals: self.signals.as_ref(),
                loop_fn: self.loop_fn.take(),
            },
        );
        self.signals = None; // the old dispositions are back
        self.rt.notifier.close();
        self.tear_down();
        served
    }

    /// Frees what only the running loop needed, as soon as it returns: the
    /// continuations still parked (their `Cx`s hold the runtime, which holds them: a
    /// cycle that would keep the whole mount alive), then the async I/O, which cancels
    /// and reaps its in-flight ops before freeing their buffers.
    fn tear_down(&mut self) {
        self.rt.exec.clear();
        match Rc::get_mut(&mut self.rt) {
            Some(rt) => drop(rt.aio.take()),
            None => log::error!("the runtime is still shared after the mainloop returned"),
        }
    }
}

impl<F: Ops> std::fmt::Debug for Mounted<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mounted")
            .field("typename", &self.rt.typename)
            .field("source", &self.rt.source)
            .field("mountpoint", &self.session.as_ref().map(|s| &s.mountpoint))
            .finish_non_exhaustive()
    }
}

impl<F: Ops> Drop for Mounted<F> {
    /// A mount whose loop never ran is unmounted (nothing would ever answer it); the
    /// notifier's thread ends either way.
    fn drop(&mut self) {
        if let Some(mut session) = self.session.take() {
            if let Err(e) = session.unmount() {
                log::error!("cannot unmount {}: {e}", session.mountpoint.display());
            }
        }
        self.rt.notifier.close();
    }
}

/// The kernel mount, from the runtime's settings and the file system's constants.
fn mount_kernel<F: Ops>(rt: &Runtime<F>, dir: &Path, inbox: &Arc<Inbox>) -> Result<Session, Error> {
    let s = &rt.settings;
    let params = MountParams {
        typename: &rt.typename,
        source: &rt.source,
        flags: &s.flags,
        opmask: F::OPMASK,
        statvfs: s.statvfs,
        root_attr: s.root_attr,
        max_write: s.max_write,
        max_readahead: s.max_readahead,
        writeback_cache: s.writeback_cache,
        kills_suidgid: F::KILLS_SUIDGID,
        export_support: s.export_support,
        passthrough: s.passthrough,
    };
    kernel::mount(dir, &params, inbox, &rt.notifier)
}

/// Starts handling the termination signals for a mount about to be made: before
/// mount(2), since the mount shows in /proc/mounts from then on, before the INIT
/// handshake, and a signal sent as soon as it shows must only unmount it, never kill
/// the process. A signal caught before the mount is up unmounts it as soon as the loop
/// runs. A mount that fails drops the subscription, which undoes it.
fn catch_signals<F: Ops>(rt: &Runtime<F>) -> Result<Option<Signals>, Error> {
    if !rt.settings.handle_signals {
        return Ok(None);
    }
    let signals = rt
        .reactor
        .with_poller(|p| Signals::install(p, Source::Signals.token()))?;
    Ok(Some(signals))
}
