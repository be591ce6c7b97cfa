//! `PuffsUserMount` (puffs_usermount): the file system value, its settings before
//! mount, its state, and the calls that move it along: `daemon`, `mount`, `mainloop`,
//! `exit` (and `ExitHandle`, which stops the loop from another thread).

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::attr::{Attr, Statvfs};
use crate::cc::{guarded, Executor};
use crate::cx::Cx;
use crate::daemon::Daemon;
use crate::error::Error;
use crate::event::{Poller, Token};
use crate::kernel::{self, Inbox, Session};
use crate::node::{Node, NodeTable};
use crate::notify::Notifier;
use crate::ops::{Cred, Op, Ops};
use crate::options::MountOptions;
use crate::reactor::Reactor;
use crate::signals::Signals;
use crate::wakeup::Wakeup;
use crate::Errno;

/// Where a mount is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    BeforeMount,
    Running,
    Unmounting,
    Unmounted,
}

/// Mount flags handed to the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountFlags {
    pub ro: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
    pub noatime: bool,
    /// Let users other than the mounter in.
    pub allow_other: bool,
    /// The kernel checks permissions from the mode bits (and supplementary groups).
    pub default_permissions: bool,
    /// Unmount when the process dies (through fusermount3).
    pub auto_unmount: bool,
    /// The source shown in /proc/mounts (default: the mount's source name).
    pub fsname: Option<String>,
    /// The type shown as fuse.SUBTYPE (default: the mount's type name).
    pub subtype: Option<String>,
    /// Mount even on a directory that is already a mount point (`-o overmount`).
    pub overmount: bool,
}

type Hook = Box<dyn Fn(Op, &Cred)>;
type PostHook = Box<dyn Fn(Op, &Cred, Option<Errno>)>;
type ErrNotify = Box<dyn Fn(Op, Errno, &str)>;
type LoopFn<F> = Box<dyn FnMut(&Cx<F>)>;

/// Everything set before mount.
pub(crate) struct Settings<F: Ops> {
    pub root_attr: Attr,
    pub statvfs: Statvfs,
    pub max_write: u32,
    pub entry_timeout: Duration,
    pub attr_timeout: Duration,
    pub flags: MountFlags,
    pub writeback_cache: bool,
    pub export_support: bool,
    pub loop_fn: RefCell<Option<LoopFn<F>>>,
    pub loop_timeout: Option<Duration>,
    pub max_inflight: usize,
    pub handle_signals: bool,
    pub spin: Duration,
    pub aio_backend: crate::aio::AioBackend,
    /// POSIX AIO's completion signal on Linux (None: SIGRTMIN+4).
    pub aio_signal: Option<i32>,
    pub pre_op: Option<Hook>,
    pub post_op: Option<PostHook>,
    pub errnotify: Option<ErrNotify>,
    /// Where a daemon's stdout and stderr go instead of /dev/null (`-o logfile=`).
    pub logfile: Option<std::path::PathBuf>,
}

impl<F: Ops> Default for Settings<F> {
    fn default() -> Self {
        Settings {
            root_attr: Attr::new(crate::FileType::Directory, 0o755),
            statvfs: Statvfs::default(),
            max_write: 1 << 20,
            entry_timeout: Duration::from_secs(1),
            attr_timeout: Duration::from_secs(1),
            flags: MountFlags::default(),
            writeback_cache: false,
            export_support: false,
            loop_fn: RefCell::new(None),
            loop_timeout: None,
            max_inflight: 1024,
            handle_signals: true,
            spin: spin_from_env(),
            aio_backend: crate::aio::AioBackend::Auto,
            aio_signal: None,
            pre_op: None,
            post_op: None,
            errnotify: None,
            logfile: None,
        }
    }
}

/// How long the loop may spin for the next request before sleeping, while requests
/// stream (measured: uncached getattr 47 -> 29 us on a 2-vCPU VM; 20 us gains nothing,
/// as the gap between streamed requests is ~28 us). PUFFS_SPIN_US overrides it; 0 turns
/// spinning off.
const DEFAULT_SPIN: Duration = Duration::from_micros(50);

fn spin_from_env() -> Duration {
    match std::env::var("PUFFS_SPIN_US")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(us) => Duration::from_micros(us),
        None => DEFAULT_SPIN,
    }
}

