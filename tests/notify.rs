//! Kernel notifications, mounted for real: a probe file system whose files change
//! behind the kernel's back (the test edits them, as a server or a timer would), with
//! caches that would hide the change for an hour unless the fs tells the kernel.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use puffs::{
    Attr, AttrReply, Cx, EntryOf, Errno, FileType, Node, Notifier, Op, OpResult, Open, Ops,
    PuffsUserMount, ROOT_INO,
};
use puffs_tests::*;

/// Long enough that nothing in a test expires by itself.
const CACHED: Duration = Duration::from_secs(3600);

/// The probe's files: name -> (key = inode number, contents). Shared with the test,
/// which changes them as a server would.
#[derive(Default)]
struct Files {
    by_name: BTreeMap<String, (u64, Vec<u8>)>,
    /// Every op the loop ran.
    ops: Vec<Op>,
}

type Shared = Arc<Mutex<Files>>;

struct Probe {
    files: Shared,
}

fn attr(ino: u64, size: usize) -> Attr {
    let mut a = Attr::new(FileType::RegularFile, 0o644);
    a.ino = ino;
    a.size = size as u64;
    // Stable times: a getattr that saw mtime move would drop the cached pages by
    // itself (FUSE_AUTO_INVAL_DATA), and the test would prove nothing.
    let t = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    (a.atime, a.mtime, a.ctime) = (t, t, t);
    a
}

impl Probe {
    fn contents(&self, ino: u64) -> Option<Vec<u8>> {
        let f = self.files.lock().unwrap();
        f.by_name
            .values()
            .find(|(i, _)| *i == ino)
            .map(|(_, c)| c.clone())
    }
}

#[puffs::ops]
impl Ops for Probe {
    type Node = ();
    type Key = u64;

    fn root(&self) -> (u64, ()) {
        (ROOT_INO, ())
    }

    async fn lookup(
        &self,
        cx: &Cx<Self>,
        _dir: &Node<Self>,
        name: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        let name = name.to_str().ok_or(Errno::ENOENT)?;
        let (ino, size) = {
            let f = self.files.lock().unwrap();
            let (ino, c) = f.by_name.get(name).ok_or(Errno::ENOENT)?;
            (*ino, c.len())
        };
        if name.starts_with("selfinval") {
            // The kernel holds the directory's lock until this lookup is answered:
            // an entry invalidation written from here would wait for this very reply.
            cx.notifier()
                .inval_entry(ROOT_INO, OsStr::new(name))
                .map_err(|_| Errno::EIO)?;
            cx.notifier().inval_attr(ino).map_err(|_| Errno::EIO)?;
        }
        Ok(puffs::Entry::new(ino, (), attr(ino, size)))
    }

    async fn getattr(
        &self,
        _cx: &Cx<Self>,
        node: &Node<Self>,
        _f: Option<&Self::File>,
    ) -> OpResult<AttrReply> {
        if node.ino() == ROOT_INO {
            return Ok(Attr::new(FileType::Directory, 0o755).into());
        }
        let c = self.contents(node.ino()).ok_or(Errno::ENOENT)?;
        Ok(attr(node.ino(), c.len()).into())
    }

    async fn open(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _flags: puffs::OpenFlags,
    ) -> OpResult<Open<()>> {
        // Pages cached by one open stay for the next: only a notification drops them.
        Ok(Open {
            keep_cache: true,
            ..Open::new(())
        })
    }

    async fn read(
        &self,
        _cx: &Cx<Self>,
        node: &Node<Self>,
        _file: &Self::File,
        offset: u64,
        size: u32,
    ) -> OpResult<puffs::Data> {
        let c = self.contents(node.ino()).ok_or(Errno::ENOENT)?;
        let start = (offset as usize).min(c.len());
        let end = (start + size as usize).min(c.len());
        Ok(c[start..end].to_vec().into())
    }
}

