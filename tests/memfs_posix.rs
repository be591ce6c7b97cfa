//! memfs, nullfs and rot13fs mounted for real, exercised through ordinary system calls:
//! every feature with its errors. Where the right answer is the kernel's business rather
//! than common knowledge, the same operations run on a native tmpfs too and must agree
//! with it. Each case is written once over a `Target` and runs on every file system it
//! applies to (`suite!` below): the test `data::nullfs_posix::create_write_read_seek` is
//! that case on nullfs with `-o aio=posix,nopassthrough`.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use puffs_tests::*;

const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------------
// Helpers

/// The errno of a result, 0 for success.
fn errno<T>(r: std::io::Result<T>) -> i32 {
    errno_or_zero(&r)
}

fn rename2(from: &Path, to: &Path, flags: libc::c_uint) -> i32 {
    let (f, t) = (cpath(from), cpath(to));
    // SAFETY: both strings are valid NUL-terminated paths for the call's duration.
    sys(unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            flags,
        )
    })
}

fn setx(p: &Path, name: &str, val: &[u8], flags: libc::c_int) -> i32 {
    let (p, n) = (cpath(p), cstr(name));
    // SAFETY: valid C strings and a buffer of the given length.
    sys(unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            val.as_ptr().cast(),
            val.len(),
            flags,
        )
    })
}

fn lsetx(p: &Path, name: &str, val: &[u8]) -> i32 {
    let (p, n) = (cpath(p), cstr(name));
    // SAFETY: as in setx.
    sys(unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), val.as_ptr().cast(), val.len(), 0) })
}

/// getxattr: first asks for the size, then reads; Err(errno).
fn getx(p: &Path, name: &str) -> Result<Vec<u8>, i32> {
    let (p, n) = (cpath(p), cstr(name));
    // SAFETY: a null buffer of size 0 asks only for the value's size.
    let len = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) };
    if len < 0 {
        return Err(last_errno());
    }
    let mut buf = vec![0u8; len as usize];
    // SAFETY: buf has the length passed.
    let got = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if got < 0 {
        return Err(last_errno());
    }
    buf.truncate(got as usize);
    Ok(buf)
}

/// getxattr into a buffer of exactly `size` bytes.
fn getx_sized(p: &Path, name: &str, size: usize) -> Result<usize, i32> {
    let (p, n) = (cpath(p), cstr(name));
    let mut buf = vec![0u8; size.max(1)];
    // SAFETY: buf is at least `size` bytes.
    let got = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), size) };
    if got < 0 {
        Err(last_errno())
    } else {
        Ok(got as usize)
    }
}

/// listxattr, sorted; Err(errno).
fn listx(p: &Path) -> Result<Vec<String>, i32> {
    let p = cpath(p);
    // SAFETY: a null buffer of size 0 asks only for the list's size.
    let len = unsafe { libc::listxattr(p.as_ptr(), std::ptr::null_mut(), 0) };
    if len < 0 {
        return Err(last_errno());
    }
    let mut buf = vec![0u8; len as usize];
    // SAFETY: buf has the length passed.
    let got = unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if got < 0 {
        return Err(last_errno());
    }
    buf.truncate(got as usize);
    let mut v: Vec<String> = buf
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    v.sort();
    Ok(v)
}

fn removex(p: &Path, name: &str) -> i32 {
    let (p, n) = (cpath(p), cstr(name));
    // SAFETY: valid C strings.
    sys(unsafe { libc::removexattr(p.as_ptr(), n.as_ptr()) })
}

fn ts(sec: i64, nsec: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    }
}

/// utimensat(AT_FDCWD, p, [atime, mtime], 0).
fn utimens(p: &Path, atime: libc::timespec, mtime: libc::timespec) -> i32 {
    let p = cpath(p);
    let times = [atime, mtime];
    // SAFETY: a valid path and an array of two timespecs.
    sys(unsafe { libc::utimensat(libc::AT_FDCWD, p.as_ptr(), times.as_ptr(), 0) })
}

fn omit() -> libc::timespec {
    ts(0, libc::UTIME_OMIT)
}

fn now() -> libc::timespec {
    ts(0, libc::UTIME_NOW)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Whether the mount still answers: stat the root and create and remove a file.
fn assert_alive(root: &Path) {
    assert!(fs::metadata(root).unwrap().is_dir(), "root no longer a dir");
    let probe = root.join(".alive-probe");
    fs::write(&probe, b"alive").expect("the mount no longer answers");
    assert_eq!(fs::read(&probe).unwrap(), b"alive");
    fs::remove_file(&probe).unwrap();
}

// ---------------------------------------------------------------------------------
// Which case runs where

puffs_tests::suite! {
    // File data: memfs; nullfs by default (kernel passthrough: the data never reaches
    // the fs) and with passthrough off on each aio backend (the data goes through the
    // fs and that backend); rot13fs (its data is transformed on the way, so never
    // passed through).
    data on [memfs, nullfs, nullfs_uring, nullfs_posix, nullfs_linux, nullfs_threads, rot13fs] {
        create_write_read_seek,
        sparse_file_at_one_gib,
        truncate_grows_with_zeros_and_shrinking_loses_data,
        o_append_with_two_fds,
        efbig_and_huge_offsets_compare_with_tmpfs,
        unlinked_open_file_stays_usable,
        mmap_read_and_shared_write,
        concurrent_appends_are_atomic_records,
        fallocate_compare_with_tmpfs,
        copy_file_range_copies,
        seek_data_and_hole_compare_with_tmpfs,
    }
    // Names, links, attributes, permissions: no file data through the aio backend, so
    // once per file system (the null layer's metadata calls run on the worker pool
    // every backend shares, `Aio::blocking`; should they move onto a backend's own
    // opcodes, list the nullfs_* targets here too). rot13fs changes names on the backing side only: through
    // the mount every case here must behave as on the others.
    meta on [memfs, nullfs, rot13fs] {
        directories_and_their_errors,
        readdir_of_a_big_directory_lists_each_entry_once,
        name_length_limits,
        symlinks,
        hard_links_share_the_inode,
        fifo_passes_bytes,
        rename_file_over_file,
        rename_directories,
        rename_noreplace_and_exchange,
        chmod_chown_utimens,
        pre_epoch_times_keep_their_nanoseconds,
        xattrs_user_and_trusted,
        xattr_namespaces_compare_with_tmpfs,
        statvfs_size_limit_and_enospc,
        eight_threads_in_one_directory,
        new_files_belong_to_the_caller,
        setgid_directory_inheritance_compare_with_tmpfs,
        chmod_chown_utimes_by_non_owner_compare_with_tmpfs,
        chown_and_write_clear_setuid_compare_with_tmpfs,
        supplementary_groups_and_search_permission,
        sticky_directory,
        readdir_inode_numbers_match_stat,
        telldir_seekdir_resume_where_they_were,
        tree_deeper_than_path_max,
        owner_rules_compare_with_tmpfs,
        thousands_of_files_in_one_directory,
        timestamp_effects_compare_with_tmpfs,
    }
}
// memfs only, as plain tests below: root_options_mode_uid_gid (memfs's mode=, uid=,
// gid= options), inode_limit and xattrs_count_against_inode_space_compare_with_tmpfs
// (memfs's inodes= limit; a null layer has its backing fs's limits, not its own).

// ---------------------------------------------------------------------------------
// Files

fn create_write_read_seek(t: &Target) {
    let m = t.mount();
    let p = m.join("file");
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&p)
        .unwrap();
    f.write_all(b"hello, world").unwrap();
    assert_eq!(f.stream_position().unwrap(), 12);
    f.seek(SeekFrom::Start(7)).unwrap();
    let mut buf = [0u8; 5];
    f.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"world");
    // Overwrite in the middle.
    f.seek(SeekFrom::Current(-5)).unwrap();
    f.write_all(b"there").unwrap();
    assert_eq!(f.seek(SeekFrom::End(-2)).unwrap(), 10);
    let mut tail = String::new();
    f.read_to_string(&mut tail).unwrap();
    assert_eq!(tail, "re");
    // At and past the end there is nothing.
    assert_eq!(f.read(&mut buf).unwrap(), 0);
    assert_eq!(f.read_at(&mut buf, 100).unwrap(), 0);
    assert_eq!(errno(f.seek(SeekFrom::Current(-100))), libc::EINVAL);
    drop(f);
    assert_eq!(fs::read(&p).unwrap(), b"hello, there");
    assert_eq!(fs::metadata(&p).unwrap().len(), 12);

    // O_EXCL on an existing file, O_TRUNC, and open without O_CREAT of a missing one.
    assert_eq!(
        errno(OpenOptions::new().write(true).create_new(true).open(&p)),
        libc::EEXIST
    );
    assert_eq!(errno(File::open(m.join("missing"))), libc::ENOENT);
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    assert_eq!(fs::metadata(&p).unwrap().len(), 0);

    // A larger file, written in odd-sized pieces, read back whole.
    let data: Vec<u8> = (0..3 * MIB as usize + 777)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let mut f = File::create(m.join("big")).unwrap();
    for chunk in data.chunks(65_537) {
        f.write_all(chunk).unwrap();
    }
    drop(f);
    assert!(fs::read(m.join("big")).unwrap() == data, "big file differs");
    let f = File::open(m.join("big")).unwrap();
    let mut piece = vec![0u8; 10_000];
    f.read_exact_at(&mut piece, 2 * MIB - 17).unwrap();
    assert!(piece[..] == data[2 * MIB as usize - 17..][..10_000]);
}

fn sparse_file_at_one_gib(t: &Target) {
    let m = t.mount();
    let free_before = nix::sys::statvfs::statvfs(m.path()).unwrap().blocks_free();
    let p = m.join("sparse");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    let at = 1u64 << 30;
    f.write_all_at(b"abc", at).unwrap();
    let st = f.metadata().unwrap();
    assert_eq!(st.len(), at + 3);
    assert!(
        st.blocks() * 512 <= MIB,
        "a 3-byte write at 1 GiB occupies {} blocks",
        st.blocks()
    );
    let free_after = nix::sys::statvfs::statvfs(m.path()).unwrap().blocks_free();
    let frsize = nix::sys::statvfs::statvfs(m.path())
        .unwrap()
        .fragment_size() as u64;
    assert!(
        (free_before.saturating_sub(free_after) as u64) * frsize <= MIB,
        "the hole consumed space: free blocks {free_before} -> {free_after}"
    );
    let mut buf = vec![0xffu8; 65_536];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert!(buf.iter().all(|b| *b == 0), "the hole at 0 is not zeros");
    f.read_exact_at(&mut buf, at / 2).unwrap();
    assert!(
        buf.iter().all(|b| *b == 0),
        "the hole at 512 MiB is not zeros"
    );
    let mut end = [0xffu8; 13];
    f.read_exact_at(&mut end, at - 10).unwrap();
    assert_eq!(&end, b"\0\0\0\0\0\0\0\0\0\0abc");

    // SEEK_DATA / SEEK_HOLE: exact answers (tmpfs: data at 1 GiB, hole at 0) or the
    // generic ones for a file system without hole tracking (data at 0, hole at EOF).
    let fd = f.as_raw_fd();
    // SAFETY: lseek on an open fd.
    let data = unsafe { libc::lseek(fd, 0, libc::SEEK_DATA) };
    // SAFETY: as above.
    let hole = unsafe { libc::lseek(fd, 0, libc::SEEK_HOLE) };
    assert!(
        (data, hole) == (at as i64, 0) || (data, hole) == (0, (at + 3) as i64),
        "SEEK_DATA {data}, SEEK_HOLE {hole}"
    );
    // SAFETY: as above.
    let past = unsafe { libc::lseek(fd, (at + 3) as i64, libc::SEEK_DATA) };
    assert_eq!((past, last_errno()), (-1, libc::ENXIO), "SEEK_DATA at EOF");
    // SAFETY: as above.
    let hole_in_data = unsafe { libc::lseek(fd, at as i64 + 1, libc::SEEK_HOLE) };
    assert_eq!(hole_in_data, (at + 3) as i64, "SEEK_HOLE inside the data");
}

