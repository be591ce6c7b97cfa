//! fd readiness through `Cx::register`, run by the real mainloop: a probe file system
//! whose files are scenarios; reading one runs it inside the loop (sockets, waiters,
//! a peer) and answers "ok ..." or what went wrong.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::future::{poll_fn, Future};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use puffs::{
    Attr, AttrReply, Cx, EntryOf, Errno, FileType, Node, OpResult, Open, Ops, PuffsUserMount,
    Registration,
};
use puffs_tests::*;

const SCENARIOS: &[&str] = &[
    "reader-and-writer",
    "two-readers",
    "hangup-reader",
    "hangup-writer",
    "waits",
];

/// How many waits the "waits" scenario makes.
const WAITS: u64 = 10_000;

/// How long a scenario lets its waiters take before it calls them stuck.
const PATIENCE: Duration = Duration::from_secs(3);

struct Probe;

type Outcome = Rc<RefCell<Option<io::Result<()>>>>;
type Scenario = Result<String, String>;

fn file_attr() -> Attr {
    let mut a = Attr::new(FileType::RegularFile, 0o444);
    a.size = 4096;
    a
}

#[puffs::ops]
impl Ops for Probe {
    type Node = u64;
    type Key = u64;

    fn root(&self) -> (u64, u64) {
        (0, 0)
    }

    async fn lookup(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        name: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        let i = SCENARIOS
            .iter()
            .position(|f| OsStr::new(f) == name)
            .ok_or(Errno::ENOENT)? as u64;
        Ok(puffs::Entry::new(i + 1, i + 1, file_attr()))
    }

    async fn getattr(
        &self,
        _cx: &Cx<Self>,
        node: &Node<Self>,
        _f: Option<&Self::File>,
    ) -> OpResult<AttrReply> {
        Ok(AttrReply::from(if **node == 0 {
            Attr::new(FileType::Directory, 0o755)
        } else {
            file_attr()
        }))
    }

    /// Direct I/O: every read reaches the probe, and the page cache never makes the
    /// kernel read a scenario twice.
    async fn open(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        _flags: puffs::OpenFlags,
    ) -> OpResult<Open<()>> {
        Ok(Open {
            direct_io: true,
            ..Open::new(())
        })
    }

    async fn read(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        _file: &Self::File,
        offset: u64,
        _size: u32,
    ) -> OpResult<puffs::Data> {
        if offset > 0 {
            return Ok(puffs::Data::empty());
        }
        let outcome = match SCENARIOS[(**node - 1) as usize] {
            "reader-and-writer" => reader_and_writer(cx).await,
            "two-readers" => two_readers(cx).await,
            "hangup-reader" => hangup_reader(cx).await,
            "hangup-writer" => hangup_writer(cx).await,
            _ => waits(cx).await,
        };
        Ok(match outcome {
            Ok(s) => format!("ok {s}"),
            Err(s) => format!("FAIL {s}"),
        }
        .into_bytes()
        .into())
    }
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// A connected pair of non-blocking sockets; the first registered with the loop.
fn socket_pair(cx: &Cx<Probe>) -> Result<(Rc<Registration<UnixStream>>, UnixStream), String> {
    let (a, b) = UnixStream::pair().map_err(io_err("socketpair"))?;
    for s in [&a, &b] {
        s.set_nonblocking(true).map_err(io_err("O_NONBLOCK"))?;
    }
    Ok((Rc::new(cx.register(a).map_err(io_err("register"))?), b))
}

/// Starts a continuation that waits on `reg` (readable or writable) and records how
/// the wait ended.
fn spawn_waiter(cx: &Cx<Probe>, reg: &Rc<Registration<UnixStream>>, read: bool) -> Outcome {
    let out: Outcome = Rc::default();
    let (reg, slot) = (Rc::clone(reg), Rc::clone(&out));
    drop(cx.spawn(async move {
        let r = if read {
            reg.readable().await
        } else {
            reg.writable().await
        };
        *slot.borrow_mut() = Some(r);
    }));
    out
}

/// Waits (without blocking the loop) until every outcome is in, or `PATIENCE` passes.
async fn outcomes(cx: &Cx<Probe>, outs: &[&Outcome]) -> Result<Vec<io::Result<()>>, String> {
    let deadline = Instant::now() + PATIENCE;
    while outs.iter().any(|o| o.borrow().is_none()) {
        if Instant::now() > deadline {
            let done: Vec<bool> = outs.iter().map(|o| o.borrow().is_some()).collect();
            return Err(format!(
                "waiters stuck after {PATIENCE:?} (finished: {done:?})"
            ));
        }
        cx.sleep(Duration::from_millis(1)).await;
    }
    Ok(outs.iter().filter_map(|o| o.borrow_mut().take()).collect())
}

/// Whether `fut` is still pending after `d`.
async fn still_pending<T>(cx: &Cx<Probe>, d: Duration, fut: impl Future<Output = T>) -> bool {
    let (mut fut, mut timer) = (pin!(fut), pin!(cx.sleep(d)));
    poll_fn(|c| match fut.as_mut().poll(c) {
        Poll::Ready(_) => Poll::Ready(false),
        Poll::Pending => timer.as_mut().poll(c).map(|_| true),
    })
    .await
}

/// Writes into the registered socket until its buffer is full.
fn fill(reg: &Registration<UnixStream>) -> Result<(), String> {
    let chunk = [0u8; 65536];
    loop {
        match reg.try_write(|mut s| s.write(&chunk)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(format!("filling: {e}")),
        }
    }
}

/// Reads `s` until it would block.
fn drain(mut s: &UnixStream) -> Result<usize, String> {
    let (mut buf, mut total) = (vec![0u8; 65536], 0);
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
            Err(e) => return Err(format!("draining: {e}")),
        }
    }
}

