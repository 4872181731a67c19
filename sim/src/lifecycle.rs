//! A simulated node's life: start (or restart from what its storage kept), crash, pause and
//! resume.

use rand::RngExt;

use almost_raft_core::machine::Machine;

use crate::checker::Check;
use crate::schedule::Action;
use crate::trace::Entry;
use crate::{Phase, Simulation};

impl Simulation<'_> {
    /// Starts (or restarts) a node from what it saved.
    pub(crate) fn start(&mut self, node: usize) -> Check {
        if self.nodes[node]
            .machine
            .as_ref()
            .is_some_and(|m| !m.is_stopped())
        {
            return Ok(());
        }
        self.checker.on_start(node);
        let durable = self.nodes[node].durable.clone();
        self.checker.on_restart(node, &durable)?;
        let local = self.nodes[node].clock.local(self.now);
        let seed = self.rng.random::<u64>();
        let mut machine = Machine::new(
            self.nodes[node].id.clone(),
            self.config.machine_config(self.swarm.drift_ppm),
            durable.clone(),
            seed,
            local,
        )
        .map_err(|e| format!("could not start {}: {e}", self.nodes[node].id))?;
        for bug in &self.config.bugs {
            machine.inject_bug(*bug);
        }
        for peer in self.nodes.iter().filter(|n| n.id != self.nodes[node].id) {
            machine
                .add_peer(local, &peer.id)
                .map_err(|e| format!("could not add peer {}: {e}", peer.id))?;
        }
        self.record(Entry::Restart {
            node,
            term: durable.term,
        });
        let n = &mut self.nodes[node];
        n.machine = Some(machine);
        n.paused = false;
        n.inbox.clear();
        n.scheduled = None;
        n.life += 1;
        n.saving = None;
        self.reschedule(node);
        Ok(())
    }

    pub(crate) fn crash(&mut self, node: usize, point: &'static str) {
        let n = &mut self.nodes[node];
        if n.machine.take().is_none() {
            return;
        }
        if let Some(save) = n.saving.take() {
            self.abandon_save(node, save);
        }
        let n = &mut self.nodes[node];
        n.inbox.clear();
        n.scheduled = None;
        n.paused = false;
        self.report.crashes += 1;
        self.record(Entry::Crash { node, point });
        self.schedule_restart(node);
    }

    pub(crate) fn schedule_restart(&mut self, node: usize) {
        if self.phase == Phase::Chaos {
            // Often at once, as a supervisor restarts a crashed process; else after a while.
            let down_for = if self.rng.random_bool(0.3) {
                self.config
                    .election_timeout
                    .mul_f64(self.rng.random_range(0.0..0.5))
            } else {
                self.max_election_timeout()
                    .mul_f64(self.rng.random_range(0.0..3.0))
            };
            self.schedule(down_for, Action::Restart(node));
        }
    }

    pub(crate) fn resume(&mut self, node: usize) -> Check {
        if !self.nodes[node].paused {
            return Ok(());
        }
        self.nodes[node].paused = false;
        self.record(Entry::Resume { node });
        for (from, bytes) in std::mem::take(&mut self.nodes[node].inbox) {
            self.deliver(from, node, bytes)?;
        }
        self.nodes[node].scheduled = None;
        self.reschedule(node);
        Ok(())
    }
}
