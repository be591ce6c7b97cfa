//! Framebufs and framed fd channels, for network file systems (NetBSD's
//! puffs_framebuf and puffs_framev, the machinery behind psshfs).
//!
//! A [`Framebuf`] is a growable byte buffer with a cursor: build a request with its
//! `put_*` methods, take a response apart with `get_*`, which fail (never panic) when
//! a frame is shorter than it claims.
//!
//! A [`Channel`] carries frames over a stream fd to a server. The file system says how
//! its protocol frames messages and tags responses ([`Framing`]); the channel queues
//! frames, writes them, reads responses and wakes the continuation that waits for each,
//! in whatever order they come. Requests are pipelined: any number of continuations
//! may wait on one channel. See docs/network-filesystems.md.

mod buf;
mod channel;
mod driver;
mod fdio;
mod framing;
mod inner;
mod options;

pub use buf::{Framebuf, Short};
pub use channel::Channel;
pub use framing::{Closed, Framing, Side};
pub use options::ChannelOptions;
