//! The Node.js face of almost-raft: a napi-rs wrapper over
//! `almost_raft::embed::EmbeddedNode`. It only converts arguments, errors and callbacks; every
//! election rule lives in the core.
//!
//! Threading (README, "Threads"):
//! - the node runs on the core's process-wide runtime; its callbacks go into a bounded queue
//!   (`almost_raft::embed::CallbackQueue`: at most 1024 sends, the oldest dropped, and 64
//!   leader changes, the latest always kept), and a threadsafe function, called in NonBlocking mode only when the
//!   JS thread is not already due to drain it, wakes the JS thread; so the election never
//!   waits for the event loop, and a blocked event loop cannot grow memory without limit;
//! - that one queue carries sends, leader changes, why the node stopped and finally "closed",
//!   so JS sees them in the order the node produced them, and `await close()` resolves after
//!   the last callback ran;
//! - a node is closed when the JS environment that created it is torn down (a worker thread
//!   that ends), by an environment cleanup hook;
//! - running nodes live in a process-wide registry keyed by a handle id, so a node whose JS
//!   object became unreachable keeps running until `close()`;
//! - `close()` runs the blocking `EmbeddedNode::close` on a thread of its own, never on the JS
//!   thread.

mod ratelimit;
mod raw;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use almost_raft::embed::{
    CallbackQueue, EmbeddedNode, Item, MAX_QUEUED_CHANGES, MAX_QUEUED_SENDS, QueuedCallbacks,
};
use almost_raft::{LeaderChange as CoreChange, NodeBuilder, Role};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi::{Env, sys};
use napi_derive::napi;

use ratelimit::RateLimit;
use raw::{Deferred, JsRef, Value};

// ------------------------------------------------------------------------------------------
// The registry of running nodes.

static REGISTRY: LazyLock<Mutex<HashMap<u64, Arc<EmbeddedNode>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

fn registry() -> MutexGuard<'static, HashMap<u64, Arc<EmbeddedNode>>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

// ------------------------------------------------------------------------------------------
// Events from the node's runtime thread to the JS thread.

enum Event {
    Send {
        to: String,
        message: Vec<u8>,
    },
    Leader(CoreChange),
    /// The node stopped: why, when it stopped by itself.
    Stopped(Option<almost_raft::Error>),
    /// The node stopped and will call back no more: the last event of every node.
    Closed,
}

/// Wakes the JS thread to drain a node's callback queue.
type WakeJs = ThreadsafeFunction<(), Unknown<'static>, (), Status, false>;

// ------------------------------------------------------------------------------------------
// What lives on the JS thread: the user's functions, iterators and close() promises.

struct IterState {
    queue: VecDeque<CoreChange>,
    waiting: VecDeque<Deferred>,
    done: bool,
    /// Why the node stopped by itself: the iterator rejects with it once, after its changes.
    failure: Option<JsRef>,
}

struct JsState {
    id: String,
    send: Option<JsRef>,
    on_leader_change: Option<JsRef>,
    on_error: Option<JsRef>,
    /// The last leader change delivered to JS: where a new iterator starts.
    last: Option<CoreChange>,
    iterators: Vec<Rc<RefCell<IterState>>>,
    /// The `Closed` event was delivered: no callback will run any more.
    closed: bool,
    /// Why the node stopped by itself (an Error with `code`), once it has.
    failure: Option<JsRef>,
    close_waiters: Vec<Deferred>,
    queue: Arc<CallbackQueue>,
    /// When the queue's drop counts were last looked at (at most once a second).
    dropped_checked: Option<Instant>,
    /// Process warnings about throwing callbacks, per callback.
    warn_send: RateLimit,
    warn_leader: RateLimit,
}

/// Warnings of one kind emitted in full per second; the rest are counted.
const WARNING_BURST: u32 = 3;
const WARNING_PERIOD: Duration = Duration::from_secs(1);

/// Runs on the JS thread when woken: every queued callback, in order, then the warnings due.
fn drain(state: &Rc<RefCell<JsState>>, env: sys::napi_env) {
    let queue = state.borrow().queue.clone();
    let (items, closed) = queue.drain();
    for item in items {
        let event = match item {
            Item::Send { to, message } => Event::Send { to, message },
            Item::Leader(change) => Event::Leader(change),
            Item::Stopped(failure) => Event::Stopped(failure),
        };
        dispatch(state, env, event);
    }
    warn_due(state, env, closed);
    if closed && !state.borrow().closed {
        dispatch(state, env, Event::Closed);
    }
}

