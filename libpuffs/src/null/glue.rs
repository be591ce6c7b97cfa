//! The null layer's `Ops`: each method unpacks its request, finds the backing fds and
//! names, and runs the plain functions of `ops.rs` on the worker pool (metadata) or
//! `Cx::aio` (data). Nothing else lives here.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use super::node::{Handle, NullNode};
use super::open::{self, NullDir, NullFile};
use super::ops::{self, DirEnt};
use super::{NullLayer, Transform};
use crate::aio::MetaCall;
use crate::args::{FallocateFlags, NewNode, OpenFlags, Whence, XattrFlags};
use crate::attr::{Attr, AttrReply, FileType, Open, SetAttr, Statvfs};
use crate::cx::Cx;
use crate::data::Data;
use crate::dirbuf::{DirBuf, DirPlusBuf};
use crate::node::Node;
use crate::ops::{EntryOf, FileAt, Op, OpMask, OpResult, Ops, RenameFlags};
use crate::Errno;

/// An io::Error as the errno the caller sees.
fn errno(e: io::Error) -> Errno {
    Errno::from(e)
}

/// A backing file just found or made: its O_PATH fd, its stat and its handle.
struct Found {
    fd: OwnedFd,
    st: nix::sys::stat::FileStat,
    handle: Option<Handle>,
}

/// Remembers whether `node` has set-id bits (see `NullNode::setid`).
fn note(node: &NullNode, attr: &Attr) {
    node.setid
        .set(attr.kind == FileType::RegularFile && attr.perm & 0o6000 != 0);
}

fn found(fd: OwnedFd, handles: bool) -> io::Result<Found> {
    let st = ops::stat(&fd)?;
    let handle = if handles { Handle::of(&fd).ok() } else { None };
    Ok(Found { fd, st, handle })
}

type Layer<T> = NullLayer<T>;

/// The fd a `MetaCall::Open` just made, owned.
fn owned(fd: i32) -> OwnedFd {
    // SAFETY: the kernel just gave us this fd, and nothing else holds it.
    unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
}

/// The buffer an xattr value is first read into through io_uring.
const XATTR_GUESS: usize = 256;

/// Entries looked up per readdirplus reply, at most.
const READDIRPLUS_BATCH: usize = 192;