fn truncate_grows_with_zeros_and_shrinking_loses_data(t: &Target) {
    let m = t.mount();
    let p = m.join("t");
    fs::write(&p, b"0123456789").unwrap();
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    f.set_len(100).unwrap();
    assert_eq!(fs::metadata(&p).unwrap().len(), 100);
    let mut expect = b"0123456789".to_vec();
    expect.resize(100, 0);
    assert_eq!(fs::read(&p).unwrap(), expect);
    // Shrink, then grow again: the cut-off bytes must not come back.
    f.set_len(3).unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"012");
    f.set_len(10).unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"012\0\0\0\0\0\0\0");
    // Within a page too, through truncate(2) by path.
    let c = cpath(&p);
    // SAFETY: a valid path.
    assert_eq!(sys(unsafe { libc::truncate(c.as_ptr(), 2) }), 0);
    f.write_all_at(b"X", 5).unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"01\0\0\0X\0\0\0\0"[..6].to_vec());
    // SAFETY: a valid fd.
    assert_eq!(
        sys(unsafe { libc::ftruncate(f.as_raw_fd(), -1) }),
        libc::EINVAL
    );
    assert_eq!(
        errno(fs::OpenOptions::new().write(true).open(m.path()).map(drop)),
        libc::EISDIR
    );
    // Truncating to zero frees the space.
    let big = vec![7u8; 8 * MIB as usize];
    f.write_all_at(&big, 0).unwrap();
    let free_full = nix::sys::statvfs::statvfs(m.path()).unwrap().blocks_free();
    f.set_len(0).unwrap();
    let free_empty = nix::sys::statvfs::statvfs(m.path()).unwrap().blocks_free();
    let frsize = nix::sys::statvfs::statvfs(m.path())
        .unwrap()
        .fragment_size() as u64;
    assert!(
        (free_empty - free_full) as u64 * frsize >= 7 * MIB,
        "truncate to 0 did not free the space: {free_full} -> {free_empty}"
    );
    assert_eq!(fs::metadata(&p).unwrap().blocks(), 0);
}

fn o_append_with_two_fds(t: &Target) {
    let m = t.mount();
    let p = m.join("log");
    fs::write(&p, b"start;").unwrap();
    let open = || OpenOptions::new().append(true).open(&p).unwrap();
    let (mut a, mut b) = (open(), open());
    for i in 0..50 {
        a.write_all(format!("a{i};").as_bytes()).unwrap();
        b.write_all(format!("b{i};").as_bytes()).unwrap();
    }
    // pwrite on an O_APPEND fd appends too (Linux).
    a.write_all_at(b"end", 0).unwrap();
    let mut want = String::from("start;");
    for i in 0..50 {
        want.push_str(&format!("a{i};b{i};"));
    }
    want.push_str("end");
    assert_eq!(fs::read_to_string(&p).unwrap(), want);
}

fn efbig_and_huge_offsets_compare_with_tmpfs(t: &Target) {
    let both = Both::new(t, "", "size=64M");
    let max = i64::MAX;
    let outcome = both.check("pwrite/ftruncate near the largest offset", |root| {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(root.join("huge"))
            .unwrap();
        let fd = f.as_raw_fd();
        let buf = [1u8; 100];
        let pw = |off: i64| {
            // SAFETY: a valid fd and a 100-byte buffer.
            let n = unsafe { libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), off) };
            if n < 0 {
                Err(last_errno())
            } else {
                Ok(n)
            }
        };
        // offset + count overflows loff_t.
        let over = pw(max - 10);
        let size_after_over = f.metadata().unwrap().len();
        // SAFETY: a valid fd.
        let neg = sys(unsafe { libc::ftruncate(fd, -5) });
        vec![
            format!("{over:?}"),
            format!("{size_after_over}"),
            format!("{neg}"),
        ]
    });
    assert_eq!(outcome[0], format!("{:?}", Err::<isize, i32>(libc::EINVAL)));

    // A huge sparse truncate and a write far out: an errno or sparse success, never a
    // dead file system.
    for root in [both.tmpfs.path(), both.fs.path()] {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(root.join("huge2"))
            .unwrap();
        match f.set_len(1 << 60) {
            Ok(()) => {
                let st = f.metadata().unwrap();
                assert_eq!(st.len(), 1 << 60, "{}", root.display());
                assert!(st.blocks() * 512 <= MIB);
                let mut b = [0xffu8; 64];
                f.read_exact_at(&mut b, (1 << 60) - 64).unwrap();
                assert_eq!(b, [0u8; 64], "the end of a 2^60 hole");
            }
            Err(e) => assert!(
                [libc::EFBIG, libc::EINVAL].contains(&errno_of(&e)),
                "ftruncate 2^60: {e}"
            ),
        }
        match f.write_all_at(&[5u8; 100], (max - 100) as u64) {
            Ok(()) => assert_eq!(f.metadata().unwrap().len(), max as u64),
            Err(e) => assert_eq!(errno_of(&e), libc::EFBIG, "pwrite at 2^63-101: {e}"),
        }
        match f.set_len(max as u64) {
            Ok(()) => assert_eq!(f.metadata().unwrap().len(), max as u64),
            Err(e) => assert!([libc::EFBIG, libc::EINVAL].contains(&errno_of(&e))),
        }
        f.set_len(0).unwrap();
        drop(f);
        assert_alive(root);
    }
}

fn unlinked_open_file_stays_usable(t: &Target) {
    let m = t.mount();
    let p = m.join("doomed");
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    f.write_all(&vec![3u8; 8 * MIB as usize]).unwrap();
    let free_full = nix::sys::statvfs::statvfs(m.path()).unwrap().blocks_free();
    fs::remove_file(&p).unwrap();
    assert_eq!(errno(fs::metadata(&p)), libc::ENOENT);
    assert!(!names(m.path()).contains(&"doomed".to_string()));
    assert_eq!(
        f.metadata().unwrap().nlink(),
        0,
        "fstat of an unlinked file"
    );
    // Still readable and writable.
    f.write_all_at(b"still here", 100).unwrap();
    let mut b = [0u8; 10];
    f.read_exact_at(&mut b, 100).unwrap();
    assert_eq!(&b, b"still here");
    f.set_len(200).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 200);
    // The name is free for a new, different file.
    fs::write(&p, b"new").unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"new");
    f.read_exact_at(&mut b, 100).unwrap();
    assert_eq!(&b, b"still here");
    assert_ne!(f.metadata().unwrap().ino(), fs::metadata(&p).unwrap().ino());
    // Its space is given back once the last fd is closed.
    let frsize = nix::sys::statvfs::statvfs(m.path())
        .unwrap()
        .fragment_size() as u64;
    f.set_len(8 * MIB).unwrap();
    f.write_all_at(&vec![4u8; 8 * MIB as usize], 0).unwrap();
    drop(f);
    assert!(
        wait_until(Duration::from_secs(5), || {
            let free = nix::sys::statvfs::statvfs(m.path()).unwrap().blocks_free();
            free.saturating_sub(free_full) as u64 * frsize >= 7 * MIB
        }),
        "the space of an unlinked file was not freed after close"
    );
}

// ---------------------------------------------------------------------------------
// Directories, names, links

fn directories_and_their_errors(t: &Target) {
    let m = t.mount();
    let d = m.join("d");
    fs::create_dir(&d).unwrap();
    assert!(lstat(&d).is_dir());
    assert_eq!(errno(fs::create_dir(&d)), libc::EEXIST);
    assert_eq!(names(&d), Vec::<String>::new());
    fs::write(d.join("f1"), b"1").unwrap();
    fs::write(d.join("f2"), b"2").unwrap();
    fs::create_dir(d.join("sub")).unwrap();
    assert_eq!(names(&d), ["f1", "f2", "sub"]);
    // A directory's link count: 2 + its subdirectories (as tmpfs and ext4).
    assert_eq!(lstat(&d).nlink(), 3);
    fs::create_dir(d.join("sub2")).unwrap();
    assert_eq!(lstat(&d).nlink(), 4);
    fs::remove_dir(d.join("sub2")).unwrap();
    assert_eq!(lstat(&d).nlink(), 3);
    assert_eq!(lstat(&d.join("sub")).nlink(), 2);
    // ".." of sub is d.
    assert_eq!(lstat(&d.join("sub/..")).ino(), lstat(&d).ino());

    assert_eq!(errno(fs::remove_dir(&d)), libc::ENOTEMPTY);
    assert_eq!(errno(fs::remove_dir(d.join("f1"))), libc::ENOTDIR);
    assert_eq!(errno(fs::remove_dir(d.join("nope"))), libc::ENOENT);
    assert_eq!(errno(fs::create_dir(m.join("nope/x"))), libc::ENOENT);
    assert_eq!(errno(File::open(m.join("nope/x"))), libc::ENOENT);
    assert_eq!(errno(fs::write(m.join("nope/x"), b"")), libc::ENOENT);
    // A path through a file.
    assert_eq!(errno(File::open(d.join("f1/x"))), libc::ENOTDIR);
    assert_eq!(errno(fs::create_dir(d.join("f1/x"))), libc::ENOTDIR);
    assert_eq!(errno(fs::metadata(d.join("f1/"))), libc::ENOTDIR);
    assert_eq!(errno(fs::read_dir(d.join("f1"))), libc::ENOTDIR);
    // Directories are not files.
    assert_eq!(
        errno(OpenOptions::new().write(true).open(&d).map(drop)),
        libc::EISDIR
    );
    assert_eq!(errno(fs::remove_file(&d)), libc::EISDIR);
    let c = cpath(&d.join("sub/."));
    // SAFETY: a valid path.
    assert_eq!(sys(unsafe { libc::rmdir(c.as_ptr()) }), libc::EINVAL);

    fs::remove_dir(d.join("sub")).unwrap();
    fs::remove_file(d.join("f1")).unwrap();
    fs::remove_file(d.join("f2")).unwrap();
    fs::remove_dir(&d).unwrap();
    assert_eq!(errno(fs::metadata(&d)), libc::ENOENT);
    assert!(!names(m.path()).contains(&"d".to_string()));
}