/// Emits, at most once a second (and at the end), what the bounded queue dropped and how many
/// callback warnings were suppressed.
fn warn_due(state: &Rc<RefCell<JsState>>, env: sys::napi_env, last: bool) {
    let now = Instant::now();
    let (dropped, suppressed, id) = {
        let mut st = state.borrow_mut();
        let due = last || st.dropped_checked.is_none_or(|t| now - t >= WARNING_PERIOD);
        let dropped = if due {
            st.dropped_checked = Some(now);
            st.queue.take_dropped()
        } else {
            (0, 0)
        };
        let flush = |limit: &mut RateLimit| {
            if last {
                limit.flush(now + WARNING_PERIOD)
            } else {
                limit.flush(now)
            }
        };
        let suppressed = [
            ("send", flush(&mut st.warn_send)),
            ("onLeaderChange", flush(&mut st.warn_leader)),
        ];
        (dropped, suppressed, st.id.clone())
    };
    if dropped != (0, 0) {
        let message = format!(
            "the JS thread fell behind almost-raft node {id:?}: dropped {} stale sends (at most {MAX_QUEUED_SENDS} wait) \
             and skipped {} leader changes (at most {MAX_QUEUED_CHANGES} wait; the latest is always delivered)",
            dropped.0, dropped.1
        );
        let _ = emit_warning(env, "ERR_EVENTS_DROPPED", &message, None);
    }
    for (callback, count) in suppressed {
        if count > 0 {
            let _ = emit_warning(
                env,
                "ERR_CALLBACK_THREW",
                &suppressed_message(callback, &id, count),
                None,
            );
        }
    }
    raw::clear_exception(env);
}

fn suppressed_message(callback: &str, id: &str, count: u64) -> String {
    format!(
        "the {callback} callback of almost-raft node {id:?} threw {count} more times (warnings suppressed)"
    )
}

fn change_value(env: sys::napi_env, change: &CoreChange) -> Result<Value> {
    let obj = raw::object(env)?;
    let leader = match &change.leader {
        Some(l) => raw::string(env, l)?,
        None => raw::null(env)?,
    };
    raw::set(env, obj, "leader", leader)?;
    raw::set(env, obj, "term", raw::number(env, change.term as f64)?)?;
    Ok(obj)
}

/// `{ value, done }` for an async iterator.
fn iter_result(env: sys::napi_env, change: Option<&CoreChange>) -> Result<Value> {
    let result = raw::object(env)?;
    match change {
        Some(change) => {
            raw::set(env, result, "value", change_value(env, change)?)?;
            raw::set(env, result, "done", raw::boolean(env, false)?)?;
        }
        None => {
            raw::set(env, result, "value", raw::undefined(env)?)?;
            raw::set(env, result, "done", raw::boolean(env, true)?)?;
        }
    }
    Ok(result)
}

impl IterState {
    fn deliver(&mut self, env: sys::napi_env, change: &CoreChange) {
        if self.done {
            return;
        }
        match self.waiting.pop_front() {
            Some(deferred) => {
                if let Ok(v) = iter_result(env, Some(change)) {
                    deferred.resolve(env, v);
                }
            }
            None => self.queue.push_back(change.clone()),
        }
    }

    /// Ends the iterator; what is queued is still yielded, unless `discard`. With a
    /// `failure`, the first `next()` after the queued changes rejects with it.
    fn finish(&mut self, env: sys::napi_env, discard: bool, failure: Option<JsRef>) {
        self.done = true;
        if discard {
            self.queue.clear();
        } else {
            self.failure = failure;
        }
        for deferred in std::mem::take(&mut self.waiting) {
            self.settle_end(env, deferred);
        }
    }

    /// Settles a `next()` that finds the queue empty and the iterator done.
    fn settle_end(&mut self, env: sys::napi_env, deferred: Deferred) {
        match self.failure.take().map(|f| f.value(env)) {
            Some(Ok(error)) => deferred.reject(env, error),
            _ => {
                if let Ok(v) = iter_result(env, None) {
                    deferred.resolve(env, v);
                }
            }
        }
    }
}

