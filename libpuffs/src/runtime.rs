//! What the mainloop and every op share at run time: the file system value, the
//! settings, the node table, the executor, the reactor, async I/O, the notifier. It
//! lives on the loop thread only; nothing in `kernel/` imports it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::attr::{Attr, Statvfs, Ttls};
use crate::cc::{guarded, Executor};
use crate::errno::Errno;
use crate::error::Error;
use crate::event::Poller;
use crate::exit::ExitFlag;
use crate::mount_flags::MountFlags;
use crate::node::{Node, NodeTable};
use crate::notify::Notifier;
use crate::ops::{Cred, Op, Ops};
use crate::reactor::{Reactor, Source};
use crate::wakeup::Wakeup;

/// Where a running mount is in its life (`Cx::state`). Before mount there is no
/// runtime: the builder (`PuffsUserMount`) is a type of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Serving requests.
    Running,
    /// Unmounting: the fs's sync and unmount ops run, then the kernel mount goes.
    Unmounting,
    /// The mainloop has returned.
    Unmounted,
}

type Hook = Box<dyn Fn(Op, &Cred)>;
type PostHook = Box<dyn Fn(Op, &Cred, Option<Errno>)>;
type ErrNotify = Box<dyn Fn(Op, Errno, &str)>;

/// Everything set before mount.
pub(crate) struct Settings {
    pub root_attr: Attr,
    pub statvfs: Statvfs,
    pub max_write: u32,
    /// The kernel's readahead window (`PuffsUserMount::max_readahead`).
    pub max_readahead: Option<u32>,
    pub entry_timeout: Duration,
    pub attr_timeout: Duration,
    pub flags: MountFlags,
    pub writeback_cache: bool,
    pub export_support: bool,
    /// Ask the kernel for FUSE passthrough (`Open::passthrough`).
    pub passthrough: bool,
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

impl Default for Settings {
    fn default() -> Self {
        Settings {
            root_attr: Attr::new(crate::attr::FileType::Directory, 0o755),
            statvfs: Statvfs::default(),
            max_write: 1 << 20,
            max_readahead: None,
            entry_timeout: Duration::from_secs(1),
            attr_timeout: Duration::from_secs(1),
            flags: MountFlags::default(),
            writeback_cache: false,
            export_support: false,
            passthrough: false,
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
    pub settings: Settings,
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

impl<F: Ops> Runtime<F> {
    /// The runtime of a mount about to be made: its poller, wakeup, executor and the
    /// node table with the root. `notifier` is the one the builder handed out.
    pub(crate) fn new(
        fs: F,
        names: (String, String),
        settings: Settings,
        notifier: Notifier,
    ) -> Result<Self, Error> {
        let mut poller = Poller::new()?;
        let wakeup = Arc::new(Wakeup::new(&mut poller, Source::Wake.token())?);
        let (key, data) = fs.root();
        Ok(Runtime {
            fs,
            typename: names.0,
            source: names.1,
            nodes: RefCell::new(NodeTable::with_root(key, data)),
            exec: Executor::new(Arc::clone(&wakeup)),
            reactor: Reactor::new(poller),
            wakeup,
            state: Cell::new(State::Running),
            exit_requested: ExitFlag::default(),
            settings,
            aio: std::cell::OnceCell::new(),
            forgets: Cell::new(ForgetStats::default()),
            notifier,
            files: Default::default(),
        })
    }

    pub(crate) fn node(&self, ino: u64) -> Option<Rc<Node<F>>> {
        self.nodes.borrow().get(ino).cloned()
    }

    /// How long the kernel may cache attributes the fs answered with `own` (an
    /// `AttrReply::ttl`): the fs's own lifetime, or the mount's.
    pub(crate) fn attr_ttl(&self, own: Option<Duration>) -> Duration {
        own.unwrap_or(self.settings.attr_timeout)
    }

    /// Cache lifetimes of an entry reply: the entry's own, or the mount's.
    pub(crate) fn ttls(&self, entry: Option<Duration>, attr: Option<Duration>) -> Ttls {
        Ttls {
            entry: entry.unwrap_or(self.settings.entry_timeout),
            attr: self.attr_ttl(attr),
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
            self.reactor.with_poller(|p| {
                crate::aio::Aio::new(p, Source::Aio.token(), depth, backend, signal)
            })
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
