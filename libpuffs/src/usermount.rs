//! `PuffsUserMount` (puffs_usermount): the file system value, its settings before
//! mount, its state, and the calls that move it along: `daemon`, `mount`, `mainloop`,
//! `exit` (and `ExitHandle`, which stops the loop from another thread).

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::attr::{Attr, Statvfs};
use crate::cc::Executor;
use crate::cx::Cx;
use crate::daemon::Daemon;
use crate::error::Error;
use crate::event::Poller;
use crate::exit::{ExitFlag, ExitHandle};
use crate::kernel::{self, Inbox, MountParams, Session};
use crate::mount_flags::MountFlags;
use crate::node::NodeTable;
use crate::notify::Notifier;
use crate::ops::{Cred, Op, Ops};
use crate::options::MountOptions;
use crate::reactor::{Reactor, Source};
use crate::runtime::{ForgetStats, Runtime, Settings, State};
use crate::signals::Signals;
use crate::wakeup::Wakeup;
use crate::Errno;

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
        let wakeup = Arc::new(Wakeup::new(&mut poller, Source::Wake.token())?);
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
        };
        Ok(PuffsUserMount {
            rt: Rc::new(rt),
            inbox: Arc::new(Inbox::new(wakeup)),
            session: None,
            daemon: None,
            signals: None,
        })
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

    /// Use worker threads for `Cx::aio` even where io_uring is available.
    pub fn aio_threads(mut self, on: bool) -> Self {
        self.settings().aio_threads = on;
        self
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
            .and_then(|()| self.mount_kernel(dir.as_ref()))
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

    fn mount_kernel(&self, dir: &Path) -> Result<Session, Error> {
        let (rt, s) = (&self.rt, &self.rt.settings);
        let params = MountParams {
            typename: &rt.typename,
            source: &rt.source,
            flags: &s.flags,
            opmask: F::OPMASK,
            statvfs: s.statvfs,
            root_attr: s.root_attr,
            max_write: s.max_write,
            writeback_cache: s.writeback_cache,
            kills_suidgid: F::KILLS_SUIDGID,
            export_support: s.export_support,
        };
        kernel::mount(dir, &params, &self.inbox, &rt.notifier)
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
            .with_poller(|p| Signals::install(p, Source::Signals.token()));
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