/// Runs on the JS thread for every event, in the order the node produced them. It never
/// returns an error and never leaves an exception pending: a throwing user callback is reported
/// (see `report`) and the node goes on.
fn dispatch(state: &Rc<RefCell<JsState>>, env: sys::napi_env, event: Event) {
    match event {
        Event::Send { to, message } => {
            let send = state.borrow().send.clone();
            if let Some(send) = send {
                let args =
                    (|| Ok::<_, Error>([raw::string(env, &to)?, raw::buffer(env, &message)?]))();
                if let Ok(args) = args
                    && let Err(thrown) = send.call(env, &args)
                {
                    report(state, env, "send", thrown);
                }
            }
        }
        Event::Leader(change) => {
            let callback = {
                let mut st = state.borrow_mut();
                st.last = Some(change.clone());
                st.iterators.retain(|it| !it.borrow().done);
                for it in &st.iterators {
                    it.borrow_mut().deliver(env, &change);
                }
                st.on_leader_change.clone()
            };
            if let Some(callback) = callback
                && let Ok(arg) = change_value(env, &change)
                && let Err(thrown) = callback.call(env, &[arg])
            {
                report(state, env, "onLeaderChange", thrown);
            }
        }
        Event::Stopped(None) => {}
        Event::Stopped(Some(failure)) => {
            let Ok(error) = core_error(env, &failure) else {
                return raw::clear_exception(env);
            };
            state.borrow_mut().failure = JsRef::new(env, error).ok();
            let on_error = state.borrow().on_error.clone();
            let unhandled = match on_error {
                Some(on_error) => on_error.call(env, &[error]).err(),
                None => Some(error),
            };
            if unhandled.is_some() {
                let id = state.borrow().id.clone();
                let message = format!("almost-raft node {id:?} stopped: {failure}");
                let _ = emit_warning(env, "ERR_NODE_STOPPED", &message, Some(error));
            }
        }
        Event::Closed => {
            let (waiters, iterators, failure) = {
                let mut st = state.borrow_mut();
                st.closed = true;
                // Nothing calls them any more: let the functions be collected.
                st.send = None;
                st.on_leader_change = None;
                (
                    std::mem::take(&mut st.close_waiters),
                    std::mem::take(&mut st.iterators),
                    st.failure.clone(),
                )
            };
            for it in iterators {
                it.borrow_mut().finish(env, false, failure.clone());
            }
            for waiter in waiters {
                if let Ok(v) = raw::undefined(env) {
                    waiter.resolve(env, v);
                }
            }
        }
    }
    raw::clear_exception(env);
}

/// A user callback threw `thrown`: hand it to `onError`, or else emit a process warning (at
/// most 3 a second per callback, then one that counts the rest).
fn report(state: &Rc<RefCell<JsState>>, env: sys::napi_env, callback: &str, thrown: Value) {
    let (on_error, id) = {
        let st = state.borrow();
        (st.on_error.clone(), st.id.clone())
    };
    let thrown = match on_error {
        Some(on_error) => match on_error.call(env, &[thrown]) {
            Ok(()) => return,
            Err(again) => again,
        },
        None => thrown,
    };
    let verdict = {
        let mut st = state.borrow_mut();
        let limit = if callback == "send" {
            &mut st.warn_send
        } else {
            &mut st.warn_leader
        };
        limit.check(Instant::now())
    };
    if verdict.suppressed > 0 {
        let message = suppressed_message(callback, &id, verdict.suppressed);
        let _ = emit_warning(env, "ERR_CALLBACK_THREW", &message, None);
    }
    if verdict.emit {
        let what = raw::describe_thrown(env, thrown);
        let message = format!(
            "the {callback} callback of almost-raft node {id:?} threw ({what}); the node goes on. \
             Pass onError to handle callback errors yourself."
        );
        let _ = emit_warning(env, "ERR_CALLBACK_THREW", &message, Some(thrown));
    }
    raw::clear_exception(env);
}

