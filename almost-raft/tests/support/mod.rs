//! Helpers of the runtime tests.

pub mod net;
