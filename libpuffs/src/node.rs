//! The node table (puffs pnode): every node the kernel knows, by inode number and by
//! the file system's own key, with the kernel's lookup count. A forget that brings the
//! count to zero removes the node and hands it to the file system's `reclaim`.

use std::cell::Cell;
use std::hash::{BuildHasher, Hash, RandomState};
use std::ops::Deref;
use std::rc::Rc;

use hashbrown::HashTable;

use crate::ops::Ops;

pub use crate::op::ROOT_INO;

/// A node: its kernel identity (inode number, generation), the fs's key and the fs's
/// private data, which it derefs to.
pub struct Node<F: Ops> {
    ino: u64,
    generation: u64,
    key: F::Key,
    data: F::Node,
    lookups: Cell<u64>,
}

impl<F: Ops> Node<F> {
    /// The inode number the kernel knows this node by; also its st_ino.
    pub fn ino(&self) -> u64 {
        self.ino
    }
    /// With the inode number, names the node for the kernel's file handles: the
    /// file system's own (`Entry::generation`) when the node has the number the fs
    /// chose, else one the table bumps each time it numbers a node, so (ino,
    /// generation) never names two nodes.
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// The key the file system named this node by (`Entry::key`).
    pub fn key(&self) -> &F::Key {
        &self.key
    }
    /// The file system's private data (what `*node` derefs to).
    pub fn data(&self) -> &F::Node {
        &self.data
    }
    /// How many lookups the kernel holds on this node.
    pub fn lookups(&self) -> u64 {
        self.lookups.get()
    }
}

impl<F: Ops> Deref for Node<F> {
    type Target = F::Node;
    fn deref(&self) -> &F::Node {
        &self.data
    }
}

impl<F: Ops> std::fmt::Debug for Node<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("ino", &self.ino)
            .field("key", &self.key)
            .field("lookups", &self.lookups.get())
            .finish()
    }
}

/// All live nodes, by inode number and by key. A node's inode number is the one its
/// file system asked for (`Attr::ino`) when that is free, so st_ino stays the same
/// when the kernel forgets a node and looks it up again; otherwise the table picks one.
///
/// Both indexes hold the node itself (one pointer an entry, hashed by the ino or the
/// key it carries) rather than a map of copies: a file system with a million known
/// files pays for a million nodes, not for maps of maps.
pub struct NodeTable<F: Ops> {
    by_ino: HashTable<Rc<Node<F>>>,
    by_key: HashTable<Rc<Node<F>>>,
    hasher: RandomState,
    /// Where the search for a free inode number starts.
    next_ino: u64,
    generation: u64,
}

impl<F: Ops> Default for NodeTable<F> {
    fn default() -> Self {
        NodeTable {
            by_ino: HashTable::new(),
            by_key: HashTable::new(),
            hasher: RandomState::new(),
            next_ino: ROOT_INO,
            generation: 0,
        }
    }
}

impl<F: Ops> NodeTable<F> {
    /// A table holding only the root node.
    pub(crate) fn with_root(key: F::Key, data: F::Node) -> Self {
        let mut table = NodeTable::default();
        let root = table.insert(key, data, ROOT_INO, 0);
        debug_assert_eq!(root.ino, ROOT_INO);
        root.lookups.set(1); // the kernel never forgets the root
        table
    }

    fn hash<T: Hash + ?Sized>(&self, v: &T) -> u64 {
        self.hasher.hash_one(v)
    }

    /// The live node with inode number `ino`.
    pub fn get(&self, ino: u64) -> Option<&Rc<Node<F>>> {
        self.by_ino.find(self.hash(&ino), |n| n.ino == ino)
    }

    /// The live node the file system's `key` names, if the kernel knows it.
    pub fn by_key(&self, key: &F::Key) -> Option<&Rc<Node<F>>> {
        self.by_key.find(self.hash(key), |n| n.key == *key)
    }

    /// The root node (always live).
    pub fn root(&self) -> &Rc<Node<F>> {
        self.get(ROOT_INO)
            .expect("the root node lives as long as the table")
    }

    /// How many nodes are live, the root included.
    pub fn len(&self) -> usize {
        self.by_ino.len()
    }

    /// Whether no node is live (never, once the root is in).
    pub fn is_empty(&self) -> bool {
        self.by_ino.is_empty()
    }

    /// Every live node (puffs_pn_nodewalk).
    pub fn iter(&self) -> impl Iterator<Item = &Rc<Node<F>>> {
        self.by_ino.iter()
    }

    /// The kernel is told about the node `key` (lookup, create, readdirplus...): the
    /// existing node gains a lookup, or a new one is made from `data`, numbered
    /// `want_ino` if that is free (0: any number). A node numbered as the fs asked
    /// carries the fs's `generation`, so that a node forgotten and found again (by
    /// an export file handle) is the same (ino, generation) to the kernel.
    pub(crate) fn enter(
        &mut self,
        key: F::Key,
        data: F::Node,
        want_ino: u64,
        generation: u64,
    ) -> Rc<Node<F>> {
        let node = match self.by_key(&key) {
            Some(node) => Rc::clone(node),
            None => self.insert(key, data, want_ino, generation),
        };
        node.lookups.set(node.lookups.get() + 1);
        node
    }

