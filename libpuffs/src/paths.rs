//! Path objects for file systems that name their files by path (puffs `puffs_path_*`):
//! SFTP, FTP, WebDAV and the like have no inode numbers to reach a file by, only the
//! path from the root, so each node carries its path.
//!
//! - [`PuffsPath`]: an immutable path, cheap to clone (one `Rc`), with its hash computed
//!   once, so comparing and hashing paths costs nothing per byte in the common case.
//! - [`PathOps`]: how paths are built and matched (puffs `pu_pathbuild`,
//!   `pu_pathcmp`, `pu_pathtransform`, `pu_namemod`). The defaults are plain
//!   `/`-joined bytes ([`SlashPaths`]); a file system whose paths look otherwise (another
//!   separator, names that must be encoded or folded) overrides what differs.
//! - [`PathCell`]: the path slot a node keeps in its data, changeable through `&`
//!   (nodes are shared), and [`rename_subtree`], the prefix adjustment a directory
//!   rename needs (puffs `puffs_path_prefixadj` over `puffs_pn_nodewalk`).
//!
//! A lookup builds the child's path from its parent's:
//!
//! ```
//! use puffs::paths::{PuffsPath, PathCell, rename_subtree};
//!
//! let root = PuffsPath::new(b"/srv");
//! let dir = root.join(b"dir").unwrap();
//! let file = PathCell::new(dir.join(b"file").unwrap());
//! // `mv /srv/dir /srv/moved`: every path under it follows.
//! let moved = root.join(b"moved").unwrap();
//! assert_eq!(rename_subtree([&file], &dir, &moved), 1);
//! assert_eq!(file.get().as_bytes(), b"/srv/moved/file");
//! ```
//!
//! With a [`NodeTable`](crate::NodeTable) the nodes to fix are all live nodes:
//! `rename_subtree(cx.nodes().iter().map(|n| &n.path), &old, &new)`.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::rc::Rc;
use std::sync::OnceLock;

use crate::errno::Errno;

/// The hasher keys every path is hashed with: one per process (random, so a server
/// cannot pick names that collide), the same for every path so equal paths hash equal.
fn path_hasher() -> &'static RandomState {
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    KEYS.get_or_init(RandomState::new)
}

/// An immutable path in the file system's own terms (bytes, any encoding), cheap to
/// clone and compare: the bytes are shared and the hash is computed once.
#[derive(Clone)]
pub struct PuffsPath {
    bytes: Rc<[u8]>,
    hash: u64,
}

impl PuffsPath {
    /// A path of exactly these bytes (typically the root: `/`, `.` or a remote dir).
    pub fn new(bytes: &[u8]) -> Self {
        PuffsPath {
            hash: path_hasher().hash_one(bytes),
            bytes: bytes.into(),
        }
    }

    /// The path's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The path's length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the path has no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The child `name` of this directory, `/`-joined ([`SlashPaths`]); see
    /// [`PathOps::join`] for what is refused.
    pub fn join(&self, name: &[u8]) -> Result<PuffsPath, Errno> {
        SlashPaths.join(self, name)
    }

    /// Whether `self` is `prefix` itself or a path under it, `/`-separated: `/a/b/c` is
    /// under `/a/b`, `/a/bc` is not.
    pub fn is_within(&self, prefix: &PuffsPath) -> bool {
        SlashPaths.is_within(self, prefix)
    }

    /// This path moved from under `old` to under `new` (`/a/b/c` rebased from `/a` to
    /// `/x` is `/x/b/c`), or `None` when it is not within `old`.
    pub fn rebase(&self, old: &PuffsPath, new: &PuffsPath) -> Option<PuffsPath> {
        SlashPaths.rebase(self, old, new)
    }
}

impl PartialEq for PuffsPath {
    fn eq(&self, other: &Self) -> bool {
        // The hash settles nearly every unequal pair without reading the bytes.
        Rc::ptr_eq(&self.bytes, &other.bytes)
            || (self.hash == other.hash && self.bytes == other.bytes)
    }
}

impl Eq for PuffsPath {}

impl Hash for PuffsPath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialOrd for PuffsPath {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PuffsPath {
    /// Byte order, so a sorted set of paths lists a directory right before its subtree.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes.cmp(&other.bytes)
    }
}