impl<T: Transform> NullLayer<T> {
    /// Runs a blocking call on the worker pool (on the loop thread with
    /// `NullConfig::inline_meta`).
    async fn run<R: Send + 'static>(
        &self,
        cx: &Cx<Self>,
        f: impl FnOnce() -> io::Result<R> + Send + 'static,
    ) -> OpResult<R> {
        if self.config.inline_meta {
            return f().map_err(errno);
        }
        match cx.aio().blocking(f).await {
            Ok(r) => r.map_err(errno),
            Err(e) => Err(errno(e)),
        }
    }

    /// Makes a metadata call through io_uring where the ring carries it (else the
    /// worker pool; on the loop thread with `NullConfig::inline_meta`).
    async fn meta(&self, cx: &Cx<Self>, call: MetaCall) -> OpResult<i32> {
        if self.config.inline_meta {
            return call.run_blocking().map_err(errno);
        }
        cx.aio().meta(call).await.map_err(errno)
    }

    /// unlink and rmdir (`flags` 0 or AT_REMOVEDIR): one unlinkat of `name` in `dir`.
    async fn remove(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
        flags: i32,
    ) -> OpResult<()> {
        let dir = self.fd(cx, dir).await?;
        let name = self.backing_name(name).map_err(errno)?;
        let call = MetaCall::Unlink { dir, name, flags };
        self.meta(cx, call).await.map(drop)
    }

    /// Looks `name` up in `dir` (not in the name cache: that was tried first): the
    /// open through io_uring and the fstat of the new fd here when both may be
    /// (`inline_stat`), else the whole of it on the worker pool.
    async fn lookup_uncached(
        &self,
        cx: &Cx<Self>,
        dir: Arc<OwnedFd>,
        name: CString,
    ) -> OpResult<Found> {
        let handles = self.config.handles;
        let call = MetaCall::Open {
            dir,
            name,
            flags: libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
        };
        if self.config.inline_meta || !self.config.inline_stat || !cx.aio().meta_in_ring(&call) {
            return self
                .run(cx, move || found(owned(call.run_blocking()?), handles))
                .await;
        }
        let fd = owned(self.meta(cx, call).await?);
        found(fd, handles).map_err(errno)
    }

    /// The O_PATH fd of `node`: pinned, cached, or opened again by its handle.
    async fn fd(&self, cx: &Cx<Self>, node: &Node<Self>) -> OpResult<Arc<OwnedFd>> {
        if let Some(fd) = node.pinned_fd() {
            return Ok(Arc::clone(fd));
        }
        let key = *node.key();
        if let Some(fd) = self.fds.borrow().get(&key) {
            return Ok(fd);
        }
        let handle = node.handle().cloned().ok_or(Errno::ESTALE)?;
        let mount = self.mount_fd(key.dev)?;
        let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let fd = Arc::new(self.run(cx, move || handle.open(&mount, flags)).await?);
        self.fds.borrow_mut().put(key, Arc::clone(&fd));
        Ok(fd)
    }

    /// Looks `name` up on the loop thread if the kernel's name cache answers it
    /// (no disk read, see `ops::lookup_cached`); None: look it up off the loop
    /// (`lookup_uncached`).
    fn lookup_cached(&self, dirfd: &OwnedFd, name: &CString) -> Option<OpResult<Found>> {
        if !self.cached_lookups.get() || self.config.inline_meta {
            return None;
        }
        match ops::lookup_cached(dirfd, name) {
            Ok(fd) => Some(found(fd, self.config.handles).map_err(errno)),
            Err(e) => match e.raw_os_error() {
                Some(libc::EAGAIN) => None,
                // A kernel without openat2 or RESOLVE_CACHED: stop trying.
                Some(libc::ENOSYS | libc::EINVAL | libc::E2BIG) => {
                    self.cached_lookups.set(false);
                    None
                }
                _ => Some(Err(errno(e))),
            },
        }
    }

    /// The entry of a backing file just found: a new node (its fd cached), or the
    /// known node of the same key.
    fn entry(&self, cx: &Cx<Self>, f: Found) -> EntryOf<Self> {
        let key = ops::key_of(&f.st);
        let attr = ops::attr_of(&f.st);
        let fd = Arc::new(f.fd);
        if let Some(n) = cx.node_by_key(&key) {
            note(&n, &attr);
        }
        if let (true, Some(h)) = (self.config.export, &f.handle) {
            self.exported.borrow_mut().insert(key.ino, (key, h.clone()));
        }
        let data = if cx.node_by_key(&key).is_some() {
            NullNode::new(attr.kind, None, None)
        } else {
            // A handle is only reopened on the backing directory's own file system.
            let handle = f.handle.filter(|_| key.dev == self.mount.0);
            let node = NullNode::new(attr.kind, handle, Some(&fd));
            note(&node, &attr);
            node
        };
        self.fds.borrow_mut().put(key, fd);
        crate::attr::Entry::new(key, data, attr)
    }

    /// The fd to reopen handles of file system `dev` with.
    fn mount_fd(&self, dev: u64) -> OpResult<Arc<OwnedFd>> {
        if dev != self.mount.0 {
            return Err(Errno::ESTALE);
        }
        Ok(Arc::clone(&self.mount.1))
    }

    /// Makes a node in `dir` with `make` (given the directory fd and the backing
    /// name), gives it to the caller and returns its entry.
    async fn make(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
        mode: u32,
        make: impl FnOnce(&OwnedFd, &CString) -> io::Result<OwnedFd> + Send + 'static,
    ) -> OpResult<EntryOf<Self>> {
        let dirfd = self.fd(cx, dir).await?;
        let name = self.backing_name(name).map_err(errno)?;
        let (cred, handles) = (*cx.cred(), self.config.handles);
        let f = self
            .run(cx, move || {
                let dst = ops::stat(&dirfd)?;
                let fd = make(&dirfd, &name)?;
                let owner = ops::Owner {
                    uid: cred.uid,
                    gid: cred.gid,
                    // Only a set-gid directory asks (reading /proc costs).
                    in_dir_group: dst.st_mode & libc::S_ISGID != 0 && cred.in_group(dst.st_gid),
                };
                ops::give(&fd, &dst, owner, mode)?;
                found(fd, handles)
            })
            .await?;
        Ok(self.entry(cx, f))
    }

    /// The entries of an open directory from `offset` on, listing it afresh at 0.
    async fn listing(
        &self,
        cx: &Cx<Self>,
        open: &NullDir,
        offset: u64,
    ) -> OpResult<Rc<Vec<DirEnt>>> {
        let entries = &open.entries;
        if offset == 0 || entries.borrow().is_none() {
            let fd = Arc::clone(&open.fd);
            let list = Rc::new(self.run(cx, move || ops::list(&fd)).await?);
            *entries.borrow_mut() = Some(Rc::clone(&list));
            return Ok(list);
        }
        let list = entries.borrow().clone().unwrap_or_default();
        Ok(list)
    }

    /// Whether `dir` is the mount's root (whose ".." is itself as far as the mount goes).
    fn is_root(&self, cx: &Cx<Self>, dir: &Node<Self>) -> bool {
        *dir.key() == cx.with_nodes(|t| *t.root().key())
    }
}

