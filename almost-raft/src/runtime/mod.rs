//! The tokio runtime and the handle API: one task per node drives the machine for real.
//!
//! ```no_run
//! # async fn example() -> Result<(), almost_raft::Error> {
//! use almost_raft::{Config, NodeBuilder};
//!
//! // Your network: send `bytes` to the node `to` however you like.
//! let send = |to: &str, bytes: Vec<u8>| { let _ = (to, bytes); };
//! let node = NodeBuilder::new("n1")
//!     .peers(["n2", "n3"])
//!     .config(Config::fast_lan())
//!     .state_path("/var/lib/my-service/election-state")
//!     .start(send)?;
//! // Hand it every message the network delivers: node.receive(&bytes)?;
//! let mut changes = node.leader_changes();
//! while let Some(change) = changes.next().await {
//!     println!("leader {:?} in term {}", change.leader, change.term);
//! }
//! node.shutdown().await?;
//! # Ok(()) }
//! ```

mod changes;
mod driver;
mod lease;
mod liveness;
mod observer;
mod outbox;
pub(crate) mod shared;
mod slot;
pub(crate) mod udp;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::auth::Keyring;
use crate::config::{Config, ConfigError};
use crate::error::Error;
use crate::id::NodeId;
use crate::machine::{Machine, Role, Status};
use crate::storage::{FileStorage, MemStorage, Storage};
pub(crate) use changes::ChangeReceiver;
pub use changes::MAX_UNREAD_CHANGES;
pub(crate) use driver::run_node;
pub use lease::{Leadership, Lease};
pub use observer::Observer;
pub(crate) use outbox::Outbox;
pub use shared::LeaderChange;
pub(crate) use shared::Shared;
pub(crate) use wire::BytesOutbox;
pub use wire::Transport;

/// Builds a node: its id, peers, config and storage.
pub struct NodeBuilder {
    id: NodeId,
    peers: Vec<NodeId>,
    config: Config,
    storage: Option<Box<dyn Storage>>,
    seed: Option<u64>,
    keyring: Option<Keyring>,
    keys: Vec<Vec<u8>>,
    key_file: Option<PathBuf>,
    /// With the built-in UDP transport: where to listen, and the peers' addresses.
    listen: Option<String>,
    addresses: std::collections::BTreeMap<NodeId, String>,
    observer: Option<Arc<dyn Observer>>,
}

impl NodeBuilder {
    /// A node with the default [`Config`] (note `min_nodes` = 3) and no saved state.
    pub fn new(id: impl Into<NodeId>) -> Self {
        NodeBuilder {
            id: id.into(),
            peers: Vec::new(),
            config: Config::default(),
            storage: None,
            seed: None,
            keyring: None,
            keys: Vec::new(),
            key_file: None,
            listen: None,
            addresses: Default::default(),
            observer: None,
        }
    }

    pub fn peers<I, S>(mut self, peers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<NodeId>,
    {
        self.peers.extend(peers.into_iter().map(Into::into));
        self
    }

    /// Replaces the whole config (the setters below change one key).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }
    pub fn cluster(mut self, name: impl Into<String>) -> Self {
        self.config.cluster = name.into();
        self
    }
    pub fn election_timeout(mut self, timeout: Duration) -> Self {
        self.config.election_timeout = timeout;
        self
    }
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.config.heartbeat_interval = interval;
        self
    }
    pub fn message_timeout(mut self, timeout: Duration) -> Self {
        self.config.message_timeout = timeout;
        self
    }
    pub fn min_nodes(mut self, nodes: usize) -> Self {
        self.config.min_nodes = nodes;
        self
    }
    pub fn max_nodes(mut self, nodes: Option<usize>) -> Self {
        self.config.max_nodes = nodes;
        self
    }
    pub fn pre_vote(mut self, on: bool) -> Self {
        self.config.pre_vote = on;
        self
    }
    pub fn check_quorum(mut self, on: bool) -> Self {
        self.config.check_quorum = on;
        self
    }
    /// The most any clock drifts, in parts per million (see [`Config::drift_bound_ppm`]).
    pub fn drift_bound_ppm(mut self, ppm: u32) -> Self {
        self.config.drift_bound_ppm = ppm;
        self
    }
    /// How long before its bound the lease is told lost (see [`Config::lease_margin`]).
    pub fn lease_margin(mut self, margin: Duration) -> Self {
        self.config.lease_margin = Some(margin);
        self
    }

    /// Keeps the term and vote in this file ([`FileStorage`]); it is created if missing.
    pub fn state_path(self, path: impl Into<PathBuf>) -> Self {
        self.storage(FileStorage::new(path))
    }

    /// Keeps the term and vote in `storage`. Without it, they live in memory only.
    pub fn storage(self, storage: impl Storage + 'static) -> Self {
        self.storage_box(Box::new(storage))
    }

