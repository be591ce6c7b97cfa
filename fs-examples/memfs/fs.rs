//! The memfs ops: a POSIX file system in memory that behaves like Linux tmpfs.
//!
//! Nodes are `Rc<Inode>`s keyed by inode id; directories hold their children's `Rc`s
//! and a weak link to their parent. Every op completes without awaiting, so no borrow
//! of an inode ever spans an `.await`.
//!
//! An inode that loses its last link keeps its data, xattrs, symlink target and its
//! share of the limits as long as anything can still reach it: an open file, or the
//! kernel's reference (its lookup count, which an O_PATH descriptor, a working
//! directory or a path a reader resolved just before an unlink or a rename over it all
//! hold). tmpfs keeps an unlinked inode until its last reference goes in the same way.
//! It is given back when the last of those goes: at the kernel's forget (`reclaim`), or
//! at the last release if the kernel forgot it first. An unlinked inode nobody holds is
//! evicted by the kernel before unlink(2) returns, so its forget is queued ahead of any
//! later request and statvfs frees the space as promptly as on tmpfs.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::rc::{Rc, Weak};
use std::time::SystemTime;

use puffs::{
    AttrReply, Cred, Cx, DirBuf, DirPlusBuf, Entry, EntryOf, Errno, FallocateFlags, FileType,
    NewNode, Node, OpResult, Open, OpenFlags, Ops, RenameFlags, SetAttr, Statvfs, Whence,
    XattrFlags,
};

use crate::config::Config;
use crate::data::Data;
use crate::dir::Dir;
use crate::heap::Heap;
use crate::inode::{
    Content, Inode, LONG_SYMLINK, NAME_MAX, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
};
use crate::perm::{self, Who, MAY_READ, MAY_WRITE, S_ISVTX};
use crate::space::{Space, INODE_SPACE};
use crate::xattr::{self, Namespace, ENOATTR};

/// readdir cookies: 1 after ".", 2 after "..", and `seq + 2` after the entry with
/// sequence number `seq` (which starts at 1).
const COOKIE_BASE: u64 = 2;

/// Target lengths from PATH_MAX on are too long (tmpfs: the target and its NUL must
/// fit in a page).
const SYMLINK_MAX: usize = 4095;

pub struct MemFs {
    root: Rc<Inode>,
    next_id: Cell<u64>,
    space: Space,
    /// Hands freed pages back to the system.
    heap: Heap,
    noatime: bool,
    /// With export support: every inode by number, for `lookup_ino` (file handles
    /// of nodes the kernel has forgotten). Inode numbers are never reused, so the
    /// generation is always 0.
    by_id: Option<RefCell<HashMap<u64, Weak<Inode>>>>,
}

fn now() -> SystemTime {
    SystemTime::now()
}

fn check_name(name: &OsStr) -> Result<(), Errno> {
    if name.len() > NAME_MAX {
        Err(Errno::ENAMETOOLONG)
    } else {
        Ok(())
    }
}

fn entry(inode: &Rc<Inode>) -> EntryOf<MemFs> {
    Entry::new(inode.id, Rc::clone(inode), inode.attr())
}

fn file_opened() -> Open<()> {
    // Only the kernel writes file data, through its own page cache: keep it.
    Open {
        keep_cache: true,
        ..Open::new(())
    }
}

/// Whether `anc` is `node` or one of its ancestors.
fn is_ancestor_or_self(anc: &Rc<Inode>, node: &Rc<Inode>) -> bool {
    let mut cur = Rc::clone(node);
    loop {
        if Rc::ptr_eq(&cur, anc) {
            return true;
        }
        match cur.parent() {
            Some(p) if !Rc::ptr_eq(&p, &cur) => cur = p,
            _ => return false,
        }
    }
}

impl MemFs {
    pub fn new(config: &Config) -> MemFs {
        let space = Space::new(config.size, config.inodes);
        // The root takes an inode like any other (with inodes=1 nothing else fits).
        let _ = space.reserve_inode();
        let root = Rc::new_cyclic(|me| {
            Inode::new(
                1,
                S_IFDIR | (config.mode & 0o7777),
                config.uid,
                config.gid,
                Content::Dir(Box::new(Dir::new(me.clone()))),
                now(),
            )
        });
        let by_id = config
            .export
            .then(|| RefCell::new(HashMap::from([(root.id, Rc::downgrade(&root))])));
        MemFs {
            root,
            next_id: Cell::new(2),
            space,
            heap: Heap::default(),
            noatime: config.noatime,
            by_id,
        }
    }

    fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    fn accessed(&self, inode: &Inode) {
        if !self.noatime {
            inode.accessed(now());
        }
    }

    /// Makes a node of `mode` (type and permission bits) named `name` in `dir`.
    fn make(
        &self,
        who: &impl Who,
        dir: &Rc<Inode>,
        name: &OsStr,
        mode: u32,
        content: Content,
    ) -> OpResult<Rc<Inode>> {
        check_name(name)?;
        {
            let d = dir.dir()?;
            if dir.nlink() == 0 {
                return Err(Errno::ENOENT);
            }
            if d.get(name).is_some() {
                return Err(Errno::EEXIST);
            }
        }
        let is_dir = mode & S_IFMT == S_IFDIR;
        let (gid, perm) = perm::new_owner(dir.perm(), dir.gid(), is_dir, mode, who);
        self.space.reserve_inode()?;
        if matches!(&content, Content::Symlink(t) if t.len() >= LONG_SYMLINK)
            && !self.space.alloc_pages(1)
        {
            self.space.release(INODE_SPACE);
            return Err(Errno::ENOSPC);
        }
        let t = now();
        let inode = Rc::new(Inode::new(
            self.next_id(),
            (mode & S_IFMT) | perm,
            who.uid(),
            gid,
            content,
            t,
        ));
        dir.dir_mut()?.insert(name, Rc::clone(&inode));
        if let Some(ids) = &self.by_id {
            ids.borrow_mut().insert(inode.id, Rc::downgrade(&inode));
        }
        if is_dir {
            dir.set_nlink(dir.nlink() + 1);
        }
        dir.modified(t);
        Ok(inode)
    }