/// `process.emitWarning(w)` where `w` is an Error named `AlmostRaftWarning` with `code` and,
/// for a throwing callback, the thrown value as its `cause`.
fn emit_warning(env: sys::napi_env, code: &str, message: &str, cause: Option<Value>) -> Result<()> {
    let warning = raw::error(env, raw::ErrorClass::Error, code, message)?;
    raw::set(env, warning, "name", raw::string(env, "AlmostRaftWarning")?)?;
    if let Some(thrown) = cause {
        raw::set(env, warning, "cause", thrown)?;
    }
    let process = raw::get(env, raw::global(env)?, "process")?;
    let emit = raw::get(env, process, "emitWarning")?;
    raw::call_method(env, process, emit, &[warning])
        .map_err(|_| Error::from_status(Status::PendingException))?;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Errors.

const ERR_INVALID_ARG_TYPE: &str = "ERR_INVALID_ARG_TYPE";

/// Throws `err` into JS as an Error whose `code` is `ERR_` + its kind, and returns the marker
/// napi-rs needs to leave that exception alone.
fn throw_core(env: sys::napi_env, err: &almost_raft::Error) -> Error {
    let (code, message) = core_message(err);
    raw::throw(env, raw::ErrorClass::Error, &code, &message)
}

/// `err` as a JS Error with its `code`, not thrown.
fn core_error(env: sys::napi_env, err: &almost_raft::Error) -> Result<Value> {
    let (code, message) = core_message(err);
    raw::error(env, raw::ErrorClass::Error, &code, &message)
}

/// The `code` (`ERR_` + the error's kind) and message of a core error in JS.
fn core_message(err: &almost_raft::Error) -> (String, String) {
    let code = format!("ERR_{}", err.kind().name());
    // The core names config keys in snake case; JS users know them in camel case.
    let message = match err {
        almost_raft::Error::Config(c) => {
            format!(
                "invalid config: {}: {}",
                camel_case(c.field),
                camel_keys(&c.reason)
            )
        }
        almost_raft::Error::TooManyNodes { .. } => camel_keys(&err.to_string()),
        other => other.to_string(),
    };
    (code, message)
}

fn throw_config(env: sys::napi_env, key: &str, reason: &str) -> Error {
    raw::throw(
        env,
        raw::ErrorClass::Error,
        "ERR_INVALID_CONFIG",
        &format!("invalid config: {key}: {reason}"),
    )
}

fn throw_type(env: sys::napi_env, what: &str, expected: &str, got: Value) -> Error {
    let received = raw::describe(env, got);
    raw::throw(
        env,
        raw::ErrorClass::TypeError,
        ERR_INVALID_ARG_TYPE,
        &format!("{what} must be {expected}. Received {received}"),
    )
}

/// Rewrites every config key named in `text` in camel case.
fn camel_keys(text: &str) -> String {
    const KEYS: &[&str] = &[
        "election_timeout_ms",
        "heartbeat_interval_ms",
        "message_timeout_ms",
        "min_nodes",
        "max_nodes",
        "pre_vote",
        "check_quorum",
        "state_path",
        "worker_threads",
    ];
    KEYS.iter()
        .fold(text.to_owned(), |t, key| t.replace(key, &camel_case(key)))
}

/// `election_timeout_ms` -> `electionTimeoutMs`: the core names keys in snake case.
fn camel_case(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// Options.

const OPTION_KEYS: &[&str] = &[
    "id",
    "send",
    "peers",
    "onLeaderChange",
    "onError",
    "electionTimeoutMs",
    "heartbeatIntervalMs",
    "messageTimeoutMs",
    "minNodes",
    "maxNodes",
    "preVote",
    "checkQuorum",
    "statePath",
    "cluster",
];

/// Options of `new Node(options)`. Only `id` and `send` are required; the defaults are those
/// of every almost-raft package.
#[napi(object, object_to_js = false)]
pub struct NodeOptions {
    /// This node's id: 1 to 255 bytes of UTF-8, unique in the cluster.
    pub id: String,
    /// Sends `message` to the peer `to` over your network. Called on the JS thread; must not
    /// throw (a throw is reported, see `onError`), and should not block.
    #[napi(ts_type = "(to: string, message: Buffer) => void")]
    pub send: (),
    /// The other voters of the cluster (ids). Default: none (add them later with `addPeer`).
    pub peers: Option<Vec<String>>,
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
}

/// Reads a property; `undefined` (absent) is `None`. `null` counts as absent where `nullable`.
fn prop(env: sys::napi_env, obj: Value, key: &str, nullable: bool) -> Result<Option<Value>> {
    let v = raw::get(env, obj, key)?;
    match raw::type_of(env, v)? {
        sys::ValueType::napi_undefined => Ok(None),
        sys::ValueType::napi_null if nullable => Ok(None),
        _ => Ok(Some(v)),
    }
}

fn string_arg(env: sys::napi_env, v: Value, what: &str) -> Result<String> {
    if raw::type_of(env, v)? != sys::ValueType::napi_string {
        return Err(throw_type(env, what, "of type string", v));
    }
    raw::get_string(env, v)
}

fn function_arg(env: sys::napi_env, v: Value, what: &str) -> Result<JsRef> {
    if raw::type_of(env, v)? != sys::ValueType::napi_function {
        return Err(throw_type(env, what, "of type function", v));
    }
    JsRef::new(env, v)
}

fn bool_arg(env: sys::napi_env, v: Value, what: &str) -> Result<bool> {
    if raw::type_of(env, v)? != sys::ValueType::napi_boolean {
        return Err(throw_type(env, what, "of type boolean", v));
    }
    raw::get_bool(env, v)
}

/// A whole number of milliseconds (or nodes) from 0 to 2^32 - 1.
fn count_arg(env: sys::napi_env, v: Value, key: &str) -> Result<u64> {
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
            &format!("must be a whole number from 0 to 4294967295, got {n}"),
        ));
    }
    Ok(n as u64)
}

