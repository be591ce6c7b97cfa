//! Open files and their data: reads and writes split into requests of the server's
//! limits (limits@openssh.com: 255 KiB for OpenSSH) and sent together, so one large
//! kernel request is many SFTP requests in flight; each write is acknowledged by the
//! server before the kernel hears it succeeded (errors are never deferred).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use puffs::{Cx, EntryOf, Errno, FileAt, OpResult, Open, OpenFlags};
use sftp_codec::{Attrs, Request};

use crate::conn::Conn;
use crate::fs::{OpenFile, SftpFs, SftpNode};
use crate::join::join_all;
use crate::readahead::ReadAhead;
use crate::sessions::{Route, STRIPE};

/// The most one copy_file_range asks of the server at once (the request has the same
/// deadline as any other).
const MAX_COPY: u64 = 64 << 20;

type Part<'a, T> = Pin<Box<dyn Future<Output = Result<T, Errno>> + 'a>>;

pub(crate) async fn read_at(
    conn: &Conn,
    handle: &[u8],
    offset: u64,
    len: u32,
) -> Result<Vec<u8>, Errno> {
    let req = Request::Read {
        handle,
        offset,
        len,
    };
    // A server sending more than asked is cut to what was asked.
    conn.call(req, |r| {
        r.into_data()
            .map(|d| d[..d.len().min(len as usize)].to_vec())
    })
    .await
}

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
        let h = conn.call(req, |r| r.into_handle().map(Rc::from)).await?;
        if flags.contains(OpenFlags::TRUNC) {
            node.touched();
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
        let h: Rc<[u8]> = conn.call(req, |r| r.into_handle().map(Rc::from)).await?;
        self.changed();
        let attrs = conn
            .call(Request::Fstat { handle: &h }, |r| r.into_attrs())
            .await;
        let file = OpenFile::new(Rc::clone(&h), &conn, base, flags);
        match attrs {
            Ok(a) => Ok((self.entry(cx, path, &a), Open::new(file))),
            Err(e) => {
                self.release(file).await;
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
            parts.push(Box::pin(read_at(conn, h, at, len)));
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
            let data = read_at(conn, h, at, len).await?;
            if data.is_empty() {
                break;
            }
            out.extend_from_slice(&data);
        }
        Ok(())
    }

    /// `data` at `offset`, in pieces of the server's write size sent together; all
    /// or an error.
    pub async fn write(
        &self,
        cx: &Cx<Self>,
        node: &SftpNode,
        f: &OpenFile,
        offset: u64,
        data: &[u8],
    ) -> OpResult<u32> {
        let route = self.route(cx, f, node, offset + data.len() as u64).await?;
        node.touched();
        self.changed();
        let parts: Vec<Part<'_, ()>> = route
            .pieces(offset, data.len() as u32, self.hello.write_len)
            .into_iter()
            .map(|(at, len)| {
                let from = (at - offset) as usize;
                let (conn, h) = route.at(at);
                let req = Request::Write {
                    handle: h,
                    offset: at,
                    data: &data[from..from + len as usize],
                };
                Box::pin(async move { conn.call(req, |r| r.into_status()).await }) as Part<'_, ()>
            })
            .collect();
        for r in join_all(parts).await {
            r?;
        }
        Ok(data.len() as u32)
    }

    pub async fn fsync(&self, cx: &Cx<Self>, node: &SftpNode, f: &OpenFile) -> OpResult<()> {
        if !self.hello.extensions.fsync {
            return Err(Errno::ENOSYS);
        }
        // One fsync flushes the file, whichever session wrote it: every write was
        // acknowledged, so it reached the server's file before this.
        let (conn, h) = self.file_conn(cx, f, node).await?;
        conn.call(Request::Fsync { handle: &h }, |r| r.into_status())
            .await
    }

    /// Closes the file's handles on every session it used.
    pub async fn release(&self, f: OpenFile) {
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
