//! framebuf channels run by the real mainloop: a probe file system whose files are
//! scenarios; reading one runs it inside the loop (a socketpair, a `Channel` on one end,
//! the peer on the other driven by a plain thread) and answers "ok ..." or what went
//! wrong.

use std::cell::{Cell, RefCell};
use std::ffi::OsStr;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use puffs::framebuf::{Channel, ChannelOptions, Closed, Framebuf, Framing, Side};
use puffs::{
    Attr, AttrReply, Cx, EntryOf, Errno, FileType, Node, OpResult, Open, Ops, PuffsUserMount,
};
use puffs_tests::*;

const SCENARIOS: &[&str] = &[
    "out-of-order",
    "close-mid-frame",
    "deadline",
    "ten-thousand",
    "flow-control",
    "urgent",
    "channels-outside-cap",
    "poke",
];

thread_local! {
    /// Set when the kernel's GETATTR of "poke" reached the fs (the loop's thread).
    static POKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Requests in flight at once in "ten-thousand".
const MANY: u32 = 10_000;

/// How long a scenario lets the channel take before it calls it stuck.
const PATIENCE: Duration = Duration::from_secs(10);

type Scenario = Result<String, String>;

/// The test protocol: `[len: u32 BE][tag: u32 BE][payload]`, `len` counting tag and
/// payload. Remembers what a channel tells its framing.
#[derive(Default)]
struct Tagged {
    unsolicited: Vec<Framebuf>,
    closed: Option<(Side, io::ErrorKind)>,
}

/// The largest frame the test protocol takes.
const MAX_FRAME: usize = 1 << 20;

impl Framing for Tagged {
    fn read_frame(&mut self, fb: &mut Framebuf, fd: &mut dyn Read) -> io::Result<()> {
        fb.fill_to(fd, 4)?;
        let len = fb
            .window(0, 4)
            .map(|w| u32::from_be_bytes(w.try_into().unwrap()))?;
        if len as usize > MAX_FRAME || len < 4 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "frame length"));
        }
        fb.fill_to(fd, 4 + len as usize)
    }

    fn tag(&self, fb: &Framebuf) -> Option<u64> {
        let w = fb.window(4, 4).ok()?;
        Some(u32::from_be_bytes(w.try_into().unwrap()).into())
    }

    fn unsolicited(&mut self, fb: Framebuf) {
        self.unsolicited.push(fb);
    }

    fn closed(&mut self, why: &Closed) {
        self.closed = Some((why.side, why.error.kind()));
    }
}

fn frame(tag: u32, payload: &[u8]) -> Framebuf {
    let mut fb = Framebuf::with_capacity(8 + payload.len());
    fb.put_u32_be(4 + payload.len() as u32);
    fb.put_u32_be(tag);
    fb.put_bytes(payload);
    fb
}

/// A received frame's tag and payload.
fn parse(mut fb: Framebuf) -> Result<(u32, Vec<u8>), String> {
    fb.seek(0).map_err(|e| e.to_string())?;
    let len = fb.get_u32_be().map_err(|e| e.to_string())?;
    let tag = fb.get_u32_be().map_err(|e| e.to_string())?;
    let payload = fb.get_bytes(len as usize - 4).map_err(|e| e.to_string())?;
    Ok((tag, payload.to_vec()))
}

// The peer side: blocking reads and writes on a plain thread.

fn peer_read(s: &mut impl Read) -> io::Result<(u32, Vec<u8>)> {
    let mut head = [0u8; 8];
    s.read_exact(&mut head)?;
    let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
    let tag = u32::from_be_bytes(head[4..].try_into().unwrap());
    let mut payload = vec![0; len - 4];
    s.read_exact(&mut payload)?;
    Ok((tag, payload))
}

fn peer_write(s: &mut impl Write, tag: u32, payload: &[u8]) -> io::Result<()> {
    s.write_all(&(4 + payload.len() as u32).to_be_bytes())?;
    s.write_all(&tag.to_be_bytes())?;
    s.write_all(payload)
}

