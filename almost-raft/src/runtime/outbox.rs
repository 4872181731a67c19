//! Sending without ever blocking the node: one queue and one task per peer, each send bounded
//! by the message timeout, so a slow or dead peer delays nothing but its own messages.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::id::NodeId;
use crate::message::Envelope;

/// Where a driver's messages go: bytes to a [`Transport`](super::Transport), or typed
/// messages to the peers of the 0.4 API (`crate::compat`).
pub(crate) trait Outbox: Send + Sync + 'static {
    fn send(&self, msg: Envelope) -> impl Future<Output = ()> + Send;
}

/// Messages waiting for a slow peer beyond this are dropped: Raft needs no old messages.
const QUEUE_PER_PEER: usize = 64;

pub(crate) struct PeerQueues<O: Outbox> {
    outbox: Arc<O>,
    timeout: Duration,
    queues: BTreeMap<NodeId, mpsc::Sender<Envelope>>,
    tasks: JoinSet<()>,
}

impl<O: Outbox> PeerQueues<O> {
    pub(crate) fn new(outbox: O, timeout: Duration) -> Self {
        PeerQueues {
            outbox: Arc::new(outbox),
            timeout,
            queues: BTreeMap::new(),
            tasks: JoinSet::new(),
        }
    }

    pub(crate) fn send(&mut self, msg: Envelope) {
        let to = msg.to.clone();
        let msg = match self.queue(&to).try_send(msg) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(msg)) => {
                tracing::debug!(to = %msg.to, "send queue full: message dropped");
                return;
            }
            Err(mpsc::error::TrySendError::Closed(msg)) => msg,
        };
        // The peer's send task ended: only a panic in the application's send does that.
        // Start a new one, so that one bad send does not mute the peer for good.
        tracing::warn!(%to, "a send to this peer panicked: its send task restarts");
        self.queues.remove(&to);
        let _ = self.queue(&to).try_send(msg);
    }

    fn queue(&mut self, to: &str) -> &mpsc::Sender<Envelope> {
        self.queues.entry(to.to_owned()).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(QUEUE_PER_PEER);
            self.tasks
                .spawn(deliver(self.outbox.clone(), rx, self.timeout));
            tx
        })
    }

    /// Drops the queues (and so ends the send tasks) of peers that were removed.
    pub(crate) fn forget_peers_not_in<'a>(&mut self, peers: impl Iterator<Item = &'a str>) {
        if self.queues.is_empty() {
            return;
        }
        let peers: std::collections::BTreeSet<&str> = peers.collect();
        self.queues.retain(|id, _| peers.contains(id.as_str()));
        // Collect the tasks that ended, so that the set does not grow with every restart.
        while self.tasks.try_join_next().is_some() {}
    }

    /// Gives queued messages up to `within` to leave, then stops every send task.
    pub(crate) async fn flush(mut self, within: Duration) {
        self.queues.clear();
        let _ = tokio::time::timeout(within, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
    }
}

async fn deliver<O: Outbox>(
    outbox: Arc<O>,
    mut queue: mpsc::Receiver<Envelope>,
    timeout: Duration,
) {
    while let Some(msg) = queue.recv().await {
        let to = msg.to.clone();
        if tokio::time::timeout(timeout, outbox.send(msg))
            .await
            .is_err()
        {
            tracing::debug!(%to, ?timeout, "send timed out");
        }
    }
}
