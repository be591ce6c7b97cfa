//! One SFTP session: the server process (ssh, or an sftp-server run directly) on one
//! end of a socketpair, and a framebuf channel on the other. The codec builds and
//! decodes the messages; the channel pipelines them and matches replies by id.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use puffs::framebuf::{Channel, ChannelOptions, Closed, Framebuf, Framing};
use puffs::{Cx, Errno, Ops, Registration};
use sftp_codec::consts::{SSH_FXP_INIT, SSH_FXP_VERSION};
use sftp_codec::{
    decode_reply, encode_init, frame_len, reply_id, split_frame, Extensions, Limits, Reply,
    Request, Version, MAX_READ,
};

/// The tag INIT and VERSION share: they carry no request id, and ids are `u32`.
const VERSION_TAG: u64 = 1 << 32;

/// SFTP framing for the channel: a u32 length, then the body; the tag is the id after
/// the type byte. Lengths past the codec's bound end the channel (EIO) before
/// anything is read for them.
pub struct SftpFraming;

impl Framing for SftpFraming {
    fn read_frame(&mut self, fb: &mut Framebuf, fd: &mut dyn Read) -> io::Result<()> {
        fb.fill_to(fd, 4)?;
        let prefix: [u8; 4] = fb
            .window(0, 4)
            .ok()
            .and_then(|w| w.try_into().ok())
            .ok_or(io::ErrorKind::InvalidData)?;
        let len = frame_len(prefix).map_err(|e| {
            log::warn!("sftpfs: bad frame from the server: {e}");
            io::Error::from(io::ErrorKind::InvalidData)
        })?;
        fb.fill_to(fd, 4 + len)
    }

    fn tag(&self, fb: &Framebuf) -> Option<u64> {
        let body = fb.as_slice().get(4..)?;
        match *body.first()? {
            SSH_FXP_INIT | SSH_FXP_VERSION => Some(VERSION_TAG),
            _ => reply_id(body).map(u64::from),
        }
    }

    fn closed(&mut self, why: &Closed) {
        log::warn!("sftpfs: connection to the server ended: {}", why.error);
    }
}

/// The server process, ended when the session is dropped.
pub struct Server {
    child: Child,
    /// Its stderr (ssh's own messages), non-blocking: read into the error of a failed
    /// start, and into the log while the session runs ([`drain_stderr`]). A pipe of
    /// ours rather than our stderr, which is the mount command's until it exits.
    stderr: Option<File>,
}

impl Server {
    /// Starts `argv` with its stdin and stdout on one end of a socketpair; returns it
    /// and our end.
    pub fn spawn(argv: &[String]) -> io::Result<(Server, UnixStream)> {
        let (ours, theirs) = UnixStream::pair()?;
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::from(OwnedFd::from(theirs.try_clone()?)))
            .stdout(Stdio::from(OwnedFd::from(theirs)))
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run {}: {e}", argv[0])))?;
        let stderr = child.stderr.take().map(|e| File::from(OwnedFd::from(e)));
        if let Some(e) = &stderr {
            let flags = OFlag::from_bits_retain(fcntl(e, FcntlArg::F_GETFL)?);
            fcntl(e, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        }
        Ok((Server { child, stderr }, ours))
    }

