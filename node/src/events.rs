//! What runs on the JS thread: a node's queued callbacks, dispatched in order, and the
//! warnings about callbacks that throw or a queue that overflowed.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use almost_raft::LeaderChange as CoreChange;
use almost_raft::embed::{CallbackQueue, Item, MAX_QUEUED_CHANGES, MAX_QUEUED_SENDS};
use napi::bindgen_prelude::*;
use napi::sys;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionHandle};

use crate::errors::core_error;
use crate::iterator::IterState;
use crate::ratelimit::RateLimit;
use crate::raw::{self, Deferred, JsRef, Value};

/// Wakes the JS thread to drain a node's callback queue.
pub(crate) type WakeJs = ThreadsafeFunction<(), Unknown<'static>, (), Status, false>;

// ------------------------------------------------------------------------------------------
// What lives on the JS thread: the user's functions, iterators and close() promises.

pub(crate) struct JsState {
    pub(crate) id: String,
    /// The threadsafe function that wakes this thread, for `ref()`/`unref()`; dropped when
    /// the node has closed, so that it no longer keeps the event loop alive.
    pub(crate) wake: Option<Arc<ThreadsafeFunctionHandle>>,
    /// Whether the node keeps the event loop alive (`ref()`, the default) or not (`unref()`).
    pub(crate) referenced: bool,
    pub(crate) send: Option<JsRef>,
    pub(crate) on_leader_change: Option<JsRef>,
    pub(crate) on_lease_change: Option<JsRef>,
    pub(crate) on_error: Option<JsRef>,
    /// The term whose lease this node holds, as told by the last lease item.
    pub(crate) lease: Option<u64>,
    /// `whileLeader` calls, waiting for the lease or running under it.
    pub(crate) lease_tasks: Vec<crate::lease::LeaseTask>,
    /// The last leader change delivered to JS: where a new iterator starts.
    pub(crate) last: Option<CoreChange>,
    pub(crate) iterators: Vec<Rc<RefCell<IterState>>>,
    /// The `Closed` event was delivered: no callback will run any more.
    pub(crate) closed: bool,
    /// Why the node stopped by itself (an Error with `code`), once it has.
    pub(crate) failure: Option<JsRef>,
    pub(crate) close_waiters: Vec<Deferred>,
    pub(crate) queue: Arc<CallbackQueue>,
    /// When the queue's drop counts were last looked at (at most once a second).
    pub(crate) dropped_checked: Option<Instant>,
    /// Process warnings about throwing callbacks, per callback.
    pub(crate) warn_send: RateLimit,
    pub(crate) warn_leader: RateLimit,
}

/// Warnings of one kind emitted in full per second; the rest are counted.
pub(crate) const WARNING_BURST: u32 = 3;
pub(crate) const WARNING_PERIOD: Duration = Duration::from_secs(1);

/// Runs on the JS thread when woken: every queued callback, in order, then the warnings due.
pub(crate) fn drain(state: &Rc<RefCell<JsState>>, env: sys::napi_env) {
    let queue = state.borrow().queue.clone();
    let (items, closed) = queue.drain();
    for item in items {
        dispatch(state, env, item);
    }
    warn_due(state, env, closed);
    if closed && !state.borrow().closed {
        finish(state, env);
    }
}

/// Emits, at most once a second (and at the end), what the bounded queue dropped and how many
/// callback warnings were suppressed.
pub(crate) fn warn_due(state: &Rc<RefCell<JsState>>, env: sys::napi_env, last: bool) {
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

pub(crate) fn suppressed_message(callback: &str, id: &str, count: u64) -> String {
    format!(
        "the {callback} callback of almost-raft node {id:?} threw {count} more times (warnings suppressed)"
    )
}

pub(crate) fn change_value(env: sys::napi_env, change: &CoreChange) -> Result<Value> {
    let obj = raw::object(env)?;
    let leader = match &change.leader {
        Some(l) => raw::string(env, l)?,
        None => raw::null(env)?,
    };
    raw::set(env, obj, "leader", leader)?;
    raw::set(env, obj, "term", raw::number(env, change.term as f64)?)?;
    Ok(obj)
}

/// Runs on the JS thread for every queued callback, in the order the node produced them. It never
/// returns an error and never leaves an exception pending: a throwing user callback is reported
/// (see `report`) and the node goes on.
pub(crate) fn dispatch(state: &Rc<RefCell<JsState>>, env: sys::napi_env, item: Item) {
    match item {
        Item::Send { to, message } => {
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
        Item::Leader(change) => {
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
        Item::Lease { held, term } => {
            // Taken out while JS runs: a task's function may call whileLeader again.
            let tasks = {
                let mut st = state.borrow_mut();
                st.lease = held.then_some(term);
                std::mem::take(&mut st.lease_tasks)
            };
            let mut kept = Vec::new();
            for mut task in tasks {
                match (held, task.running()) {
                    (true, false) => {
                        task.start(env, term);
                        kept.push(task);
                    }
                    (false, true) => task.abort(env),
                    _ => kept.push(task),
                }
            }
            {
                let mut st = state.borrow_mut();
                kept.append(&mut st.lease_tasks);
                st.lease_tasks = kept;
            }
            let callback = state.borrow().on_lease_change.clone();
            if let Some(callback) = callback {
                let arg = (|| {
                    let obj = raw::object(env)?;
                    raw::set(env, obj, "held", raw::boolean(env, held)?)?;
                    raw::set(env, obj, "term", raw::number(env, term as f64)?)?;
                    Ok::<_, Error>(obj)
                })();
                if let Ok(arg) = arg
                    && let Err(thrown) = callback.call(env, &[arg])
                {
                    report(state, env, "onLeaseChange", thrown);
                }
            }
        }
        Item::Stopped(None) => {}
        Item::Stopped(Some(failure)) => {
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
    }
    raw::clear_exception(env);
}

/// The node stopped and its queue is empty: no callback will run any more. Ends the
/// iterators (with the failure, if any), resolves `close()`, releases what keeps JS alive.
pub(crate) fn finish(state: &Rc<RefCell<JsState>>, env: sys::napi_env) {
    let (waiters, iterators, failure, tasks) = {
        let mut st = state.borrow_mut();
        st.closed = true;
        st.lease = None;
        st.wake = None;
        // Nothing calls them any more: let the functions be collected.
        st.send = None;
        st.on_leader_change = None;
        st.on_lease_change = None;
        (
            std::mem::take(&mut st.close_waiters),
            std::mem::take(&mut st.iterators),
            st.failure.clone(),
            std::mem::take(&mut st.lease_tasks),
        )
    };
    for task in tasks {
        match crate::errors::core_error(env, &almost_raft::Error::Closed) {
            Ok(closed) => task.reject(env, closed),
            Err(_) => raw::clear_exception(env),
        }
    }
    for it in iterators {
        it.borrow_mut().finish(env, false, failure.clone());
    }
    for waiter in waiters {
        if let Ok(v) = raw::undefined(env) {
            waiter.resolve(env, v);
        }
    }
    raw::clear_exception(env);
}

/// A user callback threw `thrown`: hand it to `onError`, or else emit a process warning (at
/// most 3 a second per callback, then one that counts the rest).
pub(crate) fn report(
    state: &Rc<RefCell<JsState>>,
    env: sys::napi_env,
    callback: &str,
    thrown: Value,
) {
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
pub(crate) fn emit_warning(
    env: sys::napi_env,
    code: &str,
    message: &str,
    cause: Option<Value>,
) -> Result<()> {
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
