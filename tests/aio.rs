//! Async file I/O from ops: a file system whose one file lives in a backing file and
//! is read, written and synced through `Cx::aio`, with each backend (io_uring, POSIX
//! AIO, Linux kernel AIO on an O_DIRECT file, worker threads); an I/O error reaching
//! the application as the same errno from each; POSIX AIO's completion signal with a
//! host thread that does not block it and under a tiny RLIMIT_SIGPENDING (in child
//! processes of this test binary, so a death or a hang is a bounded failure); and the
//! teardown of a mount whose loop ends with I/O still in flight, repeated in one
//! process.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use puffs::{
    AioBackend, Attr, AttrReply, Cx, EntryOf, Errno, FileType, Node, OpResult, Ops, PuffsUserMount,
    SetAttr,
};
use puffs_tests::*;

struct Backed {
    file: Arc<OwnedFd>,
    /// The aio backend the ops used, for the test to check.
    backend: Arc<Mutex<Option<&'static str>>>,
    /// Reads of the file "park" read this (a pipe nobody writes): they stay in flight.
    park: Option<Arc<OwnedFd>>,
    /// Set when a read of "park" has started.
    parked: Arc<AtomicBool>,
}

const PARK_INO: u8 = 2;

/// Awaits every future, polling them all each time (so their I/O is in flight at
/// once); their outputs in order.
async fn join_all<T>(
    futs: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = T> + '_>>>,
) -> Vec<T> {
    let mut futs: Vec<_> = futs.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if let Some(fut) = f {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *o = Some(v);
                        *f = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

/// One aio read under way.
type Piece<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<u8>>> + 'a>>;

/// The size of the aio ops a read is split into (all in flight at once).
const PIECE: usize = 4096;

impl Backed {
    fn size(&self) -> OpResult<u64> {
        let st = nix::sys::stat::fstat(&*self.file)?; // nix's errno converts with `?`
        Ok(st.st_size as u64)
    }

    fn attr(&self, node: &Node<Self>) -> OpResult<Attr> {
        Ok(if **node == 0 {
            Attr::new(FileType::Directory, 0o755)
        } else if **node == PARK_INO {
            let mut a = Attr::new(FileType::RegularFile, 0o444);
            a.size = 4096;
            a
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
        if name == "park" && self.park.is_some() {
            let mut a = Attr::new(FileType::RegularFile, 0o444);
            a.size = 4096;
            return Ok(puffs::Entry::new(PARK_INO, PARK_INO, a));
        }
        if name != "data" {
            return Err(Errno::ENOENT);
        }
        let mut a = Attr::new(FileType::RegularFile, 0o644);
        a.size = self.size()?;
        Ok(puffs::Entry::new(1, 1, a))
    }

    async fn getattr(
        &self,
        _cx: &Cx<Self>,
        node: &Node<Self>,
        _f: Option<&Self::File>,
    ) -> OpResult<AttrReply> {
        self.attr(node).map(AttrReply::from)
    }

    async fn setattr(
        &self,
        _cx: &Cx<Self>,
        node: &Node<Self>,
        _file: Option<&Self::File>,
        set: &SetAttr,
    ) -> OpResult<AttrReply> {
        if let Some(size) = set.size {
            nix::unistd::ftruncate(&*self.file, size as i64)?;
        }
        self.attr(node).map(AttrReply::from)
    }

    async fn read(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        _file: &Self::File,
        offset: u64,
        size: u32,
    ) -> OpResult<puffs::Data> {
        if let (PARK_INO, Some(pipe)) = (**node, &self.park) {
            self.parked.store(true, Ordering::SeqCst);
            let read = cx.aio().read_at(pipe, 0, size as usize);
            return read.await.map(Into::into).map_err(puffs::errno);
        }
        *self.backend.lock().unwrap() = Some(cx.aio().backend());
        // Split into 4 KiB ops issued at once: many completions close together.
        let pieces: Vec<Piece<'_>> = (0..size as usize)
            .step_by(PIECE)
            .map(|at| {
                let len = PIECE.min(size as usize - at);
                Box::pin(cx.aio().read_at(&self.file, offset + at as u64, len)) as _
            })
            .collect();
        let mut data = Vec::with_capacity(size as usize);
        for piece in join_all(pieces).await {
            let piece = piece.map_err(puffs::errno)?;
            let short = piece.len() < PIECE;
            data.extend_from_slice(&piece);
            if short {
                break; // end of file
            }
        }
        Ok(data.into())
    }

    async fn write(
        &self,
        cx: &Cx<Self>,
        _node: &Node<Self>,
        _file: &Self::File,
        offset: u64,
        data: Vec<u8>,
        _flags: puffs::OpenFlags,
    ) -> OpResult<u32> {
        let n = cx
            .aio()
            .write_at(&self.file, offset, data)
            .await
            .map_err(puffs::errno)?;
        Ok(n as u32)
    }

    async fn fsync(
        &self,
        cx: &Cx<Self>,
        _node: &Node<Self>,
        _file: &Self::File,
        datasync: bool,
    ) -> OpResult<()> {
        cx.aio()
            .fsync(&self.file, datasync)
            .await
            .map_err(puffs::errno)
    }
}

type BackendCell = Arc<Mutex<Option<&'static str>>>;

/// Mounts a `Backed` over `backing` on a thread; returns the mount point, the backend
/// cell and the thread.
fn mount_backed(
    backing: &File,
    aio: AioBackend,
) -> (MountPoint, BackendCell, std::thread::JoinHandle<()>) {
    mount_parking(backing, aio, None, Arc::default())
}

/// `mount_backed` with a file "park" whose reads wait on `park` (and set `parked`).
fn mount_parking(
    backing: &File,
    aio: AioBackend,
    park: Option<OwnedFd>,
    parked: Arc<AtomicBool>,
) -> (MountPoint, BackendCell, std::thread::JoinHandle<()>) {
    let mnt = MountPoint::new();
    let (backend, t) = mount_on(mnt.path(), backing, aio, park, parked);
    (mnt, backend, t)
}

/// `-o aio=NAME` for `aio`: the mounts choose their backend the way a command line does.
fn aio_option(aio: AioBackend) -> puffs::options::MountOptions {
    let name = match aio {
        AioBackend::Uring => "uring",
        AioBackend::Posix => "posix",
        AioBackend::Linux => "linux",
        _ => "threads",
    };
    puffs::options::MountOptions::parse(&format!("aio={name}"), &[]).unwrap()
}

/// `mount_parking` on `dir`.
fn mount_on(
    dir: &std::path::Path,
    backing: &File,
    aio: AioBackend,
    park: Option<OwnedFd>,
    parked: Arc<AtomicBool>,
) -> (BackendCell, std::thread::JoinHandle<()>) {
    let fd: OwnedFd = backing.try_clone().unwrap().into();
    let backend = Arc::new(Mutex::new(None));
    let (tx, rx) = mpsc::channel();
    let (dir, seen): (PathBuf, _) = (dir.to_path_buf(), Arc::clone(&backend));
    let t = std::thread::spawn(move || {
        let fs = Backed {
            file: Arc::new(fd),
            backend: seen,
            park: park.map(Arc::new),
            parked,
        };
        let pu = PuffsUserMount::new(fs, "backedfs", "backed")
            .handle_signals(false)
            .options(&aio_option(aio));
        let pu = match pu.mount(&dir) {
            Ok(pu) => pu,
            Err(e) => return tx.send(Err(e.to_string())).unwrap(),
        };
        tx.send(Ok(())).unwrap();
        pu.mainloop().unwrap();
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap()
        .expect("mounts");
    (backend, t)
}

/// The tests of this file one at a time: the leak test counts the process's fds,
/// threads and memory, which a concurrent mount would disturb.
static SERIAL: Mutex<()> = Mutex::new(());

/// A backing file on the root file system (O_DIRECT works there, not on every tmpfs),
/// unlinked at once; opened O_DIRECT for the kernel AIO backend, read-only if asked.
fn backing_file(aio: AioBackend, read_only: bool) -> File {
    use std::os::unix::fs::OpenOptionsExt;
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let path = format!("/var/tmp/puffs-aio-test-{}-{n}", std::process::id());
    std::fs::write(&path, b"").unwrap();
    let direct = if aio == AioBackend::Linux {
        libc::O_DIRECT
    } else {
        0
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(!read_only)
        .custom_flags(direct)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    f
}

fn round_trip(aio: AioBackend, expect_backend: &str) {
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mnt = MountPoint::new();
    round_trip_on(mnt.path(), aio, expect_backend);
}

fn round_trip_on(dir: &std::path::Path, aio: AioBackend, expect_backend: &str) {
    let backing = backing_file(aio, false);
    let (backend, thread) = mount_on(dir, &backing, aio, None, Arc::default());
    // 3 MiB and more, so requests are split and land at many offsets (a whole number
    // of pages: O_DIRECT writes of the backing file must be block-aligned).
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 8192)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let path = dir.join("data");
    {
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&data, 0).unwrap();
        f.sync_all().unwrap();
    }
    let mut on_disk = vec![0; data.len()];
    // Through a second open without O_DIRECT (the test's buffer is not aligned).
    let fd = std::os::fd::AsRawFd::as_raw_fd(&backing);
    let plain = File::open(format!("/proc/self/fd/{fd}")).unwrap();
    plain.read_exact_at(&mut on_disk, 0).unwrap();
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
    report_read_latency(&path, expect_backend);
    nix::mount::umount(dir).unwrap();
    thread.join().unwrap();
    // The loop's end took the I/O backend (ring or worker threads) and the reader down.
    assert!(
        wait_until(Duration::from_secs(5), || puffs_threads() == 0),
        "framework threads left after the mount ended"
    );
}

/// Prints the median time of a 4 KiB O_DIRECT read through the mount (each one a
/// FUSE request served by one aio read of the backing file). A figure, not a check.
fn report_read_latency(path: &std::path::Path, backend: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .unwrap();
    let mut buf = vec![0u8; 8192];
    let at = buf.as_ptr().align_offset(4096);
    let mut times: Vec<Duration> = (0..500u64)
        .map(|i| {
            let t = std::time::Instant::now();
            let n = f
                .read_at(&mut buf[at..at + 4096], (i % 700) * 4096)
                .unwrap();
            assert_eq!(n, 4096);
            t.elapsed()
        })
        .collect();
    times.sort();
    eprintln!(
        "{backend}: 4 KiB read through the mount, median {:?}",
        times[times.len() / 2]
    );
}

#[test]
fn file_io_through_io_uring() {
    require_fuse!();
    round_trip(AioBackend::Uring, "io_uring");
}

#[test]
fn file_io_through_worker_threads() {
    require_fuse!();
    round_trip(AioBackend::Threads, "threads");
}

#[test]
fn file_io_through_posix_aio() {
    require_fuse!();
    round_trip(AioBackend::Posix, "posix-aio");
}

#[test]
fn file_io_through_linux_aio_on_an_o_direct_file() {
    require_fuse!();
    round_trip(AioBackend::Linux, "linux-aio");
}

/// A write the backing file refuses (it is open read-only) fails in the application
/// with EBADF, whichever backend carried it.
#[test]
fn an_io_error_reaches_the_application_as_the_same_errno_from_every_backend() {
    require_fuse!();
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for aio in [
        AioBackend::Uring,
        AioBackend::Posix,
        AioBackend::Linux,
        AioBackend::Threads,
    ] {
        let backing = backing_file(aio, true);
        let (mnt, _, thread) = mount_backed(&backing, aio);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(mnt.join("data"))
            .unwrap();
        let e = f.write_all_at(&[1u8; 4096], 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{aio:?}: {e}");
        drop(f);
        mnt.unmount().unwrap();
        thread.join().unwrap();
    }
}

/// POSIX AIO's default completion signal (SIGRTMIN+4).
fn aio_signal() -> i32 {
    libc::SIGRTMIN() + 4
}

/// Whether the calling thread blocks `sig` (from SigBlk in /proc/thread-self/status).
fn blocks(sig: i32) -> bool {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    mask & (1 << (sig - 1)) != 0
}

/// What a child process runs (`PUFFS_AIO_CHILD` names it): a POSIX AIO round trip,
/// with a host thread that does not block the signal started before the mount.
#[test]
fn child_entry() {
    let Ok(scenario) = std::env::var("PUFFS_AIO_CHILD") else {
        return; // run by the parent tests below only
    };
    let host = std::thread::spawn(|| {
        let blocked = blocks(aio_signal());
        // Stay alive for the whole mount: a thread the signal can be delivered to.
        std::thread::sleep(Duration::from_secs(3));
        blocked
    });
    let dir = PathBuf::from(std::env::var("PUFFS_AIO_CHILD_MNT").unwrap());
    round_trip_on(&dir, AioBackend::Posix, "posix-aio");
    match scenario.as_str() {
        "host-thread" => assert!(!host.join().unwrap(), "the host thread did not block it"),
        "sigpending" => assert!(blocks(aio_signal()), "blocked from exec on"),
        other => panic!("unknown scenario {other}"),
    }
    println!("child scenario {scenario} done");
}

/// Runs `child_entry` in a child process under `scenario`, bounded in time; `setup`
/// runs in the child before exec. Fails on the child's failure, death or hang.
fn run_child(scenario: &str, setup: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static) {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let out = tempfile::NamedTempFile::new().unwrap();
    let mnt = MountPoint::new();
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env("PUFFS_AIO_CHILD", scenario)
        .env("PUFFS_AIO_CHILD_MNT", mnt.path())
        .stdout(out.reopen().unwrap())
        .stderr(out.reopen().unwrap());
    // SAFETY: `setup` only makes system calls (setrlimit, sigprocmask).
    unsafe { cmd.pre_exec(setup) };
    let mut child = cmd.spawn().unwrap();
    let ok = wait_until(Duration::from_secs(30), || {
        child.try_wait().unwrap().is_some()
    });
    if !ok {
        // A child that died while serving its own mount cannot finish exiting until
        // the connection is aborted (its I/O thread waits for the dead daemon).
        abort_connection_on(mnt.path());
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(out.path()).unwrap_or_default();
    assert!(
        ok,
        "the child did not end in 30 s (a lost completion, or it died while serving \
         its own mount); after the abort: {status:?}, signal {:?}:\n{log}",
        status.signal()
    );
    assert!(
        status.success() && log.contains(&format!("child scenario {scenario} done")),
        "the child failed ({status:?}, signal {:?}):\n{log}",
        status.signal()
    );
}

/// Aborts the FUSE connection of the mount on `dir`, found in the mount table (a stat
/// of a dead mount would hang).
fn abort_connection_on(dir: &std::path::Path) {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.to_string_lossy();
    for line in table.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.get(4) == Some(&&*dir) {
            if let Some((_, minor)) = fields[2].split_once(':') {
                let abort = format!("/sys/fs/fuse/connections/{minor}/abort");
                let _ = std::fs::write(abort, "1");
            }
        }
    }
}

/// A thread created before the mount that does not block the completion signal (the
/// test harness's main thread is another): the signal may land on it. The process
/// must not die of it, and no completion may be lost.
#[test]
fn posix_aio_with_a_host_thread_that_does_not_block_its_signal() {
    require_fuse!();
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    run_child("host-thread", || Ok(()));
}

/// RLIMIT_SIGPENDING of 8, and the signal blocked in every thread from exec on (so
/// every completion is a queued signal, read by the signalfd): glibc would turn an op
/// whose signal cannot be queued into EAGAIN; the in-flight cap must keep clear of it.
#[test]
fn posix_aio_under_a_tiny_rlimit_sigpending_loses_no_completion() {
    require_fuse!();
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sig = aio_signal();
    run_child("sigpending", move || {
        let lim = libc::rlimit {
            rlim_cur: 8,
            rlim_max: 8,
        };
        // SAFETY: plain system calls on valid, initialised arguments.
        unsafe {
            if libc::setrlimit(libc::RLIMIT_SIGPENDING, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut set = std::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        Ok(())
    });
}

/// Resident memory of this process in KiB (VmRSS).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Bytes malloc has handed out and not had back, over all arenas.
fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    unsafe { libc::mallinfo2() }.uordblks
}

/// Makes RSS follow what is allocated: glibc otherwise raises its mmap threshold to
/// the largest block freed so far, after which freed 1 MiB buffers stay resident in
/// the heap and RSS climbs in 15 MiB steps at arbitrary rounds (measured), leak or not.
fn steady_malloc() {
    // SAFETY: mallopt only sets allocator tunables.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

/// Memory mappings of this process.
fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

/// Open fds of this process.
fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Threads of this process that the framework started (named puffs-*).
fn puffs_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("puffs-"))
        })
        .count()
}

/// The FUSE control file system, mounted on a temp dir for the test (unmounted on drop).
fn fusectl() -> MountPoint {
    let ctl = MountPoint::new();
    nix::mount::mount(
        Some("fusectl"),
        ctl.path(),
        Some("fusectl"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .expect("mount fusectl");
    ctl
}

/// Aborts the FUSE connection of the mount on `dir` (as `echo 1 > .../abort`).
fn abort_connection(ctl: &MountPoint, dir: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir).unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    assert_eq!(major, 0, "a FUSE mount has an anonymous device");
    std::fs::write(ctl.join(&format!("{minor}/abort")), "1").unwrap();
}

/// One round: mount, write and read 1 MiB through aio, then unmount; or, with `abort`,
/// leave a read in flight (an io_uring read of a pipe nobody writes) and end the mount
/// under it by aborting the connection, so the loop returns with a continuation parked
/// and an op in the kernel: the worst case for teardown.
fn mount_aio_unmount(ctl: &MountPoint, abort: bool) {
    let backing = tempfile::tempfile().unwrap();
    let (park_r, park_w) = nix::unistd::pipe().unwrap();
    let parked = Arc::new(AtomicBool::new(false));
    let (mnt, backend, thread) = mount_parking(
        &backing,
        AioBackend::Uring,
        Some(park_r),
        Arc::clone(&parked),
    );
    let data = vec![0x5a; 1 << 20];
    let path = mnt.join("data");
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&data, 0).unwrap();
    f.sync_all().unwrap();
    drop(f);
    std::fs::write("/proc/sys/vm/drop_caches", "1").unwrap();
    assert!(std::fs::read(&path).unwrap() == data);
    assert_eq!(*backend.lock().unwrap(), Some("io_uring"));
    if !abort {
        mnt.unmount().unwrap();
        return thread.join().unwrap();
    }

    let park = mnt.join("park");
    let reader = std::thread::spawn(move || std::fs::read(park));
    assert!(
        wait_until(Duration::from_secs(5), || parked.load(Ordering::SeqCst)),
        "the read of park reached the file system"
    );
    std::thread::sleep(Duration::from_millis(20)); // let the loop submit it and sleep
    abort_connection(ctl, mnt.path());
    assert!(reader.join().unwrap().is_err(), "an aborted read fails");
    thread.join().unwrap();
    drop(park_w);
}

/// Mounting, doing aio, and unmounting (every other time by aborting the connection
/// with I/O in flight), 20 times in one process, leaves memory and fds where they were
/// after the first rounds: each
/// mount's runtime, ring, buffers and fds are freed when its mainloop returns. (Before
/// the teardown, a continuation parked at the end kept its `Cx`, so the runtime, so
/// itself, alive: 6 fds and an io_uring per mount.)
#[test]
fn repeated_mounts_leak_neither_memory_nor_fds() {
    require_fuse!();
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    steady_malloc();
    let ctl = fusectl();
    // Warm-up rounds: the allocator's per-thread arenas (a new thread per mount) and
    // the harness settle; RSS jumps once in the first rounds, then stays flat.
    for round in 0..5 {
        mount_aio_unmount(&ctl, round % 2 == 1);
    }
    // The reader thread ends just after the loop returns; wait for it before counting.
    let settled = || wait_until(Duration::from_secs(5), || puffs_threads() == 0);
    assert!(settled(), "framework threads left after the warm-up");
    let (fds0, rss0, maps0, heap0) = (fd_count(), rss_kib(), map_count(), heap_in_use());
    for round in 5..20 {
        mount_aio_unmount(&ctl, round % 2 == 1);
    }
    assert!(settled(), "framework threads left after 20 mounts");
    let (fds1, rss1, maps1, heap1) = (fd_count(), rss_kib(), map_count(), heap_in_use());
    eprintln!(
        "after 5 rounds: {fds0} fds, {rss0} KiB, {maps0} maps, {heap0} B heap; \
         after 20: {fds1} fds, {rss1} KiB, {maps1} maps, {heap1} B heap"
    );
    assert_eq!(fds1, fds0, "fds leak across mounts");
    // Measured over these 15 rounds: fixed, +0 fds, +0 maps, +32 KiB RSS, +9.5 KB of
    // heap; leaking (before the fix), +105 fds, +30 maps (each mount's rings),
    // +1752 KiB RSS, +170 KB of heap. The bounds sit between, with room for noise.
    assert!(
        maps1 <= maps0 + 2,
        "mappings grow across mounts: {maps0} -> {maps1}"
    );
    assert!(
        rss1 <= rss0 + 512,
        "memory grows across mounts: {rss0} KiB -> {rss1} KiB"
    );
    assert!(
        heap1 <= heap0 + 64 * 1024,
        "the heap grows across mounts: {heap0} B -> {heap1} B"
    );
}
