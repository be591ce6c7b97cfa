//! Open files and directories of a null layer, by the fh the kernel gives back, and
//! the choice between kernel passthrough and serving an open file's data.
//!
//! Passthrough rule (the kernel's): all passthrough opens of one inode share one
//! backing file, and an inode is either in passthrough or in page-cached mode while
//! files are open on it. So an open goes through the kernel only while the node has no
//! page-cached open, and reuses the node's backing file; once the kernel refuses a
//! backing file the layer stops trying for the rest of the mount.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;

use super::node::NullNode;
use super::ops::DirEnt;
use crate::passthrough::Backing;
use crate::Errno;

/// One open file or directory.
pub(crate) enum OpenFile {
    /// A file open for I/O; `passthrough`: the kernel does its I/O (counted in the
    /// node's passthrough opens, else in its cached ones).
    File { fd: Arc<OwnedFd>, passthrough: bool },
    /// A directory: its O_PATH fd and the listing readdir serves (taken at offset 0).
    Dir {
        fd: Arc<OwnedFd>,
        entries: RefCell<Rc<Vec<DirEnt>>>,
    },
}

/// The open files, by fh.
#[derive(Default)]
pub(crate) struct OpenFiles {
    files: HashMap<u64, Rc<OpenFile>>,
    next: u64,
}

impl OpenFiles {
    /// Keeps `f`; returns its fh.
    pub fn insert(&mut self, f: OpenFile) -> u64 {
        self.next += 1;
        self.files.insert(self.next, Rc::new(f));
        self.next
    }

    /// The open file `fh` names.
    pub fn get(&self, fh: u64) -> Result<Rc<OpenFile>, Errno> {
        self.files.get(&fh).cloned().ok_or(Errno::EBADF)
    }

    /// Forgets `fh`.
    pub fn remove(&mut self, fh: u64) -> Option<Rc<OpenFile>> {
        self.files.remove(&fh)
    }
}

impl OpenFile {
    /// The fd of an open file (EBADF for a directory).
    pub fn file_fd(&self) -> Result<&Arc<OwnedFd>, Errno> {
        match self {
            OpenFile::File { fd, .. } => Ok(fd),
            OpenFile::Dir { .. } => Err(Errno::EISDIR),
        }
    }
}

/// The backing file a new open of `node` (open on `fd`) hands to the kernel, or None
/// to serve its data; counts the open either way. `enabled`: the mount still tries
/// passthrough. An open beside passthrough opens is always passthrough (even of a
/// file made set-id since: the kernel would refuse a page-cached one), and one beside
/// page-cached opens never is.
pub(crate) fn choose_passthrough(
    node: &NullNode,
    fd: &Arc<OwnedFd>,
    enabled: bool,
) -> Option<Rc<Backing>> {
    let mut p = node.passthrough.borrow_mut();
    let refused = p.backing.as_ref().is_some_and(|b| b.refused());
    if let (Some(b), false) = (&p.backing, refused) {
        // Passthrough opens exist: the kernel takes no other kind beside them.
        let b = Rc::clone(b);
        p.opens += 1;
        return Some(b);
    }
    // A set-id file's writes must reach the fs, which clears the bits; and no
    // passthrough open beside page-cached ones.
    if !enabled || refused || p.cached > 0 || node.setid.get() {
        p.cached += 1;
        return None;
    }
    p.opens += 1;
    let b = p
        .backing
        .get_or_insert_with(|| Rc::new(Backing::new(Arc::clone(fd))));
    Some(Rc::clone(b))
}

/// Whether the kernel refused `node`'s backing file (the mount should stop trying).
pub(crate) fn refused(node: &NullNode) -> bool {
    let p = node.passthrough.borrow();
    p.backing.as_ref().is_some_and(|b| b.refused())
}

/// The open file that counted as passthrough or not is released. Returns whether the
/// kernel had refused the node's backing file (the mount should stop trying: the
/// refusal is forgotten with the backing file).
pub(crate) fn released(node: &NullNode, passthrough: bool) -> bool {
    let mut p = node.passthrough.borrow_mut();
    let refused = p.backing.as_ref().is_some_and(|b| b.refused());
    if passthrough {
        p.opens = p.opens.saturating_sub(1);
        if p.opens == 0 {
            // The kernel's registration goes with the last Rc.
            p.backing = None;
        }
    } else {
        p.cached = p.cached.saturating_sub(1);
    }
    refused
}
