//! The kernel channel: the only module that knows fuser. `adapter` runs on fuser's
//! reader thread and turns each request into an owned `Request` frame on the inbox;
//! `dispatch` runs on the mainloop and turns a frame into a continuation that calls
//! the file system's op and sends the reply; `session` mounts (from plain
//! `MountParams`: it imports neither the runtime nor the mount) and unmounts; `notify`
//! writes kernel notifications; `quiet_log` keeps fuser's benign shutdown message out
//! of the error log.

mod adapter;
mod convert;
mod dispatch;
mod notify;
#[cfg(feature = "logging")]
mod quiet_log;
mod request;
mod session;

pub(crate) use dispatch::dispatch;
#[cfg(feature = "logging")]
pub(crate) use quiet_log::QuietFuser;
pub(crate) use request::{Inbox, Request};
pub(crate) use session::{mount, MountParams, Session};