fn expect_ok(what: &str, r: &io::Result<()>) -> Result<(), String> {
    r.as_ref()
        .map_err(|e| format!("{what} failed: {e}"))
        .copied()
}

fn expect_errno(what: &str, r: &io::Result<()>, errnos: &[i32]) -> Result<i32, String> {
    match r {
        Ok(()) => Err(format!("{what} reported ready, not the hang-up")),
        Err(e) => match e.raw_os_error() {
            Some(n) if errnos.contains(&n) => Ok(n),
            _ => Err(format!("{what}: unexpected error {e}")),
        },
    }
}

async fn reader_and_writer(cx: &Cx<Probe>) -> Scenario {
    let (reg, peer) = socket_pair(cx)?;
    fill(&reg)?;
    let reader = spawn_waiter(cx, &reg, true);
    let writer = spawn_waiter(cx, &reg, false);
    cx.sleep(Duration::from_millis(20)).await;
    if reader.borrow().is_some() || writer.borrow().is_some() {
        return Err(format!(
            "a waiter did not wait: {:?} {:?}",
            reader.borrow(),
            writer.borrow()
        ));
    }
    (&peer).write_all(b"x").map_err(io_err("peer write"))?;
    drain(&peer)?;
    let got = outcomes(cx, &[&reader, &writer]).await?;
    expect_ok("the reader", &got[0])?;
    expect_ok("the writer", &got[1])?;
    Ok("both woke".into())
}

async fn two_readers(cx: &Cx<Probe>) -> Scenario {
    let (reg, peer) = socket_pair(cx)?;
    let first = spawn_waiter(cx, &reg, true);
    let second = spawn_waiter(cx, &reg, true);
    cx.sleep(Duration::from_millis(20)).await;
    (&peer).write_all(b"x").map_err(io_err("peer write"))?;
    let got = outcomes(cx, &[&first, &second]).await?;
    expect_ok("the first reader", &got[0])?;
    expect_ok("the second reader", &got[1])?;
    // Readiness stays until a read would block; then the next wait really waits.
    let mut byte = [0u8; 1];
    reg.try_read(|mut s| s.read(&mut byte))
        .map_err(io_err("read"))?;
    match reg.try_read(|mut s| s.read(&mut byte)) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        other => return Err(format!("second read: {other:?}")),
    }
    if !still_pending(cx, Duration::from_millis(30), reg.readable()).await {
        return Err("readable() after WouldBlock did not wait".into());
    }
    Ok("both woke".into())
}

