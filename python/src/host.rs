//! The native half of `almost_raft.Host`: a thin layer over
//! `almost_raft::embed::host::EmbeddedHost`. Its callbacks are queued
//! (`almost_raft::embed::HostQueue`) and a Python thread of the package (`_host.py`) runs
//! them, so the host never waits on the GIL.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use almost_raft::embed::host::EmbeddedHost;
use almost_raft::embed::{HostItem, HostQueue, QueuedHostCallbacks};
use almost_raft::host::HostBuilder;
use almost_raft::{Config, Event, Keyring};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::raise;

#[pyclass(frozen, module = "almost_raft._native")]
pub(crate) struct NativeHost {
    host: EmbeddedHost,
    queue: Arc<HostQueue>,
}

#[pymethods]
impl NativeHost {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (id, election_timeout_ms, heartbeat_interval_ms, pre_vote, check_quorum, state_path, cluster, keys, listen, addresses, drift_bound_ppm))]
    fn new(
        py: Python<'_>,
        id: &str,
        election_timeout_ms: u64,
        heartbeat_interval_ms: u64,
        pre_vote: bool,
        check_quorum: bool,
        state_path: Option<PathBuf>,
        cluster: &str,
        keys: Vec<Vec<u8>>,
        listen: Option<String>,
        addresses: Vec<(String, String)>,
        drift_bound_ppm: u32,
    ) -> PyResult<Self> {
        let config = Config {
            cluster: cluster.to_owned(),
            election_timeout: Duration::from_millis(election_timeout_ms),
            heartbeat_interval: Duration::from_millis(heartbeat_interval_ms),
            pre_vote,
            check_quorum,
            drift_bound_ppm,
            ..Config::default()
        };
        let mut builder = HostBuilder::new(id).config(config);
        if !keys.is_empty() {
            let keyring = Keyring::new(&keys)
                .map_err(|e| raise(py, almost_raft::Error::Unauthenticated(e)))?;
            builder = builder.keyring(keyring);
        }
        let udp = listen.is_some();
        if let Some(listen) = &listen {
            builder = builder.udp(
                listen,
                addresses.iter().map(|(i, a)| (i.as_str(), a.as_str())),
            );
        }
        if let Some(path) = state_path {
            builder = builder.state_file(path);
        }
        crate::logs::install();
        let queue = Arc::new(HostQueue::default());
        let callbacks = QueuedHostCallbacks::new(queue.clone(), None);
        let host = py
            .detach(|| EmbeddedHost::start(builder, callbacks, udp))
            .map_err(|e| raise(py, e))?;
        Ok(NativeHost { host, queue })
    }

    #[pyo3(signature = (group, voters, preferred=None))]
    fn add_group(
        &self,
        py: Python<'_>,
        group: &str,
        voters: Vec<String>,
        preferred: Option<&str>,
    ) -> PyResult<()> {
        let voters: Vec<&str> = voters.iter().map(String::as_str).collect();
        self.host
            .add_group(group, &voters, preferred)
            .map_err(|e| raise(py, e))
    }

    fn remove_group(&self, py: Python<'_>, group: &str) -> PyResult<()> {
        self.host.remove_group(group).map_err(|e| raise(py, e))
    }

    fn receive(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        self.host.receive(data).map_err(|e| raise(py, e))
    }

    #[pyo3(signature = (group, to=None))]
    fn transfer_leadership(
        &self,
        py: Python<'_>,
        group: &str,
        to: Option<&str>,
    ) -> PyResult<String> {
        self.host
            .transfer_leadership(group, to)
            .map_err(|e| raise(py, e))
    }

    /// (role, term, leader, lease_remaining_ms)
    fn status(
        &self,
        py: Python<'_>,
        group: &str,
    ) -> PyResult<(&'static str, u64, Option<String>, Option<f64>)> {
        let s = self.host.status(group).map_err(|e| raise(py, e))?;
        Ok((
            s.role.name(),
            s.term,
            s.leader,
            s.lease_remaining.map(|d| d.as_secs_f64() * 1000.0),
        ))
    }

    /// (groups, leading, quiet)
    fn stats(&self) -> (usize, usize, usize) {
        let s = self.host.stats();
        (s.groups, s.leading, s.quiet)
    }

    /// The next callback: ("send", to, bytes), ("leader", group, leader, term),
    /// ("lease", group, held, term), ("stopped", group), ("closed",) once, last; None when
    /// nothing came within `timeout_ms`.
    fn next_callback<'py>(
        &self,
        py: Python<'py>,
        timeout_ms: u64,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let item = py.detach(|| self.queue.pop(Duration::from_millis(timeout_ms)));
        let Some(item) = item else { return Ok(None) };
        Ok(Some(match item {
            HostItem::Send { to, datagram } => ("send", to, PyBytes::new(py, &datagram))
                .into_pyobject(py)?
                .into_any(),
            HostItem::Event { group, event } => match event {
                Event::LeaderChanged { leader, term } => ("leader", group, leader, term)
                    .into_pyobject(py)?
                    .into_any(),
                Event::LeaseChanged { held, term } => {
                    ("lease", group, held, term).into_pyobject(py)?.into_any()
                }
                Event::Stopped => ("stopped", group).into_pyobject(py)?.into_any(),
                Event::RoleChanged { .. } => return Ok(None),
            },
            HostItem::Closed => ("closed",).into_pyobject(py)?.into_any(),
        }))
    }

    /// Datagrams dropped since the last call because the callback thread fell behind.
    fn take_dropped(&self) -> u64 {
        self.queue.take_dropped()
    }

    /// Hands every group over and stops; waits, without the GIL, for the last callback.
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.host.close());
    }
}
