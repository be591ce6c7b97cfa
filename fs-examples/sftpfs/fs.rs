//! sftpfs's state and the session it talks through: nodes keyed by an id of our own
//! with a path → id map (a path names whatever file is there now; an id names one
//! node for its life), the attribute and listing caches, and the live connection,
//! restarted on demand with `-o reconnect`.
//!
//! The ops themselves (ops.rs, one method per kernel op; names.rs, data.rs, dir.rs)
//! are methods of [`SftpFs`] taking plain values.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use puffs::paths::rename_subtree;
use puffs::{Attr, Cx, Entry, EntryOf, Errno, Node, OpResult, OpenFlags, PathCell, PuffsPath};
use sftp_codec::{Attrs, Reply, Request};

use crate::attr::to_attr;
use crate::config::Config;
use crate::conn::{Conn, Hello, Server};
use crate::join::join_all;
use crate::sessions::{Leg, Restart, Route, Sessions, STRIPE};
use crate::writeback::{NodeWrites, WriteBehind};

/// The key of the root node; other nodes get 1, 2, ...
pub const ROOT_ID: u64 = 0;

/// What each node keeps: its current remote path and what the server last said.
pub struct SftpNode {
    pub path: PathCell,
    /// Attributes and when they came.
    attr: RefCell<Option<(Attr, Instant)>>,
    /// A symlink's target and when it came.
    pub(crate) link: RefCell<Option<(Vec<u8>, Instant)>>,
    /// Its name was removed or replaced: the path now names another file or none, so
    /// only open handles still reach it.
    orphan: Cell<bool>,
    /// Bumped by every change of the data we make or notice: reads sent ahead at an
    /// older version are dropped.
    version: Cell<u64>,
    /// The open files with writes in flight to it (write-behind).
    pub writes: NodeWrites,
}

impl SftpNode {
    pub fn new(path: PuffsPath, attr: Option<Attr>) -> Self {
        SftpNode {
            path: PathCell::new(path),
            attr: RefCell::new(attr.map(|a| (a, Instant::now()))),
            link: RefCell::new(None),
            orphan: Cell::new(false),
            version: Cell::new(0),
            writes: NodeWrites::default(),
        }
    }

    /// The path, unless the node lost its name (ENOENT then).
    pub fn live_path(&self) -> Result<PuffsPath, Errno> {
        if self.orphan.get() {
            return Err(Errno::ENOENT);
        }
        Ok(self.path.get())
    }

    pub fn cached_attr(&self) -> Option<Attr> {
        self.attr.borrow().as_ref().map(|(a, _)| *a)
    }

    /// Forgets the cached attributes: our own change made them stale.
    pub fn touched(&self) {
        self.attr.borrow_mut().take();
        self.version.set(self.version.get() + 1);
    }

    pub fn version(&self) -> u64 {
        self.version.get()
    }
}

/// One directory entry the server listed.
pub struct DirItem {
    pub name: Vec<u8>,
    pub attrs: Attrs,
}

/// A directory's entries and when they were listed.
pub type Listing = (Rc<Vec<DirItem>>, Instant);

/// An open directory (the framework keeps it for the kernel's handle): the listing
/// read at opendir, shared with the listing cache.
pub type OpenDir = Rc<Vec<DirItem>>;

/// A handle of an open file and the generation of the session it is on.
type Held = (Rc<[u8]>, u64);

/// An open file (the framework keeps it for the kernel's handle): its handle on each
/// session it has used, by slot, with the session's generation; a handle of an older
/// generation is reopened on the new session after a reconnect, and one on a session
/// the file has not used yet is opened there on first use (both without O_CREAT,
/// O_EXCL or O_TRUNC: those took effect once).
pub struct OpenFile {
    handles: RefCell<Vec<Option<Held>>>,
    /// The data session (index among them) the file was opened on: its first stripe.
    pub base: usize,
    pub flags: OpenFlags,
    /// Reads sent ahead of a sequential reader.
    pub ahead: RefCell<crate::readahead::ReadAhead>,
    /// Writes answered to the kernel before the server answered them.
    pub behind: Rc<WriteBehind>,
}

impl OpenFile {
    /// A file opened as `handle` on `conn`, data session `base`.
    pub fn new(handle: Rc<[u8]>, conn: &Conn, base: usize, flags: OpenFlags) -> Self {
        let f = OpenFile {
            handles: RefCell::new(Vec::new()),
            base,
            flags,
            ahead: Default::default(),
            behind: Default::default(),
        };
        f.set_handle(conn, handle);
        f
    }

