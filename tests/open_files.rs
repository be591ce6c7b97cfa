//! Open-file objects through a real mount: a file system that keeps, per open file,
//! a descriptor of a backing file (as a null layer does) and implements no release.
//! The framework hands each op the object its open returned, and drops it (closing
//! the descriptor) when the kernel releases the open file.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use puffs::{
    Attr, AttrReply, Cx, Data, EntryOf, Errno, FileType, Node, OpResult, Open, OpenFlags, Ops,
    PuffsUserMount,
};
use puffs_tests::*;

/// One file, "data", backed by a file outside the mount.
struct Backed {
    backing: PathBuf,
    /// Open-file objects alive now.
    live: Arc<AtomicUsize>,
}

/// What one open holds: the backing file, opened as the caller opened ours.
struct BackedFile {
    fd: std::fs::File,
    live: Arc<AtomicUsize>,
}

impl Drop for BackedFile {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Backed {
    fn attr(&self) -> OpResult<Attr> {
        let mut a = Attr::new(FileType::RegularFile, 0o644);
        a.size = std::fs::metadata(&self.backing)?.len(); // io::Error -> Errno by `?`
        Ok(a)
    }
}

#[puffs::ops]
impl Ops for Backed {
    type Node = ();
    type Key = u8;
    type File = BackedFile;

    fn root(&self) -> (u8, ()) {
        (0, ())
    }

    async fn lookup(
        &self,
        _cx: &Cx<Self>,
        _d: &Node<Self>,
        name: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        if name != "data" {
            return Err(Errno::ENOENT);
        }
        Ok(puffs::Entry::new(1, (), self.attr()?))
    }

    async fn getattr(
        &self,
        _cx: &Cx<Self>,
        node: &Node<Self>,
        _file: Option<&BackedFile>,
    ) -> OpResult<AttrReply> {
        match node.ino() {
            puffs::ROOT_INO => Ok(Attr::new(FileType::Directory, 0o755).into()),
            _ => self.attr().map(AttrReply::from),
        }
    }

    async fn open(
        &self,
        _cx: &Cx<Self>,
        _n: &Node<Self>,
        flags: OpenFlags,
    ) -> OpResult<Open<BackedFile>> {
        let fd = OpenOptions::new()
            .read(flags.reads())
            .write(flags.writes())
            .open(&self.backing)?;
        self.live.fetch_add(1, Ordering::SeqCst);
        let file = BackedFile {
            fd,
            live: Arc::clone(&self.live),
        };
        // Every read and write reaches the file system (no page cache in between).
        Ok(Open {
            direct_io: true,
            ..Open::new(file)
        })
    }

    async fn read(
        &self,
        _cx: &Cx<Self>,
        _n: &Node<Self>,
        file: &BackedFile,
        offset: u64,
        size: u32,
    ) -> OpResult<Data> {
        let mut buf = vec![0; size as usize];
        let n = file.fd.read_at(&mut buf, offset)?;
        buf.truncate(n);
        Ok(buf.into())
    }

    async fn write(
        &self,
        _cx: &Cx<Self>,
        _n: &Node<Self>,
        file: &BackedFile,
        offset: u64,
        data: Vec<u8>,
        _flags: OpenFlags,
    ) -> OpResult<u32> {
        Ok(file.fd.write_at(&data, offset)? as u32)
    }
}

/// `Backed` mounted in this process over a file in a temp dir, and its count of live
/// open objects.
struct BackedMount {
    // Fields drop in order: the mount before the directory of its backing file.
    m: InProcessMount,
    live: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl BackedMount {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let backing = dir.path().join("backing");
        std::fs::write(&backing, b"").expect("backing file");
        let live = Arc::new(AtomicUsize::new(0));
        let l = Arc::clone(&live);
        let m = InProcessMount::start(move |at| {
            PuffsUserMount::new(Backed { backing, live: l }, "backedfs", "probe")
                .handle_signals(false)
                .mount(at)
        });
        BackedMount { m, live, _dir: dir }
    }

    fn data(&self) -> PathBuf {
        self.m.join("data")
    }

    fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

fn open(path: &Path, write: bool) -> std::fs::File {
    OpenOptions::new()
        .read(true)
        .write(write)
        .open(path)
        .expect("open through the mount")
}

#[test]
fn each_open_keeps_its_own_object_until_the_kernel_releases_it() {
    require_fuse!();
    let m = BackedMount::new();
    let writer = open(&m.data(), true);
    let reader = open(&m.data(), false);
    assert_eq!(m.live(), 2, "one object per open");
    writer.write_at(b"through the object", 0).expect("write");
    let mut buf = [0u8; 64];
    let n = reader.read_at(&mut buf, 0).expect("read");
    assert_eq!(&buf[..n], b"through the object");
    drop((writer, reader));
    // The fs has no release: the framework drops each object at the kernel's RELEASE.
    assert!(
        wait_until(Duration::from_secs(5), || m.live() == 0),
        "{} open-file objects outlived their release",
        m.live()
    );
}
