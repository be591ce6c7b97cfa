//! Write-behind. Without it each kernel WRITE waits a round trip for the server's
//! STATUS, and the kernel sends the next WRITE of a write(2) only after the reply: one
//! round trip per 128 KiB-1 MiB. Here a kernel WRITE is answered once its SFTP WRITEs
//! are queued on the channel (which owns their data), with up to `MAX_REQUESTS`
//! requests or `MAX_BYTES` bytes of one open file in flight; past that a write waits
//! for the oldest (flow control). The answers come later, to a callback.
//!
//! Errors are never lost: the first error of a deferred write is kept on the open file
//! and returned by its next write, or at the latest by flush (close(2)) or fsync, which
//! wait for every write in flight first. A session that ends fails its writes in flight
//! (the channel fails every request), so after a reconnect they are an error, never
//! replayed.
//!
//! Ordering: a WRITE's effect on the server is not assumed to be visible to requests
//! sent after it (OpenSSH's sftp-server runs requests in order, but the protocol lets a
//! server answer in any order and a future connection pool may send them on different
//! sessions). So what must see the data waits for the writes sent before it
//! ([`NodeWrites::settle`]): reads, setattr (truncate, utimes), copy_file_range, an
//! open with O_TRUNC. getattr does not wait: it reports at least the end of the writes
//! in flight or answered within the last deadline ([`NodeWrites::size_floor`]), so the
//! size the kernel sees never goes backwards. Answered ones count too because an
//! attribute request sent before a write was answered may be answered after it (its
//! reply frame is read first, but the write's callback runs at once while the
//! request's continuation runs later); any request sent earlier than a deadline ago
//! has been answered or failed by now, so after that the server's size is the truth.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::poll_fn;
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use puffs::Errno;
use sftp_codec::Request;

use crate::conn::Conn;

/// Requests of one open file in flight at once.
const MAX_REQUESTS: usize = 64;
/// Bytes of one open file in flight at once (OpenSSH's whole 2 MiB ssh channel window
/// several times over, so the window of ssh, not ours, is what limits).
const MAX_BYTES: usize = 16 << 20;

/// The writes of one open file that the server has not answered yet.
#[derive(Default)]
struct Window {
    /// The sequence number the next write gets.
    next: u64,
    /// Writes in flight by sequence number: their length and where they end.
    in_flight: BTreeMap<u64, (usize, u64)>,
    bytes: usize,
    /// The first error of a deferred write, until it is reported.
    error: Option<Errno>,
    /// Continuations waiting for room or for writes to finish.
    waiters: Vec<Waker>,
    /// The most writes in flight at once (for the debug log).
    most: usize,
    /// The end of the furthest answered write, and when the last answer came.
    answered: Option<(u64, Instant)>,
}

/// The write-behind state of one open file.
#[derive(Default)]
pub struct WriteBehind {
    w: RefCell<Window>,
    /// Whether its node knows it (see [`NodeWrites::add`]).
    on_node: Cell<bool>,
}

impl WriteBehind {
    /// The error of a deferred write, once: a later call finds none.
    pub fn take_error(&self) -> Result<(), Errno> {
        self.w.borrow_mut().error.take().map_or(Ok(()), Err)
    }

    /// Sends one WRITE of `data` at `offset` and returns once it is queued on the
    /// channel, after waiting for room in the window. Its answer comes later: an
    /// error is kept for [`take_error`](Self::take_error).
    pub async fn send(
        self: &Rc<Self>,
        conn: &Conn,
        handle: &[u8],
        offset: u64,
        data: &[u8],
    ) -> Result<(), Errno> {
        self.wait(|w| {
            w.in_flight.is_empty()
                || (w.in_flight.len() < MAX_REQUESTS && w.bytes + data.len() <= MAX_BYTES)
        })
        .await;
        self.take_error()?;
        let seq = {
            let mut w = self.w.borrow_mut();
            w.next += 1;
            w.next - 1
        };
        let this = Rc::clone(self);
        let req = Request::Write {
            handle,
            offset,
            data,
        };
        conn.call_queued(req, |r| r.into_status(), move |r| this.finished(seq, r))
            .await?;
        // Nothing ran since the request was queued, so its answer cannot have come.
        let mut w = self.w.borrow_mut();
        w.in_flight
            .insert(seq, (data.len(), offset + data.len() as u64));
        w.bytes += data.len();
        w.most = w.most.max(w.in_flight.len());
        Ok(())
    }

