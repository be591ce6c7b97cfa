//! Replies: VERSION, STATUS, HANDLE, DATA, NAME, ATTRS and EXTENDED_REPLY, decoded from
//! a frame body ([`crate::split_frame`]) without copying strings or data out of it.
//!
//! Bounds: nothing is allocated from a count the peer claims. A NAME's entry count is
//! checked against what is left of the frame (each entry takes at least 12 bytes)
//! before its entries are collected, so a reply's allocation is at most a small
//! multiple of its frame, itself at most [`crate::MAX_FRAME`].

use puffs::Errno;

use crate::attrs::Attrs;
use crate::consts::*;
use crate::status::Status;
use crate::wire::{DecodeError, Reader};

/// A decoded reply to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// SSH_FXP_STATUS: success, EOF or an error.
    Status(Status<'a>),
    /// SSH_FXP_HANDLE: an open file or directory (at most 256 bytes).
    Handle(&'a [u8]),
    /// SSH_FXP_DATA: what a READ read.
    Data(&'a [u8]),
    /// SSH_FXP_NAME: directory entries, or the one name of REALPATH/READLINK.
    Name(Vec<NameEntry<'a>>),
    /// SSH_FXP_ATTRS: what a STAT/LSTAT/FSTAT found.
    Attrs(Attrs),
    /// SSH_FXP_EXTENDED_REPLY: an extension's answer, decoded by the caller, who knows
    /// what it asked ([`Statvfs::decode`], [`Limits::decode`]).
    Extended(&'a [u8]),
}

/// One entry of a NAME reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameEntry<'a> {
    /// The name (in READDIR: one component; in REALPATH/READLINK: a path).
    pub filename: &'a [u8],
    /// An `ls -l` line (unspecified format; sshfs ignores it, so do we).
    pub longname: &'a [u8],
    /// The entry's attributes (READDIR fills them; REALPATH often sends none).
    pub attrs: Attrs,
}

/// The smallest NAME entry: two empty strings and an empty flags word.
const MIN_NAME_ENTRY: usize = 4 + 4 + 4;

/// Decodes a reply body: the request id it answers and the reply. Bytes after the last
/// field are ignored (later protocol versions append fields).
pub fn decode_reply(body: &[u8]) -> Result<(u32, Reply<'_>), DecodeError> {
    let mut r = Reader::new(body);
    let kind = r.u8()?;
    if !matches!(
        kind,
        SSH_FXP_STATUS..=SSH_FXP_ATTRS | SSH_FXP_EXTENDED_REPLY
    ) {
        return Err(DecodeError::UnexpectedType(kind));
    }
    let id = r.u32()?;
    let reply = match kind {
        SSH_FXP_STATUS => Reply::Status(decode_status(&mut r)?),
        SSH_FXP_HANDLE => Reply::Handle(r.string_max(MAX_HANDLE)?),
        SSH_FXP_DATA => Reply::Data(r.string()?),
        SSH_FXP_NAME => Reply::Name(decode_names(&mut r)?),
        SSH_FXP_ATTRS => Reply::Attrs(Attrs::decode(&mut r)?),
        _ => Reply::Extended(r.rest()),
    };
    Ok((id, reply))
}

fn decode_status<'a>(r: &mut Reader<'a>) -> Result<Status<'a>, DecodeError> {
    let code = r.u32()?;
    // The message and language tag are optional in practice (old servers omit them).
    let message = if r.remaining() > 0 { r.string()? } else { b"" };
    Ok(Status { code, message })
}

fn decode_names<'a>(r: &mut Reader<'a>) -> Result<Vec<NameEntry<'a>>, DecodeError> {
    let count = r.u32()?;
    if count as usize > r.remaining() / MIN_NAME_ENTRY {
        return Err(DecodeError::TooMany { count });
    }
    let mut names = Vec::with_capacity(count as usize);
    for _ in 0..count {
        names.push(NameEntry {
            filename: r.string()?,
            longname: r.string()?,
            attrs: Attrs::decode(r)?,
        });
    }
    Ok(names)
}

impl<'a> Reply<'a> {
    /// The handle of an OPEN/OPENDIR reply; a STATUS gives its errno, anything else EIO.
    pub fn into_handle(self) -> Result<&'a [u8], Errno> {
        match self {
            Reply::Handle(h) => Ok(h),
            other => Err(other.unexpected()),
        }
    }

    /// The data of a READ reply, empty at end of file.
    pub fn into_data(self) -> Result<&'a [u8], Errno> {
        match self {
            Reply::Data(d) => Ok(d),
            Reply::Status(s) if s.is_eof() => Ok(b""),
            other => Err(other.unexpected()),
        }
    }

    /// The entries of a READDIR reply, `None` when the directory is done (EOF).
    pub fn into_names(self) -> Result<Option<Vec<NameEntry<'a>>>, Errno> {
        match self {
            Reply::Name(n) => Ok(Some(n)),
            Reply::Status(s) if s.is_eof() => Ok(None),
            other => Err(other.unexpected()),
        }
    }

    /// The single name of a REALPATH, READLINK or expand-path reply.
    pub fn into_one_name(self) -> Result<&'a [u8], Errno> {
        match self {
            Reply::Name(n) if n.len() == 1 => Ok(n[0].filename),
            other => Err(other.unexpected()),
        }
    }

    /// The attributes of a STAT/LSTAT/FSTAT reply.
    pub fn into_attrs(self) -> Result<Attrs, Errno> {
        match self {
            Reply::Attrs(a) => Ok(a),
            other => Err(other.unexpected()),
        }
    }

    /// The outcome of a request answered by STATUS alone (CLOSE, WRITE, SETSTAT...).
    pub fn into_status(self) -> Result<(), Errno> {
        match self {
            Reply::Status(s) => s.result(),
            other => Err(other.unexpected()),
        }
    }

    /// The payload of an EXTENDED_REPLY.
    pub fn into_extended(self) -> Result<&'a [u8], Errno> {
        match self {
            Reply::Extended(e) => Ok(e),
            other => Err(other.unexpected()),
        }
    }

    /// The errno for a reply that is not the kind asked for: a failed STATUS's own
    /// errno, EIO for a successful STATUS or a reply of the wrong type.
    fn unexpected(&self) -> Errno {
        match self {
            Reply::Status(s) if !s.is_ok() && !s.is_eof() => s.result().unwrap_err(),
            _ => Errno::EIO,
        }
    }
}

