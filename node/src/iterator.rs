//! `leaderChanges()`: an async iterator over one node's leader changes, fed on the JS thread.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use almost_raft::LeaderChange as CoreChange;
use napi::bindgen_prelude::*;
use napi::{Env, sys};

use crate::events::change_value;
use crate::raw::{self, Deferred, JsRef, Value};

pub(crate) struct IterState {
    pub(crate) queue: VecDeque<CoreChange>,
    pub(crate) waiting: VecDeque<Deferred>,
    pub(crate) done: bool,
    /// Why the node stopped by itself: the iterator rejects with it once, after its changes.
    pub(crate) failure: Option<JsRef>,
}

/// `{ value, done }` for an async iterator.
pub(crate) fn iter_result(env: sys::napi_env, change: Option<&CoreChange>) -> Result<Value> {
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
    pub(crate) fn deliver(&mut self, env: sys::napi_env, change: &CoreChange) {
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
    pub(crate) fn finish(&mut self, env: sys::napi_env, discard: bool, failure: Option<JsRef>) {
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
    pub(crate) fn settle_end(&mut self, env: sys::napi_env, deferred: Deferred) {
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

/// `{ next, return, [Symbol.asyncIterator] }` over one iterator's state.
pub(crate) fn async_iterator(env: sys::napi_env, it: Rc<RefCell<IterState>>) -> Result<Value> {
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