    /// A write's answer came (or its session ended).
    fn finished(&self, seq: u64, r: Result<(), Errno>) {
        let waiters = {
            let mut w = self.w.borrow_mut();
            if let Some((len, end)) = w.in_flight.remove(&seq) {
                w.bytes -= len;
                let furthest = w.answered.map_or(end, |(e, _)| e.max(end));
                w.answered = Some((furthest, Instant::now()));
            }
            if let Err(e) = r {
                log::debug!("sftpfs: deferred write failed: {e}");
                w.error.get_or_insert(e);
            }
            std::mem::take(&mut w.waiters)
        };
        waiters.into_iter().for_each(Waker::wake);
    }

    /// Waits until every write sent so far has been answered, then reports the first
    /// error of a deferred write (flush, fsync, release).
    pub async fn drain(&self) -> Result<(), Errno> {
        self.settle().await;
        self.take_error()
    }

    /// Waits until the writes sent so far have been answered (later ones may still
    /// be in flight).
    async fn settle(&self) {
        self.settle_upto(self.sent()).await
    }

    /// The sequence number below which writes have been sent.
    fn sent(&self) -> u64 {
        self.w.borrow().next
    }

    /// Waits until the writes numbered below `upto` have been answered.
    async fn settle_upto(&self, upto: u64) {
        self.wait(|w| w.in_flight.keys().next().is_none_or(|&s| s >= upto))
            .await
    }

    /// Waits until `ready` holds for the window; checked again at each answer.
    async fn wait(&self, ready: impl Fn(&Window) -> bool) {
        poll_fn(|cx| {
            let mut w = self.w.borrow_mut();
            if ready(&w) {
                Poll::Ready(())
            } else {
                w.waiters.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// The end of the furthest write in flight, or answered less than `recent` ago.
    fn size_floor(&self, recent: Duration) -> Option<u64> {
        let w = self.w.borrow();
        let answered = w.answered.filter(|(_, at)| at.elapsed() < recent);
        let in_flight = w.in_flight.values().map(|(_, end)| *end);
        in_flight.chain(answered.map(|(end, _)| end)).max()
    }

    /// Whether a write is in flight.
    fn busy(&self) -> bool {
        !self.w.borrow().in_flight.is_empty()
    }

    /// The most writes that were in flight at once.
    pub fn most_in_flight(&self) -> usize {
        self.w.borrow().most
    }
}

/// The open files of a node that have written: what reads and getattr of the node
/// consult, whichever open file (or none) they come through.
#[derive(Default)]
pub struct NodeWrites(RefCell<Vec<Weak<WriteBehind>>>);

impl NodeWrites {
    /// `file` writes to this node (remembered once; closed files drop out).
    pub fn add(&self, file: &Rc<WriteBehind>) {
        if file.on_node.replace(true) {
            return;
        }
        let mut files = self.0.borrow_mut();
        files.retain(|f| f.strong_count() > 0);
        files.push(Rc::downgrade(file));
    }

    fn files(&self) -> Vec<Rc<WriteBehind>> {
        self.0.borrow().iter().filter_map(Weak::upgrade).collect()
    }

    /// Waits until the writes sent to the node so far have been answered, through
    /// any open file. Their errors stay with their files.
    pub async fn settle(&self) {
        let now: Vec<(Rc<WriteBehind>, u64)> = self
            .files()
            .into_iter()
            .map(|f| {
                let upto = f.sent();
                (f, upto)
            })
            .collect();
        for (f, upto) in now {
            f.settle_upto(upto).await;
        }
    }

    /// The size the node has at least, by our own writes: the end of the furthest one
    /// in flight, or answered less than `recent` (the request deadline) ago.
    pub fn size_floor(&self, recent: Duration) -> Option<u64> {
        self.files()
            .iter()
            .filter_map(|f| f.size_floor(recent))
            .max()
    }

    /// Whether a write to the node is in flight.
    pub fn busy(&self) -> bool {
        self.files().iter().any(|f| f.busy())
    }

    /// The node's size was set by us after its writes settled (truncate, O_TRUNC):
    /// the ends of answered writes no longer bound it.
    pub fn sized(&self) {
        for f in self.files() {
            f.w.borrow_mut().answered = None;
        }
    }
}