fn readdir_of_a_big_directory_lists_each_entry_once(t: &Target) {
    let m = t.mount();
    let d = m.join("big");
    fs::create_dir(&d).unwrap();
    let mut want: Vec<String> = (0..1500)
        .map(|i| format!("entry-{i:05}-{}", "n".repeat(i % 200)))
        .collect();
    for n in &want {
        File::create(d.join(n)).unwrap();
    }
    want.sort();
    assert_eq!(names(&d), want);
    // Deleting while listing: every entry not deleted is still seen exactly once.
    let mut seen = Vec::new();
    for (i, e) in fs::read_dir(&d).unwrap().enumerate() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if i == 10 {
            for n in want.iter().step_by(3) {
                let _ = fs::remove_file(d.join(n));
            }
        }
        seen.push(name);
    }
    let survivors: Vec<&String> = want
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, n)| n)
        .collect();
    for s in &survivors {
        assert_eq!(
            seen.iter().filter(|n| n == s).count(),
            1,
            "{s} seen other than once while deleting"
        );
    }
    assert_eq!(names(&d).len(), survivors.len());
}

fn name_length_limits(t: &Target) {
    let m = t.mount();
    let ok = "n".repeat(255);
    let long = "n".repeat(256);
    fs::write(m.join(&ok), b"x").unwrap();
    assert_eq!(fs::read(m.join(&ok)).unwrap(), b"x");
    assert!(names(m.path()).contains(&ok));
    assert_eq!(errno(fs::write(m.join(&long), b"x")), libc::ENAMETOOLONG);
    assert_eq!(errno(fs::metadata(m.join(&long))), libc::ENAMETOOLONG);
    assert_eq!(errno(fs::create_dir(m.join(&long))), libc::ENAMETOOLONG);
    assert_eq!(
        errno(std::os::unix::fs::symlink("t", m.join(&long))),
        libc::ENAMETOOLONG
    );
    assert_eq!(
        errno(fs::hard_link(m.join(&ok), m.join(&long))),
        libc::ENAMETOOLONG
    );
    assert_eq!(
        errno(fs::rename(m.join(&ok), m.join(&long))),
        libc::ENAMETOOLONG
    );
    let ok_dir = format!("{}d", "d".repeat(254));
    fs::create_dir(m.join(&ok_dir)).unwrap();
    fs::rename(m.join(&ok), m.join(&ok_dir).join(&ok)).unwrap();
    assert!(m.join(&ok_dir).join(&ok).exists());
    let vfs = nix::sys::statvfs::statvfs(m.path()).unwrap();
    assert_eq!(vfs.name_max(), 255);
}

fn symlinks(t: &Target) {
    let m = t.mount();
    fs::write(m.join("target"), b"pointed at").unwrap();
    std::os::unix::fs::symlink("target", m.join("link")).unwrap();
    assert_eq!(
        fs::read_link(m.join("link")).unwrap(),
        PathBuf::from("target")
    );
    assert_eq!(fs::read(m.join("link")).unwrap(), b"pointed at");
    let l = lstat(&m.join("link"));
    assert!(l.file_type().is_symlink());
    assert_eq!(l.len(), 6, "a symlink's size is its target's length");
    assert_eq!(l.mode() & 0o777, 0o777);
    assert!(fs::metadata(m.join("link")).unwrap().is_file());
    assert_eq!(
        errno(std::os::unix::fs::symlink("x", m.join("link"))),
        libc::EEXIST
    );
    // Relative to the link's directory.
    fs::create_dir(m.join("d")).unwrap();
    std::os::unix::fs::symlink("../target", m.join("d/up")).unwrap();
    assert_eq!(fs::read(m.join("d/up")).unwrap(), b"pointed at");
    std::os::unix::fs::symlink("d", m.join("dirlink")).unwrap();
    assert_eq!(names(&m.join("dirlink")), ["up"]);
    // Dangling: lstat works, stat does not; O_CREAT through it creates the target.
    std::os::unix::fs::symlink("made-through-link", m.join("dangling")).unwrap();
    assert_eq!(errno(fs::metadata(m.join("dangling"))), libc::ENOENT);
    assert!(lstat(&m.join("dangling")).file_type().is_symlink());
    fs::write(m.join("dangling"), b"via").unwrap();
    assert_eq!(fs::read(m.join("made-through-link")).unwrap(), b"via");
    // Loops are the kernel's ELOOP.
    std::os::unix::fs::symlink("loop-b", m.join("loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", m.join("loop-b")).unwrap();
    std::os::unix::fs::symlink("self", m.join("self")).unwrap();
    assert_eq!(errno(File::open(m.join("loop-a"))), libc::ELOOP);
    assert_eq!(errno(fs::metadata(m.join("self"))), libc::ELOOP);
    assert_eq!(errno(File::open(m.join("self/x"))), libc::ELOOP);
    // readlink of a non-link.
    assert_eq!(errno(fs::read_link(m.join("target"))), libc::EINVAL);
    // Long targets, up to PATH_MAX - 1.
    let long: String = "abcdefgh/".repeat(455);
    assert_eq!(long.len(), 4095);
    std::os::unix::fs::symlink(&long, m.join("longlink")).unwrap();
    assert_eq!(
        fs::read_link(m.join("longlink")).unwrap(),
        PathBuf::from(&long)
    );
    assert_eq!(lstat(&m.join("longlink")).len(), 4095);
    // O_NOFOLLOW on a link.
    assert_eq!(
        errno(
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(m.join("link"))
        ),
        libc::ELOOP
    );
    // Removing the link leaves the target.
    fs::remove_file(m.join("link")).unwrap();
    assert_eq!(fs::read(m.join("target")).unwrap(), b"pointed at");
}

fn hard_links_share_the_inode(t: &Target) {
    let m = t.mount();
    let (a, b) = (m.join("a"), m.join("b"));
    fs::write(&a, b"shared").unwrap();
    fs::hard_link(&a, &b).unwrap();
    assert_eq!(lstat(&a).nlink(), 2);
    assert_eq!(lstat(&b).nlink(), 2);
    assert_eq!(lstat(&a).ino(), lstat(&b).ino());
    // Data written through one name is there through the other.
    OpenOptions::new()
        .write(true)
        .open(&b)
        .unwrap()
        .write_all_at(b"SH", 0)
        .unwrap();
    assert_eq!(fs::read(&a).unwrap(), b"SHared");
    fs::set_permissions(&a, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(lstat(&b).mode() & 0o777, 0o600);
    fs::create_dir(m.join("d")).unwrap();
    fs::hard_link(&a, m.join("d/c")).unwrap();
    assert_eq!(lstat(&b).nlink(), 3);
    assert_eq!(errno(fs::hard_link(&a, &b)), libc::EEXIST);
    assert_eq!(errno(fs::hard_link(m.join("d"), m.join("dl"))), libc::EPERM);
    assert_eq!(
        errno(fs::hard_link(m.join("nope"), m.join("x"))),
        libc::ENOENT
    );
    fs::remove_file(&a).unwrap();
    assert_eq!(lstat(&b).nlink(), 2);
    assert_eq!(fs::read(m.join("d/c")).unwrap(), b"SHared");
    fs::remove_file(m.join("d/c")).unwrap();
    assert_eq!(lstat(&b).nlink(), 1);
    assert_eq!(fs::read(&b).unwrap(), b"SHared");
    // A link to a symlink is a link to the symlink itself (linkat without FOLLOW).
    std::os::unix::fs::symlink("b", m.join("s")).unwrap();
    fs::hard_link(m.join("s"), m.join("s2")).unwrap();
    assert!(lstat(&m.join("s2")).file_type().is_symlink());
    assert_eq!(lstat(&m.join("s")).nlink(), 2);
}

fn fifo_passes_bytes(t: &Target) {
    let m = t.mount();
    let p = m.join("fifo");
    nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let st = lstat(&p);
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&st.file_type()));
    assert_eq!(st.mode() & 0o777, 0o644);
    assert_eq!(st.len(), 0);
    // No reader yet: a nonblocking writer is refused.
    assert_eq!(
        errno(
            OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&p)
        ),
        libc::ENXIO
    );
    // A nonblocking reader opens at once; a writer then passes bytes to it.
    let reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&p)
        .unwrap();
    let mut w = OpenOptions::new().write(true).open(&p).unwrap();
    w.write_all(b"through the fifo").unwrap();
    let mut buf = [0u8; 64];
    let n = (&reader).read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"through the fifo");
    drop((reader, w));

    // More than a pipe buffer, between two threads that open blocking.
    let c = cpath(&m.join("fifo2"));
    // SAFETY: a valid path.
    assert_eq!(
        sys(unsafe { libc::mknod(c.as_ptr(), libc::S_IFIFO | 0o600, 0) }),
        0
    );
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let (p2, data) = (m.join("fifo2"), payload.clone());
    let writer = std::thread::spawn(move || {
        let mut w = OpenOptions::new().write(true).open(&p2).unwrap();
        w.write_all(&data).unwrap();
    });
    let mut got = Vec::new();
    File::open(m.join("fifo2"))
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    writer.join().unwrap();
    assert!(
        got == payload,
        "{} bytes came through of {}",
        got.len(),
        payload.len()
    );
}

// ---------------------------------------------------------------------------------
// rename

fn rename_file_over_file(t: &Target) {
    let m = t.mount();
    fs::write(m.join("src"), b"source").unwrap();
    fs::write(m.join("dst"), b"old target").unwrap();
    let old = File::open(m.join("dst")).unwrap();
    let src_ino = lstat(&m.join("src")).ino();
    fs::rename(m.join("src"), m.join("dst")).unwrap();
    assert_eq!(fs::read(m.join("dst")).unwrap(), b"source");
    assert_eq!(lstat(&m.join("dst")).ino(), src_ino);
    assert_eq!(errno(fs::metadata(m.join("src"))), libc::ENOENT);
    assert_eq!(names(m.path()), ["dst"]);
    // The replaced file lives on through its open fd.
    let mut s = String::new();
    (&old).read_to_string(&mut s).unwrap();
    assert_eq!(s, "old target");
    assert_eq!(old.metadata().unwrap().nlink(), 0);
    // Renaming onto itself, and between two links of one inode, changes nothing.
    fs::rename(m.join("dst"), m.join("dst")).unwrap();
    fs::hard_link(m.join("dst"), m.join("dst2")).unwrap();
    fs::rename(m.join("dst"), m.join("dst2")).unwrap();
    assert_eq!(names(m.path()), ["dst", "dst2"]);
    assert_eq!(lstat(&m.join("dst")).nlink(), 2);
    assert_eq!(errno(fs::rename(m.join("nope"), m.join("x"))), libc::ENOENT);
    assert_eq!(
        errno(fs::rename(m.join("dst"), m.join("nope/x"))),
        libc::ENOENT
    );
    assert_eq!(
        errno(fs::rename(m.join("dst"), m.join("dst2/x"))),
        libc::ENOTDIR
    );
}