/// The running mount's state, shared by the mainloop and every continuation's `Cx`.
/// It lives on the loop thread only.
pub(crate) struct Runtime<F: Ops> {
    pub fs: F,
    pub typename: String,
    pub source: String,
    pub nodes: RefCell<NodeTable<F>>,
    pub exec: Executor,
    pub reactor: Rc<Reactor>,
    pub wakeup: Arc<Wakeup>,
    pub state: Cell<State>,
    pub exit_requested: ExitFlag,
    pub settings: Settings<F>,
    /// Async file I/O, set up on first use.
    pub aio: std::cell::OnceCell<crate::aio::Aio>,
    /// Forget frames and the inodes they named (for tests: a batch is one frame).
    pub forgets: Cell<ForgetStats>,
    /// Kernel notifications, connected while mounted.
    pub notifier: Notifier,
    /// The open files and directories, by the handles the kernel knows them by.
    pub files: crate::files::Files<F>,
}

/// How many forget frames the loop took, and how many inodes they named.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForgetStats {
    /// Frames (one per FORGET, one per BATCH_FORGET).
    pub frames: u64,
    /// Inodes named by them.
    pub inodes: u64,
}

/// The token of the loop's own wakeup in the poller.
pub(crate) const WAKE_TOKEN: Token = Token(0);
/// The token of async I/O completions.
pub(crate) const AIO_TOKEN: Token = Token(1);
/// The token of the termination signals' pipe (`signals.rs`).
pub(crate) const SIGNAL_TOKEN: Token = Token(2);

/// "Unmount and return", set from the loop thread (`Cx::exit`) or from any thread
/// through an `ExitHandle`.
#[derive(Clone, Default)]
pub(crate) struct ExitFlag(Arc<AtomicBool>);

impl ExitFlag {
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub(crate) fn set(&self, on: bool) {
        self.0.store(on, Ordering::SeqCst);
    }
}

/// Stops a mount from any thread: `exit()` asks its mainloop to unmount cleanly and
/// return, as SIGTERM would. Get one with `PuffsUserMount::exit_handle`; it is `Send`,
/// `Sync` and `Clone`, and outlives the mount harmlessly (calling it after the loop has
/// returned does nothing).
#[derive(Clone)]
pub struct ExitHandle {
    flag: ExitFlag,
    wakeup: Arc<Wakeup>,
}

impl ExitHandle {
    /// Asks the mainloop to unmount and return; returns at once, without waiting.
    pub fn exit(&self) {
        self.flag.set(true);
        // Unconditionally: the loop does not look at the flag between deciding to
        // sleep and sleeping, so a wake that depends on it being asleep could be lost.
        self.wakeup.wake_now();
    }
}

impl std::fmt::Debug for ExitHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExitHandle")
            .field("requested", &self.flag.get())
            .finish()
    }
}

impl<F: Ops> Runtime<F> {
    pub(crate) fn node(&self, ino: u64) -> Option<Rc<Node<F>>> {
        self.nodes.borrow().get(ino).cloned()
    }

    pub(crate) fn ttls(
        &self,
        entry: Option<Duration>,
        attr: Option<Duration>,
    ) -> crate::kernel::Ttls {
        crate::kernel::Ttls {
            entry: entry.unwrap_or(self.settings.entry_timeout),
            attr: attr.unwrap_or(self.settings.attr_timeout),
        }
    }

    /// With `-d`, fuser logs each request with its arguments as it arrives (target
    /// `fuser::request`) and we log its outcome with the caller: one line each. This
    /// one is for tracing the loop.
    pub(crate) fn pre_op(&self, op: Op, cred: &Cred) {
        log::trace!(
            "-> {op:?} uid={} gid={} pid={}",
            cred.uid,
            cred.gid,
            cred.pid
        );
        if let Some(h) = &self.settings.pre_op {
            guarded("the pre-op hook", || h(op, cred));
        }
    }

    pub(crate) fn post_op(&self, op: Op, cred: &Cred, failed: Option<Errno>) {
        let (uid, gid, pid) = (cred.uid, cred.gid, cred.pid);
        match failed {
            None => log::debug!("<- {op:?} ok (uid={uid} gid={gid} pid={pid})"),
            Some(e) => log::debug!("<- {op:?} {e} (uid={uid} gid={gid} pid={pid})"),
        }
        if let Some(h) = &self.settings.post_op {
            guarded("the post-op hook", || h(op, cred, failed));
        }
    }

    /// The file system gave an answer the framework had to reject.
    pub(crate) fn errnotify(&self, op: Op, e: Errno, what: &str) {
        log::error!("{op:?}: file system {what}; answered {e}");
        if let Some(h) = &self.settings.errnotify {
            guarded("the errnotify hook", || h(op, e, what));
        }
    }

