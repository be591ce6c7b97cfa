//! Kernel passthrough replies: registers a `Backing` with the kernel (fuser's
//! `open_backing`, a `BackingId` kept inside the `Backing` until it is dropped) and
//! answers the open with it, or as an ordinary open when the kernel refuses.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use fuser::{BackingId, FopenFlags};

use crate::passthrough::{Backing, BackingState};

/// The kernel's id for `b`, registered through `register` on first use; None when
/// the kernel refuses it (logged once per mount process).
pub(super) fn backing_id<'a>(
    b: &'a Backing,
    register: impl FnOnce(&Backing) -> io::Result<BackingId>,
) -> Option<std::cell::Ref<'a, BackingId>> {
    if matches!(*b.state.borrow(), BackingState::New) {
        let next = match register(b) {
            Ok(id) => BackingState::Registered(Box::new(id)),
            Err(e) => {
                static WARNED: AtomicBool = AtomicBool::new(false);
                if !WARNED.swap(true, Ordering::Relaxed) {
                    log::warn!("kernel passthrough refused ({e}); file data goes through the fs");
                }
                BackingState::Refused
            }
        };
        *b.state.borrow_mut() = next;
    }
    std::cell::Ref::filter_map(b.state.borrow(), |s| match s {
        BackingState::Registered(id) => id.downcast_ref::<BackingId>(),
        _ => None,
    })
    .ok()
}

/// The open flags the kernel takes with a passthrough open: it refuses the open
/// (EIO to the caller) with any other, such as KEEP_CACHE or NONSEEKABLE, which mean
/// nothing when it does the I/O itself.
pub(super) fn passthrough_flags(flags: FopenFlags) -> FopenFlags {
    flags & FopenFlags::FOPEN_DIRECT_IO
}
