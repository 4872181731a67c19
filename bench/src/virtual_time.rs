//! Crash failover in virtual time: this repo's machine driven by a small deterministic event
//! loop (1 ms one way, saves instant), many trials, to compare the real-time figures with.

use std::collections::BTreeMap;
use std::time::Duration;

use ours::{Config, Envelope, HardState, Machine};

const LATENCY: Duration = Duration::from_millis(1);

struct Net {
    now: Duration,
    nodes: BTreeMap<String, Machine>,
    in_flight: Vec<(Duration, Envelope)>,
    vote_terms: std::collections::BTreeSet<u64>,
}

impl Net {
    fn drain(&mut self, id: &str) {
        let Some(m) = self.nodes.get_mut(id) else { return };
        while m.has_ready() {
            let ready = m.ready();
            if let Some(state) = ready.hard_state {
                m.persisted(self.now, &state);
            }
            for msg in ready.messages {
                if matches!(msg.body, ours::Body::Vote { .. }) {
                    self.vote_terms.insert(msg.term);
                }
                self.in_flight.push((self.now + LATENCY, msg));
            }
        }
    }

    /// Runs until `done` holds or `limit` passes; returns the time it held.
    fn run_until(&mut self, limit: Duration, done: impl Fn(&Net) -> bool) -> Option<Duration> {
        loop {
            if done(self) {
                return Some(self.now);
            }
            let next_timer = self.nodes.values().filter_map(Machine::next_deadline).min();
            let next_msg = self.in_flight.iter().map(|(at, _)| *at).min();
            let next = next_timer.into_iter().chain(next_msg).min()?;
            if next > limit {
                return None;
            }
            self.now = next;
            let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight).into_iter().partition(|(at, _)| *at <= next);
            self.in_flight = rest;
            for (_, msg) in due {
                let to = msg.to.clone();
                if let Some(m) = self.nodes.get_mut(&to) {
                    let _ = m.step(self.now, msg);
                    self.drain(&to);
                }
            }
            let ids: Vec<String> = self.nodes.keys().cloned().collect();
            for id in ids {
                let m = self.nodes.get_mut(&id).unwrap();
                if m.next_deadline().is_some_and(|d| d <= self.now) {
                    m.handle_timeout(self.now);
                    self.drain(&id);
                }
            }
        }
    }

    fn agreed(&self, not: Option<&str>) -> bool {
        let mut leaders = self.nodes.values().map(|m| m.leader());
        let first = leaders.next().flatten();
        first.is_some() && first != not && self.nodes.values().all(|m| m.leader() == first)
    }
}

/// (failover time, vote terms) of one trial.
pub fn trial(n: usize, seed: u64) -> Option<(Duration, usize)> {
    let config = Config { min_nodes: n, ..Config::fast_lan() };
    let ids: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
    let mut net = Net { now: Duration::ZERO, nodes: BTreeMap::new(), in_flight: Vec::new(), vote_terms: Default::default() };
    for (i, id) in ids.iter().enumerate() {
        let mut m = Machine::new(id.as_str(), config.clone(), HardState::default(), seed * 131 + i as u64, Duration::ZERO).ok()?;
        for peer in ids.iter().filter(|p| *p != id) {
            m.add_peer(Duration::ZERO, peer).ok()?;
        }
        net.nodes.insert(id.clone(), m);
    }
    net.run_until(Duration::from_secs(10), |n| n.agreed(None))?;
    // Settle, then crash the leader at a random point of its heartbeat cycle.
    let offset = Duration::from_micros((seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 50_000);
    let settle = net.now + Duration::from_millis(300) + offset;
    net.run_until(settle, |_| false);
    net.now = settle;
    let leader = net.nodes.values().find_map(|m| m.leader().map(str::to_owned))?;
    net.nodes.remove(&leader);
    net.in_flight.retain(|(_, m)| m.to != leader);
    net.vote_terms.clear();
    let crashed = net.now;
    let at = net.run_until(crashed + Duration::from_secs(10), |n| n.agreed(Some(&leader)))?;
    Some((at - crashed, net.vote_terms.len()))
}
