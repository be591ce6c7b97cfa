//! The mainloop's liveness, mounted for real in this process: control is heard while
//! the in-flight cap is taken, one busy continuation cannot starve the others, a
//! panicking child or hook never hangs or kills the mount, and a request arriving as
//! the loop goes to sleep is answered at once. Each test bounds every wait, so code
//! that hangs fails instead of blocking the run.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use puffs::{
    Attr, AttrReply, Cx, EntryOf, Errno, FileType, Node, Op, OpResult, Ops, PuffsUserMount,
};
use puffs_tests::*;

/// What the probe saw, shared with the test thread.
#[derive(Default)]
struct Stats {
    /// Reads parked right now (in "park").
    parked: AtomicUsize,
    reclaimed: AtomicUsize,
    /// Set when the yielding read starts.
    yielding: AtomicBool,
}

/// The probe's files; what reading each does is in `Probe::read`.
const FILES: &[&str] = &[
    "fast",
    "park0",
    "park1",
    "yield",
    "child-ok",
    "child-panic",
    "nodes",
    "liar",
    "aio",
];

/// How long "yield" keeps yielding.
const YIELD_FOR: Duration = Duration::from_secs(2);

struct Probe {
    stats: Arc<Stats>,
    /// 4 KiB of backing data that "aio" reads through `Cx::aio`.
    backing: Arc<std::os::fd::OwnedFd>,
    /// Reclaim panics (a bug in the fs that must not end the mount).
    reclaim_panics: bool,
}

fn file_attr() -> Attr {
    let mut a = Attr::new(FileType::RegularFile, 0o644);
    a.size = 4;
    a
}

/// "aio" holds a page; the others four bytes.
fn attr_of(ino: u64) -> Attr {
    let mut a = file_attr();
    if FILES.get(ino as usize - 1) == Some(&"aio") {
        a.size = 4096;
    }
    a
}

#[puffs::ops]
impl Ops for Probe {
    type Node = u64;
    type Key = u64;

    fn root(&self) -> (u64, u64) {
        (0, 0)
    }

    fn reclaim(&self, _node: &Node<Self>) {
        self.stats.reclaimed.fetch_add(1, Ordering::SeqCst);
        if self.reclaim_panics {
            panic!("reclaim panics on purpose");
        }
    }

    async fn lookup(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        name: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        let i = FILES
            .iter()
            .position(|f| OsStr::new(f) == name)
            .ok_or(Errno::ENOENT)?;
        Ok(puffs::Entry::new(
            i as u64 + 1,
            i as u64 + 1,
            attr_of(i as u64 + 1),
        ))
    }

    async fn getattr(
        &self,
        _cx: &Cx<Self>,
        node: &Node<Self>,
        _f: Option<&Self::File>,
    ) -> OpResult<AttrReply> {
        Ok(AttrReply::from(if **node == 0 {
            Attr::new(FileType::Directory, 0o755)
        } else {
            attr_of(**node)
        }))
    }

    async fn read(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        _file: &Self::File,
        offset: u64,
        size: u32,
    ) -> OpResult<puffs::Data> {
        if FILES[(**node - 1) as usize] == "aio" {
            let r = cx.aio().read_at(&self.backing, offset, size as usize).await;
            return r.map(Into::into).map_err(puffs::errno);
        }
        if offset > 0 {
            return Ok(puffs::Data::empty());
        }
        match FILES[(**node - 1) as usize] {
            // Two files: readers of one file would queue on its page lock in the
            // kernel, and only one READ would reach the fs.
            "park0" | "park1" => {
                self.stats.parked.fetch_add(1, Ordering::SeqCst);
                cx.sleep(Duration::from_secs(3600)).await;
            }
            "yield" => {
                self.stats.yielding.store(true, Ordering::SeqCst);
                let start = Instant::now();
                while start.elapsed() < YIELD_FOR {
                    cx.yield_now().await;
                }
            }
            "child-ok" => return Ok(cx.spawn(async { b"kid!".to_vec() }).await?.into()),
            "child-panic" => {
                let child = cx.spawn(async {
                    panic!("the child panics on purpose");
                });
                child.await?;
            }
            // More than the kernel asked for: the framework rejects it (errnotify).
            "liar" => return Ok(vec![b'x'; 1 << 20].into()),
            "nodes" => {
                let n = cx.with_nodes(|t| t.len());
                // Holding no borrow of the table here, a FORGET may change it.
                cx.sleep(Duration::from_millis(1)).await;
                return Ok(format!("{n:04}").into_bytes().into());
            }
            _ => {}
        }
        Ok(b"data".to_vec().into())
    }
}

type Configure = Box<dyn FnOnce(PuffsUserMount<Probe>) -> PuffsUserMount<Probe> + Send>;

