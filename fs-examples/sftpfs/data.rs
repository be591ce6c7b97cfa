//! Open files and their data: reads and writes split into requests of the server's
//! limits (limits@openssh.com: 255 KiB for OpenSSH) and sent together, so one large
//! kernel request is many SFTP requests in flight. Writes are answered once queued
//! (write-behind, writeback.rs): their errors come at the next write, flush or fsync.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use puffs::{Cx, EntryOf, Errno, FileAt, OpResult, Open, OpenFlags};
use sftp_codec::{Attrs, Request};

use crate::fs::{OpenFile, SftpFs, SftpNode};
use crate::join::{join2, join_all};
use crate::readahead::ReadAhead;
use crate::sessions::{Route, STRIPE};

/// Whether attributes from an LSTAT sent together with a create's OPEN describe the
/// file it opened. OpenSSH runs them in order, so they do; a server that ran the LSTAT
/// first would show no file (ENOENT), or the file as it was before: still right
/// unless the OPEN changed it (O_TRUNC, or O_EXCL: then it was not there), which a
/// size other than 0 betrays. Anything else is asked again through the handle.
fn created_as_seen(a: &Attrs, flags: OpenFlags) -> bool {
    let regular = a.file_type() == Some(sftp_codec::consts::S_IFREG);
    let changed = flags.intersects(OpenFlags::TRUNC | OpenFlags::EXCL);
    regular && (!changed || a.size == Some(0))
}

/// The most one copy_file_range asks of the server at once (the request has the same
/// deadline as any other).
const MAX_COPY: u64 = 64 << 20;

type Part<'a, T> = Pin<Box<dyn Future<Output = Result<T, Errno>> + 'a>>;

impl SftpFs {
    pub async fn open(
        &self,
        cx: &Cx<Self>,
        node: &SftpNode,
        flags: OpenFlags,
    ) -> OpResult<Open<OpenFile>> {
        let path = node.live_path()?;
        let (conn, base) = self.open_conn(cx).await?;
        let req = Request::Open {
            path: path.as_bytes(),
            flags: sftp_codec::OpenFlags::from_posix(flags.bits()),
            attrs: Attrs::default(),
        };
        if flags.contains(OpenFlags::TRUNC) {
            // The truncation goes after writes in flight through other open files.
            self.settled(cx, node).await?;
        }
        let h = conn.call(req, |r| r.into_handle().map(Rc::from)).await?;
        if flags.contains(OpenFlags::TRUNC) {
            node.touched();
            node.writes.sized();
            self.changed();
        }
        Ok(Open::new(OpenFile::new(h, &conn, base, flags)))
    }

    pub async fn create(
        &self,
        cx: &Cx<Self>,
        dir: &SftpNode,
        name: &[u8],
        perm: u16,
        flags: OpenFlags,
    ) -> OpResult<(EntryOf<Self>, Open<OpenFile>)> {
        let path = SftpFs::path_of(dir)?.join(name)?;
        let (conn, base) = self.open_conn(cx).await?;
        let req = Request::Open {
            path: path.as_bytes(),
            flags: sftp_codec::OpenFlags::from_posix((flags | OpenFlags::CREAT).bits()),
            attrs: Attrs {
                permissions: Some(u32::from(perm)),
                ..Attrs::default()
            },
        };
        // The LSTAT goes out with the OPEN, not a round trip after it.
        let lstat = Request::Lstat {
            path: path.as_bytes(),
        };
        let (opened, seen) = join2(
            conn.call(req, |r| r.into_handle().map(Rc::from)),
            conn.call(lstat, |r| r.into_attrs()),
        )
        .await;
        let h: Rc<[u8]> = opened?;
        self.changed();
        let attrs = match seen {
            Ok(a) if created_as_seen(&a, flags) => Ok(a),
            _ => {
                conn.call(Request::Fstat { handle: &h }, |r| r.into_attrs())
                    .await
            }
        };
        let file = OpenFile::new(Rc::clone(&h), &conn, base, flags);
        match attrs {
            Ok(a) => Ok((self.entry(cx, path, &a), Open::new(file))),
            Err(e) => {
                self.release(cx, file).await;
                Err(e)
            }
        }
    }

    /// Up to `size` bytes at `offset`: the server's read size at a time, all at once.
    pub async fn read(
        &self,
        cx: &Cx<Self>,
        node: &SftpNode,
        f: &OpenFile,
        offset: u64,
        size: u32,
    ) -> OpResult<Vec<u8>> {
        let route = (self.route(cx, f, node, ReadAhead::reach(offset, size))).await?;
        self.settled(cx, node).await?;
        let taken = ReadAhead::take(&f.ahead, offset, size, node.version()).await;
        let hit = taken.is_some();
        let out = match taken {
            Some(data) => data,
            None => self.read_now(&route, offset, size).await?,
        };
        if size <= STRIPE as u32 {
            let at = (offset, size, out.len());
            ReadAhead::advance(&f.ahead, cx, (&route, self.hello.read_len), at, hit);
        }
        Ok(out)
    }