    pub(crate) fn storage_box(mut self, storage: Box<dyn Storage>) -> Self {
        self.storage = Some(storage);
        self
    }

    /// Authenticates every message with the cluster's keys (docs/wire.md, version 2): the node
    /// then sends only signed messages and refuses the rest with
    /// [`Error::Unauthenticated`], counted in [`Status::unauthenticated`]. Every node of the
    /// cluster needs a keyring that shares a key with the others' signing keys.
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// The cluster's keys, as bytes (16 to 64 each; the first signs): the same as
    /// [`NodeBuilder::keyring`], checked when the node starts (`Error::Config` names `keys`).
    pub fn keys<K: AsRef<[u8]>>(mut self, keys: impl IntoIterator<Item = K>) -> Self {
        self.keys = keys.into_iter().map(|k| k.as_ref().to_vec()).collect();
        self
    }

    /// The cluster's keys, from a key file ([`Keyring::from_file`]: hex, one per line, not
    /// readable by every user), read when the node starts (`Error::Config` names `key_file`).
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some(path.into());
        self
    }

    /// The keyring from `keyring`, `keys` or `key_file` (at most one of them).
    fn resolve_keyring(&mut self) -> Result<Option<Keyring>, Error> {
        let invalid = |field, reason: String| Error::Config(ConfigError { field, reason });
        let given = [
            self.keyring.is_some(),
            !self.keys.is_empty(),
            self.key_file.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(invalid(
                "keys",
                "give keys, a key file or a keyring, not several".into(),
            ));
        }
        if !self.keys.is_empty() {
            return wire::keyring_of(&self.keys).map(Some);
        }
        if let Some(path) = &self.key_file {
            return Keyring::from_file(path)
                .map(Some)
                .map_err(|e| invalid("key_file", e.to_string()));
        }
        Ok(self.keyring.take())
    }

    /// For the built-in UDP transport ([`NodeBuilder::start_udp`]): the address to listen on,
    /// e.g. `"0.0.0.0:7001"`.
    pub fn listen(mut self, address: impl Into<String>) -> Self {
        self.listen = Some(address.into());
        self
    }

    /// For the built-in UDP transport: a peer and its address, `"host:port"`. A hostname is
    /// looked up again every 30 s and after a failed send, so peers found through DNS may move.
    pub fn peer_at(mut self, id: impl Into<NodeId>, address: impl Into<String>) -> Self {
        let id = id.into();
        self.peers.push(id.clone());
        self.addresses.insert(id, address.into());
        self
    }

    /// Starts the node on the current tokio runtime with the built-in UDP transport: it
    /// listens on [`NodeBuilder::listen`] and reaches the peers given by
    /// [`NodeBuilder::peer_at`]. The application only hears leader changes; it never calls
    /// `receive`. Fails with `Error::Config` (naming `listen` or `peers`) when it cannot
    /// listen or a peer has no address.
    pub fn start_udp(mut self) -> Result<NodeHandle, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let _entered = runtime.enter();
        let Some(mut transport) = self.take_udp()? else {
            return Err(Error::Config(ConfigError {
                field: "listen",
                reason: "the UDP transport needs an address to listen on".into(),
            }));
        };
        let local = transport.socket.local_addr().ok();
        let background = transport.background();
        let mut node = self.start_on(&runtime, transport)?;
        let receiver = runtime.spawn(background.run(node.shared.clone()));
        node.udp = Some(UdpParts {
            local,
            receiver: receiver.abort_handle(),
        });
        Ok(node)
    }

    /// The built-in UDP transport, bound, when [`NodeBuilder::listen`] was given. Fails when
    /// it cannot listen, or a peer has no address.
    pub(crate) fn take_udp(&mut self) -> Result<Option<udp::UdpTransport>, Error> {
        let Some(listen) = self.listen.take() else {
            return Ok(None);
        };
        if let Some(peer) = self.peers.iter().find(|p| !self.addresses.contains_key(*p)) {
            return Err(Error::Config(ConfigError {
                field: "peers",
                reason: format!("peer {peer:?} has no address"),
            }));
        }
        let book = udp::AddressBook::new(std::mem::take(&mut self.addresses));
        Ok(Some(udp::UdpTransport::bind(&listen, book)?))
    }

    /// Tells `observer` of every message, refusal, save and event of this node (for metrics;
    /// see [`Observer`]).
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Fixes the seed of the node's randomized timeouts (tests); normally drawn at random.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Starts the node on the current tokio runtime.
    pub fn start(self, transport: impl Transport) -> Result<NodeHandle, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        self.start_on(&runtime, transport)
    }

    /// Starts the node on the given tokio runtime.
    pub fn start_on(
        self,
        runtime: &tokio::runtime::Handle,
        transport: impl Transport,
    ) -> Result<NodeHandle, Error> {
        let _entered = runtime.enter();
        let shared = self.prepare()?;
        let (stop, stopped) = oneshot::channel();
        let span = tracing::info_span!("almost_raft", node = %shared.machine().id());
        let task = runtime.spawn(
            run_node(
                shared.clone(),
                BytesOutbox(transport, shared.signer.clone()),
                stopped,
            )
            .instrument(span),
        );
        Ok(NodeHandle {
            shared,
            stop: Some(stop),
            task: Some(task),
            udp: None,
        })
    }

    /// Validates everything and loads the saved state (taking the state file's lock): the
    /// machine, ready to be driven.
    pub(crate) fn prepare(mut self) -> Result<Arc<Shared>, Error> {
        self.config.validate()?;
        let keyring = self.resolve_keyring()?;
        let voters = self
            .peers
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            + 1;
        if voters < self.config.min_nodes {
            tracing::warn!(
                node = %self.id,
                voters,
                min_nodes = self.config.min_nodes,
                "this node knows too few peers to reach min_nodes: no election starts until more are added"
            );
        }
        let mut storage = self.storage.unwrap_or_else(|| Box::new(MemStorage::new()));
        let state = storage.load()?;
        let origin = tokio::time::Instant::now();
        let seed = self.seed.unwrap_or_else(rand::random);
        let mut machine = Machine::new(self.id, self.config, state, seed, Duration::ZERO)?;
        for peer in &self.peers {
            machine.add_peer(Duration::ZERO, peer)?;
        }
        let observer = observer::Observed(
            self.observer
                .unwrap_or_else(|| Arc::new(observer::Unobserved)),
        );
        Ok(Arc::new(Shared::new(
            machine, origin, storage, keyring, observer,
        )))
    }
}

