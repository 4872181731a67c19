//! almost-raft: leader election as a library.
//!
//! Raft's election half, with no log: terms, votes, heartbeats, randomized timeouts, pre-vote,
//! check-quorum, leadership transfer, durable term and vote. The application keeps its own
//! network: it hands the library the bytes it receives and sends the bytes the library hands
//! back. The core is the sans-IO [`Machine`]; [`sim`] drives it through faults.

pub mod bugs;
pub mod codec;
pub mod config;
pub mod election;
pub mod embed;
pub mod error;
pub mod fuzzing;
pub mod id;
pub mod machine;
pub mod message;
pub mod runtime;
mod seed;
pub mod sim;
pub mod storage;

pub use bugs::Bug;
pub use codec::{DecodeError, EncodeError, decode, encode};
pub use config::{Config, ConfigError};
pub use error::{Error, ErrorKind};
pub use id::{IdError, MAX_ID_LEN, NodeId, validate_id};
pub use machine::{Event, Machine, Ready, Role, Status};
pub use message::{Body, Envelope, MAX_TERM, MAX_TERM_JUMP};
pub use runtime::{LeaderChange, LeaderChanges, NodeBuilder, NodeHandle, Transport};
pub use seed::{Message, Node, NodeState};
pub use storage::{FileStorage, HardState, MemStorage, Storage, StorageError};

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
