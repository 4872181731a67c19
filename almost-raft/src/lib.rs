//! almost-raft: leader election as a library.
//!
//! Raft's election half, with no log: terms, votes, heartbeats, randomized timeouts, pre-vote,
//! check-quorum, leadership transfer, durable term and vote. The application keeps its own
//! network: it hands the library the bytes it receives and sends the bytes the library hands
//! back.
//!
//! The layers, from the inside out (docs/design.md):
//! - the sans-IO [`Machine`] (crate `almost-raft-core`, re-exported here): inputs in, a
//!   [`Ready`] out (messages, state to save first, events);
//! - the [`runtime`] drives one machine on tokio: each `Ready` is saved, then sent, then
//!   published as a [`LeaderChange`]; [`NodeBuilder`] starts it, [`NodeHandle`] controls it;
//! - the [`embed`] layer runs nodes on a process-wide runtime behind plain callbacks: the C,
//!   Python and Node.js packages are thin wrappers over it;
//! - beside them, [`compat`] keeps the 0.4 API working on the same machine.
//!
//! The simulator that drives the machine through hostile worlds is a crate of its own
//! (`almost-raft-sim`, not published), so that nothing here is test machinery.

pub mod compat;
pub mod embed;
pub mod host;
pub mod runtime;

pub use almost_raft_core::{
    AuthError, Body, Config, ConfigError, DecodeError, EncodeError, Envelope, Error, ErrorKind,
    Event, FileStorage, HardState, IdError, Keyring, MAX_ID_LEN, MAX_TERM, MAX_TERM_JUMP, Machine,
    MemStorage, NodeId, Ready, Role, Status, Storage, StorageError, decode, encode, validate_id,
};
pub use almost_raft_core::{auth, codec, config, error, id, machine, message, storage};
/// The 0.4 path of the election loop (now [`compat::election`]).
pub use compat::election;
pub use compat::{ClusterNode, Message, Node, NodeState};
pub use runtime::{
    LeaderChange, LeaderChanges, Leadership, Lease, NodeBuilder, NodeHandle, Observer, Transport,
};

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
