//! The kernel channel: the only module that knows fuser. `adapter` runs on fuser's
//! reader thread and turns each request into an owned `Request` frame on the inbox
//! (`crate::dispatch`, on the mainloop, runs it); `session` mounts and unmounts;
//! `notify` writes kernel notifications; `readahead` sets the kernel's window;
//! `quiet_log` keeps fuser's benign shutdown message out of the error log.

mod adapter;
pub(crate) mod convert;
mod notify;
mod passthrough;
#[cfg(feature = "logging")]
mod quiet_log;
mod readahead;
pub(crate) mod reply;
pub(crate) mod request;
mod session;

#[cfg(feature = "logging")]
pub(crate) use quiet_log::QuietFuser;
pub(crate) use request::{Inbox, Request};
pub(crate) use session::{mount, MountParams, Session};