    /// The mount's async file I/O, started on first use.
    pub(crate) fn aio(&self) -> &crate::aio::Aio {
        self.aio.get_or_init(|| {
            let depth = self.settings.max_inflight as u32;
            let (backend, signal) = (self.settings.aio_backend, self.settings.aio_signal);
            self.reactor
                .with_poller(|p| crate::aio::Aio::new(p, AIO_TOKEN, depth, backend, signal))
        })
    }

    pub(crate) fn request_exit(&self) {
        self.exit_requested.set(true);
        self.wakeup.wake();
    }

    /// One forget frame (FORGET or a whole BATCH_FORGET): (ino, count) pairs.
    pub(crate) fn forget_frame(&self, list: Vec<(u64, u64)>) {
        let mut f = self.forgets.get();
        f.frames += 1;
        f.inodes += list.len() as u64;
        self.forgets.set(f);
        list.into_iter().for_each(|(ino, n)| self.forget(ino, n));
    }

    /// The kernel dropped `count` lookups of `ino`: reclaim the node if that was all.
    pub(crate) fn forget(&self, ino: u64, count: u64) {
        let gone = self.nodes.borrow_mut().forget(ino, count);
        if let Some(node) = gone {
            guarded("reclaim", || self.fs.reclaim(&node));
        }
    }
}

impl<F: Ops> Drop for PuffsUserMount<F> {
    /// Ends the notifier's thread even when the mainloop never ran.
    fn drop(&mut self) {
        self.rt.notifier.close();
    }
}

/// A file system and its mount: create it, adjust settings, optionally `daemon()`,
/// `mount()`, then run `mainloop()` until it is unmounted.
pub struct PuffsUserMount<F: Ops> {
    rt: Rc<Runtime<F>>,
    inbox: Arc<Inbox>,
    session: Option<Session>,
    daemon: Option<Daemon>,
    /// SIGINT/SIGTERM/SIGHUP handling, from a successful mount until the loop returns.
    signals: Option<Signals>,
}

impl<F: Ops> PuffsUserMount<F> {
    /// A mount of `fs`, of type `typename` (shown as fuse.TYPENAME), from `source` (the
    /// "mntfromname": a device, a host:path, or "none").
    pub fn new(fs: F, typename: &str, source: &str) -> Result<Self, Error> {
        let mut poller = Poller::new()?;
        let wakeup = Arc::new(Wakeup::new(&mut poller, WAKE_TOKEN)?);
        let (key, data) = fs.root();
        let rt = Runtime {
            fs,
            typename: typename.to_owned(),
            source: source.to_owned(),
            nodes: RefCell::new(NodeTable::with_root(key, data)),
            exec: Executor::new(Arc::clone(&wakeup)),
            reactor: Reactor::new(poller),
            wakeup: Arc::clone(&wakeup),
            state: Cell::new(State::BeforeMount),
            exit_requested: ExitFlag::default(),
            settings: Settings::default(),
            aio: std::cell::OnceCell::new(),
            forgets: Cell::new(ForgetStats::default()),
            notifier: Notifier::default(),
            files: Default::default(),
        };
        Ok(PuffsUserMount {
            rt: Rc::new(rt),
            inbox: Arc::new(Inbox::new(wakeup)),
            session: None,
            daemon: None,
            signals: None,
        })
    }

    /// The runtime, for unit tests that run requests without a mount.
    #[cfg(test)]
    pub(crate) fn runtime(&self) -> Rc<Runtime<F>> {
        Rc::clone(&self.rt)
    }

    fn settings(&mut self) -> &mut Settings<F> {
        &mut Rc::get_mut(&mut self.rt)
            .expect("settings change only before the mainloop runs")
            .settings
    }

    /// Applies parsed standard mount options (ro, nosuid, timeouts, max_write, ...).
    pub fn options(mut self, o: &MountOptions) -> Self {
        let s = self.settings();
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
        self.settings().flags = flags;
        self
    }

    /// Mounts read-only (the kernel refuses writes with EROFS before they reach the fs).
    pub fn read_only(mut self, on: bool) -> Self {
        self.settings().flags.ro = on;
        self
    }

    /// Asks the kernel to check permissions itself from the mode bits.
    pub fn default_permissions(mut self, on: bool) -> Self {
        self.settings().flags.default_permissions = on;
        self
    }

    /// Attributes answered for the root when the fs does not implement getattr.
    pub fn root_attr(mut self, attr: Attr) -> Self {
        self.settings().root_attr = attr;
        self
    }

