//! The original almost-raft README's code, as written, against this crate: three nodes wired
//! over mpsc channels elect one leader that all of them agree on.
// The README ignores the result of `send`, as written.
#![allow(unused_must_use)]

use async_trait::async_trait;
use tokio::sync::mpsc;

// ---- from the README, unchanged ----
use almost_raft::{Message, Node};
use tokio::sync::mpsc::Sender;
#[derive(Debug, Clone)]
struct NodeMPSC {
    id: String,
    sender: Sender<Message<NodeMPSC>>,
}

#[async_trait]
impl Node for NodeMPSC {
    type NodeType = NodeMPSC;
    async fn send_message(&self, msg: Message<Self::NodeType>) {
        self.sender.send(msg).await;
    }

    fn node_id(&self) -> &String {
        &self.id
    }
}
// ---- end of the README's code ----

use almost_raft::election::{RaftElectionState, raft_election};

/// One node of the README: its state, the sender to it, its receiver, its id.
type OneNode = (
    RaftElectionState<NodeMPSC>,
    Sender<Message<NodeMPSC>>,
    mpsc::Receiver<Message<NodeMPSC>>,
    String,
);

/// The README's `init` call, for one node (`min_node` lowered from 3 to 2, as three nodes
/// have two peers each).
fn init_one() -> OneNode {
    init_one_with_max_node(5)
}

fn init_one_with_max_node(max_node: usize) -> OneNode {
    let (heartbeat_interval, message_timeout, timeout, min_node) = (1000, 20, 5000, 2);
    let (tx, from_raft) = mpsc::channel(10);
    let self_id = uuid::Uuid::new_v4().to_string();
    let nodes = vec![]; // we'll add node later
    let (state, tx_to_raft) = RaftElectionState::init(
        self_id.clone(),
        timeout,
        heartbeat_interval,
        message_timeout,
        nodes,
        tx.clone(),
        max_node,
        min_node,
    );
    (state, tx_to_raft, from_raft, self_id)
}

#[tokio::test(start_paused = true)]
async fn three_readme_nodes_elect_one_leader_agreed_by_all() {
    elect_with_max_node(5).await;
}

/// 0.4 never enforced `max_node`: with max_node 1, each node still takes both its peers (a
/// node that refused one would count majorities over another peer set), and they elect.
#[tokio::test(start_paused = true)]
async fn max_node_is_not_enforced_as_in_0_4() {
    elect_with_max_node(1).await;
}

async fn elect_with_max_node(max_node: usize) {
    let mut inboxes = Vec::new();
    let mut tasks = Vec::new();
    let nodes: Vec<_> = (0..3).map(|_| init_one_with_max_node(max_node)).collect();
    let handles: Vec<NodeMPSC> = nodes
        .iter()
        .map(|(_, tx_to_raft, _, id)| NodeMPSC {
            id: id.clone(),
            sender: tx_to_raft.clone(),
        })
        .collect();
    for (i, (state, tx_to_raft, from_raft, _)) in nodes.into_iter().enumerate() {
        tasks.push(tokio::spawn(raft_election(state)));
        // Let's add nodes, as the README does.
        for (j, peer) in handles.iter().enumerate() {
            if i != j {
                tx_to_raft
                    .send(Message::ControlAddNode(peer.clone()))
                    .await
                    .unwrap();
            }
        }
        inboxes.push(from_raft);
    }
    let mut leaders = Vec::new();
    for from_raft in &mut inboxes {
        match from_raft.recv().await {
            Some(Message::ControlLeaderChanged(id)) => leaders.push(id),
            other => panic!("expected ControlLeaderChanged, got {other:?}"),
        }
    }
    assert!(
        handles.iter().any(|h| h.id == leaders[0]),
        "the leader is one of the nodes"
    );
    assert!(
        leaders.iter().all(|l| *l == leaders[0]),
        "all agree on one leader: {leaders:?}"
    );
    for task in &tasks {
        assert!(!task.is_finished());
    }
}

#[tokio::test(start_paused = true)]
async fn removing_self_ends_the_loop() {
    let (state, tx_to_raft, _from_raft, id) = init_one();
    let task = tokio::spawn(raft_election(state));
    let (dummy_tx, _dummy_rx) = mpsc::channel(1);
    tx_to_raft
        .send(Message::ControlRemoveNode(NodeMPSC {
            id,
            sender: dummy_tx,
        }))
        .await
        .unwrap();
    task.await
        .expect("the election loop returns after removing itself");
}

#[test]
fn messages_still_serialize_with_serde() {
    fn assert_serde<T: serde::Serialize + serde::de::DeserializeOwned>() {}
    assert_serde::<Message<String>>();
}

#[test]
#[should_panic(expected = "heartbeat_interval_ms")]
fn an_invalid_config_is_named_when_init_panics() {
    let (tx, _rx) = mpsc::channel::<Message<NodeMPSC>>(1);
    let _ = RaftElectionState::init("a".into(), 100, 90, 10, vec![], tx, 5, 2);
}

#[tokio::test(start_paused = true)]
async fn aborting_the_election_leaves_nothing_running_behind_it() {
    let (tx, _from_raft) = mpsc::channel(10);
    let (peer_tx, mut peer_rx) = mpsc::channel(100);
    let peer = NodeMPSC {
        id: "peer".into(),
        sender: peer_tx,
    };
    // min_node 1: one peer is enough to campaign, so this node keeps sending vote requests.
    let (state, _tx_to_raft) =
        RaftElectionState::init("me".into(), 150, 50, 20, vec![peer], tx, 5, 1);
    let task = tokio::spawn(raft_election(state));
    // A pre-vote request (since 0.5, as `Message::Wire`) or a vote request.
    assert!(matches!(
        peer_rx.recv().await,
        Some(Message::Wire(_) | Message::RequestVote { .. })
    ));
    task.abort();
    let _ = task.await;
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    while let Ok(msg) = peer_rx.try_recv() {
        assert!(
            matches!(msg, Message::Wire(_) | Message::RequestVote { .. }),
            "only what was sent before the abort: {msg:?}"
        );
    }
    // Every clone of the peer's sender is gone: no task of the node survived it.
    assert!(peer_rx.recv().await.is_none());
}
