//! Stopping a mount: the flag that asks the mainloop to unmount and return, and the
//! `ExitHandle` that sets it from any thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::wakeup::Wakeup;

/// "Unmount and return", set from the loop thread (`Cx::exit`) or from any thread
/// through an `ExitHandle`.
#[derive(Clone, Default)]
pub(crate) struct ExitFlag(Arc<AtomicBool>);

impl ExitFlag {
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub(crate) fn set(&self, on: bool) {
        self.0.store(on, Ordering::SeqCst);
    }
}

/// Stops a mount from any thread: `exit()` asks its mainloop to unmount cleanly and
/// return, as SIGTERM would. Get one with `Mounted::exit_handle`; it is `Send`,
/// `Sync` and `Clone`, and outlives the mount harmlessly (calling it after the loop has
/// returned does nothing).
#[derive(Clone)]
pub struct ExitHandle {
    pub(crate) flag: ExitFlag,
    pub(crate) wakeup: Arc<Wakeup>,
}

impl ExitHandle {
    /// Asks the mainloop to unmount and return; returns at once, without waiting.
    pub fn exit(&self) {
        self.flag.set(true);
        // Unconditionally: the loop does not look at the flag between deciding to
        // sleep and sleeping, so a wake that depends on it being asleep could be lost.
        self.wakeup.wake_now();
    }
}

impl std::fmt::Debug for ExitHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExitHandle")
            .field("requested", &self.flag.get())
            .finish()
    }
}