/// Reads until the channel's side closes (the scenario dropped it).
fn peer_until_eof(s: &mut UnixStream) {
    let mut sink = [0u8; 4096];
    while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// A channel on one end of a socketpair (left blocking: the channel must make it
/// non-blocking), the other end for the peer.
fn channel(
    cx: &Cx<Probe>,
    opts: ChannelOptions,
) -> Result<(Rc<Channel<Tagged>>, UnixStream), String> {
    let (ours, peer) = UnixStream::pair().map_err(io_err("socketpair"))?;
    let chan =
        Channel::with_options(cx, ours, Tagged::default(), opts).map_err(io_err("channel"))?;
    Ok((Rc::new(chan), peer))
}

/// Waits, without blocking the loop, for a peer thread to end.
async fn join_peer<T>(cx: &Cx<Probe>, peer: JoinHandle<T>) -> Result<T, String> {
    let deadline = Instant::now() + PATIENCE;
    while !peer.is_finished() {
        if Instant::now() > deadline {
            return Err("the peer thread is stuck".into());
        }
        cx.sleep(Duration::from_millis(1)).await;
    }
    peer.join()
        .map_err(|_| "the peer thread panicked".to_string())
}

/// Outcomes of requests, by tag, filled by the continuations that made them.
type Outcomes = Rc<RefCell<Vec<(u32, Result<Vec<u8>, Errno>)>>>;

/// Starts a continuation that makes request `tag` and records how it ended.
fn spawn_request(cx: &Cx<Probe>, chan: &Rc<Channel<Tagged>>, tag: u32, outs: &Outcomes) {
    let (chan, outs) = (Rc::clone(chan), Rc::clone(outs));
    drop(cx.spawn(async move {
        let r = chan
            .request(frame(tag, format!("req {tag}").as_bytes()))
            .await;
        let r = r.and_then(|fb| parse(fb).map(|(_, p)| p).map_err(|_| Errno::EBADMSG));
        outs.borrow_mut().push((tag, r));
    }));
}

/// Waits until `n` outcomes are in; meanwhile samples `sample` (e.g. requests in flight)
/// and returns its largest value.
async fn await_outcomes(
    cx: &Cx<Probe>,
    outs: &Outcomes,
    n: usize,
    sample: impl Fn() -> usize,
) -> Result<usize, String> {
    let (deadline, mut peak) = (Instant::now() + PATIENCE, 0);
    while outs.borrow().len() < n {
        peak = peak.max(sample());
        if Instant::now() > deadline {
            return Err(format!("{} of {n} requests finished", outs.borrow().len()));
        }
        cx.sleep(Duration::from_millis(1)).await;
    }
    Ok(peak)
}

/// 64 requests (half awaited by continuations, half with callbacks), answered in
/// reverse order after an unsolicited frame: each gets its own answer.
async fn out_of_order(cx: &Cx<Probe>) -> Scenario {
    let (ours, mut peer) = UnixStream::pair().map_err(io_err("socketpair"))?;
    let probe = ours.try_clone().map_err(io_err("dup"))?;
    let chan = Rc::new(Channel::new(cx, ours, Tagged::default()).map_err(io_err("channel"))?);
    let flags =
        nix::fcntl::fcntl(&probe, nix::fcntl::FcntlArg::F_GETFL).map_err(|e| e.to_string())?;
    if flags & libc::O_NONBLOCK == 0 {
        return Err("the channel left its fd blocking".into());
    }
    let peer = std::thread::spawn(move || -> io::Result<UnixStream> {
        let mut reqs = (0..64)
            .map(|_| peer_read(&mut peer))
            .collect::<io::Result<Vec<_>>>()?;
        peer_write(&mut peer, 1000, b"hello")?;
        reqs.reverse();
        for (tag, payload) in reqs {
            peer_write(&mut peer, tag, &[b"re:", &payload[..]].concat())?;
        }
        Ok(peer)
    });
    let outs: Outcomes = Rc::default();
    for tag in 1..=32 {
        spawn_request(cx, &chan, tag, &outs);
    }
    for tag in 33..=64u32 {
        let o = Rc::clone(&outs);
        chan.request_with(frame(tag, format!("req {tag}").as_bytes()), move |r| {
            let r = r.map(|fb| parse(fb).map(|(_, p)| p).unwrap_or_default());
            o.borrow_mut().push((tag, r));
        })
        .await
        .map_err(|e| format!("request_with: {e}"))?;
    }
    await_outcomes(cx, &outs, 64, || 0).await?;
    let _peer = join_peer(cx, peer).await?.map_err(io_err("peer"))?;
    for (tag, r) in outs.borrow().iter() {
        match r {
            Ok(p) if p == format!("re:req {tag}").as_bytes() => {}
            other => return Err(format!("request {tag} got {other:?}")),
        }
    }
    let f = chan.framing();
    match &f.unsolicited[..] {
        [one] if parse(one.clone())? == (1000, b"hello".to_vec()) => {}
        other => return Err(format!("unsolicited frames: {other:?}")),
    }
    Ok("64 answered in reverse, 1 unsolicited".into())
}

/// The peer takes 8 requests, sends half a frame and closes: all 8 fail with ENOTCONN
/// at once, the framing hears why, and a later request fails straight away.
async fn close_mid_frame(cx: &Cx<Probe>) -> Scenario {
    let (chan, mut peer) = channel(cx, ChannelOptions::default())?;
    let peer = std::thread::spawn(move || -> io::Result<()> {
        for _ in 0..8 {
            peer_read(&mut peer)?;
        }
        peer.write_all(&100u32.to_be_bytes())?;
        peer.write_all(&1u32.to_be_bytes())?;
        peer.write_all(b"half")?;
        std::thread::sleep(Duration::from_millis(50));
        Ok(())
    });
    let outs: Outcomes = Rc::default();
    for tag in 1..=8 {
        spawn_request(cx, &chan, tag, &outs);
    }
    join_peer(cx, peer).await?.map_err(io_err("peer"))?;
    let closed_at = Instant::now();
    await_outcomes(cx, &outs, 8, || 0).await?;
    let took = closed_at.elapsed();
    if let Some((tag, r)) = outs
        .borrow()
        .iter()
        .find(|(_, r)| *r != Err(Errno::ENOTCONN))
    {
        return Err(format!("request {tag} got {r:?}, not ENOTCONN"));
    }
    if took > Duration::from_secs(1) {
        return Err(format!("the waiters took {took:?} to fail"));
    }
    let closed = chan.framing().closed;
    if closed != Some((Side::Read, io::ErrorKind::UnexpectedEof)) {
        return Err(format!("the framing was told {closed:?}"));
    }
    let started = Instant::now();
    match chan.request(frame(9, b"late")).await {
        Err(Errno::ENOTCONN) if started.elapsed() < Duration::from_millis(100) => {}
        other => return Err(format!("a request after the close got {other:?}")),
    }
    Ok(format!("8 failed within {} us", took.as_micros()))
}

/// A peer that never answers: the channel's deadline and `Cx::timeout` end the
/// requests with ETIMEDOUT; late answers are dropped, and the channel goes on.
async fn deadline(cx: &Cx<Probe>) -> Scenario {
    let (chan, mut peer) = channel(
        cx,
        ChannelOptions::default().timeout(Duration::from_millis(300)),
    )?;
    let (go, wait) = mpsc::channel::<()>();
    let peer = std::thread::spawn(move || -> io::Result<()> {
        let (a, _) = peer_read(&mut peer)?;
        let (b, _) = peer_read(&mut peer)?;
        let _ = wait.recv();
        peer_write(&mut peer, a, b"too late")?;
        peer_write(&mut peer, b, b"too late")?;
        let (c, _) = peer_read(&mut peer)?;
        peer_write(&mut peer, c, b"in time")?;
        peer_until_eof(&mut peer);
        Ok(())
    });
    let outs: Outcomes = Rc::default();
    let started = Instant::now();
    spawn_request(cx, &chan, 1, &outs);
    let own = cx
        .timeout(Duration::from_millis(50), chan.request(frame(2, b"x")))
        .await;
    let own_took = started.elapsed();
    if own != Err(Errno::ETIMEDOUT) || own_took >= Duration::from_millis(290) {
        return Err(format!("cx.timeout(50ms) gave {own:?} after {own_took:?}"));
    }
    await_outcomes(cx, &outs, 1, || 0).await?;
    let took = started.elapsed();
    let r = outs.borrow()[0].1.clone();
    if r != Err(Errno::ETIMEDOUT)
        || took < Duration::from_millis(250)
        || took > Duration::from_secs(2)
    {
        return Err(format!(
            "the channel's 300 ms deadline gave {r:?} after {took:?}"
        ));
    }
    let _ = go.send(());
    let answer = chan
        .request(frame(3, b"x"))
        .await
        .map_err(|e| format!("request 3: {e}"))?;
    if parse(answer)? != (3, b"in time".to_vec()) {
        return Err("request 3 got the wrong answer".into());
    }
    let (unsolicited, in_flight) = (chan.framing().unsolicited.len(), chan.in_flight());
    if unsolicited != 0 || in_flight != 0 {
        return Err(format!(
            "late answers: {unsolicited} unsolicited, {in_flight} in flight"
        ));
    }
    // close() fails the waiter at once and the peer sees end of file.
    spawn_request(cx, &chan, 4, &outs);
    cx.sleep(Duration::from_millis(10)).await;
    chan.close();
    await_outcomes(cx, &outs, 2, || 0).await?;
    let r = outs.borrow()[1].1.clone();
    if r != Err(Errno::ENOTCONN) {
        return Err(format!("a request waiting at close() got {r:?}"));
    }
    join_peer(cx, peer).await?.map_err(io_err("peer"))?;
    Ok(format!(
        "own {} ms, channel's {} ms",
        own_took.as_millis(),
        took.as_millis()
    ))
}

/// MANY requests from as many continuations, all in flight at once (the peer reads them
/// all before it answers any), answered in reverse order.
async fn ten_thousand(cx: &Cx<Probe>) -> Scenario {
    let (chan, mut peer) = channel(cx, ChannelOptions::default())?;
    let peer = std::thread::spawn(move || -> io::Result<()> {
        let mut reader = io::BufReader::new(peer.try_clone()?);
        let mut reqs = (0..MANY)
            .map(|_| peer_read(&mut reader))
            .collect::<io::Result<Vec<_>>>()?;
        reqs.reverse();
        let mut w = BufWriter::new(&mut peer);
        for (tag, payload) in reqs {
            peer_write(&mut w, tag, &payload)?;
        }
        w.flush()?;
        drop(w);
        peer_until_eof(&mut peer);
        Ok(())
    });
    let outs: Outcomes = Rc::default();
    let started = Instant::now();
    for tag in 1..=MANY {
        spawn_request(cx, &chan, tag, &outs);
    }
    let peak = await_outcomes(cx, &outs, MANY as usize, || chan.in_flight()).await?;
    let took = started.elapsed();
    for (tag, r) in outs.borrow().iter() {
        if *r != Ok(format!("req {tag}").into_bytes()) {
            return Err(format!("request {tag} got {r:?}"));
        }
    }
    drop(chan);
    join_peer(cx, peer).await?.map_err(io_err("peer"))?;
    Ok(format!("peak {peak} us {}", took.as_micros()))
}

/// A producer much faster than the peer: the queue never holds more than its limit,
/// the producer waits; once the peer reads, everything arrives.
async fn flow_control(cx: &Cx<Probe>) -> Scenario {
    const LIMIT: usize = 8192;
    const FRAMES: u32 = 2000;
    let (chan, mut peer) = channel(cx, ChannelOptions::default().max_queued(LIMIT))?;
    let (go, wait) = mpsc::channel::<()>();
    let peer = std::thread::spawn(move || -> io::Result<u32> {
        let _ = wait.recv();
        let mut reader = io::BufReader::new(&mut peer);
        for i in 0..FRAMES {
            let (tag, _) = peer_read(&mut reader)?;
            if tag != i {
                return Err(io::Error::other(format!("frame {i} has tag {tag}")));
            }
        }
        Ok(FRAMES)
    });
    let sent = Rc::new(Cell::new(0u32));
    let (c, s) = (Rc::clone(&chan), Rc::clone(&sent));
    drop(cx.spawn(async move {
        for i in 0..FRAMES {
            if c.send(frame(i, &[7; 1000])).await.is_err() {
                return;
            }
            s.set(i + 1);
        }
    }));
    let mut peak = 0;
    for _ in 0..100 {
        peak = peak.max(chan.queued_bytes());
        cx.sleep(Duration::from_millis(2)).await;
    }
    let blocked_at = sent.get();
    if blocked_at == FRAMES {
        return Err("the producer never had to wait".into());
    }
    if peak > LIMIT {
        return Err(format!("{peak} bytes queued, over the limit of {LIMIT}"));
    }
    let _ = go.send(());
    let got = join_peer(cx, peer).await?.map_err(io_err("peer"))?;
    if sent.get() != FRAMES {
        return Err(format!("the producer stopped at {}", sent.get()));
    }
    Ok(format!(
        "producer waited at {blocked_at}, peak queue {peak} B, peer got {got}"
    ))
}

/// An urgent frame jumps the frames still queued behind a full socket.
async fn urgent(cx: &Cx<Probe>) -> Scenario {
    const FRAMES: u32 = 1000;
    let (chan, mut peer) = channel(cx, ChannelOptions::default().max_queued(4 << 20))?;
    let (go, wait) = mpsc::channel::<()>();
    let peer = std::thread::spawn(move || -> io::Result<Vec<u32>> {
        let _ = wait.recv();
        let mut reader = io::BufReader::new(&mut peer);
        (0..=FRAMES)
            .map(|_| peer_read(&mut reader).map(|(t, _)| t))
            .collect()
    });
    for tag in 1..=FRAMES {
        chan.send(frame(tag, &[0; 1000]))
            .await
            .map_err(|e| format!("send: {e}"))?;
    }
    cx.sleep(Duration::from_millis(30)).await;
    let queued = chan.queued_bytes();
    if queued == 0 {
        return Err("the socket took every frame: nothing left to jump".into());
    }
    chan.send_urgent(frame(0, b"urgent"))
        .map_err(|e| format!("send_urgent: {e}"))?;
    let _ = go.send(());
    let order = join_peer(cx, peer).await?.map_err(io_err("peer"))?;
    let at = order
        .iter()
        .position(|&t| t == 0)
        .ok_or("the urgent frame never came")?;
    let normal: Vec<u32> = order.iter().copied().filter(|&t| t != 0).collect();
    if normal != (1..=FRAMES).collect::<Vec<_>>() {
        return Err("the normal frames came out of order".into());
    }
    if at as u32 >= FRAMES {
        return Err(format!(
            "the urgent frame came last ({queued} bytes were queued)"
        ));
    }
    Ok(format!(
        "urgent frame at {at} of {FRAMES}, {queued} bytes were queued"
    ))
}

/// Four open channels (each with its I/O continuation) on a mount whose in-flight cap
/// is 2, while this read is one request in flight: the test's stat of "poke" must
/// still be let in, so channel I/O cannot be taking request slots.
async fn channels_outside_cap(cx: &Cx<Probe>) -> Scenario {
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(channel(cx, ChannelOptions::default())?);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while !POKED.with(|p| p.get()) {
        if Instant::now() > deadline {
            return Err("the stat of poke never came in: channels took the cap".into());
        }
        cx.sleep(Duration::from_millis(1)).await;
    }
    Ok("stat let in".into())
}

struct Probe;

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
        if **node != 0 && SCENARIOS[(**node - 1) as usize] == "poke" {
            POKED.with(|p| p.set(true));
        }
        Ok(AttrReply::from(if **node == 0 {
            Attr::new(FileType::Directory, 0o755)
        } else {
            file_attr()
        }))
    }

    /// Direct I/O: every read reaches the probe, and runs its scenario once.
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
            "out-of-order" => out_of_order(cx).await,
            "close-mid-frame" => close_mid_frame(cx).await,
            "deadline" => deadline(cx).await,
            "ten-thousand" => ten_thousand(cx).await,
            "flow-control" => flow_control(cx).await,
            "channels-outside-cap" => channels_outside_cap(cx).await,
            _ => urgent(cx).await,
        };
        Ok(match outcome {
            Ok(s) => format!("ok {s}"),
            Err(s) => format!("FAIL {s}"),
        }
        .into_bytes()
        .into())
    }
}

