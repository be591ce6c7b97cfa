//! A directory's entries: names in the order they were linked, each with a sequence
//! number that never changes and is never reused, which makes a stable readdir cookie.
//!
//! Entries live in a vector ordered by sequence number; a hash index (keyed by name,
//! holding positions) finds them by name, so each name is stored once. Removing an
//! entry leaves a tombstone, so positions and cookies stay put while a readdir scan
//! is under way; tombstones are swept out (and the index rebuilt) once they outnumber
//! the live entries.
//!
//! readdir lists the newest entry first, as tmpfs does.

use std::ffi::OsStr;
use std::hash::BuildHasher;
use std::hash::RandomState;
use std::os::unix::ffi::OsStrExt;
use std::rc::{Rc, Weak};
use std::sync::OnceLock;

use hashbrown::HashTable;

use crate::inode::Inode;

struct Slot {
    seq: u64,
    /// Empty in a tombstone.
    name: Box<OsStr>,
    /// None in a tombstone.
    inode: Option<Rc<Inode>>,
}

pub struct Dir {
    slots: Vec<Slot>,
    /// Positions in `slots` of the live entries, hashed by name.
    index: HashTable<u32>,
    next_seq: u64,
    dead: usize,
    /// The directory this one is an entry of (itself for the root).
    pub parent: Weak<Inode>,
}

fn hash(name: &OsStr) -> u64 {
    static STATE: OnceLock<RandomState> = OnceLock::new();
    STATE
        .get_or_init(RandomState::new)
        .hash_one(name.as_bytes())
}

impl Dir {
    pub fn new(parent: Weak<Inode>) -> Dir {
        Dir {
            slots: Vec::new(),
            index: HashTable::new(),
            next_seq: 1,
            dead: 0,
            parent,
        }
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn position(&self, name: &OsStr) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(hash(name), |&pos| &*slots[pos as usize].name == name)
            .map(|&pos| pos as usize)
    }

    pub fn get(&self, name: &OsStr) -> Option<&Rc<Inode>> {
        self.position(name)
            .and_then(|pos| self.slots[pos].inode.as_ref())
    }

    /// Adds `name`, which must not be present, as the newest entry.
    pub fn insert(&mut self, name: &OsStr, inode: Rc<Inode>) {
        debug_assert!(self.position(name).is_none());
        let pos = u32::try_from(self.slots.len()).expect("fewer than 2^32 directory slots");
        self.slots.push(Slot {
            seq: self.next_seq,
            name: name.into(),
            inode: Some(inode),
        });
        self.next_seq += 1;
        let slots = &self.slots;
        self.index
            .insert_unique(hash(name), pos, |&p| hash(&slots[p as usize].name));
    }

    /// Removes `name`, returning its inode.
    pub fn remove(&mut self, name: &OsStr) -> Option<Rc<Inode>> {
        let slots = &self.slots;
        let entry = self
            .index
            .find_entry(hash(name), |&pos| &*slots[pos as usize].name == name)
            .ok()?;
        let (pos, _) = entry.remove();
        let slot = &mut self.slots[pos as usize];
        slot.name = Box::default();
        let inode = slot.inode.take();
        self.dead += 1;
        if self.dead > 16 && self.dead > self.len() {
            self.sweep();
        }
        inode
    }

    /// Drops the tombstones and reindexes. Sequence numbers (cookies) stay.
    fn sweep(&mut self) {
        self.slots.retain(|s| s.inode.is_some());
        self.slots.shrink_to(self.slots.len() * 2);
        self.dead = 0;
        self.index.clear();
        for (pos, slot) in self.slots.iter().enumerate() {
            let slots = &self.slots;
            self.index
                .insert_unique(hash(&slot.name), pos as u32, |&p| {
                    hash(&slots[p as usize].name)
                });
        }
    }

    /// The live entries whose sequence number is below `bound`, newest first.
    pub fn entries_below(&self, bound: u64) -> impl Iterator<Item = (u64, &OsStr, &Rc<Inode>)> {
        let end = self.slots.partition_point(|s| s.seq < bound);
        self.slots[..end]
            .iter()
            .rev()
            .filter_map(|s| s.inode.as_ref().map(|i| (s.seq, &*s.name, i)))
    }

    /// Every live entry, newest first.
    #[cfg(test)]
    pub fn entries(&self) -> impl Iterator<Item = (&OsStr, &Rc<Inode>)> {
        self.entries_below(u64::MAX).map(|(_, n, i)| (n, i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inode::{Content, Inode};

    fn inode(id: u64) -> Rc<Inode> {
        Rc::new(Inode::new(
            id,
            crate::inode::S_IFREG | 0o644,
            0,
            0,
            Content::File(None),
            std::time::SystemTime::UNIX_EPOCH,
        ))
    }

    fn names(d: &Dir) -> Vec<String> {
        d.entries()
            .map(|(n, _)| n.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn insert_get_remove() {
        let mut d = Dir::new(Weak::new());
        d.insert(OsStr::new("a"), inode(1));
        d.insert(OsStr::new("b"), inode(2));
        assert_eq!(d.get(OsStr::new("a")).unwrap().id, 1);
        assert_eq!(d.len(), 2);
        assert_eq!(names(&d), ["b", "a"]);
        assert_eq!(d.remove(OsStr::new("a")).unwrap().id, 1);
        assert!(d.get(OsStr::new("a")).is_none());
        assert!(d.remove(OsStr::new("a")).is_none());
        d.insert(OsStr::new("a"), inode(3));
        assert_eq!(names(&d), ["a", "b"]);
        assert_eq!(d.get(OsStr::new("a")).unwrap().id, 3);
    }

    /// A scan that removes entries as it goes sees every other entry exactly once,
    /// across sweeps.
    #[test]
    fn cookies_survive_removal_and_sweeps() {
        let mut d = Dir::new(Weak::new());
        for i in 0..1000u64 {
            d.insert(OsStr::new(&format!("f{i}")), inode(i));
        }
        let mut seen = Vec::new();
        let mut bound = u64::MAX;
        loop {
            // Take a "reply" of 7 entries from the cookie, then remove some entries
            // not yet seen and all of the ones seen.
            let batch: Vec<(u64, String)> = d
                .entries_below(bound)
                .take(7)
                .map(|(s, n, _)| (s, n.to_string_lossy().into_owned()))
                .collect();
            let Some(&(last, _)) = batch.last() else {
                break;
            };
            bound = last;
            for (_, n) in &batch {
                d.remove(OsStr::new(n));
                seen.push(n.clone());
            }
            let next: Vec<String> = d
                .entries_below(bound)
                .step_by(5)
                .take(2)
                .map(|(_, n, _)| n.to_string_lossy().into_owned())
                .collect();
            for n in next {
                d.remove(OsStr::new(&n));
            }
        }
        let mut uniq = seen.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), seen.len());
        assert!(seen.len() > 500, "{}", seen.len());
        assert!(d.is_empty());
        assert!(d.slots.len() < 100, "sweeps keep the slots bounded");
    }
}