    /// A read sent now: the server's read size at a time, all at once.
    async fn read_now(&self, route: &Route, offset: u64, size: u32) -> OpResult<Vec<u8>> {
        let mut parts: Vec<Part<'_, Vec<u8>>> = Vec::new();
        let mut want = Vec::new();
        for (at, len) in route.pieces(offset, size, self.hello.read_len) {
            let (conn, h) = route.at(at);
            parts.push(Box::pin(conn.read_at(h, at, len)));
            want.push(len);
        }
        let mut out = Vec::with_capacity(size as usize);
        for (part, want) in join_all(parts).await.into_iter().zip(want) {
            let data = part?;
            let short = data.len() < want as usize;
            out.extend_from_slice(&data);
            if short {
                if !data.is_empty() {
                    // Short before the end: the rest one request at a time, so the
                    // kernel never takes a short read for the end of the file.
                    self.read_rest(route, offset, size, &mut out).await?;
                }
                break;
            }
        }
        Ok(out)
    }

    async fn read_rest(
        &self,
        route: &Route,
        offset: u64,
        size: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), Errno> {
        while out.len() < size as usize {
            let at = offset + out.len() as u64;
            let (at, len) = route.pieces(at, size - out.len() as u32, self.hello.read_len)[0];
            let (conn, h) = route.at(at);
            let data = conn.read_at(h, at, len).await?;
            if data.is_empty() {
                break;
            }
            out.extend_from_slice(&data);
        }
        Ok(())
    }

    /// `data` at `offset`, in pieces of the server's write size, answered once they
    /// are queued (write-behind). Fails with the error of an earlier deferred write of
    /// this open file, if one failed; then nothing of `data` is sent.
    pub async fn write(
        &self,
        cx: &Cx<Self>,
        node: &SftpNode,
        f: &OpenFile,
        offset: u64,
        data: &[u8],
    ) -> OpResult<u32> {
        f.behind.take_error()?;
        let route = self.route(cx, f, node, offset + data.len() as u64).await?;
        node.writes.add(&f.behind);
        node.touched();
        self.changed();
        // Cut at stripe boundaries too (the same bytes always go to the same session,
        // so overlapping writes stay in order there).
        for (at, len) in route.pieces(offset, data.len() as u32, self.hello.write_len) {
            let from = (at - offset) as usize;
            let (conn, h) = route.at(at);
            let piece = &data[from..from + len as usize];
            // Waiting for room is bounded like any request.
            cx.timeout(self.cfg.timeout, f.behind.send(conn, h, at, piece))
                .await??;
        }
        Ok(data.len() as u32)
    }

    /// close(2) of a descriptor: every write of the open file answered, and the first
    /// error of a deferred one is close's.
    pub async fn flush(&self, cx: &Cx<Self>, f: &OpenFile) -> OpResult<()> {
        cx.timeout(self.cfg.timeout, f.behind.drain()).await?
    }

    /// The writes of the open file answered (their error is fsync's), then
    /// fsync@openssh.com if the server has it.
    pub async fn fsync(&self, cx: &Cx<Self>, node: &SftpNode, f: &OpenFile) -> OpResult<()> {
        self.flush(cx, f).await?;
        if !self.hello.extensions.fsync {
            // All the server can say is that the writes are done; answering ENOSYS
            // would make the kernel stop asking, and skip the wait above too.
            return Ok(());
        }
        // One fsync flushes the file, whichever session wrote it: every write was
        // acknowledged, so it reached the server's file before this.
        let (conn, h) = self.file_conn(cx, f, node).await?;
        conn.call(Request::Fsync { handle: &h }, |r| r.into_status())
            .await
    }

    /// Waits (within the deadline) until the writes sent to `node` so far, through
    /// any open file, have been answered: for what must see their data.
    pub(crate) async fn settled(&self, cx: &Cx<Self>, node: &SftpNode) -> Result<(), Errno> {
        cx.timeout(self.cfg.timeout, node.writes.settle()).await
    }

    /// Closes the file's handles on every session it used, once the writes still in
    /// flight are answered (within the deadline); their error can only be logged: the
    /// kernel does not wait for release.
    pub async fn release(&self, cx: &Cx<Self>, f: OpenFile) {
        if let Err(e) = self.flush(cx, &f).await {
            log::warn!("sftpfs: a write failed and was not reported before release: {e}");
        }
        log::debug!(
            "sftpfs: release: at most {} writes were in flight",
            f.behind.most_in_flight()
        );
        self.close_handles(&f).await;
    }

    /// copy_file_range through copy-data: the bytes stay on the server.
    pub async fn copy_range(
        &self,
        cx: &Cx<Self>,
        src: FileAt<'_, Self>,
        dst: FileAt<'_, Self>,
        len: u64,
    ) -> OpResult<u32> {
        if !self.hello.extensions.copy_data {
            return Err(Errno::ENOSYS);
        }
        let (off_in, off_out) = (src.offset, dst.offset);
        // Both handles on one session: the source's.
        let (conn, hi) = self.file_conn(cx, src.file, src.node).await?;
        let ho = self.handle(cx, &conn, dst.file, dst.node).await?;
        // The server copies what it has: the writes to either side go first.
        self.settled(cx, src.node).await?;
        self.settled(cx, dst.node).await?;
        let size = conn
            .call(Request::Fstat { handle: &hi }, |r| r.into_attrs())
            .await?
            .size
            .unwrap_or(0);
        let n = len
            .min(size.saturating_sub(off_in))
            .min(MAX_COPY)
            .min(u32::MAX as u64);
        if n == 0 {
            return Ok(0);
        }
        dst.node.touched();
        self.changed();
        let req = Request::CopyData {
            from: &hi,
            from_offset: off_in,
            len: n,
            to: &ho,
            to_offset: off_out,
        };
        conn.call(req, |r| r.into_status()).await?;
        Ok(n as u32)
    }
}
