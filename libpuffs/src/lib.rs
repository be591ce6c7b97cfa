//! puffs-rs: write a file system as a small Rust program.
//!
//! A file system implements [`Ops`] (async methods, one per kernel request; the ones it
//! leaves out answer ENOSYS without ever reaching it), puts `#[puffs::ops]` on the impl
//! so the opmask is derived from it, and runs it with [`PuffsUserMount`]:
//!
//! ```no_run
//! # use puffs::*;
//! # struct Hello;
//! # #[puffs::ops] impl Ops for Hello { type Node = (); type Key = u64; fn root(&self) -> (u64, ()) { (1, ()) } }
//! fn main() -> Result<(), puffs::Error> {
//!     let args = puffs::cli::Args::parse("hellofs", "a read-only file system with one file", &[]);
//!     let mut pu = PuffsUserMount::new(Hello, "hellofs", "hello")?.options(&args.options);
//!     if !args.foreground { pu.daemon()?; }
//!     pu.mount(&args.mountpoint)?;
//!     pu.mainloop()
//! }
//! ```
//!
//! The request path: `kernel` (fuser's reader thread → request frame) → `mainloop`
//! (one thread, all state) → `kernel::dispatch` (a continuation in `cc` runs the op)
//! → the reply. See docs/architecture.md.

pub mod aio;
pub mod attr;
mod cc;
pub mod cli;
mod cx;
mod daemon;
pub mod dirbuf;
mod error;
pub mod event;
mod kernel;
mod mainloop;
pub mod node;
pub mod ops;
pub mod options;
mod reactor;
mod usermount;
mod wakeup;

pub use aio::Aio;
pub use attr::{Attr, DirEntry, Entry, FileType, Lock, Opened, SetAttr, SetTime, Statvfs};
pub use cc::{JoinError, JoinHandle};
pub use cx::Cx;
pub use dirbuf::{DirBuf, DirPlusBuf};
pub use error::Error;
pub use libpuffs_macros::ops;
pub use nix::errno::Errno;
pub use node::{Node, NodeTable, ROOT_INO};
pub use ops::{Cred, EntryOf, Op, OpMask, OpResult, Ops, RenameFlags};
pub use reactor::{FdReady, Sleep};
pub use usermount::{MountFlags, PuffsUserMount, State};

/// Sets up logging with env_logger: `RUST_LOG` when set, else every request and reply
/// when `debug` (the `-d` flag), else warnings only.
pub fn init_logging(debug: bool) {
    let default = if debug { "debug" } else { "warn" };
    let env = env_logger::Env::default().default_filter_or(default);
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp_micros()
        .try_init();
}
