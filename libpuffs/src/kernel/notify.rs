//! The fuser side of kernel notifications: writes each queued `Notice` with fuser's
//! `Notifier` (on the notifier's own thread, never the loop's: see `crate::notify`).

use fuser::INodeNo;

use crate::notify::{Notice, Sender};

/// The function the notifier's thread calls for each notice, writing to the mount's
/// /dev/fuse channel.
pub(crate) fn sender(n: fuser::Notifier) -> Sender {
    Box::new(move |notice| match notice {
        Notice::InvalInode { ino, offset, len } => n.inval_inode(INodeNo(*ino), *offset, *len),
        Notice::InvalEntry { parent, name } => n.inval_entry(INodeNo(*parent), name),
        Notice::Delete {
            parent,
            child,
            name,
        } => n.delete(INodeNo(*parent), INodeNo(*child), name),
        Notice::Store { ino, offset, data } => n.store(INodeNo(*ino), *offset, data),
    })
}
