//! A bounded, coalescing queue of leader changes: one per subscriber. A reader that falls far
//! behind loses the oldest changes it has not read, never the newest, so memory stays bounded
//! whatever the reader does, the changes it reads stay in order (terms never go down), and the
//! last one it reads is always the node's final state.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::shared::{LeaderChange, lock};

/// How many unread changes a subscriber may hold before the oldest are dropped.
pub const MAX_UNREAD_CHANGES: usize = 64;

#[derive(Default)]
struct Queue {
    unread: VecDeque<LeaderChange>,
    closed: bool,
    dropped: u64,
}

#[derive(Default)]
struct Channel {
    queue: Mutex<Queue>,
    notify: Notify,
}

/// The node's end of one subscriber's queue.
pub(crate) struct ChangeSender(Arc<Channel>);

/// The subscriber's end.
pub(crate) struct ChangeReceiver(Arc<Channel>);

pub(crate) fn change_channel() -> (ChangeSender, ChangeReceiver) {
    let channel = Arc::new(Channel::default());
    (ChangeSender(channel.clone()), ChangeReceiver(channel))
}

impl ChangeSender {
    /// Queues a change, dropping the oldest unread one when the queue is full. `false` once the
    /// receiver is gone.
    pub(crate) fn send(&self, change: LeaderChange) -> bool {
        if Arc::strong_count(&self.0) == 1 {
            return false;
        }
        let mut queue = lock(&self.0.queue);
        if queue.unread.len() == MAX_UNREAD_CHANGES {
            queue.unread.pop_front();
            queue.dropped += 1;
            if queue.dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = queue.dropped,
                    "a leader_changes() reader is not keeping up: older changes skipped, the latest kept"
                );
            }
        }
        queue.unread.push_back(change);
        drop(queue);
        self.0.notify.notify_one();
        true
    }
}

impl Drop for ChangeSender {
    /// The stream ends once what was queued is read.
    fn drop(&mut self) {
        lock(&self.0.queue).closed = true;
        self.0.notify.notify_one();
    }
}

impl ChangeReceiver {
    /// The next change; `None` once the node stopped and everything queued was read.
    pub(crate) async fn recv(&mut self) -> Option<LeaderChange> {
        loop {
            {
                let mut queue = lock(&self.0.queue);
                if let Some(change) = queue.unread.pop_front() {
                    return Some(change);
                }
                if queue.closed {
                    return None;
                }
            }
            // `notify_one` keeps a permit when nobody waits, so no wake-up is lost here.
            self.0.notify.notified().await;
        }
    }

    /// The next change if one is waiting.
    pub(crate) fn try_recv(&mut self) -> Option<LeaderChange> {
        lock(&self.0.queue).unread.pop_front()
    }

    /// How many changes were skipped because this reader fell behind.
    pub(crate) fn skipped(&self) -> u64 {
        lock(&self.0.queue).dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(term: u64) -> LeaderChange {
        LeaderChange {
            leader: Some(format!("n{term}")),
            term,
        }
    }

    #[tokio::test]
    async fn a_stalled_reader_holds_a_bounded_queue_ending_with_the_latest_change() {
        let (tx, mut rx) = change_channel();
        for term in 1..=10_000 {
            assert!(tx.send(change(term)));
        }
        drop(tx);
        let mut read = Vec::new();
        while let Some(c) = rx.recv().await {
            read.push(c.term);
        }
        assert_eq!(read.len(), MAX_UNREAD_CHANGES);
        assert!(read.windows(2).all(|w| w[0] < w[1]), "in order");
        assert_eq!(read.last(), Some(&10_000), "the final state arrives");
        assert_eq!(rx.skipped(), 10_000 - MAX_UNREAD_CHANGES as u64);
    }

    #[tokio::test]
    async fn a_reader_that_keeps_up_loses_nothing() {
        let (tx, mut rx) = change_channel();
        for term in 1..=1000 {
            tx.send(change(term));
            assert_eq!(rx.recv().await.map(|c| c.term), Some(term));
        }
        assert_eq!(rx.skipped(), 0);
    }

    #[test]
    fn sending_to_a_dropped_reader_says_so() {
        let (tx, rx) = change_channel();
        drop(rx);
        assert!(!tx.send(change(1)));
    }
}
