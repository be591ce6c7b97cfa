//! Stopping a mount, in-process: from another thread through an `ExitHandle`, and by a
//! signal; signal handling exists only while the mainloop runs (a failed mount leaves
//! no thread and changes no signal state; a finished loop puts everything back).

use std::path::PathBuf;
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};
use puffs::{
    Attr, AttrReply, Cx, ExitHandle, FileType, MountFlags, Node, OpResult, Ops, PuffsUserMount,
};
use puffs_tests::*;

/// A file system with nothing but its root.
struct Bare;

#[puffs::ops]
impl Ops for Bare {
    type Node = ();
    type Key = ();

    fn root(&self) -> ((), ()) {
        ((), ())
    }

    async fn getattr(
        &self,
        _cx: &Cx<Self>,
        _n: &Node<Self>,
        _f: Option<&Self::File>,
    ) -> OpResult<AttrReply> {
        Ok(Attr::new(FileType::Directory, 0o755).into())
    }
}

/// These tests count the process's threads and look at its signal state: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Threads of this process that the framework started (named puffs-*).
fn puffs_threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|c| c.starts_with("puffs-"))
        .map(|c| c.trim().to_owned())
        .collect()
}

/// What a signal does in this process.
#[derive(Debug, PartialEq, Eq)]
enum Disposition {
    Default,
    Ignore,
    Handler,
}

/// What `sig` does now in this process (looked at without changing it).
fn disposition(sig: Signal) -> Disposition {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `old`.
    let rc = unsafe { libc::sigaction(sig as i32, std::ptr::null(), old.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: sigaction filled it in.
    let handler = unsafe { old.assume_init() }.sa_sigaction;
    match handler {
        libc::SIG_DFL => Disposition::Default,
        libc::SIG_IGN => Disposition::Ignore,
        _ => Disposition::Handler,
    }
}

/// This thread's blocked signals, among the termination signals.
fn blocked_here() -> Vec<Signal> {
    let mask = SigSet::thread_get_mask().unwrap();
    [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP]
        .into_iter()
        .filter(|s| mask.contains(*s))
        .collect()
}

/// Mounts `Bare` on a new thread that runs its mainloop; returns the exit handle and a
/// receiver of the mainloop's result.
fn mount_on_thread(
    dir: PathBuf,
    signals: bool,
) -> (ExitHandle, mpsc::Receiver<Result<(), String>>) {
    let (up_tx, up_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let pu = PuffsUserMount::new(Bare, "barefs", "bare").handle_signals(signals);
        let pu = match pu.mount(&dir) {
            Ok(pu) => pu,
            Err(e) => return up_tx.send(Err(e.to_string())).unwrap(),
        };
        up_tx.send(Ok(pu.exit_handle())).unwrap();
        let _ = done_tx.send(pu.mainloop().map_err(|e| e.to_string()));
    });
    let handle = up_rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap()
        .expect("mounts");
    (handle, done_rx)
}

#[test]
fn an_exit_handle_stops_a_mount_from_another_thread() {
    require_fuse!();
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mnt = MountPoint::new();
    let (handle, done) = mount_on_thread(mnt.path().to_path_buf(), false);
    assert!(std::fs::metadata(mnt.path()).unwrap().is_dir());
    // Let the loop go to sleep, so the exit must wake it.
    std::thread::sleep(Duration::from_millis(100));
    let other = handle.clone();
    let asked = Instant::now();
    std::thread::spawn(move || other.exit()).join().unwrap();
    let served = done
        .recv_timeout(Duration::from_secs(10))
        .expect("the mainloop returned after exit()");
    assert_eq!(served, Ok(()));
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "exit took {:?}",
        asked.elapsed()
    );
    assert!(!is_mounted(mnt.path()), "exit() unmounted");
    handle.exit(); // after the loop: harmless
}

#[test]
fn a_failed_mount_leaves_no_thread_and_no_signal_handling() {
    require_fuse!();
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mnt = MountPoint::new();
    let before = (disposition(Signal::SIGTERM), blocked_here());
    // An empty subtype makes mount(2) refuse the type "fuse." (EINVAL), late in mount().
    let pu = PuffsUserMount::new(Bare, "barefs", "bare").flags(MountFlags {
        subtype: Some(String::new()),
        ..MountFlags::default()
    });
    let err = pu
        .mount(mnt.path())
        .expect_err("the kernel refuses the mount");
    eprintln!("refused as expected: {err}");
    assert!(!is_mounted(mnt.path()));
    assert_eq!(puffs_threads(), Vec::<String>::new(), "threads left behind");
    assert_eq!(
        (disposition(Signal::SIGTERM), blocked_here()),
        before,
        "a failed mount changed the signal state"
    );
}

#[test]
fn sigterm_stops_the_loop_and_its_signal_handling_goes_with_it() {
    require_fuse!();
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mnt = MountPoint::new();
    let before = disposition(Signal::SIGTERM);
    assert_eq!(
        before,
        Disposition::Default,
        "the test harness leaves SIGTERM alone"
    );
    let (_handle, done) = mount_on_thread(mnt.path().to_path_buf(), true);
    // A successful mount has installed the handler by the time mount() returns.
    assert_eq!(
        disposition(Signal::SIGTERM),
        Disposition::Handler,
        "the mount handles SIGTERM"
    );
    nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGTERM).unwrap();
    let served = done
        .recv_timeout(Duration::from_secs(10))
        .expect("the mainloop returned after SIGTERM");
    assert_eq!(served, Ok(()));
    assert!(!is_mounted(mnt.path()), "SIGTERM unmounted");
    assert_eq!(
        disposition(Signal::SIGTERM),
        before,
        "SIGTERM's disposition is back"
    );
    assert_eq!(blocked_here(), Vec::<Signal>::new());
    assert!(
        wait_until(Duration::from_secs(5), || puffs_threads().is_empty()),
        "threads left after the loop: {:?}",
        puffs_threads()
    );
}

#[test]
fn a_mount_dropped_before_its_loop_ran_is_unmounted() {
    require_fuse!();
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mnt = MountPoint::new();
    let before = disposition(Signal::SIGTERM);
    let mounted = PuffsUserMount::new(Bare, "barefs", "bare")
        .mount(mnt.path())
        .expect("mounts");
    assert!(is_mounted(mnt.path()));
    assert_eq!(disposition(Signal::SIGTERM), Disposition::Handler);
    drop(mounted);
    assert!(!is_mounted(mnt.path()), "dropping a Mounted unmounts");
    assert_eq!(
        disposition(Signal::SIGTERM),
        before,
        "signal handling undone"
    );
    // The reader thread sees the connection end and goes; the notifier's goes at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !puffs_threads().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(puffs_threads(), Vec::<String>::new(), "threads left behind");
}
