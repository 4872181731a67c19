//! The native half of the `almost_raft` Python package: a thin layer over
//! `almost_raft::embed::EmbeddedNode`. Callbacks never wait on the GIL: they are queued, and
//! a Python thread of the package (see `_node.py`) takes them off the queue and runs them.
//! The queue is bounded (`almost_raft::embed::CallbackQueue`): a stalled Python thread loses
//! the oldest sends, never the latest leader change, and always hears why the node stopped.

mod host;
mod logs;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use almost_raft::embed::{
    CallbackQueue, EmbeddedNode, Item, MAX_QUEUED_CHANGES, MAX_QUEUED_SENDS, Popped,
    QueuedCallbacks,
};
use almost_raft::{Config, Error, NodeBuilder};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Raises the exception class of `almost_raft._errors` for the error's kind.
fn raise(py: Python<'_>, error: Error) -> PyErr {
    let kind = error.kind().name();
    let build = || -> PyResult<PyErr> {
        let errors = py.import("almost_raft._errors")?;
        let class = errors.getattr("exception_for")?.call1((kind,))?;
        Ok(PyErr::from_value(class.call1((error.to_string(), kind))?))
    };
    build().unwrap_or_else(|e| e)
}

#[pyclass(frozen, module = "almost_raft._native")]
struct NativeNode {
    node: EmbeddedNode,
    queue: Arc<CallbackQueue>,
}

