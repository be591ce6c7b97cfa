//! Directories: a listing is read whole at opendir (READDIRs pipelined a few at a
//! time; OpenSSH answers them in order) and served from memory by cookie, so entries
//! added or removed meanwhile never shift what a reader sees. Listings are cached for
//! `cache_timeout` by path until we change anything. Names a server sends that are
//! not one path component are dropped: a rogue server cannot make a name a path.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;
use std::time::Instant;

use puffs::{Cx, DirBuf, DirPlusBuf, Entry, Errno, FileType, Node, OpResult, Open, PuffsPath};
use sftp_codec::{Attrs, Request};

use crate::attr::file_type;
use crate::conn::Conn;
use crate::fs::{DirItem, OpenDir, SftpFs};
use crate::join::join_all;

/// READDIRs in flight at once.
const READDIR_DEPTH: usize = 4;
/// The most entries a listing holds, and the most bytes of names: a server that never
/// says EOF, or sends enormous names, is cut off (EIO) before memory runs out.
const MAX_ENTRIES: usize = 1 << 22;
const MAX_NAME_BYTES: usize = 64 << 20;
/// Cookies: 1 and 2 are "." and "..", entry i is i + 3.
const FIRST: u64 = 2;

type Batch = Option<Vec<DirItem>>;

impl SftpFs {
    pub async fn opendir(&self, cx: &Cx<Self>, node: &Node<Self>) -> OpResult<Open<OpenDir>> {
        let path = node.live_path()?;
        let cached = self
            .listings
            .borrow()
            .get(&path)
            .and_then(|(l, at)| (at.elapsed() < self.cfg.cache_timeout).then(|| Rc::clone(l)));
        let listing = match cached {
            Some(l) => l,
            None => {
                let conn = self.conn(cx).await?;
                let l = Rc::new(list(cx, &conn, &path).await?);
                self.listings
                    .borrow_mut()
                    .insert(path, (Rc::clone(&l), Instant::now()));
                l
            }
        };
        Ok(Open::new(listing))
    }

    /// The attributes of `name` in the listing of `dir`, if one younger than
    /// `cache_timeout` is cached and holds it.
    pub fn listed(&self, dir: &PuffsPath, name: &[u8]) -> Option<Attrs> {
        let listings = self.listings.borrow();
        let (items, at) = listings.get(dir)?;
        if at.elapsed() >= self.cfg.cache_timeout {
            return None;
        }
        items.iter().find(|i| i.name == name).map(|i| i.attrs)
    }

    pub fn readdir(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        listing: &OpenDir,
        offset: u64,
        out: &mut DirBuf,
    ) -> OpResult<()> {
        let dot = [(1, "."), (2, "..")];
        for (cookie, name) in dot.into_iter().skip(offset as usize) {
            if !out.add(dir.ino(), cookie, FileType::Directory, OsStr::new(name)) {
                return Ok(());
            }
        }
        let path = dir.path.get();
        for (i, item) in listing
            .iter()
            .enumerate()
            .skip(offset.saturating_sub(FIRST) as usize)
        {
            let ino = path
                .join(&item.name)
                .ok()
                .and_then(|p| self.known_id(&p))
                .and_then(|id| cx.node_by_key(&id))
                .map_or(u64::MAX, |n| n.ino());
            let kind = file_type(item.attrs.permissions.unwrap_or(0));
            if !out.add(
                ino,
                i as u64 + FIRST + 1,
                kind,
                OsStr::from_bytes(&item.name),
            ) {
                break;
            }
        }
        Ok(())
    }

    /// readdir with each entry's attributes, which READDIR brings anyway: `ls -l`
    /// costs no LSTAT per name.
    pub fn readdirplus(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        listing: &OpenDir,
        offset: u64,
        out: &mut DirPlusBuf<Self>,
    ) -> OpResult<()> {
        let path = dir.path.get();
        for (cookie, name) in [(1, "."), (2, "..")].into_iter().skip(offset as usize) {
            let attr = dir
                .cached_attr()
                .unwrap_or_else(|| puffs::Attr::new(FileType::Directory, 0o755));
            let e = Entry::new(*dir.key(), self.root_node(), attr);
            if !out.add(OsStr::new(name), cookie, e) {
                return Ok(());
            }
        }
        for (i, item) in listing
            .iter()
            .enumerate()
            .skip(offset.saturating_sub(FIRST) as usize)
        {
            let Ok(child) = path.join(&item.name) else {
                continue;
            };
            let e = self.entry(cx, child, &item.attrs);
            if !out.add(OsStr::from_bytes(&item.name), i as u64 + FIRST + 1, e) {
                break;
            }
        }
        Ok(())
    }
}

/// The whole listing of `path`: OPENDIR, READDIRs a few at a time until EOF, CLOSE.
/// The CLOSE is not waited for (nothing depends on its answer, and the listing is
/// complete without it): a round trip less per directory.
async fn list(cx: &Cx<SftpFs>, conn: &Conn, path: &PuffsPath) -> Result<Vec<DirItem>, Errno> {
    let h: Vec<u8> = conn
        .call(
            Request::Opendir {
                path: path.as_bytes(),
            },
            |r| r.into_handle().map(<[u8]>::to_vec),
        )
        .await?;
    let r = read_all(conn, &h, path).await;
    let closed = |r: Result<(), Errno>| {
        if let Err(e) = r {
            log::debug!("sftpfs: closedir: {e}");
        }
    };
    // Queueing waits for room in the channel: bounded like any request.
    let close = conn.call_queued(Request::Close { handle: &h }, |r| r.into_status(), closed);
    if let Err(e) = cx.timeout(cx.fs().cfg.timeout, close).await.and_then(|r| r) {
        log::debug!("sftpfs: closedir: {e}");
    }
    r
}

async fn read_all(conn: &Conn, h: &[u8], path: &PuffsPath) -> Result<Vec<DirItem>, Errno> {
    let mut items = Vec::new();
    let mut bytes = 0;
    loop {
        let batch = (0..READDIR_DEPTH)
            .map(|_| {
                Box::pin(readdir_once(conn, h, path))
                    as std::pin::Pin<
                        Box<dyn std::future::Future<Output = Result<Batch, Errno>> + '_>,
                    >
            })
            .collect();
        for r in join_all(batch).await {
            match r? {
                Some(v) => {
                    bytes += v.iter().map(|i| i.name.len()).sum::<usize>();
                    items.extend(v);
                }
                None => return Ok(items),
            }
        }
        if items.len() > MAX_ENTRIES || bytes > MAX_NAME_BYTES {
            log::warn!("sftpfs: {path:?} lists more than {MAX_ENTRIES} entries or {MAX_NAME_BYTES} bytes of names: cut off");
            return Err(Errno::EIO);
        }
    }
}

async fn readdir_once(conn: &Conn, h: &[u8], path: &PuffsPath) -> Result<Batch, Errno> {
    conn.call(Request::Readdir { handle: h }, |r| {
        Ok(r.into_names()?.map(|names| {
            names
                .into_iter()
                .filter(|n| n.filename != b"." && n.filename != b"..")
                .filter(|n| path.join(n.filename).is_ok())
                .map(|n| DirItem {
                    name: n.filename.to_vec(),
                    attrs: n.attrs,
                })
                .collect()
        }))
    })
    .await
}
