//! mount_puffs and mount(8) driving the real file system binaries.
//!
//! Needs root and /dev/fuse (skipped otherwise, failed under CI) and the
//! workspace binaries built (`cargo build --workspace --bins`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use puffs_tests::{
    bin, is_mounted, mount_entry, pids_with_arg, require_fuse, run_bounded, wait_until, MountPoint,
};

const LIMIT: Duration = Duration::from_secs(30);

/// Runs `program` with `args`, bounded in time.
fn run<S: AsRef<OsStr>>(program: impl AsRef<OsStr>, args: &[S]) -> Output {
    run_bounded(Command::new(program).args(args), LIMIT)
}

fn mount_puffs<S: AsRef<OsStr>>(args: &[S]) -> Output {
    run(bin("mount_puffs"), args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        stderr(out)
    );
}

/// Asserts a failure with exit status `code` whose message contains `needle`.
fn assert_fails(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(
        err.contains(needle),
        "message should name {needle:?}: {err}"
    );
}

/// No process whose command line mentions `dir` is left (give exiting
/// ones a moment).
fn assert_no_process_for(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    assert!(
        wait_until(Duration::from_secs(3), || pids_with_arg(&needle).is_empty()),
        "processes left behind for {needle}: {:?}",
        pids_with_arg(&needle)
    );
}

/// Mounts `fstype` with mount_puffs on a fresh mount point.
fn mount_with_helper(fstype: &str, opts: &str, source: &str) -> MountPoint {
    let mnt = MountPoint::new();
    let mut args = vec!["-t", fstype];
    if !opts.is_empty() {
        args.extend(["-o", opts]);
    }
    let dir = mnt.path().to_str().expect("utf-8 temp dir");
    args.extend([source, dir]);
    assert_ok(&mount_puffs(&args), &format!("mount_puffs -t {fstype}"));
    mnt
}

fn unmount_with_helper(dir: &Path) {
    assert_ok(
        &mount_puffs(&[OsStr::new("-u"), dir.as_os_str()]),
        "mount_puffs -u",
    );
    assert!(!is_mounted(dir), "still mounted after mount_puffs -u");
}

#[test]
fn memfs_mounts_and_serves_files() {
    require_fuse!();
    let mnt = mount_with_helper("memfs", "size=64M", "none");
    assert_eq!(
        mount_entry(mnt.path()),
        Some(("fuse.memfs".to_string(), "none".to_string()))
    );
    let file = mnt.join("greeting");
    std::fs::write(&file, b"hello through memfs").unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"hello through memfs");
    unmount_with_helper(mnt.path());
    assert_no_process_for(mnt.path());
}