/// A probe mounted on a temp dir, its mainloop on a thread. Dropping it detaches the
/// mount, aborts the FUSE connection (so nothing parked in it blocks) and waits a
/// bounded time for the loop.
struct ProbeMount {
    mnt: MountPoint,
    /// The FUSE connection, to abort at the end (found while the mount answers).
    conn: Option<u64>,
    stats: Arc<Stats>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl ProbeMount {
    fn new(reclaim_panics: bool, configure: Configure) -> Self {
        let mnt = MountPoint::new();
        let stats = Arc::new(Stats::default());
        let (tx, rx) = mpsc::channel();
        let (dir, st) = (mnt.path().to_path_buf(), Arc::clone(&stats));
        let thread = std::thread::spawn(move || serve(dir, st, reclaim_panics, configure, tx));
        rx.recv_timeout(Duration::from_secs(20))
            .expect("mount thread answers")
            .expect("probe mounts");
        let conn = connection_of(mnt.path());
        ProbeMount {
            mnt,
            conn,
            stats,
            thread: Some(thread),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.mnt.join(name)
    }

    /// Waits up to `limit` for the mainloop to return: its result, or None.
    fn join_within(&mut self, limit: Duration) -> Option<Result<(), String>> {
        let done = wait_until(limit, || {
            self.thread.as_ref().is_none_or(|t| t.is_finished())
        });
        if !done {
            return None;
        }
        let t = self.thread.take()?;
        Some(
            t.join()
                .unwrap_or_else(|_| Err("mainloop thread panicked".into())),
        )
    }
}

impl Drop for ProbeMount {
    fn drop(&mut self) {
        // No stat of the mount here: a loop that does not serve would block it.
        let _ = nix::mount::umount2(self.mnt.path(), nix::mount::MntFlags::MNT_DETACH);
        if let Some(c) = self.conn {
            abort_connection(c);
        }
        let _ = self.join_within(Duration::from_secs(10));
    }
}

/// Aborts FUSE connection `c` (through fusectl, mounted if it is not), failing every
/// request in it: a test that fails with ops parked must not leave threads stuck.
fn abort_connection(c: u64) {
    let dir = Path::new("/sys/fs/fuse/connections");
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none()) {
        let _ = nix::mount::mount(
            Some("fusectl"),
            dir,
            Some("fusectl"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        );
    }
    let _ = std::fs::write(dir.join(format!("{c}/abort")), "1");
}

/// The FUSE connection number of the mount on `dir` (the minor of its device), from
/// /proc/self/mountinfo: no stat, which a loop that does not serve would block.
fn connection_of(dir: &Path) -> Option<u64> {
    let dir = dir.canonicalize().ok()?;
    let want = dir.to_string_lossy().replace(' ', "\\040");
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        (fields.get(4) == Some(&want.as_str()))
            .then(|| fields.get(2)?.split_once(':')?.1.parse().ok())
            .flatten()
    })
}

fn serve(
    dir: PathBuf,
    stats: Arc<Stats>,
    reclaim_panics: bool,
    configure: Configure,
    mounted: mpsc::Sender<Result<(), String>>,
) -> Result<(), String> {
    let backing = tempfile::tempfile().map_err(|e| e.to_string())?;
    std::os::unix::fs::FileExt::write_all_at(&backing, &[7u8; 4096], 0)
        .map_err(|e| e.to_string())?;
    let fs = Probe {
        stats,
        backing: Arc::new(backing.into()),
        reclaim_panics,
    };
    let pu = PuffsUserMount::new(fs, "probefs", "probe")
        .handle_signals(false)
        .attr_timeout(Duration::ZERO)
        .entry_timeout(Duration::ZERO);
    let pu = match configure(pu).mount(&dir) {
        Ok(pu) => pu,
        Err(e) => {
            let _ = mounted.send(Err(e.to_string()));
            return Err(e.to_string());
        }
    };
    let _ = mounted.send(Ok(()));
    pu.mainloop().map_err(|e| e.to_string())
}

fn read_all(p: &Path) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    std::fs::File::open(p)?.read_to_end(&mut v)?;
    Ok(v)
}

/// Reads `p` on a thread of its own; the result arrives on the channel before the file
/// is closed (a close after the loop has ended waits for the connection to go).
fn read_in_background(p: PathBuf) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    read_with_flags(p, 0)
}

/// `read_in_background` with extra open flags: O_DIRECT skips the page cache, whose
/// read path retries a failed READ (so an answered EIO would not reach the caller).
fn read_with_flags(p: PathBuf, flags: i32) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    use std::os::unix::fs::OpenOptionsExt;
    let (tx, rx) = mpsc::channel();
    let open = move || {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(&p)
    };
    std::thread::spawn(move || match open() {
        Ok(mut f) => {
            let mut v = Vec::new();
            let _ = tx.send(f.read_to_end(&mut v).map(|_| v));
        }
        Err(e) => {
            let _ = tx.send(Err(e));
        }
    });
    rx
}

