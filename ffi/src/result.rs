//! Result codes, the per-thread last error, and the guard every entry point runs in.

use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

use almost_raft::{Error, ErrorKind};

/// What a call did. Anything but ALMOST_RAFT_OK comes with a message from
/// almost_raft_last_error_message().
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum almost_raft_result {
    ALMOST_RAFT_OK = 0,
    /// A pointer argument was NULL.
    ALMOST_RAFT_NULL_POINTER = 1,
    /// A string argument was not valid UTF-8.
    ALMOST_RAFT_INVALID_UTF8 = 2,
    /// An id was empty, longer than ALMOST_RAFT_MAX_ID_LEN bytes, or the node's own.
    ALMOST_RAFT_INVALID_ID = 3,
    /// A config value was invalid (the message names the key).
    ALMOST_RAFT_INVALID_CONFIG = 4,
    /// The bytes given to almost_raft_node_receive are not a valid message.
    ALMOST_RAFT_MALFORMED_MESSAGE = 5,
    /// The message belongs to another cluster.
    ALMOST_RAFT_WRONG_CLUSTER = 6,
    /// The message is addressed to another node.
    ALMOST_RAFT_WRONG_RECIPIENT = 7,
    /// The id is not a peer of this node.
    ALMOST_RAFT_UNKNOWN_PEER = 8,
    /// The cluster already has max_nodes nodes.
    ALMOST_RAFT_TOO_MANY_NODES = 9,
    /// Only the leader can do this.
    ALMOST_RAFT_NOT_LEADER = 10,
    /// There is no peer to hand leadership to.
    ALMOST_RAFT_NO_PEERS = 11,
    /// The state file could not be read or written, or is corrupt.
    ALMOST_RAFT_STORAGE = 12,
    /// The node was closed, or stopped (removed from its cluster, or failed to save).
    ALMOST_RAFT_CLOSED = 13,
    /// The caller's buffer is too small.
    ALMOST_RAFT_BUFFER_TOO_SMALL = 14,
    /// The runtime could not be configured (it already runs).
    ALMOST_RAFT_RUNTIME = 15,
    /// An internal error (a bug in almost-raft): the call did nothing, or the node stopped.
    ALMOST_RAFT_PANIC = 16,
    /// A message was not signed under this node's keyring (unsigned, forged, tampered with,
    /// or signed with a key this node lacks); the node goes on.
    ALMOST_RAFT_UNAUTHENTICATED = 17,
    /// A host has no group of that id.
    ALMOST_RAFT_UNKNOWN_GROUP = 18,
    /// A host has a group of that id already.
    ALMOST_RAFT_GROUP_EXISTS = 19,
}

use almost_raft_result::*;

/// A failed call: its code and what to tell the caller.
pub(crate) struct Failure(almost_raft_result, String);

impl Failure {
    pub(crate) fn new(code: almost_raft_result, message: impl Into<String>) -> Self {
        Failure(code, message.into())
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure(code_of(&e), e.to_string())
    }
}

/// The result code of an error's kind.
pub(crate) fn code_of(e: &Error) -> almost_raft_result {
    match e.kind() {
        ErrorKind::InvalidConfig => ALMOST_RAFT_INVALID_CONFIG,
        ErrorKind::InvalidId => ALMOST_RAFT_INVALID_ID,
        ErrorKind::MalformedMessage => ALMOST_RAFT_MALFORMED_MESSAGE,
        ErrorKind::WrongCluster => ALMOST_RAFT_WRONG_CLUSTER,
        ErrorKind::WrongRecipient => ALMOST_RAFT_WRONG_RECIPIENT,
        ErrorKind::UnknownPeer => ALMOST_RAFT_UNKNOWN_PEER,
        ErrorKind::TooManyNodes => ALMOST_RAFT_TOO_MANY_NODES,
        ErrorKind::NotLeader => ALMOST_RAFT_NOT_LEADER,
        ErrorKind::NoPeers => ALMOST_RAFT_NO_PEERS,
        ErrorKind::Storage => ALMOST_RAFT_STORAGE,
        ErrorKind::Closed => ALMOST_RAFT_CLOSED,
        ErrorKind::Runtime => ALMOST_RAFT_RUNTIME,
        ErrorKind::Internal => ALMOST_RAFT_PANIC,
        ErrorKind::Unauthenticated => ALMOST_RAFT_UNAUTHENTICATED,
        ErrorKind::UnknownGroup => ALMOST_RAFT_UNKNOWN_GROUP,
        ErrorKind::GroupExists => ALMOST_RAFT_GROUP_EXISTS,
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs an entry point: records the error of a failure and turns a panic into a code.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), Failure>) -> almost_raft_result {
    let (code, message) = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return ALMOST_RAFT_OK,
        Ok(Err(Failure(code, message))) => (code, message),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned());
            (
                ALMOST_RAFT_PANIC,
                format!(
                    "internal error in almost-raft: {}",
                    what.unwrap_or_default()
                ),
            )
        }
    };
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
    code
}

/// A static NUL-terminated description of a result code. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_result_str(code: almost_raft_result) -> *const c_char {
    let text: &'static str = match code {
        ALMOST_RAFT_OK => "ok\0",
        ALMOST_RAFT_NULL_POINTER => "a pointer argument was NULL\0",
        ALMOST_RAFT_INVALID_UTF8 => "a string argument was not valid UTF-8\0",
        ALMOST_RAFT_INVALID_ID => "invalid node id\0",
        ALMOST_RAFT_INVALID_CONFIG => "invalid config\0",
        ALMOST_RAFT_MALFORMED_MESSAGE => "malformed message\0",
        ALMOST_RAFT_WRONG_CLUSTER => "message from another cluster\0",
        ALMOST_RAFT_WRONG_RECIPIENT => "message for another node\0",
        ALMOST_RAFT_UNKNOWN_PEER => "unknown peer\0",
        ALMOST_RAFT_TOO_MANY_NODES => "too many nodes\0",
        ALMOST_RAFT_NOT_LEADER => "not the leader\0",
        ALMOST_RAFT_NO_PEERS => "no peers\0",
        ALMOST_RAFT_STORAGE => "state storage failed\0",
        ALMOST_RAFT_CLOSED => "the node is closed\0",
        ALMOST_RAFT_BUFFER_TOO_SMALL => "buffer too small\0",
        ALMOST_RAFT_RUNTIME => "runtime error\0",
        ALMOST_RAFT_PANIC => "internal error\0",
        ALMOST_RAFT_UNAUTHENTICATED => "message not authenticated\0",
        ALMOST_RAFT_UNKNOWN_GROUP => "unknown group\0",
        ALMOST_RAFT_GROUP_EXISTS => "group exists already\0",
    };
    text.as_ptr().cast()
}

/// Copies the message of the last failed call on this thread into `buf` (at most `len - 1`
/// bytes and a NUL; nothing when `buf` is NULL or `len` is 0) and returns the message's full
/// length in bytes, without the NUL: call again with a larger buffer if it is `>= len`.
/// Returns 0 when no call failed on this thread. Thread-safe (per thread).
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_last_error_message(buf: *mut c_char, len: usize) -> usize {
    catch_unwind(|| {
        LAST_ERROR.with(|last| {
            let last = last.borrow();
            if !buf.is_null() && len > 0 {
                let n = last.len().min(len - 1);
                // SAFETY: the caller promises `buf` holds `len` bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(last.as_ptr(), buf.cast::<u8>(), n);
                    *buf.add(n) = 0;
                }
            }
            last.len()
        })
    })
    .unwrap_or(0)
}
