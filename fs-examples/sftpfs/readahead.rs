//! Read-ahead of our own. The kernel reads 128 KiB at a time with a small window in
//! flight, which over a link with latency is a round trip per window. Once a file is
//! read sequentially, the reads that will come next (the same size, further on) are
//! sent ahead, up to `DEPTH` of them, and a later kernel read of exactly one of them
//! takes its data. The kernel's own readahead sends several reads at once, so they
//! are kept by offset, not in a queue. A change of the node's data (write, truncate,
//! a change seen on the server) drops them; so does a read far from them.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use puffs::{Cx, Errno, JoinHandle};

use crate::join::join_all;
use crate::sessions::Route;

/// Reads kept in flight ahead of a sequential reader.
const DEPTH: u64 = 16;

type Pending = JoinHandle<Result<Vec<u8>, Errno>>;

/// The reads sent ahead for one open file.
#[derive(Default)]
pub struct ReadAhead {
    /// Where the last read ended: a read starting there (or at a read sent ahead) is
    /// sequential.
    last_end: u64,
    /// The end of what has been sent ahead.
    sent_to: u64,
    /// The node's data version the reads were sent at.
    version: u64,
    /// Reads in flight or done, by offset: length and result.
    ahead: BTreeMap<u64, (u32, Pending)>,
}

impl ReadAhead {
    /// The data of the read sent ahead for exactly `offset`/`size`, if there is one
    /// and the data did not change since; `None`: the caller reads itself.
    pub async fn take(
        this: &RefCell<Self>,
        offset: u64,
        size: u32,
        version: u64,
    ) -> Option<Vec<u8>> {
        let pending = {
            let mut ra = this.borrow_mut();
            if ra.version != version {
                ra.ahead.clear();
                ra.sent_to = 0;
                ra.version = version;
                return None;
            }
            match ra.ahead.remove(&offset) {
                Some((len, p)) if len == size => p,
                _ => return None,
            }
        };
        // A failed read ahead (a reconnect, a timeout) is read again by the caller.
        pending.await.ok()?.ok()
    }

    /// How far the reads sent ahead of a read of `offset`/`size` may reach (the
    /// sessions they go on are opened up to there).
    pub fn reach(offset: u64, size: u32) -> u64 {
        offset + (DEPTH + 1) * u64::from(size)
    }

    /// After a read of `offset`/`size` that returned `got` bytes: a full read where
    /// the last one ended, or one that was sent ahead, keeps the window ahead full.
    pub fn advance<F: puffs::Ops>(
        this: &RefCell<Self>,
        cx: &Cx<F>,
        (route, max): (&Route, u32),
        (offset, size, got): (u64, u32, usize),
        hit: bool,
    ) {
        let mut ra = this.borrow_mut();
        let sequential = hit || offset == ra.last_end;
        ra.last_end = offset + got as u64;
        if !sequential || got < size as usize || size == 0 {
            // End of file, or a reader that jumps: what was sent ahead is not wanted.
            if !sequential {
                ra.ahead.clear();
                ra.sent_to = 0;
            }
            return;
        }
        // Reads sent ahead that the reader has passed are dropped.
        let passed: Vec<u64> = ra.ahead.range(..offset).map(|(o, _)| *o).collect();
        for o in passed {
            ra.ahead.remove(&o);
        }
        let end = ra.last_end + DEPTH * size as u64;
        let mut at = ra.sent_to.max(ra.last_end);
        while at < end {
            let route = route.clone();
            let pending = cx.spawn(async move { read_ahead(&route, at, size, max).await });
            ra.ahead.insert(at, (size, pending));
            at += size as u64;
        }
        ra.sent_to = at;
    }
}

/// `size` bytes at `offset` in requests of at most `max` bytes, each on the session of
/// its stripe. A piece short before the end (not the end of the file) is EIO: the
/// reader then reads itself rather than take it for the end.
async fn read_ahead(route: &Route, offset: u64, size: u32, max: u32) -> Result<Vec<u8>, Errno> {
    let parts: Vec<Part<'_>> = route
        .pieces(offset, size, max)
        .into_iter()
        .map(|(at, len)| {
            let (conn, h) = route.at(at);
            Box::pin(async move { conn.read_at(h, at, len).await.map(|d| (d, len)) }) as Part<'_>
        })
        .collect();
    let mut out = Vec::with_capacity(size as usize);
    let mut ended = false;
    for part in join_all(parts).await {
        let (data, want) = part?;
        if ended && !data.is_empty() {
            return Err(Errno::EIO);
        }
        ended = data.len() < want as usize;
        out.extend_from_slice(&data);
    }
    Ok(out)
}

type Part<'a> = Pin<Box<dyn Future<Output = Result<(Vec<u8>, u32), Errno>> + 'a>>;
