//! The embedding layer under the C, Python and Node.js packages: callbacks on the process-wide
//! runtime, never concurrent for one node, dropped exactly once, and closing from anywhere.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use almost_raft::embed::{Callbacks, EmbeddedNode};
use almost_raft::{Config, Error, LeaderChange, NodeBuilder};

type Registry = Arc<RwLock<BTreeMap<String, Arc<EmbeddedNode>>>>;

/// Hang guard only: the tests wait on events, this bounds a broken run.
const GUARD: Duration = Duration::from_secs(20);

struct TestCallbacks {
    id: String,
    registry: Registry,
    events: Sender<(String, LeaderChange)>,
    in_callback: Arc<AtomicBool>,
    overlaps: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    /// Close this node from inside its next leader callback.
    close_inside: Arc<AtomicBool>,
}

impl TestCallbacks {
    fn enter(&self) {
        if self.in_callback.swap(true, Ordering::SeqCst) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn leave(&self) {
        self.in_callback.store(false, Ordering::SeqCst);
    }
}

impl Callbacks for TestCallbacks {
    fn send(&mut self, to: &str, message: &[u8]) {
        self.enter();
        let peer = self.registry.read().unwrap().get(to).cloned();
        if let Some(peer) = peer {
            let _ = peer.receive(message); // receive from inside a send callback
        }
        self.leave();
    }

    fn leader_changed(&mut self, change: &LeaderChange) {
        self.enter();
        let _ = self.events.send((self.id.clone(), change.clone()));
        if self.close_inside.load(Ordering::SeqCst)
            && let Some(me) = self.registry.read().unwrap().get(&self.id).cloned()
        {
            me.close(); // closing from inside its own callback returns at once
        }
        self.leave();
    }
}

impl Drop for TestCallbacks {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

struct Cluster {
    registry: Registry,
    events: Receiver<(String, LeaderChange)>,
    known: BTreeMap<String, LeaderChange>,
    overlaps: Arc<AtomicUsize>,
    dropped: BTreeMap<String, Arc<AtomicUsize>>,
    close_inside: BTreeMap<String, Arc<AtomicBool>>,
}

impl Cluster {
    fn start(n: usize) -> Cluster {
        let registry: Registry = Arc::default();
        let (tx, events) = channel();
        let overlaps = Arc::new(AtomicUsize::new(0));
        let ids: Vec<String> = (1..=n).map(|i| format!("e{i}")).collect();
        let (mut dropped, mut close_inside) = (BTreeMap::new(), BTreeMap::new());
        for id in &ids {
            let (d, c) = (
                Arc::new(AtomicUsize::new(0)),
                Arc::new(AtomicBool::new(false)),
            );
            let callbacks = TestCallbacks {
                id: id.clone(),
                registry: registry.clone(),
                events: tx.clone(),
                in_callback: Arc::new(AtomicBool::new(false)),
                overlaps: overlaps.clone(),
                dropped: d.clone(),
                close_inside: c.clone(),
            };
            let builder = NodeBuilder::new(id.as_str())
                .peers(ids.iter().filter(|p| *p != id).cloned())
                .config(Config {
                    min_nodes: n,
                    ..Config::fast_lan()
                });
            let node = EmbeddedNode::start(builder, callbacks).unwrap();
            registry.write().unwrap().insert(id.clone(), Arc::new(node));
            dropped.insert(id.clone(), d);
            close_inside.insert(id.clone(), c);
        }
        Cluster {
            registry,
            events,
            known: BTreeMap::new(),
            overlaps,
            dropped,
            close_inside,
        }
    }

    fn live(&self) -> Vec<String> {
        self.registry.read().unwrap().keys().cloned().collect()
    }

    /// Waits for a leader known by every live node in a term above `after`.
    fn agreed(&mut self, after: u64) -> LeaderChange {
        loop {
            let live = self.live();
            let first = self.known.get(&live[0]).cloned();
            if let Some(first) = first.filter(|f| f.leader.is_some() && f.term > after)
                && live.iter().all(|id| self.known.get(id) == Some(&first))
            {
                return first;
            }
            let (id, change) = self
                .events
                .recv_timeout(GUARD)
                .expect("leader events keep coming");
            self.known.insert(id, change);
        }
    }

