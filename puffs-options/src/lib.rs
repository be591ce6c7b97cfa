//! The mount options and command line that puffs file systems and the mount
//! helper share, so that `-o` means the same thing everywhere.
//!
//! - [`options`]: the `-o` option parser (always there, no dependencies).
//! - [`cli`]: the FUSE-style command line `PROG [-f] [-d] [-o OPTS]... [SOURCE]
//!   MOUNTPOINT`, parsed with clap (feature `cli`).
//!
//! libpuffs re-exports both as `puffs::options` and `puffs::cli`; the mount
//! helper depends on this crate alone, without the framework.

#![warn(missing_docs)]

#[cfg(feature = "cli")]
pub mod cli;
pub mod options;
