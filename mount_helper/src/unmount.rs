//! Unmounting, including mounts whose file system process has died.
//!
//! A dead FUSE mount answers every access with ENOTCONN ("Transport
//! endpoint is not connected"), so the mount point is found in the mount
//! table without being stat'ed, and unmounted with umount2(2) directly.
//! Without the privilege for that, fusermount3 -u does it for the user who
//! mounted.

use std::io;
use std::path::Path;
use std::process::Command;

use nix::errno::Errno;

use crate::error::{HelperError, Result};
use crate::mountpoint::mounted_at;
use crate::say;

pub fn unmount(path: &Path, lazy: bool, verbose: bool) -> Result<()> {
    let (target, entry) = mounted_at(path)?;
    if !entry.is_fuse() {
        return Err(HelperError::failed(format!(
            "{} is not a FUSE mount (type {}); use umount(8)",
            target.display(),
            entry.fstype
        )));
    }
    say(
        verbose,
        &format!("unmounting {} ({})", target.display(), entry.fstype),
    );
    match system_unmount(&target, lazy) {
        Ok(()) => Ok(()),
        Err(Errno::EPERM) if !nix::unistd::geteuid().is_root() => fusermount_unmount(&target, lazy),
        Err(e) => Err(HelperError::failed(format!(
            "cannot unmount {}: {}",
            target.display(),
            io::Error::from(e)
        ))),
    }
}

#[cfg(target_os = "linux")]
fn system_unmount(target: &Path, lazy: bool) -> nix::Result<()> {
    use nix::mount::{umount2, MntFlags};
    let flags = if lazy {
        MntFlags::MNT_DETACH
    } else {
        MntFlags::empty()
    };
    umount2(target, flags)
}

/// BSD has no lazy unmount; forcing is the nearest thing.
#[cfg(not(target_os = "linux"))]
fn system_unmount(target: &Path, lazy: bool) -> nix::Result<()> {
    use nix::mount::{unmount, MntFlags};
    let flags = if lazy {
        MntFlags::MNT_FORCE
    } else {
        MntFlags::empty()
    };
    unmount(target, flags)
}

fn fusermount_unmount(target: &Path, lazy: bool) -> Result<()> {
    let mut cmd = Command::new("fusermount3");
    cmd.arg("-u");
    if lazy {
        cmd.arg("-z");
    }
    let status = cmd
        .arg(target)
        .status()
        .map_err(|e| HelperError::failed(format!("cannot run fusermount3: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(HelperError::failed(format!(
            "fusermount3 could not unmount {}",
            target.display()
        )))
    }
}
