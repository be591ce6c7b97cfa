//! The file systems a semantic suite runs against: memfs, nullfs (with each aio backend)
//! and rot13fs. A case is written once as `fn case(t: &Target)`; [`suite!`] makes one
//! `#[test]` per (case, target), named `group::target::case`, so a failure names both
//! and `cargo test -- nullfs_posix::` runs one target.
//!
//! [`suite!`]: crate::suite

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::{Mounted, Tmpfs};

/// Which binary a target mounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fs {
    /// memfs, in memory (64 MiB).
    Memfs,
    /// nullfs over a directory on a 64 MiB tmpfs of its own.
    Nullfs,
    /// rot13fs over a directory on a 64 MiB tmpfs: names and data rot13'ed on the way.
    Rot13fs,
}

/// A file system to run a case against, and the `-o` options it is mounted with.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The name the tests know it by (the generated module's name).
    pub name: &'static str,
    pub fs: Fs,
    /// Its own mount options (a case may add more, such as allow_other).
    pub opts: &'static str,
}

/// The targets by the names [`suite!`](crate::suite) uses.
pub mod targets {
    use super::{Fs, Target};

    pub fn memfs() -> Target {
        Target::new("memfs", Fs::Memfs, "size=64M")
    }
    /// nullfs as mounted by default: kernel passthrough on (open files' data never
    /// reaches the fs), the default aio backend.
    pub fn nullfs() -> Target {
        Target::new("nullfs", Fs::Nullfs, "")
    }
    /// nullfs with passthrough off, so file data goes through the fs and this backend.
    pub fn nullfs_uring() -> Target {
        Target::new("nullfs_uring", Fs::Nullfs, "aio=uring,nopassthrough")
    }
    pub fn nullfs_posix() -> Target {
        Target::new("nullfs_posix", Fs::Nullfs, "aio=posix,nopassthrough")
    }
    pub fn nullfs_linux() -> Target {
        Target::new("nullfs_linux", Fs::Nullfs, "aio=linux,nopassthrough")
    }
    pub fn nullfs_threads() -> Target {
        Target::new("nullfs_threads", Fs::Nullfs, "aio=threads,nopassthrough")
    }
    /// rot13fs (which changes data, so the kernel never passes its files through).
    pub fn rot13fs() -> Target {
        Target::new("rot13fs", Fs::Rot13fs, "")
    }
}

impl Target {
    pub const fn new(name: &'static str, fs: Fs, opts: &'static str) -> Target {
        Target { name, fs, opts }
    }

    /// Mounts it with its own options.
    pub fn mount(&self) -> TargetMount {
        self.mount_with("")
    }

    /// Mounts it with its own options and `extra` (e.g. "allow_other").
    pub fn mount_with(&self, extra: &str) -> TargetMount {
        let opts = [self.opts, extra]
            .iter()
            .filter(|o| !o.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(",");
        match self.fs {
            Fs::Memfs => TargetMount {
                mounted: Mounted::new("memfs", &opts),
                backing: None,
            },
            Fs::Nullfs | Fs::Rot13fs => {
                let tmpfs = Tmpfs::new("size=64M");
                let dir = tmpfs.join("backing");
                fs::create_dir(&dir).expect("mkdir backing");
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
                let bin = if self.fs == Fs::Nullfs {
                    "nullfs"
                } else {
                    "rot13fs"
                };
                TargetMount {
                    mounted: Mounted::over(bin, &opts, &dir),
                    backing: Some(tmpfs),
                }
            }
        }
    }

    /// Whether it is a null layer (nullfs, rot13fs) over a backing directory.
    pub fn is_null_layer(&self) -> bool {
        self.fs != Fs::Memfs
    }
}

/// A mounted target; unmounted (then its backing tmpfs, if any) when dropped.
pub struct TargetMount {
    // Fields drop in order: the mount before the tmpfs it serves.
    mounted: Mounted,
    backing: Option<Tmpfs>,
}

impl TargetMount {
    pub fn path(&self) -> &Path {
        self.mounted.path()
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.mounted.join(name)
    }

    /// The backing directory of a null layer.
    pub fn backing(&self) -> Option<PathBuf> {
        self.backing.as_ref().map(|t| t.join("backing"))
    }
}

/// A target and a native tmpfs side by side: `check` runs a scenario on both and
/// insists they agree, returning tmpfs's (the reference) outcome.
pub struct Both {
    pub fs: TargetMount,
    pub tmpfs: Tmpfs,
    name: &'static str,
}

impl Both {
    /// `t` mounted with its options and `extra`, beside a tmpfs with `tmpfs_opts`.
    pub fn new(t: &Target, extra: &str, tmpfs_opts: &str) -> Self {
        Both {
            fs: t.mount_with(extra),
            tmpfs: Tmpfs::new(tmpfs_opts),
            name: t.name,
        }
    }

    pub fn check<T: PartialEq + std::fmt::Debug>(&self, what: &str, f: impl Fn(&Path) -> T) -> T {
        let want = f(self.tmpfs.path());
        let got = f(self.fs.path());
        let name = self.name;
        assert_eq!(
            got, want,
            "{what}: {name} (left) differs from tmpfs (right)"
        );
        want
    }
}

/// One `#[test]` per (case, target): groups of cases, each run on its list of targets
/// (functions of [`targets`]). A case is a function `fn(&Target)` in the module that
/// invokes the macro; the test is `group::target::case`, and skips (or fails under CI)
/// without FUSE.
/// ```ignore
/// puffs_tests::suite! {
///     data on [memfs, nullfs_posix] { create_write_read_seek, o_append_with_two_fds }
///     memfs_only on [memfs] { inode_limit }
/// }
/// ```
#[macro_export]
macro_rules! suite {
    ($($group:ident on [$($target:ident),* $(,)?] $cases:tt)*) => {
        $(
            mod $group {
                $( $crate::suite!(@target $target $cases); )*
            }
        )*
    };
    (@target $target:ident { $($case:ident),* $(,)? }) => {
        mod $target {
            $(
                #[test]
                fn $case() {
                    $crate::require_fuse!();
                    super::super::$case(&$crate::targets::$target());
                }
            )*
        }
    };
}
