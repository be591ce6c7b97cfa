//! Forgets in batches: when the kernel drops many nodes at once (BATCH_FORGET), the
//! loop takes them as one frame, not one frame per inode. A probe file system counts
//! the frames (`Cx::forget_stats`) and reports them through a file.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use puffs::{
    Attr, AttrReply, Cx, EntryOf, Errno, FileType, Node, OpResult, Open, Ops, PuffsUserMount,
};
use puffs_tests::*;

const FILES: u64 = 300;

struct Probe {
    reclaimed: Arc<AtomicUsize>,
}

#[puffs::ops]
impl Ops for Probe {
    type Node = ();
    type Key = u64;

    fn root(&self) -> (u64, ()) {
        (0, ())
    }

    fn reclaim(&self, _node: &Node<Self>) {
        self.reclaimed.fetch_add(1, Ordering::SeqCst);
    }

    async fn lookup(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        name: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        let key = match name.to_str() {
            Some("stats") => FILES + 1,
            Some(n) => n
                .strip_prefix('f')
                .and_then(|i| i.parse::<u64>().ok())
                .filter(|i| *i < FILES)
                .map(|i| i + 1)
                .ok_or(Errno::ENOENT)?,
            None => return Err(Errno::ENOENT),
        };
        let mut a = Attr::new(FileType::RegularFile, 0o644);
        a.size = 64;
        Ok(puffs::Entry::new(key, (), a))
    }

    async fn getattr(
        &self,
        _cx: &Cx<Self>,
        node: &Node<Self>,
        _f: Option<&Self::File>,
    ) -> OpResult<AttrReply> {
        Ok(if *node.key() == 0 {
            Attr::new(FileType::Directory, 0o755)
        } else {
            let mut a = Attr::new(FileType::RegularFile, 0o644);
            a.size = 64;
            a
        }
        .into())
    }

    async fn open(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _flags: puffs::OpenFlags,
    ) -> OpResult<Open<()>> {
        // Every read of "stats" reaches the loop.
        Ok(Open {
            direct_io: true,
            ..Open::new(())
        })
    }

    /// "stats" reads as "FRAMES INODES": the forget frames the loop took so far.
    async fn read(
        &self,
        cx: &Cx<Self>,
        _node: &Node<Self>,
        _file: &Self::File,
        offset: u64,
        _size: u32,
    ) -> OpResult<puffs::Data> {
        let f = cx.forget_stats();
        let text = format!("{} {}", f.frames, f.inodes).into_bytes();
        Ok(text
            .get(offset as usize..)
            .unwrap_or_default()
            .to_vec()
            .into())
    }
}

/// The probe mounted in this process, and its count of reclaimed nodes.
struct ProbeMount {
    m: InProcessMount,
    reclaimed: Arc<AtomicUsize>,
}

impl ProbeMount {
    fn new() -> Self {
        let reclaimed = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&reclaimed);
        let m = InProcessMount::start(move |dir| {
            PuffsUserMount::new(Probe { reclaimed: r }, "forgetfs", "probe")
                .handle_signals(false)
                .mount(dir)
        });
        ProbeMount { m, reclaimed }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.m.join(name)
    }

    /// (frames, inodes) of forgets so far, as the loop counted them.
    fn forget_stats(&self) -> (u64, u64) {
        let s = std::fs::read_to_string(self.path("stats")).expect("read stats");
        let mut it = s.split(' ').map(|n| n.parse::<u64>().expect("number"));
        (it.next().unwrap(), it.next().unwrap())
    }
}

#[test]
fn a_batch_of_forgets_is_one_frame_not_one_per_inode() {
    require_fuse!();
    let m = ProbeMount::new();
    for i in 0..FILES {
        std::fs::metadata(m.path(&format!("f{i}"))).expect("stat");
    }
    drop_dentries_and_inodes();
    let all = FILES as usize;
    assert!(
        wait_until(Duration::from_secs(5), || m
            .reclaimed
            .load(Ordering::SeqCst)
            >= all),
        "the kernel forgot {} of {all} nodes",
        m.reclaimed.load(Ordering::SeqCst)
    );
    let (frames, inodes) = m.forget_stats();
    eprintln!("{inodes} forgets arrived in {frames} frames");
    assert!(inodes >= FILES, "{inodes} forgets");
    // The kernel batches what is queued when its reader asks (BATCH_FORGET); one
    // frame per inode would be `frames == inodes`.
    assert!(
        frames * 4 <= inodes,
        "{inodes} forgets took {frames} frames"
    );
}
