//! The network and process faults of the chaos phase: partitions (symmetric and one-way),
//! held links, crashes, pauses and leadership transfers; and the healing that ends the phase.

use std::collections::BTreeSet;
use std::time::Duration;

use almost_raft_core::machine::Role;
use rand::RngExt;

use crate::checker::Check;
use crate::schedule::Action;
use crate::trace::Entry;
use crate::{Phase, Simulation};

/// The faults the chaos phase injects; each seed's swarm (see `swarm`) allows a subset.
#[derive(Clone, Copy)]
enum Fault {
    /// A random side of the cluster against the rest, both ways.
    Partition,
    /// Some node stops hearing some others, or stops being heard.
    OneWay,
    /// One link holds its messages, then releases them all at once.
    Hold,
    /// A node crashes, and restarts later from its saved state.
    Crash,
    /// A node freezes (longer than an election timeout, often), then resumes.
    Pause,
    /// A node, if it leads, hands leadership over.
    Transfer,
    /// A live node is said to be gone (a spoofed refusal).
    FalseEvidence,
}

impl Simulation<'_> {
    pub(crate) fn fault_duration(&mut self) -> Duration {
        self.config
            .election_timeout
            .mul_f64(self.rng.random_range(0.25..10.0))
    }

    pub(crate) fn inject_fault(&mut self) {
        let n = self.nodes.len();
        let s = &self.swarm;
        let kinds: Vec<Fault> = [
            (s.partitions, Fault::Partition),
            (s.one_way, Fault::OneWay),
            (s.holds, Fault::Hold),
            (s.crashes, Fault::Crash),
            (s.pauses, Fault::Pause),
            (s.transfers, Fault::Transfer),
            (s.evidence, Fault::FalseEvidence),
        ]
        .into_iter()
        .filter_map(|(on, k)| on.then_some(k))
        .collect();
        if kinds.is_empty() || n < 2 {
            return;
        }
        self.report.faults_injected += 1;
        let kind = kinds[self.rng.random_range(0..kinds.len())];
        match kind {
            Fault::Partition => {
                // Symmetric partition: a random side against the rest, often the leader alone
                // (the lease's test: the others elect as soon as their stickiness allows).
                let leader = (0..n).find(|&i| {
                    let m = self.nodes[i].machine.as_ref();
                    m.is_some_and(|m| m.role() == Role::Leader)
                });
                let side: BTreeSet<usize> = match leader {
                    Some(leader) if self.rng.random_bool(0.5) => BTreeSet::from([leader]),
                    _ => (0..n).filter(|_| self.rng.random_bool(0.5)).collect(),
                };
                let links: Vec<_> = (0..n)
                    .flat_map(|a| (0..n).map(move |b| (a, b)))
                    .filter(|(a, b)| side.contains(a) != side.contains(b))
                    .collect();
                self.cut(links);
            }
            Fault::OneWay => {
                // One-way: some node stops hearing some others, or stops being heard.
                let node = self.random_node();
                let inbound = self.rng.random_bool(0.5);
                let links: Vec<_> = (0..n)
                    .filter(|&o| o != node && self.rng.random_bool(0.6))
                    .map(|o| if inbound { (o, node) } else { (node, o) })
                    .collect();
                self.cut(links);
            }
            Fault::Hold => {
                let (a, b) = (self.random_node(), self.random_node());
                if a != b {
                    self.network.hold((a, b));
                    self.record(Entry::Hold { link: (a, b) });
                    let after = self.fault_duration();
                    self.schedule(after, Action::Release((a, b)));
                }
            }
            Fault::Crash => {
                let node = self.random_node();
                self.schedule(Duration::ZERO, Action::Crash(node));
            }
            Fault::Pause => {
                let node = self.random_node();
                self.schedule(Duration::ZERO, Action::Pause(node));
                let after = self.fault_duration();
                self.schedule(after, Action::Resume(node));
            }
            Fault::Transfer => {
                // Aimed at whoever leads, or it would rarely hit a leader.
                let leaders: Vec<usize> = (0..n)
                    .filter(|&i| {
                        let m = self.nodes[i].machine.as_ref();
                        m.is_some_and(|m| m.role() == Role::Leader)
                    })
                    .collect();
                if !leaders.is_empty() {
                    let node = leaders[self.rng.random_range(0..leaders.len())];
                    self.schedule(Duration::ZERO, Action::Transfer(node));
                }
            }
            Fault::FalseEvidence => self.false_evidence(),
        }
    }

    /// A leader hands over, as its application may ask at any time.
    pub(crate) fn transfer(&mut self, node: usize) -> Check {
        let to = self
            .rng
            .random_bool(0.7)
            .then(|| self.random_node())
            .filter(|&to| to != node);
        let n = &mut self.nodes[node];
        if n.paused || n.saving.is_some() {
            return Ok(());
        }
        let local = n.clock.local(self.now);
        let Some(machine) = n.machine.as_mut() else {
            return Ok(());
        };
        let target = to.map(|to| format!("n{}", to + 1));
        if machine
            .transfer_leadership(local, target.as_deref())
            .is_err()
        {
            return Ok(()); // not the leader any more, or no peer heard from: nothing to do
        }
        self.record(Entry::Transfer { node, to });
        self.handle_ready(node)
    }

    pub(crate) fn cut(&mut self, links: Vec<(usize, usize)>) {
        if links.is_empty() {
            return;
        }
        self.network.block(&links);
        self.record(Entry::Cut {
            links: links.clone(),
        });
        let after = self.fault_duration();
        self.schedule(after, Action::Mend(links));
    }

    pub(crate) fn heal(&mut self) -> Check {
        self.record(Entry::Heal);
        self.healed_at = self.now;
        let max = self.max_election_timeout();
        self.phase = Phase::Electing {
            settled: self.now + max,
            deadline: self.now + max * 10,
        };
        for (link, bytes) in self.network.heal(self.nodes.len()) {
            self.transmit(link.0, link.1, Duration::ZERO, bytes);
        }
        for node in 0..self.nodes.len() {
            self.start(node)?;
            self.resume(node)?;
        }
        self.report.liveness_checked = self.liveness_promised();
        Ok(())
    }
}
