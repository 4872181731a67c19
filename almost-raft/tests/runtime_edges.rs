//! The runtime at the edges: a save that fails, a save in flight when the node is dropped, a
//! second node on one state file, a panic inside the node, a panicking send. Each test names
//! the README promise it checks.

mod support;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use almost_raft::embed::{Callbacks, EmbeddedNode};
use almost_raft::storage::{FileStorage, HardState, Storage, StorageError};
use almost_raft::{Body, Config, Envelope, Error, ErrorKind, LeaderChange, NodeBuilder, Role};
use almost_raft::{Transport, encode};
use support::net::{Net, ids};

/// Hang guard only: the tests wait on events, this bounds a broken run.
const GUARD: Duration = Duration::from_secs(20);

/// Memory storage whose saves fail once `fail` is set.
#[derive(Clone, Default)]
struct FailingStorage {
    fail: Arc<AtomicBool>,
}

impl Storage for FailingStorage {
    fn load(&mut self) -> Result<HardState, StorageError> {
        Ok(HardState::default())
    }
    fn save(&mut self, _: &HardState) -> Result<(), StorageError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StorageError::Failed {
                reason: "the disk is full".into(),
            });
        }
        Ok(())
    }
    fn blocks(&self) -> bool {
        false
    }
}

/// README promise 6: a leader whose save fails stops, reports no leader (status, is_leader,
/// a last change), says why (`failure()`, `wait_for_leader`), and refuses later calls as
/// closed. It used to keep answering "leader" forever.
#[tokio::test(start_paused = true)]
async fn a_leader_whose_save_fails_stops_says_why_and_reports_no_leader() {
    let net = Arc::new(Net::default());
    let all = ids(3);
    let storages: Vec<FailingStorage> = all.iter().map(|_| FailingStorage::default()).collect();
    for (id, storage) in all.iter().zip(&storages) {
        net.start(net.builder(id, &all).storage(storage.clone()), id);
    }
    let first = net.agreed_leader(&all).await;
    let leader_id = first.leader.clone().unwrap();
    let leader = net.node(&leader_id);
    let mut changes = leader.leader_changes();
    assert_eq!(changes.next().await, Some(first.clone()));
    storages[all.iter().position(|id| *id == leader_id).unwrap()]
        .fail
        .store(true, Ordering::SeqCst);
    // A reply with a higher term makes the leader step down and save that term: it fails.
    let peer = all.iter().find(|id| **id != leader_id).unwrap();
    let reply = Envelope {
        cluster: String::new(),
        from: peer.clone(),
        to: leader_id.clone(),
        term: first.term + 1,
        body: Body::HeartbeatReply { round: 0 },
    };
    leader.receive(&encode(&reply).unwrap()).unwrap();
    let last = LeaderChange {
        leader: None,
        term: first.term,
    };
    assert_eq!(
        changes.next().await,
        Some(last),
        "no leader, in the saved term"
    );
    assert_eq!(changes.next().await, None, "the stream ends");
    let status = leader.status();
    assert!(status.stopped);
    assert_eq!((status.role, status.leader), (Role::Follower, None));
    assert!(!leader.is_leader());
    let failure = leader.failure().expect("the reason is kept");
    assert_eq!(failure.kind(), ErrorKind::Storage);
    assert!(
        failure.to_string().contains("the disk is full"),
        "{failure}"
    );
    assert_eq!(leader.wait_for_leader().await, Err(failure));
    assert_eq!(leader.add_peer("n9"), Err(Error::Closed));
    assert_eq!(leader.receive(&encode(&reply).unwrap()), Err(Error::Closed));
}

/// A file storage on a slow disk: every save takes `delay`, and says when it starts and
/// when it has landed.
struct SlowDisk {
    file: FileStorage,
    delay: Duration,
    started: Sender<()>,
    landed: Arc<AtomicUsize>,
}

impl Storage for SlowDisk {
    fn load(&mut self) -> Result<HardState, StorageError> {
        self.file.load()
    }
    fn save(&mut self, state: &HardState) -> Result<(), StorageError> {
        let _ = self.started.send(());
        std::thread::sleep(self.delay); // the slow disk itself, not a synchronisation
        self.file.save(state)?;
        self.landed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Promise 1 across restarts: dropping a node while its save is in flight waits for that
/// save and releases the state file, so a node restarted on the file right away loads what
/// was really saved. The save used to run on, detached, and land after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_node_with_a_save_in_flight_waits_for_it_and_releases_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let (started, saves) = channel();
    let landed = Arc::new(AtomicUsize::new(0));
    let disk = SlowDisk {
        file: FileStorage::new(&path),
        delay: Duration::from_millis(300),
        started,
        landed: landed.clone(),
    };
    let config = Config {
        min_nodes: 1,
        ..Config::fast_lan()
    };
    let node = NodeBuilder::new("solo")
        .config(config.clone())
        .storage(disk)
        .start(|_: &str, _: Vec<u8>| {})
        .unwrap();
    // Alone, it campaigns after one election timeout and saves its vote: that save is slow.
    tokio::task::spawn_blocking(move || saves.recv_timeout(GUARD).unwrap())
        .await
        .unwrap();
    assert_eq!(landed.load(Ordering::SeqCst), 0, "the save is in flight");
    drop(node);
    assert_eq!(landed.load(Ordering::SeqCst), 1, "drop waited for the save");
    let again = NodeBuilder::new("solo")
        .config(config)
        .state_path(&path)
        .start(|_: &str, _: Vec<u8>| {})
        .expect("the state file's lock was released");
    let status = again.status();
    assert_eq!(
        (status.term, status.voted_for.as_deref()),
        (1, Some("solo"))
    );
}

/// Promise 1: two nodes on one state file could vote twice in a term; the second one fails
/// at start with an error that names the file. A state file in a directory that does not
/// exist fails at start too, not at the first save.
#[tokio::test(start_paused = true)]
async fn a_state_file_in_use_or_in_a_missing_directory_fails_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let start = |path: &std::path::Path| {
        NodeBuilder::new("a")
            .peers(["b", "c"])
            .state_path(path)
            .start(|_: &str, _: Vec<u8>| {})
    };
    let first = start(&path).unwrap();
    let Err(Error::Storage(e @ StorageError::Locked { .. })) = start(&path) else {
        panic!("a second node on the same file must be refused");
    };
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    drop(first);
    start(&path).expect("free again once the first node is gone");
    let missing = dir.path().join("no-such-dir/state");
    let Err(Error::Storage(e)) = start(&missing) else {
        panic!("a missing directory must fail at start");
    };
    assert!(
        e.to_string().contains(&missing.display().to_string()),
        "{e}"
    );
}

