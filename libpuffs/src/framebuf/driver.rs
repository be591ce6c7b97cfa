//! A channel's I/O continuation: one per channel, reading frames and handing them to
//! their requests, and writing queued frames out. The writer waits on the fd only while
//! it has output; with nothing to send it sleeps until a sender queues a frame. Either
//! side's failure ends the channel (`Inner::fail`) and this continuation with it.

use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::AsFd;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;

use super::fdio::{InBuf, OutBuf};
use super::framing::{Closed, Framing, Side};
use super::inner::Inner;
use super::Framebuf;

/// Frames read (or written) in a row before the driver lets other continuations run.
const BATCH: usize = 128;

/// Runs the channel until it ends.
pub(super) async fn drive<C: Framing>(inner: Rc<Inner<C>>) {
    let mut reader = pin!(read_frames(&inner));
    let mut writer = pin!(write_frames(&inner));
    poll_fn(|cx| {
        {
            let mut st = inner.state.borrow_mut();
            if st.closed.is_some() {
                return Poll::Ready(());
            }
            match &mut st.driver {
                Some(w) if w.will_wake(cx.waker()) => {}
                w => *w = Some(cx.waker().clone()),
            }
        }
        // Each side returns only once the channel has ended.
        if reader.as_mut().poll(cx).is_ready() || writer.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

fn closed(side: Side, error: io::Error) -> Option<Closed> {
    Some(Closed { side, error })
}

fn would_block(r: &io::Result<()>) -> bool {
    matches!(r, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// Reads frames until the fd ends or fails; then fails the channel.
async fn read_frames<C: Framing>(inner: &Inner<C>) {
    let mut inb = InBuf::new(inner.opts.read_buffer);
    let mut frame = Framebuf::new();
    let mut in_a_row = 0;
    while inner.state.borrow().closed.is_none() {
        let r = inner.reg.try_read(|fd| {
            let mut reader = inb.reader(fd.as_fd());
            inner
                .framing
                .borrow_mut()
                .read_frame(&mut frame, &mut reader)
        });
        match r {
            Ok(()) => {
                inner.deliver(std::mem::take(&mut frame));
                in_a_row += 1;
                if in_a_row == BATCH {
                    in_a_row = 0;
                    yield_once().await;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                in_a_row = 0;
                // A hang-up is reported before the data that came with it: read on
                // after one, and let the read say how the stream ended.
                if let Err(hup) = inner.reg.readable().await {
                    let r = inner.reg.try_read(|fd| {
                        let mut reader = inb.reader(fd.as_fd());
                        inner
                            .framing
                            .borrow_mut()
                            .read_frame(&mut frame, &mut reader)
                    });
                    match r {
                        Ok(()) => inner.deliver(std::mem::take(&mut frame)),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return inner.fail(closed(Side::Read, hup))
                        }
                        Err(e) => return inner.fail(closed(Side::Read, e)),
                    }
                }
            }
            Err(e) => return inner.fail(closed(Side::Read, e)),
        }
    }
}

/// Writes queued frames, through the write buffer, until the channel ends.
async fn write_frames<C: Framing>(inner: &Inner<C>) {
    let mut out = OutBuf::new(inner.opts.write_buffer);
    let mut current: Option<Framebuf> = None;
    while inner.state.borrow().closed.is_none() {
        let mut written = 0;
        // Frames into the buffer (and out of it when it fills).
        let r = loop {
            if current.is_none() {
                current = next_frame(inner);
            }
            let Some(fb) = current.as_mut() else {
                break Ok(());
            };
            let r = inner.reg.try_write(|fd| {
                let mut writer = out.writer(fd.as_fd());
                inner.framing.borrow_mut().write_frame(fb, &mut writer)
            });
            if r.is_err() {
                break r;
            }
            current = None;
            written += 1;
            if written == BATCH {
                break Ok(());
            }
        };
        let r = r.and_then(|()| inner.reg.try_write(|fd| out.flush_to(fd.as_fd())));
        match r {
            Ok(()) if written == BATCH => yield_once().await,
            Ok(()) => wait_for_frames(inner).await,
            Err(_) if would_block(&r) => {
                if let Err(e) = inner.reg.writable().await {
                    return inner.fail(closed(Side::Write, e));
                }
            }
            Err(e) => return inner.fail(closed(Side::Write, e)),
        }
    }
}

/// Takes the next frame off the queue, waking senders waiting for room once the queue
/// is down to half its limit.
fn next_frame<C: Framing>(inner: &Inner<C>) -> Option<Framebuf> {
    let mut st = inner.state.borrow_mut();
    let fb = st.queue.pop_front()?;
    st.queued_bytes -= fb.len();
    if st.queued_bytes <= inner.opts.max_queued / 2 {
        std::mem::take(&mut st.room_waiters)
            .into_iter()
            .for_each(|w| w.wake());
    }
    Some(fb)
}

/// Sleeps until a frame is queued (or the channel ends); tells `flush` waiters that
/// everything is out meanwhile.
async fn wait_for_frames<C: Framing>(inner: &Inner<C>) {
    poll_fn(|_| {
        let mut st = inner.state.borrow_mut();
        if !st.queue.is_empty() || st.closed.is_some() {
            st.writer_idle = false;
            return Poll::Ready(());
        }
        st.writer_idle = true;
        if !st.flushed {
            st.flushed = true;
            std::mem::take(&mut st.flush_waiters)
                .into_iter()
                .for_each(|w| w.wake());
        }
        Poll::Pending
    })
    .await
}

/// Lets the loop run others once (fairness: a busy channel must not starve them).
async fn yield_once() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}
