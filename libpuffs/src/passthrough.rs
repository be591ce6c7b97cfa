//! Kernel passthrough (FUSE_PASSTHROUGH, Linux 6.9+): an open file whose reads, writes
//! and mmap the kernel does on a backing file itself, without asking the file system.
//!
//! A file system hands a [`Backing`] in [`Open::passthrough`](crate::Open::passthrough). The
//! framework registers its fd with the kernel on the first open reply that carries it
//! (the kernel's "backing id") and keeps the registration as long as the `Backing`
//! lives: keep it until the last open file using it is released. The kernel allows one
//! backing file per inode at a time, and no page-cached open of an inode while a
//! passthrough open of it exists (and back): give every passthrough open of one node
//! the same `Backing`, and open it without one only when it has no passthrough open.
//!
//! Where the kernel refuses (no FUSE_PASSTHROUGH negotiated, an unprivileged server,
//! an old kernel), the open is answered as an ordinary one and [`Backing::refused`]
//! says so from then on: the file system serves the data itself.

use std::any::Any;
use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// A backing file for kernel passthrough (see the module docs).
pub struct Backing {
    fd: Arc<OwnedFd>,
    pub(crate) state: RefCell<BackingState>,
}

/// Where a backing file's registration with the kernel stands.
pub(crate) enum BackingState {
    /// Not handed to the kernel yet.
    New,
    /// Registered: the kernel layer's handle on it (closed when dropped).
    Registered(Box<dyn Any>),
    /// The kernel refused it.
    Refused,
}

impl Backing {
    /// A backing file over `fd`, an fd open on the file's data (any access mode: the
    /// kernel reopens it with each open file's own flags).
    pub fn new(fd: Arc<OwnedFd>) -> Backing {
        Backing {
            fd,
            state: RefCell::new(BackingState::New),
        }
    }

    /// The backing fd.
    pub fn fd(&self) -> &Arc<OwnedFd> {
        &self.fd
    }

    /// Whether the kernel refused this backing file (the opens that carried it were
    /// answered as ordinary opens).
    pub fn refused(&self) -> bool {
        matches!(*self.state.borrow(), BackingState::Refused)
    }
}

impl std::fmt::Debug for Backing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match *self.state.borrow() {
            BackingState::New => "new",
            BackingState::Registered(_) => "registered",
            BackingState::Refused => "refused",
        };
        f.debug_struct("Backing")
            .field("fd", &self.fd)
            .field("state", &state)
            .finish()
    }
}

/// Two `Backing`s are equal when they are the same one.
impl PartialEq for Backing {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Backing {}
