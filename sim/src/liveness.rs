//! The liveness phase: after healing, one leader known by every node within 10 x the maximum
//! election timeout, then no term change for 20 x that.

use std::hash::Hasher;

use almost_raft_core::machine::Role;

use crate::trace::Entry;
use crate::{Phase, SimReport, Simulation};

impl Simulation<'_> {
    /// Whether the cluster is promised to elect again after healing (README, "Hostile
    /// terms"): always without hostile input; after it, when no two nodes' terms are so far
    /// apart that the next elections could carry them past `MAX_TERM_JUMP`, where nodes
    /// refuse each other's terms.
    pub(crate) fn liveness_promised(&self) -> bool {
        if self.swarm.hostile_every.is_none() {
            return true;
        }
        let terms = self.nodes.iter().map(|n| {
            n.machine
                .as_ref()
                .map_or(n.durable.term, |m| m.term().max(n.durable.term))
        });
        let (low, high) = terms.fold((u64::MAX, 0), |(lo, hi), t| (lo.min(t), hi.max(t)));
        high - low <= almost_raft_core::message::MAX_TERM_JUMP / 2
    }

    /// After healing: one leader known by all within 10 x the maximum election timeout, then
    /// no term change for 20 x. Returns the report once the run is over.
    pub(crate) fn check_liveness(&mut self) -> Result<Option<SimReport>, String> {
        let agreed = self.agreed_leader();
        match self.phase {
            Phase::Chaos => Ok(None),
            Phase::Electing { settled, deadline } => {
                if let Some((leader, term)) = agreed.filter(|_| self.now >= settled) {
                    self.record(Entry::Stable { leader, term });
                    self.report.time_to_leader_after_heal = self.now - self.healed_at;
                    self.phase = Phase::Stable {
                        term,
                        until: self.now + self.max_election_timeout() * 20,
                    };
                    Ok(None)
                } else if self.now > deadline && !self.report.liveness_checked {
                    // Safety was checked all along; liveness was not promised for this run.
                    self.report.trace_hash = self.hash.finish();
                    self.report.leaders_elected = self.checker.leaders_elected();
                    Ok(Some(self.report.clone()))
                } else if self.now > deadline {
                    Err(format!(
                        "no leader known by all nodes {:?} after healing",
                        self.now - self.healed_at
                    ))
                } else {
                    Ok(None)
                }
            }
            Phase::Stable { term, until } => {
                if let Some(changed) = self
                    .nodes
                    .iter()
                    .find(|n| n.machine.as_ref().is_some_and(|m| m.term() != term))
                {
                    if std::mem::take(&mut self.late_handover) {
                        // A handover asked for before the healing: elect again, and check.
                        let max = self.max_election_timeout();
                        self.phase = Phase::Electing {
                            settled: self.now + max,
                            deadline: self.now + max * 10,
                        };
                        return Ok(None);
                    }
                    let m = changed.machine.as_ref().expect("running");
                    return Err(format!(
                        "{} moved from term {term} to {} ({:?}) while the cluster was stable",
                        changed.id,
                        m.term(),
                        m.role()
                    ));
                }
                if self.now < until {
                    return Ok(None);
                }
                self.report.trace_hash = self.hash.finish();
                self.report.leaders_elected = self.checker.leaders_elected();
                self.report.final_term = term;
                Ok(Some(self.report.clone()))
            }
        }
    }

    /// The leader and term every node agrees on, if they all do and that leader leads.
    pub(crate) fn agreed_leader(&self) -> Option<(usize, u64)> {
        let first = self.nodes[0].machine.as_ref()?;
        let (leader, term) = (first.leader()?, first.term());
        let index = self.nodes.iter().position(|n| n.id == leader)?;
        let all_agree = self.nodes.iter().all(|n| {
            n.machine
                .as_ref()
                .is_some_and(|m| m.leader() == Some(leader) && m.term() == term && !n.paused)
        });
        let leads = self.nodes[index]
            .machine
            .as_ref()
            .is_some_and(|m| m.role() == Role::Leader);
        (all_agree && leads).then_some((index, term))
    }
}
