//! `Host`: many election groups over one transport and one state file, the Node.js face of
//! `almost_raft::embed::host::EmbeddedHost`. As for a node, its callbacks are queued
//! (`almost_raft::embed::HostQueue`) and a threadsafe function wakes the JS thread to run them
//! in order; `close()` runs the blocking close on a thread of its own.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use almost_raft::embed::host::EmbeddedHost;
use almost_raft::embed::{HostItem, HostQueue, QueuedHostCallbacks};
use almost_raft::host::HostBuilder;
use almost_raft::{Config, Event, Keyring};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunctionCallMode, ThreadsafeFunctionHandle,
};
use napi::{Env, sys};
use napi_derive::napi;

use crate::errors::{throw_core, throw_type};
use crate::events::WakeJs;
use crate::options::{count_arg, function_arg, keys_arg, prop, string_arg};
use crate::raw::{self, Deferred, JsRef, Value};

static HOSTS: LazyLock<Mutex<HashMap<u64, Arc<EmbeddedHost>>>> = LazyLock::new(Default::default);
static NEXT_HOST: AtomicU64 = AtomicU64::new(1);

fn hosts() -> MutexGuard<'static, HashMap<u64, Arc<EmbeddedHost>>> {
    HOSTS.lock().unwrap_or_else(|p| p.into_inner())
}

struct HostJs {
    send: Option<JsRef>,
    on_event: Option<JsRef>,
    queue: Arc<HostQueue>,
    wake: Option<Arc<ThreadsafeFunctionHandle>>,
    closed: bool,
    close_waiters: Vec<Deferred>,
}

/// Many election groups in one process (see the README, "Many groups"). Options: `id`;
/// `send(hostId, data)` or `listen` and `peers` (`{ id: "ip:port" }`, the built-in UDP
/// transport); `onEvent({ group, kind, leader, term, held })` with kind `"leader"`, `"lease"`
/// or `"stopped"`; `electionTimeoutMs`, `heartbeatIntervalMs`, `stateFile`, `cluster`, `keys`.
#[napi]
pub struct Host {
    handle: u64,
    id: String,
    js: Rc<RefCell<HostJs>>,
}