fn peers_arg(env: sys::napi_env, v: Value) -> Result<Vec<String>> {
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

struct Parsed {
    builder: NodeBuilder,
    id: String,
    send: JsRef,
    on_leader_change: Option<JsRef>,
    on_error: Option<JsRef>,
}

fn parse_options(env: sys::napi_env, options: Value) -> Result<Parsed> {
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
    let send_value = raw::get(env, options, "send")?;
    let send = function_arg(env, send_value, "options.send")?;
    let on_leader_change = match prop(env, options, "onLeaderChange", true)? {
        Some(v) => Some(function_arg(env, v, "options.onLeaderChange")?),
        None => None,
    };
    let on_error = match prop(env, options, "onError", true)? {
        Some(v) => Some(function_arg(env, v, "options.onError")?),
        None => None,
    };
    let mut builder = NodeBuilder::new(id.as_str());
    if let Some(v) = prop(env, options, "peers", false)? {
        builder = builder.peers(peers_arg(env, v)?);
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
    Ok(Parsed {
        builder,
        id,
        send,
        on_leader_change,
        on_error,
    })
}

// ------------------------------------------------------------------------------------------
// The public API.

/// A change of the leader a node knows: `leader` is `null` when it knows none. `term` never
/// goes down: pass it as a fencing token to whatever the leader guards.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct LeaderChange {
    pub leader: Option<String>,
    pub term: f64,
}

/// What a node knows; it agrees with the last leader change delivered to the node's callbacks.
#[napi(
    object,
    object_from_js = false,
    use_nullable = true,
    js_name = "Status"
)]
pub struct NodeStatus {
    pub id: String,
    /// The node's part in the election (the same names in every almost-raft package).
    #[napi(ts_type = "'follower' | 'pre_candidate' | 'candidate' | 'leader'")]
    pub role: String,
    pub term: f64,
    pub leader: Option<String>,
    pub voted_for: Option<String>,
    pub peers: Vec<String>,
    /// Milliseconds since the leader was last heard from (0 on the leader; null without one).
    pub since_leader_heard_ms: Option<f64>,
    /// How many more nodes must be known before this node may campaign (`minNodes`).
    pub waiting_for_nodes: u32,
    /// The node stopped (closed, or removed from its cluster).
    pub stopped: bool,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Follower => "follower",
        Role::PreCandidate => "pre_candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    }
}

/// A node taking part in leader election. It runs on a background thread from construction
/// until `close()`, even if this object becomes unreachable; its callbacks run on the JS
/// thread, one at a time, in order.
#[napi]
pub struct Node {
    handle: u64,
    id: String,
    js: Rc<RefCell<JsState>>,
    /// Closes the node if its JS environment is torn down first (a worker that ends).
    cleanup: std::cell::Cell<Option<napi::CleanupEnvHook<u64>>>,
}

/// Closes a node whose JS environment is going away; waits for it to stop (a leader hands
/// over first), which needs nothing of JS.
fn close_at_env_teardown(handle: u64) {
    let node = registry().remove(&handle);
    if let Some(node) = node {
        node.close();
    }
}

extern "C" fn noop(_env: sys::napi_env, _info: sys::napi_callback_info) -> sys::napi_value {
    std::ptr::null_mut()
}

