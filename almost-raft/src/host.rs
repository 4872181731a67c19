//! Many election groups in one process on tokio: a [`Host`] (`almost_raft_core::host`) with
//! one transport, one state file and one ordered stream of group events.
//!
//! ```no_run
//! # async fn demo() -> Result<(), almost_raft::Error> {
//! use almost_raft::host::HostBuilder;
//! use almost_raft::Config;
//!
//! let host = HostBuilder::new("h1")
//!     .config(Config { cluster: "shards".into(), ..Config::default() })
//!     .state_file("/var/lib/app/h1.state")
//!     .udp("0.0.0.0:7100", [("h2", "10.0.0.2:7100"), ("h3", "10.0.0.3:7100")])
//!     .start()?;
//! for shard in 0..1000 {
//!     host.add_group(&format!("shard-{shard}"), &["h1", "h2", "h3"], None)?;
//! }
//! while let Some(e) = host.next_event().await {
//!     println!("{}: {:?}", e.group, e.event);
//! }
//! # Ok(()) }
//! ```
//!
//! The driver saves each batch of terms and votes with one write (on a blocking thread)
//! before it sends anything that depends on it, then publishes the events in order. Every
//! method may be called from any thread.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::runtime::shared::lock;
use crate::runtime::udp::{AddressBook, bind};
use almost_raft_core::host::Host;
pub use almost_raft_core::host::{
    FileHostStorage, GroupId, HostState, HostStats, HostStorage, MemHostStorage,
};
use almost_raft_core::{Config, Error, Event, HardState, Keyring, Status, StorageError};

/// The largest datagram a host reads (larger than any the host wire writes).
const RECEIVE_BUFFER: usize = 65_536;
/// The socket buffers asked for (the kernel caps them at net.core.rmem_max / wmem_max).
const SOCKET_BUFFER: usize = 1 << 20;

/// One event of one group, in the order they happened on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEvent {
    pub group: GroupId,
    pub event: Event,
}

/// Sends a datagram to the host named; must return quickly.
pub type SendFn = dyn Fn(&str, &[u8]) + Send + Sync;

enum Transport {
    Callback(Arc<SendFn>),
    Udp {
        listen: String,
        peers: BTreeMap<String, String>,
    },
}

/// Starts a host.
pub struct HostBuilder {
    id: String,
    config: Config,
    storage: Box<dyn HostStorage>,
    keyring: Option<Keyring>,
    transport: Option<Transport>,
    seed: Option<u64>,
}

