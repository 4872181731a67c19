//! Death evidence as a fault kind: true (a crashed node's peers are told at once, as its
//! host's kernel would tell them), stale (told long after, when the node may be back and
//! leading again) and false (a live node, often the leader, said to be gone, as a spoofed
//! refusal would). The lease invariant must hold under all three.

use std::time::Duration;

use almost_raft_core::machine::Role;
use rand::RngExt;

use crate::Simulation;
use crate::checker::Check;
use crate::schedule::Action;
use crate::trace::Entry;

impl Simulation<'_> {
    /// `node` just crashed: each live peer hears of it within a few milliseconds, or, now
    /// and then, only much later.
    pub(crate) fn evidence_of_crash(&mut self, node: usize) {
        if !self.swarm.evidence {
            return;
        }
        for to in (0..self.nodes.len()).filter(|&to| to != node) {
            if self.rng.random_bool(0.8) {
                let after = Duration::from_micros(self.rng.random_range(0..5_000));
                self.schedule(after, Action::Evidence { about: node, to });
            } else if self.rng.random_bool(0.3) {
                let after = self.fault_duration();
                self.schedule(after, Action::Evidence { about: node, to });
            }
        }
    }

    /// False evidence: a live node (the leader, more often than not) said to be gone, to
    /// one or more of the others.
    pub(crate) fn false_evidence(&mut self) {
        let n = self.nodes.len();
        let leader = (0..n).find(|&i| {
            let m = self.nodes[i].machine.as_ref();
            m.is_some_and(|m| m.role() == Role::Leader)
        });
        let about = match leader {
            Some(leader) if self.rng.random_bool(0.7) => leader,
            _ => self.random_node(),
        };
        // To every other node at once (as a spoofer on the path would), or to some.
        let everyone = self.rng.random_bool(0.5);
        for to in (0..n).filter(|&to| to != about) {
            if everyone || self.rng.random_bool(0.3) {
                self.schedule(Duration::ZERO, Action::Evidence { about, to });
            }
        }
    }

    /// Tells `to` that `about`'s process is gone.
    pub(crate) fn evidence(&mut self, about: usize, to: usize) -> Check {
        let id = self.nodes[about].id.clone();
        let n = &mut self.nodes[to];
        if n.paused || n.saving.is_some() {
            return Ok(());
        }
        let local = n.clock.local(self.now);
        let Some(machine) = n.machine.as_mut() else {
            return Ok(());
        };
        let follows = machine.role() == Role::Follower && machine.leader() == Some(id.as_str());
        if machine.peer_unreachable(local, &id).is_err() {
            return Ok(()); // a stopped node
        }
        self.evidence_given |= follows && machine.config().pre_vote;
        self.record(Entry::Evidence { about, to });
        self.handle_ready(to)
    }
}
