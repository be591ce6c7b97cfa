//! Open files and directories of a null layer (the objects the framework keeps per
//! kernel file handle: [`NullFile`], [`NullDir`]), and the choice between kernel
//! passthrough and serving an open file's data.
//!
//! Passthrough rule (the kernel's): all passthrough opens of one inode share one
//! backing file, and an inode is either in passthrough or in page-cached mode while
//! files are open on it. So an open goes through the kernel only while the node has no
//! page-cached open, and reuses the node's backing file; once the kernel refuses a
//! backing file the layer stops trying for the rest of the mount.

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;

use super::node::NullNode;
use super::ops::DirEnt;
use crate::passthrough::Backing;

/// An open file of a null layer: the backing file open for I/O (closed when the
/// framework drops it, after release).
pub struct NullFile {
    pub(crate) fd: Arc<OwnedFd>,
    /// The kernel does its I/O (counted in the node's passthrough opens, else in its
    /// cached ones).
    pub(crate) passthrough: bool,
}

impl NullFile {
    /// The backing file's fd.
    pub fn fd(&self) -> &Arc<OwnedFd> {
        &self.fd
    }
}

/// An open directory of a null layer: its O_PATH fd and the listing readdir serves
/// (taken afresh at offset 0, or at the first readdir when that starts elsewhere, as
/// after seekdir on a new stream).
pub struct NullDir {
    pub(crate) fd: Arc<OwnedFd>,
    pub(crate) entries: RefCell<Option<Rc<Vec<DirEnt>>>>,
}

impl NullDir {
    /// An open directory on `fd`, not listed yet.
    pub(crate) fn new(fd: Arc<OwnedFd>) -> NullDir {
        NullDir {
            fd,
            entries: RefCell::default(),
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