    /// The handle on `conn`'s session, if the file has one there now.
    fn handle_on(&self, conn: &Conn) -> Option<Rc<[u8]>> {
        match self.handles.borrow().get(conn.slot) {
            Some(Some((h, g))) if *g == conn.generation => Some(Rc::clone(h)),
            _ => None,
        }
    }

    fn set_handle(&self, conn: &Conn, h: Rc<[u8]>) {
        let mut hs = self.handles.borrow_mut();
        if hs.len() <= conn.slot {
            hs.resize(conn.slot + 1, None);
        }
        hs[conn.slot] = Some((h, conn.generation));
    }
}

pub struct SftpFs {
    pub(crate) cfg: Config,
    pub(crate) hello: Hello,
    pub(crate) sessions: Sessions,
    ids: RefCell<HashMap<PuffsPath, u64>>,
    next_id: Cell<u64>,
    /// Directory listings by path, for `cache_timeout`; emptied by any change we make.
    pub(crate) listings: RefCell<HashMap<PuffsPath, Listing>>,
}

impl SftpFs {
    /// The file system over sessions already past INIT (see `conn::handshake`), the
    /// first one for metadata.
    pub fn new(cfg: Config, hello: Hello, first: Vec<(UnixStream, Server)>) -> Self {
        let restart = Restart {
            argv: cfg.launch.argv(),
            timeout: cfg.timeout,
            reconnect: cfg.reconnect,
        };
        SftpFs {
            sessions: Sessions::new(first, restart),
            cfg,
            hello,
            ids: RefCell::new(HashMap::new()),
            next_id: Cell::new(ROOT_ID + 1),
            listings: RefCell::new(HashMap::new()),
        }
    }

    pub fn root_node(&self) -> SftpNode {
        SftpNode::new(PuffsPath::new(&self.hello.root), None)
    }

    /// The session of metadata requests (the only one unless `-o connections=`):
    /// see [`Sessions::get`].
    pub async fn conn(&self, cx: &Cx<Self>) -> Result<Rc<Conn>, Errno> {
        self.sessions.get(cx, Sessions::META).await
    }

    /// The data session a new open goes on, and its index among the data sessions.
    pub async fn open_conn(&self, cx: &Cx<Self>) -> Result<(Rc<Conn>, usize), Errno> {
        let base = self.sessions.next_base();
        let conn = self.sessions.get(cx, self.sessions.data_slot(base)).await?;
        Ok((conn, base))
    }

    /// The session an open file was opened on and its handle there (for requests
    /// about the whole file: fstat, fsetstat, fsync).
    pub async fn file_conn(
        &self,
        cx: &Cx<Self>,
        f: &OpenFile,
        node: &SftpNode,
    ) -> Result<(Rc<Conn>, Rc<[u8]>), Errno> {
        let conn = self
            .sessions
            .get(cx, self.sessions.data_slot(f.base))
            .await?;
        let h = self.handle(cx, &conn, f, node).await?;
        Ok((conn, h))
    }

    /// Where the stripes of `f` up to `end` go: its handle on each data session they
    /// fall on, opened there now if the file has none yet.
    pub async fn route(
        &self,
        cx: &Cx<Self>,
        f: &OpenFile,
        node: &SftpNode,
        end: u64,
    ) -> Result<Route, Errno> {
        let n = self.sessions.data_len();
        let used = end.div_ceil(STRIPE).clamp(1, n as u64) as usize;
        let legs: Vec<Pin<Box<dyn Future<Output = Option<Leg>> + '_>>> = (0..n)
            .map(|i| {
                let fut = async move {
                    if i != f.base && (i + n - f.base) % n >= used {
                        return None;
                    }
                    let slot = self.sessions.data_slot(i);
                    let conn = self.sessions.get(cx, slot).await.ok()?;
                    let h = self.handle(cx, &conn, f, node).await.ok()?;
                    Some((conn, h))
                };
                Box::pin(fut) as Pin<Box<dyn Future<Output = Option<Leg>> + '_>>
            })
            .collect();
        let legs = join_all(legs).await;
        if legs[f.base].is_none() {
            // The session the file lives on is gone: that one's error.
            self.file_conn(cx, f, node).await?;
            return Err(Errno::EIO);
        }
        Ok(Route::new(legs, f.base))
    }