#[pymethods]
impl NativeNode {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (id, peers, election_timeout_ms, heartbeat_interval_ms, message_timeout_ms, min_nodes, max_nodes, pre_vote, check_quorum, state_path, cluster, keys, key_file, listen, addresses, drift_bound_ppm, lease_margin_ms))]
    fn new(
        py: Python<'_>,
        id: &str,
        peers: Vec<String>,
        election_timeout_ms: u64,
        heartbeat_interval_ms: u64,
        message_timeout_ms: u64,
        min_nodes: usize,
        max_nodes: Option<usize>,
        pre_vote: bool,
        check_quorum: bool,
        state_path: Option<PathBuf>,
        cluster: &str,
        keys: Vec<Vec<u8>>,
        key_file: Option<PathBuf>,
        listen: Option<String>,
        addresses: Vec<(String, String)>,
        drift_bound_ppm: u32,
        lease_margin_ms: Option<u64>,
    ) -> PyResult<Self> {
        let config = Config {
            cluster: cluster.to_owned(),
            election_timeout: Duration::from_millis(election_timeout_ms),
            heartbeat_interval: Duration::from_millis(heartbeat_interval_ms),
            message_timeout: Duration::from_millis(message_timeout_ms),
            min_nodes,
            max_nodes,
            pre_vote,
            check_quorum,
            drift_bound_ppm,
            lease_margin: lease_margin_ms.map(Duration::from_millis),
        };
        let mut builder = NodeBuilder::new(id).peers(peers).config(config).keys(keys);
        if let Some(path) = key_file {
            builder = builder.key_file(path);
        }
        if let Some(listen) = listen {
            builder = addresses
                .into_iter()
                .fold(builder.listen(listen), |b, (id, addr)| b.peer_at(id, addr));
        }
        if let Some(path) = state_path {
            builder = builder.state_path(path);
        }
        logs::install();
        let queue = Arc::new(CallbackQueue::default());
        // The callback thread waits on the queue itself: nothing to wake.
        let callbacks = QueuedCallbacks::new(queue.clone(), None);
        let node = py
            .detach(|| EmbeddedNode::start(builder, callbacks))
            .map_err(|e| raise(py, e))?;
        Ok(NativeNode { node, queue })
    }

    fn receive(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        self.node.receive(data).map_err(|e| raise(py, e))
    }

    fn add_peer(&self, py: Python<'_>, id: &str) -> PyResult<()> {
        self.node.add_peer(id).map_err(|e| raise(py, e))
    }

    fn remove_peer(&self, py: Python<'_>, id: &str) -> PyResult<()> {
        self.node.remove_peer(id).map_err(|e| raise(py, e))
    }

    fn peer_unreachable(&self, py: Python<'_>, id: &str) -> PyResult<()> {
        self.node.peer_unreachable(id).map_err(|e| raise(py, e))
    }

    fn set_keys(&self, py: Python<'_>, keys: Vec<Vec<u8>>) -> PyResult<()> {
        self.node.set_keys(&keys).map_err(|e| raise(py, e))
    }

    #[pyo3(signature = (to=None))]
    fn transfer_leadership(&self, py: Python<'_>, to: Option<&str>) -> PyResult<String> {
        self.node.transfer_leadership(to).map_err(|e| raise(py, e))
    }

    /// (role, term, leader, peers, voted_for, waiting_for_nodes, stopped, id,
    /// since_leader_heard_ms, unauthenticated, lease_remaining_ms)
    #[allow(clippy::type_complexity)]
    fn status(
        &self,
        py: Python<'_>,
    ) -> PyResult<(
        &'static str,
        u64,
        Option<String>,
        Vec<String>,
        Option<String>,
        usize,
        bool,
        String,
        Option<f64>,
        u64,
        Option<f64>,
    )> {
        let s = self.node.status().map_err(|e| raise(py, e))?;
        Ok((
            s.role.name(),
            s.term,
            s.leader,
            s.peers,
            s.voted_for,
            s.waiting_for_nodes,
            s.stopped,
            s.id,
            s.since_leader_heard.map(|d| d.as_secs_f64() * 1000.0),
            s.unauthenticated,
            s.lease_remaining.map(|d| d.as_secs_f64() * 1000.0),
        ))
    }

    fn is_closed(&self) -> bool {
        self.node.is_closed()
    }

    /// The next callback to run: ("send", to, bytes), ("leader", leader, term),
    /// ("lease", held, term),
    /// ("stopped", error or None) once, last, when the node stopped (the error says why it
    /// stopped by itself), None when nothing came within `timeout_ms`, or ("closed",) once
    /// everything was taken.
    fn next_callback<'py>(
        &self,
        py: Python<'py>,
        timeout_ms: u64,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let item = py.detach(|| self.queue.pop(Duration::from_millis(timeout_ms)));
        Ok(Some(match item {
            Popped::Item(Item::Send { to, message }) => ("send", to, PyBytes::new(py, &message))
                .into_pyobject(py)?
                .into_any(),
            Popped::Item(Item::Leader(change)) => ("leader", change.leader, change.term)
                .into_pyobject(py)?
                .into_any(),
            Popped::Item(Item::Lease { held, term }) => {
                ("lease", held, term).into_pyobject(py)?.into_any()
            }
            Popped::Item(Item::Stopped(failure)) => {
                let failure = failure.map(|e| raise(py, e).into_value(py));
                ("stopped", failure).into_pyobject(py)?.into_any()
            }
            Popped::Empty => return Ok(None),
            Popped::Closed => ("closed",).into_pyobject(py)?.into_any(),
        }))
    }

    /// (sends dropped, leader changes dropped) since the last call, because the callback
    /// thread fell behind.
    fn take_dropped(&self) -> (u64, u64) {
        self.queue.take_dropped()
    }

    /// (sends queued, leader changes queued) now: at most MAX_QUEUED_SENDS and
    /// MAX_QUEUED_CHANGES.
    fn backlog(&self) -> (usize, usize) {
        let b = self.queue.backlog();
        (b.sends, b.changes)
    }

    /// Stops the node (a leader hands over first); waits, without the GIL, until its
    /// callbacks are done.
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.node.close());
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeNode>()?;
    m.add_class::<host::NativeHost>()?;
    m.add_function(wrap_pyfunction!(logs::next_log, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_QUEUED_SENDS", MAX_QUEUED_SENDS)?;
    m.add("MAX_QUEUED_CHANGES", MAX_QUEUED_CHANGES)?;
    // The defaults of every binding come from the core's Config::default(), once.
    let defaults = Config::default();
    let ms = |d: Duration| d.as_millis() as u64;
    m.add("DEFAULT_ELECTION_TIMEOUT_MS", ms(defaults.election_timeout))?;
    m.add(
        "DEFAULT_HEARTBEAT_INTERVAL_MS",
        ms(defaults.heartbeat_interval),
    )?;
    m.add("DEFAULT_MESSAGE_TIMEOUT_MS", ms(defaults.message_timeout))?;
    m.add("DEFAULT_MIN_NODES", defaults.min_nodes)?;
    m.add("DEFAULT_PRE_VOTE", defaults.pre_vote)?;
    m.add("DEFAULT_CHECK_QUORUM", defaults.check_quorum)?;
    m.add("DEFAULT_DRIFT_BOUND_PPM", defaults.drift_bound_ppm)?;
    Ok(())
}