/// Memory storage whose save panics: stands for any bug inside the node's driver.
struct PanickingStorage;

impl Storage for PanickingStorage {
    fn load(&mut self) -> Result<HardState, StorageError> {
        Ok(HardState::default())
    }
    fn save(&mut self, _: &HardState) -> Result<(), StorageError> {
        panic!("a bug");
    }
    fn blocks(&self) -> bool {
        false // saved on the driver's own task, so the panic unwinds the driver
    }
}

struct Recorder(Sender<Option<Error>>);

impl Callbacks for Recorder {
    fn send(&mut self, _: &str, _: &[u8]) {}
    fn leader_changed(&mut self, _: &LeaderChange) {}
    fn stopped(&mut self, failure: Option<&Error>) {
        let _ = self.0.send(failure.cloned());
    }
}

/// Promise 6 under a bug: a panic inside the node stops it as a failed save would (stopped,
/// no leader, the reason told to the callbacks) and `close()` returns. It used to hang.
#[test]
fn a_panic_in_the_driver_stops_the_node_and_close_returns() {
    let (tx, stopped) = channel();
    let builder = NodeBuilder::new("solo")
        .min_nodes(1)
        .config(Config {
            min_nodes: 1,
            ..Config::fast_lan()
        })
        .storage(PanickingStorage);
    let node = EmbeddedNode::start(builder, Recorder(tx)).unwrap();
    let failure = stopped.recv_timeout(GUARD).expect("stopped() was called");
    let failure = failure.expect("with the reason");
    assert_eq!(failure.kind(), ErrorKind::Internal);
    assert!(failure.to_string().contains("a bug"), "{failure}");
    let status = node.status().unwrap();
    assert!(status.stopped && status.leader.is_none());
    assert_eq!(node.failure(), Some(failure));
    let (closed_tx, closed) = channel();
    std::thread::spawn(move || {
        node.close();
        closed_tx.send(()).unwrap();
    });
    closed.recv_timeout(GUARD).expect("close() returned");
}

/// Sends to `n2` panic the first time; every send is counted per peer.
#[derive(Clone, Default)]
struct FlakySend {
    sends: Arc<Mutex<Vec<String>>>,
    panicked: Arc<AtomicBool>,
}

impl Transport for FlakySend {
    async fn send(&self, to: &str, _: Vec<u8>) -> io::Result<()> {
        if to == "n2" && !self.panicked.swap(true, Ordering::SeqCst) {
            panic!("the application's send has a bug");
        }
        self.sends.lock().unwrap().push(to.to_owned());
        Ok(())
    }
}

/// The runtime's promise that a peer's sends never stop for good: one panicking send used
/// to end that peer's send task, and every later send failed as "queue full".
#[tokio::test(start_paused = true)]
async fn a_panicking_send_does_not_mute_the_peer() {
    let transport = FlakySend::default();
    let node = NodeBuilder::new("n1")
        .peers(["n2", "n3"])
        .config(Config::fast_lan())
        .start(transport.clone())
        .unwrap();
    // Nobody answers, so n1 asks for pre-votes every election timeout.
    let to_n2 = || {
        transport
            .sends
            .lock()
            .unwrap()
            .iter()
            .filter(|t| *t == "n2")
            .count()
    };
    while to_n2() < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(transport.panicked.load(Ordering::SeqCst));
    node.shutdown().await.unwrap();
}

/// A tracing writer that keeps what it is given.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Issue "a cluster that can never elect says nothing": README, "the node warns at start when
/// its peers cannot reach min_nodes". Two voters with the default min_nodes of 3 warn once;
/// three do not.
#[tokio::test(start_paused = true)]
async fn a_node_whose_peers_cannot_reach_min_nodes_warns_at_start() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let text = || String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();

    let enough = NodeBuilder::new("a")
        .peers(["b", "c"])
        .start(Ignore)
        .unwrap();
    assert!(!text().contains("min_nodes"), "{}", text());
    let too_few = NodeBuilder::new("a2").peers(["b"]).start(Ignore).unwrap();
    let log = text();
    assert_eq!(
        log.matches("too few peers to reach min_nodes").count(),
        1,
        "{log}"
    );
    assert!(
        log.contains("voters=2") && log.contains("min_nodes=3"),
        "{log}"
    );
    drop((enough, too_few));
}

/// A network that loses everything.
struct Ignore;

impl Transport for Ignore {
    async fn send(&self, _: &str, _: Vec<u8>) -> io::Result<()> {
        Ok(())
    }
}
