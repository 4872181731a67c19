//! The original almost-raft API (0.4), kept so its code keeps working: the [`Node`] trait an
//! application implements to reach a peer, the [`Message`]s exchanged, and the election loop
//! in [`election`]. The 0.4 paths (`almost_raft::{Node, Message, NodeState}`,
//! `almost_raft::election`) still name these.

pub mod election;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::message::{Body, Envelope};

/// States of a node, as the original API named them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Follower,
    Candidate,
    Leader,
    Terminating,
}

/// A peer, as the application reaches it.
#[async_trait]
pub trait Node {
    /// The concrete node type (usually `Self`).
    type NodeType;
    /// Sends a message to this peer; the receiving side hands it to its election's channel.
    async fn send_message(&self, msg: Message<Self::NodeType>);
    /// A unique id for this node.
    fn node_id(&self) -> &String;
    /// An id given by service discovery (Kubernetes...); by default the node id.
    fn service_instance_id(&self) -> &String {
        self.node_id()
    }
}

/// Messages to and from an election. The application forwards the first five, as they
/// arrive from peers, into the channel returned by
/// [`RaftElectionState::init`](crate::election::RaftElectionState::init); it sends the
/// `Control*` ones itself, and receives `ControlLeaderChanged` on its own channel.
///
/// Fields marked *since 0.5* were added for pre-vote, check-quorum and leadership transfer;
/// they default when a 0.4 peer's message is deserialized.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Message<T> {
    /// Asks for a vote (or, with `pre_vote`, a pre-vote) in `term`.
    RequestVote {
        node_id: String,
        term: usize,
        /// Since 0.5.
        #[serde(default)]
        pre_vote: bool,
        /// Since 0.5: the leader asked this candidate to campaign.
        #[serde(default)]
        transfer: bool,
    },
    /// Answers `RequestVote`.
    RequestVoteResponse {
        term: usize,
        vote: bool,
        /// Since 0.5: the voter.
        #[serde(default)]
        node_id: String,
        /// Since 0.5.
        #[serde(default)]
        pre_vote: bool,
    },
    /// The leader is alive.
    HeartBeat { leader_node_id: String, term: usize },
    /// Since 0.5: answers a heartbeat.
    HeartBeatResponse { node_id: String, term: usize },
    /// Since 0.5: the leader hands leadership to the receiver.
    TimeoutNow { node_id: String, term: usize },
    /// Adds a peer.
    ControlAddNode(T),
    /// Removes a peer; removing this node itself ends its election loop.
    ControlRemoveNode(T),
    /// A leader was elected: its id.
    ControlLeaderChanged(String),
}

impl<T> Message<T> {
    /// The wire message this is, for the node `to`; `None` for control messages.
    pub(crate) fn to_envelope(&self, cluster: &str, to: &str) -> Option<Envelope> {
        let (from, term, body) = match self {
            Message::RequestVote {
                node_id,
                term,
                pre_vote: true,
                ..
            } => (node_id, term, Body::PreVote),
            Message::RequestVote {
                node_id,
                term,
                transfer,
                ..
            } => (
                node_id,
                term,
                Body::Vote {
                    transfer: *transfer,
                },
            ),
            Message::RequestVoteResponse {
                node_id,
                term,
                vote,
                pre_vote: true,
            } => (node_id, term, Body::PreVoteReply { granted: *vote }),
            Message::RequestVoteResponse {
                node_id,
                term,
                vote,
                ..
            } => (node_id, term, Body::VoteReply { granted: *vote }),
            Message::HeartBeat {
                leader_node_id,
                term,
            } => (leader_node_id, term, Body::Heartbeat),
            Message::HeartBeatResponse { node_id, term } => (node_id, term, Body::HeartbeatReply),
            Message::TimeoutNow { node_id, term } => (node_id, term, Body::TimeoutNow),
            _ => return None,
        };
        Some(Envelope {
            cluster: cluster.to_owned(),
            from: from.clone(),
            to: to.to_owned(),
            term: *term as u64,
            body,
        })
    }

    /// The typed form of a wire message.
    pub(crate) fn from_envelope(msg: Envelope) -> Self {
        let (node_id, term) = (msg.from, usize::try_from(msg.term).unwrap_or(usize::MAX));
        match msg.body {
            Body::PreVote => Message::RequestVote {
                node_id,
                term,
                pre_vote: true,
                transfer: false,
            },
            Body::Vote { transfer } => Message::RequestVote {
                node_id,
                term,
                pre_vote: false,
                transfer,
            },
            Body::PreVoteReply { granted } => Message::RequestVoteResponse {
                node_id,
                term,
                vote: granted,
                pre_vote: true,
            },
            Body::VoteReply { granted } => Message::RequestVoteResponse {
                node_id,
                term,
                vote: granted,
                pre_vote: false,
            },
            Body::Heartbeat => Message::HeartBeat {
                leader_node_id: node_id,
                term,
            },
            Body::HeartbeatReply => Message::HeartBeatResponse { node_id, term },
            Body::TimeoutNow => Message::TimeoutNow { node_id, term },
        }
    }
}