/// The stat of what ".." of the directory `dirfd` names: its backing parent, or None
/// at the mount's root.
fn dotdot(dirfd: &OwnedFd, at_root: bool) -> io::Result<Option<nix::sys::stat::FileStat>> {
    if at_root {
        return Ok(None);
    }
    ops::stat(&ops::parent(dirfd)?).map(Some)
}

impl<T: Transform> Ops for NullLayer<T> {
    type Node = NullNode;
    type Key = super::BackingKey;
    type File = NullFile;
    type Dir = NullDir;
    // The server writes as root, which keeps set-id bits: the layer clears them
    // itself, and the kernel stops asking for security.capability before each write.
    const KILLS_SUIDGID: bool = true;
    const OPMASK: OpMask = OpMask::of(&[
        Op::Statvfs,
        Op::Lookup,
        Op::Getattr,
        Op::Setattr,
        Op::Readlink,
        Op::Mknod,
        Op::Mkdir,
        Op::Unlink,
        Op::Rmdir,
        Op::Symlink,
        Op::Rename,
        Op::Link,
        Op::Open,
        Op::Create,
        Op::Read,
        Op::Write,
        // No Flush: the backing fd closes at release, so a flush would have nothing
        // to do, and its ENOSYS makes the kernel stop sending one per close.
        Op::Release,
        Op::Fsync,
        Op::Opendir,
        Op::Readdir,
        Op::Readdirplus,
        Op::Fsyncdir,
        Op::Setxattr,
        Op::Getxattr,
        Op::Listxattr,
        Op::Removexattr,
        Op::Fallocate,
        Op::Lseek,
        Op::CopyFileRange,
        Op::LookupIno,
    ]);

    fn root(&self) -> (Self::Key, NullNode) {
        let st = ops::stat(&self.root).expect("the backing directory was opened");
        let node = NullNode::new(FileType::Directory, None, Some(&self.root));
        (ops::key_of(&st), node)
    }

    fn reclaim(&self, node: &Node<Self>) {
        self.fds.borrow_mut().remove(node.key());
    }

    /// Watches the backing directory for the life of the mount (`crate::dirwatch`).
    async fn started(&self, cx: &Cx<Self>) {
        crate::dirwatch::watch_dir(cx, &self.mount.1, &self.backing).await;
    }

    async fn statvfs(&self, cx: &Cx<Self>) -> OpResult<Statvfs> {
        let root = Arc::clone(&self.root);
        self.run(cx, move || ops::statvfs(&root)).await
    }

    async fn lookup(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        let dirfd = self.fd(cx, dir).await?;
        let handles = self.config.handles;
        let f = if name == ".." {
            if *dir.key() == cx.with_nodes(|t| *t.root().key()) {
                let root = Arc::clone(&self.root);
                self.run(cx, move || found(ops::parent(&root)?, handles))
                    .await
                    .and(Err(Errno::ENOENT))?
            } else {
                self.run(cx, move || found(ops::parent(&dirfd)?, handles))
                    .await?
            }
        } else {
            let name = self.backing_name(name).map_err(errno)?;
            match self.lookup_cached(&dirfd, &name) {
                Some(f) => f?,
                None => self.lookup_uncached(cx, dirfd, name).await?,
            }
        };
        Ok(self.entry(cx, f))
    }

