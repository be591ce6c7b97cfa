//! puffs-rs: write a file system as a small Rust program.
//!
//! The package is `libpuffs` and its library `puffs`: depend on `libpuffs` (from git or
//! a path until it is on crates.io) and write `puffs::` in the code, without renaming
//! the dependency (`#[puffs::ops]` expands to paths under `::puffs`):
//!
//! ```toml
//! [dependencies]
//! libpuffs = { git = "https://github.com/puffs-rs/puffs-rs" }
//! ```
//!
//! A file system implements [`Ops`] (async methods, one per kernel request; the ones it
//! leaves out answer ENOSYS without ever reaching it), puts `#[puffs::ops]` on the impl
//! so the opmask is derived from it, and runs it with [`PuffsUserMount`], whose states
//! are types (configure, then [`Mounted`], then done), so no call comes at the wrong time:
//!
//! ```no_run
//! # use puffs::*;
//! # struct Hello;
//! # #[puffs::ops] impl Ops for Hello { type Node = (); type Key = u64; fn root(&self) -> (u64, ()) { (1, ()) } }
//! fn main() -> Result<(), puffs::Error> {
//!     let args = puffs::cli::Args::parse("hellofs", "a read-only file system with one file", &[]);
//!     let pu = PuffsUserMount::new(Hello, "hellofs", "hello").options(&args.options);
//!     let pu = if args.foreground { pu } else { pu.daemon()? }; // the parent exits once mounted
//!     let mounted = pu.mount(&args.mountpoint)?; // a `Mounted`: settings are fixed now
//!     let _stop = mounted.exit_handle(); // Send + Clone: stops the loop from any thread
//!     mounted.mainloop() // returns after unmount
//! }
//! ```
//!
//! What each op must do, when the kernel calls it and what happens when it is left
//! out: [`Ops`]. A whole file system, step by step: docs/writing-a-filesystem.md.
//!
//! The request path: `kernel` (fuser's reader thread → request frame) → `mainloop`
//! (one thread, all state) → `dispatch` (a continuation in `cc` runs the op)
//! → the reply. See docs/architecture.md.

#![warn(missing_docs)]

pub mod aio;
mod args;
pub mod attr;
mod cc;
mod cx;
mod daemon;
mod data;
pub mod dirbuf;
pub mod dirwatch;
mod dispatch;
mod errno;
mod error;
pub mod event;
mod exit;
mod files;
pub mod framebuf;
mod kernel;
mod mainloop;
mod mount_flags;
pub mod node;
mod notify;
#[cfg(target_os = "linux")]
pub mod null;
mod op;
pub mod ops;
pub mod passthrough;
pub mod paths;
mod reactor;
mod runtime;
mod signals;
mod stacking;
mod usermount;
mod wakeup;

/// The shared command line (`-f -d -o ... [SOURCE] MOUNTPOINT`), from puffs-options
/// (feature `cli`).
#[cfg(feature = "cli")]
pub use puffs_options::cli;
/// The `-o` option parser, from puffs-options.
pub use puffs_options::options;

pub use aio::{Aio, AioBackend};
pub use args::{
    AccessMask, AccessMode, FallocateFlags, LockType, Mode, NewNode, OpenFlags, Whence, XattrFlags,
};
pub use attr::{Attr, AttrReply, DirEntry, Entry, FileType, Lock, Open, SetAttr, SetTime, Statvfs};
pub use cc::{JoinError, JoinHandle};
pub use cx::Cx;
pub use data::Data;
pub use dirbuf::{DirBuf, DirPlusBuf};
pub use errno::Errno;
pub use error::{errno, Error, OrErrno};
pub use exit::ExitHandle;
pub use framebuf::{Channel, Framebuf, Framing};
pub use libpuffs_macros::ops;
pub use mount_flags::MountFlags;
pub use node::{Node, NodeTable, ROOT_INO};
pub use notify::Notifier;
#[doc(hidden)]
pub use notify::NotifyStats;
pub use ops::{Cred, EntryOf, FileAt, Op, OpMask, OpResult, Ops, RenameFlags};
pub use paths::{PathCell, PathOps, PuffsPath};
#[doc(hidden)]
pub use reactor::ReactorStats;
pub use reactor::{Readiness, Registration, Sleep};
#[doc(hidden)]
pub use runtime::ForgetStats;
pub use runtime::State;
pub use usermount::{Mounted, PuffsUserMount};

/// Sets up logging with env_logger: `RUST_LOG` when set, else every request and reply
/// when `debug` (the `-d` flag), else warnings only. fuser's INIT chatter (a line per
/// capability) shows only when `RUST_LOG` asks for `fuser::session=debug`.
#[cfg(feature = "logging")]
pub fn init_logging(debug: bool) {
    let default = if debug {
        "debug,fuser::session=info"
    } else {
        "warn"
    };
    let env = env_logger::Env::default().default_filter_or(default);
    let logger = env_logger::Builder::from_env(env)
        .format_timestamp_micros()
        .build();
    let max = logger.filter();
    if log::set_boxed_logger(Box::new(kernel::QuietFuser(logger))).is_ok() {
        log::set_max_level(max);
    }
}
