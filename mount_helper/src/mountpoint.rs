//! Checks on a mount point, before mounting and before unmounting.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{HelperError, Result};
use crate::mountinfo::{find_mount, mount_table, MountEntry};

/// Why a mount point cannot be used.
#[derive(Debug, PartialEq)]
pub enum Unusable {
    /// It does not exist (mount(8)'s `nofail` forgives this).
    Missing,
    /// Anything else; the error says what.
    Other,
}

/// Checks that `path` can be mounted on: it exists, is a directory and
/// (unless `overmount`) is not already a mount point. Returns its canonical
/// path, which is how it will show in the mount table.
pub fn check_free(
    path: &Path,
    overmount: bool,
) -> std::result::Result<PathBuf, (Unusable, HelperError)> {
    let canonical = check_usable(path).map_err(|e| {
        let missing = matches!(path.metadata(), Err(e) if e.kind() == io::ErrorKind::NotFound);
        let kind = if missing {
            Unusable::Missing
        } else {
            Unusable::Other
        };
        (kind, e)
    })?;
    if !overmount {
        check_unmounted(path, &canonical).map_err(|e| (Unusable::Other, e))?;
    }
    Ok(canonical)
}

/// Refuses a mount point that something is mounted on already.
pub fn check_unmounted(path: &Path, canonical: &Path) -> Result<()> {
    if let Some(m) = find_mount(&read_table()?, canonical) {
        return Err(HelperError::failed(format!(
            "{} is already a mount point (type {}, source {}); \
             unmount it first, or give -o overmount to mount on top of it",
            path.display(),
            m.fstype,
            m.source
        )));
    }
    Ok(())
}

fn check_usable(path: &Path) -> Result<PathBuf> {
    let shown = path.display();
    match path.metadata() {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(HelperError::failed(format!(
                "mount point {shown} is not a directory"
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(HelperError::failed(format!(
                "mount point {shown} does not exist"
            )))
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            return Err(HelperError::failed(format!(
                "{shown} is still mounted but its file system process is gone; \
                 clear it with mount_puffs -u {shown}"
            )))
        }
        Err(e) => {
            return Err(HelperError::failed(format!(
                "cannot use mount point {shown}: {e}"
            )))
        }
    }
    path.canonicalize()
        .map_err(|e| HelperError::failed(format!("cannot resolve mount point {shown}: {e}")))
}

/// The mount on `path`, found without touching the mount point itself
/// (stat on a mount whose process died fails with ENOTCONN).
pub fn mounted_at(path: &Path) -> Result<(PathBuf, MountEntry)> {
    let table = read_table()?;
    let candidates = [absolute_unresolved(path), path.canonicalize().ok()];
    candidates
        .into_iter()
        .flatten()
        .find_map(|p| find_mount(&table, &p).map(|m| (p, m.clone())))
        .ok_or_else(|| HelperError::failed(format!("{} is not a mount point", path.display())))
}

/// `path` made absolute by resolving its parent only, so that the last
/// component (a possibly dead mount) is never looked at.
fn absolute_unresolved(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.canonicalize().ok()?,
        _ => std::env::current_dir().ok()?.canonicalize().ok()?,
    };
    Some(parent.join(name))
}

pub fn read_table() -> Result<Vec<MountEntry>> {
    mount_table().map_err(|e| HelperError::failed(format!("cannot read the mount table: {e}")))
}
