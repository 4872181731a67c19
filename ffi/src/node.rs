//! A running node: the C face of `almost_raft::embed::EmbeddedNode`.

use std::ffi::{c_char, c_void};

use almost_raft::embed::{Callbacks, EmbeddedNode};
use almost_raft::{LeaderChange, Role};

use crate::args::{bytes_arg, non_null, non_null_mut, null, str_arg};
use crate::config::almost_raft_config;
use crate::result::almost_raft_result::*;
use crate::result::{Failure, almost_raft_result, code_of, guard};
use crate::{ALMOST_RAFT_ID_BUF_LEN, ALMOST_RAFT_MAX_ID_LEN};

/// A running node. Start with almost_raft_node_new, stop with almost_raft_node_close or
/// almost_raft_node_free.
pub struct almost_raft_node {
    inner: EmbeddedNode,
}

/// Sends `len` bytes to the peer `to` (`to_len` bytes of UTF-8). Must not block: hand the
/// bytes to a socket or a queue. May call any almost_raft_node_* function.
pub type almost_raft_send_fn = Option<
    extern "C" fn(
        userdata: *mut c_void,
        to: *const c_char,
        to_len: usize,
        bytes: *const u8,
        len: usize,
    ),
>;

/// The leader this node knows changed: `leader` (`leader_len` bytes) when `has_leader`, and
/// the term, which never goes down: pass it as a fencing token to what the leader guards.
pub type almost_raft_leader_fn = Option<
    extern "C" fn(
        userdata: *mut c_void,
        has_leader: bool,
        leader: *const c_char,
        leader_len: usize,
        term: u64,
    ),
>;

/// This node gained (`held`) or lost the leader lease of `term`. While it holds one, no other
/// node can be elected. A loss comes when the lease ends (lease_margin_ms before its bound,
/// also when no message arrives), when the node steps down or hands over, and before the node
/// stops; it comes before the leader change that goes with it. Stop acting as the only leader
/// at once.
pub type almost_raft_lease_fn = Option<extern "C" fn(userdata: *mut c_void, held: bool, term: u64)>;

/// Frees what `userdata` points to: called exactly once, after the last callback.
pub type almost_raft_free_fn = Option<extern "C" fn(userdata: *mut c_void)>;

/// How the node calls back. `send` is required unless the node runs on the built-in UDP
/// transport (almost_raft_config_set_listen); `leader_changed`, `free_userdata` and
/// `lease_changed` may be NULL. Callbacks run on a library thread, one at a time, never
/// concurrently for one node. Zero the struct before filling it (`= {0}`), so that fields
/// added later start as NULL.
#[repr(C)]
pub struct almost_raft_callbacks {
    pub userdata: *mut c_void,
    pub send: almost_raft_send_fn,
    pub leader_changed: almost_raft_leader_fn,
    pub free_userdata: almost_raft_free_fn,
    pub lease_changed: almost_raft_lease_fn,
}

struct CCallbacks(almost_raft_callbacks);

// SAFETY: the header tells C callers that callbacks run on library threads.
unsafe impl Send for CCallbacks {}

impl Callbacks for CCallbacks {
    fn send(&mut self, to: &str, message: &[u8]) {
        if let Some(send) = self.0.send {
            send(
                self.0.userdata,
                to.as_ptr().cast(),
                to.len(),
                message.as_ptr(),
                message.len(),
            );
        }
    }

    fn leader_changed(&mut self, change: &LeaderChange) {
        if let Some(leader_changed) = self.0.leader_changed {
            let leader = change.leader.as_deref().unwrap_or("");
            leader_changed(
                self.0.userdata,
                change.leader.is_some(),
                leader.as_ptr().cast(),
                leader.len(),
                change.term,
            );
        }
    }

    fn lease_changed(&mut self, held: bool, term: u64) {
        if let Some(lease_changed) = self.0.lease_changed {
            lease_changed(self.0.userdata, held, term);
        }
    }
}

impl Drop for CCallbacks {
    fn drop(&mut self) {
        if let Some(free) = self.0.free_userdata {
            free(self.0.userdata);
        }
    }
}

/// Starts a node with `config` (which the caller keeps and may free at once). The node owns
/// `callbacks.userdata` from here on, even when this call fails: free_userdata is called
/// exactly once in every case. On success `*out` is the running node. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_node_new(
    config: *const almost_raft_config,
    callbacks: almost_raft_callbacks,
    out: *mut *mut almost_raft_node,
) -> almost_raft_result {
    let callbacks = CCallbacks(callbacks);
    guard(move || {
        let config = non_null(config, "config")?;
        let out = non_null_mut(out, "out")?;
        if callbacks.0.send.is_none() && !config.uses_udp() {
            return Err(null("callbacks.send"));
        }
        let inner = EmbeddedNode::start(config.builder(), callbacks)?;
        *out = Box::into_raw(Box::new(almost_raft_node { inner }));
        Ok(())
    })
}

