//! Refusing to stack a mount on a mount point that is in use already.
//!
//! mount(2) happily mounts on top of another mount, hiding it; two file systems started
//! on one directory would then both "succeed". A mount on a directory that is already
//! a mount point is refused unless the mount asks for it (`-o overmount`).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::Error;

/// Refuses `dir` when something is mounted on it. Errors looking at it are left for
/// the mount itself to report (it explains a missing or dead mount point).
pub(crate) fn refuse_stacked(dir: &Path) -> Result<(), Error> {
    if !is_mount_point(dir) {
        return Ok(());
    }
    Err(Error::Mount {
        path: dir.to_owned(),
        why: "something is mounted there already; unmount it first, or give -o overmount \
              to mount on top of it"
            .to_owned(),
        source: io::Error::from_raw_os_error(libc::EBUSY),
    })
}

/// Whether `dir` is the root of a mount: its device differs from its parent's, or it
/// is its own parent (`/`). A bind mount of a directory onto its own file system is
/// not seen this way; a FUSE mount, which always has a device of its own, is.
fn is_mount_point(dir: &Path) -> bool {
    let (Ok(here), Ok(parent)) = (dir.metadata(), dir.join("..").metadata()) else {
        return false;
    };
    here.dev() != parent.dev() || here.ino() == parent.ino()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_a_mount_point_and_a_fresh_directory_is_not() {
        assert!(is_mount_point(Path::new("/")));
        assert!(refuse_stacked(Path::new("/")).is_err());
        let dir = std::env::temp_dir().join(format!("puffs-stacking-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(!is_mount_point(&dir));
        assert!(refuse_stacked(&dir).is_ok());
        std::fs::remove_dir(&dir).unwrap();
    }
}
