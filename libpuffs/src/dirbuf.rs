//! Buffers that readdir and readdirplus fill. They count bytes the way the kernel's
//! reply buffer does, so an op stops exactly when the reply would overflow.

use std::ffi::OsStr;

use crate::attr::{DirEntry, FileType};
use crate::ops::{EntryOf, Ops};

/// Size of `struct fuse_dirent` before the name.
const DIRENT_HEADER: usize = 24;
/// Size of `struct fuse_entry_out` that precedes each dirent in readdirplus.
const ENTRY_OUT: usize = 128;

fn padded(len: usize) -> usize {
    (len + 7) & !7
}

/// Entries for one readdir reply.
#[derive(Debug)]
pub struct DirBuf {
    entries: Vec<DirEntry>,
    room: usize,
}

impl DirBuf {
    /// A buffer for a reply of at most `size` bytes.
    pub fn new(size: usize) -> Self {
        DirBuf {
            entries: Vec::new(),
            room: size,
        }
    }

    /// Adds an entry (`offset`: the cookie of the entry after it). Returns false, and
    /// adds nothing, when the reply is full: stop there.
    pub fn add(&mut self, ino: u64, offset: u64, kind: FileType, name: &OsStr) -> bool {
        let need = padded(DIRENT_HEADER + name.len());
        if need > self.room {
            return false;
        }
        self.room -= need;
        self.entries.push(DirEntry {
            ino,
            offset,
            kind,
            name: name.to_owned(),
        });
        true
    }

    /// Whether nothing was added (an empty reply: the end of the directory).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries added, in order (the framework turns them into the reply).
    pub fn into_entries(self) -> Vec<DirEntry> {
        self.entries
    }
}

/// One readdirplus entry: a name with its node entry (None for "." and "..", which the
/// kernel does not count as lookups).
pub struct DirPlusEntry<F: Ops> {
    /// The entry's name.
    pub name: std::ffi::OsString,
    /// The cookie of the entry after this one.
    pub offset: u64,
    /// The node the name leads to and its attributes, as lookup would answer.
    pub entry: EntryOf<F>,
}

/// Entries for one readdirplus reply.
pub struct DirPlusBuf<F: Ops> {
    entries: Vec<DirPlusEntry<F>>,
    room: usize,
}

impl<F: Ops> DirPlusBuf<F> {
    /// A buffer for a reply of at most `size` bytes.
    pub fn new(size: usize) -> Self {
        DirPlusBuf {
            entries: Vec::new(),
            room: size,
        }
    }

    /// Adds an entry with its node and attributes. Returns false, and adds nothing, when
    /// the reply is full. Entries that are added count as lookups of their nodes.
    pub fn add(&mut self, name: &OsStr, offset: u64, entry: EntryOf<F>) -> bool {
        let need = padded(ENTRY_OUT + DIRENT_HEADER + name.len());
        if need > self.room {
            return false;
        }
        self.room -= need;
        self.entries.push(DirPlusEntry {
            name: name.to_owned(),
            offset,
            entry,
        });
        true
    }

    /// Whether nothing was added (an empty reply: the end of the directory).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries added, in order (the framework turns them into the reply).
    pub fn into_entries(self) -> Vec<DirPlusEntry<F>> {
        self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirbuf_stops_at_the_reply_size_like_the_kernel_buffer() {
        // 24-byte header + 8-byte name = 32 bytes an entry: 4096 holds exactly 128.
        let mut b = DirBuf::new(4096);
        let mut n = 0;
        while b.add(
            n + 1,
            n + 1,
            FileType::RegularFile,
            OsStr::new(&format!("f{n:07}")),
        ) {
            n += 1;
        }
        assert_eq!(n, 128);
        assert_eq!(b.into_entries().len(), 128);
    }

    #[test]
    fn a_name_too_big_for_an_empty_buffer_is_refused() {
        let mut b = DirBuf::new(16);
        assert!(!b.add(1, 1, FileType::RegularFile, OsStr::new("x")));
        assert!(b.is_empty());
    }
}
