//! The C ABI of almost-raft. Every function is a thin wrapper over
//! `almost_raft::embed::EmbeddedNode` (a node) or `almost_raft::embed::host::EmbeddedHost` (a
//! host of many groups): argument checks and conversions only, no election logic.
//! The header, include/almost_raft.h, is generated from this crate by cbindgen.
#![allow(non_camel_case_types)]
// Every pointer is checked for NULL; what else the caller promises is in each function's docs.
#![allow(clippy::missing_safety_doc, clippy::not_unsafe_ptr_arg_deref)]

mod args;
mod config;
mod host;
mod node;
mod result;

pub use config::*;
pub use host::*;
pub use node::*;
pub use result::*;

/// The longest node id (and cluster name), in bytes of UTF-8.
pub const ALMOST_RAFT_MAX_ID_LEN: usize = 255;

/// The size of a buffer that holds any id with its NUL (ALMOST_RAFT_MAX_ID_LEN + 1).
pub const ALMOST_RAFT_ID_BUF_LEN: usize = 256;

const _: () = assert!(ALMOST_RAFT_ID_BUF_LEN == ALMOST_RAFT_MAX_ID_LEN + 1);
const _: () = assert!(ALMOST_RAFT_MAX_ID_LEN == almost_raft::MAX_ID_LEN);

/// The library's version, e.g. "0.5.0": a static NUL-terminated string. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_version() -> *const std::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Sets the number of threads of the library's runtime (default 2). Call it before the first
/// node starts; afterwards, or when it loses a race with the first node's start, it returns
/// ALMOST_RAFT_RUNTIME and changes nothing. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_set_worker_threads(threads: usize) -> almost_raft_result {
    result::guard(|| Ok(almost_raft::embed::set_worker_threads(threads)?))
}
