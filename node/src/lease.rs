//! `whileLeader(fn)`: runs `fn(term, signal)` once this node holds the leader lease, and aborts
//! `signal` when the lease is lost. On the JS thread only, driven by the lease items of the
//! callback queue (see `events::dispatch`).

use std::ptr;

use napi::sys;

use crate::raw::{self, Deferred, JsRef};

type Value = sys::napi_value;

/// One `whileLeader` call: waiting for the lease, or running with an AbortController.
pub(crate) struct LeaseTask {
    func: JsRef,
    /// Settled when `fn` is called (with what it returns), or when the node closes first.
    deferred: Option<Deferred>,
    /// Set once `fn` runs: aborted when the lease is lost.
    controller: Option<JsRef>,
}

impl LeaseTask {
    pub(crate) fn new(func: JsRef, deferred: Deferred) -> Self {
        LeaseTask {
            func,
            deferred: Some(deferred),
            controller: None,
        }
    }

    pub(crate) fn running(&self) -> bool {
        self.controller.is_some()
    }

    /// Calls `fn(term, signal)` and resolves the promise with what it returns (a promise is
    /// adopted), or rejects it with what it throws.
    pub(crate) fn start(&mut self, env: sys::napi_env, term: u64) {
        let Some(deferred) = self.deferred.take() else {
            return;
        };
        let started = (|| -> std::result::Result<Value, Value> {
            let fail = |_| raw::undefined(env).unwrap_or(ptr::null_mut());
            let global = raw::global(env).map_err(fail)?;
            let class = raw::get(env, global, "AbortController").map_err(fail)?;
            let controller = new_instance(env, class)?;
            self.controller = Some(JsRef::new(env, controller).map_err(fail)?);
            let signal = raw::get(env, controller, "signal").map_err(fail)?;
            let term = raw::number(env, term as f64).map_err(fail)?;
            let f = self.func.value(env).map_err(fail)?;
            let this = raw::undefined(env).map_err(fail)?;
            raw::call_method(env, this, f, &[term, signal])
        })();
        match started {
            Ok(result) => deferred.resolve(env, result),
            Err(thrown) => deferred.reject(env, thrown),
        }
        raw::clear_exception(env);
    }

    /// The lease is lost: abort the signal (the function's promise settles as it likes).
    pub(crate) fn abort(self, env: sys::napi_env) {
        if let Some(controller) = &self.controller
            && let Ok(c) = controller.value(env)
            && let Ok(abort) = raw::get(env, c, "abort")
        {
            let _ = raw::call_method(env, c, abort, &[]);
        }
        raw::clear_exception(env);
    }

    /// The node closed before this task got the lease: reject with `error`.
    pub(crate) fn reject(mut self, env: sys::napi_env, error: Value) {
        if let Some(deferred) = self.deferred.take() {
            deferred.reject(env, error);
        }
        self.abort(env);
    }
}

fn new_instance(env: sys::napi_env, class: Value) -> std::result::Result<Value, Value> {
    let mut out = ptr::null_mut();
    let status = unsafe { sys::napi_new_instance(env, class, 0, ptr::null(), &mut out) };
    if status == sys::Status::napi_ok {
        Ok(out)
    } else {
        Err(raw::undefined(env).unwrap_or(ptr::null_mut()))
    }
}