    async fn lookup_ino(&self, cx: &Cx<Self>, ino: u64) -> OpResult<EntryOf<Self>> {
        let (key, handle) = self
            .exported
            .borrow()
            .get(&ino)
            .cloned()
            .ok_or(Errno::ESTALE)?;
        let mount = self.mount_fd(key.dev)?;
        let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let f = self
            .run(cx, move || {
                let fd = handle.open(&mount, flags)?;
                found(fd, true)
            })
            .await?;
        if ops::key_of(&f.st) != key {
            return Err(Errno::ESTALE);
        }
        Ok(self.entry(cx, f))
    }

    async fn getattr(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        file: Option<&NullFile>,
    ) -> OpResult<AttrReply> {
        let fd = match file {
            Some(f) => Arc::clone(&f.fd),
            None => self.fd(cx, node).await?,
        };
        // An fd pins its inode in memory, so fstat through it reads no disk: done
        // here rather than paying two thread hops (unless the backing file system may
        // go remote, `NullConfig::inline_stat`).
        let st = if self.config.inline_stat {
            ops::stat(&fd).map_err(errno)?
        } else {
            self.run(cx, move || ops::stat(&fd)).await?
        };
        let attr = ops::attr_of(&st);
        note(node, &attr);
        Ok(attr.into())
    }

    async fn setattr(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        file: Option<&NullFile>,
        set: &SetAttr,
    ) -> OpResult<AttrReply> {
        let fd = self.fd(cx, node).await?;
        let file = file.map(|f| Arc::clone(&f.fd));
        let (set, is_link) = (set.clone(), node.kind == FileType::Symlink);
        let cred = *cx.cred();
        let st = self
            .run(cx, move || {
                if let Some(mode) = set.mode {
                    if is_link {
                        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
                    }
                    ops::chmod(&fd, mode.bits())?;
                }
                if set.uid.is_some() || set.gid.is_some() {
                    ops::chown(&fd, set.uid, set.gid)?;
                    // Even by root (who counts as in every group).
                    ops::kill_suidgid(&fd, |g| cred.is_root() || cred.in_group(g))?;
                }
                if let Some(size) = set.size {
                    // ftruncate moves mtime and ctime always, truncate(2) only when the
                    // size changes (tmpfs): each is passed on as the caller made it.
                    match &file {
                        Some(f) => ops::truncate(f, size)?,
                        None => ops::truncate_path(&fd, size)?,
                    }
                    if !cred.is_root() {
                        ops::kill_suidgid(&fd, |g| cred.in_group(g))?;
                    }
                }
                if set.atime.is_some() || set.mtime.is_some() {
                    ops::utimes(&fd, is_link, set.atime, set.mtime)?;
                }
                ops::stat(&fd)
            })
            .await?;
        let attr = ops::attr_of(&st);
        note(node, &attr);
        Ok(attr.into())
    }

    async fn readlink(&self, cx: &Cx<Self>, node: &Node<Self>) -> OpResult<OsString> {
        let fd = self.fd(cx, node).await?;
        let target = self.run(cx, move || ops::readlink(&fd)).await?;
        Ok(self.target_from_backing(&target))
    }

    async fn mknod(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
        new: NewNode,
    ) -> OpResult<EntryOf<Self>> {
        let (mode, rdev) = (new.mode.bits(), new.rdev);
        self.make(cx, dir, name, mode, move |d, n| {
            ops::mknod(d, n, mode, rdev)
        })
        .await
    }

    async fn mkdir(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
        new: NewNode,
    ) -> OpResult<EntryOf<Self>> {
        let mode = new.mode.bits();
        self.make(cx, dir, name, mode, move |d, n| ops::mkdir(d, n, mode))
            .await
    }

