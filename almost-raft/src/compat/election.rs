//! The election loop of the original almost-raft API (0.4), now driven by the sans-IO machine:
//! pre-vote, check-quorum, durable votes and leadership transfer come with it.
//!
//! One difference from the handle API: `min_node` and `max_node` count the *peers*, not this
//! node, as they did in 0.4 (`min_node = 2` means this node and two peers).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::{Receiver, Sender, channel};
use tokio::sync::oneshot;
use tracing::Instrument;

use super::{ClusterNode, Message};
use crate::config::{Config, ConfigError};
use crate::message::Envelope;
use crate::runtime::{NodeBuilder, Outbox, run_node};
use crate::storage::Storage;

/// Everything an election needs before it starts. Build it with [`RaftElectionState::init`]
/// and run it with [`raft_election`].
pub struct RaftElectionState<T> {
    self_id: String,
    config: Config,
    peers: Vec<T>,
    tx: Sender<Message<T>>,
    incoming: Receiver<Message<T>>,
    storage: Option<Box<dyn Storage>>,
}

impl<T: ClusterNode + Send + Sync + 'static> RaftElectionState<T> {
    /// Prepares an election; [`raft_election`] starts it.
    ///
    /// * `election_timeout` (ms): a follower campaigns after a time drawn from
    ///   `[election_timeout, 2 * election_timeout)` without a leader.
    /// * `heartbeat_interval` (ms): at most half of `election_timeout`.
    /// * `message_timeout` (ms): the longest a send to one peer may take.
    /// * `nodes`: the peers known at start; more come with `Message::ControlAddNode`.
    /// * `tx`: where `Message::ControlLeaderChanged` is sent.
    /// * `max_node`, `min_node`: the most and the fewest *peers* (this node not counted);
    ///   no election starts with fewer than `min_node` peers.
    ///
    /// Returns the state and the sender for incoming messages (from peers, and control).
    ///
    /// # Panics
    /// On an invalid configuration, with a message naming the value; see [`Self::try_init`].
    #[allow(clippy::too_many_arguments)]
    pub fn init(
        self_id: T::NodeIdType,
        election_timeout: u64,
        heartbeat_interval: u64,
        message_timeout: u64,
        nodes: Vec<T>,
        tx: Sender<Message<T>>,
        max_node: usize,
        min_node: usize,
    ) -> (Self, Sender<Message<T>>) {
        Self::try_init(
            self_id,
            election_timeout,
            heartbeat_interval,
            message_timeout,
            nodes,
            tx,
            max_node,
            min_node,
        )
        .unwrap_or_else(|e| panic!("almost-raft: {e}"))
    }

    /// [`Self::init`] that returns an invalid configuration as an error.
    #[allow(clippy::too_many_arguments)]
    pub fn try_init(
        self_id: T::NodeIdType,
        election_timeout: u64,
        heartbeat_interval: u64,
        message_timeout: u64,
        nodes: Vec<T>,
        tx: Sender<Message<T>>,
        max_node: usize,
        min_node: usize,
    ) -> Result<(Self, Sender<Message<T>>), ConfigError> {
        let config = Config {
            election_timeout: Duration::from_millis(election_timeout),
            heartbeat_interval: Duration::from_millis(heartbeat_interval),
            message_timeout: Duration::from_millis(message_timeout),
            min_nodes: min_node + 1,
            // 0.4 never enforced `max_node`: a node that refused a peer would count its
            // majorities over another peer set than the others. Accepted as a hint only.
            max_nodes: None,
            ..Config::default()
        };
        config.validate()?;
        let (incoming_tx, incoming) = channel(max_node.max(1).saturating_mul(16).min(4096));
        let state = RaftElectionState {
            self_id: self_id.to_string(),
            config,
            peers: nodes,
            tx,
            incoming,
            storage: None,
        };
        Ok((state, incoming_tx))
    }

    /// Keeps this node's term and vote in a file, so a restart cannot make it vote twice in
    /// one term. Without it they live in memory only.
    pub fn with_state_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.storage = Some(Box::new(crate::storage::FileStorage::new(path)));
        self
    }
}

