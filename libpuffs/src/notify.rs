//! Kernel notifications (puffs' `puffs_inval_*`, FUSE notify): the file system tells
//! the kernel that something it caches changed behind its back (a network file
//! system's server, a timer, another mount of the same data).
//!
//! The kernel may block a notification until a related request is answered: an entry
//! invalidation takes the directory's lock, which a lookup in that directory holds
//! until we reply; an inode invalidation with the writeback cache waits for dirty
//! pages to be written, which takes WRITE requests (libfuse documents the deadlock).
//! Sent from the loop, either would wait for the loop itself. So nothing here writes
//! to the kernel: a [`Notifier`] queues the notice and returns at once, and a sender
//! thread of its own writes the queue to the kernel in order. The fuser side of that
//! thread is `kernel::notify`; this file knows no transport.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::errno::Errno;

/// How many notices may wait for the sender thread; past it, a notification is
/// refused with EAGAIN rather than growing memory without bound.
const MAX_QUEUED: usize = 4096;

/// One notification, owned, waiting for the sender thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Notice {
    /// Attributes of `ino`, and its cached data from `offset` for `len` bytes (a
    /// negative offset: attributes only; len 0: to the end).
    InvalInode { ino: u64, offset: i64, len: i64 },
    /// The name `name` in the directory `parent`.
    InvalEntry { parent: u64, name: OsString },
    /// `name` in `parent`, which named `child`, is gone (inotify watchers hear it).
    Delete {
        parent: u64,
        child: u64,
        name: OsString,
    },
    /// `data` belongs in the page cache of `ino` at `offset`.
    Store {
        ino: u64,
        offset: u64,
        data: Vec<u8>,
    },
}

/// What the sender thread calls for each notice: writes it to the kernel.
pub(crate) type Sender = Box<dyn FnMut(&Notice) -> io::Result<()> + Send>;

/// How many notifications went out, for tests and measurements.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotifyStats {
    /// Queued and not yet written.
    pub queued: u64,
    /// Written, and accepted by the kernel.
    pub sent: u64,
    /// Written, and refused by the kernel (logged at debug level).
    pub failed: u64,
}

#[derive(Default)]
struct Queue {
    notices: VecDeque<Notice>,
    /// A sender thread is running (between mount and the loop's return).
    connected: bool,
    /// The mount is gone: the sender thread ends, notices are refused.
    closed: bool,
    /// The sender thread is writing a notice it has taken off the queue.
    busy: bool,
    stats: NotifyStats,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a notice is queued or the notifier closes.
    ready: Condvar,
}

/// Sends notifications to the kernel about nodes whose cached names, attributes or
/// data changed without the kernel's doing (puffs_inval_*). Get one with
/// [`Cx::notifier`](crate::Cx::notifier) or
/// [`PuffsUserMount::notifier`](crate::PuffsUserMount::notifier); it is `Send`, `Sync`
/// and `Clone`, and safe to call from anywhere, inside an op included: each call only
/// queues the notice and returns, and a thread of the mount writes the queue to the
/// kernel in order (the kernel may hold a notification until a related request is
/// answered, so the loop never writes one itself).
///
/// Each call returns `Err(ENOTCONN)` when the file system is not mounted (before
/// `mount`, after the loop returned), and `Err(EAGAIN)` when 4096 notices are already
/// waiting. The kernel's own answer comes later and is only logged: a node it no
/// longer caches is no error (there was nothing to invalidate).
#[derive(Clone, Default)]
pub struct Notifier {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Notifier {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.shared.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the sender thread, which hands each queued notice to `send`.
    pub(crate) fn connect(&self, send: Sender) -> io::Result<()> {
        let me = self.clone();
        std::thread::Builder::new()
            .name("puffs-notify".into())
            .spawn(move || me.serve(send))?;
        let mut q = self.lock();
        q.connected = true;
        q.closed = false;
        Ok(())
    }

    /// The mount is gone: the sender thread drops what is left and ends (after the
    /// notice it may be writing), and later notifications are refused.
    pub(crate) fn close(&self) {
        let mut q = self.lock();
        q.closed = true;
        q.connected = false;
        q.stats.queued = 0;
        q.notices.clear();
        drop(q);
        self.shared.ready.notify_all();
    }

