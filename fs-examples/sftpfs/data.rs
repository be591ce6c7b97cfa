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
        let conn = self.conn(cx).await?;
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
        Ok(Open::new(OpenFile::new(h, conn.generation, flags)))
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
        let conn = self.conn(cx).await?;
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
        let file = OpenFile::new(Rc::clone(&h), conn.generation, flags);
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
        let conn = self.conn(cx).await?;
        let h = self.handle(cx, &conn, f, node).await?;
        let taken = ReadAhead::take(&f.ahead, offset, size, node.version()).await;
        let hit = taken.is_some();
        let out = match taken {
            Some(data) => data,
            None => self.read_now(&conn, &h, offset, size).await?,
        };
        if size <= self.hello.read_len {
            let at = (offset, size, out.len());
            ReadAhead::advance(&f.ahead, cx, (&conn, &h), at, hit);
        }
        Ok(out)
    }

    /// A read sent now: the server's read size at a time, all at once.
    async fn read_now(&self, conn: &Conn, h: &[u8], offset: u64, size: u32) -> OpResult<Vec<u8>> {
        let chunk = self.hello.read_len.max(1);
        let mut parts: Vec<Part<'_, Vec<u8>>> = Vec::new();
        let mut want = Vec::new();
        let mut at = 0u32;
        while at < size {
            let len = chunk.min(size - at);
            parts.push(Box::pin(read_at(conn, h, offset + at as u64, len)));
            want.push(len);
            at += len;
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
                    self.read_rest(conn, h, offset, size, &mut out).await?;
                }
                break;
            }
        }
        Ok(out)
    }

    async fn read_rest(
        &self,
        conn: &Conn,
        h: &[u8],
        offset: u64,
        size: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), Errno> {
        while out.len() < size as usize {
            let len = self.hello.read_len.min(size - out.len() as u32);
            let data = read_at(conn, h, offset + out.len() as u64, len).await?;
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
        let conn = self.conn(cx).await?;
        let h = self.handle(cx, &conn, f, node).await?;
        node.touched();
        self.changed();
        let parts: Vec<Part<'_, ()>> = data
            .chunks(self.hello.write_len.max(1) as usize)
            .enumerate()
            .map(|(i, piece)| {
                let at = offset + (i * self.hello.write_len as usize) as u64;
                let req = Request::Write {
                    handle: &h,
                    offset: at,
                    data: piece,
                };
                let conn = &conn;
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
        let conn = self.conn(cx).await?;
        let h = self.handle(cx, &conn, f, node).await?;
        conn.call(Request::Fsync { handle: &h }, |r| r.into_status())
            .await
    }

    /// Closes the handle if its session is still the live one (a handle of an ended
    /// session is gone with it).
    pub async fn release(&self, f: OpenFile) {
        if let Some(conn) = self.current_conn() {
            if conn.generation == f.generation.get() {
                let h = Rc::clone(&f.handle.borrow());
                if let Err(e) = conn
                    .call(Request::Close { handle: &h }, |r| r.into_status())
                    .await
                {
                    log::debug!("sftpfs: close: {e}");
                }
            }
        }
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
        let conn = self.conn(cx).await?;
        let hi = self.handle(cx, &conn, src.file, src.node).await?;
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