impl fmt::Debug for PuffsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.bytes.escape_ascii().to_string())
    }
}

impl From<&[u8]> for PuffsPath {
    fn from(bytes: &[u8]) -> Self {
        PuffsPath::new(bytes)
    }
}

/// How a file system builds and matches its paths. Every method has a default for
/// plain `/`-joined bytes; override what differs (another separator, names that must
/// be encoded, case folded or refused).
pub trait PathOps {
    /// The byte between a directory's path and a child's name.
    fn separator(&self) -> u8 {
        b'/'
    }

    /// The name as it appears in the path (puffs `pu_namemod`): the default refuses
    /// names that cannot be one path component (empty, `.`, `..`, or holding the
    /// separator or NUL) with EINVAL and keeps all others byte for byte, newlines,
    /// backslashes and non-UTF-8 included.
    fn modify_name<'n>(&self, name: &'n [u8]) -> Result<Cow<'n, [u8]>, Errno> {
        let sep = self.separator();
        let component = !name.is_empty() && name != b"." && name != b"..";
        if !component || name.contains(&sep) || name.contains(&0) {
            return Err(Errno::EINVAL);
        }
        Ok(Cow::Borrowed(name))
    }

    /// The path of child `name` of directory `parent` (puffs `pu_pathbuild`); no
    /// doubled separator when the parent ends in one (the root `/`), and an empty
    /// parent gives the bare name.
    fn join(&self, parent: &PuffsPath, name: &[u8]) -> Result<PuffsPath, Errno> {
        let name = self.modify_name(name)?;
        let sep = self.separator();
        let parent = parent.as_bytes();
        let mut bytes = Vec::with_capacity(parent.len() + 1 + name.len());
        bytes.extend_from_slice(parent);
        if !parent.is_empty() && parent.last() != Some(&sep) {
            bytes.push(sep);
        }
        bytes.extend_from_slice(&name);
        Ok(PuffsPath::new(&bytes))
    }

    /// Whether `path` is `prefix` or lies under it (puffs `pu_pathcmp` with a prefix
    /// check): the prefix must end at a separator, so `/a/bc` is not under `/a/b`.
    fn is_within(&self, path: &PuffsPath, prefix: &PuffsPath) -> bool {
        self.remainder(path, prefix).is_some()
    }

    /// `path` moved from under `old` to under `new` (puffs `pu_pathtransform`), or
    /// `None` when `path` is not within `old`.
    fn rebase(&self, path: &PuffsPath, old: &PuffsPath, new: &PuffsPath) -> Option<PuffsPath> {
        let rest = self.remainder(path, old)?;
        if rest.is_empty() {
            return Some(new.clone());
        }
        let sep = self.separator();
        let new = new.as_bytes();
        let mut bytes = Vec::with_capacity(new.len() + 1 + rest.len());
        bytes.extend_from_slice(new);
        if !new.is_empty() && new.last() != Some(&sep) {
            bytes.push(sep);
        }
        bytes.extend_from_slice(rest);
        Some(PuffsPath::new(&bytes))
    }

    /// What follows `prefix` in `path` without the separator between them (empty when
    /// they are equal), or `None` when `path` is not within `prefix`.
    fn remainder<'p>(&self, path: &'p PuffsPath, prefix: &PuffsPath) -> Option<&'p [u8]> {
        let (path, prefix) = (path.as_bytes(), prefix.as_bytes());
        let rest = path.strip_prefix(prefix)?;
        let sep = self.separator();
        if rest.is_empty() || prefix.is_empty() || prefix.last() == Some(&sep) {
            Some(rest)
        } else {
            rest.strip_prefix(&[sep])
        }
    }
}

/// Plain `/`-joined byte paths: every [`PathOps`] default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlashPaths;

impl PathOps for SlashPaths {}

/// A node's path, kept in the file system's node data and changed through a shared
/// reference when the node or a directory above it is renamed.
pub struct PathCell(RefCell<PuffsPath>);

impl PathCell {
    /// A slot holding `path`.
    pub fn new(path: PuffsPath) -> Self {
        PathCell(RefCell::new(path))
    }