fn rename_directories(t: &Target) {
    let m = t.mount();
    let j = |n: &str| m.join(n);
    for d in ["a", "a/sub", "empty", "full", "p1", "p2"] {
        fs::create_dir(j(d)).unwrap();
    }
    fs::write(j("a/sub/f"), b"deep").unwrap();
    fs::write(j("full/x"), b"").unwrap();
    fs::write(j("file"), b"").unwrap();

    // Over an empty directory: allowed, the source's contents move.
    fs::rename(j("a"), j("empty")).unwrap();
    assert_eq!(fs::read(j("empty/sub/f")).unwrap(), b"deep");
    assert_eq!(errno(fs::metadata(j("a"))), libc::ENOENT);
    // Over a non-empty one: ENOTEMPTY (or EEXIST, which POSIX also allows; Linux
    // file systems say ENOTEMPTY).
    assert_eq!(errno(fs::rename(j("empty"), j("full"))), libc::ENOTEMPTY);
    // File over a directory, directory over a file.
    assert_eq!(errno(fs::rename(j("file"), j("full"))), libc::EISDIR);
    assert_eq!(errno(fs::rename(j("full"), j("file"))), libc::ENOTDIR);
    // Into its own subdirectory.
    assert_eq!(
        errno(fs::rename(j("empty"), j("empty/sub/x"))),
        libc::EINVAL
    );
    assert_eq!(errno(fs::rename(j("empty"), j("empty/x"))), libc::EINVAL);
    // Across parents: link counts of both parents and ".." follow.
    let (n1, n2) = (lstat(&j("p1")).nlink(), lstat(&j("p2")).nlink());
    fs::rename(j("empty"), j("p1/moved")).unwrap();
    assert_eq!(lstat(&j("p1")).nlink(), n1 + 1);
    fs::rename(j("p1/moved"), j("p2/moved")).unwrap();
    assert_eq!(lstat(&j("p1")).nlink(), n1);
    assert_eq!(lstat(&j("p2")).nlink(), n2 + 1);
    assert_eq!(lstat(&j("p2/moved/..")).ino(), lstat(&j("p2")).ino());
    assert_eq!(fs::read(j("p2/moved/sub/f")).unwrap(), b"deep");
    assert_eq!(names(&j("p1")), Vec::<String>::new());
    // The directory that was replaced is gone for good.
    assert_eq!(names(m.path()), ["file", "full", "p1", "p2"]);
}

fn rename_noreplace_and_exchange(t: &Target) {
    let m = t.mount();
    let j = |n: &str| m.join(n);
    fs::write(j("f"), b"file").unwrap();
    fs::write(j("g"), b"other").unwrap();
    fs::create_dir(j("d")).unwrap();
    fs::write(j("d/inside"), b"in d").unwrap();

    assert_eq!(
        rename2(&j("f"), &j("g"), libc::RENAME_NOREPLACE),
        libc::EEXIST
    );
    assert_eq!(fs::read(j("g")).unwrap(), b"other");
    assert_eq!(
        rename2(&j("f"), &j("d"), libc::RENAME_NOREPLACE),
        libc::EEXIST
    );
    assert_eq!(rename2(&j("f"), &j("h"), libc::RENAME_NOREPLACE), 0);
    assert_eq!(fs::read(j("h")).unwrap(), b"file");
    assert_eq!(errno(fs::metadata(j("f"))), libc::ENOENT);

    // Swap a file and a directory.
    let (h_ino, d_ino) = (lstat(&j("h")).ino(), lstat(&j("d")).ino());
    assert_eq!(rename2(&j("h"), &j("d"), libc::RENAME_EXCHANGE), 0);
    assert!(lstat(&j("h")).is_dir());
    assert_eq!(lstat(&j("h")).ino(), d_ino);
    assert_eq!(lstat(&j("d")).ino(), h_ino);
    assert_eq!(fs::read(j("d")).unwrap(), b"file");
    assert_eq!(fs::read(j("h/inside")).unwrap(), b"in d");
    // Swap two files across directories.
    fs::write(j("h/two"), b"two").unwrap();
    assert_eq!(rename2(&j("g"), &j("h/two"), libc::RENAME_EXCHANGE), 0);
    assert_eq!(fs::read(j("g")).unwrap(), b"two");
    assert_eq!(fs::read(j("h/two")).unwrap(), b"other");
    // Exchange needs both names.
    assert_eq!(
        rename2(&j("g"), &j("missing"), libc::RENAME_EXCHANGE),
        libc::ENOENT
    );
    assert_eq!(
        rename2(
            &j("g"),
            &j("h"),
            libc::RENAME_EXCHANGE | libc::RENAME_NOREPLACE
        ),
        libc::EINVAL
    );
    assert_eq!(names(m.path()), ["d", "g", "h"]);
    // A directory swapped to another parent gets that parent as "..".
    fs::create_dir(j("h/sub")).unwrap();
    let root_links = lstat(m.path()).nlink();
    assert_eq!(lstat(&j("h")).nlink(), 3);
    assert_eq!(rename2(&j("g"), &j("h/sub"), libc::RENAME_EXCHANGE), 0);
    assert!(lstat(&j("g")).is_dir() && lstat(&j("h/sub")).is_file());
    assert_eq!(lstat(&j("g/..")).ino(), lstat(m.path()).ino());
    assert_eq!(
        lstat(&j("h")).nlink(),
        2,
        "h's links once its subdir became a file"
    );
    assert_eq!(
        lstat(m.path()).nlink(),
        root_links + 1,
        "root's links once g became a dir"
    );
}

// ---------------------------------------------------------------------------------
// Attributes

fn chmod_chown_utimens(t: &Target) {
    let m = t.mount();
    let p = m.join("f");
    fs::write(&p, b"x").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(lstat(&p).mode(), libc::S_IFREG | 0o640);
    fs::set_permissions(&p, fs::Permissions::from_mode(0o7777)).unwrap();
    assert_eq!(lstat(&p).mode() & 0o7777, 0o7777);
    std::os::unix::fs::chown(&p, Some(1234), Some(5678)).unwrap();
    assert_eq!((lstat(&p).uid(), lstat(&p).gid()), (1234, 5678));
    std::os::unix::fs::chown(&p, None, Some(42)).unwrap();
    assert_eq!((lstat(&p).uid(), lstat(&p).gid()), (1234, 42));
    // lchown on a symlink changes the link.
    std::os::unix::fs::symlink("f", m.join("l")).unwrap();
    std::os::unix::fs::lchown(m.join("l"), Some(7), Some(8)).unwrap();
    assert_eq!((lstat(&m.join("l")).uid(), lstat(&p).uid()), (7, 1234));

    // Exact times, nanoseconds included.
    assert_eq!(
        utimens(
            &p,
            ts(1_000_000_000, 123_456_789),
            ts(1_100_000_000, 987_654_321)
        ),
        0
    );
    let st = lstat(&p);
    assert_eq!((st.atime(), st.atime_nsec()), (1_000_000_000, 123_456_789));
    assert_eq!((st.mtime(), st.mtime_nsec()), (1_100_000_000, 987_654_321));
    // UTIME_NOW for atime, UTIME_OMIT for mtime.
    assert_eq!(utimens(&p, now(), omit()), 0);
    let st = lstat(&p);
    assert!((st.atime() - unix_now()).abs() <= 5, "atime {}", st.atime());
    assert_eq!((st.mtime(), st.mtime_nsec()), (1_100_000_000, 987_654_321));
    // And the other way round.
    assert_eq!(utimens(&p, ts(500, 5), ts(600, 6)), 0);
    assert_eq!(utimens(&p, omit(), now()), 0);
    let st = lstat(&p);
    assert_eq!((st.atime(), st.atime_nsec()), (500, 5));
    assert!((st.mtime() - unix_now()).abs() <= 5, "mtime {}", st.mtime());
    // Both omitted: nothing changes.
    assert_eq!(utimens(&p, omit(), omit()), 0);
    assert_eq!(lstat(&p).atime(), 500);
    // Writing updates mtime and ctime; chmod updates ctime.
    assert_eq!(utimens(&p, ts(100, 0), ts(100, 0)), 0);
    OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .write_all(b"y")
        .unwrap();
    let st = lstat(&p);
    assert!(st.mtime() > 100, "write left mtime at {}", st.mtime());
    assert!((st.ctime() - unix_now()).abs() <= 5);
    // Creating and removing entries updates the directory's mtime.
    let d = m.join("d");
    fs::create_dir(&d).unwrap();
    for change in ["create", "unlink", "rename"] {
        assert_eq!(utimens(&d, ts(100, 0), ts(100, 0)), 0);
        match change {
            "create" => fs::write(d.join("e"), b"").unwrap(),
            "unlink" => fs::remove_file(d.join("e")).unwrap(),
            _ => fs::rename(&p, d.join("moved")).unwrap(),
        }
        let st = lstat(&d);
        assert!(
            st.mtime() > 100,
            "{change} left the directory's mtime at 100"
        );
        assert!(st.ctime() > 100, "{change} left the directory's ctime");
    }
}

/// Times before 1970 with nanoseconds: (-1 s, +500 ns) is 0.9999995 s before the epoch.
/// Known failure (fuser 0.18's `system_time_from_time` subtracts the nanoseconds
/// instead of adding them, so memfs stores (-2 s, 999999500 ns)).
fn pre_epoch_times_keep_their_nanoseconds(t: &Target) {
    let m = t.mount();
    let p = m.join("old");
    fs::write(&p, b"x").unwrap();
    assert_eq!(utimens(&p, ts(-86_400, 0), ts(-5, 0)), 0);
    assert_eq!((lstat(&p).atime(), lstat(&p).mtime()), (-86_400, -5));
    assert_eq!(utimens(&p, ts(-3, 999_999_999), ts(-1, 500)), 0);
    let st = lstat(&p);
    assert_eq!((st.atime(), st.atime_nsec()), (-3, 999_999_999), "atime");
    assert_eq!((st.mtime(), st.mtime_nsec()), (-1, 500), "mtime");
}

#[test]
fn root_options_mode_uid_gid() {
    puffs_tests::require_fuse!();
    let m = Mounted::new("memfs", "mode=0750,uid=1000,gid=50");
    let st = lstat(m.path());
    assert_eq!(st.mode(), libc::S_IFDIR | 0o750);
    assert_eq!((st.uid(), st.gid()), (1000, 50));
    let r = Mounted::new("memfs", "ro");
    assert_eq!(errno(fs::write(r.join("x"), b"")), libc::EROFS);
    assert_eq!(errno(fs::create_dir(r.join("d"))), libc::EROFS);
}

