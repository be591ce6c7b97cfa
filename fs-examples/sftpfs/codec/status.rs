//! SSH_FXP_STATUS codes and the errno each becomes.

use puffs::Errno;

use crate::consts::*;

/// A STATUS reply: the code and the server's message (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status<'a> {
    /// One of the `SSH_FX_*` codes (a server may send codes of later versions).
    pub code: u32,
    /// The server's human-readable message (UTF-8 by the draft, not checked).
    pub message: &'a [u8],
}

impl Status<'_> {
    /// Whether the request succeeded.
    pub fn is_ok(&self) -> bool {
        self.code == SSH_FX_OK
    }

    /// Whether this is end of file (READ past the end) or of directory (READDIR done).
    pub fn is_eof(&self) -> bool {
        self.code == SSH_FX_EOF
    }

    /// `Ok` for SSH_FX_OK, else the errno for the code ([`status_errno`]).
    pub fn result(&self) -> Result<(), Errno> {
        if self.is_ok() {
            Ok(())
        } else {
            Err(status_errno(self.code))
        }
    }
}

/// The errno an SFTP status code becomes, as sshfs and psshfs map them; codes of later
/// SFTP versions that some servers send anyway get their obvious errno, the rest EIO.
///
/// OpenSSH's server folds most errnos (EEXIST, ENOTEMPTY, EXDEV...) into SSH_FX_FAILURE,
/// which becomes EPERM here as in sshfs: a file system that needs the precise errno
/// finds it out with a follow-up request (a STAT to tell EEXIST, for example).
/// SSH_FX_OK and SSH_FX_EOF are not errors; asked anyway, they give EIO (the only
/// requests that expect EOF, READ and READDIR, check [`Status::is_eof`] first).
pub fn status_errno(code: u32) -> Errno {
    match code {
        SSH_FX_NO_SUCH_FILE => Errno::ENOENT,
        SSH_FX_PERMISSION_DENIED => Errno::EACCES,
        SSH_FX_FAILURE => Errno::EPERM,
        SSH_FX_BAD_MESSAGE => Errno::EBADMSG,
        SSH_FX_NO_CONNECTION => Errno::ENOTCONN,
        SSH_FX_CONNECTION_LOST => Errno::ECONNABORTED,
        SSH_FX_OP_UNSUPPORTED => Errno::EOPNOTSUPP,
        // draft-ietf-secsh-filexfer-13 codes.
        9 => Errno::EBADF,      // INVALID_HANDLE
        10 => Errno::ENOENT,    // NO_SUCH_PATH
        11 => Errno::EEXIST,    // FILE_ALREADY_EXISTS
        12 => Errno::EROFS,     // WRITE_PROTECT
        13 => Errno::ENODEV,    // NO_MEDIA
        14 => Errno::ENOSPC,    // NO_SPACE_ON_FILESYSTEM
        15 => Errno::EDQUOT,    // QUOTA_EXCEEDED
        17 => Errno::ENOLCK,    // LOCK_CONFLICT
        18 => Errno::ENOTEMPTY, // DIR_NOT_EMPTY
        19 => Errno::ENOTDIR,   // NOT_A_DIRECTORY
        20 => Errno::EINVAL,    // INVALID_FILENAME
        21 => Errno::ELOOP,     // LINK_LOOP
        24 => Errno::EISDIR,    // FILE_IS_A_DIRECTORY
        _ => Errno::EIO,
    }
}
