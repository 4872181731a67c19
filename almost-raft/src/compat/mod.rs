//! The original almost-raft API (0.4), kept so that its code compiles unchanged: the peer trait
//! an application implements, the [`Message`]s exchanged, and the election loop in
//! [`election`]. The 0.4 paths (`almost_raft::{Node, ClusterNode, Message, NodeState}`,
//! `almost_raft::election`) still name these.
//!
//! 0.4 came in two shapes, and both work: the README's [`Node`] (`node_id() -> &String`), and
//! the crate published as 0.4.0, [`ClusterNode`] (an associated `NodeIdType`,
//! `send_message(&self, Message<Self>)`). Every `Node` is a `ClusterNode` with `String` ids;
//! the election runs on any `ClusterNode`.

pub mod election;

use std::fmt::{Debug, Display};
use std::hash::Hash;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::codec::{EncodeError, decode, encode};
use crate::message::{Body, Envelope};

/// States of a node, as the original API named them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Follower,
    Candidate,
    Leader,
    Terminating,
}

/// A peer, as the application reaches it (the 0.4 README's shape).
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

/// A peer, as the application reaches it (the shape published as almost-raft 0.4.0).
#[async_trait]
pub trait ClusterNode {
    /// The concrete node type (usually `Self`).
    type NodeType;
    /// The type of a node's id; the election names nodes by its `Display` form, and turns
    /// ids it receives back with `From<String>`.
    type NodeIdType: Display + Clone + Debug + PartialEq + From<String> + Eq + Hash + Send + Sync;
    /// Sends a message to this peer; the receiving side hands it to its election's channel.
    async fn send_message(&self, msg: Message<Self>)
    where
        Self: Sized;
    /// A unique id for this node.
    fn node_id(&self) -> &Self::NodeIdType;
}

/// Every README-shaped [`Node`] is a [`ClusterNode`] with `String` ids.
#[async_trait]
impl<N: Node<NodeType = N> + Send + Sync> ClusterNode for N {
    type NodeType = N;
    type NodeIdType = String;
    async fn send_message(&self, msg: Message<Self>) {
        Node::send_message(self, msg).await
    }
    fn node_id(&self) -> &String {
        Node::node_id(self)
    }
}

/// Messages to and from an election. The application forwards every message a peer sent it
/// into the channel returned by
/// [`RaftElectionState::init`](crate::election::RaftElectionState::init); it sends the
/// `Control*` ones itself, and receives `ControlLeaderChanged` on its own channel.
///
/// The first three are 0.4's, field for field. Since 0.5 the election also needs messages
/// 0.4 had no variant for (pre-votes, replies that name their voter, heartbeat replies,
/// leadership handover): they travel as [`Message::Wire`], the bytes of docs/wire.md, which
/// the application forwards like any other.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Message<T> {
    /// Asks for a vote in `term`.
    RequestVote {
        requester_node_id: String,
        term: usize,
    },
    /// Answers `RequestVote`. The 0.5 election sends its answers as [`Message::Wire`], which
    /// names the voter; this one, from a 0.4 peer, is ignored (it does not say who voted).
    RequestVoteResponse { term: usize, vote: bool },
    /// The leader is alive.
    HeartBeat { leader_node_id: String, term: usize },
    /// Adds a peer.
    ControlAddNode(T),
    /// Removes a peer; removing this node itself ends its election loop.
    ControlRemoveNode(T),
    /// A leader was elected: its id.
    ControlLeaderChanged(String),
    /// Since 0.5: any other election message, encoded as in docs/wire.md.
    Wire(Vec<u8>),
}

impl<T> Message<T> {
    /// The wire message this is, for the node `to`: `Ok(None)` for control messages and for a
    /// 0.4 vote answer (which does not say who voted).
    pub(crate) fn to_envelope(
        &self,
        cluster: &str,
        to: &str,
    ) -> Result<Option<Envelope>, crate::Error> {
        let (from, term, body) = match self {
            Message::RequestVote {
                requester_node_id,
                term,
            } => (requester_node_id, term, Body::Vote { transfer: false }),
            Message::HeartBeat {
                leader_node_id,
                term,
            } => (leader_node_id, term, Body::Heartbeat { round: 0 }),
            Message::Wire(bytes) => return Ok(Some(decode(bytes)?)),
            _ => return Ok(None),
        };
        Ok(Some(Envelope {
            cluster: cluster.to_owned(),
            from: from.clone(),
            to: to.to_owned(),
            term: *term as u64,
            body,
        }))
    }

    /// The typed form of a wire message: a 0.4 variant where one says everything, else
    /// [`Message::Wire`].
    pub(crate) fn from_envelope(msg: Envelope) -> Result<Self, EncodeError> {
        let term = usize::try_from(msg.term).unwrap_or(usize::MAX);
        Ok(match msg.body {
            Body::Vote { transfer: false } => Message::RequestVote {
                requester_node_id: msg.from,
                term,
            },
            Body::Heartbeat { .. } => Message::HeartBeat {
                leader_node_id: msg.from,
                term,
            },
            _ => Message::Wire(encode(&msg)?),
        })
    }
}
