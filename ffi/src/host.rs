//! A running host of many groups: the C face of `almost_raft::embed::host::EmbeddedHost`.

use std::ffi::{c_char, c_void};

use almost_raft::embed::host::{EmbeddedHost, HostCallbacks};
use almost_raft::{Event, Role};

use crate::args::{bytes_arg, non_null, non_null_mut, null, str_arg};
use crate::config::almost_raft_config;
use crate::node::{almost_raft_free_fn, almost_raft_role, almost_raft_send_fn};
use crate::result::{Failure, almost_raft_result, guard};

/// Many election groups over one transport and one state file. Start with
/// almost_raft_host_new, stop with almost_raft_host_close or almost_raft_host_free.
pub struct almost_raft_host {
    inner: EmbeddedHost,
}

/// What happened to a group.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum almost_raft_group_event {
    /// Its leader changed: `has_leader`, `leader` and the term (its fencing token).
    ALMOST_RAFT_GROUP_LEADER_CHANGED = 0,
    /// This host gained the group's leader lease of `term`.
    ALMOST_RAFT_GROUP_LEASE_GAINED = 1,
    /// This host lost the group's lease of `term`: stop acting as its only leader at once.
    ALMOST_RAFT_GROUP_LEASE_LOST = 2,
    /// The group stopped here (removed, or the host closed or failed).
    ALMOST_RAFT_GROUP_STOPPED = 3,
}

/// One event of group `group` (`group_len` bytes). For LEADER_CHANGED, `leader`
/// (`leader_len` bytes) when `has_leader`; `term` for every kind but STOPPED. Events of all
/// groups come in one ordered stream.
pub type almost_raft_group_event_fn = Option<
    extern "C" fn(
        userdata: *mut c_void,
        group: *const c_char,
        group_len: usize,
        kind: almost_raft_group_event,
        has_leader: bool,
        leader: *const c_char,
        leader_len: usize,
        term: u64,
    ),
>;

/// How a host calls back: `send` (a datagram for another host; required unless the host
/// runs on the built-in UDP transport), `group_event`, `free_userdata` (both may be NULL).
/// Callbacks run on a library thread, one at a time. Zero the struct before filling it.
#[repr(C)]
pub struct almost_raft_host_callbacks {
    pub userdata: *mut c_void,
    pub send: almost_raft_send_fn,
    pub group_event: almost_raft_group_event_fn,
    pub free_userdata: almost_raft_free_fn,
}

struct CHostCallbacks(almost_raft_host_callbacks);

// SAFETY: the header tells C callers that callbacks run on library threads.
unsafe impl Send for CHostCallbacks {}

impl HostCallbacks for CHostCallbacks {
    fn send(&mut self, to: &str, datagram: &[u8]) {
        if let Some(send) = self.0.send {
            send(
                self.0.userdata,
                to.as_ptr().cast(),
                to.len(),
                datagram.as_ptr(),
                datagram.len(),
            );
        }
    }

    fn event(&mut self, group: &str, event: &Event) {
        let Some(f) = self.0.group_event else { return };
        use almost_raft_group_event::*;
        let (kind, leader, term) = match event {
            Event::LeaderChanged { leader, term } => {
                (ALMOST_RAFT_GROUP_LEADER_CHANGED, leader.as_deref(), *term)
            }
            Event::LeaseChanged { held: true, term } => {
                (ALMOST_RAFT_GROUP_LEASE_GAINED, None, *term)
            }
            Event::LeaseChanged { held: false, term } => {
                (ALMOST_RAFT_GROUP_LEASE_LOST, None, *term)
            }
            Event::Stopped => (ALMOST_RAFT_GROUP_STOPPED, None, 0),
            Event::RoleChanged { .. } => return,
        };
        let l = leader.unwrap_or("");
        f(
            self.0.userdata,
            group.as_ptr().cast(),
            group.len(),
            kind,
            leader.is_some(),
            l.as_ptr().cast(),
            l.len(),
            term,
        );
    }
}