    /// The kernel drops `count` lookups of `ino`; at zero the node leaves the table and
    /// is returned for reclaim.
    pub(crate) fn forget(&mut self, ino: u64, count: u64) -> Option<Rc<Node<F>>> {
        let node = self.get(ino)?;
        let left = node.lookups.get().saturating_sub(count);
        node.lookups.set(left);
        if left > 0 || ino == ROOT_INO {
            return None;
        }
        let (hi, hk) = (self.hash(&ino), self.hash(&node.key));
        let (node, _) = self.by_ino.find_entry(hi, |n| n.ino == ino).ok()?.remove();
        if let Ok(e) = self.by_key.find_entry(hk, |n| Rc::ptr_eq(n, &node)) {
            e.remove();
        }
        Some(node)
    }

    fn insert(&mut self, key: F::Key, data: F::Node, want_ino: u64, fs_gen: u64) -> Rc<Node<F>> {
        let (ino, generation) = if want_ino != 0 && self.get(want_ino).is_none() {
            (want_ino, fs_gen)
        } else {
            if want_ino != 0 {
                log::debug!(
                    "inode number {want_ino} is taken by a live node; {key:?} gets another"
                );
            }
            self.generation += 1;
            (self.free_ino(), self.generation)
        };
        let node = Rc::new(Node {
            ino,
            generation,
            key: key.clone(),
            data,
            lookups: Cell::new(0),
        });
        let hasher = &self.hasher;
        self.by_ino
            .insert_unique(hasher.hash_one(ino), Rc::clone(&node), |n| {
                hasher.hash_one(n.ino)
            });
        self.by_key
            .insert_unique(hasher.hash_one(&key), Rc::clone(&node), |n| {
                hasher.hash_one(&n.key)
            });
        node
    }

    /// An inode number no live node has (never 0, never the root's after the root).
    fn free_ino(&mut self) -> u64 {
        while self.next_ino == 0 || self.get(self.next_ino).is_some() {
            self.next_ino = self.next_ino.wrapping_add(1);
        }
        self.next_ino
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::OpMask;

    struct T;
    impl Ops for T {
        type Node = &'static str;
        type Key = u32;
        type File = ();
        type Dir = ();
        const OPMASK: OpMask = OpMask::EMPTY;
        fn root(&self) -> (u32, &'static str) {
            (0, "root")
        }
    }

    #[test]
    fn the_root_is_ino_1_and_never_forgotten() {
        let mut t = NodeTable::<T>::with_root(0, "root");
        assert_eq!(t.root().ino(), ROOT_INO);
        assert!(t.forget(ROOT_INO, 100).is_none());
        assert_eq!(t.get(ROOT_INO).map(|n| *n.data()), Some("root"));
    }

    #[test]
    fn entering_a_known_key_reuses_its_node() {
        let mut t = NodeTable::<T>::with_root(0, "root");
        let a = t.enter(7, "first", 0, 0);
        let b = t.enter(7, "second (dropped)", 0, 0);
        assert_eq!(a.ino(), b.ino());
        assert_eq!(**b, "first");
        assert_eq!(b.lookups(), 2);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn forget_to_zero_removes_and_returns_the_node() {
        let mut t = NodeTable::<T>::with_root(0, "root");
        let ino = t.enter(7, "x", 0, 0).ino();
        t.enter(7, "x", 0, 0);
        assert!(t.forget(ino, 1).is_none(), "one lookup left");
        let gone = t.forget(ino, 1).expect("reclaimed at zero");
        assert_eq!(*gone.key(), 7);
        assert!(t.get(ino).is_none() && t.by_key(&7).is_none());
        // Forgetting an unknown inode number is ignored, not a panic.
        assert!(t.forget(ino, 1).is_none());
        assert!(t.forget(u64::MAX, 1).is_none());
        assert!(t.get(0).is_none());
    }

    #[test]
    fn a_number_the_table_reuses_gets_a_new_generation() {
        let mut t = NodeTable::<T>::with_root(0, "root");
        let first = t.enter(7, "x", 0, 0);
        let (ino, gen) = (first.ino(), first.generation());
        t.forget(ino, 1);
        let second = t.enter(8, "y", 0, 0);
        assert_eq!(second.ino(), ino, "the number is free again");
        assert!(second.generation() > gen);
    }

    #[test]
    fn a_node_numbered_by_the_fs_keeps_the_fs_generation_when_found_again() {
        let mut t = NodeTable::<T>::with_root(0, "root");
        let first = t.enter(7, "x", 42, 5);
        assert_eq!((first.ino(), first.generation()), (42, 5));
        t.forget(42, 1);
        let again = t.enter(7, "x", 42, 5);
        assert_eq!((again.ino(), again.generation()), (42, 5));
        // Its number taken: the table numbers it, with a generation of its own.
        let other = t.enter(9, "z", 42, 5);
        assert_ne!(other.ino(), 42);
    }

    #[test]
    fn the_fs_chooses_inode_numbers_that_are_free() {
        let mut t = NodeTable::<T>::with_root(0, "root");
        assert_eq!(t.enter(7, "x", 1000, 0).ino(), 1000);
        // Forgotten and looked up again: the same number.
        t.forget(1000, 1);
        assert_eq!(t.enter(7, "x", 1000, 0).ino(), 1000);
        // Taken by another live node, or the root's: another number, never a clash.
        let other = t.enter(9, "z", 1000, 0).ino();
        assert!(other != 1000 && other != ROOT_INO);
        let not_root = t.enter(10, "w", ROOT_INO, 0).ino();
        assert!(not_root != ROOT_INO && not_root != other);
        // No choice: any free number.
        let any = t.enter(11, "v", 0, 0).ino();
        assert!(![0, ROOT_INO, 1000, other, not_root].contains(&any));
    }
}
