//! One harness, written against the almost-raft 0.4 API, instantiated for both crates: the
//! original 0.4 from crates.io and this repo's seed-compatible API. Same network (1 ms one
//! way, a task per message), same parameters, same measurements.

macro_rules! compat_harness {
    ($name:ident, $krate:ident, $vote_term:expr) => {
        pub mod $name {
            use std::collections::BTreeSet;
            use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
            use std::sync::{Arc, Mutex};
            use std::time::Duration;

            use $krate::election::{RaftElectionState, raft_election};
            use $krate::Message;
            use tokio::sync::mpsc::{self, Sender};
            use tokio::task::JoinHandle;
            use tokio::time::{Instant, sleep, timeout_at};

            use crate::LATENCY;

            /// Counts messages and, while recording, the terms candidates asked votes for.
            #[derive(Debug, Default)]
            pub struct Probe {
                pub messages: AtomicU64,
                pub recording: AtomicBool,
                pub vote_terms: Mutex<BTreeSet<usize>>,
            }

            #[derive(Debug, Clone)]
            pub struct NetNode {
                pub(crate) id: String,
                sender: Sender<Message<NetNode>>,
                probe: Arc<Probe>,
            }

            impl NetNode {
                /// The body of `send_message`: count, then deliver after the link's delay.
                pub(crate) fn deliver(&self, msg: Message<NetNode>) {
                    self.probe.messages.fetch_add(1, Relaxed);
                    if self.probe.recording.load(Relaxed) {
                        let term: Option<usize> = ($vote_term)(&msg);
                        if let Some(term) = term {
                            self.probe.vote_terms.lock().unwrap().insert(term);
                        }
                    }
                    let sender = self.sender.clone();
                    tokio::spawn(async move {
                        sleep(LATENCY).await;
                        let _ = sender.send(msg).await;
                    });
                }
            }

            pub struct Cluster {
                ids: Vec<String>,
                tasks: Vec<JoinHandle<()>>,
                alive: Vec<bool>,
                known: Vec<Option<String>>,
                events: mpsc::UnboundedReceiver<(usize, String)>,
                pub probe: Arc<Probe>,
            }

            impl Cluster {
                pub async fn start(n: usize, election_ms: u64, heartbeat_ms: u64) -> Cluster {
                    let probe = Arc::new(Probe::default());
                    let (events_tx, events) = mpsc::unbounded_channel();
                    let (mut states, mut handles) = (Vec::new(), Vec::new());
                    for i in 0..n {
                        let (tx, mut from_raft) = mpsc::channel(64);
                        let id = format!("n{i}");
                        let (state, tx_to_raft) = RaftElectionState::init(id.clone(), election_ms, heartbeat_ms, 50, vec![], tx, n, n - 1);
                        handles.push(NetNode { id, sender: tx_to_raft, probe: probe.clone() });
                        states.push(state);
                        let events_tx = events_tx.clone();
                        tokio::spawn(async move {
                            while let Some(msg) = from_raft.recv().await {
                                if let Message::ControlLeaderChanged(leader) = msg {
                                    let _ = events_tx.send((i, leader));
                                }
                            }
                        });
                    }
                    let mut tasks = Vec::new();
                    for (i, state) in states.into_iter().enumerate() {
                        tasks.push(tokio::spawn(raft_election(state)));
                        for (j, peer) in handles.iter().enumerate() {
                            if i != j {
                                let _ = handles[i].sender.send(Message::ControlAddNode(peer.clone())).await;
                            }
                        }
                    }
                    let ids = handles.iter().map(|h| h.id.clone()).collect();
                    Cluster { ids, tasks, alive: vec![true; n], known: vec![None; n], events, probe }
                }

                /// Waits until every live node reports the same leader, other than `not`.
                pub async fn agreed(&mut self, not: Option<&str>, within: Duration) -> Option<(usize, Instant)> {
                    let deadline = Instant::now() + within;
                    loop {
                        let live: Vec<&Option<String>> = self.known.iter().zip(&self.alive).filter(|(_, a)| **a).map(|(k, _)| k).collect();
                        if let Some(Some(first)) = live.first() {
                            if Some(first.as_str()) != not && live.iter().all(|k| k.as_deref() == Some(first.as_str())) {
                                return self.ids.iter().position(|id| id == first).map(|i| (i, Instant::now()));
                            }
                        }
                        match timeout_at(deadline, self.events.recv()).await {
                            Ok(Some((i, leader))) => self.known[i] = Some(leader),
                            _ => return None,
                        }
                    }
                }

                pub fn crash(&mut self, i: usize) {
                    self.tasks[i].abort();
                    self.alive[i] = false;
                }

                pub fn id(&self, i: usize) -> &str {
                    &self.ids[i]
                }
            }

            impl Drop for Cluster {
                fn drop(&mut self) {
                    for task in &self.tasks {
                        task.abort();
                    }
                }
            }

            /// One cold start and one crash failover.
            pub async fn trial(n: usize, offset: Duration) -> crate::Trial {
                let started = Instant::now();
                let mut c = Cluster::start(n, 150, 50).await;
                let Some((leader, at)) = c.agreed(None, Duration::from_secs(10)).await else {
                    return crate::Trial::default();
                };
                let cold = at - started;
                // Let the cluster settle, then crash the leader at a random point of its
                // heartbeat cycle.
                sleep(Duration::from_millis(300) + offset).await;
                c.probe.recording.store(true, Relaxed);
                let old = c.id(leader).to_owned();
                let crashed_at = Instant::now();
                c.crash(leader);
                let failover = c.agreed(Some(&old), Duration::from_secs(10)).await.map(|(_, at)| at - crashed_at);
                let terms = c.probe.vote_terms.lock().unwrap().len();
                crate::Trial { cold: Some(cold), failover, terms }
            }

            /// Messages and CPU per second of an idle cluster of `n` nodes with a leader.
            pub async fn idle(n: usize, window: Duration) -> (f64, f64) {
                let mut c = Cluster::start(n, 150, 50).await;
                let _ = c.agreed(None, Duration::from_secs(10)).await;
                sleep(Duration::from_secs(1)).await;
                let (m0, cpu0, t0) = (c.probe.messages.load(Relaxed), crate::stats::cpu_time(), Instant::now());
                sleep(window).await;
                let secs = t0.elapsed().as_secs_f64();
                let messages = (c.probe.messages.load(Relaxed) - m0) as f64 / secs;
                let cpu = (crate::stats::cpu_time() - cpu0).as_secs_f64() / secs;
                (messages, cpu)
            }
        }
    };
}

compat_harness!(old_harness, old, |m: &Message<NetNode>| match m {
    old::Message::RequestVote { term, .. } => Some(*term),
    _ => None,
});

compat_harness!(ours_harness, ours, |m: &Message<NetNode>| match m {
    ours::Message::RequestVote { term, .. } => Some(*term),
    _ => None,
});

// almost-raft 0.4.0 on crates.io calls the trait `ClusterNode` (its README says `Node`).
#[async_trait::async_trait]
impl old::ClusterNode for old_harness::NetNode {
    type NodeType = old_harness::NetNode;
    type NodeIdType = String;
    async fn send_message(&self, msg: old::Message<Self>) {
        self.deliver(msg);
    }
    fn node_id(&self) -> &String {
        &self.id
    }
}

#[async_trait::async_trait]
impl ours::Node for ours_harness::NetNode {
    type NodeType = ours_harness::NetNode;
    async fn send_message(&self, msg: ours::Message<Self::NodeType>) {
        self.deliver(msg);
    }
    fn node_id(&self) -> &String {
        &self.id
    }
}