impl HostBuilder {
    /// A host named `id`, with default timeouts, keeping its state in memory until
    /// [`HostBuilder::state_file`] says where to keep it durably.
    pub fn new(id: impl Into<String>) -> Self {
        HostBuilder {
            id: id.into(),
            config: Config::default(),
            storage: Box::new(MemHostStorage::default()),
            keyring: None,
            transport: None,
            seed: None,
        }
    }
    /// The cluster of hosts and every group's timeouts and options.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }
    /// Keeps every group's term and vote in this file (one fsync per batch).
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.storage = Box::new(FileHostStorage::new(path));
        self
    }
    pub fn storage(mut self, storage: impl HostStorage + 'static) -> Self {
        self.storage = Box::new(storage);
        self
    }
    /// Signs every datagram and accepts only signed ones.
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }
    /// The application's transport: `send(to_host, bytes)`; it hands what it receives to
    /// [`HostHandle::receive`].
    pub fn send(mut self, send: impl Fn(&str, &[u8]) + Send + Sync + 'static) -> Self {
        self.transport = Some(Transport::Callback(Arc::new(send)));
        self
    }
    /// The built-in transport: a UDP socket on `listen`, peers by host id and address.
    pub fn udp<'a>(
        mut self,
        listen: &str,
        peers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let peers = peers
            .into_iter()
            .map(|(id, addr)| (id.to_owned(), addr.to_owned()))
            .collect();
        self.transport = Some(Transport::Udp {
            listen: listen.to_owned(),
            peers,
        });
        self
    }
    /// Fixes the seed of the groups' randomized timeouts (tests).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Starts the host on the current tokio runtime: opens its storage (a new incarnation)
    /// and starts its driver. Fails on an invalid id or config, a storage that cannot open,
    /// no transport, or no runtime.
    pub fn start(mut self) -> Result<HostHandle, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let transport = self.transport.take().ok_or_else(|| {
            Error::Config(almost_raft_core::ConfigError {
                field: "transport",
                reason: "a host needs a transport: HostBuilder::send or HostBuilder::udp".into(),
            })
        })?;
        let saved = self.storage.open()?;
        let started = Instant::now();
        let seed = self.seed.unwrap_or_else(rand_seed);
        let mut host = Host::new(
            self.id,
            self.config,
            saved.incarnation,
            seed,
            Duration::ZERO,
        )?;
        host.set_keyring(self.keyring);
        let (send, udp): (Arc<SendFn>, _) = match transport {
            Transport::Callback(send) => (send, None),
            Transport::Udp { listen, peers } => {
                let socket = bind(&listen)?;
                // A host's datagrams come in bursts (a host crash starts thousands of
                // elections): room for them, as far as the system allows (net.core.rmem_max).
                let sock = socket2::SockRef::from(socket.as_ref());
                let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
                let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
                let book = Arc::new(AddressBook::new(peers));
                let (sock, b) = (socket.clone(), book.clone());
                let send: Arc<SendFn> = Arc::new(move |to: &str, bytes: &[u8]| {
                    send_udp(&sock, &b, to, bytes);
                });
                (send, Some((socket, book)))
            }
        };
        let inner = Arc::new(Inner {
            host: Mutex::new(host),
            saved: Mutex::new(saved.groups),
            started,
            wake: Notify::new(),
            events: Mutex::new(VecDeque::new()),
            event_ready: Notify::new(),
            failure: Mutex::new(None),
            finished: AtomicBool::new(false),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let driver = runtime.spawn(drive(inner.clone(), self.storage, send, stop_rx));
        if let Some((socket, _)) = udp {
            let receiver = inner.clone();
            runtime.spawn(async move { receive_udp(socket, receiver).await });
        }
        Ok(HostHandle {
            inner,
            stop: Mutex::new(Some((stop_tx, driver))),
        })
    }
}

fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

struct Inner {
    host: Mutex<Host>,
    /// What the storage held at start, for the groups added since.
    saved: Mutex<HashMap<GroupId, HardState>>,
    started: Instant,
    wake: Notify,
    events: Mutex<VecDeque<GroupEvent>>,
    event_ready: Notify,
    failure: Mutex<Option<Error>>,
    /// The driver ended: the events queued are the last.
    finished: AtomicBool,
}

impl Inner {
    fn now(&self) -> Duration {
        self.started.elapsed()
    }
    fn instant(&self, at: Duration) -> Instant {
        self.started + at
    }
    /// Runs a command on the host and wakes the driver to hand out what it produced.
    fn with<T>(&self, f: impl FnOnce(&mut Host, Duration) -> Result<T, Error>) -> Result<T, Error> {
        let result = {
            let mut host = lock(&self.host);
            if host.is_stopped() {
                return Err(lock(&self.failure).clone().unwrap_or(Error::Closed));
            }
            f(&mut host, self.now())
        };
        self.wake.notify_one();
        result
    }
}

/// Controls a running host. Dropping it stops the host without handing over (see
/// [`HostHandle::shutdown`]).
pub struct HostHandle {
    inner: Arc<Inner>,
    stop: Mutex<Option<(oneshot::Sender<bool>, tokio::task::JoinHandle<()>)>>,
}

impl HostHandle {
    /// Hosts group `group` here: `voters` are its hosts (this one among them), `preferred`
    /// the host that should lead it whenever it answers. Its saved term and vote are
    /// resumed. Fails with `GroupExists`, `InvalidId`, or `UnknownPeer` when `voters` does
    /// not name this host or `preferred` is not a voter.
    pub fn add_group(
        &self,
        group: &str,
        voters: &[&str],
        preferred: Option<&str>,
    ) -> Result<(), Error> {
        let state = lock(&self.inner.saved)
            .get(group)
            .cloned()
            .unwrap_or_default();
        self.inner
            .with(|host, now| host.add_group(now, group, voters, preferred, state))
    }

