//! `almost-raft-node`: a ready almost-raft node over UDP:
//!
//! ```text
//! almost-raft-node --id a --listen 127.0.0.1:7001 --peer b@127.0.0.1:7002 --peer c@127.0.0.1:7003
//!                  [--state-dir DIR] [--key-file FILE] [--election-timeout-ms 150]
//!                  [--heartbeat-ms 50] [--cluster NAME]
//! ```
//! Prints one JSON line per leadership change: `{"ts_ms":…,"node":"a","term":3,"leader":"b"}`
//! (`"leader":null` when none is known). SIGTERM or SIGINT (Ctrl-C) stops it gracefully: a
//! leader hands leadership to its most responsive peer (once one has answered in its term),
//! prints `{"ts_ms":…,"node":"a","term":3,"leader":"a","event":"handover","to":"b"}`, and
//! keeps running until it hears the new leader (at most two election timeouts; a second
//! signal stops it at once). With `--state-dir`, the term and vote survive restarts (`DIR/<id>.state`).
//! With `--key-file` (hex keys, one per line, the first signing; not readable by every user),
//! every message is signed and unsigned or forged datagrams are refused (docs/wire.md).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use almost_raft::{Config, NodeBuilder, NodeHandle};

use crate::output::{json_string, print_line};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;

pub(crate) struct Args {
    pub(crate) id: String,
    pub(crate) listen: String,
    pub(crate) peers: BTreeMap<String, String>,
    pub(crate) state_dir: Option<PathBuf>,
    pub(crate) key_file: Option<PathBuf>,
    pub(crate) config: Config,
}

impl Args {
    /// The node these options describe, on the built-in UDP transport.
    pub(crate) fn builder(&self) -> NodeBuilder {
        let mut builder = NodeBuilder::new(self.id.as_str())
            .config(self.config.clone())
            .listen(self.listen.as_str());
        for (peer, addr) in &self.peers {
            builder = builder.peer_at(peer.as_str(), addr.as_str());
        }
        if let Some(dir) = &self.state_dir {
            builder = builder.state_path(dir.join(format!("{}.state", self.id)));
        }
        if let Some(path) = &self.key_file {
            builder = builder.key_file(path);
        }
        builder
    }
}

/// Parses the node's options, starting from `config`.
pub(crate) fn parse(args: Vec<String>, mut config: Config) -> Result<Args, String> {
    let (mut id, mut listen, mut peers, mut state_dir) = (None, None, BTreeMap::new(), None);
    let mut key_file = None;
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let ms = |v: String| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|e| format!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--id" => id = Some(value()?),
            "--listen" => listen = Some(value()?),
            "--peer" => {
                let spec = value()?;
                let (peer, addr) = spec
                    .split_once('@')
                    .ok_or(format!("--peer {spec}: expected ID@HOST:PORT"))?;
                peers.insert(peer.to_owned(), addr.to_owned());
            }
            "--state-dir" => state_dir = Some(PathBuf::from(value()?)),
            "--key-file" => key_file = Some(PathBuf::from(value()?)),
            "--election-timeout-ms" => config.election_timeout = ms(value()?)?,
            "--heartbeat-ms" => config.heartbeat_interval = ms(value()?)?,
            "--cluster" => config.cluster = value()?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    let id = id.ok_or("--id is required")?;
    let listen = listen.ok_or("--listen is required")?;
    config.min_nodes = peers.len() + 1;
    Ok(Args {
        id,
        listen,
        peers,
        state_dir,
        key_file,
        config,
    })
}

/// What a stopping node does next.
pub(crate) enum Handover {
    /// It handed over (and printed so): wait until a peer leads.
    Started,
    /// It leads, but no peer has answered in this term yet: try again after the next input.
    NotYet,
    /// Nothing to hand over (not the leader), or it cannot: stop now.
    None,
}

/// A stopping leader hands leadership to its most responsive peer.
pub(crate) fn hand_over(node: &NodeHandle, id: &str) -> Handover {
    if !node.is_leader() {
        return Handover::None;
    }
    let term = node.status().term;
    match node.transfer_leadership(None) {
        Ok(to) => {
            let extra = format!(",\"event\":\"handover\",\"to\":{}", json_string(&to));
            print_line(id, term, Some(id), &extra);
            Handover::Started
        }
        Err(almost_raft::Error::NoPeers) => Handover::NotYet, // a leader elected just now
        Err(e) => {
            eprintln!("almost-raft-node: stopping without handover: {e}");
            Handover::None
        }
    }
}

/// `almost-raft-node [options]`: a node that prints its leader changes.
pub async fn main(args: Vec<String>) -> ExitCode {
    let args = match parse(args, Config::fast_lan()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!(
                "almost-raft-node: {e}\nusage: almost-raft-node --id ID --listen HOST:PORT --peer ID@HOST:PORT... [--state-dir DIR] [--key-file FILE] [--election-timeout-ms MS] [--heartbeat-ms MS] [--cluster NAME]"
            );
            return ExitCode::from(2);
        }
    };
    let (mut term_signal, mut int_signal) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("almost-raft-node: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let wait = 2 * args.config.election_timeout;
    // The built-in UDP transport: it listens, finds the peers (also by hostname) and receives.
    let builder = args.builder();
    let node = match builder.start_udp() {
        Ok(node) => node,
        Err(e) => {
            eprintln!("almost-raft-node: {e}");
            return ExitCode::FAILURE;
        }
    };
    // One task owns the node, so that shutdown() can consume the handle.
    let id = args.id.as_str();
    let mut changes = node.leader_changes();
    // Once signalled: until when to wait for the handover, and whether it started.
    let (mut stop_by, mut handed_over): (Option<Instant>, bool) = (None, false);
    loop {
        tokio::select! {
            change = changes.next() => {
                let Some(change) = change else { break };
                print_line(id, change.term, change.leader.as_deref(), "");
                if handed_over && change.leader.as_deref().is_some_and(|l| l != id) {
                    break; // the handover completed: a peer leads
                }
            }
            // A second signal stops the node at once.
            _ = term_signal.recv() => if stop_by.replace(Instant::now() + wait).is_some() { break },
            _ = int_signal.recv() => if stop_by.replace(Instant::now() + wait).is_some() { break },
            _ = tokio::time::sleep_until(stop_by.unwrap_or_else(Instant::now)), if stop_by.is_some() => break,
        }
        if stop_by.is_some() && !handed_over {
            match hand_over(&node, id) {
                Handover::Started => handed_over = true,
                Handover::NotYet => {}
                Handover::None => break,
            }
        }
    }
    drop(changes);
    // Not the leader any more after a completed handover; otherwise shutdown() hands over.
    match node.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("almost-raft-node: {e}");
            ExitCode::FAILURE
        }
    }
}
