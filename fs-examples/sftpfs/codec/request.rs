//! Requests: every message sftpfs sends, encoded as a whole frame (length prefix
//! included) at the end of an output buffer.

use std::fmt;

use crate::attrs::Attrs;
use crate::consts::*;
use crate::frame::{begin_frame, end_frame, MAX_FRAME};
use crate::wire::{put_string, put_u32, put_u64};

/// SSH_FXF_* open flags of an OPEN request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenFlags(pub u32);

impl OpenFlags {
    /// The SFTP flags for POSIX `open(2)` flags: the access mode, O_APPEND, O_CREAT,
    /// O_TRUNC and O_EXCL (the others have no SFTP form).
    pub fn from_posix(flags: i32) -> OpenFlags {
        let mut f = match flags & libc::O_ACCMODE {
            libc::O_WRONLY => SSH_FXF_WRITE,
            libc::O_RDWR => SSH_FXF_READ | SSH_FXF_WRITE,
            _ => SSH_FXF_READ,
        };
        for (posix, sftp) in [
            (libc::O_APPEND, SSH_FXF_APPEND),
            (libc::O_CREAT, SSH_FXF_CREAT),
            (libc::O_TRUNC, SSH_FXF_TRUNC),
            (libc::O_EXCL, SSH_FXF_EXCL),
        ] {
            if flags & posix != 0 {
                f |= sftp;
            }
        }
        OpenFlags(f)
    }
}