    /// The statvfs answer when the fs does not implement statvfs.
    pub fn statvfs(mut self, s: Statvfs) -> Self {
        self.settings().statvfs = s;
        self
    }

    /// The largest write request the kernel sends (default 1 MiB).
    pub fn max_write(mut self, bytes: u32) -> Self {
        self.settings().max_write = bytes;
        self
    }

    /// How long the kernel caches names (default 1 s).
    pub fn entry_timeout(mut self, d: Duration) -> Self {
        self.settings().entry_timeout = d;
        self
    }

    /// How long the kernel caches attributes (default 1 s).
    pub fn attr_timeout(mut self, d: Duration) -> Self {
        self.settings().attr_timeout = d;
        self
    }

    /// Lets the kernel cache writes (FUSE writeback cache): faster small writes, but
    /// the fs then sees writes late and must not rely on O_APPEND offsets.
    pub fn writeback_cache(mut self, on: bool) -> Self {
        self.settings().writeback_cache = on;
        self
    }

    /// Asks the kernel for export support (FUSE_EXPORT_SUPPORT; `-o export`): file
    /// handles (`name_to_handle_at`, an NFS server's) then outlive the kernel's cache,
    /// which finds a forgotten node through [`Ops::lookup_ino`] and a directory's
    /// parent through a lookup of "..". The fs must implement `lookup_ino` and keep
    /// its inode numbers (`Attr::ino`) and generations (`Entry::generation`) stable.
    pub fn export_support(mut self, on: bool) -> Self {
        self.settings().export_support = on;
        self
    }

    /// A function called once each mainloop iteration (puffs_ml_setloopfn).
    pub fn loop_fn(mut self, f: impl FnMut(&Cx<F>) + 'static) -> Self {
        *self.settings().loop_fn.get_mut() = Some(Box::new(f));
        self
    }

    /// The longest the loop sleeps between iterations (default: until an event).
    pub fn loop_timeout(mut self, d: Duration) -> Self {
        self.settings().loop_timeout = Some(d);
        self
    }

    /// At most this many requests run at once; the rest wait in the queue.
    pub fn max_inflight(mut self, n: usize) -> Self {
        self.settings().max_inflight = n.max(1);
        self
    }

