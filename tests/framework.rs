//! The framework itself, mounted for real in this process: a small probe file system
//! runs its mainloop on a thread of the test, and the test talks to it through the
//! kernel with ordinary file calls.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use puffs::{
    Attr, AttrReply, Cx, DirBuf, EntryOf, Errno, FileType, Node, Op, OpResult, Ops, PuffsUserMount,
};
use puffs_tests::*;

/// What the probe saw, shared with the test thread.
#[derive(Default)]
struct Stats {
    /// Every op the mainloop ran (from the pre-op hook).
    ops: Mutex<Vec<Op>>,
    reads_now: AtomicUsize,
    reads_max: AtomicUsize,
    reclaimed: AtomicUsize,
    errnotified: AtomicUsize,
}

/// Files of the probe and what reading them does.
const FILES: &[&str] = &[
    "fast", "slow", "exit", "panic", "liar", "w0", "w1", "w2", "w3", "w4", "w5",
];

struct Probe {
    stats: Arc<Stats>,
    /// How long reading "slow" (and "w*") takes.
    slow: Duration,
}

fn file_attr(size: u64) -> Attr {
    let mut a = Attr::new(FileType::RegularFile, 0o644);
    a.size = size;
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
        Ok(puffs::Entry::new(i as u64 + 1, i as u64 + 1, file_attr(4)))
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
            file_attr(4)
        }))
    }

    async fn readdir(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        _file: &Self::File,
        offset: u64,
        out: &mut DirBuf,
    ) -> OpResult<()> {
        for (i, name) in FILES.iter().enumerate().skip(offset as usize) {
            if !out.add(
                i as u64 + 2,
                i as u64 + 1,
                FileType::RegularFile,
                OsStr::new(name),
            ) {
                break;
            }
        }
        Ok(())
    }

    async fn read(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        _file: &Self::File,
        offset: u64,
        _size: u32,
    ) -> OpResult<puffs::Data> {
        if offset > 0 {
            return Ok(puffs::Data::empty());
        }
        let name = FILES[(**node - 1) as usize];
        match name {
            "panic" => panic!("the probe panics on purpose"),
            "liar" => return Ok(vec![b'x'; 1 << 20].into()),
            "exit" => cx.exit(),
            "slow" => cx.sleep(self.slow).await,
            w if w.starts_with('w') => {
                let now = self.stats.reads_now.fetch_add(1, Ordering::SeqCst) + 1;
                self.stats.reads_max.fetch_max(now, Ordering::SeqCst);
                cx.sleep(self.slow).await;
                self.stats.reads_now.fetch_sub(1, Ordering::SeqCst);
            }
            _ => {}
        }
        Ok(name.as_bytes()[..4.min(name.len())].to_vec().into())
    }
}

/// A probe mounted in this process, and what it counted.
struct ProbeMount {
    m: InProcessMount,
    stats: Arc<Stats>,
}

type Configure = Box<dyn FnOnce(PuffsUserMount<Probe>) -> PuffsUserMount<Probe> + Send>;

impl ProbeMount {
    fn new(slow: Duration, configure: Configure) -> Self {
        let stats = Arc::new(Stats::default());
        let st = Arc::clone(&stats);
        let m = InProcessMount::start(move |dir| configure(probe(st, slow)).mount(dir));
        ProbeMount { m, stats }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.m.join(name)
    }

    /// Waits for the mainloop to return; its result.
    fn join(&mut self) -> Result<(), String> {
        self.m.wait()
    }

    fn ops_seen(&self) -> Vec<Op> {
        self.stats.ops.lock().unwrap().clone()
    }
}

/// The probe's mount, before `configure`: names and attributes uncached, every op
/// and error notification counted in `stats`.
fn probe(stats: Arc<Stats>, slow: Duration) -> PuffsUserMount<Probe> {
    let fs = Probe {
        stats: Arc::clone(&stats),
        slow,
    };
    let (log, notified) = (Arc::clone(&stats), stats);
    PuffsUserMount::new(fs, "probefs", "probe")
        .handle_signals(false)
        .attr_timeout(Duration::ZERO)
        .entry_timeout(Duration::ZERO)
        .pre_op(move |op, _| log.ops.lock().unwrap().push(op))
        .errnotify(move |_, _, _| {
            notified.errnotified.fetch_add(1, Ordering::SeqCst);
        })
}

fn plain() -> Configure {
    Box::new(|pu| pu)
}

fn read_all(p: &Path) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    std::fs::File::open(p)?.read_to_end(&mut v)?;
    Ok(v)
}

#[test]
fn opmask_lists_exactly_the_implemented_ops() {
    let m = Probe::OPMASK;
    for op in [Op::Lookup, Op::Getattr, Op::Readdir, Op::Read] {
        assert!(m.contains(op), "{op:?} is implemented");
    }
    for op in [
        Op::Mkdir,
        Op::Write,
        Op::Unlink,
        Op::Setxattr,
        Op::Open,
        Op::Readdirplus,
    ] {
        assert!(!m.contains(op), "{op:?} is not implemented");
    }
}

