//! One mount at a time per mount point: the check that nothing is mounted and
//! the mount itself must not interleave with another mount_puffs doing the
//! same, or both would find the directory free and stack two mounts.
//!
//! The lock is flock(2) on the mount point directory itself, so it needs no
//! lock file and no writable directory. Whoever mounts holds it from the
//! check until the mount shows in the table; a second mount_puffs opened the
//! same directory, waits, then finds the mount in its own re-check. One that
//! opens the directory after the mount is up locks the new root instead, and
//! its re-check finds the mount as well.

use std::fs::File;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{HelperError, Result};

/// How long to wait for another mount_puffs mounting on the same directory:
/// its file system's start plus the wait for the mount to show.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Held while mounting; dropping it unlocks.
pub struct MountLock {
    _lock: Flock<File>,
}

/// Locks the mount point `dir` against other mount_puffs, waiting at most
/// [`LOCK_TIMEOUT`] for one that is mounting there.
pub fn lock_mountpoint(dir: &Path) -> Result<MountLock> {
    let start = Instant::now();
    let mut file = open_dir(dir)?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(MountLock { _lock: lock }),
            Err((back, nix::errno::Errno::EWOULDBLOCK)) if start.elapsed() < LOCK_TIMEOUT => {
                file = back;
                sleep(Duration::from_millis(20));
            }
            Err((_, e)) => {
                return Err(HelperError::failed(format!(
                    "cannot lock mount point {} against other mounts: {}",
                    dir.display(),
                    lock_failure(e)
                )))
            }
        }
    }
}

fn open_dir(dir: &Path) -> Result<File> {
    File::open(dir).map_err(|e| {
        HelperError::failed(format!(
            "cannot open mount point {} to lock it: {e}",
            dir.display()
        ))
    })
}

fn lock_failure(e: nix::errno::Errno) -> String {
    if e == nix::errno::Errno::EWOULDBLOCK {
        format!(
            "another mount_puffs has been mounting there for more than {} s",
            LOCK_TIMEOUT.as_secs()
        )
    } else {
        e.desc().to_string()
    }
}
