//! The limits of a memfs mount (`-o size=`, `-o inodes=`) and what is used of them,
//! counted the way tmpfs counts:
//!
//! - data pages (4 KiB) of regular files and of long symlinks count against `size`;
//! - every inode, and every extra hard link to one, takes `INODE_SPACE` bytes of the
//!   "inode space" (`inodes * INODE_SPACE`), and so does each extended attribute, by
//!   its name and value length. statvfs reports the free inode space in inodes.
//!
//! A limit of 0 means unlimited, and statvfs then reports 0 for that limit, like tmpfs.

use std::cell::Cell;

use puffs::{Errno, Statvfs};

use crate::data::PAGE;

/// What one inode (or one extra hard link) takes of the inode space (tmpfs's
/// BOGO_INODE_SIZE).
pub const INODE_SPACE: u64 = 1024;

#[derive(Debug)]
pub struct Space {
    max_pages: u64,
    used_pages: Cell<u64>,
    max_inodes: u64,
    free_ispace: Cell<u64>,
}

impl Space {
    /// Limits of `size` bytes (rounded up to pages) and `inodes` inodes; 0 is unlimited.
    pub fn new(size: u64, inodes: u64) -> Space {
        Space {
            max_pages: size.div_ceil(PAGE),
            used_pages: Cell::new(0),
            max_inodes: inodes,
            free_ispace: Cell::new(inodes.saturating_mul(INODE_SPACE)),
        }
    }

    /// Takes `n` pages, or nothing when fewer than `n` are free.
    pub fn alloc_pages(&self, n: u64) -> bool {
        let used = self.used_pages.get();
        if self.max_pages != 0 && self.max_pages - used < n {
            return false;
        }
        self.used_pages.set(used + n);
        true
    }

    pub fn free_pages(&self, n: u64) {
        self.used_pages.set(self.used_pages.get() - n);
    }

    /// Pages in use (data and long symlinks).
    pub fn used_pages(&self) -> u64 {
        self.used_pages.get()
    }

    /// Takes the inode space of one inode or hard link: ENOSPC when there is none.
    pub fn reserve_inode(&self) -> Result<(), Errno> {
        if self.charge(INODE_SPACE) {
            Ok(())
        } else {
            Err(Errno::ENOSPC)
        }
    }

    /// What an extended attribute takes of the inode space (tmpfs's
    /// simple_xattr_space), 0 when inodes are unlimited.
    pub fn xattr_space(&self, name_len: usize, value_len: usize) -> u64 {
        if self.max_inodes == 0 {
            0
        } else {
            40 + name_len as u64 + value_len as u64
        }
    }

    /// Takes `bytes` of the inode space, or nothing when they are not free.
    pub fn charge(&self, bytes: u64) -> bool {
        if self.max_inodes == 0 {
            return true;
        }
        let free = self.free_ispace.get();
        if free < bytes {
            return false;
        }
        self.free_ispace.set(free - bytes);
        true
    }

    /// Gives back `bytes` of the inode space.
    pub fn release(&self, bytes: u64) {
        if self.max_inodes != 0 {
            self.free_ispace.set(self.free_ispace.get() + bytes);
        }
    }

    pub fn statvfs(&self) -> Statvfs {
        let mut s = Statvfs {
            bsize: PAGE as u32,
            frsize: PAGE as u32,
            namemax: crate::inode::NAME_MAX as u32,
            ..Statvfs::default()
        };
        if self.max_pages != 0 {
            s.blocks = self.max_pages;
            s.bfree = self.max_pages - self.used_pages.get();
            s.bavail = s.bfree;
        }
        if self.max_inodes != 0 {
            s.files = self.max_inodes;
            s.ffree = self.free_ispace.get() / INODE_SPACE;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_run_out_all_or_nothing() {
        let s = Space::new(3 * PAGE - 1, 0);
        assert!(!s.alloc_pages(4));
        assert!(s.alloc_pages(3));
        assert!(!s.alloc_pages(1));
        s.free_pages(2);
        assert_eq!(s.statvfs().bfree, 2);
        assert_eq!(s.statvfs().blocks, 3);
    }

    #[test]
    fn inode_space_counts_xattrs_like_tmpfs() {
        let s = Space::new(0, 3);
        s.reserve_inode().unwrap();
        assert_eq!(s.statvfs().ffree, 2);
        assert!(s.charge(s.xattr_space("user.a".len(), 1)));
        assert_eq!(s.statvfs().ffree, 1); // 2047 bytes free: one whole inode
        s.reserve_inode().unwrap();
        assert_eq!(s.reserve_inode(), Err(Errno::ENOSPC));
        s.release(47);
        s.reserve_inode().unwrap();
        assert_eq!(s.statvfs().ffree, 0);
    }

    #[test]
    fn zero_is_unlimited() {
        let s = Space::new(0, 0);
        assert!(s.alloc_pages(u64::MAX / 2));
        for _ in 0..10 {
            s.reserve_inode().unwrap();
        }
        let v = s.statvfs();
        assert_eq!((v.blocks, v.bfree, v.files, v.ffree), (0, 0, 0, 0));
    }
}
