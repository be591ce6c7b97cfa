//! Mounting: run the file system binary and wait until its mount is up.
//!
//! A puffs file system daemonizes by default: its first process exits 0
//! once the mount is up, or non-zero after printing why not. We wait for
//! that exit, then for the mount to show in the mount table, so that when
//! mount_puffs returns 0 the mount is usable. On failure no process of ours
//! is left behind.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::thread::sleep;
use std::time::{Duration, Instant};

use puffs_options::options::{drop_mount8_options, MountOptions};

use crate::args::MountRequest;
use crate::error::{HelperError, Result};
use crate::find;
use crate::lock::lock_mountpoint;
use crate::mountinfo::find_mount;
use crate::mountpoint::{check_free, check_unmounted, read_table, Unusable};
use crate::namespace;
use crate::say;

/// How long a mount may take to show in the table after the file system
/// reported it up. It is normally there at once; this bounds a bug.
const MOUNT_VISIBLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long leftover processes get to exit by themselves.
const LEFTOVER_GRACE: Duration = Duration::from_millis(500);

pub fn mount(req: &MountRequest, verbose: bool) -> Result<()> {
    if let Some(ns) = &req.namespace {
        namespace::enter(ns)?;
    }
    let dirs = find::search_dirs(req.fs_dir.as_deref());
    let binary = find::resolve(&req.fstype, &dirs)?;
    let (options, overmount) = fs_options(&req.options)?;
    let mountpoint = match check_free(&req.mountpoint, overmount) {
        Ok(canonical) => canonical,
        Err((Unusable::Missing, e)) if has_nofail(&req.options) => {
            eprintln!("mount_puffs: warning: {e}; not mounted (nofail)");
            return Ok(());
        }
        Err((_, e)) => return Err(e),
    };
    let argv = fs_argv(&binary, req, &options, &mountpoint);
    say(verbose, &format!("running {}", show_argv(&argv)));
    if req.fake {
        say(verbose, "fake mount (-f): not running it");
        return Ok(());
    }
    if req.foreground {
        return Err(exec(&argv));
    }
    // Check again under the lock: another mount_puffs may have mounted there
    // since the first check.
    let _lock = lock_mountpoint(&mountpoint)?;
    if !overmount {
        check_unmounted(&req.mountpoint, &mountpoint)?;
    }
    let status = spawn_and_wait(&argv)?;
    if !status.success() {
        end_leftovers(&argv, verbose);
        return Err(HelperError::failed(format!(
            "{} failed ({}); nothing mounted on {}",
            req.fstype,
            describe(status),
            mountpoint.display()
        )));
    }
    wait_until_visible(&mountpoint, &req.fstype, verbose)
        .inspect_err(|_| end_leftovers(&argv, verbose))
}

/// Drops mount(8)'s own options and checks the standard ones; options
/// specific to the file system are left for it to check. Also says whether
/// `overmount` was given.
fn fs_options(given: &str) -> Result<(String, bool)> {
    let options = drop_mount8_options(given);
    let parsed =
        MountOptions::parse_lenient(&options).map_err(|e| HelperError::usage(e.to_string()))?;
    Ok((options, parsed.overmount))
}

/// mount(8)'s `nofail`: a missing mount point is then a warning, not an
/// error, so that `mount -a` goes on.
fn has_nofail(given: &str) -> bool {
    given.split(',').any(|item| item == "nofail")
}

/// `BINARY [-f] [-o OPTS] [SOURCE] MOUNTPOINT`: the synopsis every puffs
/// file system shares (puffs_options::cli).
fn fs_argv(binary: &Path, req: &MountRequest, options: &str, mountpoint: &Path) -> Vec<OsString> {
    let mut argv = vec![binary.as_os_str().to_os_string()];
    if req.foreground {
        argv.push("-f".into());
    }
    if !options.is_empty() {
        argv.push("-o".into());
        argv.push(options.into());
    }
    argv.extend(req.source.iter().map(OsString::from));
    argv.push(mountpoint.as_os_str().to_os_string());
    argv
}

fn show_argv(argv: &[OsString]) -> String {
    let words: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    words.join(" ")
}

/// Replaces this process with the file system; returns only on failure.
fn exec(argv: &[OsString]) -> HelperError {
    let err = Command::new(&argv[0]).args(&argv[1..]).exec();
    HelperError::failed(format!("cannot run {}: {err}", argv[0].to_string_lossy()))
}

/// Runs the file system with our stdin, stdout and stderr, so its own
/// error message reaches the user, and waits for its first process.
fn spawn_and_wait(argv: &[OsString]) -> Result<ExitStatus> {
    let run_error =
        |e| HelperError::failed(format!("cannot run {}: {e}", argv[0].to_string_lossy()));
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .spawn()
        .map_err(run_error)?;
    child.wait().map_err(run_error)
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

fn wait_until_visible(mountpoint: &Path, fstype: &str, verbose: bool) -> Result<()> {
    let start = Instant::now();
    loop {
        if let Some(m) = find_mount(&read_table()?, mountpoint).filter(|m| m.is_fuse()) {
            if m.fuse_subtype() != Some(fstype) {
                say(
                    verbose,
                    &format!("note: mounted as type {}, not fuse.{fstype}", m.fstype),
                );
            }
            say(
                verbose,
                &format!("{} mounted on {}", m.fstype, mountpoint.display()),
            );
            return Ok(());
        }
        if start.elapsed() > MOUNT_VISIBLE_TIMEOUT {
            return Err(HelperError::failed(format!(
                "{fstype} reported success but nothing was mounted on {} within {} s",
                mountpoint.display(),
                MOUNT_VISIBLE_TIMEOUT.as_secs()
            )));
        }
        sleep(Duration::from_millis(10));
    }
}

fn end_leftovers(argv: &[OsString], verbose: bool) {
    for pid in crate::procs::end_leftovers(argv, LEFTOVER_GRACE) {
        say(
            verbose,
            &format!("ended leftover file system process {pid}"),
        );
    }
}