async fn hangup_reader(cx: &Cx<Probe>) -> Scenario {
    let (reg, peer) = socket_pair(cx)?;
    let reader = spawn_waiter(cx, &reg, true);
    cx.sleep(Duration::from_millis(20)).await;
    drop(peer);
    let got = outcomes(cx, &[&reader]).await?;
    let errno = expect_errno("the reader", &got[0], &[libc::ECONNRESET])?;
    Ok(format!("errno {errno}"))
}

async fn hangup_writer(cx: &Cx<Probe>) -> Scenario {
    let (reg, peer) = socket_pair(cx)?;
    fill(&reg)?;
    let writer = spawn_waiter(cx, &reg, false);
    cx.sleep(Duration::from_millis(20)).await;
    drop(peer);
    let got = outcomes(cx, &[&writer]).await?;
    let errno = expect_errno("the writer", &got[0], &[libc::EPIPE, libc::ECONNRESET])?;
    Ok(format!("errno {errno}"))
}

/// WAITS ping-pongs: the peer sends a byte, the registration waits for it, reads until
/// WouldBlock. Reports what the reactor asked of the kernel meanwhile.
async fn waits(cx: &Cx<Probe>) -> Scenario {
    let (reg, peer) = socket_pair(cx)?;
    let mut byte = [0u8; 16];
    let (before, started) = (cx.reactor_stats(), Instant::now());
    for i in 0..WAITS {
        (&peer).write_all(b"x").map_err(io_err("peer write"))?;
        reg.readable().await.map_err(|e| format!("wait {i}: {e}"))?;
        loop {
            match reg.try_read(|mut s| s.read(&mut byte)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(format!("read {i}: {e}")),
            }
        }
    }
    let (after, took) = (cx.reactor_stats(), started.elapsed());
    Ok(format!(
        "polls {} ctl {} events {} us {}",
        after.polls - before.polls,
        after.ctl_calls - before.ctl_calls,
        after.fd_events - before.fd_events,
        took.as_micros()
    ))
}

/// The probe mounted in this process (attributes and names uncached: each read of a
/// scenario reaches it).
fn mount_probe() -> InProcessMount {
    InProcessMount::start(|dir| {
        PuffsUserMount::new(Probe, "readinessfs", "probe")
            .handle_signals(false)
            .attr_timeout(Duration::ZERO)
            .entry_timeout(Duration::ZERO)
            .mount(dir)
    })
}

fn assert_ok(report: &str) {
    assert!(report.starts_with("ok"), "{report}");
}

#[test]
fn a_reader_and_a_writer_wait_on_one_socket_at_once() {
    require_fuse!();
    let p = mount_probe();
    assert_ok(&p.read_text("reader-and-writer"));
}

#[test]
fn two_readers_wait_on_one_socket() {
    require_fuse!();
    let p = mount_probe();
    assert_ok(&p.read_text("two-readers"));
}

#[test]
fn a_peer_hang_up_wakes_the_waiter_with_an_error() {
    require_fuse!();
    let p = mount_probe();
    assert_ok(&p.read_text("hangup-reader"));
    assert_ok(&p.read_text("hangup-writer"));
}

#[test]
fn ten_thousand_waits_cost_no_more_than_ten_thousand_wakeups() {
    require_fuse!();
    let p = mount_probe();
    let report = p.read_text("waits");
    assert_ok(&report);
    eprintln!("{report}");
    let field = |name: &str| -> u64 {
        let mut words = report.split_whitespace();
        words.find(|w| *w == name);
        words
            .next()
            .and_then(|v| v.parse().ok())
            .expect("a number in the report")
    };
    // Registered once: no epoll_ctl / kevent change per wait.
    assert_eq!(field("ctl"), 0, "{report}");
    // One poller wakeup per wait, give or take the loop's own (the read request, timers).
    assert!(field("polls") <= WAITS + 50, "{report}");
    assert!(field("events") <= WAITS + 50, "{report}");
}
