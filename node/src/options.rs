//! The options object of `new Node(options)`, read and checked key by key.

use std::time::Duration;

use almost_raft::NodeBuilder;
use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::errors::{throw_config, throw_type};
use crate::raw::{self, JsRef, Value};

pub(crate) const OPTION_KEYS: &[&str] = &[
    "id",
    "send",
    "peers",
    "onLeaderChange",
    "onLeaseChange",
    "onError",
    "driftBoundPpm",
    "leaseMarginMs",
    "electionTimeoutMs",
    "heartbeatIntervalMs",
    "messageTimeoutMs",
    "minNodes",
    "maxNodes",
    "preVote",
    "checkQuorum",
    "statePath",
    "cluster",
    "keys",
    "keyFile",
    "listen",
];

/// Options of `new Node(options)`. Only `id` and `send` are required; the defaults are those
/// of every almost-raft package.
#[napi(object, object_to_js = false)]
pub struct NodeOptions {
    /// This node's id: 1 to 255 bytes of UTF-8, unique in the cluster.
    pub id: String,
    /// Sends `message` to the peer `to` over your network. Called on the JS thread; must not
    /// throw (a throw is reported, see `onError`), and should not block. Required unless
    /// `listen` is given.
    #[napi(ts_type = "(to: string, message: Buffer) => void")]
    pub send: Option<()>,
    /// The other voters of the cluster: their ids, or with `listen` an object mapping each id
    /// to its address (`{ b: '10.0.0.2:7001' }`). Default: none (add them later with
    /// `addPeer`).
    #[napi(ts_type = "string[] | Record<string, string>")]
    pub peers: Option<()>,
    /// Runs the node on the built-in UDP transport, listening on this address
    /// (`'0.0.0.0:7001'`): no `send`, no `receive`; the election then never waits for the
    /// event loop. Hostnames of peers are looked up again every 30 s and after a failed send.
    pub listen: Option<String>,
    /// Called with every change of the leader this node knows, in order, starting with the
    /// current state.
    #[napi(ts_type = "(change: LeaderChange) => void")]
    pub on_leader_change: Option<()>,
    /// Called with what a callback (`send`, `onLeaderChange`) threw, and with the error that
    /// stopped the node when it stops by itself (code `ERR_STORAGE`: its state file cannot be
    /// written; `ERR_INTERNAL`). Without it, a throw is emitted as a process warning
    /// (`AlmostRaftWarning`, code `ERR_CALLBACK_THREW`), and so is a stop (`ERR_NODE_STOPPED`,
    /// with the error as its `cause`). A throw leaves the node running.
    #[napi(ts_type = "(error: unknown) => void")]
    pub on_error: Option<()>,
    /// Called on the JS thread when this node gains (`held: true`) or loses the leader lease
    /// of `term`. While it holds one, no other node can be elected; the loss comes
    /// `leaseMarginMs` before that ends, also when no message arrives, and before the leader
    /// change that goes with it. Stop acting as the only leader at once.
    #[napi(ts_type = "(lease: { held: boolean; term: number }) => void")]
    pub on_lease_change: Option<()>,
    /// The most any node's clock may drift, in parts per million. Default 50000 (5%).
    pub drift_bound_ppm: Option<u32>,
    /// How long before its bound the lease is told lost, in ms. Default: a quarter of the
    /// lease, at most 50.
    pub lease_margin_ms: Option<u32>,
    /// T, in ms: a follower that hears no leader for a time drawn from [T, 2T) campaigns.
    /// Default 1000.
    pub election_timeout_ms: Option<u32>,
    /// How often a leader sends heartbeats, in ms; at most half the election timeout.
    /// Default 100.
    pub heartbeat_interval_ms: Option<u32>,
    /// The longest one send may hold a peer's queue, in ms. Default 100.
    pub message_timeout_ms: Option<u32>,
    /// Cluster size, counting this node, below which no election starts. Default 3.
    pub min_nodes: Option<u32>,
    /// Cluster size, counting this node, above which peers are refused. Default: no limit
    /// (`null` or absent).
    #[napi(ts_type = "number | null")]
    pub max_nodes: Option<u32>,
    /// Ask for pre-votes before bumping the term, so rejoining nodes do not disrupt.
    /// Default true.
    pub pre_vote: Option<bool>,
    /// A leader that hears no majority for an election timeout steps down. Default true.
    pub check_quorum: Option<bool>,
    /// A file that keeps the term and vote across restarts (its directory must exist).
    /// Without one they live in memory, and a restarted node could vote twice in one term.
    #[napi(ts_type = "string | null")]
    pub state_path: Option<String>,
    /// Name shared by the nodes of one cluster; messages of other clusters are refused.
    /// Default "".
    pub cluster: Option<String>,
    /// The cluster's keys (16 to 64 bytes each; the first signs, every one verifies): the node
    /// then sends only signed messages, and `receive` refuses anything unsigned, forged or
    /// tampered with (`ERR_UNAUTHENTICATED`, counted in `status().unauthenticated`).
    #[napi(ts_type = "Array<Buffer | Uint8Array>")]
    pub keys: Option<()>,
    /// A key file instead of `keys`: hex keys, one per line, the first signing; refused when
    /// every user may read it.
    pub key_file: Option<String>,
}

