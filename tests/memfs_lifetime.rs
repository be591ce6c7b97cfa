//! How long memfs keeps what it holds: a node's data, extended attributes and symlink
//! target live as long as anything can reach the node (a name, an open file, or the
//! kernel's own reference, such as an O_PATH descriptor or a dentry a reader resolved
//! just before an unlink or a rename over it), and go when the kernel forgets it.
//! Each case runs on a native tmpfs too, which is the reference.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use puffs_tests::*;

const MIB: u64 = 1 << 20;

/// `len` bytes that differ from page to page and are never all zero.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

/// `open(path, O_PATH | extra)`: a reference to the node that is not an open file.
fn open_path(p: &Path, extra: i32) -> OwnedFd {
    let c = cpath(p);
    // SAFETY: a valid C path; the fd returned is owned by the OwnedFd alone.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC | extra) };
    assert!(
        fd >= 0,
        "open(O_PATH) {}: errno {}",
        p.display(),
        last_errno()
    );
    // SAFETY: fd was just opened and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The magic link through which the node `fd` refers to can be opened again.
fn proc_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    let (c, n) = (cpath(p), CString::new(name).unwrap());
    // SAFETY: valid C strings and a buffer of the length given.
    let r = unsafe {
        libc::setxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(r, 0, "setxattr {}: errno {}", p.display(), last_errno());
}

/// The value of xattr `name` of `p` (followed if a symlink), or the errno.
fn get_xattr(p: &Path, name: &str) -> Result<Vec<u8>, i32> {
    let (c, n) = (cpath(p), CString::new(name).unwrap());
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer of the length given.
    let r = unsafe { libc::getxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(last_errno());
    }
    buf.truncate(r as usize);
    Ok(buf)
}

/// The target of the symlink `fd` (opened O_PATH | O_NOFOLLOW) refers to.
fn read_link_at(fd: &OwnedFd) -> Result<Vec<u8>, i32> {
    let mut buf = vec![0u8; 8192];
    // SAFETY: an open fd, an empty C path (the fd itself) and a buffer of the length given.
    let r = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if r < 0 {
        return Err(last_errno());
    }
    buf.truncate(r as usize);
    Ok(buf)
}

/// memfs with a size limit, and tmpfs with the same limit: the two roots compared.
fn both() -> (Mounted, Tmpfs) {
    (Mounted::new("memfs", "size=64M"), Tmpfs::new("size=64M"))
}

/// A file of `data` with an xattr, referenced by an O_PATH fd, loses its name through
/// `lose_name`; reopened through /proc it must still read as `data`.
fn check_held_file_survives(root: &Path, lose_name: impl Fn(&Path)) {
    let p = root.join("f");
    let data = pattern(3 * 4096 + 123, 7);
    fs::write(&p, &data).unwrap();
    set_xattr(&p, "user.k", b"value");
    let held = open_path(&p, 0);
    lose_name(&p);
    let via = proc_path(&held);
    let st = fs::metadata(&via).unwrap();
    assert_eq!(
        st.nlink(),
        0,
        "{}: the held file still has a link",
        root.display()
    );
    assert_eq!(st.len(), data.len() as u64);
    let got = fs::read(&via).unwrap();
    assert!(
        got == data,
        "{}: the held file reads back wrong ({} of {} bytes are zero)",
        root.display(),
        got.iter().filter(|&&b| b == 0).count(),
        got.len()
    );
    assert_eq!(
        get_xattr(&via, "user.k"),
        Ok(b"value".to_vec()),
        "{}",
        root.display()
    );
    // Still writable through the reference, like any unlinked open file.
    let mut f = OpenOptions::new().append(true).open(&via).unwrap();
    f.write_all(b"tail").unwrap();
    drop(f);
    assert!(fs::read(&via).unwrap().ends_with(b"tail"));
}

#[test]
fn o_path_reference_keeps_unlinked_data() {
    puffs_tests::require_fuse!();
    let (m, t) = both();
    for root in [m.path(), t.path()] {
        check_held_file_survives(root, |p| fs::remove_file(p).unwrap());
    }
}

#[test]
fn o_path_reference_keeps_data_replaced_by_rename() {
    puffs_tests::require_fuse!();
    let (m, t) = both();
    for root in [m.path(), t.path()] {
        check_held_file_survives(root, |p| {
            let new = root.join("new");
            fs::write(&new, b"the replacement").unwrap();
            fs::rename(&new, p).unwrap();
            assert_eq!(fs::read(p).unwrap(), b"the replacement");
        });
    }
}

#[test]
fn removed_symlinks_and_directories_keep_their_contents() {
    puffs_tests::require_fuse!();
    let (m, t) = both();
    let long = "t".repeat(300); // takes a data page, as in tmpfs
    for root in [m.path(), t.path()] {
        for (name, target) in [("short", "target"), ("long", long.as_str())] {
            let p = root.join(name);
            std::os::unix::fs::symlink(target, &p).unwrap();
            let held = open_path(&p, libc::O_NOFOLLOW);
            fs::remove_file(&p).unwrap();
            assert_eq!(
                read_link_at(&held),
                Ok(target.as_bytes().to_vec()),
                "{}: removed symlink {name}",
                root.display()
            );
        }
        let d = root.join("d");
        fs::create_dir(&d).unwrap();
        set_xattr(&d, "user.k", b"dir value");
        let held = open_path(&d, libc::O_DIRECTORY);
        fs::remove_dir(&d).unwrap();
        assert_eq!(
            get_xattr(&proc_path(&held), "user.k"),
            Ok(b"dir value".to_vec()),
            "{}: removed directory",
            root.display()
        );
    }
}

/// Free bytes of the file system at `root`.
fn free_bytes(root: &Path) -> u64 {
    let v = nix::sys::statvfs::statvfs(root).unwrap();
    v.blocks_free() as u64 * v.fragment_size() as u64
}

#[test]
fn held_unlinked_file_keeps_its_space_until_released() {
    puffs_tests::require_fuse!();
    let (m, t) = both();
    for root in [m.path(), t.path()] {
        let p = root.join("big");
        fs::write(&p, pattern(8 * MIB as usize, 3)).unwrap();
        let full = free_bytes(root);
        let held = open_path(&p, 0);
        fs::remove_file(&p).unwrap();
        // Give a wrongly early free time to show.
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            free_bytes(root) < full + MIB,
            "{}: an unlinked file still referenced gave its space back ({} -> {} free)",
            root.display(),
            full,
            free_bytes(root)
        );
        drop(held);
        assert!(
            wait_until(Duration::from_secs(5), || free_bytes(root)
                >= full + 7 * MIB),
            "{}: the space did not come back when the last reference went ({} -> {} free)",
            root.display(),
            full,
            free_bytes(root)
        );
    }
}