#[napi]
impl Node {
    /// Starts a node. Throws a `TypeError` (code `ERR_INVALID_ARG_TYPE`) for an option of the
    /// wrong type and an `Error` with code `ERR_INVALID_CONFIG`, `ERR_INVALID_ID` or
    /// `ERR_STORAGE` for a wrong value or an unreadable state file.
    #[napi(constructor, ts_args_type = "options: NodeOptions")]
    pub fn new(env: Env, this: This<Unknown>, options: Unknown) -> Result<Self> {
        let env = env.raw();
        // Called without `new`, napi-rs would make the global object the node.
        let receiver = this.object.raw();
        if raw::type_of(env, receiver)? != sys::ValueType::napi_object
            || raw::strict_equals(env, receiver, raw::global(env)?)?
        {
            return Err(raw::throw(
                env,
                raw::ErrorClass::TypeError,
                "ERR_CONSTRUCT_CALL_REQUIRED",
                "Class constructor Node cannot be invoked without 'new'",
            ));
        }
        let parsed = parse_options(env, options.raw())?;
        let queue = Arc::new(CallbackQueue::default());
        let js = Rc::new(RefCell::new(JsState {
            id: parsed.id.clone(),
            send: Some(parsed.send),
            on_leader_change: parsed.on_leader_change,
            on_error: parsed.on_error,
            last: None,
            iterators: Vec::new(),
            closed: false,
            failure: None,
            close_waiters: Vec::new(),
            queue: queue.clone(),
            dropped_checked: None,
            warn_send: RateLimit::new(WARNING_BURST, WARNING_PERIOD),
            warn_leader: RateLimit::new(WARNING_BURST, WARNING_PERIOD),
        }));
        let napi_env = Env::from_raw(env);
        let target: Function<(), Unknown<'static>> =
            napi_env.create_function("almostRaftEvents", noop)?;
        let wake: WakeJs = {
            let js = js.clone();
            target
                .build_threadsafe_function::<()>()
                .callee_handled::<false>()
                .build_callback(move |ctx: ThreadsafeCallContext<()>| {
                    drain(&js, ctx.env.raw());
                    Ok(())
                })?
        };
        // At most one call is pending per node; it fails only while the JS environment
        // shuts down.
        let wake = move || {
            let _ = wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
        };
        let callbacks = QueuedCallbacks::new(queue, Some(Box::new(wake)));
        let node =
            EmbeddedNode::start(parsed.builder, callbacks).map_err(|e| throw_core(env, &e))?;
        let handle = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
        registry().insert(handle, Arc::new(node));
        let cleanup = match napi_env.add_env_cleanup_hook(handle, close_at_env_teardown) {
            Ok(hook) => Some(hook),
            Err(e) => {
                close_at_env_teardown(handle);
                return Err(e);
            }
        };
        Ok(Node {
            handle,
            id: parsed.id,
            js,
            cleanup: std::cell::Cell::new(cleanup),
        })
    }

    fn node(&self, env: sys::napi_env) -> Result<Arc<EmbeddedNode>> {
        registry()
            .get(&self.handle)
            .cloned()
            .ok_or_else(|| throw_core(env, &almost_raft::Error::Closed))
    }

    fn run<T>(
        &self,
        env: sys::napi_env,
        f: impl FnOnce(&EmbeddedNode) -> std::result::Result<T, almost_raft::Error>,
    ) -> Result<T> {
        let node = self.node(env)?;
        f(&node).map_err(|e| throw_core(env, &e))
    }