    /// `victim` lost a link (its entry is already gone). What it holds stays: the caller
    /// gives it back through `release_if_unreachable` once nothing can reach it.
    fn drop_link(&self, victim: &Rc<Inode>, t: SystemTime) {
        victim.changed(t);
        if victim.is_dir() {
            victim.set_nlink(0);
        } else {
            let left = victim.nlink().saturating_sub(1);
            victim.set_nlink(left);
            if left > 0 {
                // Each extra hard link took inode space of its own.
                self.space.release(INODE_SPACE);
            }
        }
    }

    /// An open file or directory was released; `known` says whether the kernel still
    /// holds the node (it normally does: it forgets a node only after its releases).
    fn closed(&self, inode: &Inode, known: bool) {
        inode.set_opens(inode.opens().saturating_sub(1));
        self.release_if_unreachable(inode, known);
    }

    /// Gives back what `inode` holds once it has no name, no open file, and the kernel
    /// (`known`) no longer holds it: before that a reader may still open and read it.
    fn release_if_unreachable(&self, inode: &Inode, known: bool) {
        if inode.nlink() == 0 && inode.opens() == 0 && !known {
            self.free(inode);
        }
    }

    /// Whether the kernel holds the node of `inode` (has looked it up and not forgotten
    /// it: it may still open it, by an O_PATH descriptor or a path it resolved).
    fn known(cx: &Cx<Self>, inode: &Inode) -> bool {
        cx.node_by_key(&inode.id).is_some()
    }

    /// Gives back what an unreachable inode held of the limits, and its memory. Once:
    /// nothing can reach the inode again to use it.
    fn free(&self, inode: &Inode) {
        if !inode.mark_freed() {
            return;
        }
        if let Some(ids) = &self.by_id {
            ids.borrow_mut().remove(&inode.id);
        }
        let mut body = inode.body_mut();
        let mut ispace = INODE_SPACE;
        if let Some(x) = body.xattrs.take() {
            ispace += x
                .sizes()
                .map(|(n, v)| self.space.xattr_space(n, v))
                .sum::<u64>();
        }
        self.space.release(ispace);
        let freed = match &mut body.content {
            Content::File(data) => data.take().map_or(0, |d| d.pages()),
            Content::Symlink(t) => {
                let pages = u64::from(t.len() >= LONG_SYMLINK);
                **t = OsString::new();
                pages
            }
            _ => 0,
        };
        drop(body);
        let before = self.space.used_pages();
        self.space.free_pages(freed);
        self.pages_dropped(before);
    }

    /// Pages were freed (and dropped) since `used_before` were in use: let the heap
    /// give the memory back.
    fn pages_dropped(&self, used_before: u64) {
        let used = self.space.used_pages();
        self.heap.freed(used_before.saturating_sub(used), used);
    }