/// These tests time the loop (and one keeps a CPU busy yielding for 2 s): on 2 vCPUs,
/// running them side by side measures the machine, not the loop. One at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes the one-at-a-time lock (a test that failed while holding it poisons nothing).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn sigterm_unmounts_while_parked_ops_fill_the_cap() {
    require_fuse!();
    let _serial = serial();
    let mut p = ProbeMount::new(
        false,
        Box::new(|pu| pu.max_inflight(2).handle_signals(true)),
    );
    let parked: Vec<_> = (0..2)
        .map(|i| read_with_flags(p.path(&format!("park{i}")), libc::O_DIRECT))
        .collect();
    assert!(
        wait_until(Duration::from_secs(5), || p
            .stats
            .parked
            .load(Ordering::SeqCst)
            == 2),
        "two reads should park"
    );
    // The mount's handler catches SIGTERM in whichever thread gets it (here, this
    // one) and hands it to the loop through its pipe.
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM).expect("raise SIGTERM");
    let t = Instant::now();
    assert!(
        wait_until(Duration::from_secs(3), || !is_mounted(p.mnt.path())),
        "SIGTERM did not unmount while two parked ops filled the cap of 2"
    );
    // The loop returns after the unmount grace (5 s) at the latest, answering the
    // parked ops instead of leaving them to wait an hour.
    let result = p.join_within(Duration::from_secs(9));
    assert_eq!(result, Some(Ok(())), "the mainloop did not return");
    assert!(t.elapsed() < Duration::from_secs(9));
    for rx in parked {
        let r = rx
            .recv_timeout(Duration::from_secs(3))
            .expect("a parked read is answered once the loop ends");
        assert!(r.is_err(), "a parked read cannot have finished its hour");
    }
}

#[test]
fn a_yielding_op_does_not_delay_a_stat() {
    require_fuse!();
    let _serial = serial();
    let p = ProbeMount::new(false, Box::new(|pu| pu));
    let yielder = read_in_background(p.path("yield"));
    assert!(wait_until(Duration::from_secs(5), || p
        .stats
        .yielding
        .load(Ordering::SeqCst)));
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        // Uncached (attr_timeout 0): each stat is a GETATTR in the loop.
        std::fs::metadata(p.path("fast")).expect("stat while an op yields");
        worst = worst.max(t.elapsed());
    }
    let r = yielder
        .recv_timeout(YIELD_FOR + Duration::from_secs(5))
        .expect("the yielding read ends");
    assert_eq!(r.unwrap(), b"data");
    // The stats ran while it yielded (it yields for 2 s); a starved stat waits that long.
    assert!(
        worst < Duration::from_millis(100),
        "a stat waited {worst:?} behind a continuation that yields"
    );
}

#[test]
fn a_panicking_child_fails_its_parent_with_eio() {
    require_fuse!();
    let _serial = serial();
    let p = ProbeMount::new(false, Box::new(|pu| pu));
    let ok = read_in_background(p.path("child-ok"));
    let r = ok.recv_timeout(Duration::from_secs(5)).expect("answered");
    assert_eq!(r.unwrap(), b"kid!");
    let failed = read_in_background(p.path("child-panic"));
    let r = failed
        .recv_timeout(Duration::from_secs(5))
        .expect("a request whose child panicked must be answered");
    assert_eq!(errno_or_zero(&r), libc::EIO);
    assert_eq!(read_all(&p.path("fast")).unwrap(), b"data");
}