/// The probe mounted in this process, its files and its notifier.
struct ProbeMount {
    m: InProcessMount,
    files: Shared,
    notifier: Notifier,
}

impl ProbeMount {
    fn new(files: &[(&str, u64, &[u8])]) -> Self {
        let shared = Shared::default();
        for (name, ino, c) in files {
            let mut f = shared.lock().unwrap();
            f.by_name.insert(name.to_string(), (*ino, c.to_vec()));
        }
        let (tx, rx) = mpsc::channel();
        let (fs_files, log) = (Arc::clone(&shared), Arc::clone(&shared));
        let m = InProcessMount::start(move |dir| {
            let mounted = PuffsUserMount::new(Probe { files: fs_files }, "notifyfs", "probe")
                .handle_signals(false)
                .attr_timeout(CACHED)
                .entry_timeout(CACHED)
                .pre_op(move |op, _| log.lock().unwrap().ops.push(op))
                .mount(dir)?;
            let _ = tx.send(mounted.notifier());
            Ok(mounted)
        });
        let notifier = rx.recv().expect("the mount's notifier");
        ProbeMount {
            m,
            files: shared,
            notifier,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.m.join(name)
    }

    /// Changes a file on the fs side only (the kernel is not told).
    fn set(&self, name: &str, contents: &[u8]) {
        let mut f = self.files.lock().unwrap();
        f.by_name.get_mut(name).expect("probe file").1 = contents.to_vec();
    }

    fn remove(&self, name: &str) {
        self.files.lock().unwrap().by_name.remove(name);
    }

    fn reads(&self) -> usize {
        let f = self.files.lock().unwrap();
        f.ops.iter().filter(|op| **op == Op::Read).count()
    }

    /// Waits until every queued notification has reached the kernel.
    fn wait_sent(&self) {
        let n = &self.notifier;
        assert!(
            wait_until(Duration::from_secs(5), || n.stats().queued == 0),
            "notifications still queued: {:?}",
            n.stats()
        );
    }
}

/// Reads a whole file with read(2) alone. Not `read_to_end`, whose statx would ask
/// for attributes anew: each read marks the cached atime stale (even on noatime), a
/// stat then fetches fresh attributes, and a changed size drops the cached pages by
/// itself (FUSE_AUTO_INVAL_DATA), which would hide what a notification does.
fn read_all(p: &Path) -> Vec<u8> {
    let mut f = std::fs::File::open(p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()));
    let (mut v, mut buf) = (Vec::new(), [0u8; 4096]);
    loop {
        match f.read(&mut buf) {
            Ok(0) => return v,
            Ok(n) => v.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read {}: {e}", p.display()),
        }
    }
}

#[test]
fn invalidating_data_shows_new_contents_and_size_to_a_caching_reader() {
    require_fuse!();
    let m = ProbeMount::new(&[("f", 10, b"old")]);
    let f = m.path("f");
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 3);
    assert_eq!(read_all(&f), b"old");
    // The server changes the file; unannounced, the reader keeps its cached pages and
    // size (an hour's attr timeout, keep_cache): this is what could hide a bug.
    m.set("f", b"new and longer");
    assert_eq!(read_all(&f), b"old", "the kernel's cache answers");
    let reads = m.reads();
    m.notifier.inval_data(10, 0, 0).expect("queued");
    m.wait_sent();
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 14, "new size");
    assert_eq!(read_all(&f), b"new and longer");
    assert!(
        m.reads() > reads,
        "the data came from the file system again"
    );
}

#[test]
fn invalidating_attributes_shows_the_new_size() {
    require_fuse!();
    let m = ProbeMount::new(&[("a", 11, b"1234")]);
    let a = m.path("a");
    assert_eq!(std::fs::metadata(&a).unwrap().len(), 4);
    // (No read here: a read would mark the cached atime stale, and stat refresh it.)
    m.set("a", b"123456789");
    assert_eq!(std::fs::metadata(&a).unwrap().len(), 4, "cached attributes");
    m.notifier.inval_attr(11).unwrap();
    m.wait_sent();
    assert_eq!(std::fs::metadata(&a).unwrap().len(), 9);
}

