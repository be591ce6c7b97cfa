//! Typed arguments of ops: open flags, mode bits, the access mask, lseek's whence,
//! lock types, fallocate and setxattr flags, and the request structs of the ops with
//! long argument lists. Plain values with the host's constants behind them (FUSE's
//! own where the protocol fixes them), so the ops trait never sees the transport.

/// A set of flag bits: the small part of `bitflags` these types need.
macro_rules! flag_set {
    ($(#[$m:meta])* $name:ident { $($(#[$cm:meta])* $c:ident = $v:expr;)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(i32);

        #[allow(clippy::unnecessary_cast)] // the libc constants' types differ by OS
        impl $name {
            $($(#[$cm])* pub const $c: $name = $name($v as i32);)*

            /// The flags from their raw bits, as the kernel sends them (unknown bits are
            /// kept, so a file system can refuse what it does not know).
            pub const fn from_bits(bits: i32) -> Self {
                $name(bits)
            }
            /// The raw bits.
            pub const fn bits(self) -> i32 {
                self.0
            }
            /// Whether every flag of `other` is set.
            pub const fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }
            /// Whether any flag of `other` is set.
            pub const fn intersects(self, other: $name) -> bool {
                self.0 & other.0 != 0
            }
            /// No flag at all.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }
            /// The flags of `self` that `other` does not have.
            pub const fn difference(self, other: $name) -> $name {
                $name(self.0 & !other.0)
            }
        }

        impl std::ops::BitOr for $name {
            type Output = $name;
            fn bitor(self, o: $name) -> $name {
                $name(self.0 | o.0)
            }
        }

        #[allow(clippy::unnecessary_cast)]
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut set = f.debug_set();
                let mut rest = self.0;
                $(if $v as i32 != 0 && self.0 & ($v as i32) == $v as i32 {
                    set.entry(&format_args!(stringify!($c)));
                    rest &= !($v as i32);
                })*
                if rest != 0 {
                    set.entry(&format_args!("{rest:#x}"));
                }
                set.finish()
            }
        }
    };
}

flag_set! {
    /// open(2) flags as the kernel passes them to open, create, opendir and write: the
    /// access mode ([`OpenFlags::access`]) and the status flags.
    OpenFlags {
        /// O_WRONLY (an access mode: test it with [`OpenFlags::access`]).
        WRONLY = libc::O_WRONLY;
        /// O_RDWR (an access mode: test it with [`OpenFlags::access`]).
        RDWR = libc::O_RDWR;
        /// O_APPEND: writes go to the end of the file.
        APPEND = libc::O_APPEND;
        /// O_TRUNC: cut the file to 0 at open (see [`crate::Ops::open`]).
        TRUNC = libc::O_TRUNC;
        /// O_SYNC: each write is durable before it returns.
        SYNC = libc::O_SYNC;
        /// O_DSYNC: each write's data is durable before it returns.
        DSYNC = libc::O_DSYNC;
        /// O_NONBLOCK.
        NONBLOCK = libc::O_NONBLOCK;
        /// O_DIRECTORY.
        DIRECTORY = libc::O_DIRECTORY;
        /// O_NOFOLLOW.
        NOFOLLOW = libc::O_NOFOLLOW;
        /// O_CREAT (create sees it; open never does: the kernel has dealt with it).
        CREAT = libc::O_CREAT;
        /// O_EXCL (as O_CREAT).
        EXCL = libc::O_EXCL;
    }
}

/// The access mode of an open (`flags & O_ACCMODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessMode {
    /// O_RDONLY.
    Read,
    /// O_WRONLY.
    Write,
    /// O_RDWR.
    ReadWrite,
}

impl OpenFlags {
    /// The access mode; None for an invalid one (O_ACCMODE on Linux's O_PATH-less
    /// opens).
    pub fn access(self) -> Option<AccessMode> {
        match self.0 & libc::O_ACCMODE {
            libc::O_RDONLY => Some(AccessMode::Read),
            libc::O_WRONLY => Some(AccessMode::Write),
            libc::O_RDWR => Some(AccessMode::ReadWrite),
            _ => None,
        }
    }
    /// Whether the open allows reading.
    pub fn reads(self) -> bool {
        matches!(
            self.access(),
            Some(AccessMode::Read | AccessMode::ReadWrite)
        )
    }
    /// Whether the open allows writing.
    pub fn writes(self) -> bool {
        matches!(
            self.access(),
            Some(AccessMode::Write | AccessMode::ReadWrite)
        )
    }
}