#[test]
fn panics_in_hooks_and_reclaim_do_not_end_the_mount() {
    require_fuse!();
    let _serial = serial();
    let hooks_ran = Arc::new(AtomicUsize::new(0));
    let (pre, post, notified) = (
        Arc::clone(&hooks_ran),
        Arc::clone(&hooks_ran),
        Arc::clone(&hooks_ran),
    );
    let p = ProbeMount::new(
        true,
        Box::new(move |pu| {
            pu.entry_timeout(Duration::from_secs(60))
                .pre_op(move |op, _| {
                    if op == Op::Getattr {
                        pre.fetch_add(1, Ordering::SeqCst);
                        panic!("the pre-op hook panics on purpose");
                    }
                })
                .post_op(move |op, _, _| {
                    if op == Op::Read {
                        post.fetch_add(1, Ordering::SeqCst);
                        panic!("the post-op hook panics on purpose");
                    }
                })
                .errnotify(move |_, _, _| {
                    notified.fetch_add(1, Ordering::SeqCst);
                    panic!("the errnotify hook panics on purpose");
                })
        }),
    );
    // Each stat's GETATTR panics in the pre hook; each read's post hook panics. A loop
    // killed by a panic answers nothing more, so every call here is bounded.
    let paths: Vec<PathBuf> = FILES.iter().map(|f| p.path(f)).collect();
    let stats = bounded(move || paths.iter().all(|p| std::fs::metadata(p).is_ok()));
    assert_eq!(stats, Some(true), "stat despite the pre hook's panic");
    let nodes = p.path("nodes");
    let read = bounded(move || read_all(&nodes).map(|v| v.len()).ok());
    assert_eq!(read, Some(Some(4)), "read despite the post hook's panic");
    let liar = p.path("liar");
    let lied = bounded(move || errno_or_zero(&read_all(&liar)));
    assert_eq!(
        lied,
        Some(libc::EIO),
        "a rejected reply despite errnotify's panic"
    );
    assert!(hooks_ran.load(Ordering::SeqCst) >= 3, "every hook ran");
    drop_dentries_and_inodes();
    assert!(
        wait_until(Duration::from_secs(5), || p
            .stats
            .reclaimed
            .load(Ordering::SeqCst)
            >= 1),
        "no node was reclaimed after the kernel dropped its caches"
    );
    // The loop survived reclaim's panic and still serves.
    let r = read_in_background(p.path("fast"));
    let data = r
        .recv_timeout(Duration::from_secs(5))
        .expect("the mount still answers after reclaim panicked");
    assert_eq!(data.unwrap(), b"data");
}

/// Runs `f` on a thread of its own and waits up to 5 s for its result (None: it hung).
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    bounded_for(Duration::from_secs(5), f)
}

/// [`bounded`] with its own limit.
fn bounded_for<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

#[test]
fn a_request_arriving_as_the_loop_goes_to_sleep_is_answered_at_once() {
    require_fuse!();
    let _serial = serial();
    // No spin: every gap sends the loop to sleep, so requests keep arriving just as it
    // decides to. Gaps of a few to a few hundred microseconds sweep that window.
    let p = ProbeMount::new(false, Box::new(|pu| pu.spin(Duration::ZERO)));
    let path = p.path("fast");
    // A lost wake leaves a request until some unrelated event, and this mount has none
    // (no loop timeout, one client waiting for each answer): the stat hangs. So the
    // check is that every stat is answered, each well within a second; how many are
    // slow is only reported: scheduling on a busy machine (a CI box building in
    // parallel) makes some take milliseconds, which says nothing about wakes.
    let lat = bounded_for(Duration::from_secs(60), move || {
        let mut lat = Vec::new();
        for i in 0..3000u64 {
            let t = Instant::now();
            std::fs::metadata(&path).expect("stat");
            lat.push(t.elapsed());
            let gap = Instant::now() + Duration::from_micros((i * 37) % 300);
            while Instant::now() < gap {
                std::hint::spin_loop();
            }
        }
        lat
    });
    // (A hung stat is freed when `p` drops: it aborts the connection.)
    let Some(mut lat) = lat else {
        panic!("a stat was not answered within 60 s: a wake was lost");
    };
    lat.sort();
    let median = lat[lat.len() / 2];
    let max = lat[lat.len() - 1];
    let slow = lat
        .iter()
        .filter(|d| **d > Duration::from_millis(2))
        .count();
    eprintln!(
        "stat latency: median {median:?}, p99 {:?}, max {max:?}, over 2 ms: {slow}",
        lat[lat.len() * 99 / 100],
    );
    assert!(median < Duration::from_millis(1), "median {median:?}");
    assert!(max < Duration::from_millis(500), "a stat took {max:?}");
}

/// Not a check: measures a 4 KiB O_DIRECT read served through `Cx::aio` (io_uring),
/// mean and p99, with the default spin and with none. Run it in release:
/// `cargo test --release -p puffs-tests --test liveness -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_aio_read_latency() {
    require_fuse!();
    let _serial = serial();
    for (what, spin) in [("default spin", None), ("no spin", Some(Duration::ZERO))] {
        let p = ProbeMount::new(
            false,
            Box::new(move |pu| match spin {
                Some(d) => pu.spin(d),
                None => pu,
            }),
        );
        let f = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECT)
                .open(p.path("aio"))
                .expect("open aio")
        };
        let mut buf = vec![0u8; 4096];
        let mut lat = Vec::new();
        for i in 0..6000 {
            let t = Instant::now();
            let n = std::os::unix::fs::FileExt::read_at(&f, &mut buf, 0).expect("aio read");
            if i >= 1000 {
                lat.push(t.elapsed());
            }
            assert_eq!(n, 4096);
        }
        drop(f);
        lat.sort();
        let mean = lat.iter().sum::<Duration>() / lat.len() as u32;
        eprintln!(
            "aio 4 KiB read, {what}: mean {:.1} us, p99 {:.1} us",
            mean.as_secs_f64() * 1e6,
            lat[lat.len() * 99 / 100].as_secs_f64() * 1e6
        );
    }
}