fn xattrs_user_and_trusted(t: &Target) {
    let m = t.mount();
    let p = m.join("f");
    fs::write(&p, b"").unwrap();
    assert_eq!(listx(&p), Ok(vec![]));
    assert_eq!(getx(&p, "user.none"), Err(libc::ENODATA));
    assert_eq!(setx(&p, "user.color", b"blue", 0), 0);
    assert_eq!(setx(&p, "trusted.secret", b"\0binary\xff", 0), 0);
    assert_eq!(setx(&p, "user.empty", b"", 0), 0);
    assert_eq!(getx(&p, "user.color"), Ok(b"blue".to_vec()));
    assert_eq!(getx(&p, "trusted.secret"), Ok(b"\0binary\xff".to_vec()));
    assert_eq!(getx(&p, "user.empty"), Ok(vec![]));
    assert_eq!(
        listx(&p),
        Ok(vec![
            "trusted.secret".to_string(),
            "user.color".into(),
            "user.empty".into()
        ])
    );
    // The size query and a buffer too small.
    assert_eq!(getx_sized(&p, "user.color", 0), Ok(4));
    assert_eq!(getx_sized(&p, "user.color", 3), Err(libc::ERANGE));
    // Flags.
    assert_eq!(
        setx(&p, "user.color", b"red", libc::XATTR_CREATE),
        libc::EEXIST
    );
    assert_eq!(getx(&p, "user.color"), Ok(b"blue".to_vec()));
    assert_eq!(
        setx(&p, "user.shape", b"round", libc::XATTR_REPLACE),
        libc::ENODATA
    );
    assert_eq!(getx(&p, "user.shape"), Err(libc::ENODATA));
    assert_eq!(setx(&p, "user.color", b"green!", libc::XATTR_REPLACE), 0);
    assert_eq!(getx(&p, "user.color"), Ok(b"green!".to_vec()));
    assert_eq!(setx(&p, "user.color", b"re", 0), 0);
    assert_eq!(getx(&p, "user.color"), Ok(b"re".to_vec()));
    // A large value (the kernel allows 64 KiB).
    let big: Vec<u8> = (0..65_536u32).map(|i| (i % 256) as u8).collect();
    assert_eq!(setx(&p, "user.big", &big, 0), 0);
    assert_eq!(getx(&p, "user.big"), Ok(big));
    // Remove.
    assert_eq!(removex(&p, "user.color"), 0);
    assert_eq!(removex(&p, "user.color"), libc::ENODATA);
    assert_eq!(removex(&p, "user.big"), 0);
    assert_eq!(getx(&p, "user.color"), Err(libc::ENODATA));
    assert_eq!(
        listx(&p),
        Ok(vec!["trusted.secret".to_string(), "user.empty".into()])
    );
    // They follow the inode: through a hard link and across rename.
    fs::hard_link(&p, m.join("g")).unwrap();
    assert_eq!(
        getx(&m.join("g"), "trusted.secret"),
        Ok(b"\0binary\xff".to_vec())
    );
    fs::rename(&p, m.join("h")).unwrap();
    assert_eq!(getx(&m.join("h"), "user.empty"), Ok(vec![]));
    // Directories have them too; a symlink may not have user.* ones (EPERM).
    fs::create_dir(m.join("d")).unwrap();
    assert_eq!(setx(&m.join("d"), "user.dir", b"yes", 0), 0);
    assert_eq!(getx(&m.join("d"), "user.dir"), Ok(b"yes".to_vec()));
    std::os::unix::fs::symlink("h", m.join("s")).unwrap();
    assert_eq!(lsetx(&m.join("s"), "user.x", b"1"), libc::EPERM);
    // Missing file.
    assert_eq!(getx(&m.join("missing"), "user.x"), Err(libc::ENOENT));
}

fn xattr_namespaces_compare_with_tmpfs(t: &Target) {
    let both = Both::new(t, "", "size=64M");
    let got = both.check("xattr namespaces", |root| {
        let p = root.join("ns");
        fs::write(&p, b"").unwrap();
        vec![
            setx(&p, "bogus.name", b"1", 0),
            setx(&p, "user.", b"1", 0),
            getx(&p, "bogus.name").err().unwrap_or(0),
            setx(&p, "trusted.ok", b"1", 0),
        ]
    });
    assert_eq!(got, [libc::EOPNOTSUPP, libc::EINVAL, libc::EOPNOTSUPP, 0]);
}

// ---------------------------------------------------------------------------------
// Limits

fn statvfs_size_limit_and_enospc(t: &Target) {
    let m = t.mount();
    let vfs = nix::sys::statvfs::statvfs(m.path()).unwrap();
    let total = vfs.blocks() as u64 * vfs.fragment_size() as u64;
    assert!(
        (60 * MIB..=68 * MIB).contains(&total),
        "statvfs says {total} bytes for size=64M"
    );
    assert!(vfs.blocks_free() <= vfs.blocks());
    assert!(vfs.blocks_available() <= vfs.blocks_free());

    let chunk = vec![0x5au8; MIB as usize];
    let write_until_full = |name: &str, limit: u64| -> (u64, Option<i32>) {
        let mut f = File::create(m.join(name)).unwrap();
        let mut written = 0u64;
        while written < limit {
            match f.write(&chunk) {
                Ok(0) => return (written, Some(0)),
                Ok(n) => written += n as u64,
                Err(e) => return (written, Some(errno_of(&e))),
            }
        }
        (written, None)
    };
    let (written, err) = write_until_full("fill", 80 * MIB);
    assert_eq!(err, Some(libc::ENOSPC), "after {written} bytes");
    assert!(
        (56 * MIB..=64 * MIB).contains(&written),
        "ENOSPC after {written} bytes of a 64 MiB file system"
    );
    let vfs = nix::sys::statvfs::statvfs(m.path()).unwrap();
    assert!(
        vfs.blocks_available() as u64 * (vfs.fragment_size() as u64) < MIB,
        "a full fs reports {} blocks available",
        vfs.blocks_available()
    );
    // Writing into a full fs fails, other operations still work.
    assert_eq!(
        errno(fs::write(m.join("more"), &chunk[..4096])),
        libc::ENOSPC
    );
    assert_eq!(fs::metadata(m.join("fill")).unwrap().len(), written);
    // Free the space: writing works again.
    fs::remove_file(m.join("fill")).unwrap();
    let _ = fs::remove_file(m.join("more"));
    assert!(wait_until(Duration::from_secs(5), || {
        let v = nix::sys::statvfs::statvfs(m.path()).unwrap();
        v.blocks_available() as u64 * v.fragment_size() as u64 >= 56 * MIB
    }));
    let (again, err) = write_until_full("again", 20 * MIB);
    assert_eq!((again, err), (20 * MIB, None));
    assert_eq!(fs::read(m.join("again")).unwrap().len() as u64, 20 * MIB);
    assert_alive(m.path());
}

#[test]
fn inode_limit() {
    puffs_tests::require_fuse!();
    let m = Mounted::new("memfs", "inodes=100");
    let vfs = nix::sys::statvfs::statvfs(m.path()).unwrap();
    assert_eq!(vfs.files(), 100, "f_files for inodes=100");
    let free0 = vfs.files_free();
    File::create(m.join("first")).unwrap();
    assert_eq!(
        nix::sys::statvfs::statvfs(m.path()).unwrap().files_free(),
        free0 - 1
    );
    let mut made = 1;
    let err = loop {
        match File::create(m.join(&format!("f{made}"))) {
            Ok(_) => made += 1,
            Err(e) => break errno_of(&e),
        }
        assert!(made <= 200, "inodes=100 let 200 files be made");
    };
    assert_eq!(err, libc::ENOSPC);
    assert!((95..=100).contains(&made), "{made} files before ENOSPC");
    assert_eq!(errno(fs::create_dir(m.join("dir"))), libc::ENOSPC);
    assert_eq!(
        errno(std::os::unix::fs::symlink("x", m.join("sym"))),
        libc::ENOSPC
    );
    // Freeing one lets one more in.
    fs::remove_file(m.join("f1")).unwrap();
    assert!(wait_until(Duration::from_secs(5), || File::create(
        m.join("again")
    )
    .is_ok()));
    assert_eq!(errno(File::create(m.join("again2"))), libc::ENOSPC);
}

// ---------------------------------------------------------------------------------
// Concurrency and mmap

fn eight_threads_in_one_directory(t: &Target) {
    let m = t.mount();
    let dir = m.join("shared");
    fs::create_dir(&dir).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                for i in 0..200 {
                    let name = dir.join(format!("t{t}-{i}"));
                    let data = format!("thread {t} file {i} {}", "z".repeat(i * 13));
                    fs::write(&name, &data).unwrap();
                    assert_eq!(fs::read_to_string(&name).unwrap(), data, "t{t}-{i}");
                    let renamed = dir.join(format!("r{t}-{i}"));
                    fs::rename(&name, &renamed).unwrap();
                    assert_eq!(errno(fs::metadata(&name)), libc::ENOENT);
                    if i % 2 == 0 {
                        fs::remove_file(&renamed).unwrap();
                    } else {
                        assert_eq!(fs::read_to_string(&renamed).unwrap(), data);
                        kept.push(format!("r{t}-{i}"));
                    }
                }
                kept
            })
        })
        .collect();
    let mut want: Vec<String> = threads
        .into_iter()
        .flat_map(|h| h.join().expect("a worker thread failed"))
        .collect();
    want.sort();
    assert_eq!(want.len(), 800);
    assert_eq!(names(&dir), want);
    assert_eq!(lstat(&dir).nlink(), 2);
}

fn mmap_read_and_shared_write(t: &Target) {
    let m = t.mount();
    let p = m.join("mapped");
    let page = 4096usize;
    let len = 3 * page + 100;
    let data: Vec<u8> = (0..len).map(|i| (i % 241) as u8).collect();
    fs::write(&p, &data).unwrap();
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    // SAFETY: a fresh shared mapping of an open file, used only within this test
    // while the file stays at least `len` bytes long, and unmapped below.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(
        addr,
        libc::MAP_FAILED,
        "mmap: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the mapping is `len` bytes and no one else aliases it mutably.
    let map = unsafe { std::slice::from_raw_parts_mut(addr.cast::<u8>(), len) };
    assert!(
        map[..] == data[..],
        "mapping shows other bytes than the file"
    );
    map[10..20].copy_from_slice(b"MAPPED-IN!");
    map[2 * page..2 * page + 4].copy_from_slice(b"PAGE");
    // SAFETY: the mapping is ours and `len` long.
    assert_eq!(sys(unsafe { libc::msync(addr, len, libc::MS_SYNC) }), 0);
    // SAFETY: as above; the slice is not used after this.
    assert_eq!(sys(unsafe { libc::munmap(addr, len) }), 0);
    let mut want = data.clone();
    want[10..20].copy_from_slice(b"MAPPED-IN!");
    want[2 * page..2 * page + 4].copy_from_slice(b"PAGE");
    assert!(fs::read(&p).unwrap() == want, "read() after msync differs");
    // Drop the cached pages, so the next read asks memfs itself.
    // SAFETY: a valid fd.
    assert_eq!(
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) },
        0
    );
    drop(f);
    assert!(
        fs::read(&p).unwrap() == want,
        "memfs did not get the mapped writes"
    );
    assert_eq!(fs::metadata(&p).unwrap().len(), len as u64);
    // A write through write() shows in a new mapping.
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    f.write_all_at(b"WRITTEN", 3 * page as u64).unwrap();
    // SAFETY: a fresh private read-only mapping, unmapped below.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(addr, libc::MAP_FAILED);
    // SAFETY: the mapping is `len` bytes.
    let map = unsafe { std::slice::from_raw_parts(addr.cast::<u8>(), len) };
    assert_eq!(&map[3 * page..3 * page + 7], b"WRITTEN");
    // SAFETY: ours, `len` long; the slice is not used after this.
    assert_eq!(sys(unsafe { libc::munmap(addr, len) }), 0);
}

