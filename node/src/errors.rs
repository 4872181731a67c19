//! Core errors as JS errors with a `code`, and the TypeErrors of wrong arguments.

use napi::bindgen_prelude::*;
use napi::sys;

use crate::raw::{self, Value};

pub(crate) const ERR_INVALID_ARG_TYPE: &str = "ERR_INVALID_ARG_TYPE";

/// Throws `err` into JS as an Error whose `code` is `ERR_` + its kind, and returns the marker
/// napi-rs needs to leave that exception alone.
pub(crate) fn throw_core(env: sys::napi_env, err: &almost_raft::Error) -> Error {
    let (code, message) = core_message(err);
    raw::throw(env, raw::ErrorClass::Error, &code, &message)
}

/// `err` as a JS Error with its `code`, not thrown.
pub(crate) fn core_error(env: sys::napi_env, err: &almost_raft::Error) -> Result<Value> {
    let (code, message) = core_message(err);
    raw::error(env, raw::ErrorClass::Error, &code, &message)
}

/// The `code` (`ERR_` + the error's kind) and message of a core error in JS.
pub(crate) fn core_message(err: &almost_raft::Error) -> (String, String) {
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

pub(crate) fn throw_config(env: sys::napi_env, key: &str, reason: &str) -> Error {
    raw::throw(
        env,
        raw::ErrorClass::Error,
        "ERR_INVALID_CONFIG",
        &format!("invalid config: {key}: {reason}"),
    )
}

pub(crate) fn throw_type(env: sys::napi_env, what: &str, expected: &str, got: Value) -> Error {
    let received = raw::describe(env, got);
    raw::throw(
        env,
        raw::ErrorClass::TypeError,
        ERR_INVALID_ARG_TYPE,
        &format!("{what} must be {expected}. Received {received}"),
    )
}

/// Rewrites every config key named in `text` in camel case.
pub(crate) fn camel_keys(text: &str) -> String {
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
pub(crate) fn camel_case(field: &str) -> String {
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
