//! SFTP attributes to and from the kernel's: SFTP v3 carries size, owner, mode and
//! whole-second atime/mtime; the rest is made up the way sshfs does it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use puffs::{Attr, FileType, SetTime};
use sftp_codec::consts::*;
use sftp_codec::Attrs;

/// The file type of an SFTP mode (a server that sends none gets a regular file).
pub fn file_type(mode: u32) -> FileType {
    match mode & S_IFMT {
        S_IFDIR => FileType::Directory,
        S_IFLNK => FileType::Symlink,
        S_IFCHR => FileType::CharDevice,
        S_IFBLK => FileType::BlockDevice,
        S_IFIFO => FileType::Fifo,
        S_IFSOCK => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

fn time(secs: u32) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs.into())
}

/// The kernel's attributes for what the server sent.
pub fn to_attr(a: &Attrs) -> Attr {
    let mode = a.permissions.unwrap_or(S_IFREG | 0o644);
    let mut attr = Attr::new(file_type(mode), (mode & 0o7777) as u16);
    attr.size = a.size.unwrap_or(0);
    attr.blocks = attr.size.div_ceil(512);
    if let Some((uid, gid)) = a.uid_gid {
        (attr.uid, attr.gid) = (uid, gid);
    }
    if let Some((atime, mtime)) = a.atime_mtime {
        // SFTP v3 has no ctime: the last modification is the best there is.
        (attr.atime, attr.mtime, attr.ctime) = (time(atime), time(mtime), time(mtime));
    }
    attr.nlink = 1;
    attr.blksize = 4096;
    attr
}

/// Seconds since the epoch as SFTP v3 carries them (u32, whole seconds).
pub fn secs(t: SystemTime) -> u32 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().min(u32::MAX as u64) as u32)
}

/// A `SetTime` resolved against the current value and now.
pub fn set_time(t: Option<SetTime>, current: SystemTime) -> u32 {
    match t {
        Some(t) => secs(t.resolve(SystemTime::now())),
        None => secs(current),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_keep_type_and_permission_bits() {
        let a = to_attr(&Attrs {
            size: Some(1000),
            uid_gid: Some((5, 6)),
            permissions: Some(S_IFLNK | 0o777),
            atime_mtime: Some((10, 20)),
        });
        assert_eq!(a.kind, FileType::Symlink);
        assert_eq!(a.perm, 0o777);
        assert_eq!((a.size, a.blocks, a.uid, a.gid), (1000, 2, 5, 6));
        assert_eq!(secs(a.mtime), 20);
        assert_eq!(secs(a.atime), 10);
        assert_eq!(to_attr(&Attrs::default()).kind, FileType::RegularFile);
    }
}
