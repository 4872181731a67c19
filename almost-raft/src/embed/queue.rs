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
//! Items keep the order the node produced them in; the last is always [`Item::Stopped`], which
//! says why the node stopped. The Python and Node.js packages use it through
//! [`QueuedCallbacks`], which fills it from the node's [`Callbacks`].

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Callbacks;
use crate::error::Error;
use crate::runtime::LeaderChange;

/// How many sends may wait for a stalled language thread before the oldest is dropped.
pub const MAX_QUEUED_SENDS: usize = 1024;
/// How many leader changes may wait before the oldest is dropped (the newest is always kept).
pub const MAX_QUEUED_CHANGES: usize = 64;

/// One callback to run.
pub enum Item {
    Send {
        to: String,
        message: Vec<u8>,
    },
    Leader(LeaderChange),
    /// This node gained (`held`) or lost the leader lease of `term`.
    Lease {
        held: bool,
        term: u64,
    },
    /// The node stopped: the last item. Holds why when it stopped by itself (a failed save,
    /// an internal error); `None` when it was closed or removed from its cluster.
    Stopped(Option<Error>),
}

impl Item {
    /// Sends and leader changes are bounded separately; the final `Stopped` is never dropped.
    fn kind(&self) -> Option<bool> {
        match self {
            Item::Send { .. } => Some(true),
            Item::Leader(_) | Item::Lease { .. } => Some(false),
            Item::Stopped(_) => None,
        }
    }
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
        let Some(is_send) = item.kind() else {
            st.items.push_back(item);
            self.ready.notify_one();
            return !std::mem::replace(&mut st.woken, true);
        };
        let (count, max) = if is_send {
            (st.backlog.sends, MAX_QUEUED_SENDS)
        } else {
            (st.backlog.changes, MAX_QUEUED_CHANGES)
        };
        if count == max {
            let oldest = st.items.iter().position(|i| i.kind() == Some(is_send));
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
            Item::Leader(_) | Item::Lease { .. } => st.backlog.changes -= 1,
            Item::Stopped(_) => {}
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

/// Wakes the consumer of a queue (e.g. posts to an event loop); called when the consumer must
/// drain, at most once until it does.
pub type Wake = Box<dyn FnMut() + Send>;

/// [`Callbacks`] that queue every callback for a language thread, and close the queue after
/// the last one. The runtime never waits: each call queues one item and, when the consumer is
/// not already due to drain, calls the wake function.
pub struct QueuedCallbacks {
    queue: std::sync::Arc<CallbackQueue>,
    wake: Option<Wake>,
}

impl QueuedCallbacks {
    /// `wake` is `None` for a consumer that waits on the queue itself ([`CallbackQueue::pop`]).
    pub fn new(queue: std::sync::Arc<CallbackQueue>, wake: Option<Wake>) -> Self {
        QueuedCallbacks { queue, wake }
    }

    fn wake_if(&mut self, needed: bool) {
        if let (true, Some(wake)) = (needed, self.wake.as_mut()) {
            wake();
        }
    }
}

impl Callbacks for QueuedCallbacks {
    fn send(&mut self, to: &str, message: &[u8]) {
        let wake = self.queue.push(Item::Send {
            to: to.to_owned(),
            message: message.to_vec(),
        });
        self.wake_if(wake);
    }

    fn leader_changed(&mut self, change: &LeaderChange) {
        let wake = self.queue.push(Item::Leader(change.clone()));
        self.wake_if(wake);
    }

    fn lease_changed(&mut self, held: bool, term: u64) {
        let wake = self.queue.push(Item::Lease { held, term });
        self.wake_if(wake);
    }

    fn stopped(&mut self, failure: Option<&Error>) {
        let wake = self.queue.push(Item::Stopped(failure.cloned()));
        self.wake_if(wake);
    }
}

impl Drop for QueuedCallbacks {
    /// The node drops its callbacks exactly once, after the last one returned.
    fn drop(&mut self) {
        let wake = self.queue.close();
        self.wake_if(wake);
        // Dropping the wake function now releases what it holds (a JS threadsafe function
        // keeps the event loop alive until released).
        self.wake.take();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

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

    #[test]
    fn the_stop_item_survives_a_full_queue_and_comes_last() {
        let q = Arc::new(CallbackQueue::default());
        let mut callbacks = QueuedCallbacks::new(q.clone(), None);
        for term in 0..(MAX_QUEUED_CHANGES as u64 + 10) {
            callbacks.leader_changed(&LeaderChange { leader: None, term });
        }
        let failure = Error::Internal("boom".into());
        callbacks.stopped(Some(&failure));
        drop(callbacks);
        let (items, closed) = q.drain();
        assert!(closed, "dropping the callbacks closes the queue");
        assert_eq!(items.len(), MAX_QUEUED_CHANGES + 1, "changes stay bounded");
        match &items[items.len() - 2] {
            Item::Leader(c) => assert_eq!(c.term, MAX_QUEUED_CHANGES as u64 + 9, "newest kept"),
            _ => panic!("the changes come before the stop"),
        }
        assert!(matches!(items.last(), Some(Item::Stopped(Some(e))) if *e == failure));
    }
}
