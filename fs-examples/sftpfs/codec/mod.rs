//! The SFTP version 3 message codec of sftpfs, with the OpenSSH extensions
//! (posix-rename, statvfs/fstatvfs, fsync, hardlink, lsetstat, limits, copy-data,
//! expand-path). Sans-I/O: it turns requests into frames and frame bodies into replies;
//! reading and writing the fd, matching replies to requests by id ([`reply_id`]) and
//! pipelining are the channel's work (libpuffs framebuf).
//!
//! ```
//! use sftp_codec::{decode_reply, encode_init, split_frame, Request, Version};
//!
//! let mut out = Vec::new();
//! encode_init(&mut out);
//! Request::Stat { path: b"/etc" }.encode(7, &mut out).unwrap();
//! // ... written to the server; its bytes come back into `input`:
//! # let input = [0u8, 0, 0, 5, 2, 0, 0, 0, 3];
//! if let Some((body, used)) = split_frame(&input).unwrap() {
//!     assert_eq!(Version::decode(body).unwrap().version, 3);
//!     assert_eq!(used, input.len());
//! }
//! ```
//!
//! Why a codec of our own rather than the `openssh-sftp-protocol` crate (0.26, sans-I/O,
//! no tokio, every extension): its reply decoder pre-allocates from the peer's NAME
//! count (`Vec::with_capacity(count)`), so a 9-byte reply claiming 2^32-1 names makes
//! the process abort on a 275 GB allocation (tried), which a mounted fs must never do;
//! it also pulls serde, ssh_format, thiserror and num-derive into a codec of a few
//! hundred lines, and copies every name into a `Box<Path>` where this one borrows from
//! the frame. This codec bounds every length by the frame, and the frame by 256 KiB.

#![warn(missing_docs)]

mod attrs;
pub mod consts;
mod frame;
mod reply;
mod request;
mod status;
mod wire;

pub use attrs::Attrs;
pub use frame::{frame_len, reply_id, split_frame, MAX_FRAME, MAX_READ};
pub use reply::{decode_reply, Extensions, Limits, NameEntry, Reply, Statvfs, Version};
pub use request::{encode_init, OpenFlags, Request, TooLarge};
pub use status::{status_errno, Status};
pub use wire::DecodeError;

#[cfg(test)]
mod tests;