/// Reads a property; `undefined` (absent) is `None`. `null` counts as absent where `nullable`.
pub(crate) fn prop(
    env: sys::napi_env,
    obj: Value,
    key: &str,
    nullable: bool,
) -> Result<Option<Value>> {
    let v = raw::get(env, obj, key)?;
    match raw::type_of(env, v)? {
        sys::ValueType::napi_undefined => Ok(None),
        sys::ValueType::napi_null if nullable => Ok(None),
        _ => Ok(Some(v)),
    }
}

pub(crate) fn string_arg(env: sys::napi_env, v: Value, what: &str) -> Result<String> {
    if raw::type_of(env, v)? != sys::ValueType::napi_string {
        return Err(throw_type(env, what, "of type string", v));
    }
    raw::get_string(env, v)
}

pub(crate) fn function_arg(env: sys::napi_env, v: Value, what: &str) -> Result<JsRef> {
    if raw::type_of(env, v)? != sys::ValueType::napi_function {
        return Err(throw_type(env, what, "of type function", v));
    }
    JsRef::new(env, v)
}

pub(crate) fn bool_arg(env: sys::napi_env, v: Value, what: &str) -> Result<bool> {
    if raw::type_of(env, v)? != sys::ValueType::napi_boolean {
        return Err(throw_type(env, what, "of type boolean", v));
    }
    raw::get_bool(env, v)
}

/// A whole number of milliseconds (or nodes) from 0 to 2^32 - 1.
pub(crate) fn count_arg(env: sys::napi_env, v: Value, key: &str) -> Result<u64> {
    if raw::type_of(env, v)? != sys::ValueType::napi_number {
        return Err(throw_type(
            env,
            &format!("options.{key}"),
            "of type number",
            v,
        ));
    }
    let n = raw::get_number(env, v)?;
    if !(n.is_finite() && n.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&n)) {
        return Err(throw_config(
            env,
            key,
            &format!("must be a whole number, at most 4294967295, got {n}"),
        ));
    }
    Ok(n as u64)
}

pub(crate) fn peers_arg(env: sys::napi_env, v: Value) -> Result<Vec<String>> {
    if !raw::is_array(env, v)? {
        return Err(throw_type(env, "options.peers", "an array of strings", v));
    }
    let len = raw::array_len(env, v)?;
    let mut peers = Vec::with_capacity(len as usize);
    for i in 0..len {
        let item = raw::element(env, v, i)?;
        peers.push(string_arg(env, item, &format!("options.peers[{i}]"))?);
    }
    Ok(peers)
}

/// An array of keys (Buffers or Uint8Arrays); `what` names it in a TypeError.
pub(crate) fn keys_arg(env: sys::napi_env, v: Value, what: &str) -> Result<Vec<Vec<u8>>> {
    if !raw::is_array(env, v)? {
        return Err(throw_type(env, what, "an array of Buffers", v));
    }
    let len = raw::array_len(env, v)?;
    let mut keys = Vec::with_capacity(len as usize);
    for i in 0..len {
        let item = raw::element(env, v, i)?;
        match raw::bytes(env, item)? {
            Some(key) => keys.push(key.to_vec()),
            None => {
                let what = format!("{what}[{i}]");
                return Err(throw_type(env, &what, "a Buffer or Uint8Array", item));
            }
        }
    }
    Ok(keys)
}

/// With `listen`: `{ id: 'host:port', ... }`.
fn addresses_arg(env: sys::napi_env, v: Value) -> Result<Vec<(String, String)>> {
    if raw::type_of(env, v)? != sys::ValueType::napi_object || raw::is_array(env, v)? {
        return Err(throw_type(
            env,
            "options.peers",
            "an object mapping each peer's id to its address (with listen)",
            v,
        ));
    }
    raw::keys(env, v)?
        .into_iter()
        .map(|id| {
            let addr = raw::get(env, v, &id)?;
            let addr = string_arg(env, addr, &format!("options.peers.{id}"))?;
            Ok((id, addr))
        })
        .collect()
}

pub(crate) struct Parsed {
    pub(crate) builder: NodeBuilder,
    pub(crate) id: String,
    pub(crate) send: Option<JsRef>,
    pub(crate) on_leader_change: Option<JsRef>,
    pub(crate) on_lease_change: Option<JsRef>,
    pub(crate) on_error: Option<JsRef>,
}

