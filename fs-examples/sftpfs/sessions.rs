//! The set of SFTP sessions a mount talks through (`-o connections=N`) and how
//! requests are spread over it.
//!
//! With one session everything goes on it. With N ≥ 2, session 0 carries the
//! metadata (lookup, getattr, readdir, mkdir, rename, ...) and sessions 1..N carry the
//! data, so a bulk copy never queues an `ls` behind megabytes of reads and writes (as
//! psshfs -c 2). A file's data is striped over the data sessions in `STRIPE`-sized
//! pieces: the bytes of one stripe always travel on the same session, so two writes
//! (or a write and a read) of the same bytes are ordered by that session, as they are
//! with one. SFTP handles belong to a session, so an open file holds one handle per
//! data session it has used ([`crate::fs::OpenFile`]), opened lazily.
//!
//! Each session restarts on its own with `-o reconnect`. Without it the set is one
//! unit: once any session has ended, every op fails with ENOTCONN (requests waiting on
//! the dead one fail at once, those on live ones finish), as the mount does with one
//! session, rather than a file whose every other stripe fails.

use std::cell::{Cell, RefCell};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use puffs::{Cx, Errno, Ops};

use crate::conn::{Conn, Server};

/// How many bytes of a file go on one data session before the next takes over: a
/// multiple of the kernel's read sizes (128 KiB, 1 MiB), so its reads rarely straddle
/// two sessions.
pub const STRIPE: u64 = 1 << 20;

/// The most sessions one mount opens.
pub const MAX_CONNECTIONS: usize = 16;

/// One session of the set: the live connection and what it takes to restart it.
#[derive(Default)]
struct Slot {
    conn: RefCell<Option<Rc<Conn>>>,
    /// The session set up before mounting, until the loop gives it a channel.
    first: RefCell<Option<(UnixStream, Server)>>,
    /// 1, 2, ... per (re)start of this slot: handles of an older one are reopened.
    generation: Cell<u64>,
    reconnecting: Cell<bool>,
    last_failed: Cell<Option<Instant>>,
}

/// What restarting a session needs.
pub struct Restart {
    pub argv: Vec<String>,
    pub timeout: Duration,
    pub reconnect: bool,
}

pub struct Sessions {
    slots: Vec<Slot>,
    restart: Restart,
    /// Round robin over the data sessions for the first stripe of each opened file.
    next_base: Cell<usize>,
    /// A session ended without `reconnect`: the whole set is down.
    down: Cell<bool>,
}

