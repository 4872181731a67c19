//! An in-process network of runtime nodes for the tokio tests: `send` calls the peer's
//! `receive` directly, unless the link is cut. Tokio's paused clock makes time virtual.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use almost_raft::{Config, LeaderChange, NodeBuilder, NodeHandle, Transport};

/// An in-process network: `send` calls the peer's `receive` directly, unless the link is cut.
#[derive(Default)]
pub struct Net {
    pub nodes: Mutex<BTreeMap<String, Arc<NodeHandle>>>,
    pub cut: Mutex<BTreeSet<(String, String)>>,
    /// Sends to these peers never complete.
    pub hang: Mutex<BTreeSet<String>>,
    /// Every message sent, for inspection.
    pub sent: Mutex<Vec<(String, Vec<u8>)>>,
}

struct Link {
    net: Arc<Net>,
    from: String,
}

impl Transport for Link {
    async fn send(&self, to: &str, message: Vec<u8>) -> io::Result<()> {
        self.net
            .sent
            .lock()
            .unwrap()
            .push((to.to_owned(), message.clone()));
        if self.net.hang.lock().unwrap().contains(to) {
            std::future::pending::<()>().await;
        }
        if self
            .net
            .cut
            .lock()
            .unwrap()
            .contains(&(self.from.clone(), to.to_owned()))
        {
            return Ok(());
        }
        let peer = self.net.nodes.lock().unwrap().get(to).cloned();
        if let Some(peer) = peer {
            let _ = peer.receive(&message);
        }
        Ok(())
    }
}

pub fn ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

impl Net {
    pub fn builder(&self, id: &str, all: &[String]) -> NodeBuilder {
        NodeBuilder::new(id)
            .peers(all.iter().filter(|p| *p != id).cloned())
            .config(Config {
                min_nodes: all.len(),
                ..Config::fast_lan()
            })
            .seed(all.iter().position(|p| p == id).unwrap() as u64 + 1)
    }

    pub fn start(self: &Arc<Self>, builder: NodeBuilder, id: &str) -> Arc<NodeHandle> {
        let node = Arc::new(
            builder
                .start(Link {
                    net: self.clone(),
                    from: id.to_owned(),
                })
                .unwrap(),
        );
        self.nodes
            .lock()
            .unwrap()
            .insert(id.to_owned(), node.clone());
        node
    }

    pub fn cluster(n: usize) -> (Arc<Net>, Vec<String>) {
        let net = Arc::new(Net::default());
        let all = ids(n);
        for id in &all {
            net.start(net.builder(id, &all), id);
        }
        (net, all)
    }

    pub fn node(&self, id: &str) -> Arc<NodeHandle> {
        self.nodes.lock().unwrap()[id].clone()
    }

    /// Takes a node off the network; the caller decides how it stops.
    pub fn take(&self, id: &str) -> NodeHandle {
        let node = self.nodes.lock().unwrap().remove(id).unwrap();
        Arc::try_unwrap(node)
            .ok()
            .expect("no other owner of the handle")
    }

    pub fn isolate(&self, id: &str, all: &[String]) {
        let mut cut = self.cut.lock().unwrap();
        for other in all.iter().filter(|o| *o != id) {
            cut.insert((id.to_owned(), other.clone()));
            cut.insert((other.clone(), id.to_owned()));
        }
    }

    pub fn heal(&self) {
        self.cut.lock().unwrap().clear();
    }

    /// Waits until every listed node knows the same leader, in the same term, and returns it.
    pub async fn agreed_leader(&self, among: &[String]) -> LeaderChange {
        self.agreed_leader_after(among, 0).await
    }

    /// Waits for a leader agreed by all in a term above `term`.
    pub async fn agreed_leader_after(&self, among: &[String], term: u64) -> LeaderChange {
        loop {
            let changes: Vec<LeaderChange> = among
                .iter()
                .map(|id| self.node(id).status())
                .map(|s| LeaderChange {
                    leader: s.leader,
                    term: s.term,
                })
                .collect();
            if changes[0].leader.is_some()
                && changes[0].term > term
                && changes.iter().all(|c| *c == changes[0])
            {
                return changes[0].clone();
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

pub fn without(all: &[String], id: &str) -> Vec<String> {
    all.iter().filter(|o| *o != id).cloned().collect()
}
