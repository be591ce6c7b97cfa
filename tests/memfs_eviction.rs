//! memfs after the kernel forgot its nodes: dropping the kernel's dentry and inode
//! caches sends FORGET for every unused node, and the next access looks it up anew.
//! A file that still exists must come back as the same file: the same st_ino (as on
//! tmpfs, and as tar, rsync -H, find and du rely on), hard links still shared, open
//! files still working. These tests run in their own test binary because dropping
//! caches reaches every mount of the machine.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use puffs_tests::*;

/// Every entry below `root` by relative path: (st_ino, st_nlink, st_mode).
fn inodes(root: &Path) -> BTreeMap<String, (u64, u64, u32)> {
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<String, (u64, u64, u32)>) {
        for e in fs::read_dir(root.join(rel)).unwrap() {
            let rel = rel.join(e.unwrap().file_name());
            let m = fs::symlink_metadata(root.join(&rel)).unwrap();
            out.insert(
                rel.to_string_lossy().into_owned(),
                (m.ino(), m.nlink(), m.mode()),
            );
            if m.is_dir() {
                walk(root, &rel, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

fn populate(root: &Path) {
    for d in ["a", "a/b", "a/b/c", "z"] {
        fs::create_dir(root.join(d)).unwrap();
    }
    for (i, f) in ["a/f1", "a/b/f2", "a/b/c/f3", "z/f4", "top"]
        .iter()
        .enumerate()
    {
        fs::write(root.join(f), format!("content {i}")).unwrap();
    }
    fs::hard_link(root.join("a/f1"), root.join("z/f1-link")).unwrap();
    std::os::unix::fs::symlink("../a/f1", root.join("z/sym")).unwrap();
}

#[test]
fn inode_numbers_survive_eviction() {
    puffs_tests::require_fuse!();
    let m = Mounted::new("memfs", "");
    let t = Tmpfs::new("");
    for root in [m.path(), t.path()] {
        populate(root);
        let before = inodes(root);
        drop_dentries_and_inodes();
        let after = inodes(root);
        assert_eq!(
            after,
            before,
            "st_ino/nlink/mode changed once the kernel forgot the nodes ({})",
            if root == m.path() { "memfs" } else { "tmpfs" }
        );
    }
}

#[test]
fn readdir_d_ino_matches_st_ino_after_eviction() {
    puffs_tests::require_fuse!();
    let m = Mounted::new("memfs", "");
    populate(m.path());
    drop_dentries_and_inodes();
    // readdir first, while the kernel knows none of the entries.
    let listed: Vec<(String, u64)> = fs::read_dir(m.join("a"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::os::unix::fs::DirEntryExt::ino(&e),
            )
        })
        .collect();
    assert_eq!(listed.len(), 2);
    for (name, d_ino) in listed {
        let st_ino = fs::symlink_metadata(m.join("a").join(&name)).unwrap().ino();
        assert_eq!(d_ino, st_ino, "a/{name}: readdir's d_ino vs lstat's st_ino");
    }
}

#[test]
fn hard_links_stay_one_file_after_eviction() {
    puffs_tests::require_fuse!();
    let m = Mounted::new("memfs", "");
    populate(m.path());
    drop_dentries_and_inodes();
    OpenOptions::new()
        .write(true)
        .open(m.join("z/f1-link"))
        .unwrap()
        .write_all_at(b"CHANGED", 0)
        .unwrap();
    drop_dentries_and_inodes();
    assert_eq!(fs::read(m.join("a/f1")).unwrap(), b"CHANGED 0");
    let (a, b) = (
        fs::metadata(m.join("a/f1")).unwrap(),
        fs::metadata(m.join("z/f1-link")).unwrap(),
    );
    assert_eq!((a.nlink(), b.nlink()), (2, 2));
    assert_eq!(a.ino(), b.ino(), "two names of one file, different st_ino");
    fs::remove_file(m.join("a/f1")).unwrap();
    drop_dentries_and_inodes();
    assert_eq!(fs::metadata(m.join("z/f1-link")).unwrap().nlink(), 1);
    assert_eq!(
        fs::read(m.join("z/sym")).map_err(|e| errno_of(&e)),
        Err(libc::ENOENT)
    );
}

#[test]
fn open_files_survive_eviction_of_their_names() {
    puffs_tests::require_fuse!();
    let m = Mounted::new("memfs", "");
    populate(m.path());
    let kept = File::open(m.join("a/b/c/f3")).unwrap();
    let ino = kept.metadata().unwrap().ino();
    let doomed = OpenOptions::new()
        .read(true)
        .write(true)
        .open(m.join("a/b/f2"))
        .unwrap();
    fs::remove_file(m.join("a/b/f2")).unwrap();
    // Move the tree around, then make the kernel forget what it can.
    fs::rename(m.join("a"), m.join("moved")).unwrap();
    drop_dentries_and_inodes();
    let mut s = String::new();
    (&kept).read_to_string(&mut s).unwrap();
    assert_eq!(s, "content 2");
    assert_eq!(
        fs::metadata(m.join("moved/b/c/f3")).unwrap().ino(),
        ino,
        "the open file's st_ino vs a fresh lookup"
    );
    doomed.write_all_at(b"unlinked but alive", 0).unwrap();
    let mut buf = [0u8; 18];
    doomed.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"unlinked but alive");
    assert_eq!(doomed.metadata().unwrap().nlink(), 0);
    assert_eq!(
        fs::read_dir(m.join("moved/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect::<Vec<_>>(),
        ["c"]
    );
}

#[test]
fn contents_survive_repeated_eviction() {
    puffs_tests::require_fuse!();
    let m = Mounted::new("memfs", "");
    let mut want = BTreeMap::new();
    for i in 0..200 {
        let dir = format!("d{}", i % 10);
        let _ = fs::create_dir(m.join(&dir));
        let name = format!("{dir}/f{i}");
        let data = format!("file {i} ").repeat(i + 1);
        fs::write(m.join(&name), &data).unwrap();
        want.insert(name, data);
        if i % 50 == 49 {
            drop_dentries_and_inodes();
        }
    }
    for round in 0..3 {
        drop_dentries_and_inodes();
        for (name, data) in &want {
            assert_eq!(
                &fs::read_to_string(m.join(name)).unwrap(),
                data,
                "{name} after eviction round {round}"
            );
        }
    }
}