    async fn unlink(&self, cx: &Cx<Self>, dir: &Node<Self>, name: &OsStr) -> OpResult<()> {
        self.remove(cx, dir, name, 0).await
    }

    async fn rmdir(&self, cx: &Cx<Self>, dir: &Node<Self>, name: &OsStr) -> OpResult<()> {
        self.remove(cx, dir, name, libc::AT_REMOVEDIR).await
    }

    async fn symlink(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
        target: &Path,
    ) -> OpResult<EntryOf<Self>> {
        let target = self.target_to_backing(target.as_os_str());
        self.make(cx, dir, name, 0o777, move |d, n| {
            ops::symlink(d, n, &target)
        })
        .await
    }

    async fn rename(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
        newdir: &Node<Self>,
        newname: &OsStr,
        flags: RenameFlags,
    ) -> OpResult<()> {
        let (dirfd, newdirfd) = (self.fd(cx, dir).await?, self.fd(cx, newdir).await?);
        let name = self.backing_name(name).map_err(errno)?;
        let newname = self.backing_name(newname).map_err(errno)?;
        let bit = |on: bool, b: u32| if on { b } else { 0 };
        let bits = bit(flags.noreplace, libc::RENAME_NOREPLACE)
            | bit(flags.exchange, libc::RENAME_EXCHANGE)
            | bit(flags.whiteout, libc::RENAME_WHITEOUT);
        let call = MetaCall::Rename {
            dir: dirfd,
            name,
            newdir: newdirfd,
            newname,
            flags: bits,
        };
        self.meta(cx, call).await.map(drop)
    }

    async fn link(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        newdir: &Node<Self>,
        newname: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        let (fd, dirfd) = (self.fd(cx, node).await?, self.fd(cx, newdir).await?);
        let name = self.backing_name(newname).map_err(errno)?;
        let handles = self.config.handles;
        let f = self
            .run(cx, move || {
                ops::link(&fd, &dirfd, &name)?;
                found(ops::lookup(&dirfd, &name)?, handles)
            })
            .await?;
        Ok(self.entry(cx, f))
    }

    async fn open(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        flags: OpenFlags,
    ) -> OpResult<Open<NullFile>> {
        let fd = self.fd(cx, node).await?;
        let cred = *cx.cred();
        // An unprivileged O_TRUNC clears set-id bits, as a truncate does.
        let kill = flags.contains(OpenFlags::TRUNC) && !cred.is_root() && node.setid.get();
        let flags = self.io_flags(flags);
        let call = MetaCall::Open {
            name: ops::proc_path(&fd),
            // The path is absolute: `dir` only keeps the fd it names open.
            dir: fd,
            flags: ops::open_flags(flags),
            resolve: 0,
        };
        let file = if !kill && !self.config.inline_meta && cx.aio().meta_in_ring(&call) {
            owned(self.meta(cx, call).await?)
        } else {
            self.run(cx, move || {
                let file = owned(call.run_blocking()?);
                if kill {
                    ops::kill_suidgid(&file, |g| cred.in_group(g))?;
                }
                Ok(file)
            })
            .await?
        };
        if kill {
            node.setid.set(false);
        }
        Ok(self.opened(node, Arc::new(file)))
    }

    async fn create(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
        new: NewNode,
        flags: OpenFlags,
    ) -> OpResult<(EntryOf<Self>, Open<NullFile>)> {
        let mode = new.mode.bits();
        let dirfd = self.fd(cx, dir).await?;
        let name = self.backing_name(name).map_err(errno)?;
        let (cred, handles, flags) = (*cx.cred(), self.config.handles, self.io_flags(flags));
        let (file, f) = self
            .run(cx, move || {
                let dst = ops::stat(&dirfd)?;
                let file = ops::create(&dirfd, &name, mode, flags)?;
                let owner = ops::Owner {
                    uid: cred.uid,
                    gid: cred.gid,
                    // Only a set-gid directory asks (reading /proc costs).
                    in_dir_group: dst.st_mode & libc::S_ISGID != 0 && cred.in_group(dst.st_gid),
                };
                ops::give(&file, &dst, owner, mode)?;
                let path = ops::lookup(&dirfd, &name)?;
                Ok((file, found(path, handles)?))
            })
            .await?;
        let entry = self.entry(cx, f);
        let node = cx.node_by_key(&entry.key);
        let opened = match &node {
            Some(n) => self.opened(n, Arc::new(file)),
            None => self.opened(&entry.data, Arc::new(file)),
        };
        Ok((entry, opened))
    }