// ---------------------------------------------------------------------------------
// Ownership and permissions (forked children with other credentials)

/// A 0777 directory `name` under `root`, for other users to work in.
fn public_dir(root: &Path, name: &str, mode: u32) -> PathBuf {
    let d = root.join(name);
    fs::create_dir(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(mode)).unwrap();
    d
}

/// creat(path, mode) in the child: 0 or the errno.
fn child_create(path: &CString, mode: libc::mode_t) -> i32 {
    // SAFETY: a valid path.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_EXCL,
            mode,
        )
    };
    if fd < 0 {
        return last_errno();
    }
    // SAFETY: fd was just opened.
    unsafe { libc::close(fd) };
    0
}

fn new_files_belong_to_the_caller(t: &Target) {
    let m = t.mount_with("allow_other");
    let d = public_dir(m.path(), "pub", 0o777);
    let (f, sub, sym, fifo) = (
        cpath(&d.join("file")),
        cpath(&d.join("sub")),
        cpath(&d.join("sym")),
        cpath(&d.join("fifo")),
    );
    let target = cstr("file");
    let code = run_as(1000, 1000, &[], || {
        let r = child_create(&f, 0o644);
        if r != 0 {
            return r;
        }
        // SAFETY: valid paths.
        unsafe {
            if libc::mkdir(sub.as_ptr(), 0o755) != 0
                || libc::symlink(target.as_ptr(), sym.as_ptr()) != 0
                || libc::mkfifo(fifo.as_ptr(), 0o600) != 0
            {
                return last_errno();
            }
        }
        0
    });
    assert_eq!(code, 0, "the child failed with errno {code}");
    for n in ["file", "sub", "sym", "fifo"] {
        let st = lstat(&d.join(n));
        assert_eq!((st.uid(), st.gid()), (1000, 1000), "owner of {n}");
    }
    assert_eq!(lstat(&d.join("file")).mode() & 0o7777, 0o644);
    assert_eq!(lstat(&d.join("sub")).mode() & 0o7777, 0o755);
}

fn setgid_directory_inheritance_compare_with_tmpfs(t: &Target) {
    let both = Both::new(t, "allow_other", "size=64M");
    let got = both.check("set-gid directory", |root| {
        let d = public_dir(root, "sg", 0o777);
        std::os::unix::fs::chown(&d, Some(0), Some(50)).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o2777)).unwrap();
        let (f, sub, g) = (
            cpath(&d.join("f")),
            cpath(&d.join("sub")),
            cpath(&d.join("g")),
        );
        let code = run_as(1000, 1000, &[], || {
            let r = child_create(&f, 0o644);
            if r != 0 {
                return r;
            }
            // SAFETY: a valid path.
            if unsafe { libc::mkdir(sub.as_ptr(), 0o755) } != 0 {
                return last_errno();
            }
            // Asking for set-gid on a file of a group we are not in.
            child_create(&g, 0o2755)
        });
        let st = |n: &str| {
            let s = lstat(&d.join(n));
            (s.uid(), s.gid(), s.mode() & 0o7777)
        };
        (code, st("f"), st("sub"), st("g"))
    });
    assert_eq!(got.0, 0);
    assert_eq!(got.1, (1000, 50, 0o644), "file in a set-gid dir");
    assert_eq!(got.2, (1000, 50, 0o2755), "subdirectory of a set-gid dir");
    assert_eq!(got.3 .1, 50);
}

fn chmod_chown_utimes_by_non_owner_compare_with_tmpfs(t: &Target) {
    let both = Both::new(t, "allow_other", "size=64M");
    let got = both.check("attribute changes by a non-owner", |root| {
        let d = public_dir(root, "pub", 0o777);
        let (mine, theirs_rw, theirs_ro) = (d.join("mine"), d.join("rw"), d.join("ro"));
        for (p, mode) in [(&mine, 0o644), (&theirs_rw, 0o666), (&theirs_ro, 0o644)] {
            fs::write(p, b"x").unwrap();
            fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
        }
        std::os::unix::fs::chown(&mine, Some(1000), Some(1000)).unwrap();
        let (mine, rw, ro) = (cpath(&mine), cpath(&theirs_rw), cpath(&theirs_ro));
        let mut results = Vec::new();
        for step in 0..7 {
            let code = run_as(1000, 1000, &[], || {
                let set = [ts(1000, 0), ts(1000, 0)];
                let now2 = [now(), now()];
                // SAFETY: valid paths and timespec arrays.
                let r = unsafe {
                    match step {
                        0 => libc::chmod(ro.as_ptr(), 0o777),
                        1 => libc::chown(ro.as_ptr(), 1000, 1000),
                        2 => libc::utimensat(libc::AT_FDCWD, rw.as_ptr(), set.as_ptr(), 0),
                        3 => libc::utimensat(libc::AT_FDCWD, rw.as_ptr(), now2.as_ptr(), 0),
                        4 => libc::utimensat(libc::AT_FDCWD, ro.as_ptr(), now2.as_ptr(), 0),
                        5 => libc::chmod(mine.as_ptr(), 0o600),
                        // An owner may not give a file to someone else.
                        _ => libc::chown(mine.as_ptr(), 1001, 1000),
                    }
                };
                sys(r)
            });
            results.push(code);
        }
        results
    });
    assert_eq!(
        got,
        [
            libc::EPERM,
            libc::EPERM,
            libc::EPERM,
            0,
            libc::EACCES,
            0,
            libc::EPERM
        ]
    );
}

fn chown_and_write_clear_setuid_compare_with_tmpfs(t: &Target) {
    let both = Both::new(t, "allow_other", "size=64M");
    let got = both.check("set-uid cleared", |root| {
        let d = public_dir(root, "pub", 0o777);
        let mode = |p: &Path| lstat(p).mode() & 0o7777;
        let a = d.join("a");
        fs::write(&a, b"x").unwrap();
        fs::set_permissions(&a, fs::Permissions::from_mode(0o6755)).unwrap();
        std::os::unix::fs::chown(&a, Some(1000), Some(1000)).unwrap();
        let after_chown = mode(&a);
        // A write by a non-owner (a world-writable set-uid file).
        let b = d.join("b");
        fs::write(&b, b"x").unwrap();
        fs::set_permissions(&b, fs::Permissions::from_mode(0o4777)).unwrap();
        let bc = cpath(&b);
        let code = run_as(1001, 1001, &[], || {
            // SAFETY: a valid path; the fd is closed before returning.
            unsafe {
                let fd = libc::open(bc.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return last_errno();
                }
                let n = libc::write(fd, b"y".as_ptr().cast(), 1);
                libc::close(fd);
                if n != 1 {
                    return 99;
                }
            }
            0
        });
        // A directory keeps its set-gid bit across chown.
        let sd = d.join("sd");
        fs::create_dir(&sd).unwrap();
        fs::set_permissions(&sd, fs::Permissions::from_mode(0o2755)).unwrap();
        std::os::unix::fs::chown(&sd, Some(1000), Some(1000)).unwrap();
        (after_chown, code, mode(&b), mode(&sd))
    });
    assert_eq!(got.0, 0o755, "chown of a 6755 file");
    assert_eq!(got.1, 0);
    assert_eq!(got.2, 0o777, "write by a non-owner");
}

fn supplementary_groups_and_search_permission(t: &Target) {
    let m = t.mount_with("allow_other");
    let d = public_dir(m.path(), "pub", 0o755);
    let g = d.join("group-file");
    fs::write(&g, b"for group 50").unwrap();
    std::os::unix::fs::chown(&g, Some(0), Some(50)).unwrap();
    fs::set_permissions(&g, fs::Permissions::from_mode(0o640)).unwrap();
    let priv_dir = public_dir(m.path(), "private", 0o700);
    fs::write(priv_dir.join("x"), b"").unwrap();
    let (gc, px) = (cpath(&g), cpath(&priv_dir.join("x")));

    let read_it = || {
        // SAFETY: a valid path; the fd is closed before returning.
        unsafe {
            let fd = libc::open(gc.as_ptr(), libc::O_RDONLY);
            if fd < 0 {
                return last_errno();
            }
            let mut buf = [0u8; 32];
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            libc::close(fd);
            if n != 12 || &buf[..12] != b"for group 50" {
                return 99;
            }
            0
        }
    };
    let write_it = || {
        // SAFETY: a valid path.
        unsafe {
            let fd = libc::open(gc.as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return last_errno();
            }
            libc::close(fd);
            0
        }
    };
    assert_eq!(
        run_as(1000, 1000, &[50], read_it),
        0,
        "member of group 50 reading"
    );
    assert_eq!(
        run_as(1000, 1000, &[], read_it),
        libc::EACCES,
        "non-member reading"
    );
    assert_eq!(
        run_as(1000, 50, &[], read_it),
        0,
        "primary group 50 reading"
    );
    assert_eq!(
        run_as(1000, 1000, &[50], write_it),
        libc::EACCES,
        "0640 has no group write"
    );
    let stat_x = || {
        // SAFETY: a valid path and a zeroed stat buffer.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            sys(libc::stat(px.as_ptr(), &mut st))
        }
    };
    assert_eq!(
        run_as(1000, 1000, &[], stat_x),
        libc::EACCES,
        "through a 0700 dir"
    );
    assert_eq!(stat_x(), 0, "root may");
}

fn sticky_directory(t: &Target) {
    let m = t.mount_with("allow_other");
    let st = public_dir(m.path(), "sticky", 0o1777);
    assert_eq!(lstat(&st).mode() & 0o7777, 0o1777);
    let plain = public_dir(m.path(), "plain", 0o777);
    let (sf, sr, pf) = (
        cpath(&st.join("f1000")),
        cpath(&st.join("renamed")),
        cpath(&plain.join("f1000")),
    );
    assert_eq!(run_as(1000, 1000, &[], || child_create(&sf, 0o666)), 0);
    assert_eq!(run_as(1000, 1000, &[], || child_create(&pf, 0o666)), 0);
    // SAFETY (all closures below): valid paths.
    let unlink_sf = || sys(unsafe { libc::unlink(sf.as_ptr()) });
    let rename_sf = || sys(unsafe { libc::rename(sf.as_ptr(), sr.as_ptr()) });
    assert_eq!(
        run_as(1001, 1001, &[], unlink_sf),
        libc::EPERM,
        "unlink in a sticky dir"
    );
    assert_eq!(
        run_as(1001, 1001, &[], rename_sf),
        libc::EPERM,
        "rename in a sticky dir"
    );
    assert!(st.join("f1000").exists());
    // Without the sticky bit anyone with write permission on the directory may.
    assert_eq!(
        run_as(1001, 1001, &[], || sys(unsafe {
            libc::unlink(pf.as_ptr())
        })),
        0
    );
    assert!(!plain.join("f1000").exists());
    // The owner may.
    assert_eq!(run_as(1000, 1000, &[], unlink_sf), 0);
    assert!(!st.join("f1000").exists());
}