    fn remove(&self, id: &str) -> Arc<EmbeddedNode> {
        self.registry.write().unwrap().remove(id).unwrap()
    }
}

#[test]
fn a_callback_cluster_elects_fails_over_and_hands_over() {
    let mut c = Cluster::start(3);
    let first = c.agreed(0);
    let leader = first.leader.clone().unwrap();
    let node = c.registry.read().unwrap()[&leader].clone();
    assert_eq!(
        node.status().unwrap().leader.as_deref(),
        Some(leader.as_str())
    );

    // transfer
    let target = c.live().into_iter().find(|id| *id != leader).unwrap();
    assert_eq!(node.transfer_leadership(Some(&target)).unwrap(), target);
    let second = c.agreed(first.term);
    assert_eq!(second.leader.as_deref(), Some(target.as_str()));

    // closing the leader: a new leader with a higher term
    let closing = c.remove(&target);
    closing.close();
    assert_eq!(
        c.dropped[&target].load(Ordering::SeqCst),
        1,
        "callbacks dropped once, when close returns"
    );
    assert!(matches!(closing.receive(b"x"), Err(Error::Closed)));
    assert!(matches!(closing.status(), Err(Error::Closed)));
    closing.close(); // again: nothing happens
    drop(closing);
    assert_eq!(
        c.dropped[&target].load(Ordering::SeqCst),
        1,
        "and never again"
    );
    let third = c.agreed(second.term);
    assert_ne!(third.leader, second.leader);

    for id in c.live() {
        c.remove(&id).close();
        assert_eq!(c.dropped[&id].load(Ordering::SeqCst), 1);
    }
    assert_eq!(
        c.overlaps.load(Ordering::SeqCst),
        0,
        "callbacks of one node never overlap"
    );
}

#[test]
fn a_node_can_close_itself_from_inside_its_callback() {
    let mut c = Cluster::start(3);
    let first = c.agreed(0);
    let victim = c
        .live()
        .into_iter()
        .find(|id| Some(id) != first.leader.as_ref())
        .unwrap();
    c.close_inside[&victim].store(true, Ordering::SeqCst);
    let leader = first.leader.clone().unwrap();
    c.registry.read().unwrap()[&leader]
        .transfer_leadership(Some(&victim))
        .unwrap();
    // The victim closes itself inside the leader callback of the transfer; it is dropped once
    // its callback has returned, without anyone waiting.
    let deadline = std::time::Instant::now() + GUARD;
    while c.dropped[&victim].load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the node that closed itself was never dropped"
        );
        // Keep what arrives meanwhile: the handover's changes may all come before the drop.
        if let Ok((id, change)) = c.events.recv_timeout(Duration::from_millis(50)) {
            c.known.insert(id, change);
        }
    }
    assert!(c.registry.read().unwrap()[&victim].is_closed());
    c.remove(&victim);
    // The others may first agree that the victim leads (the term it won by the transfer);
    // then, as it closed, it handed over: they agree on another leader in a later term.
    let mut next = c.agreed(first.term);
    while next.leader.as_deref() == Some(victim.as_str()) {
        next = c.agreed(next.term);
    }
    assert!(next.term > first.term);
    for id in c.live() {
        c.remove(&id).close();
    }
}

#[test]
fn bad_input_is_refused_and_a_panicking_callback_does_not_stop_the_node() {
    struct Panicky(Sender<LeaderChange>);
    impl Callbacks for Panicky {
        fn send(&mut self, _: &str, _: &[u8]) {
            panic!("send callback panics");
        }
        fn leader_changed(&mut self, change: &LeaderChange) {
            let _ = self.0.send(change.clone());
            panic!("leader callback panics");
        }
    }
    let (tx, rx) = channel();
    let node =
        EmbeddedNode::start(NodeBuilder::new("solo").min_nodes(1), Panicky(tx.clone())).unwrap();
    assert!(matches!(node.receive(&[]), Err(Error::Decode(_))));
    assert!(matches!(node.add_peer(""), Err(Error::InvalidId(_))));
    assert_eq!(
        rx.recv_timeout(GUARD).unwrap(),
        LeaderChange {
            leader: None,
            term: 0
        }
    );
    // The first callback panicked; the next one still comes: the node elected itself.
    assert_eq!(
        rx.recv_timeout(GUARD).unwrap(),
        LeaderChange {
            leader: Some("solo".into()),
            term: 1
        }
    );
    node.close();
    let err = EmbeddedNode::start(
        NodeBuilder::new("x").heartbeat_interval(Duration::from_secs(9)),
        Panicky(tx),
    )
    .err()
    .unwrap();
    assert!(matches!(err, Error::Config(_)));
    assert!(matches!(
        almost_raft::embed::set_worker_threads(4),
        Err(Error::RuntimeStarted)
    ));
}
