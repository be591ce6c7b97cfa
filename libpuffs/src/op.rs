//! The kernel's request kinds (`Op`), the opmask (which of them a file system
//! implements), the caller's credentials and rename flags: plain values that both the
//! ops trait and the kernel channel use, so kernel/ imports nothing above this leaf.

#[cfg(doc)]
use crate::Ops;

/// One kernel request kind. The names match the `Ops` methods (in CamelCase).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Op {
    /// [`Ops::statvfs`](crate::Ops::statvfs).
    Statvfs,
    /// [`Ops::sync`](crate::Ops::sync).
    Sync,
    /// [`Ops::unmount`](crate::Ops::unmount).
    Unmount,
    /// [`Ops::lookup`](crate::Ops::lookup).
    Lookup,
    /// [`Ops::getattr`](crate::Ops::getattr).
    Getattr,
    /// [`Ops::setattr`](crate::Ops::setattr).
    Setattr,
    /// [`Ops::access`](crate::Ops::access).
    Access,
    /// [`Ops::readlink`](crate::Ops::readlink).
    Readlink,
    /// [`Ops::mknod`](crate::Ops::mknod).
    Mknod,
    /// [`Ops::mkdir`](crate::Ops::mkdir).
    Mkdir,
    /// [`Ops::unlink`](crate::Ops::unlink).
    Unlink,
    /// [`Ops::rmdir`](crate::Ops::rmdir).
    Rmdir,
    /// [`Ops::symlink`](crate::Ops::symlink).
    Symlink,
    /// [`Ops::rename`](crate::Ops::rename).
    Rename,
    /// [`Ops::link`](crate::Ops::link).
    Link,
    /// [`Ops::open`](crate::Ops::open).
    Open,
    /// [`Ops::create`](crate::Ops::create).
    Create,
    /// [`Ops::read`](crate::Ops::read).
    Read,
    /// [`Ops::write`](crate::Ops::write).
    Write,
    /// [`Ops::flush`](crate::Ops::flush).
    Flush,
    /// [`Ops::release`](crate::Ops::release).
    Release,
    /// [`Ops::fsync`](crate::Ops::fsync).
    Fsync,
    /// [`Ops::opendir`](crate::Ops::opendir).
    Opendir,
    /// [`Ops::readdir`](crate::Ops::readdir).
    Readdir,
    /// [`Ops::readdirplus`](crate::Ops::readdirplus).
    Readdirplus,
    /// [`Ops::releasedir`](crate::Ops::releasedir).
    Releasedir,
    /// [`Ops::fsyncdir`](crate::Ops::fsyncdir).
    Fsyncdir,
    /// [`Ops::setxattr`](crate::Ops::setxattr).
    Setxattr,
    /// [`Ops::getxattr`](crate::Ops::getxattr).
    Getxattr,
    /// [`Ops::listxattr`](crate::Ops::listxattr).
    Listxattr,
    /// [`Ops::removexattr`](crate::Ops::removexattr).
    Removexattr,
    /// [`Ops::fallocate`](crate::Ops::fallocate).
    Fallocate,
    /// [`Ops::lseek`](crate::Ops::lseek).
    Lseek,
    /// [`Ops::copy_file_range`](crate::Ops::copy_file_range).
    CopyFileRange,
    /// [`Ops::getlk`](crate::Ops::getlk).
    Getlk,
    /// [`Ops::setlk`](crate::Ops::setlk).
    Setlk,
    /// [`Ops::lookup_ino`](crate::Ops::lookup_ino).
    LookupIno,
}

/// The set of ops a file system implements (puffs' opmask). Requests for other ops are
/// answered ENOSYS by the kernel reader thread, without entering the mainloop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OpMask(u64);

impl OpMask {
    /// No ops at all.
    pub const EMPTY: OpMask = OpMask(0);

    /// The mask holding exactly `ops` (usable in a const).
    pub const fn of(ops: &[Op]) -> OpMask {
        let mut bits = 0u64;
        let mut i = 0;
        while i < ops.len() {
            bits |= 1 << ops[i] as u8;
            i += 1;
        }
        OpMask(bits)
    }

    /// Whether `op` is in the set.
    pub const fn contains(self, op: Op) -> bool {
        self.0 & (1 << op as u8) != 0
    }

    /// The set with `op` added.
    pub const fn with(self, op: Op) -> OpMask {
        OpMask(self.0 | 1 << op as u8)
    }

    /// The set with `op` taken out.
    pub const fn without(self, op: Op) -> OpMask {
        OpMask(self.0 & !(1 << op as u8))
    }
}

/// Who made the request: the calling process's ids as the kernel gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cred {
    /// The caller's effective user id (its fsuid).
    pub uid: u32,
    /// The caller's effective group id (its fsgid).
    pub gid: u32,
    /// The calling process's id; 0 when the kernel sends the request on no
    /// process's behalf.
    pub pid: u32,
}

impl Cred {
    /// Whether the caller is root (uid 0), who passes permission checks.
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Whether the caller is in group `gid`, counting its supplementary groups (read
    /// from /proc/PID/status; a caller that has gone away counts only its own gid).
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups().contains(&gid)
    }

    /// The caller's supplementary groups, as the kernel lists them for its pid.
    pub fn groups(&self) -> Vec<u32> {
        supplementary_groups(self.pid).unwrap_or_default()
    }
}

#[cfg(target_os = "linux")]
fn supplementary_groups(pid: u32) -> Option<Vec<u32>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Groups:"))?;
    Some(
        line["Groups:".len()..]
            .split_whitespace()
            .filter_map(|g| g.parse().ok())
            .collect(),
    )
}

#[cfg(not(target_os = "linux"))]
fn supplementary_groups(_pid: u32) -> Option<Vec<u32>> {
    None
}

/// Flags of a rename request (renameat2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RenameFlags {
    /// RENAME_NOREPLACE: fail with EEXIST if the target exists.
    pub noreplace: bool,
    /// RENAME_EXCHANGE: swap source and target atomically; both must exist.
    pub exchange: bool,
    /// RENAME_WHITEOUT (overlayfs); file systems usually answer EINVAL.
    pub whiteout: bool,
}

/// The kernel's inode number of the root node.
pub const ROOT_INO: u64 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opmask_holds_exactly_its_ops() {
        const M: OpMask = OpMask::of(&[Op::Lookup, Op::CopyFileRange, Op::Statvfs]);
        assert!(M.contains(Op::Lookup));
        assert!(M.contains(Op::CopyFileRange));
        assert!(M.contains(Op::Statvfs));
        assert!(!M.contains(Op::Getattr));
        assert!(!M.contains(Op::Setlk));
        assert!(!M.without(Op::Lookup).contains(Op::Lookup));
        assert!(OpMask::EMPTY.with(Op::Setlk).contains(Op::Setlk));
    }
}
