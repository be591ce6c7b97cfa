//! `mount_puffs install-links DIR [TYPE...]`: the names mount(8) runs.
//!
//! For `mount -t puffs.memfs`, util-linux mount tries /sbin/mount.puffs.memfs
//! and then /sbin/mount.puffs (passing `-t puffs.memfs`); it looks only in
//! /sbin, /sbin/fs.d and /sbin/fs. So DIR is normally /sbin; a link for
//! each TYPE is optional. A TYPE must be a puffs type whose binary is found
//! (as for mounting), so no link is made that mount(8) could not use.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{HelperError, Result};
use crate::find::{is_valid_type_name, resolve, search_dirs};
use crate::say;

pub fn install_links(dir: &Path, types: &[String], verbose: bool) -> Result<()> {
    if let Some(bad) = types.iter().find(|t| !is_valid_type_name(t)) {
        return Err(HelperError::usage(format!(
            "'{bad}' is not a file system type name"
        )));
    }
    // A link for a type that cannot be mounted would only fail later, in mount(8).
    let dirs = search_dirs(None);
    for t in types {
        resolve(t, &dirs)?;
    }
    let target = own_path()?;
    let names = std::iter::once("mount.puffs".to_string())
        .chain(types.iter().map(|t| format!("mount.puffs.{t}")));
    for name in names {
        let link = dir.join(name);
        install_link(&link, &target)?;
        say(
            verbose,
            &format!("{} -> {}", link.display(), target.display()),
        );
    }
    Ok(())
}

fn own_path() -> Result<PathBuf> {
    std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| HelperError::failed(format!("cannot find mount_puffs itself: {e}")))
}

/// Creates `link` -> `target`; an existing link to us is fine, anything
/// else already there is left alone and reported.
fn install_link(link: &Path, target: &Path) -> Result<()> {
    match std::fs::read_link(link) {
        Ok(existing) if existing == target => return Ok(()),
        Ok(existing) => {
            return Err(HelperError::failed(format!(
                "{} already exists (a link to {}); remove it first",
                link.display(),
                existing.display()
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(_) => {
            return Err(HelperError::failed(format!(
                "{} already exists and is not a link; remove it first",
                link.display()
            )))
        }
    }
    std::os::unix::fs::symlink(target, link)
        .map_err(|e| HelperError::failed(format!("cannot create {}: {e}", link.display())))
}