/// A request to the server. Paths and handles are bytes as the server gave or takes
/// them; nothing here interprets them.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// SSH_FXP_OPEN: open or create a file; answered by a HANDLE.
    Open {
        /// Path of the file.
        path: &'a [u8],
        /// How to open it.
        flags: OpenFlags,
        /// Attributes for a file it creates (usually just the permissions).
        attrs: Attrs,
    },
    /// SSH_FXP_CLOSE a file or directory handle.
    Close {
        /// The handle.
        handle: &'a [u8],
    },
    /// SSH_FXP_READ up to `len` bytes at `offset`; answered by DATA or EOF.
    Read {
        /// An open file's handle.
        handle: &'a [u8],
        /// Where to read.
        offset: u64,
        /// How much (the server may return less).
        len: u32,
    },
    /// SSH_FXP_WRITE `data` at `offset`.
    Write {
        /// An open file's handle.
        handle: &'a [u8],
        /// Where to write.
        offset: u64,
        /// What to write (the frame must stay within [`MAX_FRAME`]).
        data: &'a [u8],
    },
    /// SSH_FXP_LSTAT: attributes of a path, not following a final symlink.
    Lstat {
        /// The path.
        path: &'a [u8],
    },
    /// SSH_FXP_FSTAT: attributes of an open handle.
    Fstat {
        /// The handle.
        handle: &'a [u8],
    },
    /// SSH_FXP_SETSTAT: change a path's attributes (follows symlinks).
    Setstat {
        /// The path.
        path: &'a [u8],
        /// The fields to change.
        attrs: Attrs,
    },
    /// SSH_FXP_FSETSTAT: change an open handle's attributes.
    Fsetstat {
        /// The handle.
        handle: &'a [u8],
        /// The fields to change.
        attrs: Attrs,
    },
    /// SSH_FXP_OPENDIR: answered by a HANDLE to READDIR.
    Opendir {
        /// The directory.
        path: &'a [u8],
    },
    /// SSH_FXP_READDIR: the next batch of NAMEs, or EOF.
    Readdir {
        /// A directory handle.
        handle: &'a [u8],
    },
    /// SSH_FXP_REMOVE a file.
    Remove {
        /// The file.
        path: &'a [u8],
    },
    /// SSH_FXP_MKDIR.
    Mkdir {
        /// The new directory.
        path: &'a [u8],
        /// Its attributes (permissions).
        attrs: Attrs,
    },
    /// SSH_FXP_RMDIR.
    Rmdir {
        /// The directory.
        path: &'a [u8],
    },
    /// SSH_FXP_REALPATH: the canonical absolute path (one NAME).
    Realpath {
        /// The path to resolve (`.` for the login directory).
        path: &'a [u8],
    },
    /// SSH_FXP_STAT: attributes of a path, following symlinks.
    Stat {
        /// The path.
        path: &'a [u8],
    },
    /// SSH_FXP_RENAME: fails if `to` exists (use [`Request::PosixRename`] to replace).
    Rename {
        /// The old path.
        from: &'a [u8],
        /// The new path.
        to: &'a [u8],
    },
    /// SSH_FXP_READLINK: a symlink's target (one NAME).
    Readlink {
        /// The symlink.
        path: &'a [u8],
    },
    /// SSH_FXP_SYMLINK: make `link` point at `target`.
    Symlink {
        /// Where the new symlink goes.
        link: &'a [u8],
        /// What it points to.
        target: &'a [u8],
    },
    /// posix-rename@openssh.com: rename(2), atomically replacing `to`.
    PosixRename {
        /// The old path.
        from: &'a [u8],
        /// The new path.
        to: &'a [u8],
    },
    /// statvfs@openssh.com: the file system holding `path` (an EXTENDED_REPLY).
    Statvfs {
        /// Any path on it.
        path: &'a [u8],
    },
    /// fstatvfs@openssh.com: the file system holding an open handle.
    Fstatvfs {
        /// The handle.
        handle: &'a [u8],
    },
    /// hardlink@openssh.com: link(2) `new` to `existing`.
    Hardlink {
        /// The existing file.
        existing: &'a [u8],
        /// The new name.
        new: &'a [u8],
    },
    /// fsync@openssh.com on an open file handle.
    Fsync {
        /// The handle.
        handle: &'a [u8],
    },
    /// lsetstat@openssh.com: SETSTAT without following a final symlink.
    Lsetstat {
        /// The path.
        path: &'a [u8],
        /// The fields to change.
        attrs: Attrs,
    },
    /// limits@openssh.com: the server's packet, read and write sizes and open handles.
    Limits,
    /// expand-path@openssh.com: REALPATH that also expands `~` (one NAME).
    ExpandPath {
        /// The path.
        path: &'a [u8],
    },
    /// copy-data: copy `len` bytes (0: to end of file) between two open handles on the
    /// server (copy_file_range).
    CopyData {
        /// The handle read from.
        from: &'a [u8],
        /// Where to read.
        from_offset: u64,
        /// How much (0: until EOF).
        len: u64,
        /// The handle written to.
        to: &'a [u8],
        /// Where to write.
        to_offset: u64,
    },
}

/// A request too large for one frame (a WRITE of more than the server's limit, an
/// enormous path): the caller splits it or refuses the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    /// The frame's body length.
    pub len: usize,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SFTP request of {} bytes exceeds {MAX_FRAME}", self.len)
    }
}

impl std::error::Error for TooLarge {}

/// Appends the INIT frame (version 3) to `out`; the server answers VERSION.
pub fn encode_init(out: &mut Vec<u8>) {
    let start = begin_frame(out, SSH_FXP_INIT);
    put_u32(out, SFTP_VERSION);
    end_frame(out, start).expect("INIT is a few bytes");
}

