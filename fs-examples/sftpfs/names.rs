//! Metadata: lookup and attributes, and the ops that make, remove and rename names.
//! OpenSSH's server reports EEXIST, ENOTEMPTY and the like as FAILURE (EPERM here), so
//! a failed create or remove asks once more to give the errno POSIX wants.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::time::Instant;

use puffs::{
    Attr, Cx, Entry, EntryOf, Errno, FileType, Node, OpResult, PuffsPath, SetAttr, Statvfs,
};
use sftp_codec::{Attrs, Request};

use crate::attr::{set_time, to_attr};
use crate::fs::{OpenFile, SftpFs, SftpNode};

impl SftpFs {
    pub async fn lookup(
        &self,
        cx: &Cx<Self>,
        dir: &SftpNode,
        name: &[u8],
    ) -> OpResult<EntryOf<Self>> {
        let dir_path = SftpFs::path_of(dir)?;
        let path = dir_path.join(name)?;
        // A name in a listing still fresh needs no LSTAT: READDIR brought its
        // attributes (the kernel looks up names readdirplus did not give it, e.g. those
        // of a later readdir call).
        let attrs = match self.listed(&dir_path, name) {
            Some(a) => a,
            None => self.lstat(cx, &path).await?,
        };
        Ok(self.entry(cx, path, &attrs))
    }

    /// The attributes: cached ones while fresh, else the server's (through the open
    /// handle when there is one, which still works for a file whose name is gone).
    pub async fn getattr(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        file: Option<&OpenFile>,
    ) -> OpResult<Attr> {
        if let Some(a) = self.fresh_attr(node) {
            return Ok(a);
        }
        let attrs = match file {
            Some(f) => {
                let (conn, h) = self.file_conn(cx, f, node).await?;
                conn.call(Request::Fstat { handle: &h }, |r| r.into_attrs())
                    .await?
            }
            None => match node.live_path() {
                Ok(path) => self.lstat(cx, &path).await?,
                Err(e) => return node.cached_attr().ok_or(e),
            },
        };
        Ok(self.refreshed_unless_writing(cx, node, to_attr(&attrs)))
    }

    /// chmod, chown, truncate and utimes in one SETSTAT (FSETSTAT through an open
    /// file; lsetstat for a symlink, so the server never follows it).
    pub async fn setattr(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        file: Option<&OpenFile>,
        set: &SetAttr,
    ) -> OpResult<Attr> {
        let cur = match node.cached_attr() {
            Some(a) => a,
            None => self.getattr(cx, node, file).await?,
        };
        let mut a = Attrs {
            size: set.size,
            permissions: set.mode.map(|m| u32::from(m.perm())),
            ..Attrs::default()
        };
        if set.uid.is_some() || set.gid.is_some() {
            a.uid_gid = Some((set.uid.unwrap_or(cur.uid), set.gid.unwrap_or(cur.gid)));
        }
        if set.atime.is_some() || set.mtime.is_some() {
            a.atime_mtime = Some((
                set_time(set.atime, cur.atime),
                set_time(set.mtime, cur.mtime),
            ));
        }
        // A truncate or utimes goes after the writes before it.
        self.settled(cx, node).await?;
        let conn = self.conn(cx).await?;
        node.touched();
        self.changed();
        match file {
            Some(f) => {
                let (conn, h) = self.file_conn(cx, f, node).await?;
                conn.call(
                    Request::Fsetstat {
                        handle: &h,
                        attrs: a,
                    },
                    |r| r.into_status(),
                )
                .await?;
            }
            None => {
                let path = node.live_path()?;
                let path = path.as_bytes();
                let req = if cur.kind == FileType::Symlink {
                    if !self.hello.extensions.lsetstat {
                        return Err(Errno::EOPNOTSUPP);
                    }
                    Request::Lsetstat { path, attrs: a }
                } else {
                    Request::Setstat { path, attrs: a }
                };
                conn.call(req, |r| r.into_status()).await?;
            }
        }
        if set.size.is_some() {
            node.writes.sized();
        }
        self.getattr(cx, node, file).await
    }

