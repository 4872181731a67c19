//! `make demo`: five nodes over real UDP sockets on 127.0.0.1, with state files in a temporary
//! directory. The leader is crashed several times (its process "dies": the handle is dropped)
//! and shut down gracefully several times; each time the node restarts from its state file.
//! Every election is shown as it happens, and a summary ends the run.
//!
//! Exits 0 when the cluster behaved; 1 when two nodes led in one term or a failover did not
//! complete within 10 x the maximum election timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use almost_raft::{Config, LeaderChange, NodeBuilder, NodeHandle, Transport};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

const NODES: usize = 5;
const ROUNDS: usize = 4;

/// Sends each message as one UDP datagram to the peer's address.
struct Udp {
    socket: Arc<UdpSocket>,
    book: Arc<BTreeMap<String, SocketAddr>>,
}

impl Transport for Udp {
    async fn send(&self, to: &str, message: Vec<u8>) -> io::Result<()> {
        let addr = self
            .book
            .get(to)
            .ok_or_else(|| io::Error::other(format!("no address for {to}")))?;
        self.socket.send_to(&message, addr).await.map(|_| ())
    }
}

/// One member: a socket that outlives restarts, and the node running on it, if any.
struct Member {
    socket: Arc<UdpSocket>,
    node: Arc<RwLock<Option<NodeHandle>>>,
}

struct Demo {
    ids: Vec<String>,
    members: BTreeMap<String, Member>,
    book: Arc<BTreeMap<String, SocketAddr>>,
    state_dir: PathBuf,
    config: Config,
    events: mpsc::UnboundedSender<(String, LeaderChange)>,
    started: Instant,
}

impl Demo {
    fn start(&self, id: &str) {
        let member = &self.members[id];
        let node = NodeBuilder::new(id)
            .peers(self.ids.iter().filter(|p| *p != id).cloned())
            .config(self.config.clone())
            .state_path(self.state_dir.join(id))
            .start(Udp {
                socket: member.socket.clone(),
                book: self.book.clone(),
            })
            .expect("node starts");
        let mut changes = node.leader_changes();
        let events = self.events.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            while let Some(change) = changes.next().await {
                let _ = events.send((id.clone(), change));
            }
        });
        *member.node.write().unwrap() = Some(node);
    }

    fn take(&self, id: &str) -> NodeHandle {
        self.members[id]
            .node
            .write()
            .unwrap()
            .take()
            .expect("node is running")
    }

    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// Watches every node's events: who each node thinks leads, and who claimed which term.
struct Watch {
    rx: mpsc::UnboundedReceiver<(String, LeaderChange)>,
    known: BTreeMap<String, LeaderChange>,
    leader_of_term: BTreeMap<u64, String>,
    violations: Vec<String>,
}

impl Watch {
    fn record(&mut self, id: String, change: LeaderChange) {
        if change.leader.as_deref() == Some(id.as_str())
            && let Some(other) = self.leader_of_term.insert(change.term, id.clone())
            && other != id
        {
            self.violations.push(format!(
                "two leaders in term {}: {other} and {id}",
                change.term
            ));
        }
        self.known.insert(id, change);
    }

