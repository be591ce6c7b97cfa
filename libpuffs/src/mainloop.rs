//! The mainloop (puffs_mainloop): one thread that owns all file system state. Each
//! iteration takes the queued requests (up to the in-flight cap), starts their
//! continuations, runs whatever is ready, fires timers, and sleeps in the poller until
//! a request, a completion, a timer or a signal needs it.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::cx::Cx;
use crate::error::Error;
use crate::event::Events;
use crate::kernel::{self, Inbox, Request, Session};
use crate::ops::{Cred, Op, Ops};
use crate::signals::Signals;
use crate::usermount::{Runtime, State, AIO_TOKEN, SIGNAL_TOKEN, WAKE_TOKEN};

/// How long an unmounted file system keeps serving users that still hold it open.
const UNMOUNT_GRACE: Duration = Duration::from_secs(5);

/// Where the loop is in shutting down.
enum Shutdown {
    No,
    /// The fs's sync/unmount ops run; then the kernel mount goes.
    FsOps,
    /// Detached; waiting for the kernel connection to end.
    Detached(Instant),
}

pub(crate) fn run<F: Ops>(
    rt: &Rc<Runtime<F>>,
    inbox: &Inbox,
    session: &mut Session,
    signals: Option<&Signals>,
) -> Result<(), Error> {
    let mut events = Events::with_capacity(64);
    let mut batch = Vec::new();
    let mut shutdown = Shutdown::No;
    let fs_done = Rc::new(std::cell::Cell::new(false));
    let loop_cx = Cx::new(own_cred(), Rc::clone(rt));
    let mut spin = Spin::new(rt.settings.spin);
    loop {
        let mut destroyed = take_requests(rt, inbox, &mut batch);
        rt.exec.run_ready();
        rt.reactor.fire_timers(Instant::now());
        rt.exec.run_ready();

        if rt.exit_requested.get() && matches!(shutdown, Shutdown::No) {
            log::info!("unmounting {}", session.mountpoint.display());
            rt.state.set(State::Unmounting);
            start_fs_unmount(rt, Rc::clone(&fs_done));
            shutdown = Shutdown::FsOps;
            continue;
        }
        if matches!(shutdown, Shutdown::FsOps) && fs_done.get() {
            if let Err(e) = session.unmount() {
                log::error!("cannot unmount {}: {e}", session.mountpoint.display());
            }
            shutdown = Shutdown::Detached(Instant::now() + UNMOUNT_GRACE);
        }
        if let Shutdown::Detached(deadline) = shutdown {
            destroyed |= Instant::now() >= deadline;
        }
        if destroyed {
            break;
        }
        if let Some(f) = rt.settings.loop_fn.borrow_mut().as_mut() {
            f(&loop_cx);
        }
        if let Some(aio) = rt.aio.get() {
            aio.flush(); // one submission for all the I/O this iteration started
        }
        sleep(rt, inbox, &mut events, &shutdown, &mut spin, signals)?;
    }
    rt.state.set(State::Unmounted);
    log::info!("{} unmounted", session.mountpoint.display());
    Ok(())
}

/// Starts continuations for queued requests, as many as the in-flight cap allows.
/// Returns true once the kernel connection has ended.
fn take_requests<F: Ops>(rt: &Rc<Runtime<F>>, inbox: &Inbox, batch: &mut Vec<Request>) -> bool {
    let room = rt.settings.max_inflight.saturating_sub(rt.exec.len());
    inbox.take(room, batch);
    let mut destroyed = false;
    for req in batch.drain(..) {
        match req {
            Request::Op(cred, kop) => kernel::dispatch(rt, cred, kop),
            Request::Forget(list) => rt.forget_frame(list),
            Request::Destroyed => destroyed = true,
            Request::Signal(sig) => {
                log::info!("signal {sig}: unmounting");
                rt.exit_requested.set(true);
            }
        }
    }
    destroyed
}