/// A running node. Dropping it stops the node at once; [`NodeHandle::shutdown`] stops it
/// gracefully, handing leadership over first.
pub struct NodeHandle {
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<bool>>,
    task: Option<JoinHandle<Result<(), Error>>>,
    /// The built-in UDP transport's socket address and receive task, if it runs on one.
    udp: Option<UdpParts>,
}

struct UdpParts {
    local: Option<std::net::SocketAddr>,
    receiver: tokio::task::AbortHandle,
}

impl NodeHandle {
    /// Hands the node a message its network received. Malformed bytes, another cluster's
    /// messages and messages from unknown peers are refused with an error; the node goes on.
    pub fn receive(&self, bytes: &[u8]) -> Result<(), Error> {
        self.shared.receive(bytes)
    }

    /// Adds a voter; adding a known peer again does nothing.
    pub fn add_peer(&self, id: &str) -> Result<(), Error> {
        self.shared.with_machine(|m, now| m.add_peer(now, id))
    }

    /// Removes a voter. Removing the node itself stops it.
    pub fn remove_peer(&self, id: &str) -> Result<(), Error> {
        self.shared.with_machine(|m, now| m.remove_peer(now, id))
    }

    /// Reports that peer `id`'s process is gone, on evidence from its host (a connection its
    /// kernel reset or refused, a supervisor's exit notice, an orchestrator's deletion event);
    /// never on mere silence. A follower of that peer campaigns at once instead of waiting
    /// for its election timeout: a dead leader is replaced in about two round trips. False
    /// evidence at a minority changes no term (nodes that still hear the leader refuse), and
    /// never costs the lease its promise ([`Machine::peer_unreachable`]). Needs pre-vote
    /// (without it, this does nothing). Fails with `UnknownPeer` for an unknown id.
    pub fn peer_unreachable(&self, id: &str) -> Result<(), Error> {
        self.shared
            .with_machine(|m, now| m.peer_unreachable(now, id))
    }

    /// Rotates the cluster's keys on this running node, which must have started with keys:
    /// from now on the first of `keys` signs and each of them verifies. Rotate one node at a
    /// time: first give every node the new key second, then first, then drop the old one.
    pub fn set_keys<K: AsRef<[u8]>>(&self, keys: impl IntoIterator<Item = K>) -> Result<(), Error> {
        let keys: Vec<Vec<u8>> = keys.into_iter().map(|k| k.as_ref().to_vec()).collect();
        self.shared.set_keys(&keys)
    }

    /// Hands leadership to `to`, or to the most responsive peer. Only the leader can.
    pub fn transfer_leadership(&self, to: Option<&str>) -> Result<NodeId, Error> {
        self.shared
            .with_machine(|m, now| m.transfer_leadership(now, to))
    }

    /// What the node knows; role, term, leader and vote agree with the last event delivered.
    pub fn status(&self) -> Status {
        self.shared.status()
    }

