//! mount(8)'s `-N NS`: mount inside another mount namespace.

use crate::error::{HelperError, Result};

/// Enters the mount namespace `ns`: a pid (whose namespace is used) or the
/// path of a namespace file such as /proc/PID/ns/mnt.
#[cfg(target_os = "linux")]
pub fn enter(ns: &str) -> Result<()> {
    use nix::sched::{setns, CloneFlags};

    let path = match ns.parse::<u32>() {
        Ok(pid) => format!("/proc/{pid}/ns/mnt"),
        Err(_) => ns.to_string(),
    };
    let file = std::fs::File::open(&path)
        .map_err(|e| HelperError::failed(format!("cannot open namespace {path}: {e}")))?;
    setns(file, CloneFlags::CLONE_NEWNS)
        .map_err(|e| HelperError::failed(format!("cannot enter namespace {path}: {e}")))
}

#[cfg(not(target_os = "linux"))]
pub fn enter(ns: &str) -> Result<()> {
    Err(HelperError::usage(format!(
        "cannot enter namespace {ns}: namespaces are Linux only"
    )))
}