#[napi]
impl Host {
    #[napi(
        constructor,
        ts_args_type = "options: { id: string, send?: (to: string, data: Buffer) => void, onEvent?: (event: { group: string, kind: 'leader' | 'lease' | 'stopped', leader: string | null, term: number, held: boolean | null }) => void, listen?: string, peers?: Record<string, string>, electionTimeoutMs?: number, heartbeatIntervalMs?: number, stateFile?: string, cluster?: string, keys?: Array<Buffer | Uint8Array> }"
    )]
    pub fn new(env: Env, options: Unknown) -> Result<Self> {
        let env = env.raw();
        let o = options.raw();
        if raw::type_of(env, o)? != sys::ValueType::napi_object {
            return Err(throw_type(
                env,
                "The \"options\" argument",
                "of type object",
                o,
            ));
        }
        let id = match prop(env, o, "id", false)? {
            Some(v) => string_arg(env, v, "options.id")?,
            None => {
                return Err(throw_type(
                    env,
                    "options.id",
                    "of type string",
                    raw::undefined(env)?,
                ));
            }
        };
        let mut config = Config::default();
        if let Some(v) = prop(env, o, "electionTimeoutMs", false)? {
            config.election_timeout =
                Duration::from_millis(count_arg(env, v, "electionTimeoutMs")?);
        }
        if let Some(v) = prop(env, o, "heartbeatIntervalMs", false)? {
            config.heartbeat_interval =
                Duration::from_millis(count_arg(env, v, "heartbeatIntervalMs")?);
        }
        if let Some(v) = prop(env, o, "cluster", false)? {
            config.cluster = string_arg(env, v, "options.cluster")?;
        }
        let mut builder = HostBuilder::new(&id).config(config);
        if let Some(v) = prop(env, o, "stateFile", true)? {
            builder = builder.state_file(string_arg(env, v, "options.stateFile")?);
        }
        if let Some(v) = prop(env, o, "keys", false)? {
            let keys = keys_arg(env, v, "options.keys")?;
            if !keys.is_empty() {
                let keyring = Keyring::new(&keys)
                    .map_err(|e| throw_core(env, &almost_raft::Error::Unauthenticated(e)))?;
                builder = builder.keyring(keyring);
            }
        }
        let send = prop(env, o, "send", true)?
            .map(|v| function_arg(env, v, "options.send"))
            .transpose()?;
        let on_event = prop(env, o, "onEvent", true)?
            .map(|v| function_arg(env, v, "options.onEvent"))
            .transpose()?;
        let listen = prop(env, o, "listen", true)?
            .map(|v| string_arg(env, v, "options.listen"))
            .transpose()?;
        let udp = listen.is_some();
        match (&listen, &send) {
            (Some(listen), None) => {
                let Some(peers) = prop(env, o, "peers", false)? else {
                    return Err(throw_type(
                        env,
                        "options.peers",
                        "an object of addresses",
                        raw::undefined(env)?,
                    ));
                };
                let mut addresses = Vec::new();
                for key in raw::keys(env, peers)? {
                    let addr = string_arg(
                        env,
                        raw::get(env, peers, &key)?,
                        &format!("options.peers.{key}"),
                    )?;
                    addresses.push((key, addr));
                }
                builder = builder.udp(
                    listen,
                    addresses.iter().map(|(i, a)| (i.as_str(), a.as_str())),
                );
            }
            (None, Some(_)) => {}
            _ => {
                return Err(throw_type(
                    env,
                    "options.send",
                    "a function (or give listen and peers, not both)",
                    raw::undefined(env)?,
                ));
            }
        }
        let queue = Arc::new(HostQueue::default());
        let js = Rc::new(RefCell::new(HostJs {
            send,
            on_event,
            queue: queue.clone(),
            wake: None,
            closed: false,
            close_waiters: Vec::new(),
        }));
        let napi_env = Env::from_raw(env);
        let target: Function<(), Unknown<'static>> =
            napi_env.create_function("almostRaftHostEvents", crate::noop)?;
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
        let wake = move || {
            let _ = wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
        };
        let callbacks = QueuedHostCallbacks::new(queue, Some(Box::new(wake)));
        let host = EmbeddedHost::start(builder, callbacks, udp).map_err(|e| throw_core(env, &e))?;
        let handle = NEXT_HOST.fetch_add(1, Ordering::Relaxed);
        hosts().insert(handle, Arc::new(host));
        Ok(Host { handle, id, js })
    }

    fn run<T>(
        &self,
        env: sys::napi_env,
        f: impl FnOnce(&EmbeddedHost) -> std::result::Result<T, almost_raft::Error>,
    ) -> Result<T> {
        let host = hosts()
            .get(&self.handle)
            .cloned()
            .ok_or_else(|| throw_core(env, &almost_raft::Error::Closed))?;
        f(&host).map_err(|e| throw_core(env, &e))
    }

    /// This host's id.
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.id.clone()
    }

    /// Hosts `group` here: `voters` are its hosts (this one among them), `preferred` the host
    /// that should lead it whenever it answers.
    #[napi(ts_args_type = "group: string, voters: string[], preferred?: string | null")]
    pub fn add_group(
        &self,
        env: Env,
        group: Unknown,
        voters: Unknown,
        preferred: Option<Unknown>,
    ) -> Result<()> {
        let env = env.raw();
        let group = string_arg(env, group.raw(), "The \"group\" argument")?;
        let v = voters.raw();
        if !raw::is_array(env, v)? {
            return Err(throw_type(
                env,
                "The \"voters\" argument",
                "an array of strings",
                v,
            ));
        }
        let mut ids = Vec::new();
        for i in 0..raw::array_len(env, v)? {
            ids.push(string_arg(
                env,
                raw::element(env, v, i)?,
                &format!("voters[{i}]"),
            )?);
        }
        let preferred = match preferred.map(|p| p.raw()) {
            Some(p)
                if !matches!(
                    raw::type_of(env, p)?,
                    sys::ValueType::napi_undefined | sys::ValueType::napi_null
                ) =>
            {
                Some(string_arg(env, p, "The \"preferred\" argument")?)
            }
            _ => None,
        };
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.run(env, |h| h.add_group(&group, &ids, preferred.as_deref()))
    }

    #[napi(ts_args_type = "group: string")]
    pub fn remove_group(&self, env: Env, group: Unknown) -> Result<()> {
        let env = env.raw();
        let group = string_arg(env, group.raw(), "The \"group\" argument")?;
        self.run(env, |h| h.remove_group(&group))
    }

    /// Hands the host a datagram another host sent; a refused one throws (the host goes on).
    #[napi(ts_args_type = "data: Buffer | Uint8Array")]
    pub fn receive(&self, env: Env, data: Unknown) -> Result<()> {
        let env = env.raw();
        let v = data.raw();
        let Some(bytes) = raw::bytes(env, v)? else {
            return Err(throw_type(
                env,
                "The \"data\" argument",
                "a Buffer or Uint8Array",
                v,
            ));
        };
        let bytes = bytes.to_vec();
        self.run(env, |h| h.receive(&bytes))
    }

    /// Hands `group`'s leadership to `to` (or its most recently heard voter); returns it.
    #[napi(ts_args_type = "group: string, to?: string | null")]
    pub fn transfer_leadership(
        &self,
        env: Env,
        group: Unknown,
        to: Option<Unknown>,
    ) -> Result<String> {
        let env = env.raw();
        let group = string_arg(env, group.raw(), "The \"group\" argument")?;
        let to = match to.map(|t| t.raw()) {
            Some(t)
                if !matches!(
                    raw::type_of(env, t)?,
                    sys::ValueType::napi_undefined | sys::ValueType::napi_null
                ) =>
            {
                Some(string_arg(env, t, "The \"to\" argument")?)
            }
            _ => None,
        };
        self.run(env, |h| h.transfer_leadership(&group, to.as_deref()))
    }

    /// What this host knows of `group`: `{ role, term, leader, leaseRemainingMs }`.
    #[napi(
        ts_args_type = "group: string",
        ts_return_type = "{ role: string, term: number, leader: string | null, leaseRemainingMs: number | null }"
    )]
    pub fn status(&self, env: Env, group: Unknown) -> Result<Unknown<'_>> {
        let raw_env = env.raw();
        let group = string_arg(raw_env, group.raw(), "The \"group\" argument")?;
        let s = self.run(raw_env, |h| h.status(&group))?;
        let obj = raw::object(raw_env)?;
        raw::set(raw_env, obj, "role", raw::string(raw_env, s.role.name())?)?;
        raw::set(raw_env, obj, "term", raw::number(raw_env, s.term as f64)?)?;
        let leader = match &s.leader {
            Some(l) => raw::string(raw_env, l)?,
            None => raw::null(raw_env)?,
        };
        raw::set(raw_env, obj, "leader", leader)?;
        let lease = match s.lease_remaining {
            Some(d) => raw::number(raw_env, d.as_secs_f64() * 1000.0)?,
            None => raw::null(raw_env)?,
        };
        raw::set(raw_env, obj, "leaseRemainingMs", lease)?;
        Ok(unsafe { Unknown::from_raw_unchecked(raw_env, obj) })
    }

    /// `{ groups, leading, quiet }`: quiet groups ride on one heartbeat per pair of hosts.
    #[napi(ts_return_type = "{ groups: number, leading: number, quiet: number }")]
    pub fn stats(&self, env: Env) -> Result<Unknown<'_>> {
        let raw_env = env.raw();
        let s = self.run(raw_env, |h| Ok(h.stats()))?;
        let obj = raw::object(raw_env)?;
        raw::set(
            raw_env,
            obj,
            "groups",
            raw::number(raw_env, s.groups as f64)?,
        )?;
        raw::set(
            raw_env,
            obj,
            "leading",
            raw::number(raw_env, s.leading as f64)?,
        )?;
        raw::set(raw_env, obj, "quiet", raw::number(raw_env, s.quiet as f64)?)?;
        Ok(unsafe { Unknown::from_raw_unchecked(raw_env, obj) })
    }

    /// Hands every group this host leads over and stops; resolves after the last callback.
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
        if let Some(host) = hosts().remove(&self.handle) {
            let closer = host.clone();
            if std::thread::Builder::new()
                .name("almost-raft-close".into())
                .spawn(move || closer.close())
                .is_err()
            {
                host.close();
            }
        }
        Ok(unsafe { Unknown::from_raw_unchecked(env, promise) })
    }
}

