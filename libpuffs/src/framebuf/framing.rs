//! What a file system tells a [`Channel`](super::Channel) about its protocol
//! (puffs_framev's readframe, writeframe, cmpframe, gotframe and fdnotify callbacks).

use std::io;

use super::Framebuf;

/// Which side of a channel's fd ended it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Reading: the peer closed its end (end of file) or the read failed.
    Read,
    /// Writing: the peer can take no more (EPIPE) or the write failed.
    Write,
}

/// How a channel ended, as told to [`Framing::closed`].
#[derive(Debug)]
pub struct Closed {
    /// The side that saw it first.
    pub side: Side,
    /// What it saw (`UnexpectedEof` for a peer that closed, possibly mid-frame).
    pub error: io::Error,
}

/// A protocol's framing: how frames are read from and written to the fd, how a response
/// names its request, and what to do with frames nobody asked for. A channel calls these
/// from its I/O continuation, on the loop thread.
///
/// A length-prefixed protocol whose tag is a `u32` after the length:
///
/// ```
/// use std::io::{self, Read};
/// use puffs::framebuf::{Framebuf, Framing};
///
/// struct Sftpish;
/// impl Framing for Sftpish {
///     fn read_frame(&mut self, fb: &mut Framebuf, fd: &mut dyn Read) -> io::Result<()> {
///         fb.fill_to(fd, 4)?;
///         let len = u32::from_be_bytes(fb.as_slice()[..4].try_into().unwrap()) as usize;
///         if len > 256 * 1024 {
///             return Err(io::ErrorKind::InvalidData.into()); // never allocate what a peer says
///         }
///         fb.fill_to(fd, 4 + len)
///     }
///     fn tag(&self, fb: &Framebuf) -> Option<u64> {
///         let w = fb.window(5, 4).ok()?;                     // length, type byte, id
///         Some(u32::from_be_bytes(w.try_into().unwrap()).into())
///     }
/// }
/// ```
pub trait Framing: 'static {
    /// Reads (the rest of) one frame from `fd` into `fb`, which keeps what earlier calls
    /// read of it (partial reads: [`Framebuf::fill_to`] does the bookkeeping). Returns
    /// `Ok(())` once the frame is whole, lets a `WouldBlock` from `fd` through when it
    /// needs more than there is yet (the channel calls again when the fd is readable),
    /// and fails on anything else: an end of file (`UnexpectedEof`), or a frame it will
    /// not take (`InvalidData`, e.g. an oversized length), which ends the channel.
    ///
    /// `fd` is buffered by the channel: small reads cost no system call each.
    fn read_frame(&mut self, fb: &mut Framebuf, fd: &mut dyn io::Read) -> io::Result<()>;

    /// Writes (the rest of) `fb` to `fd`: the channel puts its cursor at the start when
    /// the frame is queued, and the cursor marks what has been written. Same contract as
    /// `read_frame`. The default writes the bytes as they are, which is what most
    /// protocols want (the frame was built whole by its sender).
    fn write_frame(&mut self, fb: &mut Framebuf, fd: &mut dyn io::Write) -> io::Result<()> {
        fb.drain_to(fd)
    }

    /// The tag of a frame: for a request, the tag its response will carry; for a
    /// received frame, the tag of the request it answers, or `None` if it answers none
    /// (puffs' cmpframe, by key instead of by pairwise comparison). The same function
    /// reads both, so the tag must sit where requests and responses both carry it.
    fn tag(&self, fb: &Framebuf) -> Option<u64>;

    /// A received frame (cursor at its start) whose tag no request waits for: a notification from the peer
    /// (puffs' gotframe). The default drops it with a debug log line.
    fn unsolicited(&mut self, fb: Framebuf) {
        log::debug!(
            "framebuf: dropped an unsolicited frame of {} bytes",
            fb.len()
        );
    }

    /// The channel has ended (puffs' fdnotify): every request waiting on it has
    /// failed. Called once. The default logs it.
    fn closed(&mut self, why: &Closed) {
        log::debug!("framebuf: channel closed on {:?}: {}", why.side, why.error);
    }
}