    /// Whether SIGINT, SIGTERM and SIGHUP unmount cleanly (default on). The handler is
    /// installed when `mount` succeeds and the old dispositions are put back when
    /// `mainloop` returns; no thread's signal mask is touched. Turn it off when the
    /// process has other uses for them.
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.settings().handle_signals = on;
        self
    }

    /// How long the loop may spin waiting for the next request before it sleeps, while
    /// requests arrive back to back (default 50 us; zero: never spin). Spinning saves a
    /// vCPU wakeup per request but costs CPU that other processes may want.
    pub fn spin(mut self, d: Duration) -> Self {
        self.settings().spin = d;
        self
    }

    /// Which backend carries `Cx::aio` (default: io_uring where the kernel allows it,
    /// else worker threads; `-o aio=` sets it too). One that cannot start falls back
    /// to worker threads; the one in use is logged when the mount first does I/O.
    pub fn aio_backend(mut self, backend: crate::aio::AioBackend) -> Self {
        self.settings().aio_backend = backend;
        self
    }

    /// The realtime signal POSIX AIO completions arrive as on Linux (default
    /// SIGRTMIN+4). `mount` blocks it in the calling thread and installs a handler
    /// for it; it fails if the signal is not a realtime one or already has a handler.
    pub fn aio_signal(mut self, signo: i32) -> Self {
        self.settings().aio_signal = Some(signo);
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
        self.settings().pre_op = Some(Box::new(f));
        self
    }

    /// Called after each op is answered, with its errno if it failed.
    pub fn post_op(mut self, f: impl Fn(Op, &Cred, Option<Errno>) + 'static) -> Self {
        self.settings().post_op = Some(Box::new(f));
        self
    }

    /// Called when the framework rejects an answer of the fs (puffs_set_errnotify).
    pub fn errnotify(mut self, f: impl Fn(Op, Errno, &str) + 'static) -> Self {
        self.settings().errnotify = Some(Box::new(f));
        self
    }

    pub fn state(&self) -> State {
        self.rt.state.get()
    }

    /// The file system value.
    pub fn fs(&self) -> &F {
        &self.rt.fs
    }

    /// Forks into the background (puffs_daemon). Call before `mount`, before any other
    /// thread exists. The parent waits until `mount` succeeds (exit 0) or fails (prints
    /// the error, exits 1); it never returns. The child returns Ok and goes on.
    pub fn daemon(&mut self) -> Result<(), Error> {
        self.daemonize(true)
    }

    /// `daemon()`, but the child keeps its stdin, stdout and stderr (for debugging a
    /// daemon, or a supervisor that collects its output).
    pub fn daemon_keep_stdio(&mut self) -> Result<(), Error> {
        self.daemonize(false)
    }

    fn daemonize(&mut self, detach_stdio: bool) -> Result<(), Error> {
        if self.state() != State::BeforeMount || self.daemon.is_some() {
            return Err(Error::State("daemon() must be called once, before mount()"));
        }
        let log = match &self.rt.settings.logfile {
            Some(path) => Some(crate::daemon::open_logfile(path)?),
            None => None,
        };
        self.daemon = Some(Daemon::fork(detach_stdio, log)?);
        Ok(())
    }

    /// Mounts on `dir`. Returns once the kernel has finished the INIT handshake: from
    /// then on the mount is up and requests queue for the mainloop.
    pub fn mount(&mut self, dir: impl AsRef<Path>) -> Result<(), Error> {
        if self.state() != State::BeforeMount {
            return Err(Error::State("mount() called twice"));
        }
        let result = self
            .refuse_stacked(dir.as_ref())
            .and_then(|()| self.prepare_aio())
            .and_then(|()| kernel::mount(dir.as_ref(), &self.rt, &self.inbox))
            .and_then(|session| self.catch_signals(session));
        let daemon = self.daemon.take();
        match result {
            Ok(session) => {
                self.session = Some(session);
                self.rt.state.set(State::Running);
                if let Some(d) = daemon {
                    d.report_success();
                }
                Ok(())
            }
            Err(e) => {
                if let Some(d) = daemon {
                    d.report_failure(&e.to_string());
                }
                Err(e)
            }
        }
    }

    /// Readies what the aio backend needs before the framework starts any thread
    /// (POSIX AIO's completion signal, blocked here so every later thread inherits it).
    fn prepare_aio(&self) -> Result<(), Error> {
        let s = &self.rt.settings;
        Ok(crate::aio::prepare(s.aio_backend, s.aio_signal)?)
    }

    fn refuse_stacked(&self, dir: &Path) -> Result<(), Error> {
        if self.rt.settings.flags.overmount {
            return Ok(());
        }
        crate::stacking::refuse_stacked(dir)
    }

    /// Starts handling the termination signals for a mount that is up: before
    /// `mount()` returns (and a daemon's parent reports success), so that a signal sent
    /// as soon as the mount shows can only unmount it, never kill the process. Nothing
    /// is installed for a mount that failed. If it cannot be installed, the mount is
    /// undone and fails.
    fn catch_signals(&mut self, mut session: Session) -> Result<Session, Error> {
        if !self.rt.settings.handle_signals {
            return Ok(session);
        }
        let installed = self
            .rt
            .reactor
            .with_poller(|p| Signals::install(p, SIGNAL_TOKEN));
        match installed {
            Ok(signals) => {
                self.signals = Some(signals);
                Ok(session)
            }
            Err(e) => {
                let _ = session.unmount();
                Err(e.into())
            }
        }
    }

    /// Serves requests until the file system is unmounted (by `umount`, a signal, or
    /// `exit`), then returns Ok. Signal handling ends when it returns.
    pub fn mainloop(&mut self) -> Result<(), Error> {
        let session = self
            .session
            .as_mut()
            .ok_or(Error::State("mainloop() needs a mounted file system"))?;
        let served = crate::mainloop::run(&self.rt, &self.inbox, session, self.signals.as_ref());
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

    /// Asks the mainloop to unmount and return. Before `mainloop` runs, it makes the
    /// loop return as soon as it starts; to stop a running loop from another thread,
    /// use an `exit_handle()`.
    pub fn exit(&self) {
        self.rt.request_exit();
    }

    /// The mount's kernel notifications (puffs_inval_*), for any thread: they go out
    /// while the file system is mounted and are refused (ENOTCONN) before and after.
    pub fn notifier(&self) -> Notifier {
        self.rt.notifier.clone()
    }

    /// A handle that stops this mount's mainloop from any thread (`ExitHandle::exit`).
    pub fn exit_handle(&self) -> ExitHandle {
        ExitHandle {
            flag: self.rt.exit_requested.clone(),
            wakeup: Arc::clone(&self.rt.wakeup),
        }
    }
}
