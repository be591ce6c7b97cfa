//! The kernel's request kinds (`Op`), the opmask (which of them a file system
//! implements), the caller's credentials and rename flags: plain values that both the
//! ops trait and the kernel channel use, so kernel/ imports nothing above this leaf.

#[cfg(doc)]
use crate::Ops;

/// One kernel request kind. The names match the `Ops` methods (in CamelCase).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Op {
    /// [`Ops::statvfs`].
    Statvfs,
    /// [`Ops::sync`].
    Sync,
    /// [`Ops::unmount`].
    Unmount,
    /// [`Ops::lookup`].
    Lookup,
    /// [`Ops::getattr`].
    Getattr,
    /// [`Ops::setattr`].
    Setattr,
    /// [`Ops::access`].
    Access,
    /// [`Ops::readlink`].
    Readlink,
    /// [`Ops::mknod`].
    Mknod,
    /// [`Ops::mkdir`].
    Mkdir,
    /// [`Ops::unlink`].
    Unlink,
    /// [`Ops::rmdir`].
    Rmdir,
    /// [`Ops::symlink`].
    Symlink,
    /// [`Ops::rename`].
    Rename,
    /// [`Ops::link`].
    Link,
    /// [`Ops::open`].
    Open,
    /// [`Ops::create`].
    Create,
    /// [`Ops::read`].
    Read,
    /// [`Ops::write`].
    Write,
    /// [`Ops::flush`].
    Flush,
    /// [`Ops::release`].
    Release,
    /// [`Ops::fsync`].
    Fsync,
    /// [`Ops::opendir`].
    Opendir,
    /// [`Ops::readdir`].
    Readdir,
    /// [`Ops::readdirplus`].
    Readdirplus,
    /// [`Ops::releasedir`].
    Releasedir,
    /// [`Ops::fsyncdir`].
    Fsyncdir,
    /// [`Ops::setxattr`].
    Setxattr,
    /// [`Ops::getxattr`].
    Getxattr,
    /// [`Ops::listxattr`].
    Listxattr,
    /// [`Ops::removexattr`].
    Removexattr,
    /// [`Ops::fallocate`].
    Fallocate,
    /// [`Ops::lseek`].
    Lseek,
    /// [`Ops::copy_file_range`].
    CopyFileRange,
    /// [`Ops::getlk`].
    Getlk,
    /// [`Ops::setlk`].
    Setlk,
    /// [`Ops::lookup_ino`].
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
