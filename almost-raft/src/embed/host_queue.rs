//! A queue of one host's callbacks, from the runtime thread that produces them to the one
//! language thread (Python's callback thread, the JS thread) that runs them; the runtime never
//! waits on it. At most [`MAX_QUEUED_SENDS`] datagrams wait (the oldest is dropped: a stale
//! heartbeat is worthless and lost datagrams are part of the protocol); group events are
//! never dropped, since each group's last event is its state (a host crash can produce one
//! per group at once). The last item is always [`HostItem::Closed`].

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::host::HostCallbacks;
use super::{MAX_QUEUED_SENDS, Wake};
use crate::machine::Event;
use crate::runtime::shared::lock;

/// One callback to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostItem {
    Send {
        to: String,
        datagram: Vec<u8>,
    },
    Event {
        group: String,
        event: Event,
    },
    /// The host stopped and every callback before this was taken: the last item.
    Closed,
}

#[derive(Default)]
struct State {
    items: VecDeque<HostItem>,
    sends: usize,
    dropped_sends: u64,
    closed: bool,
}

/// See the module docs.
#[derive(Default)]
pub struct HostQueue {
    state: Mutex<State>,
    ready: Condvar,
}

impl HostQueue {
    fn push(&self, item: HostItem) {
        let mut s = lock(&self.state);
        if s.closed {
            return;
        }
        if matches!(item, HostItem::Send { .. }) {
            if s.sends == MAX_QUEUED_SENDS
                && let Some(i) = s
                    .items
                    .iter()
                    .position(|i| matches!(i, HostItem::Send { .. }))
            {
                s.items.remove(i);
                s.sends -= 1;
                s.dropped_sends += 1;
            }
            s.sends += 1;
        }
        s.items.push_back(item);
        self.ready.notify_one();
    }

    fn close(&self) {
        let mut s = lock(&self.state);
        if !s.closed {
            s.closed = true;
            s.items.push_back(HostItem::Closed);
            self.ready.notify_all();
        }
    }

    fn take(s: &mut State) -> Option<HostItem> {
        let item = s.items.pop_front()?;
        if matches!(item, HostItem::Send { .. }) {
            s.sends -= 1;
        }
        Some(item)
    }

    /// The next item, waiting up to `timeout`; `None` if none came.
    pub fn pop(&self, timeout: Duration) -> Option<HostItem> {
        let until = Instant::now() + timeout;
        let mut s = lock(&self.state);
        loop {
            if let Some(item) = Self::take(&mut s) {
                return Some(item);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            s = self
                .ready
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Everything waiting now, in order.
    pub fn drain(&self) -> Vec<HostItem> {
        let mut s = lock(&self.state);
        let mut out = Vec::with_capacity(s.items.len());
        while let Some(item) = Self::take(&mut s) {
            out.push(item);
        }
        out
    }

    /// Datagrams dropped since the last call because the language thread fell behind.
    pub fn take_dropped(&self) -> u64 {
        std::mem::take(&mut lock(&self.state).dropped_sends)
    }
}

/// Fills a [`HostQueue`] from a host's callbacks, waking the language thread if asked; closes
/// it when the host drops its callbacks (after the last one).
pub struct QueuedHostCallbacks {
    queue: Arc<HostQueue>,
    wake: Option<Wake>,
}

impl QueuedHostCallbacks {
    pub fn new(queue: Arc<HostQueue>, wake: Option<Wake>) -> Self {
        QueuedHostCallbacks { queue, wake }
    }
    fn woken(&mut self) {
        if let Some(wake) = self.wake.as_mut() {
            wake();
        }
    }
}

impl HostCallbacks for QueuedHostCallbacks {
    fn send(&mut self, to: &str, datagram: &[u8]) {
        self.queue.push(HostItem::Send {
            to: to.to_owned(),
            datagram: datagram.to_vec(),
        });
        self.woken();
    }
    fn event(&mut self, group: &str, event: &Event) {
        self.queue.push(HostItem::Event {
            group: group.to_owned(),
            event: event.clone(),
        });
        self.woken();
    }
}

impl Drop for QueuedHostCallbacks {
    fn drop(&mut self) {
        self.queue.close();
        self.woken();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_oldest_datagrams_never_an_event_and_ends_with_closed() {
        let queue = Arc::new(HostQueue::default());
        let mut cb = QueuedHostCallbacks::new(queue.clone(), None);
        cb.event("g", &Event::Stopped);
        for i in 0..MAX_QUEUED_SENDS + 5 {
            cb.send("h2", &[i as u8]);
        }
        drop(cb);
        assert_eq!(queue.take_dropped(), 5);
        let items = queue.drain();
        assert_eq!(items.len(), 1 + MAX_QUEUED_SENDS + 1);
        assert_eq!(
            items[0],
            HostItem::Event {
                group: "g".into(),
                event: Event::Stopped
            }
        );
        assert_eq!(
            items[1],
            HostItem::Send {
                to: "h2".into(),
                datagram: vec![5]
            }
        );
        assert_eq!(items.last(), Some(&HostItem::Closed));
        assert_eq!(queue.pop(Duration::from_millis(1)), None);
    }
}