    /// The current path (a cheap clone).
    pub fn get(&self) -> PuffsPath {
        self.0.borrow().clone()
    }

    /// Replaces the path (a rename of this node).
    pub fn set(&self, path: PuffsPath) {
        *self.0.borrow_mut() = path;
    }
}

impl fmt::Debug for PathCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.borrow().fmt(f)
    }
}

/// After a rename of `old` to `new`, moves every path in `cells` that is `old` or lies
/// under it to the same place under `new` (puffs `puffs_path_prefixadj` over a node
/// walk), `/`-joined; returns how many changed. Paths elsewhere, including look-alikes
/// such as `/a/bc` for `old` = `/a/b`, are left alone.
pub fn rename_subtree<'c>(
    cells: impl IntoIterator<Item = &'c PathCell>,
    old: &PuffsPath,
    new: &PuffsPath,
) -> usize {
    rename_subtree_with(&SlashPaths, cells, old, new)
}

/// [`rename_subtree`] with the file system's own [`PathOps`].
pub fn rename_subtree_with<'c>(
    ops: &impl PathOps,
    cells: impl IntoIterator<Item = &'c PathCell>,
    old: &PuffsPath,
    new: &PuffsPath,
) -> usize {
    let mut changed = 0;
    for cell in cells {
        let moved = ops.rebase(&cell.0.borrow(), old, new);
        if let Some(moved) = moved {
            cell.set(moved);
            changed += 1;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeTable;
    use crate::ops::{OpMask, Ops};
    use std::collections::HashSet;

    fn p(b: &[u8]) -> PuffsPath {
        PuffsPath::new(b)
    }

    #[test]
    fn join_builds_child_paths_without_doubled_separators() {
        assert_eq!(p(b"/a").join(b"b").unwrap(), p(b"/a/b"));
        assert_eq!(p(b"/").join(b"b").unwrap(), p(b"/b"));
        assert_eq!(p(b"").join(b"b").unwrap(), p(b"b"));
        assert_eq!(p(b".").join(b"b").unwrap(), p(b"./b"));
    }

    #[test]
    fn join_refuses_names_that_are_not_one_component() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"/", b"a\0b"] {
            assert_eq!(p(b"/a").join(bad), Err(Errno::EINVAL), "{bad:?}");
        }
    }

    #[test]
    fn odd_bytes_in_names_are_kept_exactly() {
        let odd: [&[u8]; 5] = [
            b"\xff\xfe not utf-8",
            b"new\nline",
            b"back\\slash",
            b" ",
            b"...",
        ];
        let dir = p(b"/d");
        for name in odd {
            let child = dir.join(name).unwrap();
            assert_eq!(&child.as_bytes()[3..], name);
            assert!(child.is_within(&dir));
            let moved = child.rebase(&dir, &p(b"/e\n")).unwrap();
            assert_eq!(&moved.as_bytes()[..4], b"/e\n/");
            assert_eq!(&moved.as_bytes()[4..], name);
        }
    }

    #[test]
    fn no_false_prefix_match() {
        let ab = p(b"/a/b");
        assert!(!p(b"/a/bc").is_within(&ab));
        assert!(!p(b"/a/bc/d").is_within(&ab));
        assert!(!p(b"/a").is_within(&ab));
        assert!(p(b"/a/b").is_within(&ab));
        assert!(p(b"/a/b/c").is_within(&ab));
        assert_eq!(p(b"/a/bc").rebase(&ab, &p(b"/x")), None);
        // The root is a prefix of everything absolute.
        assert!(p(b"/a").is_within(&p(b"/")));
        assert_eq!(p(b"/a/b").rebase(&p(b"/"), &p(b"/r")), Some(p(b"/r/a/b")));
    }

    #[test]
    fn equal_paths_compare_and_hash_equal() {
        let a = p(b"/x/y");
        let b = p(b"/x").join(b"y").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, p(b"/x/z"));
        let set: HashSet<PuffsPath> = [a.clone(), b, p(b"/x/z")].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert!(set.contains(&a));
        assert!(p(b"/a") < p(b"/a/b") && p(b"/a/b") < p(b"/b"));
    }

    #[test]
    fn a_deep_subtree_follows_its_renamed_directory() {
        // /top/d0/d1/.../d49 with a file in each level, a sibling /top/d0x look-alike.
        let top = p(b"/top");
        let mut cells = vec![PathCell::new(top.clone())];
        let mut dir = top.join(b"d0").unwrap();
        let d0 = dir.clone();
        for level in 1..50 {
            cells.push(PathCell::new(dir.clone()));
            cells.push(PathCell::new(dir.join(b"f\xff\n").unwrap()));
            dir = dir.join(format!("d{level}").as_bytes()).unwrap();
        }
        cells.push(PathCell::new(dir.clone()));
        let lookalike = PathCell::new(top.join(b"d0x").unwrap());
        let new = p(b"/else/where");
        let n = rename_subtree(cells.iter().chain([&lookalike]), &d0, &new);
        assert_eq!(n, cells.len() - 1, "all but /top moved");
        assert_eq!(cells[0].get(), top);
        assert_eq!(lookalike.get(), p(b"/top/d0x"));
        for c in &cells[1..] {
            let path = c.get();
            assert!(path.is_within(&new), "{path:?}");
            assert!(!path.is_within(&d0), "{path:?}");
        }
        assert_eq!(cells[1].get(), new);
        let deepest = cells.last().unwrap().get();
        assert!(deepest.as_bytes().ends_with(b"/d48/d49"));
        assert!(deepest.as_bytes().starts_with(b"/else/where/d1/d2/"));
    }

    struct PathFs;
    impl Ops for PathFs {
        type Node = PathCell;
        type Key = u64;
        type File = ();
        type Dir = ();
        const OPMASK: OpMask = OpMask::EMPTY;
        fn root(&self) -> (u64, PathCell) {
            (0, PathCell::new(p(b"/")))
        }
    }

    #[test]
    fn the_node_table_walk_fixes_every_live_node() {
        let mut t = NodeTable::<PathFs>::with_root(0, PathCell::new(p(b"/")));
        let names: [&[u8]; 4] = [b"/a", b"/a/b", b"/a/b/c", b"/ab"];
        for (key, path) in names.iter().enumerate() {
            t.enter(key as u64 + 1, PathCell::new(p(path)), 0, 0);
        }
        let n = rename_subtree(t.iter().map(|n| n.data()), &p(b"/a"), &p(b"/z"));
        assert_eq!(n, 3);
        let got: HashSet<Vec<u8>> = t.iter().map(|n| n.get().as_bytes().to_vec()).collect();
        let want: HashSet<Vec<u8>> = [&b"/"[..], b"/z", b"/z/b", b"/z/b/c", b"/ab"]
            .iter()
            .map(|b| b.to_vec())
            .collect();
        assert_eq!(got, want);
    }

    /// A file system whose remote names are upper case and separated by `\`.
    struct UpperBackslash;
    impl PathOps for UpperBackslash {
        fn separator(&self) -> u8 {
            b'\\'
        }
        fn modify_name<'n>(&self, name: &'n [u8]) -> Result<Cow<'n, [u8]>, Errno> {
            if name.contains(&b'\\') {
                return Err(Errno::EINVAL);
            }
            Ok(Cow::Owned(name.to_ascii_uppercase()))
        }
    }

    #[test]
    fn a_custom_path_ops_changes_names_and_separator() {
        let ops = UpperBackslash;
        let root = p(b"C:");
        let dir = ops.join(&root, b"dir").unwrap();
        let file = ops.join(&dir, b"a/b").unwrap(); // '/' is a plain byte here
        assert_eq!(file, p(b"C:\\DIR\\A/B"));
        assert_eq!(ops.join(&dir, b"x\\y"), Err(Errno::EINVAL));
        assert!(ops.is_within(&file, &dir));
        assert!(!ops.is_within(&p(b"C:\\DIRX"), &dir));
        let cells = [PathCell::new(file)];
        let new = ops.join(&root, b"new").unwrap();
        assert_eq!(rename_subtree_with(&ops, &cells, &dir, &new), 1);
        assert_eq!(cells[0].get(), p(b"C:\\NEW\\A/B"));
    }
}
