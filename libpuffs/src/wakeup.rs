//! Waking the mainloop from other threads, once per batch: a reader thread or a waker
//! pokes the loop's `event::Waker` only when the loop has said it is going to sleep.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::event::{Poller, Token, Waker};

pub(crate) struct Wakeup {
    sleeping: AtomicBool,
    waker: Waker,
}

impl Wakeup {
    pub(crate) fn new(poller: &mut Poller, token: Token) -> io::Result<Self> {
        Ok(Wakeup {
            sleeping: AtomicBool::new(false),
            waker: Waker::new(poller, token)?,
        })
    }

    /// Called after queueing work: wakes the loop if (and only if) it sleeps.
    pub(crate) fn wake(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            if let Err(e) = self.waker.wake() {
                log::error!("cannot wake the mainloop: {e}");
            }
        }
    }

    /// Wakes the loop whether or not it sleeps (for a request that the loop does not
    /// look for before sleeping, such as an exit from another thread): a spare wake
    /// only costs one empty poll.
    pub(crate) fn wake_now(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            log::error!("cannot wake the mainloop: {e}");
        }
    }

    /// The loop is about to sleep. It must look at its queues once more after this and
    /// before sleeping, so that work queued just before is not missed.
    pub(crate) fn going_to_sleep(&self) {
        self.sleeping.store(true, Ordering::SeqCst);
    }

    /// The loop is awake (woken, timed out, or it found work before sleeping).
    pub(crate) fn awake(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// Clears the waker's readiness after it fired.
    pub(crate) fn reset(&self) {
        self.waker.reset();
    }
}