/// Runs on the JS thread when woken: every queued callback, in order.
fn drain(state: &Rc<RefCell<HostJs>>, env: sys::napi_env) {
    let queue = state.borrow().queue.clone();
    for item in queue.drain() {
        match item {
            HostItem::Send { to, datagram } => {
                let send = state.borrow().send.clone();
                if let Some(send) = send
                    && let Ok(args) =
                        (|| Ok::<_, Error>([raw::string(env, &to)?, raw::buffer(env, &datagram)?]))(
                        )
                    && let Err(thrown) = send.call(env, &args)
                {
                    warn(env, "send", thrown);
                }
            }
            HostItem::Event { group, event } => {
                let callback = state.borrow().on_event.clone();
                if let Some(callback) = callback
                    && let Ok(arg) = event_value(env, &group, &event)
                    && let Err(thrown) = callback.call(env, &[arg])
                {
                    warn(env, "onEvent", thrown);
                }
            }
            HostItem::Closed => {
                let waiters = {
                    let mut st = state.borrow_mut();
                    st.closed = true;
                    st.wake = None; // the event loop may exit now
                    st.send = None;
                    st.on_event = None;
                    std::mem::take(&mut st.close_waiters)
                };
                for w in waiters {
                    if let Ok(u) = raw::undefined(env) {
                        w.resolve(env, u);
                    }
                }
            }
        }
    }
}

