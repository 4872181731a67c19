//! almost-raft-core: the sans-IO heart of almost-raft, leader election as a library.
//!
//! Raft's election half, with no log: terms, votes, heartbeats, randomized timeouts, pre-vote,
//! check-quorum, leadership transfer, durable term and vote. This crate has no I/O and no
//! async runtime: the [`Machine`] takes messages, ticks and commands, and hands back a
//! [`Ready`] (messages to send, state to save first, events). The codec turns messages into
//! bytes and back; storage keeps the term and vote. The `almost-raft` crate drives it on
//! tokio and re-exports everything here; see docs/design.md for the layers.

pub mod auth;
#[cfg(feature = "bug-injection")]
pub mod bugs;
pub mod codec;
pub mod config;
pub mod error;
pub mod host;
pub mod id;
pub mod machine;
pub mod message;
pub mod storage;

pub use auth::{AuthError, Keyring};
pub use codec::{DecodeError, EncodeError, decode, encode};
pub use config::{Config, ConfigError};
pub use error::{Error, ErrorKind};
pub use host::{GroupId, Host, HostReady, HostStats};
pub use id::{IdError, MAX_ID_LEN, NodeId, validate_id};
pub use machine::{Event, Machine, Ready, Role, Status};
pub use message::{Body, Envelope, MAX_TERM, MAX_TERM_JUMP};
pub use storage::{FileStorage, HardState, MemStorage, Storage, StorageError};

/// The crate README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
