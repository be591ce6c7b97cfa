//! The kernel's read sizes for a mount: `PuffsUserMount::max_readahead` reaches the
//! kernel (the mount's /sys/class/bdi read_ahead_kb), and a sequential reader's READs
//! then come as large as max_write allows (FUSE max_pages), not 128 KiB.

use std::ffi::OsStr;
use std::io::Read;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use puffs::PuffsUserMount;
use puffs::{Attr, AttrReply, Cx, Data, Entry, EntryOf, Errno, FileType, Node, OpResult, Ops};
use puffs_tests::*;

const SIZE: u64 = 32 << 20;
static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

/// One file of zeros, "big"; remembers the largest READ the kernel sent.
struct Zeros {
    largest: Arc<AtomicU32>,
}

fn file_attr() -> Attr {
    let mut a = Attr::new(FileType::RegularFile, 0o444);
    a.ino = 2;
    a.size = SIZE;
    a
}

#[puffs::ops]
impl Ops for Zeros {
    type Node = u64;
    type Key = u64;

    fn root(&self) -> (u64, u64) {
        (1, 1)
    }

    async fn lookup(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        name: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        match name.to_str() {
            Some("big") => Ok(Entry::new(2, 2, file_attr())),
            _ => Err(Errno::ENOENT),
        }
    }

    async fn getattr(
        &self,
        _cx: &Cx<Self>,
        node: &Node<Self>,
        _f: Option<&Self::File>,
    ) -> OpResult<AttrReply> {
        Ok(match **node {
            1 => Attr::new(FileType::Directory, 0o755).into(),
            _ => file_attr().into(),
        })
    }

    async fn read(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _file: &Self::File,
        offset: u64,
        size: u32,
    ) -> OpResult<Data> {
        self.largest.fetch_max(size, Ordering::Relaxed);
        let n = (size as u64).min(SIZE.saturating_sub(offset)) as usize;
        Ok(ZEROS[..n.min(ZEROS.len())].into())
    }
}

/// Mounts `Zeros` with `readahead` (None: the kernel's default); returns the mount,
/// the kernel's window for it in KiB, and the largest READ of a sequential read.
fn read_sizes(readahead: Option<u32>) -> (u32, u32) {
    let largest = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&largest);
    let m = InProcessMount::start(move |dir| {
        let mut pu = PuffsUserMount::new(Zeros { largest: seen }, "zerofs", "probe")
            .handle_signals(false)
            .max_write(1 << 20);
        if let Some(ra) = readahead {
            pu = pu.max_readahead(ra);
        }
        pu.mount(dir)
    });
    let window = window_kb(m.mnt.path());
    let mut f = std::fs::File::open(m.join("big")).unwrap();
    let mut buf = vec![0u8; 128 << 10];
    let mut total = 0u64;
    loop {
        match f.read(&mut buf).unwrap() {
            0 => break,
            n => total += n as u64,
        }
    }
    assert_eq!(total, SIZE);
    (window, largest.load(Ordering::Relaxed))
}

/// The mount's readahead window (read_ahead_kb of its bdi, found by st_dev).
fn window_kb(dir: &std::path::Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir).unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let knob = format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb");
    std::fs::read_to_string(&knob)
        .unwrap_or_else(|e| panic!("{knob}: {e}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn max_readahead_reaches_the_kernel_and_reads_grow_to_max_write() {
    require_fuse!();
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: setting a mount's readahead window needs root");
        return;
    }
    let (default_window, default_read) = read_sizes(None);
    let (window, read) = read_sizes(Some(4 << 20));
    eprintln!(
        "default: window {default_window} KiB, largest READ {default_read}; \
         max_readahead(4 MiB): window {window} KiB, largest READ {read}"
    );
    assert_eq!(window, 4096);
    assert!(default_window < 4096);
    // With the larger window the kernel sends READs of max_write (1 MiB).
    assert_eq!(read, 1 << 20);
    assert!(read > default_read);
}

#[test]
fn a_smaller_readahead_goes_through_init() {
    // (Which takes no root: the kernel keeps the smaller of its default and INIT's.)
    require_fuse!();
    let (window, _) = read_sizes(Some(64 << 10));
    assert_eq!(window, 64);
}
