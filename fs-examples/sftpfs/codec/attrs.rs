//! File attributes (the ATTRS structure of SFTP v3): each field present or not, as the
//! flags word says. Extended attribute pairs are read past and dropped.

use crate::consts::*;
use crate::wire::{put_u32, put_u64, DecodeError, Reader};

/// A file's attributes as SFTP carries them; `None` is a field the message left out
/// (in a SETSTAT: a field not to change).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attrs {
    /// Size in bytes.
    pub size: Option<u64>,
    /// Owner and group ids, always together.
    pub uid_gid: Option<(u32, u32)>,
    /// `st_mode`: permission bits and, in replies, the file type bits.
    pub permissions: Option<u32>,
    /// Access and modification times in seconds since the epoch, always together.
    pub atime_mtime: Option<(u32, u32)>,
}

impl Attrs {
    /// The file type bits ([`S_IFMT`]) of `permissions`, if the server sent them.
    pub fn file_type(&self) -> Option<u32> {
        self.permissions.map(|m| m & S_IFMT)
    }

    /// Reads an ATTRS structure; the extended pairs it may carry are skipped without
    /// being stored (each takes at least 8 bytes, so a huge count runs out of frame).
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Attrs, DecodeError> {
        let flags = r.u32()?;
        let mut a = Attrs::default();
        if flags & SSH_FILEXFER_ATTR_SIZE != 0 {
            a.size = Some(r.u64()?);
        }
        if flags & SSH_FILEXFER_ATTR_UIDGID != 0 {
            a.uid_gid = Some((r.u32()?, r.u32()?));
        }
        if flags & SSH_FILEXFER_ATTR_PERMISSIONS != 0 {
            a.permissions = Some(r.u32()?);
        }
        if flags & SSH_FILEXFER_ATTR_ACMODTIME != 0 {
            a.atime_mtime = Some((r.u32()?, r.u32()?));
        }
        if flags & SSH_FILEXFER_ATTR_EXTENDED != 0 {
            let count = r.u32()?;
            for _ in 0..count {
                r.string()?; // type
                r.string()?; // data
            }
        }
        Ok(a)
    }

    /// Writes the ATTRS structure: the flags word, then the fields that are present.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let mut flags = 0;
        flags |= self.size.map_or(0, |_| SSH_FILEXFER_ATTR_SIZE);
        flags |= self.uid_gid.map_or(0, |_| SSH_FILEXFER_ATTR_UIDGID);
        flags |= self
            .permissions
            .map_or(0, |_| SSH_FILEXFER_ATTR_PERMISSIONS);
        flags |= self.atime_mtime.map_or(0, |_| SSH_FILEXFER_ATTR_ACMODTIME);
        put_u32(out, flags);
        if let Some(size) = self.size {
            put_u64(out, size);
        }
        if let Some((uid, gid)) = self.uid_gid {
            put_u32(out, uid);
            put_u32(out, gid);
        }
        if let Some(mode) = self.permissions {
            put_u32(out, mode);
        }
        if let Some((atime, mtime)) = self.atime_mtime {
            put_u32(out, atime);
            put_u32(out, mtime);
        }
    }
}