    async fn read(
        &self,
        cx: &Cx<Self>,
        _node: &Node<Self>,
        file: &NullFile,
        offset: u64,
        size: u32,
    ) -> OpResult<Data> {
        let mut data = cx
            .aio()
            .read_at(&file.fd, offset, size as usize)
            .await
            .map_err(errno)?;
        self.transform.data_from_backing(offset, &mut data);
        Ok(data.into())
    }

    async fn write(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        file: &NullFile,
        offset: u64,
        mut data: Vec<u8>,
        _flags: OpenFlags,
    ) -> OpResult<u32> {
        // The buffer is ours: transformed in place and handed to the aio backend.
        self.transform.data_to_backing(offset, &mut data);
        let fd = &file.fd;
        let n = cx.aio().write_at(fd, offset, data).await.map_err(errno)?;
        let cred = *cx.cred();
        if node.setid.get() && !cred.is_root() {
            let fd = Arc::clone(fd);
            let st = self
                .run(cx, move || ops::kill_suidgid(&fd, |g| cred.in_group(g)))
                .await?;
            note(node, &ops::attr_of(&st));
        }
        Ok(n as u32)
    }

    /// Counts the open out of the node's passthrough or cached opens; the backing fd
    /// closes as `file` drops here.
    async fn release(&self, _cx: &Cx<Self>, node: &Node<Self>, file: NullFile) -> OpResult<()> {
        if open::released(node, file.passthrough) {
            self.stop_passthrough();
        }
        Ok(())
    }

    async fn fsync(
        &self,
        cx: &Cx<Self>,
        _node: &Node<Self>,
        file: &NullFile,
        datasync: bool,
    ) -> OpResult<()> {
        cx.aio().fsync(&file.fd, datasync).await.map_err(errno)
    }

    async fn opendir(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        _flags: OpenFlags,
    ) -> OpResult<Open<NullDir>> {
        let fd = self.fd(cx, node).await?;
        Ok(Open::new(NullDir::new(fd)))
    }

    async fn readdir(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        open: &NullDir,
        offset: u64,
        out: &mut DirBuf,
    ) -> OpResult<()> {
        let list = self.listing(cx, open, offset).await?;
        let dev = dir.key().dev;
        let ino_of =
            |key: &super::BackingKey| cx.node_by_key(key).map_or(key.ino.max(1), |n| n.ino());
        // ".." is the parent's inode number, as stat of "d/.." says.
        let parent = if offset < 2 {
            let (fd, at_root) = (Arc::clone(&open.fd), self.is_root(cx, dir));
            let up = self.run(cx, move || dotdot(&fd, at_root)).await?;
            up.map_or(dir.ino(), |st| ino_of(&ops::key_of(&st)))
        } else {
            dir.ino()
        };
        // Cookies: 1 after ".", 2 after "..", then 3 + the index of the next entry.
        let dots = [(".", dir.ino()), ("..", parent)];
        for (i, (name, ino)) in dots.iter().enumerate().skip(offset as usize) {
            if !out.add(*ino, i as u64 + 1, FileType::Directory, OsStr::new(name)) {
                return Ok(());
            }
        }
        for (i, e) in list
            .iter()
            .enumerate()
            .skip((offset as usize).saturating_sub(2))
        {
            let ino = ino_of(&super::BackingKey { dev, ino: e.ino });
            let name = self.transform.name_from_backing(&e.name);
            if !out.add(ino, i as u64 + 3, e.kind, &name) {
                break;
            }
        }
        Ok(())
    }

