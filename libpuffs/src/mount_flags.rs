//! The mount flags handed to the kernel (ro, nosuid, allow_other, ...): plain values,
//! set on the builder and read by `kernel/session.rs`.

/// Mount flags handed to the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountFlags {
    pub ro: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
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