    /// Sets the size of a regular file: shrinking frees pages past the end.
    fn resize(&self, inode: &Inode, size: u64) -> OpResult<()> {
        match inode.kind() {
            FileType::RegularFile => {}
            FileType::Directory => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
        if size > i64::MAX as u64 {
            return Err(Errno::EFBIG);
        }
        // Like tmpfs, a "truncate" to the same size also drops pages fallocated past
        // the end.
        if size <= inode.size() {
            let before = self.space.used_pages();
            if let Content::File(slot) = &mut inode.body_mut().content {
                if let Some(d) = slot {
                    d.truncate(size, &self.space);
                    if d.is_empty() {
                        *slot = None;
                    }
                }
            }
            self.pages_dropped(before);
        }
        inode.set_size(size);
        Ok(())
    }

    /// What a write or truncate of a regular file by `who` takes away, as the kernel
    /// file systems do it (we negotiate FUSE_HANDLE_KILLPRIV_V2, so the kernel leaves
    /// it to us): set-uid/set-gid for an unprivileged caller, file capabilities for
    /// anyone. Returns whether anything changed.
    fn modify_kill_priv(&self, inode: &Inode, who: &impl Who) -> bool {
        if inode.kind() != FileType::RegularFile {
            return false;
        }
        let perm = perm::modify_kill_priv(inode.perm(), inode.gid(), who);
        let killed = perm != inode.perm();
        inode.set_perm(perm);
        self.drop_caps(inode) || killed
    }

    /// Drops the `security.capability` xattr (security_inode_killpriv). Returns
    /// whether there was one.
    fn drop_caps(&self, inode: &Inode) -> bool {
        let name = OsStr::new(xattr::CAPS);
        let old = {
            let mut body = inode.body_mut();
            let Some(x) = body.xattrs.as_mut() else {
                return false;
            };
            let Ok(old) = x.remove(name) else {
                return false;
            };
            if x.is_empty() {
                body.xattrs = None;
            }
            old
        };
        self.space.release(self.space.xattr_space(name.len(), old));
        true
    }

    /// Whether `who` may get (or, with `write`, set or remove) attributes of `ns` on
    /// `inode`, as the kernel's xattr_permission and capability checks decide.
    fn xattr_access(
        &self,
        inode: &Inode,
        ns: Namespace,
        who: &impl Who,
        write: bool,
    ) -> OpResult<()> {
        let denied = if write { Errno::EPERM } else { ENOATTR };
        match ns {
            Namespace::Trusted if !who.is_root() => Err(denied),
            Namespace::Security if write && !who.is_root() => Err(Errno::EPERM),
            Namespace::User => {
                let kind = inode.kind();
                if kind != FileType::RegularFile && kind != FileType::Directory {
                    return Err(denied);
                }
                let sticky_dir = kind == FileType::Directory && inode.perm() & S_ISVTX != 0;
                if write && sticky_dir && !who.is_root() && who.uid() != inode.uid() {
                    return Err(Errno::EPERM);
                }
                let want = if write { MAY_WRITE } else { MAY_READ };
                if !perm::may(
                    inode.perm(),
                    inode.uid(),
                    inode.gid(),
                    inode.is_dir(),
                    who,
                    want,
                ) {
                    return Err(Errno::EACCES);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// link(2): a new name for `node` in `newdir`.
    fn link_into(&self, node: &Rc<Inode>, newdir: &Rc<Inode>, newname: &OsStr) -> OpResult<()> {
        check_name(newname)?;
        if node.is_dir() {
            return Err(Errno::EPERM);
        }
        {
            let d = newdir.dir()?;
            if newdir.nlink() == 0 || node.nlink() == 0 {
                return Err(Errno::ENOENT);
            }
            if d.get(newname).is_some() {
                return Err(Errno::EEXIST);
            }
        }
        // Each hard link takes inode space, as in tmpfs.
        self.space.reserve_inode()?;
        newdir.dir_mut()?.insert(newname, Rc::clone(node));
        node.set_nlink(node.nlink() + 1);
        let t = now();
        node.changed(t);
        newdir.modified(t);
        Ok(())
    }

    /// unlink (`is_rmdir` false) or rmdir `name` in `dir`. Returns the inode that lost
    /// the link.
    fn remove(
        &self,
        who: &Cred,
        dir: &Rc<Inode>,
        name: &OsStr,
        is_rmdir: bool,
    ) -> OpResult<Rc<Inode>> {
        check_name(name)?;
        let victim = dir.dir()?.get(name).cloned().ok_or(Errno::ENOENT)?;
        if !perm::sticky_ok(dir.perm(), dir.uid(), victim.uid(), who) {
            return Err(Errno::EPERM);
        }
        match (is_rmdir, victim.is_dir()) {
            (false, true) => return Err(Errno::EISDIR),
            (true, false) => return Err(Errno::ENOTDIR),
            (true, true) if !victim.dir()?.is_empty() => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        dir.dir_mut()?.remove(name);
        if is_rmdir {
            dir.set_nlink(dir.nlink() - 1);
        }
        let t = now();
        dir.modified(t);
        self.drop_link(&victim, t);
        Ok(victim)
    }

    /// rename(2) and renameat2(2), with tmpfs's checks in the kernel's order. Returns
    /// the inode the move replaced, if any.
    #[allow(clippy::too_many_arguments)]
    fn move_entry(
        &self,
        who: &Cred,
        dir: &Rc<Inode>,
        name: &OsStr,
        newdir: &Rc<Inode>,
        newname: &OsStr,
        flags: RenameFlags,
    ) -> OpResult<Option<Rc<Inode>>> {
        if flags.exchange && (flags.noreplace || flags.whiteout) {
            return Err(Errno::EINVAL);
        }
        check_name(name)?;
        check_name(newname)?;
        let src = dir.dir()?.get(name).cloned().ok_or(Errno::ENOENT)?;
        let dst = newdir.dir()?.get(newname).cloned();
        if newdir.nlink() == 0 {
            return Err(Errno::ENOENT);
        }
        if flags.noreplace && dst.is_some() {
            return Err(Errno::EEXIST);
        }
        if flags.exchange && dst.is_none() {
            return Err(Errno::ENOENT);
        }
        // No directory may end up inside itself.
        if src.is_dir() && is_ancestor_or_self(&src, newdir) {
            return Err(Errno::EINVAL);
        }
        if let Some(dst) = &dst {
            if dst.is_dir() && is_ancestor_or_self(dst, dir) {
                return Err(if flags.exchange {
                    Errno::EINVAL
                } else {
                    Errno::ENOTEMPTY
                });
            }
            if Rc::ptr_eq(&src, dst) {
                return Ok(None); // two links to one inode: nothing to do
            }
        }
        if !perm::sticky_ok(dir.perm(), dir.uid(), src.uid(), who) {
            return Err(Errno::EPERM);
        }
        if let Some(dst) = &dst {
            if !perm::sticky_ok(newdir.perm(), newdir.uid(), dst.uid(), who) {
                return Err(Errno::EPERM);
            }
            if !flags.exchange {
                match (src.is_dir(), dst.is_dir()) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) if !dst.dir()?.is_empty() => return Err(Errno::ENOTEMPTY),
                    _ => {}
                }
            }
        }
        let t = now();
        let same_dir = Rc::ptr_eq(dir, newdir);
        let replaced = if flags.exchange {
            let dst = dst.expect("checked above");
            dir.dir_mut()?.remove(name);
            newdir.dir_mut()?.remove(newname);
            // Both entries become the newest of their directories, as in tmpfs.
            dir.dir_mut()?.insert(name, Rc::clone(&dst));
            newdir.dir_mut()?.insert(newname, Rc::clone(&src));
            if !same_dir {
                for (moved, from, to) in [(&src, dir, newdir), (&dst, newdir, dir)] {
                    if moved.is_dir() {
                        moved.dir_mut()?.parent = Rc::downgrade(to);
                        from.set_nlink(from.nlink() - 1);
                        to.set_nlink(to.nlink() + 1);
                    }
                }
            }
            dst.changed(t);
            None
        } else {
            // tmpfs makes the whiteout (a 0:0 character device) before the move.
            let whiteout = if flags.whiteout {
                self.space.reserve_inode()?;
                let (gid, perm) = perm::new_owner(dir.perm(), dir.gid(), false, 0, who);
                let w = Inode::new(
                    self.next_id(),
                    S_IFCHR | perm,
                    who.uid(),
                    gid,
                    Content::Special(0),
                    t,
                );
                Some(Rc::new(w))
            } else {
                None
            };
            if let Some(dst) = &dst {
                newdir.dir_mut()?.remove(newname);
                if dst.is_dir() {
                    newdir.set_nlink(newdir.nlink() - 1);
                }
                self.drop_link(dst, t);
            }
            dir.dir_mut()?.remove(name);
            if let Some(w) = whiteout {
                dir.dir_mut()?.insert(name, w);
            }
            newdir.dir_mut()?.insert(newname, Rc::clone(&src));
            if src.is_dir() && !same_dir {
                src.dir_mut()?.parent = Rc::downgrade(newdir);
                dir.set_nlink(dir.nlink() - 1);
                newdir.set_nlink(newdir.nlink() + 1);
            }
            dst
        };
        src.changed(t);
        dir.modified(t);
        newdir.modified(t);
        Ok(replaced)
    }

    /// readdir's "." and ".." and the entries after `offset`, each with its cookie;
    /// `add` returns false when the reply is full.
    fn list(
        &self,
        dir: &Rc<Inode>,
        offset: u64,
        mut add: impl FnMut(u64, &OsStr, &Rc<Inode>) -> bool,
    ) -> OpResult<()> {
        let parent = dir.parent().unwrap_or_else(|| Rc::clone(dir));
        {
            let d = dir.dir()?;
            let full = (offset < 1 && !add(1, OsStr::new("."), dir))
                || (offset < 2 && !add(2, OsStr::new(".."), &parent));
            if !full {
                let bound = if offset <= COOKIE_BASE {
                    u64::MAX
                } else {
                    offset - COOKIE_BASE
                };
                for (seq, name, child) in d.entries_below(bound) {
                    if !add(seq + COOKIE_BASE, name, child) {
                        break;
                    }
                }
            }
        }
        self.accessed(dir);
        Ok(())
    }
}

#[puffs::ops]
impl Ops for MemFs {
    type Node = Rc<Inode>;
    type Key = u64;
    // Nothing per open file or directory: the open count lives in the inode (it
    // decides when an unlinked inode's space goes back), and the kernel enforces the
    // access mode.
    type File = ();
    type Dir = ();
    const KILLS_SUIDGID: bool = true;

    fn root(&self) -> (u64, Rc<Inode>) {
        (self.root.id, Rc::clone(&self.root))
    }

    fn reclaim(&self, node: &Node<Self>) {
        // The kernel's reference was the last one unless a name or an open file is left.
        self.release_if_unreachable(node, false);
    }

    async fn statvfs(&self, _cx: &Cx<Self>) -> OpResult<Statvfs> {
        Ok(self.space.statvfs())
    }

    async fn lookup(
        &self,
        _cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        check_name(name)?;
        let child = match name.as_encoded_bytes() {
            b"." => Rc::clone(dir),
            b".." => dir.parent().unwrap_or_else(|| Rc::clone(dir)),
            _ => dir.dir()?.get(name).cloned().ok_or(Errno::ENOENT)?,
        };
        Ok(entry(&child))
    }

    async fn lookup_ino(&self, _cx: &Cx<Self>, ino: u64) -> OpResult<EntryOf<Self>> {
        let ids = self.by_id.as_ref().ok_or(Errno::ESTALE)?;
        let inode = ids.borrow().get(&ino).and_then(Weak::upgrade);
        match inode {
            // Unlinked (and so freed once the kernel forgot it): the handle is stale.
            Some(inode) if inode.nlink() > 0 => Ok(entry(&inode)),
            _ => Err(Errno::ESTALE),
        }
    }

    async fn getattr(
        &self,
        _cx: &Cx<Self>,
        node: &Node<Self>,
        _f: Option<&()>,
    ) -> OpResult<AttrReply> {
        Ok(node.attr().into())
    }

    async fn setattr(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        file: Option<&()>,
        set: &SetAttr,
    ) -> OpResult<AttrReply> {
        let who = cx.cred();
        let inode: &Inode = node;
        // All checks before any change, in the kernel's order.
        if set.uid.is_some() || set.gid.is_some() {
            perm::chown(set.uid, set.gid, inode.uid(), inode.gid(), who)?;
        }
        let new_perm = match set.mode {
            Some(m) => Some(perm::chmod(
                m.bits(),
                inode.uid(),
                set.gid.unwrap_or(inode.gid()),
                who,
            )?),
            None => None,
        };
        // A truncate comes with mtime = now, which needs no ownership.
        if set.size.is_none() {
            perm::set_times(set.atime, set.mtime, inode.uid(), who, || {
                perm::may(
                    inode.perm(),
                    inode.uid(),
                    inode.gid(),
                    inode.is_dir(),
                    who,
                    MAY_WRITE,
                )
            })?;
        }
        let t = now();
        let mut ctime = true;
        if let Some(size) = set.size {
            let old = inode.size();
            let had_pages = inode.attr().blocks > 0;
            self.resize(inode, size)?;
            // tmpfs moves mtime and ctime when the size changes; on ftruncate and
            // open(O_TRUNC) always; on truncate(2) to the same size only if the file
            // has pages (its truncate_range runs).
            let killed = self.modify_kill_priv(inode, who);
            if size != old || file.is_some() || had_pages {
                inode.set_mtime(t);
            } else {
                ctime = killed
                    || set.mode.is_some()
                    || set.uid.is_some()
                    || set.gid.is_some()
                    || set.atime.is_some()
                    || set.mtime.is_some();
            }
        }
        if set.uid.is_some() || set.gid.is_some() {
            let old_gid = inode.gid();
            if let Some(u) = set.uid {
                inode.set_uid(u);
            }
            if let Some(g) = set.gid {
                inode.set_gid(g);
            }
            if set.mode.is_none() {
                inode.set_perm(perm::chown_kill_priv(
                    inode.perm(),
                    inode.is_dir(),
                    old_gid,
                    who,
                ));
            }
            if !inode.is_dir() {
                self.drop_caps(inode);
            }
        }
        if let Some(p) = new_perm {
            inode.set_perm(p);
        }
        if let Some(a) = set.atime {
            inode.set_atime(a.resolve(t));
        }
        if let Some(m) = set.mtime {
            inode.set_mtime(m.resolve(t));
        }
        if ctime {
            inode.set_ctime(set.ctime.unwrap_or(t));
        }
        Ok(inode.attr().into())
    }

    async fn readlink(&self, _cx: &Cx<Self>, node: &Node<Self>) -> OpResult<OsString> {
        let target = match &node.body().content {
            Content::Symlink(t) => OsString::clone(t),
            _ => return Err(Errno::EINVAL),
        };
        self.accessed(node);
        Ok(target)
    }

    async fn mknod(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
        new: NewNode,
    ) -> OpResult<EntryOf<Self>> {
        let (mode, rdev) = (new.mode.bits(), new.rdev);
        let (mode, content) = match FileType::from_mode(mode) {
            _ if mode & S_IFMT == 0 => (mode | S_IFREG, Content::File(None)),
            Some(FileType::RegularFile) => (mode, Content::File(None)),
            Some(FileType::CharDevice | FileType::BlockDevice) => (mode, Content::Special(rdev)),
            Some(FileType::Fifo | FileType::Socket) => (mode, Content::Special(0)),
            Some(FileType::Directory) => return Err(Errno::EPERM),
            _ => return Err(Errno::EINVAL),
        };
        Ok(entry(&self.make(cx.cred(), dir, name, mode, content)?))
    }

    async fn mkdir(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
        new: NewNode,
    ) -> OpResult<EntryOf<Self>> {
        let content = Content::Dir(Box::new(Dir::new(Rc::downgrade(dir))));
        Ok(entry(&self.make(
            cx.cred(),
            dir,
            name,
            S_IFDIR | u32::from(new.mode.perm()),
            content,
        )?))
    }

    async fn symlink(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
        target: &Path,
    ) -> OpResult<EntryOf<Self>> {
        let target = target.as_os_str();
        if target.len() > SYMLINK_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let content = Content::Symlink(Box::new(target.to_owned()));
        Ok(entry(&self.make(
            cx.cred(),
            dir,
            name,
            S_IFLNK | 0o777,
            content,
        )?))
    }

    async fn unlink(&self, cx: &Cx<Self>, dir: &Node<Self>, name: &OsStr) -> OpResult<()> {
        let victim = self.remove(cx.cred(), dir, name, false)?;
        self.release_if_unreachable(&victim, Self::known(cx, &victim));
        Ok(())
    }

    async fn rmdir(&self, cx: &Cx<Self>, dir: &Node<Self>, name: &OsStr) -> OpResult<()> {
        let victim = self.remove(cx.cred(), dir, name, true)?;
        self.release_if_unreachable(&victim, Self::known(cx, &victim));
        Ok(())
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
        let replaced = self.move_entry(cx.cred(), dir, name, newdir, newname, flags)?;
        if let Some(victim) = replaced {
            self.release_if_unreachable(&victim, Self::known(cx, &victim));
        }
        Ok(())
    }

    async fn link(
        &self,
        _cx: &Cx<Self>,
        node: &Node<Self>,
        newdir: &Node<Self>,
        newname: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        self.link_into(node, newdir, newname)?;
        Ok(entry(node))
    }

    async fn open(&self, cx: &Cx<Self>, node: &Node<Self>, flags: OpenFlags) -> OpResult<Open<()>> {
        if node.is_dir() {
            node.set_opens(node.opens() + 1);
            return Ok(Open::new(()));
        }
        // Atomic O_TRUNC: the kernel sends it here and no SETATTR. Like tmpfs, the
        // times move even when the file was already empty.
        if flags.contains(OpenFlags::TRUNC) && node.kind() == FileType::RegularFile {
            self.resize(node, 0)?;
            self.modify_kill_priv(node, cx.cred());
            node.modified(now());
        }
        node.set_opens(node.opens() + 1);
        Ok(file_opened())
    }

    async fn create(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
        new: NewNode,
        _flags: OpenFlags,
    ) -> OpResult<(EntryOf<Self>, Open<()>)> {
        let inode = self.make(
            cx.cred(),
            dir,
            name,
            S_IFREG | u32::from(new.mode.perm()),
            Content::File(None),
        )?;
        inode.set_opens(1);
        Ok((entry(&inode), file_opened()))
    }

    async fn read(
        &self,
        _cx: &Cx<Self>,
        node: &Node<Self>,
        _file: &(),
        offset: u64,
        size: u32,
    ) -> OpResult<puffs::Data> {
        let out = match &node.body().content {
            Content::File(Some(d)) => d.read(offset, size, node.size()),
            Content::File(None) => Data::default().read(offset, size, node.size()),
            Content::Dir(_) => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        };
        self.accessed(node);
        Ok(out.into())
    }

    async fn write(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        _file: &(),
        offset: u64,
        data: Vec<u8>,
        _flags: OpenFlags,
    ) -> OpResult<u32> {
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= i64::MAX as u64);
        if end.is_none() {
            return Err(Errno::EFBIG);
        }
        let written = {
            let mut body = node.body_mut();
            let slot = match &mut body.content {
                Content::File(slot) => slot,
                Content::Dir(_) => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            };
            let r = slot
                .get_or_insert_with(Box::default)
                .write(offset, &data, &self.space);
            if slot.as_ref().is_some_and(|d| d.is_empty()) {
                *slot = None;
            }
            r?
        };
        if written > 0 {
            node.set_size(node.size().max(offset + written as u64));
            self.modify_kill_priv(node, cx.cred());
            node.modified(now());
        }
        Ok(written as u32)
    }

    async fn release(&self, _cx: &Cx<Self>, node: &Node<Self>, _file: ()) -> OpResult<()> {
        self.closed(node, node.lookups() > 0);
        Ok(())
    }

    async fn fsync(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _file: &(),
        _datasync: bool,
    ) -> OpResult<()> {
        Ok(())
    }

    async fn opendir(
        &self,
        _cx: &Cx<Self>,
        node: &Node<Self>,
        _flags: OpenFlags,
    ) -> OpResult<Open<()>> {
        node.dir()?;
        node.set_opens(node.opens() + 1);
        Ok(Open::new(()))
    }

    async fn readdir(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        _file: &(),
        offset: u64,
        out: &mut DirBuf,
    ) -> OpResult<()> {
        self.list(dir, offset, |cookie, name, inode| {
            // The node's number, or the one it will get (its id) when looked up.
            let ino = cx.node_by_key(&inode.id).map_or(inode.id, |n| n.ino());
            out.add(ino, cookie, inode.kind(), name)
        })
    }

    async fn readdirplus(
        &self,
        _cx: &Cx<Self>,
        dir: &Node<Self>,
        _file: &(),
        offset: u64,
        out: &mut DirPlusBuf<Self>,
    ) -> OpResult<()> {
        self.list(dir, offset, |cookie, name, inode| {
            out.add(name, cookie, entry(inode))
        })
    }

    async fn releasedir(&self, _cx: &Cx<Self>, node: &Node<Self>, _dir: ()) -> OpResult<()> {
        self.closed(node, node.lookups() > 0);
        Ok(())
    }

    async fn fsyncdir(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _file: &(),
        _datasync: bool,
    ) -> OpResult<()> {
        Ok(())
    }

    async fn setxattr(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        name: &OsStr,
        value: &[u8],
        flags: XattrFlags,
    ) -> OpResult<()> {
        let ns = xattr::namespace(name)?;
        self.xattr_access(node, ns, cx.cred(), true)?;
        // tmpfs takes the space first and gives it back if the change fails.
        let charge = self.space.xattr_space(name.len(), value.len());
        if !self.space.charge(charge) {
            return Err(Errno::ENOSPC);
        }
        let result = {
            let mut body = node.body_mut();
            let r = body
                .xattrs
                .get_or_insert_with(Box::default)
                .set(name, value, flags);
            if body.xattrs.as_ref().is_some_and(|x| x.is_empty()) {
                body.xattrs = None;
            }
            r
        };
        match result {
            Ok(replaced) => {
                if let Some(old) = replaced {
                    self.space.release(self.space.xattr_space(name.len(), old));
                }
                node.changed(now());
                Ok(())
            }
            Err(e) => {
                self.space.release(charge);
                Err(e)
            }
        }
    }

    async fn getxattr(&self, cx: &Cx<Self>, node: &Node<Self>, name: &OsStr) -> OpResult<Vec<u8>> {
        let ns = xattr::namespace(name)?;
        self.xattr_access(node, ns, cx.cred(), false)?;
        let body = node.body();
        let value = body.xattrs.as_ref().and_then(|x| x.get(name));
        value.map(<[u8]>::to_vec).ok_or(ENOATTR)
    }

    async fn listxattr(&self, cx: &Cx<Self>, node: &Node<Self>) -> OpResult<Vec<u8>> {
        let root = cx.cred().is_root();
        let body = node.body();
        Ok(body
            .xattrs
            .as_ref()
            .map(|x| x.list(|n| !root && n.starts_with(b"trusted.")))
            .unwrap_or_default())
    }

    async fn removexattr(&self, cx: &Cx<Self>, node: &Node<Self>, name: &OsStr) -> OpResult<()> {
        let ns = xattr::namespace(name)?;
        self.xattr_access(node, ns, cx.cred(), true)?;
        let old = {
            let mut body = node.body_mut();
            let x = body.xattrs.as_mut().ok_or(ENOATTR)?;
            let old = x.remove(name)?;
            if x.is_empty() {
                body.xattrs = None;
            }
            old
        };
        self.space.release(self.space.xattr_space(name.len(), old));
        node.changed(now());
        Ok(())
    }

    async fn fallocate(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        _file: &(),
        offset: u64,
        length: u64,
        mode: FallocateFlags,
    ) -> OpResult<()> {
        let (keep, punch) = (FallocateFlags::KEEP_SIZE, FallocateFlags::PUNCH_HOLE);
        if !mode.difference(keep | punch).is_empty()
            || (mode.contains(punch) && !mode.contains(keep))
        {
            return Err(Errno::EOPNOTSUPP);
        }
        match node.kind() {
            FileType::RegularFile => {}
            FileType::Directory => return Err(Errno::EISDIR),
            _ => return Err(Errno::ENODEV),
        }
        if length == 0 {
            return Err(Errno::EINVAL);
        }
        let end = offset
            .checked_add(length)
            .filter(|&e| e <= i64::MAX as u64)
            .ok_or(Errno::EFBIG)?;
        {
            let mut body = node.body_mut();
            let Content::File(slot) = &mut body.content else {
                return Err(Errno::ENODEV);
            };
            let before = self.space.used_pages();
            let d = slot.get_or_insert_with(Box::default);
            let r = if mode.contains(punch) {
                d.punch(offset, length, &self.space);
                Ok(())
            } else {
                d.allocate(offset, length, &self.space)
            };
            if d.is_empty() {
                *slot = None;
            }
            drop(body);
            self.pages_dropped(before);
            r?;
        }
        if !mode.contains(keep) && end > node.size() {
            node.set_size(end);
        }
        self.modify_kill_priv(node, cx.cred());
        node.modified(now());
        Ok(())
    }

    async fn lseek(
        &self,
        _cx: &Cx<Self>,
        node: &Node<Self>,
        _file: &(),
        offset: i64,
        whence: Whence,
    ) -> OpResult<i64> {
        let Ok(off) = u64::try_from(offset) else {
            return Err(Errno::ENXIO);
        };
        let size = node.size();
        let empty = Data::default();
        let body = node.body();
        let data = match &body.content {
            Content::File(Some(d)) => d,
            Content::File(None) => &empty,
            _ => return Err(Errno::EINVAL),
        };
        let pos = match whence {
            Whence::Data => data.seek_data(off, size)?,
            Whence::Hole => data.seek_hole(off, size)?,
            _ => return Err(Errno::EINVAL),
        };
        Ok(pos as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A caller with no supplementary groups (no such pid).
    fn user(uid: u32) -> Cred {
        Cred {
            uid,
            gid: uid,
            pid: u32::MAX,
        }
    }

    const ROOT: Cred = Cred {
        uid: 0,
        gid: 0,
        pid: u32::MAX,
    };

    fn n(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    struct T {
        fs: MemFs,
        root: Rc<Inode>,
    }

    impl T {
        fn new(size: u64, inodes: u64) -> T {
            let fs = MemFs::new(&Config {
                size,
                inodes,
                ..Config::default()
            });
            let root = Rc::clone(&fs.root);
            T { fs, root }
        }
        fn mkdir(&self, dir: &Rc<Inode>, name: &str) -> Rc<Inode> {
            let content = Content::Dir(Box::new(Dir::new(Rc::downgrade(dir))));
            self.fs
                .make(&ROOT, dir, n(name), S_IFDIR | 0o755, content)
                .unwrap()
        }
        fn file(&self, dir: &Rc<Inode>, name: &str) -> Rc<Inode> {
            self.fs
                .make(&ROOT, dir, n(name), S_IFREG | 0o644, Content::File(None))
                .unwrap()
        }
        fn rename(
            &self,
            d: &Rc<Inode>,
            a: &str,
            nd: &Rc<Inode>,
            b: &str,
            flags: RenameFlags,
        ) -> OpResult<()> {
            self.fs
                .move_entry(&ROOT, d, n(a), nd, n(b), flags)
                .map(drop)
        }
        fn get(&self, d: &Rc<Inode>, name: &str) -> Option<Rc<Inode>> {
            d.dir().unwrap().get(n(name)).cloned()
        }
    }

    const PLAIN: RenameFlags = RenameFlags {
        noreplace: false,
        exchange: false,
        whiteout: false,
    };
    const NOREPLACE: RenameFlags = RenameFlags {
        noreplace: true,
        ..PLAIN
    };
    const EXCHANGE: RenameFlags = RenameFlags {
        exchange: true,
        ..PLAIN
    };

    #[test]
    fn ancestry_for_rename_loops() {
        let t = T::new(0, 0);
        let a = t.mkdir(&t.root, "a");
        let b = t.mkdir(&a, "b");
        let c = t.mkdir(&t.root, "c");
        assert!(is_ancestor_or_self(&a, &b));
        assert!(is_ancestor_or_self(&a, &a));
        assert!(is_ancestor_or_self(&t.root, &b));
        assert!(!is_ancestor_or_self(&b, &a));
        assert!(!is_ancestor_or_self(&c, &b));
        assert!(!is_ancestor_or_self(&a, &t.root));
    }

    #[test]
    fn rename_errors() {
        let t = T::new(0, 0);
        let a = t.mkdir(&t.root, "a");
        let b = t.mkdir(&a, "b");
        t.mkdir(&b, "c");
        t.file(&t.root, "f");
        t.mkdir(&t.root, "empty");
        let r = &t.root;
        assert_eq!(t.rename(r, "a", &b, "z", PLAIN), Err(Errno::EINVAL));
        assert_eq!(t.rename(r, "a", &a, "z", PLAIN), Err(Errno::EINVAL));
        assert_eq!(t.rename(&b, "c", r, "a", PLAIN), Err(Errno::ENOTEMPTY));
        assert_eq!(t.rename(&b, "c", r, "a", EXCHANGE), Err(Errno::EINVAL));
        assert_eq!(t.rename(r, "f", r, "a", PLAIN), Err(Errno::EISDIR));
        assert_eq!(t.rename(r, "a", r, "f", PLAIN), Err(Errno::ENOTDIR));
        assert_eq!(t.rename(r, "empty", r, "a", PLAIN), Err(Errno::ENOTEMPTY));
        assert_eq!(t.rename(r, "nope", r, "x", PLAIN), Err(Errno::ENOENT));
        assert_eq!(t.rename(r, "f", r, "empty", NOREPLACE), Err(Errno::EEXIST));
        assert_eq!(t.rename(r, "f", r, "nope", EXCHANGE), Err(Errno::ENOENT));
        let both = RenameFlags {
            exchange: true,
            noreplace: true,
            whiteout: false,
        };
        assert_eq!(t.rename(r, "f", r, "a", both), Err(Errno::EINVAL));
        let long = "x".repeat(256);
        assert_eq!(t.rename(r, "f", r, &long, PLAIN), Err(Errno::ENAMETOOLONG));
    }

    #[test]
    fn rename_moves_and_replaces() {
        let t = T::new(0, 0);
        let r = &t.root;
        let a = t.mkdir(r, "a");
        let sub = t.mkdir(r, "sub");
        let empty = t.mkdir(&a, "empty");
        assert_eq!((r.nlink(), a.nlink()), (4, 3));
        // A directory over an empty directory in another parent.
        t.rename(r, "sub", &a, "empty", PLAIN).unwrap();
        assert_eq!((r.nlink(), a.nlink(), empty.nlink()), (3, 3, 0));
        assert!(Rc::ptr_eq(&sub.parent().unwrap(), &a));
        assert!(Rc::ptr_eq(&t.get(&a, "empty").unwrap(), &sub));
        assert!(t.get(r, "sub").is_none());
        // A file over a file: the old one loses its link.
        let f = t.file(r, "f");
        let g = t.file(&a, "g");
        t.rename(r, "f", &a, "g", PLAIN).unwrap();
        assert_eq!((f.nlink(), g.nlink()), (1, 0));
        assert!(Rc::ptr_eq(&t.get(&a, "g").unwrap(), &f));
        // Exchange a file and a directory across parents.
        let d = t.mkdir(r, "d");
        t.rename(&a, "g", r, "d", EXCHANGE).unwrap();
        assert!(Rc::ptr_eq(&t.get(r, "d").unwrap(), &f));
        assert!(Rc::ptr_eq(&t.get(&a, "g").unwrap(), &d));
        assert!(Rc::ptr_eq(&d.parent().unwrap(), &a));
        assert_eq!((r.nlink(), a.nlink()), (3, 4));
        // Renaming one link of a file onto another link of it does nothing.
        t.fs.link_into(&f, r, n("f2")).unwrap();
        t.rename(r, "d", r, "f2", PLAIN).unwrap();
        assert_eq!(f.nlink(), 2);
        assert!(t.get(r, "d").is_some());
    }

    #[test]
    fn rename_whiteout_leaves_a_char_device() {
        let t = T::new(0, 0);
        let r = &t.root;
        t.file(r, "f");
        let wo = RenameFlags {
            whiteout: true,
            ..PLAIN
        };
        t.rename(r, "f", r, "g", wo).unwrap();
        let w = t.get(r, "f").unwrap();
        assert_eq!(w.kind(), FileType::CharDevice);
        assert_eq!(w.attr().rdev, 0);
        assert_eq!(r.dir().unwrap().len(), 2);
    }

    #[test]
    fn sticky_directory_protects_entries() {
        let t = T::new(0, 0);
        let r = &t.root; // 1777
        let alice = user(1000);
        let f =
            t.fs.make(&alice, r, n("f"), S_IFREG | 0o666, Content::File(None))
                .unwrap();
        assert_eq!(f.uid(), 1000);
        let bob = user(1001);
        assert_eq!(
            t.fs.remove(&bob, r, n("f"), false).err(),
            Some(Errno::EPERM)
        );
        assert_eq!(
            t.fs.move_entry(&bob, r, n("f"), r, n("g"), PLAIN).err(),
            Some(Errno::EPERM)
        );
        t.fs.move_entry(&alice, r, n("f"), r, n("g"), PLAIN)
            .unwrap();
        t.fs.remove(&alice, r, n("g"), false).unwrap();
    }

    /// Writes `len` bytes into the file `f` at 0.
    fn fill(t: &T, f: &Inode, len: usize) {
        let mut body = f.body_mut();
        let Content::File(slot) = &mut body.content else {
            panic!("not a file")
        };
        slot.get_or_insert_with(Box::default)
            .write(0, &vec![1u8; len], &t.fs.space)
            .unwrap();
        drop(body);
        f.set_size(len as u64);
    }

    fn free(t: &T) -> (u64, u64) {
        let v = t.fs.space.statvfs();
        (v.bfree, v.ffree)
    }

    #[test]
    fn unlinked_file_keeps_everything_while_open_or_known_to_the_kernel() {
        let t = T::new(10 * 4096, 10);
        let f = t.file(&t.root, "f");
        fill(&t, &f, 8192);
        t.fs.space.charge(t.fs.space.xattr_space(6, 3));
        f.body_mut()
            .xattrs
            .get_or_insert_with(Box::default)
            .set(n("user.k"), b"val", XattrFlags::default())
            .unwrap();
        f.set_opens(1);
        assert_eq!(free(&t), (8, 7));
        let victim = t.fs.remove(&ROOT, &t.root, n("f"), false).unwrap();
        assert!(Rc::ptr_eq(&victim, &f));
        assert_eq!(f.nlink(), 0);
        t.fs.release_if_unreachable(&f, true);
        t.fs.closed(&f, true); // the kernel still holds it: it may open it again
        assert_eq!(free(&t), (8, 7));
        assert_eq!(
            f.body().xattrs.as_ref().unwrap().get(n("user.k")),
            Some(&b"val"[..])
        );
        assert_eq!(f.attr().blocks, 16);
        // The kernel forgets it: everything goes, once.
        t.fs.release_if_unreachable(&f, false);
        assert_eq!(free(&t), (10, 9));
        assert!(f.body().xattrs.is_none());
        t.fs.release_if_unreachable(&f, false);
        t.fs.free(&f);
        assert_eq!(free(&t), (10, 9));
    }

    #[test]
    fn forgotten_while_open_goes_at_the_last_close() {
        let t = T::new(10 * 4096, 10);
        let f = t.file(&t.root, "f");
        fill(&t, &f, 4096);
        f.set_opens(2);
        t.fs.remove(&ROOT, &t.root, n("f"), false).unwrap();
        t.fs.release_if_unreachable(&f, false); // reclaim with files still open
        t.fs.closed(&f, false);
        assert_eq!(free(&t), (9, 8));
        t.fs.closed(&f, false);
        assert_eq!(free(&t), (10, 9));
    }

    #[test]
    fn replaced_and_removed_nodes_keep_their_contents_until_forgotten() {
        let t = T::new(10 * 4096, 10);
        let r = &t.root;
        let old = t.file(r, "f");
        fill(&t, &old, 4096);
        t.file(r, "new");
        let replaced =
            t.fs.move_entry(&ROOT, r, n("new"), r, n("f"), PLAIN)
                .unwrap();
        assert!(Rc::ptr_eq(replaced.as_ref().unwrap(), &old));
        assert_eq!(old.attr().blocks, 8);
        let long = "x".repeat(LONG_SYMLINK);
        let sym =
            t.fs.make(
                &ROOT,
                r,
                n("s"),
                S_IFLNK | 0o777,
                Content::Symlink(Box::new(long.clone().into())),
            )
            .unwrap();
        t.fs.remove(&ROOT, r, n("s"), false).unwrap();
        assert_eq!(free(&t), (8, 6));
        assert!(matches!(&sym.body().content, Content::Symlink(s) if **s == *long));
        t.fs.release_if_unreachable(&sym, false);
        t.fs.release_if_unreachable(&old, false);
        assert_eq!(free(&t), (10, 8));
        // Two links: losing one frees only that link's inode space.
        let g = t.file(r, "g");
        t.fs.link_into(&g, r, n("g2")).unwrap();
        let victim = t.fs.remove(&ROOT, r, n("g"), false).unwrap();
        t.fs.release_if_unreachable(&victim, false);
        assert_eq!((g.nlink(), free(&t).1), (1, 7));
    }

    #[test]
    fn rmdir_and_unlink_errors() {
        let t = T::new(0, 0);
        let r = &t.root;
        let d = t.mkdir(r, "d");
        t.file(&d, "f");
        t.file(r, "g");
        assert_eq!(
            t.fs.remove(&ROOT, r, n("d"), true).err(),
            Some(Errno::ENOTEMPTY)
        );
        assert_eq!(
            t.fs.remove(&ROOT, r, n("d"), false).err(),
            Some(Errno::EISDIR)
        );
        assert_eq!(
            t.fs.remove(&ROOT, r, n("g"), true).err(),
            Some(Errno::ENOTDIR)
        );
        assert_eq!(
            t.fs.remove(&ROOT, r, n("x"), false).err(),
            Some(Errno::ENOENT)
        );
        t.fs.remove(&ROOT, &d, n("f"), false).unwrap();
        t.fs.remove(&ROOT, r, n("d"), true).unwrap();
        assert_eq!((r.nlink(), d.nlink()), (2, 0));
        assert_eq!(r.attr().size, 3 * crate::inode::DIRENT_SIZE);
    }
}