// ---------------------------------------------------------------------------------
// More: directory streams, atomic appends, deep trees, fallocate, copies, owners

/// All entries of a directory as (name, d_ino) through opendir/readdir, "." and ".."
/// included.
fn raw_entries(dir: &Path) -> Vec<(String, u64)> {
    let c = cpath(dir);
    // SAFETY: a valid path; the stream is closed below.
    let d = unsafe { libc::opendir(c.as_ptr()) };
    assert!(!d.is_null(), "opendir {}: {}", dir.display(), last_errno());
    let mut out = Vec::new();
    loop {
        // SAFETY: d is an open stream; the entry is read before the next call.
        let e = unsafe { libc::readdir64(d) };
        if e.is_null() {
            break;
        }
        // SAFETY: readdir returned a valid entry with a NUL-terminated name.
        let (name, ino) = unsafe {
            (
                std::ffi::CStr::from_ptr((*e).d_name.as_ptr())
                    .to_string_lossy()
                    .into_owned(),
                (*e).d_ino,
            )
        };
        out.push((name, ino));
    }
    // SAFETY: d is open and not used after this.
    unsafe { libc::closedir(d) };
    out
}

/// Each entry of `dir` as (name, d_ino), read by seekdir to the position telldir gave
/// before it, in a fresh stream each.
fn entries_from_each_mark(dir: &Path) -> Vec<(String, u64)> {
    let c = cpath(dir);
    let mut out = Vec::new();
    for i in 0.. {
        // SAFETY: a valid path; each stream is closed before the next, and entries
        // are read before the next call on their stream.
        unsafe {
            let d = libc::opendir(c.as_ptr());
            assert!(!d.is_null(), "opendir {}: {}", dir.display(), last_errno());
            for _ in 0..i {
                assert!(!libc::readdir64(d).is_null());
            }
            let mark = libc::telldir(d);
            libc::closedir(d);
            let d = libc::opendir(c.as_ptr());
            assert!(!d.is_null());
            libc::seekdir(d, mark);
            let e = libc::readdir64(d);
            if e.is_null() {
                libc::closedir(d);
                return out;
            }
            let name = std::ffi::CStr::from_ptr((*e).d_name.as_ptr());
            out.push((name.to_string_lossy().into_owned(), (*e).d_ino));
            libc::closedir(d);
        }
    }
    out
}

fn readdir_inode_numbers_match_stat(t: &Target) {
    let m = t.mount();
    let d = m.join("d");
    fs::create_dir(&d).unwrap();
    fs::create_dir(d.join("sub")).unwrap();
    fs::write(d.join("file"), b"").unwrap();
    fs::hard_link(d.join("file"), d.join("link")).unwrap();
    std::os::unix::fs::symlink("file", d.join("sym")).unwrap();
    let entries = raw_entries(&d);
    let mut got: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    got.sort();
    assert_eq!(got, [".", "..", "file", "link", "sub", "sym"]);
    for (name, ino) in &entries {
        let want = lstat(&d.join(name)).ino();
        assert_eq!(*ino, want, "d_ino of {name:?} differs from st_ino");
    }
    // Read again from each entry's place (a stream that does not start at 0: FUSE's
    // plain READDIR rather than READDIRPLUS), the same entries come back.
    assert_eq!(entries_from_each_mark(&d), entries);
    // The same for the root, whose ".." is itself as far as the mount goes.
    let root_ino = lstat(m.path()).ino();
    let dot = raw_entries(m.path())
        .into_iter()
        .find(|(n, _)| n == ".")
        .unwrap();
    assert_eq!(dot.1, root_ino);
}