    pub async fn mkdir(
        &self,
        cx: &Cx<Self>,
        dir: &SftpNode,
        name: &[u8],
        perm: u16,
    ) -> OpResult<EntryOf<Self>> {
        let path = SftpFs::path_of(dir)?.join(name)?;
        let attrs = Attrs {
            permissions: Some(u32::from(perm)),
            ..Attrs::default()
        };
        let r = self
            .call(
                cx,
                Request::Mkdir {
                    path: path.as_bytes(),
                    attrs,
                },
                |r| r.into_status(),
            )
            .await;
        self.changed();
        self.eexist(cx, &path, r).await?;
        self.new_entry(cx, path).await
    }

    /// The entry of a name just made.
    async fn new_entry(&self, cx: &Cx<Self>, path: PuffsPath) -> OpResult<EntryOf<Self>> {
        let attrs = self.lstat(cx, &path).await?;
        Ok(self.entry(cx, path, &attrs))
    }

    /// EPERM from a request that makes `path` is EEXIST when something is there.
    async fn eexist(
        &self,
        cx: &Cx<Self>,
        path: &PuffsPath,
        r: Result<(), Errno>,
    ) -> Result<(), Errno> {
        match r {
            Err(Errno::EPERM) if self.exists(cx, path).await => Err(Errno::EEXIST),
            r => r,
        }
    }

    pub async fn rmdir(&self, cx: &Cx<Self>, dir: &SftpNode, name: &[u8]) -> OpResult<()> {
        let path = SftpFs::path_of(dir)?.join(name)?;
        let r = self
            .call(
                cx,
                Request::Rmdir {
                    path: path.as_bytes(),
                },
                |r| r.into_status(),
            )
            .await;
        let r = match r {
            // What else keeps a directory one may remove: its entries.
            Err(Errno::EPERM) => match self.lstat(cx, &path).await {
                Ok(a) if a.file_type() == Some(sftp_codec::consts::S_IFDIR) => {
                    Err(Errno::ENOTEMPTY)
                }
                Ok(_) => Err(Errno::ENOTDIR),
                Err(_) => Err(Errno::EPERM),
            },
            r => r,
        };
        self.changed();
        r?;
        self.unnamed(cx, &path);
        Ok(())
    }

    pub async fn unlink(&self, cx: &Cx<Self>, dir: &SftpNode, name: &[u8]) -> OpResult<()> {
        let path = SftpFs::path_of(dir)?.join(name)?;
        let r = self
            .call(
                cx,
                Request::Remove {
                    path: path.as_bytes(),
                },
                |r| r.into_status(),
            )
            .await;
        self.changed();
        r?;
        self.unnamed(cx, &path);
        Ok(())
    }

    pub async fn symlink(
        &self,
        cx: &Cx<Self>,
        dir: &SftpNode,
        name: &[u8],
        target: &[u8],
    ) -> OpResult<EntryOf<Self>> {
        let path = SftpFs::path_of(dir)?.join(name)?;
        let req = Request::Symlink {
            link: path.as_bytes(),
            target,
        };
        let r = self.call(cx, req, |r| r.into_status()).await;
        self.changed();
        self.eexist(cx, &path, r).await?;
        self.new_entry(cx, path).await
    }

    /// A symlink's target, as the server has it: returned, never followed by us.
    pub async fn readlink(&self, cx: &Cx<Self>, node: &SftpNode) -> OpResult<OsString> {
        if let Some((t, at)) = node.link.borrow().as_ref() {
            if at.elapsed() < self.cfg.cache_timeout {
                return Ok(OsString::from_vec(t.clone()));
            }
        }
        let path = node.live_path()?;
        let target = self
            .call(
                cx,
                Request::Readlink {
                    path: path.as_bytes(),
                },
                |r| r.into_one_name().map(<[u8]>::to_vec),
            )
            .await?;
        *node.link.borrow_mut() = Some((target.clone(), Instant::now()));
        Ok(OsString::from_vec(target))
    }