/// The OpenSSH extensions a server announced in its VERSION.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extensions {
    /// posix-rename@openssh.com 1.
    pub posix_rename: bool,
    /// statvfs@openssh.com 2.
    pub statvfs: bool,
    /// fstatvfs@openssh.com 2.
    pub fstatvfs: bool,
    /// hardlink@openssh.com 1.
    pub hardlink: bool,
    /// fsync@openssh.com 1.
    pub fsync: bool,
    /// lsetstat@openssh.com 1.
    pub lsetstat: bool,
    /// limits@openssh.com 1.
    pub limits: bool,
    /// expand-path@openssh.com 1.
    pub expand_path: bool,
    /// copy-data 1.
    pub copy_data: bool,
}

impl Extensions {
    /// Records `name` at `version` if it is one this client speaks at that version.
    fn note(&mut self, name: &[u8], version: &[u8]) {
        let slot = match (name, version) {
            (EXT_POSIX_RENAME, b"1") => &mut self.posix_rename,
            (EXT_STATVFS, b"2") => &mut self.statvfs,
            (EXT_FSTATVFS, b"2") => &mut self.fstatvfs,
            (EXT_HARDLINK, b"1") => &mut self.hardlink,
            (EXT_FSYNC, b"1") => &mut self.fsync,
            (EXT_LSETSTAT, b"1") => &mut self.lsetstat,
            (EXT_LIMITS, b"1") => &mut self.limits,
            (EXT_EXPAND_PATH, b"1") => &mut self.expand_path,
            (EXT_COPY_DATA, b"1") => &mut self.copy_data,
            _ => return,
        };
        *slot = true;
    }
}

/// The server's answer to INIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// The protocol version the server speaks (3 for OpenSSH).
    pub version: u32,
    /// The extensions it offers that this client knows.
    pub extensions: Extensions,
}

impl Version {
    /// Decodes a VERSION body; unknown extensions are skipped, a truncated pair is an
    /// error.
    pub fn decode(body: &[u8]) -> Result<Version, DecodeError> {
        let mut r = Reader::new(body);
        let kind = r.u8()?;
        if kind != SSH_FXP_VERSION {
            return Err(DecodeError::UnexpectedType(kind));
        }
        let version = r.u32()?;
        let mut extensions = Extensions::default();
        while r.remaining() > 0 {
            let (name, data) = (r.string()?, r.string()?);
            extensions.note(name, data);
        }
        Ok(Version {
            version,
            extensions,
        })
    }
}

/// The reply to limits@openssh.com (0 means no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest packet the server accepts.
    pub packet_len: u64,
    /// Largest READ it answers in full.
    pub read_len: u64,
    /// Largest WRITE it accepts.
    pub write_len: u64,
    /// How many handles it lets a session hold open.
    pub open_handles: u64,
}

impl Limits {
    /// Decodes the EXTENDED_REPLY payload of limits@openssh.com.
    pub fn decode(payload: &[u8]) -> Result<Limits, DecodeError> {
        let mut r = Reader::new(payload);
        Ok(Limits {
            packet_len: r.u64()?,
            read_len: r.u64()?,
            write_len: r.u64()?,
            open_handles: r.u64()?,
        })
    }
}

/// The reply to statvfs@openssh.com / fstatvfs@openssh.com: `struct statvfs`'s fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Statvfs {
    /// File system block size.
    pub bsize: u64,
    /// Fundamental block size (the unit of the block counts).
    pub frsize: u64,
    /// Blocks in all.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Free blocks for unprivileged users.
    pub bavail: u64,
    /// Inodes in all.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Free inodes for unprivileged users.
    pub favail: u64,
    /// File system id.
    pub fsid: u64,
    /// SSH_FXE_STATVFS_ST_RDONLY / _NOSUID bits.
    pub flag: u64,
    /// Longest file name.
    pub namemax: u64,
}

impl Statvfs {
    /// Decodes the EXTENDED_REPLY payload of statvfs@openssh.com.
    pub fn decode(payload: &[u8]) -> Result<Statvfs, DecodeError> {
        let mut r = Reader::new(payload);
        let mut f = [0u64; 11];
        for v in &mut f {
            *v = r.u64()?;
        }
        let [bsize, frsize, blocks, bfree, bavail, files, ffree, favail, fsid, flag, namemax] = f;
        Ok(Statvfs {
            bsize,
            frsize,
            blocks,
            bfree,
            bavail,
            files,
            ffree,
            favail,
            fsid,
            flag,
            namemax,
        })
    }
}
