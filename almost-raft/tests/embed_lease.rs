//! The lease callbacks of the embedding layer (under C, Python and Node.js): the leader hears
//! it holds the lease, and hears it lost it before any other node hears of a new leader, also
//! when no message reaches it (cut off).

use std::collections::BTreeSet;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use almost_raft::embed::{Callbacks, EmbeddedNode};
use almost_raft::{Config, LeaderChange, NodeBuilder};

/// Hang guard only: the test waits on events.
const GUARD: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Leader(String, LeaderChange),
    Lease(String, bool, u64),
}

type Nodes = Arc<RwLock<Vec<(String, Arc<EmbeddedNode>)>>>;

struct Recorder {
    id: String,
    nodes: Nodes,
    cut: Arc<Mutex<BTreeSet<String>>>,
    seen: Sender<Seen>,
}

impl Callbacks for Recorder {
    fn send(&mut self, to: &str, message: &[u8]) {
        let cut = self.cut.lock().unwrap();
        if cut.contains(&self.id) || cut.contains(to) {
            return;
        }
        drop(cut);
        let peer = self
            .nodes
            .read()
            .unwrap()
            .iter()
            .find(|(id, _)| id == to)
            .map(|p| p.1.clone());
        if let Some(peer) = peer {
            let _ = peer.receive(message);
        }
    }

    fn leader_changed(&mut self, change: &LeaderChange) {
        let _ = self
            .seen
            .send(Seen::Leader(self.id.clone(), change.clone()));
    }

    fn lease_changed(&mut self, held: bool, term: u64) {
        let _ = self.seen.send(Seen::Lease(self.id.clone(), held, term));
    }
}

fn next(seen: &Receiver<Seen>) -> Seen {
    seen.recv_timeout(GUARD)
        .expect("an event within the hang guard")
}

#[test]
fn a_cut_off_leader_hears_it_lost_the_lease_before_anyone_hears_of_a_new_leader() {
    let nodes: Nodes = Arc::default();
    let cut = Arc::new(Mutex::new(BTreeSet::new()));
    let (tx, seen) = channel();
    let ids = ["l1", "l2", "l3"];
    // A margin wide enough for callback delivery on a loaded machine.
    let config = Config {
        election_timeout: Duration::from_millis(600),
        heartbeat_interval: Duration::from_millis(50),
        lease_margin: Some(Duration::from_millis(200)),
        min_nodes: 3,
        ..Config::default()
    };
    for id in ids {
        let builder = NodeBuilder::new(id)
            .peers(ids.iter().filter(|p| **p != id).map(|p| p.to_string()))
            .config(config.clone());
        let callbacks = Recorder {
            id: id.into(),
            nodes: nodes.clone(),
            cut: cut.clone(),
            seen: tx.clone(),
        };
        let node = EmbeddedNode::start(builder, callbacks).unwrap();
        nodes.write().unwrap().push((id.into(), Arc::new(node)));
    }
    let (leader, term) = loop {
        if let Seen::Lease(id, true, term) = next(&seen) {
            break (id, term);
        }
    };
    cut.lock().unwrap().insert(leader.clone());
    let mut lease_lost = false;
    loop {
        match next(&seen) {
            Seen::Lease(id, false, t) if id == leader => {
                assert_eq!(t, term);
                lease_lost = true;
            }
            Seen::Leader(id, change)
                if id != leader && change.term > term && change.leader.is_some() =>
            {
                assert!(
                    lease_lost,
                    "{id} heard of {change:?} before {leader} lost its lease"
                );
                break;
            }
            _ => {}
        }
    }
    for (_, node) in nodes.read().unwrap().iter() {
        node.close();
    }
}
