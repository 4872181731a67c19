//! Disk faults: saves that fail (the node stops), slow saves (the node waits, sending
//! nothing that depends on them), and crashes with a save in flight.

use rand::RngExt;

use almost_raft_core::bugs::Bug;
use almost_raft_core::machine::Event;
use almost_raft_core::message::Envelope;
use almost_raft_core::storage::HardState;

use crate::checker::Check;
use crate::schedule::Action;
use crate::trace::Entry;
use crate::{PendingSave, Phase, Simulation};

impl Simulation<'_> {
    /// A crash struck with a save in flight. A real driver holds the state file's lock until
    /// that save ends, so it lands (or not) before the node can start again; with the
    /// `SaveOutlivesCrash` bug it lands whenever it ends, perhaps after a restart.
    pub(crate) fn abandon_save(&mut self, node: usize, save: PendingSave) {
        if self.config.bugs.contains(&Bug::SaveOutlivesCrash) {
            let late = save.done_at.saturating_sub(self.now)
                + self
                    .max_election_timeout()
                    .mul_f64(self.rng.random_range(0.0..3.0));
            let state = save.state;
            self.schedule(late, Action::DetachedSave { node, state });
            return;
        }
        let landed = self.rng.random_bool(0.5);
        self.record(Entry::SaveLanded {
            node,
            term: save.state.term,
            late: false,
        });
        if landed {
            self.nodes[node].durable = save.state.clone();
            // A vote that landed counts, even though no reply ever left.
            if let Err(e) = self.checker.on_saved(node, &save.state) {
                self.deferred.get_or_insert(e);
            }
        }
    }

    /// Whether the node crashes at this point of handling its output.
    pub(crate) fn crashes_at(&mut self, node: usize, point: &'static str) -> bool {
        let p = if self.phase == Phase::Chaos {
            self.swarm.crash_point
        } else {
            0.0
        };
        if p > 0.0 && self.rng.random_bool(p) {
            self.crash(node, point);
            return true;
        }
        false
    }

    /// Whether a storage fault with chance `p` strikes now (only during chaos).
    pub(crate) fn fails_now(&mut self, p: f64) -> bool {
        self.phase == Phase::Chaos && p > 0.0 && self.rng.random_bool(p)
    }

    /// The state is durable: tell the checker and the machine.
    pub(crate) fn save(&mut self, node: usize, state: &HardState) -> Check {
        self.nodes[node].durable = state.clone();
        self.checker.on_saved(node, state)?;
        let local = self.nodes[node].clock.local(self.now);
        if let Some(machine) = self.nodes[node].machine.as_mut() {
            machine.persisted(local, state);
        }
        Ok(())
    }

    /// The save failed: the write landed or not, and the node stops as a real driver stops it,
    /// sending nothing of that output. It is restarted later, like a crashed node.
    pub(crate) fn fail_save(&mut self, node: usize, state: HardState) -> Check {
        let landed = self.rng.random_bool(0.5);
        self.record(Entry::SaveFailed { node, landed });
        if landed {
            self.nodes[node].durable = state.clone();
            self.checker.on_saved(node, &state)?;
        }
        let local = self.nodes[node].clock.local(self.now);
        let machine = self.nodes[node].machine.as_mut().expect("running");
        machine.stop(local);
        let ready = machine.ready();
        if ready.hard_state.is_some() || !ready.messages.is_empty() {
            return Err(format!(
                "{} saves or sends after it stopped: {ready:?}",
                self.nodes[node].id
            ));
        }
        self.emit(node, &ready.events, &[])?;
        self.schedule_restart(node);
        Ok(())
    }

    pub(crate) fn start_slow_save(
        &mut self,
        node: usize,
        state: HardState,
        messages: Vec<Envelope>,
        events: Vec<Event>,
    ) {
        let takes = self
            .config
            .election_timeout
            .mul_f64(self.rng.random_range(0.0..1.0));
        self.record(Entry::SlowSave {
            node,
            term: state.term,
            takes,
        });
        let n = &mut self.nodes[node];
        n.saving = Some(PendingSave {
            state,
            messages,
            events,
            done_at: self.now + takes,
        });
        let life = n.life;
        self.schedule(takes, Action::SaveDone { node, life });
        if self.swarm.crashes && self.fails_now(0.3) {
            let at = takes.mul_f64(self.rng.random_range(0.0..1.0));
            self.schedule(at, Action::Crash(node));
        }
    }

    pub(crate) fn finish_slow_save(&mut self, node: usize, life: u64) -> Check {
        if self.nodes[node].life != life {
            return Ok(());
        }
        let Some(save) = self.nodes[node].saving.take() else {
            return Ok(());
        };
        self.record(Entry::SaveDone { node });
        self.save(node, &save.state)?;
        if !self.emit(node, &save.events, &save.messages)? {
            return Ok(());
        }
        self.handle_ready(node)?;
        self.reschedule(node);
        Ok(())
    }
}