fn with_node(
    node: *const almost_raft_node,
    f: impl FnOnce(&EmbeddedNode) -> Result<(), Failure>,
) -> almost_raft_result {
    guard(|| f(&non_null(node, "node")?.inner))
}

/// Hands the node `len` bytes its network received. Malformed bytes, messages of another
/// cluster or for another node, and messages from unknown peers are refused with a code; the
/// node goes on. Thread-safe; may be called from inside a callback.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_node_receive(
    node: *const almost_raft_node,
    bytes: *const u8,
    len: usize,
) -> almost_raft_result {
    with_node(node, |n| Ok(n.receive(bytes_arg(bytes, len, "bytes")?)?))
}

/// Adds a voter; adding a known peer again does nothing. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_node_add_peer(
    node: *const almost_raft_node,
    id: *const c_char,
    id_len: usize,
) -> almost_raft_result {
    with_node(node, |n| Ok(n.add_peer(str_arg(id, id_len, "peer id")?)?))
}

/// Rotates the cluster's keys on this running node, which must have been started with keys:
/// `keys[i]` holds `key_lens[i]` bytes (16 to 64), for `count` keys; the first signs, every
/// one verifies. The keys are copied. Rotate one node at a time: the new key second on every
/// node, then first, then alone. ALMOST_RAFT_INVALID_CONFIG names `keys`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_node_set_keys(
    node: *const almost_raft_node,
    keys: *const *const u8,
    key_lens: *const usize,
    count: usize,
) -> almost_raft_result {
    with_node(node, |n| {
        if count > 0 && (keys.is_null() || key_lens.is_null()) {
            return Err(null(if keys.is_null() { "keys" } else { "key_lens" }));
        }
        let mut copied = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: the caller promises `count` entries in both arrays; checked non-NULL.
            let (key, len) = unsafe { (*keys.add(i), *key_lens.add(i)) };
            copied.push(bytes_arg(key, len, "keys[i]")?.to_vec());
        }
        Ok(n.set_keys(&copied)?)
    })
}

/// Removes a voter (an unknown one: no effect). Removing the node's own id stops it: it then
/// answers ALMOST_RAFT_CLOSED. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_node_remove_peer(
    node: *const almost_raft_node,
    id: *const c_char,
    id_len: usize,
) -> almost_raft_result {
    with_node(
        node,
        |n| Ok(n.remove_peer(str_arg(id, id_len, "peer id")?)?),
    )
}

/// Reports that peer `id`'s process is gone, on evidence from its host (a connection its
/// kernel reset or refused, a supervisor's exit notice); never on mere silence. A follower of
/// that peer campaigns at once instead of waiting for its election timeout. False evidence
/// at a minority changes no term and never breaks the lease. Needs pre-vote (without it:
/// no effect). ALMOST_RAFT_UNKNOWN_PEER for an unknown id. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_node_peer_unreachable(
    node: *const almost_raft_node,
    id: *const c_char,
    id_len: usize,
) -> almost_raft_result {
    with_node(node, |n| {
        Ok(n.peer_unreachable(str_arg(id, id_len, "peer id")?)?)
    })
}

/// Asks the leader to hand leadership to `to` (`to_len` bytes), or, when `to` is NULL, to its
/// most responsive peer. ALMOST_RAFT_NOT_LEADER on any other node. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_node_transfer_leadership(
    node: *const almost_raft_node,
    to: *const c_char,
    to_len: usize,
) -> almost_raft_result {
    with_node(node, |n| {
        let to = if to.is_null() {
            None
        } else {
            Some(str_arg(to, to_len, "to")?)
        };
        n.transfer_leadership(to)?;
        Ok(())
    })
}

/// A node's part in the election.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum almost_raft_role {
    ALMOST_RAFT_FOLLOWER = 0,
    ALMOST_RAFT_PRE_CANDIDATE = 1,
    ALMOST_RAFT_CANDIDATE = 2,
    ALMOST_RAFT_LEADER = 3,
}

