//! A program written against almost-raft 0.4.0 as published on crates.io (`ClusterNode` with an
//! associated `NodeIdType`, `send_message(&self, Message<Self>)`, `Message::RequestVote {
//! requester_node_id, term }`), compiled unchanged against this crate: three nodes wired over
//! mpsc channels elect one leader that all agree on.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::mpsc::{self, Receiver, Sender};

// ---- written for almost-raft 0.4.0, unchanged ----
use almost_raft::election::{RaftElectionState, raft_election};
use almost_raft::{ClusterNode, Message};

/// Counts the messages each node hands its peers, by 0.4 kind, as a 0.4.0 program would log.
type Seen = Arc<Mutex<BTreeMap<&'static str, usize>>>;

#[derive(Debug, Clone)]
struct Peer {
    id: String,
    sender: Sender<Message<Peer>>,
    seen: Seen,
}

#[async_trait]
impl ClusterNode for Peer {
    type NodeType = Peer;
    type NodeIdType = String;

    async fn send_message(&self, msg: Message<Self>) {
        let kind = match &msg {
            Message::HeartBeat {
                leader_node_id: _,
                term: _,
            } => "heartbeat",
            Message::RequestVote {
                requester_node_id: _,
                term: _,
            } => "request_vote",
            Message::RequestVoteResponse { term: _, vote: _ } => "request_vote_response",
            _ => "other",
        };
        *self.seen.lock().unwrap().entry(kind).or_default() += 1;
        let _ = self.sender.send(msg).await;
    }

    fn node_id(&self) -> &Self::NodeIdType {
        &self.id
    }
}

fn start(id: &str, seen: &Seen) -> (Peer, RaftElectionState<Peer>, Receiver<Message<Peer>>) {
    let (tx, from_raft) = mpsc::channel(10);
    // (self_id, election_timeout, heartbeat_interval, message_timeout, peers, tx, max_node,
    // min_node), as 0.4.0 takes them.
    let (state, tx_to_raft) =
        RaftElectionState::init(id.to_string(), 1000, 100, 20, vec![], tx, 5, 2);
    let handle = Peer {
        id: id.to_string(),
        sender: tx_to_raft,
        seen: seen.clone(),
    };
    (handle, state, from_raft)
}
// ---- end of the 0.4.0 program ----

#[tokio::test(start_paused = true)]
async fn three_published_0_4_nodes_elect_one_leader_agreed_by_all() {
    let seen = Seen::default();
    let nodes: Vec<_> = ["a", "b", "c"].iter().map(|id| start(id, &seen)).collect();
    let handles: Vec<Peer> = nodes.iter().map(|(h, _, _)| h.clone()).collect();
    let mut inboxes = Vec::new();
    let mut tasks = Vec::new();
    for (i, (me, state, from_raft)) in nodes.into_iter().enumerate() {
        tasks.push(tokio::spawn(raft_election(state)));
        for (j, peer) in handles.iter().enumerate() {
            if i != j {
                me.sender
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
        ["a", "b", "c"].contains(&leaders[0].as_str()),
        "{leaders:?}"
    );
    assert!(leaders.iter().all(|l| *l == leaders[0]), "{leaders:?}");
    // Heartbeats and vote requests travel as 0.4's own variants; answers name their voter, so
    // they travel as `Message::Wire` (0.4's `RequestVoteResponse` does not say who voted).
    let seen = seen.lock().unwrap().clone();
    assert!(seen.get("heartbeat").copied().unwrap_or(0) > 0, "{seen:?}");
    assert!(
        seen.get("request_vote").copied().unwrap_or(0) > 0,
        "{seen:?}"
    );
    assert!(seen.get("other").copied().unwrap_or(0) > 0, "{seen:?}");
    assert_eq!(seen.get("request_vote_response"), None, "{seen:?}");
    for task in tasks {
        task.abort();
    }
}

/// A 0.4 peer's vote answer does not say who voted, so it cannot be counted; it is ignored
/// rather than counted for whoever is asked (a bug 0.4 had).
#[tokio::test(start_paused = true)]
async fn an_anonymous_0_4_vote_answer_is_not_counted() {
    let seen = Seen::default();
    let (me, state, mut from_raft) = start("a", &seen);
    let (peer_tx, mut peer_rx) = mpsc::channel(100);
    for id in ["b", "c"] {
        let peer = Peer {
            id: id.into(),
            sender: peer_tx.clone(),
            seen: seen.clone(),
        };
        me.sender.send(Message::ControlAddNode(peer)).await.unwrap();
    }
    let task = tokio::spawn(raft_election(state));
    // Whatever it asks (pre-votes go as Wire), answer "yes" the 0.4 way, many times over.
    for _ in 0..20 {
        let Some(_) = peer_rx.recv().await else { break };
        for _ in 0..3 {
            me.sender
                .send(Message::RequestVoteResponse {
                    term: 1,
                    vote: true,
                })
                .await
                .unwrap();
        }
    }
    assert!(
        from_raft.try_recv().is_err(),
        "no leader from anonymous answers"
    );
    task.abort();
}