#[test]
fn a_name_gone_on_the_fs_side_is_gone_for_the_reader_after_invalidating_it() {
    require_fuse!();
    let m = ProbeMount::new(&[("x", 20, b"x"), ("y", 21, b"y")]);
    let ino_x = std::fs::metadata(m.path("x")).unwrap().ino();
    assert_eq!(ino_x, 20, "the fs chose the inode number");
    std::fs::metadata(m.path("y")).unwrap();
    m.remove("x");
    m.remove("y");
    assert!(m.path("x").exists(), "the cached entry still answers");
    m.notifier.inval_entry(ROOT_INO, OsStr::new("x")).unwrap();
    m.notifier
        .delete(ROOT_INO, 21, OsStr::new("y"))
        .expect("queued");
    m.wait_sent();
    assert_eq!(m.notifier.stats().failed, 0, "{:?}", m.notifier.stats());
    for name in ["x", "y"] {
        let e = std::fs::metadata(m.path(name)).unwrap_err();
        assert_eq!(errno_of(&e), libc::ENOENT, "{name}: {e}");
    }
}

#[test]
fn stored_data_is_read_from_the_page_cache() {
    require_fuse!();
    let m = ProbeMount::new(&[("s", 30, b"aaaa")]);
    let s = m.path("s");
    assert_eq!(read_all(&s), b"aaaa");
    m.notifier.store(30, 0, b"bbbb".to_vec()).unwrap();
    m.wait_sent();
    assert_eq!(m.notifier.stats().failed, 0);
    let reads = m.reads();
    let got = read_all(&s);
    eprintln!("ops {:?}", m.files.lock().unwrap().ops);
    assert_eq!(got, b"bbbb", "the stored pages answer");
    assert_eq!(m.reads(), reads, "no READ reached the file system");
}

/// The connection number of the FUSE mount on `dir` (its device's minor), to abort it.
fn fuse_connection(dir: &Path) -> u64 {
    let dev = std::fs::metadata(dir).expect("stat mount").dev();
    nix::sys::stat::minor(dev)
}

#[test]
fn notifying_from_inside_an_op_does_not_hang() {
    require_fuse!();
    let m = ProbeMount::new(&[("selfinval", 40, b"z")]);
    let conn = fuse_connection(m.m.mnt.path());
    let (tx, rx) = mpsc::channel();
    let p = m.path("selfinval");
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::metadata(&p).map(|md| md.len()));
    });
    let got = rx.recv_timeout(Duration::from_secs(5));
    if got.is_err() {
        // Hung: abort the connection so that nothing waits forever, then fail.
        let _ = std::fs::write(format!("/sys/fs/fuse/connections/{conn}/abort"), "1");
    }
    let len = got
        .expect("a lookup that notifies the kernel came back within 5 s")
        .expect("stat");
    assert_eq!(len, 1);
    m.wait_sent();
    // The invalidation reached the kernel (after the lookup was answered): the next
    // stat looks the name up again.
    let lookups = |m: &ProbeMount| {
        let f = m.files.lock().unwrap();
        f.ops.iter().filter(|op| **op == Op::Lookup).count()
    };
    let before = lookups(&m);
    std::fs::metadata(m.path("selfinval")).unwrap();
    assert!(lookups(&m) > before, "the entry was invalidated");
}

#[test]
fn notifications_are_refused_when_not_mounted() {
    let pu = PuffsUserMount::new(
        Probe {
            files: Shared::default(),
        },
        "notifyfs",
        "probe",
    );
    let n = pu.notifier();
    assert_eq!(n.inval_attr(1), Err(Errno::ENOTCONN));
    assert_eq!(n.inval_entry(1, OsStr::new("a")), Err(Errno::ENOTCONN));
}
