//! The config handle: the node's id, its peers and one setter per config key of the README.
//! A config may be used by one thread at a time; it can start any number of nodes.

use std::ffi::c_char;
use std::path::PathBuf;
use std::time::Duration;

use almost_raft::{Config, Error, NodeBuilder, validate_id};

use crate::args::{bytes_arg, non_null_mut, str_arg};
use crate::result::{Failure, almost_raft_result, guard};

/// Everything needed to start a node. Create with almost_raft_config_new, free with
/// almost_raft_config_free. Values are checked together when a node starts.
pub struct almost_raft_config {
    id: String,
    peers: Vec<String>,
    config: Config,
    state_path: Option<PathBuf>,
    keys: Vec<Vec<u8>>,
    key_file: Option<PathBuf>,
    listen: Option<String>,
    addresses: Vec<(String, String)>,
}

impl almost_raft_config {
    /// Whether the node runs on the built-in UDP transport (and needs no `send`).
    pub(crate) fn uses_udp(&self) -> bool {
        self.listen.is_some()
    }

    pub(crate) fn builder(&self) -> NodeBuilder {
        let builder = NodeBuilder::new(self.id.as_str())
            .peers(self.peers.iter().cloned())
            .config(self.config.clone())
            .keys(&self.keys);
        let builder = match &self.listen {
            Some(listen) => self
                .addresses
                .iter()
                .fold(builder.listen(listen), |b, (id, addr)| b.peer_at(id, addr)),
            None => builder,
        };
        let builder = match &self.key_file {
            Some(path) => builder.key_file(path),
            None => builder,
        };
        match &self.state_path {
            Some(path) => builder.state_path(path),
            None => builder,
        }
    }
}

impl almost_raft_config {
    /// The same settings for a host of many groups (peers are named by each group).
    pub(crate) fn host_builder(&self) -> Result<almost_raft::host::HostBuilder, Error> {
        let mut b =
            almost_raft::host::HostBuilder::new(self.id.as_str()).config(self.config.clone());
        if let Some(listen) = &self.listen {
            b = b.udp(
                listen,
                self.addresses.iter().map(|(i, a)| (i.as_str(), a.as_str())),
            );
        }
        if let Some(path) = &self.state_path {
            b = b.state_file(path);
        }
        if let Some(path) = &self.key_file {
            b = b.keyring(almost_raft::Keyring::from_file(path).map_err(Error::Unauthenticated)?);
        } else if !self.keys.is_empty() {
            b = b.keyring(almost_raft::Keyring::new(&self.keys).map_err(Error::Unauthenticated)?);
        }
        Ok(b)
    }
}

fn id_arg<'a>(id: *const c_char, len: usize, what: &str) -> Result<&'a str, Failure> {
    let id = str_arg(id, len, what)?;
    validate_id(id).map_err(Error::from)?;
    Ok(id)
}

/// Creates a config for the node `id` with the defaults of the README: election timeout
/// 1000 ms, heartbeat 100 ms, message timeout 100 ms, min_nodes 3, no max_nodes, pre-vote and
/// check-quorum on, no state file, cluster "". On success `*out` is a new config.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_new(
    id: *const c_char,
    id_len: usize,
    out: *mut *mut almost_raft_config,
) -> almost_raft_result {
    guard(|| {
        let id = id_arg(id, id_len, "id")?;
        let out = non_null_mut(out, "out")?;
        let config = almost_raft_config {
            id: id.to_owned(),
            peers: Vec::new(),
            config: Config::default(),
            state_path: None,
            keys: Vec::new(),
            key_file: None,
            listen: None,
            addresses: Vec::new(),
        };
        *out = Box::into_raw(Box::new(config));
        Ok(())
    })
}

/// Frees a config; NULL is ignored. Nodes started from it are not affected.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_free(config: *mut almost_raft_config) {
    if !config.is_null() {
        // SAFETY: `config` came from almost_raft_config_new and is freed once.
        let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(config) }));
    }
}

/// Adds a peer (a voter); adding one twice has no effect.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_add_peer(
    config: *mut almost_raft_config,
    id: *const c_char,
    id_len: usize,
) -> almost_raft_result {
    guard(|| {
        let config = non_null_mut(config, "config")?;
        let id = id_arg(id, id_len, "peer id")?;
        if !config.peers.iter().any(|p| p == id) {
            config.peers.push(id.to_owned());
        }
        Ok(())
    })
}

fn set(
    config: *mut almost_raft_config,
    f: impl FnOnce(&mut almost_raft_config) -> Result<(), Failure>,
) -> almost_raft_result {
    guard(|| f(non_null_mut(config, "config")?))
}

/// The cluster name (0 to ALMOST_RAFT_MAX_ID_LEN bytes); messages of other clusters are refused.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_set_cluster(
    config: *mut almost_raft_config,
    name: *const c_char,
    name_len: usize,
) -> almost_raft_result {
    set(config, |c| {
        c.config.cluster = str_arg(name, name_len, "cluster")?.to_owned();
        Ok(())
    })
}

/// T, in milliseconds: elections start after a time drawn from [T, 2T) without a leader.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_set_election_timeout_ms(
    config: *mut almost_raft_config,
    ms: u64,
) -> almost_raft_result {
    set(config, |c| {
        c.config.election_timeout = Duration::from_millis(ms);
        Ok(())
    })
}

/// How often a leader sends heartbeats, in milliseconds; at most half the election timeout.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_set_heartbeat_interval_ms(
    config: *mut almost_raft_config,
    ms: u64,
) -> almost_raft_result {
    set(config, |c| {
        c.config.heartbeat_interval = Duration::from_millis(ms);
        Ok(())
    })
}