    async fn readdirplus(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        open: &NullDir,
        offset: u64,
        out: &mut DirPlusBuf<Self>,
    ) -> OpResult<()> {
        let list = self.listing(cx, open, offset).await?;
        let dirfd = self.fd(cx, dir).await?;
        // Same cookies as readdir; one batch of lookups in one blocking call (a
        // reply of 32 KiB holds fewer than READDIRPLUS_BATCH entries).
        let start = offset as usize;
        let end = (start + READDIRPLUS_BATCH).min(list.len() + 2);
        let names: Vec<OsString> = (start.max(2)..end)
            .map(|i| list[i - 2].name.clone())
            .collect();
        let handles = self.config.handles;
        let at_root = self.is_root(cx, dir);
        let (dot, dotdot, found_all) = self
            .run(cx, move || {
                let dot = ops::stat(&dirfd)?;
                let up = if start < 2 {
                    dotdot(&dirfd, at_root)?
                } else {
                    None
                };
                let all: Vec<_> = names
                    .iter()
                    .map(|n| {
                        let n = ops::component(n)?;
                        found(ops::lookup(&dirfd, &n)?, handles)
                    })
                    .collect();
                Ok((dot, up, all))
            })
            .await?;
        for i in start..start.max(2).min(end) {
            let name = OsStr::new(if i == 0 { "." } else { ".." });
            // ".." is the parent (the framework answers with its inode number when it
            // knows the node), or the root itself.
            let (key, st) = match (i, &dotdot) {
                (1, Some(up)) => (ops::key_of(up), up),
                _ => (*dir.key(), &dot),
            };
            let data = NullNode::new(FileType::Directory, None, None);
            let e = crate::attr::Entry::new(key, data, ops::attr_of(st));
            if !out.add(name, i as u64 + 1, e) {
                return Ok(());
            }
        }
        for (i, f) in (start.max(2)..end).zip(found_all) {
            // A name removed since the listing is skipped.
            let Ok(f) = f else { continue };
            let name = self.transform.name_from_backing(&list[i - 2].name);
            let e = self.entry(cx, f);
            if !out.add(&name, i as u64 + 1, e) {
                break;
            }
        }
        Ok(())
    }

    async fn fsyncdir(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        _open: &NullDir,
        datasync: bool,
    ) -> OpResult<()> {
        let fd = self.fd(cx, node).await?;
        self.run(cx, move || {
            let dir = ops::open(&fd, libc::O_RDONLY | libc::O_DIRECTORY)?;
            let r = if datasync {
                nix::unistd::fdatasync(&dir)
            } else {
                nix::unistd::fsync(&dir)
            };
            r.map_err(|e| io::Error::from_raw_os_error(e as i32))
        })
        .await
    }

    async fn setxattr(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        name: &OsStr,
        value: &[u8],
        flags: XattrFlags,
    ) -> OpResult<()> {
        let (fd, name) = (self.xattr_fd(cx, node).await?, xattr_name(name)?);
        let (value, flags) = (value.to_vec(), flags.bits());
        self.run(cx, move || ops::xattr::set(&fd, &name, &value, flags))
            .await
    }

    async fn getxattr(&self, cx: &Cx<Self>, node: &Node<Self>, name: &OsStr) -> OpResult<Vec<u8>> {
        let (fd, name) = (self.xattr_fd(cx, node).await?, xattr_name(name)?);
        let call = MetaCall::GetXattr {
            path: ops::proc_path(&fd),
            fd: Arc::clone(&fd),
            name: name.clone(),
        };
        if !self.config.inline_meta && cx.aio().meta_in_ring(&call) {
            // Most values fit (the kernel's question before writes, security.capability,
            // is 20 bytes, and mostly absent): one ring entry; a longer one, ERANGE here,
            // is read with a size probe on the pool.
            match cx.aio().meta_into(call, vec![0; XATTR_GUESS]).await {
                Ok((n, mut value)) => {
                    value.truncate(n as usize);
                    return Ok(value);
                }
                Err(e) if e.raw_os_error() == Some(libc::ERANGE) => {}
                Err(e) => return Err(errno(e)),
            }
        }
        self.run(cx, move || ops::xattr::get(&fd, &name)).await
    }

    async fn listxattr(&self, cx: &Cx<Self>, node: &Node<Self>) -> OpResult<Vec<u8>> {
        if node.kind == FileType::Symlink {
            return Ok(Vec::new());
        }
        let fd = self.fd(cx, node).await?;
        self.run(cx, move || ops::xattr::list(&fd)).await
    }