type Peers<T> = Arc<Mutex<BTreeMap<String, Arc<T>>>>;

struct CompatOutbox<T> {
    self_id: String,
    peers: Peers<T>,
}

impl<T: ClusterNode + Send + Sync + 'static> Outbox for CompatOutbox<T> {
    async fn send(&self, msg: Envelope) {
        let peer = self
            .peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&msg.to)
            .cloned();
        match peer {
            Some(peer) => match Message::from_envelope(msg) {
                Ok(msg) => peer.send_message(msg).await,
                Err(e) => {
                    tracing::error!(node = %self.self_id, error = %e, "cannot encode a message")
                }
            },
            None => {
                tracing::debug!(node = %self.self_id, to = %msg.to, "no such peer: message dropped")
            }
        }
    }
}

/// Runs the election until this node is removed (`Message::ControlRemoveNode` of itself).
/// Dropping or aborting this future stops the node and everything it started.
///
/// Each time a leader becomes known, its id is sent on `tx` as `Message::ControlLeaderChanged`
/// (in order; the loop waits rather than drop one when `tx` is full).
pub async fn raft_election<T: ClusterNode + Send + Sync + 'static>(state: RaftElectionState<T>) {
    let RaftElectionState {
        self_id,
        config,
        peers,
        tx,
        mut incoming,
        storage,
    } = state;
    let span = tracing::info_span!("almost_raft", node = %self_id);
    let mut builder = NodeBuilder::new(self_id.clone()).config(config.clone());
    if let Some(storage) = storage {
        builder = builder.storage_box(storage);
    }
    let shared = match builder.prepare() {
        Ok(prepared) => prepared,
        Err(e) => {
            tracing::error!(node = %self_id, error = %e, "cannot start the election");
            return;
        }
    };
    let known: Peers<T> = Arc::new(Mutex::new(BTreeMap::new()));
    let add = |node: T| {
        let id = node.node_id().to_string();
        match shared.with_machine(|m, now| m.add_peer(now, &id)) {
            Ok(()) => {
                known
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, Arc::new(node));
            }
            Err(e) => tracing::warn!(node = %self_id, peer = %id, error = %e, "peer not added"),
        }
    };
    for peer in peers {
        add(peer);
    }
    let (_keep_running, stop) = oneshot::channel();
    let outbox = CompatOutbox {
        self_id: self_id.clone(),
        peers: known.clone(),
    };
    let driver = run_node(shared.clone(), outbox, stop);
    let inbox = async {
        while let Some(msg) = incoming.recv().await {
            match msg {
                Message::ControlAddNode(node) => add(node),
                Message::ControlRemoveNode(node) => {
                    let id = node.node_id().to_string();
                    if let Err(e) = shared.with_machine(|m, now| m.remove_peer(now, &id)) {
                        tracing::warn!(node = %self_id, peer = %id, error = %e, "peer not removed");
                    }
                    known.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                }
                Message::ControlLeaderChanged(_) => {}
                wire => {
                    let stepped =
                        wire.to_envelope(&config.cluster, &self_id)
                            .and_then(|e| match e {
                                Some(envelope) => {
                                    shared.with_machine(|m, now| m.step(now, envelope))
                                }
                                None => Ok(()),
                            });
                    if let Err(e) = stepped {
                        tracing::debug!(node = %self_id, error = %e, "message refused");
                    }
                }
            }
        }
        // Every sender is gone; the election goes on with the peers it has.
        std::future::pending::<()>().await
    };
    let announce = async {
        let mut changes = shared.subscribe();
        while let Some(change) = changes.recv().await {
            if let Some(leader) = change.leader {
                let _ = tx.send(Message::ControlLeaderChanged(leader)).await;
            }
        }
        std::future::pending::<()>().await
    };
    let run = async {
        tokio::select! {
            result = driver => {
                if let Err(e) = result {
                    tracing::error!(node = %self_id, error = %e, "election stopped");
                }
            }
            _ = inbox => {}
            _ = announce => {}
        }
    };
    run.instrument(span).await;
}
