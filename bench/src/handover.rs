//! Graceful handover with this repo's handle API: leaderless time after the leader shuts
//! down, or transfers leadership, on an in-process network with 1 ms one-way delay.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ours::{Config, LeaderChange, NodeBuilder, NodeHandle};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout_at};

use crate::LATENCY;

type Registry = Arc<RwLock<BTreeMap<String, Arc<NodeHandle>>>>;

struct Cluster {
    registry: Registry,
    events: mpsc::UnboundedReceiver<(String, LeaderChange)>,
    known: BTreeMap<String, LeaderChange>,
}

impl Cluster {
    fn start(n: usize) -> Cluster {
        let registry: Registry = Arc::default();
        let ids: Vec<String> = (0..n).map(|i| format!("h{i}")).collect();
        let (tx, events) = mpsc::unbounded_channel();
        for id in &ids {
            let reg = registry.clone();
            let send = move |to: &str, bytes: Vec<u8>| {
                let peer = reg.read().unwrap().get(to).cloned();
                if let Some(peer) = peer {
                    tokio::spawn(async move {
                        sleep(LATENCY).await;
                        let _ = peer.receive(&bytes);
                    });
                }
            };
            let node = NodeBuilder::new(id.as_str())
                .peers(ids.iter().filter(|p| *p != id).cloned())
                .config(Config { min_nodes: n, ..Config::fast_lan() })
                .start(send)
                .unwrap();
            let mut changes = node.leader_changes();
            let (tx, id2) = (tx.clone(), id.clone());
            tokio::spawn(async move {
                while let Some(c) = changes.next().await {
                    let _ = tx.send((id2.clone(), c));
                }
            });
            registry.write().unwrap().insert(id.clone(), Arc::new(node));
        }
        Cluster { registry, events, known: BTreeMap::new() }
    }

    async fn agreed(&mut self, after: u64) -> Option<LeaderChange> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let live: Vec<String> = self.registry.read().unwrap().keys().cloned().collect();
            let first = self.known.get(&live[0]).cloned();
            if let Some(f) = first.filter(|f| f.leader.is_some() && f.term > after) {
                if live.iter().all(|id| self.known.get(id) == Some(&f)) {
                    return Some(f);
                }
            }
            match timeout_at(deadline, self.events.recv()).await {
                Ok(Some((id, c))) => {
                    self.known.insert(id, c);
                }
                _ => return None,
            }
        }
    }
}

/// Leaderless time after a graceful shutdown (`transfer == false`) or a transfer.
pub async fn trial(n: usize, transfer: bool) -> Option<Duration> {
    let mut c = Cluster::start(n);
    let first = c.agreed(0).await?;
    sleep(Duration::from_millis(200)).await;
    let leader = first.leader.clone()?;
    let started = Instant::now();
    if transfer {
        c.registry.read().unwrap()[&leader].transfer_leadership(None).ok()?;
    } else {
        let node = c.registry.write().unwrap().remove(&leader)?;
        c.known.remove(&leader);
        Arc::try_unwrap(node).ok()?.shutdown().await.ok()?;
    }
    let next = c.agreed(first.term).await?;
    let took = started.elapsed();
    let nodes: Vec<Arc<NodeHandle>> = std::mem::take(&mut *c.registry.write().unwrap()).into_values().collect();
    drop(nodes);
    (next.leader != first.leader).then_some(took)
}