fn event_value(env: sys::napi_env, group: &str, event: &Event) -> Result<Value> {
    let obj = raw::object(env)?;
    raw::set(env, obj, "group", raw::string(env, group)?)?;
    let (kind, leader, term, held) = match event {
        Event::LeaderChanged { leader, term } => ("leader", leader.as_deref(), *term, None),
        Event::LeaseChanged { held, term } => ("lease", None, *term, Some(*held)),
        _ => ("stopped", None, 0, None),
    };
    raw::set(env, obj, "kind", raw::string(env, kind)?)?;
    let leader = match leader {
        Some(l) => raw::string(env, l)?,
        None => raw::null(env)?,
    };
    raw::set(env, obj, "leader", leader)?;
    raw::set(env, obj, "term", raw::number(env, term as f64)?)?;
    let held = match held {
        Some(h) => raw::boolean(env, h)?,
        None => raw::null(env)?,
    };
    raw::set(env, obj, "held", held)?;
    Ok(obj)
}

/// A throwing callback is reported as a process warning; the host goes on.
fn warn(env: sys::napi_env, callback: &str, thrown: Value) {
    let message = format!(
        "the {callback} callback of an almost-raft host threw: {}",
        raw::describe_thrown(env, thrown)
    );
    let _ = crate::events::emit_warning(env, "ERR_CALLBACK_THREW", &message, None);
    raw::clear_exception(env);
}