#[test]
fn ops_outside_the_opmask_are_refused_without_entering_the_loop() {
    require_fuse!();
    let p = ProbeMount::new(Duration::ZERO, plain());
    assert_eq!(read_all(&p.path("fast")).unwrap(), b"fast");
    assert_eq!(
        errno_or_zero(&std::fs::create_dir(p.path("newdir"))),
        libc::ENOSYS
    );
    assert_eq!(
        errno_or_zero(&std::fs::remove_file(p.path("fast"))),
        libc::ENOSYS
    );
    let seen = p.ops_seen();
    assert!(
        seen.contains(&Op::Lookup) && seen.contains(&Op::Read),
        "the loop ran {seen:?}"
    );
    for op in [Op::Mkdir, Op::Unlink, Op::Open] {
        assert!(!seen.contains(&op), "{op:?} reached the mainloop: {seen:?}");
    }
}

#[test]
fn a_parked_op_does_not_delay_other_requests() {
    require_fuse!();
    let p = ProbeMount::new(Duration::from_secs(2), plain());
    let slow_path = p.path("slow");
    let started = Instant::now();
    let slow = std::thread::spawn(move || read_all(&slow_path));
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    std::fs::metadata(p.path("fast")).expect("getattr while slow is parked");
    assert_eq!(read_all(&p.path("fast")).unwrap(), b"fast");
    let quick = t.elapsed();
    assert!(!slow.is_finished(), "the slow read should still be parked");
    assert!(
        quick < Duration::from_millis(500),
        "getattr + read took {quick:?} behind a parked op"
    );
    assert_eq!(slow.join().unwrap().unwrap(), b"slow");
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[test]
fn in_flight_cap_queues_requests_and_drops_none() {
    require_fuse!();
    let p = ProbeMount::new(
        Duration::from_millis(300),
        Box::new(|pu| pu.max_inflight(2)),
    );
    let readers: Vec<_> = (0..6)
        .map(|i| {
            let path = p.path(&format!("w{i}"));
            std::thread::spawn(move || read_all(&path))
        })
        .collect();
    for (i, r) in readers.into_iter().enumerate() {
        let data = r
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("reader {i}: {e}"));
        assert_eq!(data, format!("w{i}").as_bytes());
    }
    let max = p.stats.reads_max.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&max),
        "{max} reads ran at once under a cap of 2"
    );
}

#[test]
fn exit_from_an_op_unmounts_and_returns() {
    require_fuse!();
    let mut p = ProbeMount::new(Duration::ZERO, plain());
    // The read that asks for exit still gets its answer.
    let _ = read_all(&p.path("exit"));
    assert_eq!(p.join(), Ok(()));
    assert!(wait_until(Duration::from_secs(5), || !is_mounted(
        p.m.mnt.path()
    )));
}

#[test]
fn umount_from_outside_ends_the_mainloop() {
    require_fuse!();
    let mut p = ProbeMount::new(Duration::ZERO, plain());
    assert!(is_mounted(p.m.mnt.path()));
    p.m.mnt.unmount().expect("umount");
    assert_eq!(p.join(), Ok(()));
}

#[test]
fn forgotten_nodes_are_reclaimed() {
    require_fuse!();
    let p = ProbeMount::new(
        Duration::ZERO,
        Box::new(|pu| pu.entry_timeout(Duration::from_secs(60))),
    );
    for name in FILES {
        std::fs::metadata(p.path(name)).unwrap();
    }
    // Ask the kernel to drop its dentries and inodes: it sends FORGET for each.
    std::fs::write("/proc/sys/vm/drop_caches", "2").expect("drop caches (needs root)");
    let reclaimed = || p.stats.reclaimed.load(Ordering::SeqCst);
    assert!(
        wait_until(Duration::from_secs(5), || reclaimed() >= 1),
        "no node was reclaimed after the kernel dropped its caches"
    );
    // A reclaimed node comes back on the next lookup.
    assert_eq!(read_all(&p.path("fast")).unwrap(), b"fast");
}

#[test]
fn a_panicking_op_fails_with_eio_and_the_fs_goes_on() {
    require_fuse!();
    let p = ProbeMount::new(Duration::ZERO, plain());
    assert_eq!(errno_or_zero(&read_all(&p.path("panic"))), libc::EIO);
    assert_eq!(read_all(&p.path("fast")).unwrap(), b"fast");
}

#[test]
fn a_reply_the_framework_rejects_is_eio_and_notified() {
    require_fuse!();
    let p = ProbeMount::new(Duration::ZERO, plain());
    assert_eq!(errno_or_zero(&read_all(&p.path("liar"))), libc::EIO);
    assert!(p.stats.errnotified.load(Ordering::SeqCst) >= 1);
    assert_eq!(read_all(&p.path("fast")).unwrap(), b"fast");
}

#[test]
fn mount_errors_name_the_path_and_the_cause() {
    require_fuse!();
    let missing = std::env::temp_dir().join("puffs-no-such-dir-for-test");
    let probe = || {
        let fs = Probe {
            stats: Arc::default(),
            slow: Duration::ZERO,
        };
        PuffsUserMount::new(fs, "probefs", "probe").handle_signals(false)
    };
    let e = probe().mount(&missing).err().unwrap().to_string();
    assert!(
        e.contains(&*missing.to_string_lossy()) && e.contains("does not exist"),
        "{e}"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    let e = probe().mount(file.path()).err().unwrap().to_string();
    assert!(e.contains("not a directory"), "{e}");
}
