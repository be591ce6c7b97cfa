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

impl From<crate::errno::Errno> for Error {
    fn from(e: crate::errno::Errno) -> Self {
        Error::Io(e.into())
    }
}

/// The errno an `io::Error` stands for, for `.map_err(puffs::errno)`: the OS error when
/// it carries one, EIO for errors made up in user space (they name no errno). `?`
/// does the same by itself (`From<io::Error> for Errno`).
pub fn errno(e: io::Error) -> crate::errno::Errno {
    e.into()
}

/// `io::Result<T>` → `OpResult<T>` in one call, where `?` cannot convert (in a closure
/// or a combinator chain): `file.read_at(..).or_errno()`.
pub trait OrErrno<T> {
    /// The value, or the errno of the error.
    fn or_errno(self) -> Result<T, crate::errno::Errno>;
}

impl<T> OrErrno<T> for io::Result<T> {
    fn or_errno(self) -> Result<T, crate::errno::Errno> {
        self.map_err(errno)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::Errno;

    #[test]
    fn io_errors_keep_their_errno() {
        let e = io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(errno(e), Errno::ENOSPC);
        let made_up = io::Error::other("no errno");
        assert_eq!(errno(made_up), Errno::EIO);
        let r: io::Result<()> = Err(io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(r.or_errno(), Err(Errno::ENOENT));
    }
}