    /// Stops hosting `group` (its last events follow on the stream).
    pub fn remove_group(&self, group: &str) -> Result<(), Error> {
        self.inner.with(|host, now| host.remove_group(now, group))
    }

    /// Hands a datagram received from another host to this one.
    pub fn receive(&self, bytes: &[u8]) -> Result<(), Error> {
        self.inner.with(|host, now| host.receive(now, bytes))
    }

    pub fn status(&self, group: &str) -> Result<Status, Error> {
        let now = self.inner.now();
        lock(&self.inner.host).status(now, group)
    }

    /// Whether this host holds `group`'s lease now.
    pub fn holds_lease(&self, group: &str) -> Result<bool, Error> {
        let now = self.inner.now();
        lock(&self.inner.host).holds_lease(now, group)
    }

    /// Hands `group`'s leadership to `to`, or to its most recently heard voter.
    pub fn transfer_leadership(&self, group: &str, to: Option<&str>) -> Result<String, Error> {
        self.inner
            .with(|host, now| host.transfer_leadership(now, group, to))
    }

    /// Evidence that `host`'s process is gone (see `Machine::peer_unreachable`).
    pub fn peer_unreachable(&self, host: &str) -> Result<(), Error> {
        self.inner.with(|h, now| h.peer_unreachable(now, host))
    }

    pub fn stats(&self) -> HostStats {
        lock(&self.inner.host).stats()
    }

    /// The next event of any group, in order; `None` once the host stopped and every event
    /// was taken.
    pub async fn next_event(&self) -> Option<GroupEvent> {
        loop {
            let notified = self.inner.event_ready.notified();
            if let Some(event) = self.try_event() {
                return Some(event);
            }
            if self.inner.finished.load(Ordering::Acquire) {
                return self.try_event();
            }
            notified.await;
        }
    }

    /// The next event if one is waiting.
    pub fn try_event(&self) -> Option<GroupEvent> {
        lock(&self.inner.events).pop_front()
    }

    /// Hands every group this host leads over to another voter (the most recently heard in
    /// its term), and goes on answering until each of them knows another leader, or for one
    /// election timeout; then stops. The last events (no leader, stopped) follow on the
    /// stream.
    pub async fn shutdown(&self) {
        let taken = lock(&self.stop).take();
        if let Some((stop, task)) = taken {
            let _ = stop.send(true);
            let _ = task.await;
        }
    }

    /// Why the host stopped by itself (a failed save), if it did.
    pub fn failure(&self) -> Option<Error> {
        lock(&self.inner.failure).clone()
    }
}

impl Drop for HostHandle {
    fn drop(&mut self) {
        if let Some((stop, _)) = lock(&self.stop).take() {
            let _ = stop.send(false);
        }
    }
}

/// Runs the host until stopped or a save fails.
async fn drive(
    inner: Arc<Inner>,
    mut storage: Box<dyn HostStorage>,
    send: Arc<SendFn>,
    mut stop: oneshot::Receiver<bool>,
) {
    let handover = loop {
        if let Err(e) = flush(&inner, &mut storage, &send).await {
            tracing::error!(error = %e, "host stopped: a save failed");
            *lock(&inner.failure) = Some(e);
            break false;
        }
        let deadline = lock(&inner.host).next_deadline();
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep_until(inner.instant(deadline)) => {}
            graceful = &mut stop => break graceful.unwrap_or(false),
        }
    };
    if handover {
        let now = inner.now();
        let led = {
            let mut host = lock(&inner.host);
            let led = host.leading();
            for group in &led {
                let _ = host.transfer_leadership(now, group, None);
            }
            led
        };
        tracing::info!(
            groups = led.len(),
            "shutting down: handing leaderships over"
        );
        // Go on answering (the targets may need this host's vote) until every group it led
        // knows another leader, or for one election timeout.
        let until = inner.instant(inner.now() + lock(&inner.host).config().election_timeout);
        loop {
            if flush(&inner, &mut storage, &send).await.is_err() {
                break;
            }
            let done = {
                let mut host = lock(&inner.host);
                let now = inner.now();
                let me = host.id().to_owned();
                led.iter().all(|g| {
                    host.status(now, g)
                        .is_ok_and(|s| s.leader.is_some_and(|l| l != me))
                })
            };
            let deadline = lock(&inner.host).next_deadline();
            if done || Instant::now() >= until {
                break;
            }
            tokio::select! {
                _ = inner.wake.notified() => {}
                _ = tokio::time::sleep_until(inner.instant(deadline).min(until)) => {}
            }
        }
    }
    lock(&inner.host).stop(inner.now());
    let events = lock(&inner.host).ready().events;
    publish(&inner, events);
    inner.finished.store(true, Ordering::Release);
    inner.event_ready.notify_waiters();
}

