//! The one error type of the crate. Every binding maps each variant to its own error kind
//! (a C result code, a Python exception class, a Node.js `code`).

use thiserror::Error;

use crate::auth::AuthError;
use crate::codec::DecodeError;
use crate::config::ConfigError;
use crate::id::{IdError, NodeId};
use crate::storage::StorageError;

/// Why a message, a command or a node was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("invalid node id: {0}")]
    InvalidId(#[from] IdError),
    #[error("malformed message: {0}")]
    Decode(DecodeError),
    #[error("message refused: {0}")]
    Unauthenticated(AuthError),
    #[error("{0}")]
    Storage(#[from] StorageError),
    #[error("the node was removed from its cluster and has stopped")]
    Stopped,
    #[error("the node has been shut down")]
    Closed,
    #[error("no tokio runtime: start the node from inside a runtime, or use NodeBuilder::start_on")]
    NoRuntime,
    #[error("the runtime has already started; set its worker threads before the first node starts")]
    RuntimeStarted,
    #[error("message for cluster {got:?} dropped: this node is in cluster {expected:?}")]
    WrongCluster { expected: String, got: String },
    #[error("message for {to:?} dropped: this node is {me:?}")]
    WrongRecipient { me: NodeId, to: NodeId },
    #[error("{0:?} is not a peer of this node")]
    UnknownPeer(NodeId),
    #[error("a node cannot be its own peer")]
    SelfAsPeer,
    #[error("the cluster already has max_nodes = {max} nodes")]
    TooManyNodes { max: usize },
    #[error("only the leader can do this; {}", describe_leader(leader.as_deref()))]
    NotLeader { leader: Option<NodeId> },
    #[error("there is no peer to hand leadership to (none has answered in this term)")]
    NoPeers,
    #[error("no group {0:?} is hosted here")]
    UnknownGroup(String),
    #[error("group {0:?} is hosted here already")]
    GroupExists(String),
    #[error("internal error (a bug in almost-raft): {0}")]
    Internal(String),
}

fn describe_leader(leader: Option<&str>) -> String {
    match leader {
        Some(leader) => format!("the leader is {leader:?}"),
        None => "no leader is known".into(),
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Unauthenticated(e) => Error::Unauthenticated(e),
            other => Error::Decode(other),
        }
    }
}

/// The kind of an [`enum@Error`], the same in every language: a C result code, a Python exception
/// class, a Node.js `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidConfig,
    InvalidId,
    MalformedMessage,
    WrongCluster,
    WrongRecipient,
    UnknownPeer,
    TooManyNodes,
    NotLeader,
    NoPeers,
    Storage,
    /// The node was closed, or stopped (removed from its cluster, or failed to save).
    Closed,
    Runtime,
    /// A bug in almost-raft (a panic inside it); the node stopped.
    Internal,
    /// A message without a valid tag under the cluster's keyring (or a keyring problem).
    Unauthenticated,
    /// A host has no group of that id.
    UnknownGroup,
    /// A host has a group of that id already.
    GroupExists,
}

impl ErrorKind {
    /// A stable upper-case name, e.g. `INVALID_CONFIG` (Node.js codes are `ERR_` + this).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidConfig => "INVALID_CONFIG",
            ErrorKind::InvalidId => "INVALID_ID",
            ErrorKind::MalformedMessage => "MALFORMED_MESSAGE",
            ErrorKind::WrongCluster => "WRONG_CLUSTER",
            ErrorKind::WrongRecipient => "WRONG_RECIPIENT",
            ErrorKind::UnknownPeer => "UNKNOWN_PEER",
            ErrorKind::TooManyNodes => "TOO_MANY_NODES",
            ErrorKind::NotLeader => "NOT_LEADER",
            ErrorKind::NoPeers => "NO_PEERS",
            ErrorKind::Storage => "STORAGE",
            ErrorKind::Closed => "CLOSED",
            ErrorKind::Runtime => "RUNTIME",
            ErrorKind::Internal => "INTERNAL",
            ErrorKind::Unauthenticated => "UNAUTHENTICATED",
            ErrorKind::UnknownGroup => "UNKNOWN_GROUP",
            ErrorKind::GroupExists => "GROUP_EXISTS",
        }
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) => ErrorKind::InvalidConfig,
            Error::InvalidId(_) | Error::SelfAsPeer => ErrorKind::InvalidId,
            Error::Decode(_) => ErrorKind::MalformedMessage,
            Error::Storage(_) => ErrorKind::Storage,
            Error::Stopped | Error::Closed => ErrorKind::Closed,
            Error::NoRuntime | Error::RuntimeStarted => ErrorKind::Runtime,
            Error::WrongCluster { .. } => ErrorKind::WrongCluster,
            Error::WrongRecipient { .. } => ErrorKind::WrongRecipient,
            Error::UnknownPeer(_) => ErrorKind::UnknownPeer,
            Error::TooManyNodes { .. } => ErrorKind::TooManyNodes,
            Error::NotLeader { .. } => ErrorKind::NotLeader,
            Error::NoPeers => ErrorKind::NoPeers,
            Error::Internal(_) => ErrorKind::Internal,
            Error::Unauthenticated(_) => ErrorKind::Unauthenticated,
            Error::UnknownGroup(_) => ErrorKind::UnknownGroup,
            Error::GroupExists(_) => ErrorKind::GroupExists,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every binding shows these messages as they are: each must read well once.
    #[test]
    fn messages_say_things_once_and_in_words() {
        let config = Error::Config(ConfigError {
            field: "min_nodes",
            reason: "must be at least 1".into(),
        });
        assert_eq!(
            config.to_string(),
            "invalid config: min_nodes: must be at least 1"
        );
        let no_leader = Error::NotLeader { leader: None };
        assert_eq!(
            no_leader.to_string(),
            "only the leader can do this; no leader is known"
        );
        let leader = Error::NotLeader {
            leader: Some("b".into()),
        };
        assert_eq!(
            leader.to_string(),
            "only the leader can do this; the leader is \"b\""
        );
    }
}