    async fn removexattr(&self, cx: &Cx<Self>, node: &Node<Self>, name: &OsStr) -> OpResult<()> {
        let (fd, name) = (self.xattr_fd(cx, node).await?, xattr_name(name)?);
        self.run(cx, move || ops::xattr::remove(&fd, &name)).await
    }

    async fn fallocate(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        file: &NullFile,
        offset: u64,
        length: u64,
        mode: FallocateFlags,
    ) -> OpResult<()> {
        let (fd, mode) = (Arc::clone(&file.fd), mode.bits());
        // Like a write, it takes set-ids away from a caller without CAP_FSETID.
        let (cred, kill) = (*cx.cred(), node.setid.get() && !cx.cred().is_root());
        let st = self
            .run(cx, move || {
                ops::fallocate(&fd, mode, offset, length)?;
                kill.then(|| ops::kill_suidgid(&fd, |g| cred.in_group(g)))
                    .transpose()
            })
            .await?;
        if let Some(st) = st {
            note(node, &ops::attr_of(&st));
        }
        Ok(())
    }

    async fn lseek(
        &self,
        cx: &Cx<Self>,
        _node: &Node<Self>,
        file: &NullFile,
        offset: i64,
        whence: Whence,
    ) -> OpResult<i64> {
        let fd = Arc::clone(&file.fd);
        self.run(cx, move || ops::lseek(&fd, offset, whence)).await
    }

    async fn copy_file_range(
        &self,
        cx: &Cx<Self>,
        src: FileAt<'_, Self>,
        dst: FileAt<'_, Self>,
        len: u64,
    ) -> OpResult<u32> {
        if T::CHANGES_DATA {
            // The bytes would reach the backing file untransformed at a new offset.
            return Err(Errno::EOPNOTSUPP);
        }
        let (offset_in, offset_out) = (src.offset, dst.offset);
        let (src, dst) = (Arc::clone(&src.file.fd), Arc::clone(&dst.file.fd));
        self.run(cx, move || {
            ops::copy_range(&src, offset_in, &dst, offset_out, len)
        })
        .await
    }
}

/// An xattr name as a C string.
fn xattr_name(name: &OsStr) -> OpResult<CString> {
    CString::new(name.as_encoded_bytes()).map_err(|_| Errno::EINVAL)
}

impl<T: Transform> Layer<T> {
    /// open(2) flags for the backing file of a new open file. With the writeback
    /// cache the kernel reads to fill partial pages and does O_APPEND itself.
    fn io_flags(&self, flags: OpenFlags) -> i32 {
        let flags = flags.bits();
        if !self.config.writeback {
            return flags;
        }
        let flags = flags & !libc::O_APPEND;
        if flags & libc::O_ACCMODE == libc::O_WRONLY {
            (flags & !libc::O_ACCMODE) | libc::O_RDWR
        } else {
            flags
        }
    }

    /// Keeps the open `file` of `node` and answers the open: through the kernel
    /// (passthrough) when it allows it, else served here.
    fn opened(&self, node: &NullNode, fd: Arc<OwnedFd>) -> Open<NullFile> {
        if open::refused(node) {
            self.stop_passthrough();
        }
        let backing = open::choose_passthrough(node, &fd, self.passthrough.get());
        let file = NullFile {
            fd,
            passthrough: backing.is_some(),
        };
        Open {
            keep_cache: self.config.keep_cache,
            passthrough: backing,
            ..Open::new(file)
        }
    }

    /// The kernel refused a backing file: serve all file data from now on.
    fn stop_passthrough(&self) {
        if self.passthrough.replace(false) {
            log::info!("kernel passthrough refused: serving file data through the fs");
        }
    }

    /// The node's fd for an xattr call (none on symlinks: Linux keeps user xattrs off
    /// them, and /proc would follow them).
    async fn xattr_fd(&self, cx: &Cx<Self>, node: &Node<Self>) -> OpResult<Arc<OwnedFd>> {
        if node.kind == FileType::Symlink {
            return Err(Errno::EOPNOTSUPP);
        }
        self.fd(cx, node).await
    }
}