impl Drop for CHostCallbacks {
    fn drop(&mut self) {
        if let Some(free) = self.0.free_userdata {
            free(self.0.userdata);
        }
    }
}

/// Starts a host with `config`: its id, cluster, timeouts, keys, state path (one file for
/// every group) and, with almost_raft_config_set_listen, the built-in UDP transport (peers by
/// almost_raft_config_add_peer_at). Peers added with almost_raft_config_add_peer are not
/// used: each group names its voters. The host owns `callbacks.userdata` from here on, even
/// when this call fails. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_host_new(
    config: *const almost_raft_config,
    callbacks: almost_raft_host_callbacks,
    out: *mut *mut almost_raft_host,
) -> almost_raft_result {
    let callbacks = CHostCallbacks(callbacks);
    guard(move || {
        let config = non_null(config, "config")?;
        let out = non_null_mut(out, "out")?;
        if callbacks.0.send.is_none() && !config.uses_udp() {
            return Err(null("callbacks.send"));
        }
        let inner = EmbeddedHost::start(config.host_builder()?, callbacks, config.uses_udp())?;
        *out = Box::into_raw(Box::new(almost_raft_host { inner }));
        Ok(())
    })
}

fn with_host(
    host: *const almost_raft_host,
    f: impl FnOnce(&EmbeddedHost) -> Result<(), Failure>,
) -> almost_raft_result {
    guard(|| f(&non_null(host, "host")?.inner))
}

/// Hosts group `group` here. `voters` is an array of `voter_count` host ids, each
/// `voter_lens[i]` bytes, this host among them; `preferred` (NULL for none) the host that
/// should lead it whenever it answers. Its saved term and vote are resumed.
/// ALMOST_RAFT_GROUP_EXISTS, ALMOST_RAFT_INVALID_ID, ALMOST_RAFT_UNKNOWN_PEER (voters lack
/// this host, or preferred is not a voter). Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_host_add_group(
    host: *const almost_raft_host,
    group: *const c_char,
    group_len: usize,
    voters: *const *const c_char,
    voter_lens: *const usize,
    voter_count: usize,
    preferred: *const c_char,
    preferred_len: usize,
) -> almost_raft_result {
    with_host(host, |h| {
        let group = str_arg(group, group_len, "group")?;
        let ptrs = bytes_arg(
            voters.cast(),
            voter_count * size_of::<*const c_char>(),
            "voters",
        )?;
        let lens = bytes_arg(
            voter_lens.cast(),
            voter_count * size_of::<usize>(),
            "voter_lens",
        )?;
        let mut ids = Vec::with_capacity(voter_count);
        for i in 0..voter_count {
            // SAFETY: checked non-NULL above for voter_count elements; read unaligned-safe.
            let (p, n) = unsafe {
                (
                    ptrs.as_ptr()
                        .cast::<*const c_char>()
                        .add(i)
                        .read_unaligned(),
                    lens.as_ptr().cast::<usize>().add(i).read_unaligned(),
                )
            };
            ids.push(str_arg(p, n, "voters[i]")?);
        }
        let preferred = if preferred.is_null() {
            None
        } else {
            Some(str_arg(preferred, preferred_len, "preferred")?)
        };
        h.add_group(group, &ids, preferred)?;
        Ok(())
    })
}

/// Stops hosting `group`; its last events (no leader, stopped) follow. ALMOST_RAFT_UNKNOWN_GROUP.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_host_remove_group(
    host: *const almost_raft_host,
    group: *const c_char,
    group_len: usize,
) -> almost_raft_result {
    with_host(host, |h| {
        Ok(h.remove_group(str_arg(group, group_len, "group")?)?)
    })
}

