//! hellofs: a read-only file system with one file, /hello, that says hello.
//! The smallest complete puffs file system: lookup, getattr, readdir and read.

use std::ffi::OsStr;
use std::time::{Duration, SystemTime};

use puffs::{
    Attr, AttrReply, Cx, Data, DirBuf, Entry, EntryOf, Errno, FileType, Node, OpResult, Ops,
};

const GREETING: &[u8] = b"Hello, world!\n";
const FILE_NAME: &str = "hello";

/// The two nodes there are; the enum is both the node key and the node data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HelloNode {
    Root,
    Hello,
}

pub struct Hello {
    /// All times are the mount time: nothing ever changes.
    born: SystemTime,
}

impl Hello {
    pub fn new() -> Self {
        Hello {
            born: SystemTime::now(),
        }
    }

    fn attr(&self, node: HelloNode) -> Attr {
        let mut a = match node {
            HelloNode::Root => Attr::new(FileType::Directory, 0o555),
            HelloNode::Hello => Attr::new(FileType::RegularFile, 0o444),
        };
        if node == HelloNode::Hello {
            a.size = GREETING.len() as u64;
            a.blocks = 1; // 512-byte blocks: what `ls -s` and `du` count
        }
        (a.atime, a.mtime, a.ctime) = (self.born, self.born, self.born);
        a
    }
}

#[puffs::ops]
impl Ops for Hello {
    type Node = HelloNode;
    type Key = HelloNode;

    fn root(&self) -> (HelloNode, HelloNode) {
        (HelloNode::Root, HelloNode::Root)
    }

    async fn lookup(
        &self,
        _cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        if **dir != HelloNode::Root || name != FILE_NAME {
            return Err(Errno::ENOENT);
        }
        let node = HelloNode::Hello;
        let mut entry = Entry::new(node, node, self.attr(node));
        // Nothing ever changes: the kernel may cache the name for as long as it likes.
        entry.entry_ttl = Some(Duration::from_secs(3600));
        Ok(entry)
    }

    async fn getattr(
        &self,
        _cx: &Cx<Self>,
        node: &Node<Self>,
        _file: Option<&Self::File>,
    ) -> OpResult<AttrReply> {
        Ok(self.attr(**node).into())
    }

    async fn readdir(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        _open: &Self::Dir,
        offset: u64,
        out: &mut DirBuf,
    ) -> OpResult<()> {
        if **dir != HelloNode::Root {
            return Err(Errno::ENOTDIR);
        }
        let hello_ino = cx.node_by_key(&HelloNode::Hello).map_or(2, |n| n.ino());
        let entries = [
            (dir.ino(), FileType::Directory, "."),
            (dir.ino(), FileType::Directory, ".."),
            (hello_ino, FileType::RegularFile, FILE_NAME),
        ];
        // The cookie of an entry is its index + 1: where the next readdir starts.
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if !out.add(*ino, i as u64 + 1, *kind, OsStr::new(name)) {
                break;
            }
        }
        Ok(())
    }

    async fn read(
        &self,
        _cx: &Cx<Self>,
        node: &Node<Self>,
        _file: &Self::File,
        offset: u64,
        size: u32,
    ) -> OpResult<Data> {
        if **node != HelloNode::Hello {
            return Err(Errno::EISDIR);
        }
        let start = (offset as usize).min(GREETING.len());
        let end = start.saturating_add(size as usize).min(GREETING.len());
        // A slice of a static: sent to the kernel as it is, no copy.
        Ok(GREETING[start..end].into())
    }
}