    pub fn id(&self) -> String {
        self.shared.machine().id().to_owned()
    }
    pub fn leader(&self) -> Option<NodeId> {
        self.shared.current_leader().leader
    }
    pub fn term(&self) -> u64 {
        self.shared.current_leader().term
    }
    pub fn is_leader(&self) -> bool {
        self.shared.status().role == Role::Leader
    }

    /// Why the node stopped by itself, if it did: a save that failed ([`Error::Storage`]) or
    /// an internal error ([`Error::Internal`]). It then reports no leader, its status says
    /// `stopped`, its streams end, and every other call fails with [`Error::Closed`].
    pub fn failure(&self) -> Option<Error> {
        self.shared.failure()
    }

    /// Every change of leader from now on, starting with the current state, in order. It
    /// ends when the node stops, after a last change with no leader. A reader that falls
    /// more than [`MAX_UNREAD_CHANGES`] behind skips the oldest changes it has not read,
    /// never the latest: the last change it reads is always the node's final state.
    pub fn leader_changes(&self) -> LeaderChanges {
        LeaderChanges {
            rx: self.shared.subscribe(),
        }
    }

    /// Waits until a leader is known, and returns it. Fails with the reason the node stopped
    /// ([`NodeHandle::failure`]), or [`Error::Closed`], if it stops first.
    pub async fn wait_for_leader(&self) -> Result<LeaderChange, Error> {
        let mut changes = self.leader_changes();
        while let Some(change) = changes.next().await {
            if change.leader.is_some() {
                return Ok(change);
            }
        }
        Err(self.failure().unwrap_or(Error::Closed))
    }

    /// This node's lease, if it holds one now: it leads, and no other node can be elected
    /// before `until` (as long as clocks drift within `drift_bound_ppm`).
    pub fn lease(&self) -> Option<Lease> {
        self.shared.lease()
    }

    /// Waits until this node leads with a lease. The [`Leadership`] says in which term, and
    /// resolves [`Leadership::lost`] when the lease ends (also when no message arrives).
    /// Fails with [`Error::Closed`] if the node stops first.
    /// The future does not borrow the handle, so it can be spawned.
    pub fn leadership(
        &self,
    ) -> impl std::future::Future<Output = Result<Leadership, Error>> + Send + 'static {
        Leadership::acquire(self.shared.watch_lease())
    }

    /// Runs `task(term)` while this node leads: waits for a lease, runs the task, and drops
    /// it (cancels it) when the lease ends, before any other node can be elected. Returns
    /// the task's output if it finished in time, `None` if it was cancelled.
    ///
    /// ```no_run
    /// # async fn example(node: &almost_raft::NodeHandle) -> Result<(), almost_raft::Error> {
    /// node.while_leader(|term| async move {
    ///     loop {
    ///         println!("the only copy doing the job, fencing token {term}");
    ///         tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    ///     }
    /// })
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub async fn while_leader<T, F, Fut>(&self, task: F) -> Result<Option<T>, Error>
    where
        F: FnOnce(u64) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let leadership = self.leadership().await?;
        let term = leadership.term();
        Ok(leadership.run(task(term)).await)
    }

    /// Stops the node. A leader first hands leadership to its most responsive peer, so the
    /// cluster is leaderless for about one round trip instead of an election timeout.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        let result = match self.task.take() {
            Some(task) => task.await.unwrap_or(Err(Error::Closed)),
            None => Ok(()),
        };
        if let Some(udp) = self.udp.take() {
            udp.receiver.abort();
        }
        result
    }

    /// The address the built-in UDP transport listens on (`None` without it).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.udp.as_ref().and_then(|u| u.local)
    }
}

impl Drop for NodeHandle {
    /// Stops the node at once, without handover. A save in flight is waited for (one fsync)
    /// and the state file's lock is released before this returns, so a node restarted on
    /// the same file right after starts from what was really saved.
    fn drop(&mut self) {
        if let Some(udp) = self.udp.take() {
            udp.receiver.abort();
        }
        if let Some(task) = self.task.take() {
            task.abort();
            self.shared.storage.release();
            self.shared.close(None);
        }
    }
}

/// Leader changes of one node, in order. See [`NodeHandle::leader_changes`].
pub struct LeaderChanges {
    rx: ChangeReceiver,
}

impl LeaderChanges {
    /// The next change; `None` once the node has stopped and every change was read.
    pub async fn next(&mut self) -> Option<LeaderChange> {
        self.rx.recv().await
    }

    /// The next change if one is waiting, without waiting.
    pub fn try_next(&mut self) -> Option<LeaderChange> {
        self.rx.try_recv()
    }

    /// How many changes this reader skipped because it fell behind.
    pub fn skipped(&self) -> u64 {
        self.rx.skipped()
    }
}