/// What a node knows; it agrees with the last leader callback.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct almost_raft_status {
    pub role: almost_raft_role,
    pub term: u64,
    pub has_leader: bool,
    /// Length of the leader's id, copied into the caller's buffer.
    pub leader_len: usize,
    pub peer_count: usize,
    /// How many more nodes must be known before this node may campaign (min_nodes).
    pub waiting_for_nodes: usize,
    /// The node stopped by itself (it removed itself from its cluster, its state file could
    /// not be written, an internal error): it has no leader and refuses every other call with
    /// ALMOST_RAFT_CLOSED. Close and free it as usual.
    pub stopped: bool,
    /// Why it stopped: ALMOST_RAFT_OK when it removed itself (or runs),
    /// ALMOST_RAFT_STORAGE when its state file could not be written, ALMOST_RAFT_PANIC on an
    /// internal error.
    pub failure: almost_raft_result,
    /// This node's id, NUL-terminated.
    pub id: [c_char; ALMOST_RAFT_ID_BUF_LEN],
    /// The candidate this node voted for in `term`, NUL-terminated; "" when none.
    pub voted_for: [c_char; ALMOST_RAFT_ID_BUF_LEN],
    /// How long ago the leader was last heard from, in ms (0 on the leader itself); -1 when no
    /// leader is known.
    pub since_leader_heard_ms: i64,
    /// Messages refused because they were not signed under the node's keyring.
    pub unauthenticated: u64,
    /// How much of the leader lease is left, in ms; -1 when this node holds none.
    pub lease_remaining_ms: i64,
}

/// `id` as a NUL-terminated C string in a fixed buffer (ids are at most MAX_ID_LEN bytes).
fn id_buf(id: &str) -> [c_char; ALMOST_RAFT_ID_BUF_LEN] {
    let mut buf = [0 as c_char; ALMOST_RAFT_MAX_ID_LEN + 1];
    for (to, from) in buf.iter_mut().zip(id.bytes().take(ALMOST_RAFT_MAX_ID_LEN)) {
        *to = from as c_char;
    }
    buf
}

/// Fills `*out` and, when `leader_buf` is not NULL, copies the leader's id into it,
/// NUL-terminated ("" when no leader is known). `leader_buf` must then hold `leader_len + 1`
/// bytes (ALMOST_RAFT_MAX_ID_LEN + 1 always suffices), or the call fails with
/// ALMOST_RAFT_BUFFER_TOO_SMALL. A node that stopped by itself still answers, with `stopped`
/// and `failure` set; a closed node answers ALMOST_RAFT_CLOSED. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_node_status(
    node: *const almost_raft_node,
    out: *mut almost_raft_status,
    leader_buf: *mut c_char,
    leader_buf_len: usize,
) -> almost_raft_result {
    with_node(node, |n| {
        let out = non_null_mut(out, "out")?;
        let status = n.status()?;
        let leader = status.leader.as_deref().unwrap_or("");
        if !leader_buf.is_null() && leader_buf_len <= leader.len() {
            return Err(Failure::new(
                ALMOST_RAFT_BUFFER_TOO_SMALL,
                format!(
                    "the leader's id needs {} bytes with its NUL; leader_buf has {leader_buf_len}",
                    leader.len() + 1
                ),
            ));
        }
        if !leader_buf.is_null() {
            // SAFETY: the caller promises `leader_buf_len` writable bytes; checked above.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    leader.as_ptr(),
                    leader_buf.cast::<u8>(),
                    leader.len(),
                );
                *leader_buf.add(leader.len()) = 0;
            }
        }
        *out = almost_raft_status {
            role: match status.role {
                Role::Follower => almost_raft_role::ALMOST_RAFT_FOLLOWER,
                Role::PreCandidate => almost_raft_role::ALMOST_RAFT_PRE_CANDIDATE,
                Role::Candidate => almost_raft_role::ALMOST_RAFT_CANDIDATE,
                Role::Leader => almost_raft_role::ALMOST_RAFT_LEADER,
            },
            term: status.term,
            has_leader: status.leader.is_some(),
            leader_len: leader.len(),
            peer_count: status.peers.len(),
            waiting_for_nodes: status.waiting_for_nodes,
            stopped: status.stopped,
            failure: n.failure().map_or(ALMOST_RAFT_OK, |e| code_of(&e)),
            id: id_buf(&status.id),
            voted_for: id_buf(status.voted_for.as_deref().unwrap_or("")),
            since_leader_heard_ms: status
                .since_leader_heard
                .map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            unauthenticated: status.unauthenticated,
            lease_remaining_ms: status
                .lease_remaining
                .map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        };
        Ok(())
    })
}

/// Stops the node; a leader hands leadership over first. Returns when no callback runs any
/// more and free_userdata was called, except from inside one of this node's own callbacks,
/// where it returns at once and the rest follows when that callback returns. Afterwards
/// every call on the node returns ALMOST_RAFT_CLOSED; it must still be freed. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_node_close(node: *const almost_raft_node) -> almost_raft_result {
    with_node(node, |n| {
        n.close();
        Ok(())
    })
}

/// Closes the node (see almost_raft_node_close) and frees it; NULL is ignored. The pointer
/// must not be used afterwards, by any thread. May be called from inside the node's callback.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_node_free(node: *mut almost_raft_node) {
    if !node.is_null() {
        // SAFETY: `node` came from almost_raft_node_new and is freed once.
        let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(node) }));
    }
}