    pub async fn link(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        newdir: &SftpNode,
        newname: &[u8],
    ) -> OpResult<EntryOf<Self>> {
        if !self.hello.extensions.hardlink {
            return Err(Errno::ENOSYS);
        }
        let existing = node.live_path()?;
        let new = SftpFs::path_of(newdir)?.join(newname)?;
        let req = Request::Hardlink {
            existing: existing.as_bytes(),
            new: new.as_bytes(),
        };
        let r = self.call(cx, req, |r| r.into_status()).await;
        self.changed();
        self.eexist(cx, &new, r).await?;
        node.touched();
        let attr = to_attr(&self.lstat(cx, &new).await?);
        // The new name leads to the same node (one key, as the kernel expects).
        self.named(&new, *node.key());
        let mut e = Entry::new(*node.key(), SftpNode::new(new, Some(attr)), attr);
        e.entry_ttl = Some(self.cfg.cache_timeout);
        e.attr_ttl = Some(self.cfg.cache_timeout);
        Ok(e)
    }

    /// rename(2): posix-rename replaces the target atomically; NOREPLACE uses plain
    /// SFTP RENAME, which refuses an existing target. EXCHANGE has no SFTP form.
    pub async fn rename(
        &self,
        cx: &Cx<Self>,
        (dir, name): (&SftpNode, &[u8]),
        (newdir, newname): (&SftpNode, &[u8]),
        noreplace: bool,
    ) -> OpResult<()> {
        let from = SftpFs::path_of(dir)?.join(name)?;
        let to = SftpFs::path_of(newdir)?.join(newname)?;
        let (f, t) = (from.as_bytes(), to.as_bytes());
        let req = if noreplace || !self.hello.extensions.posix_rename {
            Request::Rename { from: f, to: t }
        } else {
            Request::PosixRename { from: f, to: t }
        };
        let r = self.call(cx, req, |r| r.into_status()).await;
        self.changed();
        if let Err(Errno::EPERM) = r {
            return Err(self.rename_errno(cx, &from, &to, noreplace).await);
        }
        r?;
        self.moved(cx, &from, &to);
        Ok(())
    }

    /// The errno POSIX gives for a rename OpenSSH refused with FAILURE.
    async fn rename_errno(
        &self,
        cx: &Cx<Self>,
        from: &PuffsPath,
        to: &PuffsPath,
        noreplace: bool,
    ) -> Errno {
        let dir = Some(sftp_codec::consts::S_IFDIR);
        match (self.lstat(cx, from).await, self.lstat(cx, to).await) {
            (Ok(_), Ok(_)) if noreplace => Errno::EEXIST,
            (Ok(a), Ok(b)) if a.file_type() == dir && b.file_type() == dir => Errno::ENOTEMPTY,
            (Ok(a), Ok(b)) if a.file_type() != dir && b.file_type() == dir => Errno::EISDIR,
            (Ok(a), Ok(b)) if a.file_type() == dir && b.file_type() != dir => Errno::ENOTDIR,
            _ => Errno::EPERM,
        }
    }

    pub async fn statvfs(&self, cx: &Cx<Self>) -> OpResult<Statvfs> {
        if !self.hello.extensions.statvfs {
            return Err(Errno::ENOSYS);
        }
        let root = self.hello.root.clone();
        let payload = self
            .call(cx, Request::Statvfs { path: &root }, |r| {
                r.into_extended().map(<[u8]>::to_vec)
            })
            .await?;
        let s = sftp_codec::Statvfs::decode(&payload).map_err(|_| Errno::EIO)?;
        Ok(Statvfs {
            blocks: s.blocks,
            bfree: s.bfree,
            bavail: s.bavail,
            files: s.files,
            ffree: s.ffree,
            bsize: s.bsize.min(u32::MAX as u64) as u32,
            namemax: s.namemax.min(u32::MAX as u64) as u32,
            frsize: s.frsize.min(u32::MAX as u64) as u32,
        })
    }
}
