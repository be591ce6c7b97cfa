//! The framework's error type: what went wrong outside a request (mounting, the loop,
//! daemonizing). Requests fail with an `Errno` instead.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why mounting, daemonizing or running the loop failed. Its `Display` is one line
/// fit for a user ("cannot mount on /mnt: ...").
#[derive(Debug)]
pub enum Error {
    /// The mount failed; `why` says what to do about it.
    Mount {
        /// The mount point.
        path: PathBuf,
        /// What went wrong and what to do about it, in words.
        why: String,
        /// The system error underneath.
        source: io::Error,
    },
    /// A call that the mount's state does not allow (`daemon()` twice; the rest are
    /// compile errors, as the builder's states are types).
    State(&'static str),
    /// The background process reported a failure, or the fork / pipe failed.
    Daemon(String),
    /// Any other system error (the kernel channel, the poller, signals).
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Mount { path, why, source } => {
                write!(f, "cannot mount on {}: {why} ({source})", path.display())
            }
            Error::State(what) => write!(f, "{what}"),
            Error::Daemon(msg) => write!(f, "{msg}"),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Mount { source, .. } | Error::Io(source) => Some(source),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<nix::errno::Errno> for Error {
    fn from(e: nix::errno::Errno) -> Self {
        Error::Io(e.into())
    }
}

/// The errno an `io::Error` stands for, so an op can answer an I/O failure with
/// `.map_err(puffs::errno)?` (or `.or_errno()?`, see [`OrErrno`]): the OS error when
/// it carries one, EIO for errors made up in user space (they name no errno).
///
/// The public `Errno` stays nix's for now: its names are what file system code
/// writes, and Rust's orphan rule forbids `impl From<io::Error> for nix::Errno` here,
/// which is why this is a function and not `?` alone.
pub fn errno(e: io::Error) -> nix::errno::Errno {
    e.raw_os_error()
        .map(nix::errno::Errno::from_raw)
        .unwrap_or(nix::errno::Errno::EIO)
}

/// `io::Result<T>` → `OpResult<T>` in one call: `file.read_at(..).or_errno()?`.
pub trait OrErrno<T> {
    /// The value, or the errno of the error.
    fn or_errno(self) -> Result<T, nix::errno::Errno>;
}

impl<T> OrErrno<T> for io::Result<T> {
    fn or_errno(self) -> Result<T, nix::errno::Errno> {
        self.map_err(errno)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_keep_their_errno() {
        let e = io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(errno(e), nix::errno::Errno::ENOSPC);
        let made_up = io::Error::other("no errno");
        assert_eq!(errno(made_up), nix::errno::Errno::EIO);
        let r: io::Result<()> = Err(io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(r.or_errno(), Err(nix::errno::Errno::ENOENT));
    }
}
