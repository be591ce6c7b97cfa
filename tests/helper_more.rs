//! The mount helper and the file systems keep their word: one mount per mount point
//! (also when two mount_puffs race), stacking only when asked, the right pid in
//! `mount_puffs -l`, `nofail`, `install-links` refusing what it cannot find, a
//! daemon's log kept with `-o logfile=`, and a /dev/fuse the user cannot open named
//! as the reason.
//!
//! Needs root and /dev/fuse (skipped otherwise, failed under CI) and the workspace
//! binaries built (`cargo build --workspace --bins`).

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use puffs_tests::{bin, is_mounted, require_fuse, run_bounded, wait_until, MountPoint};

const LIMIT: Duration = Duration::from_secs(30);

fn run<S: AsRef<OsStr>>(program: impl AsRef<OsStr>, args: &[S]) -> Output {
    run_bounded(Command::new(program).args(args), LIMIT)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// How many mounts sit on `dir` (stacked mounts each count).
fn mounts_on(dir: &Path) -> usize {
    let table = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let dir = dir.to_str().expect("utf-8 path");
    table
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(dir))
        .count()
}

/// A file system run in the foreground (`-f`), so its pid is the child's; killed and
/// reaped on drop (its mount goes with the MountPoint).
struct Foreground(Child);

impl Foreground {
    fn start(fs: &str, args: &[&OsStr], cwd: &Path) -> Foreground {
        let child = Command::new(bin(fs))
            .arg("-f")
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn file system");
        Foreground(child)
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `(mountpoint, pid)` of each line of `mount_puffs -l` for `dir`, in order.
fn listed_pids(dir: &Path) -> Vec<String> {
    let out = run(bin("mount_puffs"), &["-l"]);
    assert!(out.status.success(), "mount_puffs -l: {}", stderr(&out));
    let dir = dir.to_str().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.get(2) == Some(&dir))
        .map(|cols| cols[3].to_string())
        .collect()
}

#[test]
fn racing_mount_puffs_on_one_mount_point_mount_once() {
    require_fuse!();
    let mnt = MountPoint::new();
    const RACERS: usize = 4;
    let children: Vec<Child> = (0..RACERS)
        .map(|i| {
            Command::new(bin("mount_puffs"))
                .args(["-t", "memfs", &format!("racer{i}")])
                .arg(mnt.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn mount_puffs")
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait mount_puffs"))
        .collect();
    let ok = outs.iter().filter(|o| o.status.success()).count();
    let mounts = mounts_on(mnt.path());
    assert_eq!(mounts, 1, "stacked mounts on one mount point");
    assert_eq!(ok, 1, "more than one mount_puffs reported success");
    for out in outs.iter().filter(|o| !o.status.success()) {
        assert_eq!(out.status.code(), Some(32), "{}", stderr(out));
        assert!(
            stderr(out).contains("already a mount point"),
            "{}",
            stderr(out)
        );
    }
}

#[test]
fn memfs_run_directly_refuses_a_mount_point_in_use_unless_overmount() {
    require_fuse!();
    let mnt = MountPoint::new();
    let memfs = |opts: &[&str]| {
        let mut args: Vec<&OsStr> = opts.iter().map(OsStr::new).collect();
        args.push(mnt.path().as_os_str());
        run(bin("memfs"), &args)
    };
    assert!(memfs(&[]).status.success());
    let out = memfs(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("something is mounted there already")
            && stderr(&out).contains("overmount"),
        "{}",
        stderr(&out)
    );
    assert_eq!(mounts_on(mnt.path()), 1);
    let out = memfs(&["-o", "overmount"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mounts_on(mnt.path()), 2);
}

#[test]
fn list_shows_the_pid_of_each_stacked_mount() {
    require_fuse!();
    let mnt = MountPoint::new();
    let dir = mnt.path().as_os_str();
    let lower = Foreground::start("memfs", &[OsStr::new("lower"), dir], Path::new("/"));
    assert!(wait_until(LIMIT, || mounts_on(mnt.path()) == 1));
    let upper = Foreground::start(
        "memfs",
        &[
            OsStr::new("-o"),
            OsStr::new("overmount"),
            OsStr::new("upper"),
            dir,
        ],
        Path::new("/"),
    );
    assert!(wait_until(LIMIT, || mounts_on(mnt.path()) == 2));
    assert_eq!(
        listed_pids(mnt.path()),
        [lower.pid().to_string(), upper.pid().to_string()]
    );
}

#[test]
fn list_finds_a_file_system_started_with_a_relative_path() {
    require_fuse!();
    let mnt = MountPoint::new();
    let parent = mnt.path().parent().unwrap();
    let name = mnt.path().file_name().unwrap();
    let fs = Foreground::start("memfs", &[OsStr::new("rel"), name], parent);
    assert!(wait_until(LIMIT, || is_mounted(mnt.path())));
    assert_eq!(listed_pids(mnt.path()), [fs.pid().to_string()]);
}

#[test]
fn nofail_makes_a_missing_mount_point_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let out = run(
        bin("mount_puffs"),
        &[
            OsStr::new("-t"),
            "memfs".as_ref(),
            "-o".as_ref(),
            "size=1M,nofail".as_ref(),
            "none".as_ref(),
            missing.as_os_str(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning") && stderr(&out).contains("does not exist"),
        "{}",
        stderr(&out)
    );
    // Without nofail it is the failure it always was.
    let out = run(
        bin("mount_puffs"),
        &[
            OsStr::new("-t"),
            "memfs".as_ref(),
            "none".as_ref(),
            missing.as_os_str(),
        ],
    );
    assert_eq!(out.status.code(), Some(32), "{}", stderr(&out));
}

#[test]
fn install_links_refuses_a_type_it_cannot_find() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        bin("mount_puffs"),
        &[
            OsStr::new("install-links"),
            dir.path().as_os_str(),
            "bogus".as_ref(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("'bogus'"), "{}", stderr(&out));
    // A puffs type (named in PUFFS_TYPES) whose binary is nowhere.
    let out = run_bounded(
        Command::new(bin("mount_puffs"))
            .env("PUFFS_TYPES", "ghostfs")
            .arg("install-links")
            .arg(dir.path())
            .arg("ghostfs"),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(32), "{}", stderr(&out));
    assert!(stderr(&out).contains("'ghostfs'"), "{}", stderr(&out));
    let made: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(made.is_empty(), "links made anyway: {made:?}");
    // A type that exists gets its link.
    let out = run(
        bin("mount_puffs"),
        &[
            OsStr::new("install-links"),
            dir.path().as_os_str(),
            "memfs".as_ref(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("mount.puffs.memfs").is_symlink());
}

#[test]
fn logfile_keeps_the_log_of_a_daemon() {
    require_fuse!();
    let mnt = MountPoint::new();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("memfs.log");
    let opts = format!("logfile={}", log.display());
    let out = run_bounded(
        Command::new(bin("memfs"))
            .env("RUST_LOG", "info")
            .args(["-o", &opts])
            .arg(mnt.path()),
        LIMIT,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(is_mounted(mnt.path()));
    mnt.unmount().expect("unmount");
    // "unmounted" is logged by the daemon after it detached from our stderr.
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(5), || logged().contains("unmounted")),
        "log file holds: {:?}",
        logged()
    );
    assert!(!stderr(&out).contains("unmounted"));
}

#[test]
fn a_bad_logfile_is_reported_and_nothing_mounts() {
    require_fuse!();
    let mnt = MountPoint::new();
    let out = run(
        bin("memfs"),
        &[
            OsStr::new("-o"),
            "logfile=/nonexistent-dir/x.log".as_ref(),
            mnt.path().as_os_str(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/nonexistent-dir/x.log"),
        "{}",
        stderr(&out)
    );
    assert!(!is_mounted(mnt.path()));
}

/// A user who cannot open /dev/fuse is told so, with its mode. The device's mode is
/// changed only inside a private mount namespace (a 0600 copy bound over it), so
/// nothing else on the machine notices.
#[test]
fn unopenable_dev_fuse_is_named_with_its_mode() {
    require_fuse!();
    for tool in ["unshare", "setpriv"] {
        if run_bounded(Command::new(tool).arg("--version"), LIMIT)
            .status
            .code()
            .is_none()
        {
            eprintln!("skipped: {tool} not available");
            return;
        }
    }
    let mnt = MountPoint::new();
    let dev = tempfile::tempdir().unwrap();
    let node = dev.path().join("fuse");
    let makedev = nix::sys::stat::makedev(10, 229);
    nix::sys::stat::mknod(
        &node,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        makedev,
    )
    .expect("mknod");
    nix::unistd::chown(mnt.path(), Some(65534.into()), Some(65534.into())).unwrap();
    let script = format!(
        "mount --bind '{}' /dev/fuse && exec setpriv --reuid=65534 --regid=65534 \
         --clear-groups '{}' '{}'",
        node.display(),
        bin("memfs").display(),
        mnt.path().display()
    );
    let out = run("unshare", &["-m", "sh", "-c", &script]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot open /dev/fuse (mode 0600"), "{err}");
    assert!(!err.contains("install fuse3"), "{err}");
    assert!(!is_mounted(mnt.path()));
}