/// The probe mounted in this process with at most `cap` requests in flight
/// (attributes and names uncached: each read of a scenario reaches it).
fn mount_probe(cap: usize) -> InProcessMount {
    InProcessMount::start(move |dir| {
        PuffsUserMount::new(Probe, "framebuffs", "probe")
            .handle_signals(false)
            .max_inflight(cap)
            .attr_timeout(Duration::ZERO)
            .entry_timeout(Duration::ZERO)
            .mount(dir)
    })
}

fn assert_ok(report: &str) {
    eprintln!("{report}");
    assert!(report.starts_with("ok"), "{report}");
}

#[test]
fn responses_find_their_requests_in_any_order() {
    require_fuse!();
    assert_ok(&mount_probe(1024).read_text("out-of-order"));
}

#[test]
fn a_peer_closing_mid_frame_fails_every_waiter_at_once() {
    require_fuse!();
    assert_ok(&mount_probe(1024).read_text("close-mid-frame"));
}

#[test]
fn a_peer_that_never_answers_meets_the_deadline() {
    require_fuse!();
    assert_ok(&mount_probe(1024).read_text("deadline"));
}

#[test]
fn ten_thousand_requests_in_flight() {
    require_fuse!();
    assert_ok(&mount_probe(1024).read_text("ten-thousand"));
}

#[test]
fn a_fast_producer_cannot_grow_the_queue_without_bound() {
    require_fuse!();
    assert_ok(&mount_probe(1024).read_text("flow-control"));
}

#[test]
fn urgent_frames_jump_the_queue() {
    require_fuse!();
    assert_ok(&mount_probe(1024).read_text("urgent"));
}

#[test]
fn channel_io_does_not_take_request_slots() {
    require_fuse!();
    let m = mount_probe(2);
    let scenario = m.mnt.join("channels-outside-cap");
    let reader = std::thread::spawn(move || std::fs::read(scenario));
    // Let the scenario open its channels, then ask for a request slot of our own. It
    // is answered at the latest when the scenario gives up (3 s), so nothing hangs.
    std::thread::sleep(Duration::from_millis(300));
    std::fs::metadata(m.mnt.join("poke")).expect("stat of poke");
    let report = reader
        .join()
        .expect("reader thread")
        .expect("scenario read");
    assert_ok(&String::from_utf8_lossy(&report));
}
