//! A ready almost-raft node over UDP:
//!
//! ```text
//! almost-raft-node --id a --listen 127.0.0.1:7001 --peer b@127.0.0.1:7002 --peer c@127.0.0.1:7003
//!                  [--state-dir DIR] [--election-timeout-ms 150] [--heartbeat-ms 50] [--cluster NAME]
//! ```
//! Prints one JSON line per leadership change: `{"ts_ms":…,"node":"a","term":3,"leader":"b"}`
//! (`"leader":null` when none is known). SIGTERM or Ctrl-C stops it gracefully: a leader hands
//! over first. With `--state-dir`, the term and vote survive restarts (`DIR/<id>.state`).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use almost_raft::{Config, NodeBuilder, Transport};
use tokio::net::UdpSocket;
use tokio::signal::unix::{SignalKind, signal};

struct Args {
    id: String,
    listen: SocketAddr,
    peers: BTreeMap<String, SocketAddr>,
    state_dir: Option<PathBuf>,
    config: Config,
}

fn parse() -> Result<Args, String> {
    let (mut id, mut listen, mut peers, mut state_dir) = (None, None, BTreeMap::new(), None);
    let mut config = Config::fast_lan();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let ms = |v: String| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|e| format!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--id" => id = Some(value()?),
            "--listen" => {
                listen = Some(
                    value()?
                        .parse::<SocketAddr>()
                        .map_err(|e| format!("--listen: {e}"))?,
                )
            }
            "--peer" => {
                let spec = value()?;
                let (peer, addr) = spec
                    .split_once('@')
                    .ok_or(format!("--peer {spec}: expected ID@HOST:PORT"))?;
                peers.insert(
                    peer.to_owned(),
                    addr.parse().map_err(|e| format!("--peer {spec}: {e}"))?,
                );
            }
            "--state-dir" => state_dir = Some(PathBuf::from(value()?)),
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
        config,
    })
}

struct Udp {
    socket: Arc<UdpSocket>,
    peers: Arc<BTreeMap<String, SocketAddr>>,
}

impl Transport for Udp {
    async fn send(&self, to: &str, message: Vec<u8>) -> io::Result<()> {
        let addr = self
            .peers
            .get(to)
            .ok_or_else(|| io::Error::other(format!("no address for {to}")))?;
        self.socket.send_to(&message, addr).await.map(|_| ())
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!(
                "almost-raft-node: {e}\nusage: almost-raft-node --id ID --listen HOST:PORT --peer ID@HOST:PORT... [--state-dir DIR] [--election-timeout-ms MS] [--heartbeat-ms MS] [--cluster NAME]"
            );
            return ExitCode::from(2);
        }
    };
    let socket = match UdpSocket::bind(args.listen).await {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("almost-raft-node: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let mut builder = NodeBuilder::new(args.id.as_str())
        .peers(args.peers.keys().cloned())
        .config(args.config);
    if let Some(dir) = &args.state_dir {
        builder = builder.state_path(dir.join(format!("{}.state", args.id)));
    }
    let node = match builder.start(Udp {
        socket: socket.clone(),
        peers: Arc::new(args.peers),
    }) {
        Ok(node) => Arc::new(node),
        Err(e) => {
            eprintln!("almost-raft-node: {e}");
            return ExitCode::FAILURE;
        }
    };
    let receiver = node.clone();
    tokio::spawn(async move {
        let mut buf = vec![0; 2048];
        while let Ok((n, _)) = socket.recv_from(&mut buf).await {
            let _ = receiver.receive(&buf[..n]);
        }
    });
    let mut changes = node.leader_changes();
    let mut term_signal = signal(SignalKind::terminate()).expect("signal handler");
    let id = json_string(&args.id);
    loop {
        tokio::select! {
            change = changes.next() => {
                let Some(change) = change else { break };
                let ts = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
                let leader = change.leader.as_deref().map_or("null".to_owned(), json_string);
                let mut out = io::stdout().lock();
                let _ = writeln!(out, "{{\"ts_ms\":{ts},\"node\":{id},\"term\":{},\"leader\":{leader}}}", change.term);
                let _ = out.flush();
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term_signal.recv() => break,
        }
    }
    drop(changes);
    match Arc::try_unwrap(node) {
        Ok(node) => {
            let _ = node.shutdown().await;
        }
        Err(node) => drop(node),
    }
    ExitCode::SUCCESS
}