/// Hands out everything ready, in the one safe order: save the batch, tell the host, send,
/// publish the events.
async fn flush(
    inner: &Arc<Inner>,
    storage: &mut Box<dyn HostStorage>,
    send: &Arc<SendFn>,
) -> Result<(), Error> {
    loop {
        let ready = {
            let mut host = lock(&inner.host);
            let now = inner.now();
            if host.next_deadline() <= now {
                host.handle_timeout(now);
            }
            host.ready()
        };
        if ready.is_empty() {
            return Ok(());
        }
        if !ready.hard_states.is_empty() {
            let batch = ready.hard_states;
            let (s, batch) = save(
                std::mem::replace(storage, Box::new(MemHostStorage::default())),
                batch,
            )
            .await?;
            *storage = s;
            let now = inner.now();
            lock(&inner.host).persisted(now, &batch);
        }
        for (to, bytes) in &ready.datagrams {
            send(to, bytes);
        }
        publish(inner, ready.events);
    }
}

/// Saves on a blocking thread: the runtime never waits on fsync.
async fn save(
    mut storage: Box<dyn HostStorage>,
    batch: Vec<(GroupId, HardState)>,
) -> Result<(Box<dyn HostStorage>, Vec<(GroupId, HardState)>), Error> {
    tokio::task::spawn_blocking(move || {
        let result = storage.save(&batch);
        result.map(|()| (storage, batch))
    })
    .await
    .map_err(|e| {
        Error::Storage(StorageError::Failed {
            reason: format!("save panicked: {e}"),
        })
    })?
    .map_err(Error::Storage)
}

fn publish(inner: &Inner, events: Vec<(GroupId, Event)>) {
    if events.is_empty() {
        return;
    }
    lock(&inner.events).extend(
        events
            .into_iter()
            .map(|(group, event)| GroupEvent { group, event }),
    );
    inner.event_ready.notify_waiters();
}

/// Sends at once when the address is known and the socket has room; otherwise looks the
/// address up, or waits for room, on a task of its own.
fn send_udp(socket: &Arc<UdpSocket>, book: &Arc<AddressBook>, to: &str, bytes: &[u8]) {
    if let Some(addr) = book.cached(to) {
        match socket.try_send_to(bytes, addr) {
            Ok(_) => return,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => {
                book.forget(to);
                tracing::debug!(%to, error = %e, "send failed");
                return;
            }
        }
    }
    let (socket, book, to, bytes) = (socket.clone(), book.clone(), to.to_owned(), bytes.to_vec());
    tokio::spawn(async move {
        let sent = match book.address(&to).await {
            Ok(addr) => socket.send_to(&bytes, addr).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            book.forget(&to);
            tracing::debug!(%to, error = %e, "send failed");
        }
    });
}

async fn receive_udp(socket: Arc<UdpSocket>, inner: Arc<Inner>) {
    let mut buf = vec![0u8; RECEIVE_BUFFER];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let result = {
                    let mut host = lock(&inner.host);
                    if host.is_stopped() {
                        return;
                    }
                    host.receive(inner.now(), &buf[..n])
                };
                inner.wake.notify_one();
                if let Err(e) = result {
                    tracing::debug!(%from, error = %e, "datagram refused");
                }
            }
            Err(e) => tracing::debug!(error = %e, "receive failed"),
        }
    }
}