flag_set! {
    /// What access(2) asks: read, write, execute, or (empty, F_OK) only whether the
    /// node exists.
    AccessMask {
        /// R_OK.
        READ = libc::R_OK;
        /// W_OK.
        WRITE = libc::W_OK;
        /// X_OK.
        EXEC = libc::X_OK;
    }
}

flag_set! {
    /// fallocate(2) modes; the empty set allocates and grows the file. Linux's
    /// values, which the FUSE protocol carries on every OS.
    FallocateFlags {
        /// FALLOC_FL_KEEP_SIZE: allocate without changing the size.
        KEEP_SIZE = 0x01;
        /// FALLOC_FL_PUNCH_HOLE: free the range (always with KEEP_SIZE).
        PUNCH_HOLE = 0x02;
        /// FALLOC_FL_COLLAPSE_RANGE: remove the range, shifting the rest down.
        COLLAPSE_RANGE = 0x08;
        /// FALLOC_FL_ZERO_RANGE: make the range read as zeros, allocated.
        ZERO_RANGE = 0x10;
        /// FALLOC_FL_INSERT_RANGE: insert a hole, shifting the rest up.
        INSERT_RANGE = 0x20;
        /// FALLOC_FL_UNSHARE_RANGE: unshare shared blocks.
        UNSHARE_RANGE = 0x40;
    }
}

flag_set! {
    /// setxattr(2) flags, Linux's values as the FUSE protocol carries them; empty:
    /// create or replace.
    XattrFlags {
        /// XATTR_CREATE: EEXIST when the attribute exists.
        CREATE = 1;
        /// XATTR_REPLACE: ENODATA (ENOATTR) when it does not.
        REPLACE = 2;
    }
}

/// A `mode_t`: type bits (`S_IFMT`, absent in mkdir's and create's) and permission
/// bits including set-uid, set-gid and sticky.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mode(u32);

impl Mode {
    /// The mode from its raw bits.
    pub const fn from_bits(bits: u32) -> Mode {
        Mode(bits)
    }
    /// A mode of `kind` with permission bits `perm`.
    pub fn new(kind: FileType, perm: u16) -> Mode {
        Mode(kind.mode_bits() | u32::from(perm & 0o7777))
    }
    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }
    /// The permission bits (`mode & 07777`), as [`crate::Attr::perm`] holds them.
    pub const fn perm(self) -> u16 {
        (self.0 & 0o7777) as u16
    }
    /// The node type its type bits name; None when there are none (mkdir, create) or
    /// they name no type.
    pub fn kind(self) -> Option<FileType> {
        FileType::from_mode(self.0)
    }
    /// Whether any type bits are set.
    #[allow(clippy::unnecessary_cast)] // mode_t is u16 on the BSDs
    pub fn has_kind(self) -> bool {
        self.0 & libc::S_IFMT as u32 != 0
    }
}

impl std::fmt::Debug for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mode({:#o})", self.0)
    }
}

/// What a new node is to be (mknod, mkdir, create): its mode and the caller's umask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewNode {
    /// Type and permission bits, already masked by `umask` when the kernel applies it
    /// (it does unless the fs asked otherwise). mknod's has type bits (none means a
    /// regular file); mkdir's and create's have none.
    pub mode: Mode,
    /// The caller's umask, for reference.
    pub umask: Mode,
    /// The device number of a device node (mknod); 0 otherwise.
    pub rdev: u32,
}

/// lseek(2)'s whence. The kernel handles SET, CUR and END itself and sends only DATA
/// and HOLE; the others are here for completeness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Whence {
    /// SEEK_SET.
    Set,
    /// SEEK_CUR.
    Cur,
    /// SEEK_END.
    End,
    /// SEEK_DATA: the next offset at or after `offset` that holds data.
    Data,
    /// SEEK_HOLE: the next hole at or after `offset` (end of file counts as one).
    Hole,
}

impl Whence {
    /// From lseek's raw whence; None for one the host does not know.
    pub fn from_raw(whence: i32) -> Option<Whence> {
        Some(match whence {
            libc::SEEK_SET => Whence::Set,
            libc::SEEK_CUR => Whence::Cur,
            libc::SEEK_END => Whence::End,
            libc::SEEK_DATA => Whence::Data,
            libc::SEEK_HOLE => Whence::Hole,
            _ => return None,
        })
    }
}

