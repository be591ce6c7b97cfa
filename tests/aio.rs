//! Async file I/O from ops: a file system whose one file lives in a backing file and
//! is read, written and synced through `Cx::aio`, with each backend.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use puffs::{Attr, Cx, EntryOf, Errno, FileType, Node, OpResult, Ops, PuffsUserMount, SetAttr};
use puffs_tests::*;

struct Backed {
    file: Arc<OwnedFd>,
    /// The aio backend the ops used, for the test to check.
    backend: Arc<Mutex<Option<&'static str>>>,
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

impl Backed {
    fn size(&self) -> OpResult<u64> {
        let st = nix::sys::stat::fstat(&*self.file).map_err(|e| Errno::from_raw(e as i32))?;
        Ok(st.st_size as u64)
    }

    fn attr(&self, node: &Node<Self>) -> OpResult<Attr> {
        Ok(if **node == 0 {
            Attr::new(FileType::Directory, 0o755)
        } else {
            let mut a = Attr::new(FileType::RegularFile, 0o644);
            a.size = self.size()?;
            a
        })
    }
}

#[puffs::ops]
impl Ops for Backed {
    type Node = u8;
    type Key = u8;

    fn root(&self) -> (u8, u8) {
        (0, 0)
    }

    async fn lookup(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        name: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        if name != "data" {
            return Err(Errno::ENOENT);
        }
        let mut a = Attr::new(FileType::RegularFile, 0o644);
        a.size = self.size()?;
        Ok(puffs::Entry::new(1, 1, a))
    }

    async fn getattr(&self, _cx: &Cx<Self>, node: &Node<Self>, _fh: Option<u64>) -> OpResult<Attr> {
        self.attr(node)
    }

    async fn setattr(&self, _cx: &Cx<Self>, node: &Node<Self>, set: &SetAttr) -> OpResult<Attr> {
        if let Some(size) = set.size {
            nix::unistd::ftruncate(&*self.file, size as i64)
                .map_err(|e| Errno::from_raw(e as i32))?;
        }
        self.attr(node)
    }

    async fn read(
        &self,
        cx: &Cx<Self>,
        _node: &Node<Self>,
        _fh: u64,
        offset: u64,
        size: u32,
    ) -> OpResult<Vec<u8>> {
        *self.backend.lock().unwrap() = Some(cx.aio().backend());
        cx.aio()
            .read_at(&self.file, offset, size as usize)
            .await
            .map_err(io_errno)
    }

    async fn write(
        &self,
        cx: &Cx<Self>,
        _node: &Node<Self>,
        _fh: u64,
        offset: u64,
        data: &[u8],
        _flags: i32,
    ) -> OpResult<u32> {
        let n = cx
            .aio()
            .write_at(&self.file, offset, data.to_vec())
            .await
            .map_err(io_errno)?;
        Ok(n as u32)
    }

    async fn fsync(
        &self,
        cx: &Cx<Self>,
        _node: &Node<Self>,
        _fh: u64,
        datasync: bool,
    ) -> OpResult<()> {
        cx.aio().fsync(&self.file, datasync).await.map_err(io_errno)
    }
}

/// Mounts a `Backed` over `backing` on a thread; returns the mount point, the backend
/// cell and the thread.
fn mount_backed(
    backing: &File,
    threads: bool,
) -> (
    MountPoint,
    Arc<Mutex<Option<&'static str>>>,
    std::thread::JoinHandle<()>,
) {
    let mnt = MountPoint::new();
    let fd: OwnedFd = backing.try_clone().unwrap().into();
    let backend = Arc::new(Mutex::new(None));
    let (tx, rx) = mpsc::channel();
    let (dir, seen): (PathBuf, _) = (mnt.path().to_path_buf(), Arc::clone(&backend));
    let t = std::thread::spawn(move || {
        let fs = Backed {
            file: Arc::new(fd),
            backend: seen,
        };
        let mut pu = PuffsUserMount::new(fs, "backedfs", "backed")
            .unwrap()
            .handle_signals(false)
            .aio_threads(threads);
        match pu.mount(&dir) {
            Ok(()) => tx.send(Ok(())).unwrap(),
            Err(e) => return tx.send(Err(e.to_string())).unwrap(),
        }
        pu.mainloop().unwrap();
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap()
        .expect("mounts");
    (mnt, backend, t)
}

fn round_trip(threads: bool, expect_backend: &str) {
    let backing = tempfile::tempfile().unwrap();
    let (mnt, backend, thread) = mount_backed(&backing, threads);
    // 3 MiB and a bit, so requests are split and land at many offsets.
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 1234)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let path = mnt.join("data");
    {
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&data, 0).unwrap();
        f.sync_all().unwrap();
    }
    let mut on_disk = vec![0; data.len()];
    backing.read_exact_at(&mut on_disk, 0).unwrap();
    assert!(
        on_disk == data,
        "the backing file holds what was written through the mount"
    );
    // Read back through the mount, bypassing the page cache of the mount itself.
    std::fs::write("/proc/sys/vm/drop_caches", "1").unwrap();
    let back = std::fs::read(&path).unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "read back through aio matches");
    assert_eq!(*backend.lock().unwrap(), Some(expect_backend));
    mnt.unmount().unwrap();
    thread.join().unwrap();
}

#[test]
fn file_io_through_io_uring() {
    require_fuse!();
    round_trip(false, "io_uring");
}

#[test]
fn file_io_through_worker_threads() {
    require_fuse!();
    round_trip(true, "threads");
}
