//! A bounded queue of one node's callbacks, from the runtime thread that produces them to the
//! one language thread (Python's callback thread, the JS thread) that runs them. The runtime
//! never waits on it, and a stalled language thread cannot grow it without limit:
//!
//! - at most [`MAX_QUEUED_SENDS`] sends wait; beyond that the oldest send is dropped (a stale
//!   heartbeat or vote request is worthless, and Raft tolerates lost messages);
//! - at most [`MAX_QUEUED_CHANGES`] leader changes wait; beyond that the oldest is dropped, so
//!   the changes that remain are still in order (terms never go down) and the newest, the
//!   node's current state, is always kept: the last change delivered is the final state.
//!
//! Items keep the order the node produced them in. Both language bindings use this file (the
//! Node.js crate includes it by path); it has no dependency on either and belongs in the core's
//! embedding layer.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use almost_raft::LeaderChange;

/// How many sends may wait for a stalled language thread before the oldest is dropped.
pub const MAX_QUEUED_SENDS: usize = 1024;
/// How many leader changes may wait before the oldest is dropped (the newest is always kept).
pub const MAX_QUEUED_CHANGES: usize = 64;

/// One callback to run.
pub enum Item {
    Send { to: String, message: Vec<u8> },
    Leader(LeaderChange),
}

/// What [`CallbackQueue::pop`] found.
pub enum Popped {
    Item(Item),
    /// Nothing came within the timeout.
    Empty,
    /// The node stopped and everything queued was taken.
    Closed,
}

/// How full the queue is, and how much it dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    pub sends: usize,
    pub changes: usize,
    /// Sends dropped since the last [`CallbackQueue::take_dropped`].
    pub dropped_sends: u64,
    /// Leader changes dropped since the last [`CallbackQueue::take_dropped`].
    pub dropped_changes: u64,
}

#[derive(Default)]
struct State {
    items: VecDeque<Item>,
    backlog: Backlog,
    closed: bool,
    /// The consumer was told to wake and has not drained since.
    woken: bool,
}

#[derive(Default)]
pub struct CallbackQueue {
    state: Mutex<State>,
    ready: Condvar,
}

impl CallbackQueue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `item`, dropping the oldest of its kind if that kind is full. Returns true when
    /// the consumer must be woken (see [`CallbackQueue::drain`]): the first item since it last
    /// drained.
    pub fn push(&self, item: Item) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        let is_send = matches!(item, Item::Send { .. });
        let (count, max) = if is_send {
            (st.backlog.sends, MAX_QUEUED_SENDS)
        } else {
            (st.backlog.changes, MAX_QUEUED_CHANGES)
        };
        if count == max {
            let oldest = st
                .items
                .iter()
                .position(|i| matches!(i, Item::Send { .. }) == is_send);
            if let Some(at) = oldest {
                st.items.remove(at);
            }
            if is_send {
                st.backlog.dropped_sends += 1;
            } else {
                st.backlog.dropped_changes += 1;
            }
        } else if is_send {
            st.backlog.sends += 1;
        } else {
            st.backlog.changes += 1;
        }
        st.items.push_back(item);
        self.ready.notify_one();
        !std::mem::replace(&mut st.woken, true)
    }

    /// No item after this; what is queued is still taken. Returns true when the consumer must
    /// be woken.
    pub fn close(&self) -> bool {
        let mut st = self.lock();
        st.closed = true;
        self.ready.notify_all();
        !std::mem::replace(&mut st.woken, true)
    }

    fn count_out(st: &mut State, item: &Item) {
        match item {
            Item::Send { .. } => st.backlog.sends -= 1,
            Item::Leader(_) => st.backlog.changes -= 1,
        }
    }

    /// The next item, waiting up to `timeout` for one (for a consumer that polls).
    pub fn pop(&self, timeout: Duration) -> Popped {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if let Some(item) = st.items.pop_front() {
                Self::count_out(&mut st, &item);
                return Popped::Item(item);
            }
            if st.closed {
                return Popped::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Popped::Empty;
            }
            st = self
                .ready
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Everything queued now, and whether the node has stopped (for a consumer that is woken:
    /// after this, the next [`CallbackQueue::push`] or [`CallbackQueue::close`] says to wake
    /// it again).
    pub fn drain(&self) -> (Vec<Item>, bool) {
        let mut st = self.lock();
        st.woken = false;
        st.backlog.sends = 0;
        st.backlog.changes = 0;
        (st.items.drain(..).collect(), st.closed)
    }

    /// How many sends and leader changes were dropped since the last call.
    pub fn take_dropped(&self) -> (u64, u64) {
        let mut st = self.lock();
        let dropped = (st.backlog.dropped_sends, st.backlog.dropped_changes);
        st.backlog.dropped_sends = 0;
        st.backlog.dropped_changes = 0;
        dropped
    }

    pub fn backlog(&self) -> Backlog {
        self.lock().backlog
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(n: usize) -> Item {
        Item::Send {
            to: format!("p{n}"),
            message: vec![0; 16],
        }
    }

    fn change(term: u64) -> Item {
        Item::Leader(LeaderChange {
            leader: Some(format!("n{term}")),
            term,
        })
    }

    #[test]
    fn a_stalled_consumer_holds_a_bounded_queue_that_ends_with_the_latest_change() {
        let q = CallbackQueue::default();
        assert!(q.push(send(0)), "the first item wakes the consumer");
        assert!(!q.push(send(1)), "later ones do not, until it drains");
        for i in 0..10_000u64 {
            q.push(send(i as usize + 2));
            if i % 10 == 0 {
                q.push(change(i));
            }
        }
        let b = q.backlog();
        assert_eq!((b.sends, b.changes), (MAX_QUEUED_SENDS, MAX_QUEUED_CHANGES));
        assert_eq!(b.dropped_sends, 10_002 - MAX_QUEUED_SENDS as u64);
        assert_eq!(b.dropped_changes, 1000 - MAX_QUEUED_CHANGES as u64);
        let (items, closed) = q.drain();
        assert!(!closed);
        let terms: Vec<u64> = items
            .iter()
            .filter_map(|i| match i {
                Item::Leader(c) => Some(c.term),
                _ => None,
            })
            .collect();
        assert!(terms.windows(2).all(|w| w[0] < w[1]), "in order");
        assert_eq!(terms.last(), Some(&9990), "the latest change is kept");
        match items.last() {
            Some(Item::Send { to, .. }) => assert_eq!(to, "p10001", "the newest send is kept"),
            _ => panic!("the last item is the last send"),
        }
        assert_eq!(q.take_dropped(), (10_002 - 1024, 1000 - 64));
        assert_eq!(q.take_dropped(), (0, 0));
    }

    #[test]
    fn pop_takes_in_order_then_reports_closed() {
        let q = CallbackQueue::default();
        q.push(change(1));
        q.push(send(1));
        assert!(matches!(
            q.pop(Duration::ZERO),
            Popped::Item(Item::Leader(_))
        ));
        assert!(
            !q.close(),
            "the consumer was already woken by the first push"
        );
        assert!(matches!(
            q.pop(Duration::ZERO),
            Popped::Item(Item::Send { .. })
        ));
        assert!(matches!(q.pop(Duration::ZERO), Popped::Closed));
        assert!(!q.push(send(2)), "nothing is queued after close");
    }
}