    /// Why the server failed, as far as it said: ends it, then takes what it wrote.
    pub fn failure(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut said = Vec::new();
        if let Some(mut e) = self.stderr.take() {
            let mut buf = [0u8; 4096];
            while said.len() < 16 << 10 {
                match e.read(&mut buf) {
                    Ok(n) if n > 0 => said.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
        }
        String::from_utf8_lossy(&said).trim().to_string()
    }
}

/// Logs what the server process writes on stderr, line by line, until it closes it.
async fn drain_stderr(reg: Registration<File>) {
    let mut buf = [0u8; 4096];
    loop {
        match reg.read_with(|mut f| f.read(&mut buf)).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                for line in String::from_utf8_lossy(&buf[..n]).lines() {
                    log::warn!("sftpfs: server: {line}");
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Closing our end of the socket makes a server exit (end of file on its stdin).
        // One that is still our child is also killed and reaped; the first one belongs
        // to the process that forked us into the background (ECHILD here), and its pid
        // may be reused once it is gone, so it is never signalled.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What the server told us at the start: its extensions, limits and the root path.
#[derive(Clone, Debug)]
pub struct Hello {
    pub extensions: Extensions,
    pub read_len: u32,
    pub write_len: u32,
    /// The absolute remote path of the mounted directory.
    pub root: Vec<u8>,
}

/// A blocking exchange for the start, before the loop runs (and the mount exists):
/// bounded by the socket's timeouts.
fn call_blocking(s: &mut UnixStream, frame: &[u8]) -> io::Result<Vec<u8>> {
    s.write_all(frame)?;
    let mut prefix = [0u8; 4];
    s.read_exact(&mut prefix)?;
    let len = frame_len(prefix).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(body)
}

fn protocol(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("server: {what}"))
}

/// INIT, limits and the real path of `dir`, before mounting, so a wrong host, server
/// or directory fails the mount with a message.
pub fn handshake(s: &mut UnixStream, dir: &str, timeout: Duration) -> io::Result<Hello> {
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut out = Vec::new();
    encode_init(&mut out);
    let body = call_blocking(s, &out)?;
    let v = Version::decode(&body).map_err(|e| protocol(&format!("bad VERSION: {e}")))?;
    if v.version != 3 {
        return Err(protocol(&format!(
            "speaks SFTP version {}, not 3",
            v.version
        )));
    }
    let (mut read_len, mut write_len) = (MAX_READ, MAX_READ);
    if v.extensions.limits {
        out.clear();
        Request::Limits
            .encode(1, &mut out)
            .map_err(io::Error::other)?;
        let body = call_blocking(s, &out)?;
        if let Ok((_, Reply::Extended(p))) = decode_reply(&body) {
            if let Ok(l) = Limits::decode(p) {
                let clamp = |n: u64| {
                    if n == 0 {
                        MAX_READ
                    } else {
                        n.min(MAX_READ as u64) as u32
                    }
                };
                read_len = clamp(l.read_len);
                write_len = clamp(l.write_len);
            }
        }
    }
    let path = if dir.is_empty() { "." } else { dir };
    out.clear();
    let req = if v.extensions.expand_path && path.starts_with('~') {
        Request::ExpandPath {
            path: path.as_bytes(),
        }
    } else {
        Request::Realpath {
            path: path.as_bytes(),
        }
    };
    req.encode(2, &mut out).map_err(io::Error::other)?;
    let body = call_blocking(s, &out)?;
    let root = match decode_reply(&body) {
        Ok((_, r)) => r
            .into_one_name()
            .map_err(|e| io::Error::other(format!("remote directory '{path}': {}", e.desc())))?
            .to_vec(),
        Err(e) => return Err(protocol(&format!("bad REALPATH reply: {e}"))),
    };
    out.clear();
    Request::Stat { path: &root }
        .encode(3, &mut out)
        .map_err(io::Error::other)?;
    let body = call_blocking(s, &out)?;
    let attrs = decode_reply(&body)
        .map_err(|e| protocol(&format!("bad STAT reply: {e}")))?
        .1
        .into_attrs()
        .map_err(|e| io::Error::other(format!("remote directory '{path}': {}", e.desc())))?;
    if attrs.file_type() != Some(sftp_codec::consts::S_IFDIR) {
        return Err(io::Error::other(format!(
            "remote '{path}' is not a directory"
        )));
    }
    s.set_read_timeout(None)?;
    s.set_write_timeout(None)?;
    Ok(Hello {
        extensions: v.extensions,
        read_len,
        write_len,
        root,
    })
}

/// A live session: the channel, the process behind it, and the next request id.
pub struct Conn {
    chan: Channel<SftpFraming>,
    _server: Server,
    next_id: Cell<u32>,
    /// Which session this is (1, 2, ... after reconnects): file handles of an older
    /// one are reopened before use.
    pub generation: u64,
    /// Its place in the mount's set of sessions (`crate::sessions`).
    pub slot: usize,
}

impl Conn {
    /// Opens the channel on a stream whose server is past INIT.
    pub fn open<F: Ops>(
        cx: &Cx<F>,
        stream: UnixStream,
        mut server: Server,
        timeout: Duration,
        generation: u64,
        slot: usize,
    ) -> Result<Rc<Conn>, Errno> {
        if let Some(e) = server.stderr.take() {
            match cx.register(e) {
                Ok(reg) => drop(cx.spawn(drain_stderr(reg))),
                Err(e) => log::debug!("sftpfs: server stderr: {e}"),
            }
        }
        let opts = ChannelOptions::default()
            .timeout(timeout)
            .read_buffer(256 << 10)
            .write_buffer(256 << 10)
            .max_queued(4 << 20);
        let chan = Channel::with_options(cx, stream, SftpFraming, opts).map_err(|e| {
            log::warn!("sftpfs: cannot open the channel: {e}");
            Errno::EIO
        })?;
        Ok(Rc::new(Conn {
            chan,
            _server: server,
            next_id: Cell::new(1),
            generation,
            slot,
        }))
    }

    /// Starts a new session (reconnect): runs the server, sends INIT and waits for its
    /// VERSION, all on the loop.
    pub async fn start<F: Ops>(
        cx: &Cx<F>,
        argv: &[String],
        timeout: Duration,
        generation: u64,
        slot: usize,
    ) -> Result<Rc<Conn>, Errno> {
        let (server, stream) = Server::spawn(argv).map_err(|e| {
            log::warn!("sftpfs: reconnect: {e}");
            Errno::ENOTCONN
        })?;
        let conn = Conn::open(cx, stream, server, timeout, generation, slot)?;
        let mut out = Vec::new();
        encode_init(&mut out);
        let reply = conn.chan.request(Framebuf::from_vec(out)).await?;
        let v = Version::decode(&reply.as_slice()[4..]).map_err(|_| Errno::EIO)?;
        if v.version != 3 {
            return Err(Errno::EPROTO);
        }
        Ok(conn)
    }

    /// Whether the channel has ended (the server or ssh went away, or lied).
    pub fn is_closed(&self) -> bool {
        self.chan.closed().is_some()
    }

    /// Sends `req` and decodes its reply with `take`; a reply that does not decode is
    /// EIO (logged), as is a request too large for a frame.
    pub async fn call<T>(
        &self,
        req: Request<'_>,
        take: impl FnOnce(Reply<'_>) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        let mut out = Vec::new();
        req.encode(id, &mut out).map_err(|_| Errno::ENAMETOOLONG)?;
        let reply = self.chan.request(Framebuf::from_vec(out)).await?;
        decode(&reply, kind(&req), take)
    }

    /// One READ of `len` bytes at `offset` of the open file `handle`; a server sending
    /// more than asked is cut to what was asked.
    pub async fn read_at(&self, handle: &[u8], offset: u64, len: u32) -> Result<Vec<u8>, Errno> {
        let req = Request::Read {
            handle,
            offset,
            len,
        };
        self.call(req, |r| {
            r.into_data()
                .map(|d| d[..d.len().min(len as usize)].to_vec())
        })
        .await
    }

    /// Queues `req` (after waiting for room in the channel's queue) and returns; `done`
    /// gets what `take` makes of the reply later, or the channel's error if the session
    /// ends first. No deadline applies: the caller bounds its waiting.
    pub async fn call_queued<T>(
        &self,
        req: Request<'_>,
        take: impl FnOnce(Reply<'_>) -> Result<T, Errno> + 'static,
        done: impl FnOnce(Result<T, Errno>) + 'static,
    ) -> Result<(), Errno> {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        let mut out = Vec::new();
        req.encode(id, &mut out).map_err(|_| Errno::ENAMETOOLONG)?;
        let what = kind(&req);
        self.chan
            .request_with(Framebuf::from_vec(out), move |r| {
                done(r.and_then(|reply| decode(&reply, what, take)))
            })
            .await
    }

    /// Ends the session now: every waiting request fails.
    pub fn close(&self) {
        self.chan.close();
    }
}

/// A reply frame decoded by `take`; one that does not decode is EIO (logged).
fn decode<T>(
    reply: &Framebuf,
    what: &str,
    take: impl FnOnce(Reply<'_>) -> Result<T, Errno>,
) -> Result<T, Errno> {
    let body = reply.as_slice().get(4..).unwrap_or_default();
    match split_frame(reply.as_slice())
        .ok()
        .flatten()
        .map(|_| decode_reply(body))
    {
        Some(Ok((_, r))) => take(r),
        Some(Err(e)) => {
            log::warn!("sftpfs: undecodable reply to {what}: {e}");
            Err(Errno::EIO)
        }
        None => Err(Errno::EIO),
    }
}

/// A request's name for the log, without its (possibly large) data.
fn kind(req: &Request<'_>) -> &'static str {
    match req {
        Request::Read { .. } => "READ",
        Request::Write { .. } => "WRITE",
        Request::Lstat { .. } | Request::Stat { .. } | Request::Fstat { .. } => "STAT",
        Request::Readdir { .. } => "READDIR",
        Request::Open { .. } | Request::Opendir { .. } => "OPEN",
        _ => "request",
    }
}
