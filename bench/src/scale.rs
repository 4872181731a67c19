//! Many election groups in one process on the embedding layer's runtime, at the default
//! timeouts (1000 ms / 100 ms): CPU share of one core and memory per group once elected.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ours::embed::{Callbacks, EmbeddedNode};
use ours::{LeaderChange, NodeBuilder};

type Group = Arc<OnceLock<Vec<EmbeddedNode>>>;

struct Loopback {
    group: Group,
}

impl Callbacks for Loopback {
    fn send(&mut self, to: &str, message: &[u8]) {
        if let Some(nodes) = self.group.get() {
            let i: usize = to[1..].parse().unwrap_or(0);
            let _ = nodes[i].receive(message);
        }
    }
    fn leader_changed(&mut self, _: &LeaderChange) {}
}

/// (CPU share of one core, bytes of memory per group, seconds until all had a leader)
pub fn run(groups: usize, window: Duration) -> (f64, u64, f64) {
    let rss0 = crate::stats::rss_bytes();
    let started = Instant::now();
    let mut all = Vec::with_capacity(groups);
    for g in 0..groups {
        let group: Group = Arc::default();
        let ids = ["g0", "g1", "g2"];
        let nodes: Vec<EmbeddedNode> = ids
            .iter()
            .map(|id| {
                let builder = NodeBuilder::new(*id).peers(ids.iter().filter(|p| *p != id).map(|p| p.to_string())).cluster(format!("c{g}"));
                EmbeddedNode::start(builder, Loopback { group: group.clone() }).unwrap()
            })
            .collect();
        let _ = group.set(nodes);
        all.push(group);
    }
    // Wait until every group knows a leader.
    loop {
        let pending = all.iter().filter(|g| g.get().unwrap().iter().any(|n| n.status().map_or(true, |s| s.leader.is_none()))).count();
        if pending == 0 || started.elapsed() > Duration::from_secs(120) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let elected_after = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let (cpu0, t0) = (crate::stats::cpu_time(), Instant::now());
    std::thread::sleep(window);
    let cpu = (crate::stats::cpu_time() - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64();
    let per_group = crate::stats::rss_bytes().saturating_sub(rss0) / groups as u64;
    for g in &all {
        for n in g.get().unwrap() {
            n.close();
        }
    }
    (cpu, per_group, elected_after)
}