    /// This node's id.
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.id.clone()
    }

    /// True once `close()` was called (or the node stopped and delivered its last event).
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.js.borrow().closed || !registry().contains_key(&self.handle)
    }

    /// Why the node stopped by itself (an Error with `code` `ERR_STORAGE` when its state file
    /// could not be written, `ERR_INTERNAL`), once that reached JS; `null` otherwise. The same
    /// error went to `onError` (or a process warning) and ends every `leaderChanges()`.
    #[napi(getter, ts_return_type = "Error | null")]
    pub fn failure(&self, env: Env) -> Result<Unknown<'_>> {
        let env = env.raw();
        let value = match &self.js.borrow().failure {
            Some(failure) => failure.value(env)?,
            None => raw::null(env)?,
        };
        Ok(unsafe { Unknown::from_raw_unchecked(env, value) })
    }

    /// Hands the node a message your network received from a peer. Refused with
    /// `ERR_MALFORMED_MESSAGE`, `ERR_WRONG_CLUSTER`, `ERR_WRONG_RECIPIENT` or
    /// `ERR_UNKNOWN_PEER`; the node goes on either way.
    #[napi(ts_args_type = "data: Buffer | Uint8Array")]
    pub fn receive(&self, env: Env, data: Unknown) -> Result<()> {
        let env = env.raw();
        let bytes = match raw::bytes(env, data.raw())? {
            Some(bytes) => bytes,
            None => {
                return Err(throw_type(
                    env,
                    "The \"data\" argument",
                    "a Buffer or Uint8Array",
                    data.raw(),
                ));
            }
        };
        // The bytes are read before any other JS runs: the slice cannot change under us.
        self.run(env, |n| n.receive(bytes))
    }

    /// Adds a voter; adding a known peer again does nothing.
    #[napi(ts_args_type = "id: string")]
    pub fn add_peer(&self, env: Env, id: Unknown) -> Result<()> {
        let env = env.raw();
        let id = string_arg(env, id.raw(), "The \"id\" argument")?;
        self.run(env, |n| n.add_peer(&id))
    }

    /// Removes a voter (an unknown one: no effect). Removing this node's own id stops it.
    #[napi(ts_args_type = "id: string")]
    pub fn remove_peer(&self, env: Env, id: Unknown) -> Result<()> {
        let env = env.raw();
        let id = string_arg(env, id.raw(), "The \"id\" argument")?;
        self.run(env, |n| n.remove_peer(&id))
    }

    /// Hands leadership to `to`, or (without it) to the most responsive peer; returns the
    /// chosen peer. Only the leader can (`ERR_NOT_LEADER`); `ERR_NO_PEERS` without a peer.
    #[napi(ts_args_type = "to?: string | null")]
    pub fn transfer_leadership(&self, env: Env, to: Option<Unknown>) -> Result<String> {
        let env = env.raw();
        let to = match to {
            None => None,
            Some(v) => match raw::type_of(env, v.raw())? {
                sys::ValueType::napi_undefined | sys::ValueType::napi_null => None,
                _ => Some(string_arg(env, v.raw(), "The \"to\" argument")?),
            },
        };
        self.run(env, |n| n.transfer_leadership(to.as_deref()))
    }

    /// What the node knows now.
    #[napi]
    pub fn status(&self, env: Env) -> Result<NodeStatus> {
        let s = self.run(env.raw(), |n| n.status())?;
        Ok(NodeStatus {
            id: s.id,
            role: role_name(s.role).to_owned(),
            term: s.term as f64,
            leader: s.leader,
            voted_for: s.voted_for,
            peers: s.peers,
            since_leader_heard_ms: s.since_leader_heard.map(|d| d.as_secs_f64() * 1000.0),
            waiting_for_nodes: s.waiting_for_nodes.min(u32::MAX as usize) as u32,
            stopped: s.stopped,
        })
    }

    /// True while this node is the leader.
    #[napi(getter)]
    pub fn is_leader(&self, env: Env) -> Result<bool> {
        Ok(self.run(env.raw(), |n| n.status())?.role == Role::Leader)
    }

    /// The leader this node knows, or null.
    #[napi(getter, ts_return_type = "string | null")]
    pub fn leader(&self, env: Env) -> Result<Option<String>> {
        Ok(self.run(env.raw(), |n| n.status())?.leader)
    }

    /// The current term: it never goes down (a fencing token).
    #[napi(getter)]
    pub fn term(&self, env: Env) -> Result<f64> {
        Ok(self.run(env.raw(), |n| n.status())?.term as f64)
    }

    /// Every change of leader, in order, nothing lost, starting with the current state (the
    /// last change delivered to this node's callbacks). It ends when the node is closed or
    /// removed from its cluster; when the node stops by itself (its state file cannot be
    /// written), its last change names no leader and the iterator then rejects with the
    /// error that stopped it (see `failure`). Leaving a `for await` loop early ends it.
    #[napi(ts_return_type = "AsyncIterableIterator<LeaderChange>")]
    pub fn leader_changes(&self, env: Env) -> Result<Unknown<'_>> {
        let env = env.raw();
        self.node(env)?;
        let it = Rc::new(RefCell::new(IterState {
            queue: VecDeque::new(),
            waiting: VecDeque::new(),
            done: false,
            failure: None,
        }));
        {
            let mut st = self.js.borrow_mut();
            if let Some(last) = &st.last {
                it.borrow_mut().queue.push_back(last.clone());
            }
            if st.closed {
                let mut it = it.borrow_mut();
                it.done = true;
                it.failure = st.failure.clone();
            } else {
                st.iterators.push(it.clone());
            }
        }
        let value = async_iterator(env, it)?;
        Ok(unsafe { Unknown::from_raw_unchecked(env, value) })
    }

    /// Stops the node; a leader hands leadership over first. The promise resolves once no
    /// callback of this node will run any more. Calling it again (or from inside a callback)
    /// is fine. After it, every other method throws `ERR_CLOSED`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self, env: Env) -> Result<Unknown<'_>> {
        let env = env.raw();
        let (deferred, promise) = Deferred::new(env)?;
        {
            let mut st = self.js.borrow_mut();
            if st.closed {
                deferred.resolve(env, raw::undefined(env)?);
            } else {
                st.close_waiters.push(deferred);
            }
        }
        if let Some(hook) = self.cleanup.take() {
            let _ = Env::from_raw(env).remove_env_cleanup_hook(hook);
        }
        let node = registry().remove(&self.handle);
        if let Some(node) = node {
            // EmbeddedNode::close blocks until the node's callbacks are done: never on the JS
            // thread. Only queued JS events wait for this thread, never the other way round.
            let closer = node.clone();
            let spawned = std::thread::Builder::new()
                .name("almost-raft-close".into())
                .spawn(move || closer.close());
            if spawned.is_err() {
                node.close();
            }
        }
        Ok(unsafe { Unknown::from_raw_unchecked(env, promise) })
    }
}

