//! `Cx::sleep`: a timer in the reactor's deadline map, woken by `fire_timers`.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use super::Reactor;

/// Future of `Cx::sleep`: ready at its deadline.
pub struct Sleep {
    reactor: Rc<Reactor>,
    deadline: Instant,
    id: Option<u64>,
}

impl Sleep {
    pub(crate) fn new(reactor: Rc<Reactor>, deadline: Instant) -> Self {
        Sleep {
            reactor,
            deadline,
            id: None,
        }
    }

    fn forget_timer(&mut self) {
        if let Some(id) = self.id.take() {
            self.reactor
                .timers
                .borrow_mut()
                .remove(&(self.deadline, id));
        }
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            self.forget_timer();
            return Poll::Ready(());
        }
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = self.reactor.next_timer_id();
                self.id = Some(id);
                id
            }
        };
        let key = (self.deadline, id);
        self.reactor
            .timers
            .borrow_mut()
            .insert(key, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.forget_timer();
    }
}