/// The longest one send callback may hold a peer's queue, in milliseconds.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_set_message_timeout_ms(
    config: *mut almost_raft_config,
    ms: u64,
) -> almost_raft_result {
    set(config, |c| {
        c.config.message_timeout = Duration::from_millis(ms);
        Ok(())
    })
}

/// Cluster size, counting this node, below which no election starts (default 3).
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_set_min_nodes(
    config: *mut almost_raft_config,
    nodes: usize,
) -> almost_raft_result {
    set(config, |c| {
        c.config.min_nodes = nodes;
        Ok(())
    })
}

/// Cluster size, counting this node, above which peers are refused; 0 means no limit.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_set_max_nodes(
    config: *mut almost_raft_config,
    nodes: usize,
) -> almost_raft_result {
    set(config, |c| {
        c.config.max_nodes = (nodes > 0).then_some(nodes);
        Ok(())
    })
}

/// Pre-vote (default on): a node asks before it bumps its term, so rejoining nodes do not disrupt.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_set_pre_vote(
    config: *mut almost_raft_config,
    on: bool,
) -> almost_raft_result {
    set(config, |c| {
        c.config.pre_vote = on;
        Ok(())
    })
}

/// Check-quorum (default on): a leader that hears no majority for an election timeout steps down.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_set_check_quorum(
    config: *mut almost_raft_config,
    on: bool,
) -> almost_raft_result {
    set(config, |c| {
        c.config.check_quorum = on;
        Ok(())
    })
}

/// The most any node's clock may drift from real time, in parts per million (default 50000,
/// 5%; at most 500000). The leader lease is shortened by it.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_set_drift_bound_ppm(
    config: *mut almost_raft_config,
    ppm: u32,
) -> almost_raft_result {
    set(config, |c| {
        c.config.drift_bound_ppm = ppm;
        Ok(())
    })
}

/// How long before the lease's bound `lease_changed` says the lease is lost, in ms: the time
/// the application needs to stop acting as the only leader (default: a quarter of the lease,
/// at most 50 ms). It must be less than the lease.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_set_lease_margin_ms(
    config: *mut almost_raft_config,
    ms: u64,
) -> almost_raft_result {
    set(config, |c| {
        c.config.lease_margin = Some(Duration::from_millis(ms));
        Ok(())
    })
}

/// A file that keeps the term and vote across restarts (its directory must exist). Without
/// one they live in memory, and a restarted node could vote twice in one term.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_set_state_path(
    config: *mut almost_raft_config,
    path: *const c_char,
    path_len: usize,
) -> almost_raft_result {
    set(config, |c| {
        let path = str_arg(path, path_len, "state path")?;
        c.state_path = (!path.is_empty()).then(|| PathBuf::from(path));
        Ok(())
    })
}

/// Adds a key of the cluster's keyring (16 to 64 bytes; the first key added signs, every key
/// verifies): the node then sends only signed messages and refuses unsigned or forged ones
/// with ALMOST_RAFT_UNAUTHENTICATED (docs/wire.md, version 2). The key is copied. Keys are
/// checked when the node starts (ALMOST_RAFT_INVALID_CONFIG names `keys`).
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_add_key(
    config: *mut almost_raft_config,
    key: *const u8,
    key_len: usize,
) -> almost_raft_result {
    set(config, |c| {
        c.keys.push(bytes_arg(key, key_len, "key")?.to_vec());
        Ok(())
    })
}

/// Reads the keyring from a key file when the node starts: hex keys, one per line, the first
/// signing; a file that every user may read is refused (ALMOST_RAFT_INVALID_CONFIG names
/// `key_file`). Use either this or almost_raft_config_add_key.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_set_key_file(
    config: *mut almost_raft_config,
    path: *const c_char,
    path_len: usize,
) -> almost_raft_result {
    set(config, |c| {
        let path = str_arg(path, path_len, "key file")?;
        c.key_file = (!path.is_empty()).then(|| PathBuf::from(path));
        Ok(())
    })
}

/// Runs the node on the built-in UDP transport: it listens on `address` ("host:port", e.g.
/// "0.0.0.0:7001") and reaches each peer at the address given with
/// almost_raft_config_add_peer_at. The application then never calls almost_raft_node_receive
/// and `callbacks.send` may be NULL. Failing to listen fails almost_raft_node_new
/// (ALMOST_RAFT_INVALID_CONFIG names `listen`).
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_set_listen(
    config: *mut almost_raft_config,
    address: *const c_char,
    address_len: usize,
) -> almost_raft_result {
    set(config, |c| {
        let address = str_arg(address, address_len, "listen address")?;
        c.listen = (!address.is_empty()).then(|| address.to_owned());
        Ok(())
    })
}

/// Adds a peer with its address ("host:port") for the built-in UDP transport. A hostname is
/// looked up again every 30 s and after a failed send, so peers found through DNS may move.
#[unsafe(no_mangle)]
pub extern "C" fn almost_raft_config_add_peer_at(
    config: *mut almost_raft_config,
    id: *const c_char,
    id_len: usize,
    address: *const c_char,
    address_len: usize,
) -> almost_raft_result {
    guard(|| {
        let config = non_null_mut(config, "config")?;
        let id = id_arg(id, id_len, "peer id")?.to_owned();
        let address = str_arg(address, address_len, "peer address")?.to_owned();
        config.addresses.retain(|(known, _)| *known != id);
        config.addresses.push((id, address));
        Ok(())
    })
}