fn telldir_seekdir_resume_where_they_were(t: &Target) {
    let m = t.mount();
    let d = m.join("d");
    fs::create_dir(&d).unwrap();
    for i in 0..300 {
        fs::write(d.join(format!("file-{i:03}-{}", "x".repeat(i % 90))), b"").unwrap();
    }
    let c = cpath(&d);
    // SAFETY: a valid path; the stream is closed below and used only here.
    unsafe {
        let dir = libc::opendir(c.as_ptr());
        assert!(!dir.is_null());
        let mut marks = Vec::new();
        let mut names = Vec::new();
        loop {
            let pos = libc::telldir(dir);
            let e = libc::readdir64(dir);
            if e.is_null() {
                break;
            }
            marks.push(pos);
            names.push(
                std::ffi::CStr::from_ptr((*e).d_name.as_ptr())
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        assert_eq!(names.len(), 302);
        for i in [250usize, 0, 7, 151, 301, 100] {
            libc::seekdir(dir, marks[i]);
            let e = libc::readdir64(dir);
            assert!(!e.is_null(), "nothing after seekdir to entry {i}");
            let name = std::ffi::CStr::from_ptr((*e).d_name.as_ptr()).to_string_lossy();
            assert_eq!(name, names[i], "seekdir to the mark of entry {i}");
        }
        libc::rewinddir(dir);
        let mut again = 0;
        while !libc::readdir64(dir).is_null() {
            again += 1;
        }
        assert_eq!(again, 302, "rewinddir then a full pass");
        libc::closedir(dir);
    }
}

fn concurrent_appends_are_atomic_records(t: &Target) {
    let m = t.mount();
    let p = m.join("journal");
    File::create(&p).unwrap();
    const RECORD: usize = 100;
    let workers: Vec<_> = (0..4u8)
        .map(|t| {
            let p = p.clone();
            std::thread::spawn(move || {
                let mut f = OpenOptions::new().append(true).open(&p).unwrap();
                for i in 0..300u32 {
                    let mut rec = vec![b'a' + t; RECORD];
                    rec[..4].copy_from_slice(&i.to_be_bytes());
                    rec[RECORD - 1] = b'\n';
                    f.write_all(&rec).unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let data = fs::read(&p).unwrap();
    assert_eq!(data.len(), 4 * 300 * RECORD, "appends were lost");
    let mut next = [0u32; 4];
    for rec in data.chunks(RECORD) {
        let t = (rec[4] - b'a') as usize;
        assert!(
            t < 4 && rec[4..RECORD - 1].iter().all(|b| *b == rec[4]),
            "torn record"
        );
        let i = u32::from_be_bytes(rec[..4].try_into().unwrap());
        assert_eq!(i, next[t], "records of thread {t} out of order");
        next[t] += 1;
    }
}

fn tree_deeper_than_path_max(t: &Target) {
    let m = t.mount();
    let name = cstr(&"deep-component-".repeat(2));
    let depth = 200; // 200 * 31 bytes: well past PATH_MAX (4096)
    let open_dir = |at: i32, n: &CString| {
        // SAFETY: a valid dirfd and name.
        let fd = unsafe { libc::openat(at, n.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY) };
        assert!(fd >= 0, "openat: {}", last_errno());
        fd
    };
    let root = File::open(m.path()).unwrap();
    let mut fds = vec![root.as_raw_fd()];
    for _ in 0..depth {
        let at = *fds.last().unwrap();
        // SAFETY: a valid dirfd and name.
        assert_eq!(sys(unsafe { libc::mkdirat(at, name.as_ptr(), 0o755) }), 0);
        fds.push(open_dir(at, &name));
    }
    let leaf = cstr("leaf");
    let at = *fds.last().unwrap();
    // SAFETY: a valid dirfd and name; the fd is closed at once.
    unsafe {
        let fd = libc::openat(at, leaf.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o644);
        assert!(fd >= 0);
        assert_eq!(libc::write(fd, b"bottom".as_ptr().cast(), 6), 6);
        libc::close(fd);
    }
    // The full path is too long for the kernel, the tree is not.
    let mut long = m.path().to_path_buf();
    for _ in 0..depth {
        long.push(name.to_str().unwrap());
    }
    assert_eq!(errno(fs::metadata(long.join("leaf"))), libc::ENAMETOOLONG);
    // Tear it down from the bottom with *at calls.
    // SAFETY: valid dirfds and names; each fd is closed once.
    unsafe {
        assert_eq!(sys(libc::unlinkat(at, leaf.as_ptr(), 0)), 0);
        for i in (0..depth).rev() {
            libc::close(fds[i + 1]);
            assert_eq!(
                sys(libc::unlinkat(fds[i], name.as_ptr(), libc::AT_REMOVEDIR)),
                0
            );
        }
    }
    assert_eq!(names(m.path()), Vec::<String>::new());
}

fn fallocate_compare_with_tmpfs(t: &Target) {
    let both = Both::new(t, "", "size=64M");
    let got = both.check("fallocate", |root| {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(root.join("fa"))
            .unwrap();
        let fd = f.as_raw_fd();
        let mut out = Vec::new();
        let mut fa = |mode: i32, off: i64, len: i64| {
            // SAFETY: a valid fd.
            let r = sys(unsafe { libc::fallocate(fd, mode, off, len) });
            let st = f.metadata().unwrap();
            out.push((r, st.len(), st.blocks()));
        };
        fa(0, 0, MIB as i64);
        fa(libc::FALLOC_FL_KEEP_SIZE, 0, 4 * MIB as i64);
        fa(0, 0, 100 * MIB as i64); // more than the fs holds
        fa(libc::FALLOC_FL_PUNCH_HOLE, 0, 4096); // without KEEP_SIZE: EINVAL
        f.write_all_at(&[b'y'; 100_000], 0).unwrap();
        fa(
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            4096,
            8192,
        );
        let mut b = [0xffu8; 20];
        f.read_exact_at(&mut b, 4086).unwrap();
        let mut tail = [0u8; 3];
        f.read_exact_at(&mut tail, 12_288).unwrap();
        (out, b, tail)
    });
    assert_eq!(got.0[0], (0, MIB, 2048), "fallocate 1 MiB");
    assert_eq!(got.0[2].0, libc::ENOSPC);
    assert_eq!(got.0[3].0, libc::EOPNOTSUPP);
    assert_eq!(&got.1[..10], b"yyyyyyyyyy");
    assert_eq!(&got.1[10..], [0u8; 10]);
    assert_eq!(&got.2, b"yyy");
}

fn copy_file_range_copies(t: &Target) {
    let m = t.mount();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 199) as u8).collect();
    fs::write(m.join("from"), &data).unwrap();
    let src = File::open(m.join("from")).unwrap();
    let dst = File::create(m.join("to")).unwrap();
    let mut off_in: i64 = 1000;
    let mut off_out: i64 = 10;
    let mut left = 200_000usize;
    while left > 0 {
        // SAFETY: valid fds and offsets.
        let n = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                dst.as_raw_fd(),
                &mut off_out,
                left,
                0,
            )
        };
        assert!(n > 0, "copy_file_range: {}", last_errno());
        left -= n as usize;
    }
    drop(dst);
    let got = fs::read(m.join("to")).unwrap();
    assert_eq!(got.len(), 200_010);
    assert_eq!(&got[..10], [0u8; 10]);
    assert!(got[10..] == data[1000..201_000], "copied bytes differ");
}

#[test]
fn xattrs_count_against_inode_space_compare_with_tmpfs() {
    puffs_tests::require_fuse!();
    let both = Both::new(
        &Target::new("memfs", Fs::Memfs, "inodes=100"),
        "",
        "nr_inodes=100",
    );
    let got = both.check("xattrs filling the inode space", |root| {
        let p = root.join("x");
        fs::write(&p, b"").unwrap();
        let big = vec![b'v'; 65_536];
        let mut n = 0;
        let err = loop {
            let r = setx(&p, &format!("user.big{n}"), &big, 0);
            if r != 0 || n > 50 {
                break r;
            }
            n += 1;
        };
        let after = removex(&p, "user.big0");
        let again = setx(&p, "user.small", b"fits again", 0);
        (n, err, after, again)
    });
    assert_eq!(got.1, libc::ENOSPC);
    assert_eq!((got.2, got.3), (0, 0));
}

fn owner_rules_compare_with_tmpfs(t: &Target) {
    let both = Both::new(t, "allow_other", "size=64M");
    let got = both.check("what owners and group members may do", |root| {
        let d = public_dir(root, "pub", 0o777);
        let mode = |n: &str| lstat(&d.join(n)).mode() & 0o7777;
        let mk = |n: &str, uid: u32, gid: u32, m: u32| {
            let p = d.join(n);
            fs::write(&p, b"xyz").unwrap();
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(m)).unwrap();
            cpath(&p)
        };
        // An owner outside the file's group asks for set-gid: it is dropped.
        let g50 = mk("g50", 1000, 50, 0o644);
        // An owner gives the file to a group it is in: allowed, set-uid/gid go.
        let own = mk("own", 1000, 1000, 0o6755);
        // A non-owner truncates a writable set-uid file: set-uid goes.
        let tr = mk("tr", 0, 0, 0o4777);
        // Sticky directory owned by 1002: its owner may remove others' files.
        let sd = public_dir(root, "sticky", 0o1777);
        std::os::unix::fs::chown(&sd, Some(1002), Some(1002)).unwrap();
        fs::write(sd.join("victim"), b"").unwrap();
        std::os::unix::fs::chown(sd.join("victim"), Some(1000), Some(1000)).unwrap();
        let victim = cpath(&sd.join("victim"));
        // SAFETY (all closures): valid paths.
        let r = [
            run_as(1000, 1000, &[], || {
                sys(unsafe { libc::chmod(g50.as_ptr(), 0o2755) })
            }),
            run_as(1000, 1000, &[50], || {
                sys(unsafe { libc::chown(own.as_ptr(), u32::MAX, 50) })
            }),
            run_as(1001, 1001, &[], || {
                sys(unsafe { libc::truncate(tr.as_ptr(), 1) })
            }),
            run_as(1002, 1002, &[], || {
                sys(unsafe { libc::unlink(victim.as_ptr()) })
            }),
        ];
        let own_st = lstat(&d.join("own"));
        (
            r,
            mode("g50"),
            (own_st.gid(), own_st.mode() & 0o7777),
            mode("tr"),
            fs::metadata(d.join("tr")).unwrap().len(),
        )
    });
    assert_eq!(got.0, [0, 0, 0, 0]);
    assert_eq!(got.1, 0o755, "set-gid of a group the owner is not in");
    assert_eq!(got.2 .0, 50);
    assert_eq!(got.4, 1);
}

fn thousands_of_files_in_one_directory(t: &Target) {
    let m = t.mount();
    let d = m.join("many");
    fs::create_dir(&d).unwrap();
    let n = 5000;
    for i in 0..n {
        fs::write(d.join(format!("{i}")), i.to_string()).unwrap();
    }
    assert_eq!(fs::read_dir(&d).unwrap().count(), n);
    for i in (0..n).step_by(7) {
        assert_eq!(
            fs::read_to_string(d.join(format!("{i}"))).unwrap(),
            i.to_string()
        );
    }
    for i in 0..n {
        fs::remove_file(d.join(format!("{i}"))).unwrap();
    }
    assert_eq!(fs::read_dir(&d).unwrap().count(), 0);
    fs::remove_dir(&d).unwrap();
}

/// Which of a file's and its directory's times each op changes, as a row of flags:
/// file atime, mtime, ctime; directory atime, mtime, ctime.
type TimeEffects = [bool; 6];

/// Known failure: memfs changes mtime on a truncate only when the size changes, but
/// the kernel sends FUSE a truncate (ftruncate, truncate, open O_TRUNC) as a SETATTR of
/// the size alone, and tmpfs (through the VFS) always sets mtime and ctime then; for
/// O_TRUNC of an existing empty file POSIX requires it.
fn timestamp_effects_compare_with_tmpfs(t: &Target) {
    let both = Both::new(t, "", "size=64M");
    type Step = (&'static str, fn(&Path));
    let steps: &[Step] = &[
        ("write", |d| {
            OpenOptions::new()
                .write(true)
                .open(d.join("f"))
                .unwrap()
                .write_all_at(b"W", 1)
                .unwrap()
        }),
        ("truncate to the same size", |d| {
            let f = OpenOptions::new().write(true).open(d.join("f")).unwrap();
            let len = f.metadata().unwrap().len();
            f.set_len(len).unwrap()
        }),
        ("truncate longer", |d| {
            let f = OpenOptions::new().write(true).open(d.join("f")).unwrap();
            let len = f.metadata().unwrap().len();
            f.set_len(len + 1).unwrap()
        }),
        ("open O_TRUNC", |d| {
            OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(d.join("f"))
                .unwrap();
            fs::write(d.join("f"), b"abc").unwrap();
        }),
        ("truncate(2) to the same size", |d| {
            let len = fs::metadata(d.join("f")).unwrap().len();
            let c = cpath(&d.join("f"));
            // SAFETY: a valid path.
            assert_eq!(sys(unsafe { libc::truncate(c.as_ptr(), len as i64) }), 0);
        }),
        ("empty it", |d| fs::write(d.join("f"), b"").unwrap()),
        ("open O_TRUNC of an empty file", |d| {
            OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(d.join("f"))
                .unwrap();
        }),
        ("chmod", |d| {
            fs::set_permissions(d.join("f"), fs::Permissions::from_mode(0o640)).unwrap()
        }),
        ("chown to the same owner", |d| {
            std::os::unix::fs::chown(d.join("f"), Some(0), Some(0)).unwrap()
        }),
        ("setxattr", |d| {
            assert_eq!(setx(&d.join("f"), "user.t", b"1", 0), 0)
        }),
        ("removexattr", |d| {
            assert_eq!(removex(&d.join("f"), "user.t"), 0)
        }),
        ("link", |d| {
            fs::hard_link(d.join("f"), d.join("f2")).unwrap()
        }),
        ("unlink the other name", |d| {
            fs::remove_file(d.join("f2")).unwrap()
        }),
        ("rename within the dir", |d| {
            fs::rename(d.join("f"), d.join("g")).unwrap()
        }),
        ("rename back", |d| {
            fs::rename(d.join("g"), d.join("f")).unwrap()
        }),
        ("create another file", |d| {
            fs::write(d.join("new"), b"").unwrap()
        }),
        ("mkdir", |d| fs::create_dir(d.join("sub")).unwrap()),
        ("rmdir", |d| fs::remove_dir(d.join("sub")).unwrap()),
        ("symlink", |d| {
            std::os::unix::fs::symlink("f", d.join("sym")).unwrap()
        }),
        (
            "readlink",
            |d| assert!(fs::read_link(d.join("sym")).is_ok()),
        ),
        ("stat", |d| assert!(fs::metadata(d.join("f")).is_ok())),
    ];
    let got = both.check("which times each op changes", |root| {
        let d = root.join("d");
        fs::create_dir(&d).unwrap();
        fs::write(d.join("f"), b"abc").unwrap();
        // fstat through an fd follows the file whatever happens to its name.
        let held = File::open(d.join("f")).unwrap();
        let mut rows: Vec<(&str, TimeEffects)> = Vec::new();
        for (name, step) in steps {
            let times = [ts(100, 0), ts(200, 0)];
            // SAFETY: an open fd and two timespecs.
            assert_eq!(
                sys(unsafe { libc::futimens(held.as_raw_fd(), times.as_ptr()) }),
                0
            );
            assert_eq!(utimens(&d, ts(100, 0), ts(200, 0)), 0);
            let (f0, d0) = (held.metadata().unwrap(), lstat(&d));
            // Past the coarse clock's tick, so a change shows.
            std::thread::sleep(Duration::from_millis(25));
            step(&d);
            let (f1, d1) = (held.metadata().unwrap(), lstat(&d));
            let ctime = |m: &fs::Metadata| (m.ctime(), m.ctime_nsec());
            rows.push((
                name,
                [
                    f1.atime() != 100,
                    f1.mtime() != 200,
                    ctime(&f1) != ctime(&f0),
                    d1.atime() != 100,
                    d1.mtime() != 200,
                    ctime(&d1) != ctime(&d0),
                ],
            ));
        }
        rows
    });
    let row = |n: &str| got.iter().find(|(name, _)| *name == n).unwrap().1;
    assert_eq!(row("write"), [false, true, true, false, false, false]);
    assert_eq!(row("chmod"), [false, false, true, false, false, false]);
    assert_eq!(
        row("create another file"),
        [false, false, false, false, true, true]
    );
    assert_eq!(row("stat"), [false; 6]);
    // POSIX: open with O_TRUNC of an existing file marks mtime and ctime for update,
    // whether or not it had data.
    assert_eq!(
        row("open O_TRUNC of an empty file"),
        [false, true, true, false, false, false]
    );
}

fn seek_data_and_hole_compare_with_tmpfs(t: &Target) {
    let both = Both::new(t, "", "size=64M");
    let got = both.check("SEEK_DATA/SEEK_HOLE over several extents", |root| {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(root.join("holey"))
            .unwrap();
        f.write_all_at(&[1u8; 5000], 0).unwrap();
        f.write_all_at(&[2u8; 10], 64 * 1024).unwrap();
        f.write_all_at(&[3u8; 8192], 300 * 1024 + 100).unwrap();
        f.set_len(MIB).unwrap();
        let fd = f.as_raw_fd();
        let mut out = Vec::new();
        for off in [
            0i64,
            4096,
            5000,
            8192,
            65_536,
            65_546,
            100_000,
            307_300,
            315_000,
            MIB as i64 - 1,
            MIB as i64,
        ] {
            for whence in [libc::SEEK_DATA, libc::SEEK_HOLE] {
                // SAFETY: a valid fd.
                let r = unsafe { libc::lseek(fd, off, whence) };
                out.push(if r < 0 { -(last_errno() as i64) } else { r });
            }
        }
        out
    });
    assert_eq!(
        got[0..2],
        [0, 8192],
        "data at 0, the first hole after the first pages"
    );
}