impl Sessions {
    /// The set over sessions already past INIT, the first one carrying metadata.
    pub fn new(first: Vec<(UnixStream, Server)>, restart: Restart) -> Self {
        let slots = first
            .into_iter()
            .map(|s| Slot {
                first: RefCell::new(Some(s)),
                ..Slot::default()
            })
            .collect();
        Sessions {
            slots,
            restart,
            next_base: Cell::new(0),
            down: Cell::new(false),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The session of metadata requests.
    pub const META: usize = 0;

    /// How many sessions carry data.
    pub fn data_len(&self) -> usize {
        self.slots.len().saturating_sub(1).max(1)
    }

    /// The slot of data session `i` (0-based among the data sessions).
    pub fn data_slot(&self, i: usize) -> usize {
        if self.slots.len() == 1 {
            0
        } else {
            1 + i % self.data_len()
        }
    }

    /// The data session (by index) that a newly opened file starts on: files take
    /// turns, so many small files spread over the sessions too.
    pub fn next_base(&self) -> usize {
        let b = self.next_base.get();
        self.next_base.set((b + 1) % self.data_len());
        b
    }

    /// The live session of `slot`: the first one, or (with `-o reconnect`) a new one
    /// when the last has ended. Fails with ENOTCONN when there is none to be had.
    pub async fn get<F: Ops>(&self, cx: &Cx<F>, slot: usize) -> Result<Rc<Conn>, Errno> {
        let s = self.slots.get(slot).ok_or(Errno::EIO)?;
        self.open_first(cx);
        let deadline = Instant::now() + self.restart.timeout;
        loop {
            if !self.restart.reconnect && self.any_ended() {
                self.take_down();
            }
            if self.down.get() {
                return Err(Errno::ENOTCONN);
            }
            if let Some(c) = s.conn.borrow().as_ref().filter(|c| !c.is_closed()) {
                return Ok(Rc::clone(c));
            }
            if !self.restart.reconnect {
                self.take_down();
                return Err(Errno::ENOTCONN);
            }
            if Instant::now() >= deadline {
                return Err(Errno::ENOTCONN);
            }
            if s.reconnecting.get() {
                // Another request is reconnecting; its attempt is bounded by the timeout.
                cx.sleep(Duration::from_millis(10)).await;
                continue;
            }
            // A server that keeps failing is not restarted for every request.
            if let Some(t) = s.last_failed.get() {
                if t.elapsed() < Duration::from_secs(1) {
                    return Err(Errno::ENOTCONN);
                }
            }
            return self.reconnect(cx, slot).await;
        }
    }

    /// Gives every session set up before mounting its channel, all at the first
    /// request: a session that is not used yet is still watched, so its end is
    /// noticed.
    fn open_first<F: Ops>(&self, cx: &Cx<F>) {
        for (slot, s) in self.slots.iter().enumerate() {
            let Some((stream, server)) = s.first.borrow_mut().take() else {
                continue;
            };
            match Conn::open(cx, stream, server, self.restart.timeout, 1, slot) {
                Ok(c) => {
                    s.generation.set(1);
                    *s.conn.borrow_mut() = Some(c);
                }
                // Left without a connection: it counts as ended.
                Err(e) => log::warn!("sftpfs: session {slot}: {e}"),
            }
        }
    }

    /// Whether a session that was running has ended (its server or ssh went away).
    fn any_ended(&self) -> bool {
        self.slots
            .iter()
            .any(|s| s.conn.borrow().as_ref().is_some_and(|c| c.is_closed()))
    }

    /// A session ended and will not be restarted: all of them end.
    fn take_down(&self) {
        if !self.down.replace(true) && self.slots.len() > 1 {
            log::warn!("sftpfs: a session ended: closing all {}", self.len());
        }
        self.close_all();
    }

    async fn reconnect<F: Ops>(&self, cx: &Cx<F>, slot: usize) -> Result<Rc<Conn>, Errno> {
        let s = &self.slots[slot];
        s.reconnecting.set(true);
        // The old session's process is ended before a new one starts.
        drop(s.conn.borrow_mut().take());
        let generation = s.generation.get() + 1;
        log::info!("sftpfs: reconnecting session {slot} (start {generation})");
        let r = Conn::start(
            cx,
            &self.restart.argv,
            self.restart.timeout,
            generation,
            slot,
        )
        .await;
        s.reconnecting.set(false);
        match r {
            Ok(c) => {
                s.generation.set(generation);
                s.last_failed.set(None);
                *s.conn.borrow_mut() = Some(Rc::clone(&c));
                Ok(c)
            }
            Err(e) => {
                log::warn!("sftpfs: reconnect of session {slot} failed: {e}");
                s.last_failed.set(Some(Instant::now()));
                Err(Errno::ENOTCONN)
            }
        }
    }

    /// The live session of `slot`, if there is one; never starts one (for closing
    /// handles, which a new session does not have).
    pub fn current(&self, slot: usize) -> Option<Rc<Conn>> {
        self.slots
            .get(slot)?
            .conn
            .borrow()
            .as_ref()
            .filter(|c| !c.is_closed())
            .cloned()
    }

    /// Ends every session now (unmount, or the set went down).
    pub fn close_all(&self) {
        for s in &self.slots {
            if let Some(c) = s.conn.borrow_mut().take() {
                c.close();
            }
            s.first.borrow_mut().take();
        }
    }
}

/// One data session and the file's handle on it.
pub type Leg = (Rc<Conn>, Rc<[u8]>);

/// Where each stripe of one open file goes: its handle on every data session it
/// uses. A session the file could not be opened on (a file whose name is gone, say)
/// is stood in for by the session the file was opened on.
#[derive(Clone)]
pub struct Route {
    /// By data index; the one at `base` is always there.
    legs: Vec<Option<Leg>>,
    base: usize,
}

impl Route {
    pub fn new(legs: Vec<Option<Leg>>, base: usize) -> Self {
        debug_assert!(legs.get(base).is_some_and(Option::is_some));
        Route { legs, base }
    }

    /// The session and handle that carry the byte at `offset`.
    pub fn at(&self, offset: u64) -> (&Rc<Conn>, &Rc<[u8]>) {
        let n = self.legs.len() as u64;
        let i = ((offset / STRIPE + self.base as u64) % n) as usize;
        let leg = self.legs[i].as_ref().or(self.legs[self.base].as_ref());
        let (c, h) = leg.expect("a route has its base leg");
        (c, h)
    }

    /// `len` bytes at `offset` cut into requests of at most `max` bytes that never
    /// cross a stripe (with one data session: just `max`-sized, as always).
    pub fn pieces(&self, offset: u64, len: u32, max: u32) -> Vec<(u64, u32)> {
        pieces(offset, len, max, self.legs.len() > 1)
    }
}

/// `len` bytes at `offset` in requests of at most `max`, cut at stripe boundaries
/// when `striped`.
pub fn pieces(offset: u64, len: u32, max: u32, striped: bool) -> Vec<(u64, u32)> {
    let max = max.max(1);
    let end = offset + u64::from(len);
    let mut out = Vec::new();
    let mut at = offset;
    while at < end {
        let mut stop = (at + u64::from(max)).min(end);
        if striped {
            stop = stop.min((at / STRIPE + 1) * STRIPE);
        }
        out.push((at, (stop - at) as u32));
        at = stop;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_range_and_never_cross_a_stripe() {
        let max = 261_120;
        for (off, len) in [(0u64, 1u32 << 20), (5, 3 << 20), (STRIPE - 1, 2), (7, 0)] {
            let p = pieces(off, len, max, true);
            let mut at = off;
            for &(o, l) in &p {
                assert_eq!(o, at);
                assert!(l > 0 && l <= max);
                assert_eq!(o / STRIPE, (o + u64::from(l) - 1) / STRIPE);
                at += u64::from(l);
            }
            assert_eq!(at, off + u64::from(len));
        }
        // Unstriped: the old cut, `max` at a time from the offset.
        assert_eq!(
            pieces(STRIPE - 1, 3, 2, false),
            [(STRIPE - 1, 2), (STRIPE + 1, 1)]
        );
    }
}