impl Request<'_> {
    /// Appends this request's frame, tagged `id`, to `out`; a frame that would exceed
    /// [`MAX_FRAME`] is not appended.
    pub fn encode(&self, id: u32, out: &mut Vec<u8>) -> Result<(), TooLarge> {
        let start = begin_frame(out, self.kind());
        put_u32(out, id);
        self.encode_payload(out);
        end_frame(out, start).map_err(|len| TooLarge { len })
    }

    /// The message type byte.
    fn kind(&self) -> u8 {
        use Request::*;
        match self {
            Open { .. } => SSH_FXP_OPEN,
            Close { .. } => SSH_FXP_CLOSE,
            Read { .. } => SSH_FXP_READ,
            Write { .. } => SSH_FXP_WRITE,
            Lstat { .. } => SSH_FXP_LSTAT,
            Fstat { .. } => SSH_FXP_FSTAT,
            Setstat { .. } => SSH_FXP_SETSTAT,
            Fsetstat { .. } => SSH_FXP_FSETSTAT,
            Opendir { .. } => SSH_FXP_OPENDIR,
            Readdir { .. } => SSH_FXP_READDIR,
            Remove { .. } => SSH_FXP_REMOVE,
            Mkdir { .. } => SSH_FXP_MKDIR,
            Rmdir { .. } => SSH_FXP_RMDIR,
            Realpath { .. } => SSH_FXP_REALPATH,
            Stat { .. } => SSH_FXP_STAT,
            Rename { .. } => SSH_FXP_RENAME,
            Readlink { .. } => SSH_FXP_READLINK,
            Symlink { .. } => SSH_FXP_SYMLINK,
            _ => SSH_FXP_EXTENDED,
        }
    }

    fn encode_payload(&self, out: &mut Vec<u8>) {
        use Request::*;
        match *self {
            Open { path, flags, attrs } => {
                put_string(out, path);
                put_u32(out, flags.0);
                attrs.encode(out);
            }
            Read {
                handle,
                offset,
                len,
            } => {
                put_string(out, handle);
                put_u64(out, offset);
                put_u32(out, len);
            }
            Write {
                handle,
                offset,
                data,
            } => {
                put_string(out, handle);
                put_u64(out, offset);
                put_string(out, data);
            }
            Close { handle } | Fstat { handle } | Readdir { handle } => put_string(out, handle),
            Lstat { path } | Opendir { path } | Remove { path } | Rmdir { path } => {
                put_string(out, path)
            }
            Realpath { path } | Stat { path } | Readlink { path } => put_string(out, path),
            Setstat { path, attrs } | Mkdir { path, attrs } => {
                put_string(out, path);
                attrs.encode(out);
            }
            Fsetstat { handle, attrs } => {
                put_string(out, handle);
                attrs.encode(out);
            }
            Rename { from, to } => {
                put_string(out, from);
                put_string(out, to);
            }
            // OpenSSH's server takes the target first, the reverse of the draft; every
            // deployed server follows OpenSSH (its PROTOCOL document, section 4.1).
            Symlink { link, target } => {
                put_string(out, target);
                put_string(out, link);
            }
            PosixRename { from, to } => extended(out, EXT_POSIX_RENAME, &[from, to]),
            Statvfs { path } => extended(out, EXT_STATVFS, &[path]),
            Fstatvfs { handle } => extended(out, EXT_FSTATVFS, &[handle]),
            Hardlink { existing, new } => extended(out, EXT_HARDLINK, &[existing, new]),
            Fsync { handle } => extended(out, EXT_FSYNC, &[handle]),
            Lsetstat { path, attrs } => {
                extended(out, EXT_LSETSTAT, &[path]);
                attrs.encode(out);
            }
            Limits => extended(out, EXT_LIMITS, &[]),
            ExpandPath { path } => extended(out, EXT_EXPAND_PATH, &[path]),
            CopyData {
                from,
                from_offset,
                len,
                to,
                to_offset,
            } => {
                extended(out, EXT_COPY_DATA, &[from]);
                put_u64(out, from_offset);
                put_u64(out, len);
                put_string(out, to);
                put_u64(out, to_offset);
            }
        }
    }
}

/// An SSH_FXP_EXTENDED payload: the extension's name, then its leading strings.
fn extended(out: &mut Vec<u8>, name: &[u8], strings: &[&[u8]]) {
    put_string(out, name);
    for s in strings {
        put_string(out, s);
    }
}