#[test]
fn hellofs_mounts() {
    require_fuse!();
    let mnt = mount_with_helper("hellofs", "", "none");
    assert_eq!(
        mount_entry(mnt.path()),
        Some(("fuse.hellofs".to_string(), "none".to_string()))
    );
    let names: Vec<_> = std::fs::read_dir(mnt.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(!names.is_empty(), "hellofs shows no files");
    unmount_with_helper(mnt.path());
    assert_no_process_for(mnt.path());
}

#[test]
fn missing_mount_point_is_named() {
    require_fuse!();
    let parent = MountPoint::new();
    let missing = parent.join("no-such-dir");
    let out = mount_puffs(&[
        OsStr::new("-t"),
        "hellofs".as_ref(),
        "none".as_ref(),
        missing.as_os_str(),
    ]);
    assert_fails(&out, 32, "does not exist");
    assert_no_process_for(parent.path());
}

#[test]
fn unknown_fs_option_is_named_and_leaves_nothing() {
    require_fuse!();
    let mnt = MountPoint::new();
    let out = mount_puffs(&[
        OsStr::new("-t"),
        "hellofs".as_ref(),
        "-o".as_ref(),
        "bogus_option_xyz".as_ref(),
        "none".as_ref(),
        mnt.path().as_os_str(),
    ]);
    assert_fails(&out, 32, "bogus_option_xyz");
    assert!(!is_mounted(mnt.path()));
    assert_no_process_for(mnt.path());
}

#[test]
fn bad_standard_option_is_a_usage_error() {
    require_fuse!();
    let mnt = MountPoint::new();
    let out = mount_puffs(&[
        OsStr::new("-t"),
        "hellofs".as_ref(),
        "-o".as_ref(),
        "attr_timeout=soon".as_ref(),
        "none".as_ref(),
        mnt.path().as_os_str(),
    ]);
    assert_fails(&out, 1, "attr_timeout");
    assert!(!is_mounted(mnt.path()));
    assert_no_process_for(mnt.path());
}

#[test]
fn unknown_type_lists_available_types() {
    require_fuse!();
    let mnt = MountPoint::new();
    let out = mount_puffs(&[
        OsStr::new("-t"),
        "nosuchfs".as_ref(),
        "none".as_ref(),
        mnt.path().as_os_str(),
    ]);
    assert_fails(&out, 1, "nosuchfs");
    assert!(
        stderr(&out).contains("hellofs"),
        "types not listed: {}",
        stderr(&out)
    );
    assert_no_process_for(mnt.path());
}

#[test]
fn mounted_mount_point_is_refused() {
    require_fuse!();
    let mnt = mount_with_helper("hellofs", "", "first");
    let needle = mnt.path().to_string_lossy().into_owned();
    let before = pids_with_arg(&needle);
    let out = mount_puffs(&[
        OsStr::new("-t"),
        "hellofs".as_ref(),
        "second".as_ref(),
        mnt.path().as_os_str(),
    ]);
    assert_fails(&out, 32, "already a mount point");
    assert_eq!(
        mount_entry(mnt.path()).map(|e| e.1).as_deref(),
        Some("first")
    );
    assert_eq!(
        pids_with_arg(&needle),
        before,
        "a second file system process appeared"
    );
}

#[test]
fn list_shows_type_source_mountpoint_and_pid() {
    require_fuse!();
    let mnt = mount_with_helper("hellofs", "", "listed-source");
    let dir = mnt.path().to_string_lossy().into_owned();
    let out = mount_puffs(&["-l"]);
    assert_ok(&out, "mount_puffs -l");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some(dir.as_str()))
        .unwrap_or_else(|| panic!("{dir} not listed:\n{text}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&cols[..2], ["hellofs", "listed-source"]);
    assert_eq!(
        cols[3].parse::<i32>().ok(),
        pids_with_arg(&dir).first().copied(),
        "{line}"
    );
}

#[test]
fn dead_mount_is_cleared_by_unmount() {
    require_fuse!();
    let mnt = mount_with_helper("hellofs", "", "none");
    let needle = mnt.path().to_string_lossy().into_owned();
    let pids = pids_with_arg(&needle);
    assert_eq!(pids.len(), 1, "expected one file system process: {pids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    let dead = || {
        std::fs::metadata(mnt.path())
            .err()
            .and_then(|e| e.raw_os_error())
            == Some(libc::ENOTCONN)
    };
    assert!(
        wait_until(Duration::from_secs(5), dead),
        "mount did not go dead"
    );
    // Mounting on it again is refused with advice.
    let out = mount_puffs(&[
        OsStr::new("-t"),
        "hellofs".as_ref(),
        "none".as_ref(),
        mnt.path().as_os_str(),
    ]);
    assert_fails(&out, 32, "mount_puffs -u");
    unmount_with_helper(mnt.path());
    assert!(std::fs::metadata(mnt.path()).unwrap().is_dir());
}

#[test]
fn lazy_unmount_detaches() {
    require_fuse!();
    let mnt = mount_with_helper("hellofs", "", "none");
    let out = mount_puffs(&[OsStr::new("-u"), "-l".as_ref(), mnt.path().as_os_str()]);
    assert_ok(&out, "mount_puffs -u -l");
    assert!(!is_mounted(mnt.path()));
    assert_no_process_for(mnt.path());
}

#[test]
fn unmount_refuses_what_is_not_a_puffs_mount() {
    require_fuse!();
    let mnt = MountPoint::new();
    assert_fails(
        &mount_puffs(&[OsStr::new("-u"), mnt.path().as_os_str()]),
        32,
        "not a mount point",
    );
    assert_fails(&mount_puffs(&["-u", "/"]), 32, "not a FUSE mount");
}

/// The helper names mount(8) uses, installed in a temp dir and run the
/// way mount(8) runs them.
#[test]
fn helper_names_follow_the_mount8_convention() {
    require_fuse!();
    let links = tempfile::tempdir().unwrap();
    let out = mount_puffs(&[
        OsStr::new("install-links"),
        links.path().as_os_str(),
        "memfs".as_ref(),
    ]);
    assert_ok(&out, "install-links");
    let by_type = links.path().join("mount.puffs.memfs");
    let generic = links.path().join("mount.puffs");

    let mnt = MountPoint::new();
    let dir = mnt.path().as_os_str();
    // mount(8)'s own options must not reach memfs, which would reject them.
    let opts = "rw,size=1M,noauto,nofail,_netdev,x-test.opt=1,comment=hi";
    let out = run(
        &by_type,
        &[OsStr::new("none"), dir, "-o".as_ref(), opts.as_ref()],
    );
    assert_ok(&out, "mount.puffs.memfs");
    assert_eq!(
        mount_entry(mnt.path()).map(|e| e.0).as_deref(),
        Some("fuse.memfs")
    );
    unmount_with_helper(mnt.path());

    let out = run(
        &generic,
        &[
            OsStr::new("none"),
            dir,
            "-o".as_ref(),
            "rw".as_ref(),
            "-t".as_ref(),
            "puffs.memfs".as_ref(),
        ],
    );
    assert_ok(&out, "mount.puffs -t puffs.memfs");
    assert!(is_mounted(mnt.path()));
    unmount_with_helper(mnt.path());

    // -f is mount(8)'s "fake": everything checked, nothing mounted.
    let out = run(&by_type, &[OsStr::new("none"), dir, "-f".as_ref()]);
    assert_ok(&out, "mount.puffs.memfs -f");
    assert!(!is_mounted(mnt.path()));
    assert_no_process_for(mnt.path());
}

/// A link in /sbin, where util-linux mount(8) looks for helpers; removed on
/// drop if this test created it.
struct SbinLink {
    path: PathBuf,
    created: bool,
}

impl SbinLink {
    /// None when something else already has the name (skip the test then).
    fn install(name: &str) -> Option<SbinLink> {
        let path = Path::new("/sbin").join(name);
        let ours = bin("mount_puffs").canonicalize().unwrap();
        match std::fs::read_link(&path) {
            Ok(target) if target == ours => Some(SbinLink {
                path,
                created: false,
            }),
            Ok(_) => None,
            Err(_) if path.exists() => None,
            Err(_) => {
                std::os::unix::fs::symlink(&ours, &path).unwrap();
                Some(SbinLink {
                    path,
                    created: true,
                })
            }
        }
    }
}

impl Drop for SbinLink {
    fn drop(&mut self) {
        if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `mount -t puffs.memfs`, an fstab line with `mount -T`, `mount -a` and
/// `umount`, all through util-linux.
#[test]
fn util_linux_mount_fstab_and_umount() {
    require_fuse!();
    let Some(_link) = SbinLink::install("mount.puffs.memfs") else {
        eprintln!("skipped: /sbin/mount.puffs.memfs exists and is not ours");
        return;
    };
    let mnt = MountPoint::new();
    let dir = mnt.path().as_os_str();
    let out = run(
        "mount",
        &[
            OsStr::new("-t"),
            "puffs.memfs".as_ref(),
            "none".as_ref(),
            dir,
            "-o".as_ref(),
            "size=64M".as_ref(),
        ],
    );
    assert_ok(&out, "mount -t puffs.memfs");
    assert_eq!(
        mount_entry(mnt.path()),
        Some(("fuse.memfs".to_string(), "none".to_string()))
    );
    assert_ok(&run("umount", &[dir]), "umount");
    assert!(!is_mounted(mnt.path()));

    let fstab_dir = tempfile::tempdir().unwrap();
    let fstab = fstab_dir.path().join("fstab");
    let line = format!(
        "fstab-src {} puffs.memfs size=64M,nofail,_netdev,x-puffs.test=1 0 0\n",
        mnt.path().display()
    );
    std::fs::write(&fstab, line).unwrap();
    let out = run("mount", &[OsStr::new("-T"), fstab.as_os_str(), dir]);
    assert_ok(&out, "mount -T fstab DIR");
    assert_eq!(
        mount_entry(mnt.path()).map(|e| e.1).as_deref(),
        Some("fstab-src")
    );
    // mount -a knows it is mounted already and leaves it alone.
    assert_ok(
        &run(
            "mount",
            &[OsStr::new("-a"), "-T".as_ref(), fstab.as_os_str()],
        ),
        "mount -a again",
    );
    assert_ok(&run("umount", &[dir]), "umount");
    assert!(!is_mounted(mnt.path()));
    assert_ok(
        &run(
            "mount",
            &[OsStr::new("-a"), "-T".as_ref(), fstab.as_os_str()],
        ),
        "mount -a",
    );
    assert!(is_mounted(mnt.path()), "mount -a did not mount");
    assert_ok(&run("umount", &[dir]), "umount");

    std::fs::write(
        &fstab,
        format!("none {} puffs.memfs noauto 0 0\n", mnt.path().display()),
    )
    .unwrap();
    assert_ok(
        &run(
            "mount",
            &[OsStr::new("-a"), "-T".as_ref(), fstab.as_os_str()],
        ),
        "mount -a noauto",
    );
    assert!(!is_mounted(mnt.path()), "mount -a mounted a noauto entry");
    assert_no_process_for(mnt.path());
}

/// `mount -a` with a `nofail` line whose mount point is missing: mount(8) runs the
/// helper, which warns and exits 0, so `mount -a` succeeds.
#[test]
fn util_linux_mount_a_honours_nofail() {
    require_fuse!();
    let Some(_link) = SbinLink::install("mount.puffs.hellofs") else {
        eprintln!("skipped: /sbin/mount.puffs.hellofs exists and is not ours");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let fstab = tmp.path().join("fstab");
    let line = format!("hello {} puffs.hellofs nofail 0 0\n", missing.display());
    std::fs::write(&fstab, line).unwrap();
    let out = run(
        "mount",
        &[OsStr::new("-a"), "-T".as_ref(), fstab.as_os_str()],
    );
    assert_ok(&out, "mount -a with a nofail line");
    assert!(
        stderr(&out).contains("does not exist"),
        "no warning: {}",
        stderr(&out)
    );
    std::fs::write(
        &fstab,
        format!("hello {} puffs.hellofs defaults 0 0\n", missing.display()),
    )
    .unwrap();
    let out = run(
        "mount",
        &[OsStr::new("-a"), "-T".as_ref(), fstab.as_os_str()],
    );
    assert!(!out.status.success(), "mount -a without nofail succeeded");
}