/// The type of a POSIX record lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockType {
    /// F_RDLCK: a shared lock.
    Read,
    /// F_WRLCK: an exclusive lock.
    Write,
    /// F_UNLCK: no lock (clear one; getlk's "nothing conflicts").
    Unlock,
}

impl LockType {
    /// From fcntl's raw type; None for an unknown one.
    #[allow(clippy::unnecessary_cast)] // c_short on Linux, c_int elsewhere
    pub fn from_raw(typ: i32) -> Option<LockType> {
        Some(match typ {
            t if t == libc::F_RDLCK as i32 => LockType::Read,
            t if t == libc::F_WRLCK as i32 => LockType::Write,
            t if t == libc::F_UNLCK as i32 => LockType::Unlock,
            _ => return None,
        })
    }
    /// fcntl's raw type.
    #[allow(clippy::unnecessary_cast)]
    pub fn raw(self) -> i32 {
        (match self {
            LockType::Read => libc::F_RDLCK,
            LockType::Write => libc::F_WRLCK,
            LockType::Unlock => libc::F_UNLCK,
        }) as i32
    }
}

/// The type of a node, as `st_mode & S_IFMT` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    /// A named pipe (S_IFIFO).
    Fifo,
    /// A character device (S_IFCHR).
    CharDevice,
    /// A directory (S_IFDIR).
    Directory,
    /// A block device (S_IFBLK).
    BlockDevice,
    /// A regular file (S_IFREG).
    RegularFile,
    /// A symbolic link (S_IFLNK).
    Symlink,
    /// A Unix domain socket (S_IFSOCK).
    Socket,
}

impl FileType {
    /// The type bits of a `mode_t` (`S_IFREG` and so on), or None for an invalid type.
    #[allow(clippy::unnecessary_cast)] // mode_t is u16 on the BSDs
    pub fn from_mode(mode: u32) -> Option<FileType> {
        Some(match mode & libc::S_IFMT as u32 {
            m if m == libc::S_IFIFO as u32 => FileType::Fifo,
            m if m == libc::S_IFCHR as u32 => FileType::CharDevice,
            m if m == libc::S_IFDIR as u32 => FileType::Directory,
            m if m == libc::S_IFBLK as u32 => FileType::BlockDevice,
            m if m == libc::S_IFREG as u32 => FileType::RegularFile,
            m if m == libc::S_IFLNK as u32 => FileType::Symlink,
            m if m == libc::S_IFSOCK as u32 => FileType::Socket,
            _ => return None,
        })
    }

    /// The `S_IF*` bits of this type.
    #[allow(clippy::unnecessary_cast)] // mode_t is u16 on the BSDs
    pub fn mode_bits(self) -> u32 {
        (match self {
            FileType::Fifo => libc::S_IFIFO,
            FileType::CharDevice => libc::S_IFCHR,
            FileType::Directory => libc::S_IFDIR,
            FileType::BlockDevice => libc::S_IFBLK,
            FileType::RegularFile => libc::S_IFREG,
            FileType::Symlink => libc::S_IFLNK,
            FileType::Socket => libc::S_IFSOCK,
        }) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_test_and_show_their_bits() {
        let f = OpenFlags::from_bits(libc::O_WRONLY | libc::O_APPEND);
        assert!(f.contains(OpenFlags::APPEND) && !f.contains(OpenFlags::TRUNC));
        assert!(f.writes() && !f.reads());
        assert_eq!(format!("{f:?}"), "{WRONLY, APPEND}");
        let m = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
        assert!(m
            .difference(FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE)
            .is_empty());
        assert_eq!(
            format!("{:?}", FallocateFlags::from_bits(0x102)),
            "{PUNCH_HOLE, 0x100}"
        );
    }

    #[test]
    fn modes_split_into_type_and_permissions() {
        let m = Mode::from_bits(FileType::CharDevice.mode_bits() | 0o4755);
        assert_eq!(m.kind(), Some(FileType::CharDevice));
        assert_eq!(m.perm(), 0o4755);
        assert!(!Mode::from_bits(0o644).has_kind());
        assert_eq!(Mode::new(FileType::Directory, 0o755).bits() & 0o7777, 0o755);
    }

    #[test]
    fn whence_and_lock_types_round_trip() {
        assert_eq!(Whence::from_raw(libc::SEEK_HOLE), Some(Whence::Hole));
        assert_eq!(Whence::from_raw(99), None);
        for t in [LockType::Read, LockType::Write, LockType::Unlock] {
            assert_eq!(LockType::from_raw(t.raw()), Some(t));
        }
    }
}
