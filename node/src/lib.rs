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

mod errors;
mod events;
mod host;
mod iterator;
mod lease;
mod options;
mod ratelimit;
mod raw;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use almost_raft::Role;
use almost_raft::embed::{CallbackQueue, EmbeddedNode, QueuedCallbacks};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeCallContext, ThreadsafeFunctionCallMode};
use napi::{Env, sys};
use napi_derive::napi;

use errors::{throw_config, throw_core, throw_type};
use events::{JsState, WARNING_BURST, WARNING_PERIOD, WakeJs, drain};
use iterator::{IterState, async_iterator};
pub use options::NodeOptions;
use options::{keys_arg, parse_options, string_arg};
use ratelimit::RateLimit;
use raw::Deferred;

// ------------------------------------------------------------------------------------------
// The registry of running nodes.

static REGISTRY: LazyLock<Mutex<HashMap<u64, Arc<EmbeddedNode>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

fn registry() -> MutexGuard<'static, HashMap<u64, Arc<EmbeddedNode>>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
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
    /// Messages refused because they were not signed under the node's keyring.
    pub unauthenticated: f64,
    /// How much of the leader lease is left, in ms (null unless this node leads with one).
    pub lease_remaining_ms: Option<f64>,
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

pub(crate) extern "C" fn noop(
    _env: sys::napi_env,
    _info: sys::napi_callback_info,
) -> sys::napi_value {
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
            wake: None,
            referenced: true,
            send: parsed.send,
            on_leader_change: parsed.on_leader_change,
            on_lease_change: parsed.on_lease_change,
            on_error: parsed.on_error,
            lease: None,
            lease_tasks: Vec::new(),
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
        js.borrow_mut().wake = Some(wake.handle.clone());
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

    /// Lets the process exit while this node runs, as `unref()` does for a socket or a timer
    /// (the node keeps running while something else keeps the event loop alive).
    #[napi]
    pub fn unref(&self, env: Env) -> Result<()> {
        self.set_ref(env.raw(), false)
    }

    /// Keeps the process alive while this node runs (the default), as `ref()` does for a
    /// socket or a timer.
    #[napi(js_name = "ref")]
    pub fn refer(&self, env: Env) -> Result<()> {
        self.set_ref(env.raw(), true)
    }

    /// Whether this node keeps the process alive: true unless `unref()` was called (or it
    /// has closed).
    #[napi]
    pub fn has_ref(&self) -> bool {
        let st = self.js.borrow();
        st.referenced && st.wake.is_some()
    }

    fn set_ref(&self, env: sys::napi_env, on: bool) -> Result<()> {
        let mut st = self.js.borrow_mut();
        st.referenced = on;
        let Some(wake) = &st.wake else {
            return Ok(()); // closed: it keeps nothing alive any more
        };
        wake.with_read_aborted(|aborted| {
            if aborted {
                return Ok(());
            }
            // SAFETY: on the JS thread, with a threadsafe function that is neither released
            // (this handle holds it) nor aborted (checked under the lock).
            let status = unsafe {
                if on {
                    sys::napi_ref_threadsafe_function(env, wake.get_raw())
                } else {
                    sys::napi_unref_threadsafe_function(env, wake.get_raw())
                }
            };
            if status == sys::Status::napi_ok {
                Ok(())
            } else {
                Err(Error::from_status(Status::from(status)))
            }
        })
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

    /// Reports that peer `id`'s process is gone, on evidence from its host (a connection its
    /// kernel reset or refused, a supervisor's exit notice); never on mere silence. A follower
    /// of that peer campaigns at once instead of waiting for its election timeout. False
    /// evidence at a minority changes no term and never breaks the lease. Needs pre-vote
    /// (without it: no effect). `ERR_UNKNOWN_PEER` for an unknown id.
    #[napi(ts_args_type = "id: string")]
    pub fn peer_unreachable(&self, env: Env, id: Unknown) -> Result<()> {
        let env = env.raw();
        let id = string_arg(env, id.raw(), "The \"id\" argument")?;
        self.run(env, |n| n.peer_unreachable(&id))
    }

    /// Rotates the cluster's keys on this running node (started with `keys` or `keyFile`): the
    /// first signs, every one verifies. Rotate one node at a time: the new key second on every
    /// node, then first, then alone. `ERR_INVALID_CONFIG` names `keys`.
    #[napi(ts_args_type = "keys: Array<Buffer | Uint8Array>")]
    pub fn set_keys(&self, env: Env, keys: Unknown) -> Result<()> {
        let keys = keys_arg(env.raw(), keys.raw(), "keys")?;
        self.run(env.raw(), |n| n.set_keys(&keys))
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
            role: s.role.name().to_owned(),
            term: s.term as f64,
            leader: s.leader,
            voted_for: s.voted_for,
            peers: s.peers,
            since_leader_heard_ms: s.since_leader_heard.map(|d| d.as_secs_f64() * 1000.0),
            waiting_for_nodes: s.waiting_for_nodes.min(u32::MAX as usize) as u32,
            stopped: s.stopped,
            unauthenticated: s.unauthenticated as f64,
            lease_remaining_ms: s.lease_remaining.map(|d| d.as_secs_f64() * 1000.0),
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
    /// Runs `fn(term, signal)` once this node leads with a lease, and aborts `signal` when
    /// the lease is lost: `leaseMarginMs` before another node could be elected, also when no
    /// message arrives. Resolves with what `fn` returns (awaited); rejects with `ERR_CLOSED`
    /// if the node closes first. `fn` must stop what it does when `signal` aborts.
    #[napi(
        ts_args_type = "fn: (term: number, signal: AbortSignal) => unknown",
        ts_return_type = "Promise<unknown>"
    )]
    pub fn while_leader(&self, env: Env, func: Unknown) -> Result<Unknown<'_>> {
        let env = env.raw();
        self.node(env)?;
        let func = options::function_arg(env, func.raw(), "fn")?;
        let (deferred, promise) = Deferred::new(env)?;
        let mut task = lease::LeaseTask::new(func, deferred);
        let held = self.js.borrow().lease;
        if let Some(term) = held {
            task.start(env, term);
        }
        self.js.borrow_mut().lease_tasks.push(task);
        Ok(unsafe { Unknown::from_raw_unchecked(env, promise) })
    }

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