    /// Waits until every node in `live` knows one leader in a term above `after`.
    async fn agreed(
        &mut self,
        live: &[String],
        after: u64,
        within: Duration,
    ) -> Option<LeaderChange> {
        let deadline = Instant::now() + within;
        loop {
            let first = live.first().and_then(|id| self.known.get(id)).cloned();
            if let Some(first) = first.filter(|f| f.leader.is_some() && f.term > after)
                && live.iter().all(|id| self.known.get(id) == Some(&first))
            {
                return Some(first);
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some((id, change))) => self.record(id, change),
                _ => return None,
            }
        }
    }
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config {
        min_nodes: NODES,
        ..Config::fast_lan()
    };
    let within = config.election_timeout * 2 * 10;
    let state_dir = std::env::temp_dir().join(format!("almost-raft-demo-{}", std::process::id()));
    std::fs::create_dir_all(&state_dir).expect("state directory");
    let ids: Vec<String> = (1..=NODES).map(|i| format!("n{i}")).collect();
    let mut members = BTreeMap::new();
    let mut book = BTreeMap::new();
    for id in &ids {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        book.insert(id.clone(), socket.local_addr().unwrap());
        let node: Arc<RwLock<Option<NodeHandle>>> = Arc::default();
        let (recv_socket, recv_node) = (socket.clone(), node.clone());
        tokio::spawn(async move {
            let mut buf = vec![0; 2048];
            while let Ok((n, _)) = recv_socket.recv_from(&mut buf).await {
                if let Some(node) = recv_node.read().unwrap().as_ref() {
                    let _ = node.receive(&buf[..n]); // a stopped node's port just drops
                }
            }
        });
        members.insert(id.clone(), Member { socket, node });
    }
    let (events, rx) = mpsc::unbounded_channel();
    let demo = Demo {
        ids: ids.clone(),
        members,
        book: Arc::new(book),
        state_dir: state_dir.clone(),
        config: config.clone(),
        events,
        started: Instant::now(),
    };
    let mut watch = Watch {
        rx,
        known: BTreeMap::new(),
        leader_of_term: BTreeMap::new(),
        violations: Vec::new(),
    };

    println!(
        "almost-raft demo: {NODES} nodes over UDP on 127.0.0.1, election timeout {} ms (drawn from [{}, {}) ms), heartbeat {} ms",
        config.election_timeout.as_millis(),
        config.election_timeout.as_millis(),
        config.election_timeout.as_millis() * 2,
        config.heartbeat_interval.as_millis()
    );
    println!("state files in {}\n", state_dir.display());
    for id in &ids {
        demo.start(id);
    }
    let cold = Instant::now();
    let Some(mut current) = watch.agreed(&ids, 0, within).await else {
        eprintln!("no leader after cold start");
        return ExitCode::FAILURE;
    };
    println!(
        "[{:7.3}s] term {}: {} leads, known by all {} after start",
        demo.elapsed(),
        current.term,
        current.leader.as_deref().unwrap(),
        ms(cold.elapsed())
    );

    let (mut crash_times, mut graceful_times, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS * 2 {
        let graceful = round >= ROUNDS;
        let leader = current.leader.clone().unwrap();
        let live: Vec<String> = ids.iter().filter(|id| **id != leader).cloned().collect();
        let node = demo.take(&leader);
        let since = Instant::now();
        if graceful {
            println!("[{:7.3}s] {leader} shuts down gracefully", demo.elapsed());
            node.shutdown().await.expect("clean shutdown");
        } else {
            println!("[{:7.3}s] {leader} crashes", demo.elapsed());
            drop(node);
        }
        match watch.agreed(&live, current.term, within).await {
            Some(next) => {
                let leaderless = since.elapsed();
                println!(
                    "[{:7.3}s] term {}: {} leads, known by all; the cluster had no leader for {}",
                    demo.elapsed(),
                    next.term,
                    next.leader.as_deref().unwrap(),
                    ms(leaderless)
                );
                if graceful {
                    graceful_times.push(leaderless)
                } else {
                    crash_times.push(leaderless)
                }
                current = next;
            }
            None => {
                failed.push(format!(
                    "no new leader within {} after {leader} stopped",
                    ms(within)
                ));
                break;
            }
        }
        demo.start(&leader);
        if watch.agreed(&ids, current.term - 1, within).await.is_none() {
            failed.push(format!("{leader} did not rejoin"));
            break;
        }
        println!(
            "[{:7.3}s] {leader} restarted from its state file and follows {}",
            demo.elapsed(),
            current.leader.as_deref().unwrap()
        );
    }

    let elections: BTreeSet<u64> = watch.leader_of_term.keys().copied().collect();
    println!("\nsummary");
    println!("  elections: {} (terms {:?})", elections.len(), elections);
    println!(
        "  failovers: {} after a crash, {} after a graceful shutdown",
        crash_times.len(),
        graceful_times.len()
    );
    if !crash_times.is_empty() {
        let worst = *crash_times.iter().max().unwrap();
        println!(
            "  leaderless after a crash:    median {}, worst {}",
            ms(median(&mut crash_times)),
            ms(worst)
        );
    }
    if !graceful_times.is_empty() {
        let worst = *graceful_times.iter().max().unwrap();
        println!(
            "  leaderless after a shutdown: median {}, worst {}",
            ms(median(&mut graceful_times)),
            ms(worst)
        );
    }
    let _ = std::fs::remove_dir_all(&state_dir);
    let problems: Vec<String> = watch.violations.iter().chain(&failed).cloned().collect();
    if problems.is_empty() {
        println!("  safety: no two leaders in any term\nOK");
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            eprintln!("  PROBLEM: {p}");
        }
        ExitCode::FAILURE
    }
}