/// Hands the host a datagram another host sent. Malformed, unsigned or replayed datagrams,
/// and datagrams of another cluster, are refused with a code; the host goes on. Thread-safe;
/// may be called from inside a callback.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_host_receive(
    host: *const almost_raft_host,
    bytes: *const u8,
    len: usize,
) -> almost_raft_result {
    with_host(host, |h| Ok(h.receive(bytes_arg(bytes, len, "bytes")?)?))
}

/// Hands `group`'s leadership to `to` (NULL: its most recently heard voter).
/// ALMOST_RAFT_NOT_LEADER when this host does not lead it.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_host_transfer_leadership(
    host: *const almost_raft_host,
    group: *const c_char,
    group_len: usize,
    to: *const c_char,
    to_len: usize,
) -> almost_raft_result {
    with_host(host, |h| {
        let group = str_arg(group, group_len, "group")?;
        let to = if to.is_null() {
            None
        } else {
            Some(str_arg(to, to_len, "to")?)
        };
        h.transfer_leadership(group, to)?;
        Ok(())
    })
}

/// What a host knows of one group.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct almost_raft_group_status {
    pub role: almost_raft_role,
    pub term: u64,
    pub has_leader: bool,
    /// The leader's id, NUL-terminated ("" when none).
    pub leader: [c_char; crate::ALMOST_RAFT_ID_BUF_LEN],
    /// How much of the group's lease this host has left, in ms; -1 when it holds none.
    pub lease_remaining_ms: i64,
}

/// Fills `*out` with what this host knows of `group`. ALMOST_RAFT_UNKNOWN_GROUP.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_host_group_status(
    host: *const almost_raft_host,
    group: *const c_char,
    group_len: usize,
    out: *mut almost_raft_group_status,
) -> almost_raft_result {
    with_host(host, |h| {
        let out = non_null_mut(out, "out")?;
        let s = h.status(str_arg(group, group_len, "group")?)?;
        let mut leader = [0 as c_char; crate::ALMOST_RAFT_ID_BUF_LEN];
        for (to, from) in leader
            .iter_mut()
            .zip(s.leader.as_deref().unwrap_or("").bytes())
        {
            *to = from as c_char;
        }
        *out = almost_raft_group_status {
            role: match s.role {
                Role::Follower => almost_raft_role::ALMOST_RAFT_FOLLOWER,
                Role::PreCandidate => almost_raft_role::ALMOST_RAFT_PRE_CANDIDATE,
                Role::Candidate => almost_raft_role::ALMOST_RAFT_CANDIDATE,
                Role::Leader => almost_raft_role::ALMOST_RAFT_LEADER,
            },
            term: s.term,
            has_leader: s.leader.is_some(),
            leader,
            lease_remaining_ms: s
                .lease_remaining
                .map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        };
        Ok(())
    })
}

/// The number of groups hosted and led here, and of those riding on the pairs' heartbeats.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct almost_raft_host_counts {
    pub groups: usize,
    pub leading: usize,
    pub quiet: usize,
}

/// Fills `*out` with the host's counts.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_host_stats(
    host: *const almost_raft_host,
    out: *mut almost_raft_host_counts,
) -> almost_raft_result {
    with_host(host, |h| {
        let out = non_null_mut(out, "out")?;
        let s = h.stats();
        *out = almost_raft_host_counts {
            groups: s.groups,
            leading: s.leading,
            quiet: s.quiet,
        };
        Ok(())
    })
}

/// Hands every group this host leads over, stops, and returns once free_userdata was
/// called (at once from inside one of its callbacks). Afterwards calls return
/// ALMOST_RAFT_CLOSED; the host must still be freed. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_host_close(host: *const almost_raft_host) -> almost_raft_result {
    with_host(host, |h| {
        h.close();
        Ok(())
    })
}

/// Closes the host (see almost_raft_host_close) and frees it; NULL is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_host_free(host: *mut almost_raft_host) {
    if !host.is_null() {
        // SAFETY: `host` came from almost_raft_host_new and is freed once.
        let host = unsafe { Box::from_raw(host) };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            host.inner.close();
            drop(host);
        }));
    }
}
