//! The mount flags handed to the kernel (ro, nosuid, allow_other, ...): plain values,
//! set on the builder and read by `kernel/session.rs`.

/// Mount flags handed to the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountFlags {
    /// Read-only: the kernel refuses writes with EROFS before they reach the fs.
    pub ro: bool,
    /// Set-uid and set-gid bits are ignored on exec (puffs mounts are always nosuid).
    pub nosuid: bool,
    /// Device nodes cannot be opened (puffs mounts are always nodev).
    pub nodev: bool,
    /// Programs cannot be executed from the mount.
    pub noexec: bool,
    /// Access times are not updated.
    pub noatime: bool,
    /// Let users other than the mounter in.
    pub allow_other: bool,
    /// The kernel checks permissions from the mode bits (and supplementary groups).
    pub default_permissions: bool,
    /// Unmount when the process dies (through fusermount3).
    pub auto_unmount: bool,
    /// The source shown in /proc/mounts (default: the mount's source name).
    pub fsname: Option<String>,
    /// The type shown as fuse.SUBTYPE (default: the mount's type name).
    pub subtype: Option<String>,
    /// Mount even on a directory that is already a mount point (`-o overmount`).
    pub overmount: bool,
}
