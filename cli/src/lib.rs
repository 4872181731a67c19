//! The node program: `almost-raft-node` (a node that prints its leader changes) and
//! `almost-raft run` (a supervisor that runs a job only while its node leads with a lease).

mod child;
mod metrics;
pub use child::guard_main;
pub mod host;
pub mod node;
mod output;
pub mod run;