pub(crate) fn parse_options(env: sys::napi_env, options: Value) -> Result<Parsed> {
    let t = raw::type_of(env, options)?;
    if t != sys::ValueType::napi_object || raw::is_array(env, options)? {
        return Err(throw_type(
            env,
            "The \"options\" argument",
            "an object",
            options,
        ));
    }
    for key in raw::keys(env, options)? {
        if !OPTION_KEYS.contains(&key.as_str()) {
            return Err(throw_config(
                env,
                &key,
                &format!(
                    "unknown option (the options are {})",
                    OPTION_KEYS.join(", ")
                ),
            ));
        }
    }
    let id_value = raw::get(env, options, "id")?;
    let id = string_arg(env, id_value, "options.id")?;
    let listen = match prop(env, options, "listen", false)? {
        Some(v) => Some(string_arg(env, v, "options.listen")?),
        None => None,
    };
    let send = match (prop(env, options, "send", false)?, &listen) {
        (Some(_), Some(_)) => {
            return Err(throw_config(
                env,
                "send",
                "give send or listen, not both: with listen the node has its own UDP transport",
            ));
        }
        (Some(v), None) => Some(function_arg(env, v, "options.send")?),
        (None, Some(_)) => None,
        (None, None) => {
            let missing = raw::get(env, options, "send")?;
            return Err(throw_type(env, "options.send", "of type function", missing));
        }
    };
    let on_leader_change = match prop(env, options, "onLeaderChange", true)? {
        Some(v) => Some(function_arg(env, v, "options.onLeaderChange")?),
        None => None,
    };
    let on_lease_change = match prop(env, options, "onLeaseChange", true)? {
        Some(v) => Some(function_arg(env, v, "options.onLeaseChange")?),
        None => None,
    };
    let on_error = match prop(env, options, "onError", true)? {
        Some(v) => Some(function_arg(env, v, "options.onError")?),
        None => None,
    };
    let mut builder = NodeBuilder::new(id.as_str());
    match (prop(env, options, "peers", false)?, &listen) {
        (Some(v), Some(listen)) => {
            builder = addresses_arg(env, v)?
                .into_iter()
                .fold(builder.listen(listen), |b, (id, addr)| b.peer_at(id, addr));
        }
        (Some(v), None) => builder = builder.peers(peers_arg(env, v)?),
        (None, Some(listen)) => builder = builder.listen(listen),
        (None, None) => {}
    }
    let ms = |key: &str| -> Result<Option<Duration>> {
        match prop(env, options, key, false)? {
            Some(v) => Ok(Some(Duration::from_millis(count_arg(env, v, key)?))),
            None => Ok(None),
        }
    };
    if let Some(d) = ms("electionTimeoutMs")? {
        builder = builder.election_timeout(d);
    }
    if let Some(d) = ms("heartbeatIntervalMs")? {
        builder = builder.heartbeat_interval(d);
    }
    if let Some(d) = ms("messageTimeoutMs")? {
        builder = builder.message_timeout(d);
    }
    if let Some(v) = prop(env, options, "minNodes", false)? {
        builder = builder.min_nodes(count_arg(env, v, "minNodes")? as usize);
    }
    if let Some(v) = prop(env, options, "maxNodes", true)? {
        builder = builder.max_nodes(Some(count_arg(env, v, "maxNodes")? as usize));
    }
    if let Some(v) = prop(env, options, "preVote", false)? {
        builder = builder.pre_vote(bool_arg(env, v, "options.preVote")?);
    }
    if let Some(v) = prop(env, options, "checkQuorum", false)? {
        builder = builder.check_quorum(bool_arg(env, v, "options.checkQuorum")?);
    }
    if let Some(v) = prop(env, options, "driftBoundPpm", false)? {
        builder = builder.drift_bound_ppm(count_arg(env, v, "driftBoundPpm")? as u32);
    }
    if let Some(d) = ms("leaseMarginMs")? {
        builder = builder.lease_margin(d);
    }
    if let Some(v) = prop(env, options, "cluster", false)? {
        builder = builder.cluster(string_arg(env, v, "options.cluster")?);
    }
    if let Some(v) = prop(env, options, "statePath", true)? {
        let path = string_arg(env, v, "options.statePath")?;
        if path.is_empty() {
            return Err(throw_config(
                env,
                "statePath",
                "must not be empty (omit it to keep the state in memory)",
            ));
        }
        builder = builder.state_path(path);
    }
    if let Some(v) = prop(env, options, "keys", false)? {
        builder = builder.keys(keys_arg(env, v, "options.keys")?);
    }
    if let Some(v) = prop(env, options, "keyFile", false)? {
        builder = builder.key_file(string_arg(env, v, "options.keyFile")?);
    }
    Ok(Parsed {
        builder,
        id,
        send,
        on_leader_change,
        on_lease_change,
        on_error,
    })
}