    /// The sender thread: writes notices in order until the notifier closes.
    fn serve(&self, mut send: Sender) {
        let mut q = self.lock();
        loop {
            if q.closed {
                return;
            }
            let Some(notice) = q.notices.pop_front() else {
                q = self.shared.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            q.busy = true;
            drop(q);
            let result = send(&notice);
            if let Err(e) = &result {
                log::debug!("the kernel refused {notice:?}: {e}");
            }
            q = self.lock();
            q.busy = false;
            q.stats.queued = q.stats.queued.saturating_sub(1);
            match result {
                Ok(()) => q.stats.sent += 1,
                Err(_) => q.stats.failed += 1,
            }
            self.shared.ready.notify_all();
        }
    }

    fn queue(&self, notice: Notice) -> Result<(), Errno> {
        let mut q = self.lock();
        if !q.connected || q.closed {
            return Err(Errno::ENOTCONN);
        }
        if q.notices.len() >= MAX_QUEUED {
            return Err(Errno::EAGAIN);
        }
        q.notices.push_back(notice);
        q.stats.queued += 1;
        drop(q);
        self.shared.ready.notify_all();
        Ok(())
    }

    /// The attributes of `ino` changed: the kernel asks getattr again on next use,
    /// whatever the attr timeout (`FUSE_NOTIFY_INVAL_INODE` with a negative offset).
    pub fn inval_attr(&self, ino: u64) -> Result<(), Errno> {
        self.queue(Notice::InvalInode {
            ino,
            offset: -1,
            len: 0,
        })
    }

    /// The data of `ino` from `offset` for `len` bytes changed (len 0: to the end of
    /// the file): the kernel drops those cached pages, and the attributes with them,
    /// so the next read comes to the file system. With the writeback cache, the kernel
    /// first writes back dirty pages in the range (the sender thread waits for that,
    /// never the loop).
    pub fn inval_data(&self, ino: u64, offset: u64, len: u64) -> Result<(), Errno> {
        let offset = i64::try_from(offset).map_err(|_| Errno::EINVAL)?;
        let len = i64::try_from(len).map_err(|_| Errno::EINVAL)?;
        self.queue(Notice::InvalInode { ino, offset, len })
    }

    /// The name `name` in directory `parent` changed (it is gone, or names another
    /// node now): the kernel drops the cached entry and looks it up again on next use.
    pub fn inval_entry(&self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        self.queue(Notice::InvalEntry {
            parent,
            name: name.to_owned(),
        })
    }

    /// `name` in `parent`, which named node `child`, was deleted: like
    /// [`inval_entry`](Self::inval_entry), and inotify/fanotify watchers see the
    /// deletion (`FUSE_NOTIFY_DELETE`).
    pub fn delete(&self, parent: u64, child: u64, name: &OsStr) -> Result<(), Errno> {
        self.queue(Notice::Delete {
            parent,
            child,
            name: name.to_owned(),
        })
    }

    /// Puts `data` into the kernel's page cache of `ino` at `offset`, so that reads
    /// of it need no request (a network file system that received data unasked). The
    /// kernel extends its idea of the file size to cover it.
    pub fn store(&self, ino: u64, offset: u64, data: impl Into<Vec<u8>>) -> Result<(), Errno> {
        self.queue(Notice::Store {
            ino,
            offset,
            data: data.into(),
        })
    }

    /// Counts of notices queued, sent and refused (for tests and measurements).
    #[doc(hidden)]
    pub fn stats(&self) -> NotifyStats {
        self.lock().stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn refused_until_connected_and_after_close() {
        let n = Notifier::default();
        assert_eq!(n.inval_attr(2), Err(Errno::ENOTCONN));
        n.connect(Box::new(|_| Ok(()))).unwrap();
        assert_eq!(n.inval_attr(2), Ok(()));
        n.close();
        assert_eq!(n.inval_attr(2), Err(Errno::ENOTCONN));
    }

    #[test]
    fn notices_go_out_in_order_from_another_thread() {
        let n = Notifier::default();
        let (tx, rx) = mpsc::channel();
        let caller = std::thread::current().id();
        n.connect(Box::new(move |notice| {
            assert_ne!(std::thread::current().id(), caller);
            tx.send(notice.clone()).unwrap();
            Ok(())
        }))
        .unwrap();
        n.inval_data(5, 0, 0).unwrap();
        n.inval_entry(1, OsStr::new("a")).unwrap();
        n.store(5, 3, b"xy".to_vec()).unwrap();
        let got: Vec<_> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(
            got,
            [
                Notice::InvalInode {
                    ino: 5,
                    offset: 0,
                    len: 0
                },
                Notice::InvalEntry {
                    parent: 1,
                    name: "a".into()
                },
                Notice::Store {
                    ino: 5,
                    offset: 3,
                    data: b"xy".to_vec()
                },
            ]
        );
        n.close();
    }

    #[test]
    fn a_blocked_sender_never_blocks_the_caller() {
        let n = Notifier::default();
        let (release, blocked) = mpsc::channel::<()>();
        n.connect(Box::new(move |_| {
            let _ = blocked.recv(); // the kernel holding a notification
            Ok(())
        }))
        .unwrap();
        // One is being written (forever); the queue fills: refused, never waited for.
        let refused = (0..MAX_QUEUED as u64 + 2).find(|&i| n.inval_attr(i).is_err());
        assert!(refused.is_some_and(|i| i >= MAX_QUEUED as u64));
        assert_eq!(n.inval_attr(0), Err(Errno::EAGAIN));
        drop(release);
        n.close();
    }
}