/// The content a writer gives a file: `len` bytes of one nonzero value, so a reader
/// can tell a whole, right file from zeros or a mix.
fn replacement(seq: u64) -> Vec<u8> {
    let len = 4096 * (1 + (seq % 6) as usize) + (seq % 1000) as usize;
    vec![1 + (seq % 255) as u8; len]
}

/// Whether `got` is a file some writer wrote whole.
fn whole(got: &[u8]) -> bool {
    !got.is_empty() && got[0] != 0 && got.iter().all(|&b| b == got[0])
}

/// The atomic-replace idiom under load: writers write a temporary file completely,
/// close it and rename it over one of a few shared names; readers open and read the
/// shared names. Returns (reads, bad reads, a sample of what went wrong).
fn atomic_replace_storm(root: &Path, run_for: Duration) -> (u64, u64, Vec<String>) {
    const NAMES: u64 = 8;
    const WRITERS: u64 = 6;
    const READERS: u64 = 6;
    let shared = |i: u64| root.join(format!("shared{i}"));
    for i in 0..NAMES {
        fs::write(shared(i), replacement(i)).unwrap();
    }
    let stop = AtomicBool::new(false);
    let (reads, bad) = (AtomicU64::new(0), AtomicU64::new(0));
    let samples = std::sync::Mutex::new(Vec::new());
    let note = |what: String| {
        bad.fetch_add(1, Ordering::Relaxed);
        let mut s = samples.lock().unwrap();
        if s.len() < 5 {
            s.push(what);
        }
    };
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (stop, shared, note) = (&stop, &shared, &note);
            s.spawn(move || {
                let tmp = root.join(format!("tmp{w}"));
                let mut seq = w;
                while !stop.load(Ordering::Relaxed) {
                    let mut f = File::create(&tmp).unwrap();
                    f.write_all(&replacement(seq)).unwrap();
                    drop(f);
                    if let Err(e) = fs::rename(&tmp, shared(seq % NAMES)) {
                        note(format!("rename: {e}"));
                    }
                    seq += WRITERS;
                }
            });
        }
        for r in 0..READERS {
            let (stop, shared, note, reads) = (&stop, &shared, &note, &reads);
            s.spawn(move || {
                let mut i = r;
                while !stop.load(Ordering::Relaxed) {
                    reads.fetch_add(1, Ordering::Relaxed);
                    match fs::read(shared(i % NAMES)) {
                        Ok(got) if whole(&got) => {}
                        Ok(got) => note(format!(
                            "read {} bytes, {} of them zero",
                            got.len(),
                            got.iter().filter(|&&b| b == 0).count()
                        )),
                        Err(e) => note(format!("read: {e}")),
                    }
                    i += 1;
                }
            });
        }
        let end = Instant::now() + run_for;
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let samples = samples.into_inner().unwrap();
    (reads.into_inner(), bad.into_inner(), samples)
}

#[test]
fn atomic_replace_under_load_never_reads_freed_data() {
    puffs_tests::require_fuse!();
    let (m, t) = both();
    // tmpfs first, briefly: proves the checker itself finds nothing wrong.
    let (reads, bad, what) = atomic_replace_storm(t.path(), Duration::from_secs(1));
    assert_eq!(bad, 0, "tmpfs: {bad} bad reads of {reads}: {what:?}");
    let (reads, bad, what) = atomic_replace_storm(m.path(), Duration::from_secs(3));
    eprintln!("memfs: {reads} reads, {bad} bad");
    assert_eq!(bad, 0, "memfs: {bad} bad reads of {reads}: {what:?}");
    assert!(
        reads >= 500,
        "only {reads} reads in 3 s: the storm did not run"
    );
    assert_alive(m.path());
}

/// The mount still answers.
fn assert_alive(root: &Path) {
    fs::write(root.join("alive"), b"yes").unwrap();
    assert_eq!(fs::read(root.join("alive")).unwrap(), b"yes");
}