    /// Closes the file's handles on the sessions that are still the ones they were
    /// opened on (a handle of an ended session is gone with it).
    pub async fn close_handles(&self, f: &OpenFile) {
        let handles: Vec<(Rc<Conn>, Rc<[u8]>)> = (0..self.sessions.len())
            .filter_map(|slot| {
                let conn = self.sessions.current(slot)?;
                let h = f.handle_on(&conn)?;
                Some((conn, h))
            })
            .collect();
        let closes: Vec<Pin<Box<dyn Future<Output = ()> + '_>>> = handles
            .iter()
            .map(|(conn, h)| {
                Box::pin(async move {
                    if let Err(e) = conn
                        .call(Request::Close { handle: h }, |r| r.into_status())
                        .await
                    {
                        log::debug!("sftpfs: close: {e}");
                    }
                }) as Pin<Box<dyn Future<Output = ()> + '_>>
            })
            .collect();
        join_all(closes).await;
    }

    /// Ends every session (unmount).
    pub fn disconnect(&self) {
        self.sessions.close_all();
    }

    /// One request on the live session.
    pub async fn call<T>(
        &self,
        cx: &Cx<Self>,
        req: Request<'_>,
        take: impl FnOnce(Reply<'_>) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        self.conn(cx).await?.call(req, take).await
    }

    pub async fn lstat(&self, cx: &Cx<Self>, path: &PuffsPath) -> Result<Attrs, Errno> {
        let path = path.as_bytes();
        self.call(cx, Request::Lstat { path }, |r| r.into_attrs())
            .await
    }

    /// Whether something is at `path` (to tell EEXIST from the EPERM OpenSSH sends).
    pub async fn exists(&self, cx: &Cx<Self>, path: &PuffsPath) -> bool {
        self.lstat(cx, path).await.is_ok()
    }

    /// The id of the node at `path`, a new one if none is known.
    pub fn id_of(&self, path: &PuffsPath) -> u64 {
        *self
            .ids
            .borrow_mut()
            .entry(path.clone())
            .or_insert_with(|| {
                let id = self.next_id.get();
                self.next_id.set(id + 1);
                id
            })
    }

    /// `path` now leads to the node `id` too (a hard link).
    pub fn named(&self, path: &PuffsPath, id: u64) {
        self.ids.borrow_mut().insert(path.clone(), id);
    }

    /// The id known for `path`, if any.
    pub fn known_id(&self, path: &PuffsPath) -> Option<u64> {
        if path.as_bytes() == self.hello.root.as_slice() {
            return Some(ROOT_ID);
        }
        self.ids.borrow().get(path).copied()
    }

    /// The kernel's entry for `path` with what the server said about it; a node known
    /// already gets the fresh attributes (and the kernel drops its cached pages if the
    /// file changed on the server).
    pub fn entry(&self, cx: &Cx<Self>, path: PuffsPath, attrs: &Attrs) -> EntryOf<Self> {
        let id = self.known_id(&path).unwrap_or_else(|| self.id_of(&path));
        let mut attr = to_attr(attrs);
        if let Some(n) = cx.node_by_key(&id) {
            attr = self.refreshed_unless_writing(cx, &n, attr);
        }
        let mut e = Entry::new(id, SftpNode::new(path, Some(attr)), attr);
        e.entry_ttl = Some(self.cfg.cache_timeout);
        e.attr_ttl = Some(self.cfg.cache_timeout);
        e
    }

    /// Records attributes fresh from the server; a file whose size or mtime moved
    /// since we last looked changed on the server: the kernel's pages of it go.
    pub fn refreshed(&self, cx: &Cx<Self>, node: &Node<Self>, attr: Attr) {
        let old = node.attr.borrow_mut().replace((attr, Instant::now()));
        if let Some((old, _)) = old {
            if old.size != attr.size || old.mtime != attr.mtime {
                log::debug!("sftpfs: {:?} changed on the server", node.path.get());
                node.version.set(node.version.get() + 1);
                if let Err(e) = cx.notifier().inval_data(node.ino(), 0, 0) {
                    log::debug!("sftpfs: inval_data: {e}");
                }
            }
        }
    }

    /// Attributes fresh from the server for `node`, recorded (see [`Self::refreshed`])
    /// unless writes to it are in flight or the server's size is short of writes
    /// answered within the deadline (the request may have been sent before them): then
    /// the attributes are not kept, and the size is at least the end of those writes,
    /// so the kernel never sees the file shrink under its own writes.
    pub fn refreshed_unless_writing(&self, cx: &Cx<Self>, node: &Node<Self>, attr: Attr) -> Attr {
        match node.writes.size_floor(self.cfg.timeout) {
            Some(end) if node.writes.busy() || attr.size < end => Attr {
                size: attr.size.max(end),
                ..attr
            },
            _ => {
                self.refreshed(cx, node, attr);
                attr
            }
        }
    }

    /// The cached attributes, if younger than `cache_timeout`.
    pub fn fresh_attr(&self, node: &SftpNode) -> Option<Attr> {
        let a = node.attr.borrow();
        a.as_ref()
            .filter(|(_, t)| t.elapsed() < self.cfg.cache_timeout)
            .map(|(a, _)| *a)
    }

    /// How long the kernel may keep `node`'s attributes: what is left of the life of
    /// ours, so a cached answer does not start a new `cache_timeout` in the kernel.
    pub fn attr_ttl(&self, node: &SftpNode) -> Duration {
        let a = node.attr.borrow();
        a.as_ref().map_or(Duration::ZERO, |(_, t)| {
            self.cfg.cache_timeout.saturating_sub(t.elapsed())
        })
    }

    /// We changed something: cached listings may be stale.
    pub fn changed(&self) {
        self.listings.borrow_mut().clear();
    }

    /// `path` no longer names the node it named (unlink, rmdir, renamed over).
    pub fn unnamed(&self, cx: &Cx<Self>, path: &PuffsPath) {
        if let Some(id) = self.ids.borrow_mut().remove(path) {
            if let Some(n) = cx.node_by_key(&id) {
                n.orphan.set(true);
            }
        }
        self.changed();
    }

    /// A rename moved `old` (and all under it) to `new`.
    pub fn moved(&self, cx: &Cx<Self>, old: &PuffsPath, new: &PuffsPath) {
        self.unnamed(cx, new);
        cx.with_nodes(|t| rename_subtree(t.iter().map(|n| &n.path), old, new));
        let mut ids = self.ids.borrow_mut();
        let under: Vec<PuffsPath> = ids.keys().filter(|p| p.is_within(old)).cloned().collect();
        for p in under {
            if let (Some(id), Some(to)) = (ids.remove(&p), p.rebase(old, new)) {
                ids.insert(to, id);
            }
        }
        drop(ids);
        self.changed();
    }

    /// The kernel forgot a node: its path no longer leads to its id.
    pub fn forgotten(&self, node: &Node<Self>) {
        let path = node.path.get();
        let mut ids = self.ids.borrow_mut();
        if ids.get(&path) == Some(node.key()) {
            ids.remove(&path);
        }
    }

    /// The handle of an open file on `conn`'s session: opened there now if the file
    /// has none on it yet, or reopened after that session was restarted.
    pub async fn handle(
        &self,
        cx: &Cx<Self>,
        conn: &Conn,
        f: &OpenFile,
        node: &SftpNode,
    ) -> Result<Rc<[u8]>, Errno> {
        if let Some(h) = f.handle_on(conn) {
            return Ok(h);
        }
        let path = node.live_path().map_err(|_| Errno::EIO)?;
        let once = OpenFlags::CREAT | OpenFlags::EXCL | OpenFlags::TRUNC;
        let flags = f.flags.difference(once).bits();
        let req = Request::Open {
            path: path.as_bytes(),
            flags: sftp_codec::OpenFlags::from_posix(flags),
            attrs: Attrs::default(),
        };
        let h: Rc<[u8]> = conn
            .call(req, |r| r.into_handle().map(Rc::from))
            .await
            .inspect_err(|e| {
                log::warn!("sftpfs: opening {path:?} on session {}: {e}", conn.slot)
            })?;
        if let Some(theirs) = f.handle_on(conn) {
            // Another request opened it meanwhile: ours is closed again.
            let _ = conn
                .call(Request::Close { handle: &h }, |r| r.into_status())
                .await;
            return Ok(theirs);
        }
        let _ = cx;
        f.set_handle(conn, Rc::clone(&h));
        log::debug!(
            "sftpfs: opened {path:?} on session {} (start {})",
            conn.slot,
            conn.generation
        );
        Ok(h)
    }

    /// `-> OpResult` helper for the ops that need a path the node may have lost.
    pub fn path_of(node: &SftpNode) -> OpResult<PuffsPath> {
        node.live_path()
    }
}
