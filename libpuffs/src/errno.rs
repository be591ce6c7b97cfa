//! `Errno`: what a failed op answers, the calling process's errno.
//!
//! puffs' own type, not a re-export of nix's: nix is pre-1.0 and each of its minor
//! releases is a breaking one, which a re-export would pass on to every file system;
//! and only a type of our own can have `From<io::Error>`, so that `?` turns an I/O
//! failure into the op's answer. The constants keep nix's names (`Errno::ENOENT`), and
//! it converts to and from nix's errno and raw numbers.

use std::fmt;
use std::io;

/// An errno value (`ENOENT`, `EIO`, ...): the error of an op, which the calling
/// process sees as is. The constants have the host's values; any other number comes
/// through [`Errno::from_raw`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(i32);

macro_rules! errnos {
    ($($(#[$m:meta])* $name:ident,)*) => {
        impl Errno {
            $($(#[$m])* #[doc = concat!("`", stringify!($name), "`.")]
            pub const $name: Errno = Errno(libc::$name);)*
        }
    };
}

errnos! {
    EPERM, ENOENT, ESRCH, EINTR, EIO, ENXIO, E2BIG, ENOEXEC, EBADF, ECHILD, EAGAIN,
    ENOMEM, EACCES, EFAULT, EBUSY, EEXIST, EXDEV, ENODEV, ENOTDIR, EISDIR, EINVAL,
    ENFILE, EMFILE, ENOTTY, ETXTBSY, EFBIG, ENOSPC, ESPIPE, EROFS, EMLINK, EPIPE, EDOM,
    ERANGE, EDEADLK, ENAMETOOLONG, ENOLCK, ENOSYS, ENOTEMPTY, ELOOP, EWOULDBLOCK, ENOMSG,
    EIDRM, EOVERFLOW, EILSEQ, ENOTSUP, EOPNOTSUPP, ENOTSOCK, EDESTADDRREQ, EMSGSIZE,
    EPROTOTYPE, ENOPROTOOPT, EPROTONOSUPPORT, EAFNOSUPPORT, EADDRINUSE, EADDRNOTAVAIL,
    ENETDOWN, ENETUNREACH, ENETRESET, ECONNABORTED, ECONNRESET, ENOBUFS, EISCONN,
    ENOTCONN, ETIMEDOUT, ECONNREFUSED, EHOSTUNREACH, EALREADY, EINPROGRESS, ESTALE,
    EDQUOT, EBADMSG, ECANCELED, EPROTO, EMULTIHOP, ENOLINK,
    #[cfg(target_os = "linux")]
    ENODATA,
    #[cfg(not(target_os = "linux"))]
    ENOATTR,
}

impl Errno {
    /// "No such extended attribute": ENODATA on Linux, ENOATTR on the BSDs.
    #[cfg(target_os = "linux")]
    pub const NO_XATTR: Errno = Errno::ENODATA;
    /// "No such extended attribute": ENODATA on Linux, ENOATTR on the BSDs.
    #[cfg(not(target_os = "linux"))]
    pub const NO_XATTR: Errno = Errno::ENOATTR;

    /// The errno numbered `raw`.
    pub const fn from_raw(raw: i32) -> Errno {
        Errno(raw)
    }

    /// Its number.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The calling thread's errno now (after a failed libc call).
    pub fn last() -> Errno {
        Errno(
            io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        )
    }

    /// What it means, in words ("No such file or directory").
    pub fn desc(self) -> &'static str {
        nix::errno::Errno::from_raw(self.0).desc()
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match nix::errno::Errno::from_raw(self.0) {
            nix::errno::Errno::UnknownErrno => write!(f, "Errno({})", self.0),
            e => write!(f, "{e:?}"),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}: {}", self.desc())
    }
}

impl std::error::Error for Errno {}

/// The OS error an `io::Error` carries, EIO for one made up in user space (it names no
/// errno): `?` on an `io::Result` in an op answers the caller with it.
impl From<io::Error> for Errno {
    fn from(e: io::Error) -> Errno {
        Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

impl From<Errno> for io::Error {
    fn from(e: Errno) -> io::Error {
        io::Error::from_raw_os_error(e.0)
    }
}

/// nix's errno, so that `?` works on nix calls in an op.
impl From<nix::errno::Errno> for Errno {
    fn from(e: nix::errno::Errno) -> Errno {
        Errno(e as i32)
    }
}

impl From<Errno> for nix::errno::Errno {
    fn from(e: Errno) -> nix::errno::Errno {
        nix::errno::Errno::from_raw(e.0)
    }
}

impl From<Errno> for i32 {
    fn from(e: Errno) -> i32 {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_convert_every_way() {
        assert_eq!(Errno::ENOENT.raw(), libc::ENOENT);
        assert_eq!(
            Errno::from(io::Error::from_raw_os_error(libc::ENOSPC)),
            Errno::ENOSPC
        );
        assert_eq!(Errno::from(io::Error::other("made up")), Errno::EIO);
        assert_eq!(Errno::from(nix::errno::Errno::EXDEV), Errno::EXDEV);
        assert_eq!(
            nix::errno::Errno::from(Errno::EROFS),
            nix::errno::Errno::EROFS
        );
        assert_eq!(
            io::Error::from(Errno::EACCES).raw_os_error(),
            Some(libc::EACCES)
        );
        assert_eq!(format!("{:?}", Errno::ENOSYS), "ENOSYS");
        assert_eq!(format!("{:?}", Errno::from_raw(9999)), "Errno(9999)");
        assert!(Errno::ENOENT.to_string().starts_with("ENOENT: "));
        // Constants work as patterns.
        assert!(matches!(Errno::from_raw(libc::EEXIST), Errno::EEXIST));
    }

    #[test]
    fn question_mark_answers_an_io_error() {
        fn op() -> Result<(), Errno> {
            std::fs::metadata("/nonexistent/puffs-errno-test")?;
            Ok(())
        }
        assert_eq!(op(), Err(Errno::ENOENT));
    }
}