/// `{ next, return, [Symbol.asyncIterator] }` over one iterator's state.
fn async_iterator(env: sys::napi_env, it: Rc<RefCell<IterState>>) -> Result<Value> {
    let e = Env::from_raw(env);
    let obj = raw::object(env)?;
    let next = {
        let it = it.clone();
        e.create_function_from_closure::<(), Unknown<'static>, _>("next", move |ctx| {
            let env = ctx.env.raw();
            let (deferred, promise) = Deferred::new(env)?;
            let mut st = it.borrow_mut();
            if let Some(change) = st.queue.pop_front() {
                deferred.resolve(env, iter_result(env, Some(&change))?);
            } else if st.done {
                st.settle_end(env, deferred);
            } else {
                st.waiting.push_back(deferred);
            }
            Ok(unsafe { Unknown::from_raw_unchecked(env, promise) })
        })?
    };
    let finish = {
        let it = it.clone();
        e.create_function_from_closure::<(), Unknown<'static>, _>("return", move |ctx| {
            let env = ctx.env.raw();
            it.borrow_mut().finish(env, true, None);
            let (deferred, promise) = Deferred::new(env)?;
            deferred.resolve(env, iter_result(env, None)?);
            Ok(unsafe { Unknown::from_raw_unchecked(env, promise) })
        })?
    };
    let this = e.create_function_from_closure::<(), Unknown<'static>, _>(
        "[Symbol.asyncIterator]",
        |ctx| ctx.this::<Unknown<'static>>(),
    )?;
    raw::set(env, obj, "next", next.raw())?;
    raw::set(env, obj, "return", finish.raw())?;
    let symbol = raw::get(env, raw::global(env)?, "Symbol")?;
    let async_iterator = raw::get(env, symbol, "asyncIterator")?;
    raw::set_by(env, obj, async_iterator, this.raw())?;
    Ok(obj)
}

/// The longest node id (and cluster name), in bytes of UTF-8.
#[napi]
pub const MAX_ID_LEN: u32 = almost_raft::MAX_ID_LEN as u32;

/// Sets the number of threads of the process-wide runtime that runs every node (default 2).
/// Call it before the first node starts; afterwards it throws `ERR_RUNTIME`.
#[napi(ts_args_type = "threads: number")]
pub fn set_worker_threads(env: Env, threads: Unknown) -> Result<()> {
    let env = env.raw();
    let v = threads.raw();
    if raw::type_of(env, v)? != sys::ValueType::napi_number {
        return Err(throw_type(
            env,
            "The \"threads\" argument",
            "of type number",
            v,
        ));
    }
    let n = raw::get_number(env, v)?;
    if !(n.is_finite() && n.fract() == 0.0 && (0.0..=1024.0).contains(&n)) {
        return Err(throw_config(
            env,
            "workerThreads",
            &format!("must be a whole number from 1 to 1024, got {n}"),
        ));
    }
    almost_raft::embed::set_worker_threads(n as usize).map_err(|e| throw_core(env, &e))
}