/// Runs the fs's own sync and unmount ops (when it has them) before the kernel mount
/// goes; `done` is set when they have finished.
fn start_fs_unmount<F: Ops>(rt: &Rc<Runtime<F>>, done: Rc<std::cell::Cell<bool>>) {
    let cx = Cx::new(own_cred(), Rc::clone(rt));
    let rt2 = Rc::clone(rt);
    rt.exec.spawn(async move {
        if F::OPMASK.contains(Op::Sync) {
            if let Err(e) = rt2.fs.sync(&cx).await {
                log::error!("sync before unmount failed: {e}");
            }
        }
        if F::OPMASK.contains(Op::Unmount) {
            if let Err(e) = rt2.fs.unmount(&cx).await {
                log::error!("the file system's unmount op failed: {e}; unmounting anyway");
            }
        }
        done.set(true);
        rt2.wakeup.wake();
    });
}

/// Sleeps in the poller until there is work: requests, woken continuations, a timer,
/// or the loop timeout.
fn sleep<F: Ops>(
    rt: &Rc<Runtime<F>>,
    inbox: &Inbox,
    events: &mut Events,
    shutdown: &Shutdown,
    spin: &mut Spin,
    signals: Option<&Signals>,
) -> Result<(), Error> {
    let now = Instant::now();
    let grace_ends = match shutdown {
        Shutdown::Detached(deadline) => Some(*deadline),
        _ => None,
    };
    let until_deadline = [rt.reactor.next_deadline(), grace_ends]
        .into_iter()
        .flatten()
        .min()
        .map(|t| t.saturating_duration_since(now));
    let timeout = [rt.settings.loop_timeout, until_deadline]
        .into_iter()
        .flatten()
        .min();
    if spin.worth_it() && spin.wait_for_work(|| !inbox.is_empty() || rt.exec.has_ready()) {
        return Ok(());
    }
    rt.wakeup.going_to_sleep();
    // Look once more: work queued before `going_to_sleep` did not wake us.
    if !inbox.is_empty() || rt.exec.has_ready() || timeout == Some(Duration::ZERO) {
        rt.wakeup.awake();
        return Ok(());
    }
    let slept = Instant::now();
    let polled = rt.reactor.poll(events, timeout);
    rt.wakeup.awake();
    spin.slept(slept.elapsed());
    polled?;
    for ev in events.iter() {
        if ev.token == WAKE_TOKEN {
            rt.wakeup.reset();
        } else if ev.token == AIO_TOKEN {
            if let Some(aio) = rt.aio.get() {
                aio.reap();
            }
        } else if ev.token == SIGNAL_TOKEN {
            if let Some(s) = signals {
                s.forward(inbox);
            }
        } else {
            rt.reactor.dispatch(ev);
        }
    }
    Ok(())
}

/// The daemon's own credentials, for the ops the loop itself starts.
fn own_cred() -> Cred {
    Cred {
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        pid: std::process::id(),
    }
}

/// Adaptive spinning before sleep. Waking an idle vCPU costs tens of microseconds, more
/// than a request's whole work; when requests come back to back, waiting a little
/// on-CPU for the next one saves that. It spins only while recent sleeps were short
/// (requests are streaming), so an idle file system never burns a core.
pub(crate) struct Spin {
    budget: Duration,
    /// Whether the last wait (spin or sleep) ended within the budget.
    streaming: bool,
}

impl Spin {
    fn new(budget: Duration) -> Self {
        Spin {
            budget,
            streaming: false,
        }
    }

    fn worth_it(&self) -> bool {
        self.streaming && !self.budget.is_zero()
    }

    /// Spins until `ready` holds (true) or the budget is spent (false).
    fn wait_for_work(&mut self, ready: impl Fn() -> bool) -> bool {
        let end = Instant::now() + self.budget;
        while Instant::now() < end {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        self.streaming = false;
        false
    }

    /// The loop slept for `d`: a short sleep means requests are streaming again.
    fn slept(&mut self, d: Duration) {
        self.streaming = d <= self.budget;
    }
}
