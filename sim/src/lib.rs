//! A deterministic simulator for the election machine.
//!
//! One `u64` seed derives everything: each node's randomness, the faults of the run (see
//! `swarm.rs`), and every delay, loss, duplication, partition, crash and pause. The run has two
//! phases. During *chaos*, faults come and go; after every step the checker (`checker.rs`) verifies the
//! safety invariants. Then everything is *healed* (network calm, crashed nodes restarted,
//! paused nodes resumed) and the run checks liveness: one leader known by every node within
//! 10 x the maximum election timeout, then no term change for 20 x that.
//!
//! A failure is a [`Violation`] that prints the seed, the config and the command that replays
//! it; the same seed always gives the same run (and the same [`SimReport::trace_hash`]).

mod checker;
mod clock;
mod config;
mod evidence;
mod faults;
pub mod fuzzing;
mod hostile;
pub mod hosts;
mod lifecycle;
mod liveness;
mod network;
mod schedule;
mod storage_faults;
mod swarm;
mod trace;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use almost_raft_core::bugs::Bug;
use almost_raft_core::codec;
use almost_raft_core::machine::{Event, Machine, Role};
use almost_raft_core::message::{Body, Envelope};
use almost_raft_core::storage::HardState;
use checker::{Before, Check, Checker};
use clock::Clock;
use network::{Fate, Network};
use swarm::Swarm;

pub use config::{SimConfig, SimReport, Violation};
pub use network::Delay;
use schedule::{Action, Scheduled};
use trace::{Entry, Fnv};

/// Runs one seed. `Err` is the first broken invariant.
pub fn run(seed: u64, config: &SimConfig) -> Result<SimReport, Box<Violation>> {
    Simulation::new(seed, config, None).run()
}

/// Runs one seed and hands every step, as text, to `trace`.
pub fn run_traced(
    seed: u64,
    config: &SimConfig,
    trace: &mut dyn FnMut(&str),
) -> Result<SimReport, Box<Violation>> {
    Simulation::new(seed, config, Some(trace)).run()
}

struct SimNode {
    id: String,
    machine: Option<Machine>,
    /// What survives a crash.
    durable: HardState,
    clock: Clock,
    paused: bool,
    inbox: Vec<(usize, Vec<u8>)>,
    generation: u64,
    scheduled: Option<Duration>,
    /// Counts starts, so that an event of an earlier life is recognised.
    life: u64,
    /// A slow save in flight and the output that waits for it.
    saving: Option<PendingSave>,
}

struct PendingSave {
    state: HardState,
    messages: Vec<Envelope>,
    events: Vec<Event>,
    done_at: Duration,
}

#[derive(PartialEq)]
enum Phase {
    Chaos,
    /// Healed; waiting for one leader known by all, until the deadline. Agreement counts only
    /// from `settled`: a leader's check-quorum window may still span the chaos just before
    /// healing, and stepping down then is right.
    Electing {
        settled: Duration,
        deadline: Duration,
    },
    /// Stable since `since`: no term may change until `until`.
    Stable {
        term: u64,
        until: Duration,
    },
}

const RECENT_STEPS: usize = 40;
/// How many recent messages a hostile peer can replay.
const REPLAY_LOG: usize = 64;

struct Simulation<'t> {
    seed: u64,
    config: SimConfig,
    rng: ChaCha8Rng,
    now: Duration,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    nodes: Vec<SimNode>,
    network: Network,
    swarm: Swarm,
    checker: Checker,
    phase: Phase,
    healed_at: Duration,
    /// Death evidence reached a node that follows a leader (see `evidence`).
    evidence_given: bool,
    hash: Fnv,
    recent: VecDeque<(Duration, Entry)>,
    /// The last messages sent, for hostile replays.
    sent: VecDeque<(usize, usize, Vec<u8>)>,
    /// A violation found where it cannot be returned at once (inside a crash).
    deferred: Option<String>,
    trace: Option<&'t mut dyn FnMut(&str)>,
    report: SimReport,
    /// A handover asked for during the chaos reached its target after the healing (a delayed
    /// TimeoutNow): the term may change once more, by request.
    late_handover: bool,
}

impl<'t> Simulation<'t> {
    fn new(seed: u64, config: &SimConfig, trace: Option<&'t mut dyn FnMut(&str)>) -> Self {
        assert!(config.nodes >= 1, "a simulation needs at least one node");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut swarm = Swarm::draw(&mut rng, config.nodes, config.election_timeout);
        if config.drift_beyond_bound {
            swarm.drift_ppm = 100_000; // 10%, while the nodes are told 0
        }
        let ids: Vec<String> = (1..=config.nodes).map(|i| format!("n{i}")).collect();
        let nodes = ids
            .iter()
            .map(|id| SimNode {
                id: id.clone(),
                machine: None,
                durable: HardState::default(),
                clock: Clock::new(
                    Duration::from_millis(rng.random_range(0..1000)),
                    // Often at the bound, one way or the other: the lease's worst case.
                    match rng.random_range(0..4) {
                        0 => swarm.drift_ppm,
                        1 => -swarm.drift_ppm,
                        _ => rng.random_range(-swarm.drift_ppm..=swarm.drift_ppm),
                    },
                ),
                paused: false,
                inbox: Vec::new(),
                generation: 0,
                scheduled: None,
                life: 0,
                saving: None,
            })
            .collect();
        Simulation {
            seed,
            config: config.clone(),
            now: Duration::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            network: Network::new(swarm.link.clone()),
            swarm,
            checker: Checker::new(ids, config.check_persist_before_send),
            phase: Phase::Chaos,
            healed_at: Duration::ZERO,
            evidence_given: false,
            hash: Fnv(0xcbf2_9ce4_8422_2325),
            recent: VecDeque::with_capacity(RECENT_STEPS),
            sent: VecDeque::with_capacity(REPLAY_LOG),
            deferred: None,
            trace,
            late_handover: false,
            report: SimReport {
                seed,
                trace_hash: 0,
                steps: 0,
                messages_sent: 0,
                messages_dropped: 0,
                faults_injected: 0,
                crashes: 0,
                leaders_elected: 0,
                time_to_leader_after_heal: Duration::ZERO,
                liveness_checked: true,
                final_term: 0,
            },
            rng,
        }
    }

    fn max_election_timeout(&self) -> Duration {
        self.config.election_timeout * 2
    }

    fn schedule(&mut self, after: Duration, action: Action) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at: self.now + after,
            seq: self.seq,
            action,
        }));
    }

    fn record(&mut self, step: Entry) {
        self.now.hash(&mut self.hash);
        step.hash(&mut self.hash);
        if let Some(trace) = self.trace.as_mut() {
            trace(&format!("{:>12?} {step:?}", self.now));
        }
        if self.recent.len() == RECENT_STEPS {
            self.recent.pop_front();
        }
        self.recent.push_back((self.now, step));
    }

    fn violation(&self, what: String) -> Box<Violation> {
        Box::new(Violation {
            seed: self.seed,
            config: self.config.clone(),
            at: self.now,
            what,
            recent: self
                .recent
                .iter()
                .map(|(at, step)| format!("{at:>12?} {step:?}"))
                .collect(),
        })
    }

    fn run(mut self) -> Result<SimReport, Box<Violation>> {
        for node in 0..self.nodes.len() {
            self.start(node).map_err(|e| self.violation(e))?;
        }
        self.schedule(self.swarm.fault_every, Action::Nemesis);
        if let Some(every) = self.swarm.hostile_every {
            self.schedule(every, Action::Hostile);
        }
        self.schedule(self.config.chaos_time, Action::Heal);
        while let Some(Reverse(next)) = self.queue.pop() {
            self.now = next.at;
            self.report.steps += 1;
            self.act(next.action).map_err(|e| self.violation(e))?;
            self.check_after_act().map_err(|e| self.violation(e))?;
            if let Some(done) = self.check_liveness().map_err(|e| self.violation(e))? {
                return Ok(done);
            }
        }
        Err(self.violation("the simulation ran out of events".into()))
    }

    fn act(&mut self, action: Action) -> Check {
        match action {
            Action::Deliver { from, to, bytes } => self.deliver(from, to, bytes),
            Action::Timer { node, generation } => self.fire_timer(node, generation),
            Action::Transfer(node) => self.transfer(node),
            Action::Evidence { about, to } => self.evidence(about, to),
            Action::Crash(node) => {
                if self.phase == Phase::Chaos {
                    self.crash(node, "between steps");
                    self.evidence_of_crash(node);
                }
                Ok(())
            }
            Action::Restart(node) => self.start(node),
            Action::Pause(node) => {
                if self.nodes[node].machine.is_some() && !self.nodes[node].paused {
                    self.nodes[node].paused = true;
                    self.record(Entry::Pause { node });
                }
                Ok(())
            }
            Action::Resume(node) => self.resume(node),
            Action::Mend(links) => {
                self.network.unblock(&links);
                self.record(Entry::Mend { links });
                Ok(())
            }
            Action::Release(link) => {
                let held = self.network.release(link);
                self.record(Entry::Release {
                    link,
                    count: held.len(),
                });
                for bytes in held {
                    self.transmit(link.0, link.1, Duration::ZERO, bytes);
                }
                Ok(())
            }
            Action::Nemesis => {
                if self.phase == Phase::Chaos {
                    self.inject_fault();
                    let wait = self
                        .swarm
                        .fault_every
                        .mul_f64(self.rng.random_range(0.0..2.0));
                    self.schedule(wait, Action::Nemesis);
                }
                Ok(())
            }
            Action::Hostile => {
                if self.phase == Phase::Chaos {
                    self.inject_hostile()?;
                    let every = self.swarm.hostile_every.expect("scheduled only when set");
                    let wait = every.mul_f64(self.rng.random_range(0.0..2.0));
                    self.schedule(wait, Action::Hostile);
                }
                Ok(())
            }
            Action::SaveDone { node, life } => self.finish_slow_save(node, life),
            Action::DetachedSave { node, state } => {
                self.record(Entry::SaveLanded {
                    node,
                    term: state.term,
                    late: true,
                });
                self.nodes[node].durable = state.clone();
                self.checker.on_saved(node, &state)
            }
            Action::Heal => self.heal(),
        }
    }

    /// What is checked after every step, whatever the step: a stopped node reports no
    /// leader; a violation found inside a crash is reported.
    fn check_after_act(&mut self) -> Check {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        let (mut lease_holders, mut leaders) = (Vec::new(), Vec::new());
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(machine) = &n.machine {
                self.checker.stopped_reports_no_leader(i, machine)?;
                // Held while the node's own clock has not reached the lease's end.
                if machine
                    .lease_bound()
                    .is_some_and(|bound| self.now < n.clock.global(bound))
                {
                    lease_holders.push((i, machine.term()));
                }
                if machine.role() == Role::Leader {
                    leaders.push((i, machine.term()));
                }
            }
        }
        // Death evidence may elect a leader beside a live lease (false evidence at a
        // majority); that leader holds no lease until the old one must have ended.
        let others = if self.evidence_given {
            &lease_holders
        } else {
            &leaders
        };
        self.checker
            .no_leader_beside_a_lease(&lease_holders, others, self.evidence_given)
    }

    fn deliver(&mut self, from: usize, to: usize, bytes: Vec<u8>) -> Check {
        let n = &mut self.nodes[to];
        if n.machine.as_ref().is_none_or(Machine::is_stopped) {
            return Ok(());
        }
        if n.paused {
            n.inbox.push((from, bytes));
            return Ok(());
        }
        let msg = codec::decode(&bytes)
            .map_err(|e| format!("could not decode a message the machine sent: {e}"))?;
        if msg.body == Body::TimeoutNow && self.phase != Phase::Chaos {
            self.late_handover = true;
        }
        self.record(Entry::Deliver {
            from,
            to,
            term: msg.term,
            body: msg.body,
        });
        let n = &mut self.nodes[to];
        let local = n.clock.local(self.now);
        let machine = n.machine.as_mut().expect("checked above");
        let before = Before::of(machine);
        machine
            .step(local, msg.clone())
            .map_err(|e| format!("{} refused a message from {}: {e}", n.id, msg.from))?;
        self.checker.after_step(
            to,
            before,
            Some(&msg),
            self.nodes[to].machine.as_ref().expect("running"),
        )?;
        self.handle_ready(to)
    }

    fn fire_timer(&mut self, node: usize, generation: u64) -> Check {
        let n = &mut self.nodes[node];
        if n.generation != generation || n.paused {
            return Ok(());
        }
        n.scheduled = None;
        // A driver waiting for a save handles no timeout; it looks again once the save ends.
        if n.saving.is_some() {
            return Ok(());
        }
        let Some(machine) = n.machine.as_mut() else {
            return Ok(());
        };
        let local = n.clock.local(self.now);
        let before = Before::of(machine);
        machine.handle_timeout(local);
        self.record(Entry::Timeout { node });
        self.checker.after_step(
            node,
            before,
            None,
            self.nodes[node].machine.as_ref().expect("running"),
        )?;
        self.handle_ready(node)
    }

    /// Handles a node's output the way a driver must: save, then send, then deliver events.
    /// A crash may strike between any two of these; a save may fail or be slow.
    fn handle_ready(&mut self, node: usize) -> Check {
        loop {
            if self.nodes[node].saving.is_some() {
                return Ok(()); // the driver waits for the save; inputs still reach the machine
            }
            let Some(machine) = self.nodes[node].machine.as_mut() else {
                return Ok(());
            };
            if !machine.has_ready() {
                break;
            }
            let ready = machine.ready();
            if let Some(state) = ready.hard_state {
                if self.crashes_at(node, "before saving")
                    || self.crashes_at(node, "after writing, before the sync")
                {
                    return Ok(());
                }
                if self.fails_now(self.swarm.save_error) {
                    return self.fail_save(node, state);
                }
                if self.fails_now(self.swarm.slow_save) {
                    self.start_slow_save(node, state, ready.messages, ready.events);
                    return Ok(());
                }
                self.save(node, &state)?;
                if self.crashes_at(node, "after saving, before sending") {
                    return Ok(());
                }
            }
            if !self.emit(node, &ready.events, &ready.messages)? {
                return Ok(()); // crashed between two sends
            }
        }
        let machine = self.nodes[node].machine.as_ref().expect("running");
        let step = Entry::State {
            node,
            term: machine.term(),
            role: machine.role(),
            leader: machine.leader().map(str::to_owned),
        };
        self.record(step);
        self.reschedule(node);
        Ok(())
    }

    /// Checks the events, then sends the messages. `false` when the node crashed meanwhile.
    fn emit(
        &mut self,
        node: usize,
        events: &[Event],
        messages: &[Envelope],
    ) -> Result<bool, String> {
        let n = &self.nodes[node];
        let machine = n.machine.as_ref().expect("running");
        for event in events {
            self.checker.on_event(node, event, machine, &n.durable)?;
        }
        for (i, msg) in messages.iter().enumerate() {
            if i > 0 && self.crashes_at(node, "between two sends") {
                return Ok(false);
            }
            self.checker.on_send(node, msg, &self.nodes[node].durable)?;
            let to = self
                .nodes
                .iter()
                .position(|n| n.id == msg.to)
                .ok_or_else(|| format!("message to unknown node {}", msg.to))?;
            let bytes = codec::encode(msg).map_err(|e| format!("could not encode {msg:?}: {e}"))?;
            self.report.messages_sent += 1;
            if self.sent.len() == REPLAY_LOG {
                self.sent.pop_front();
            }
            self.sent.push_back((node, to, bytes.clone()));
            match self.network.fate(&mut self.rng, node, to, msg.body, &bytes) {
                Fate::Dropped => self.report.messages_dropped += 1,
                Fate::Held => {}
                Fate::Deliver(delays) => {
                    for delay in delays {
                        self.transmit(node, to, delay, bytes.clone());
                    }
                }
            }
        }
        Ok(true)
    }

    fn transmit(&mut self, from: usize, to: usize, delay: Duration, bytes: Vec<u8>) {
        self.schedule(delay, Action::Deliver { from, to, bytes });
    }

    /// Makes sure the node's next deadline has a timer event.
    fn reschedule(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        let Some(deadline) = n.machine.as_ref().and_then(Machine::next_deadline) else {
            return;
        };
        if n.paused {
            return;
        }
        let at = n.clock.global(deadline).max(self.now);
        if n.scheduled == Some(at) {
            return;
        }
        n.scheduled = Some(at);
        n.generation += 1;
        let generation = n.generation;
        let after = at - self.now;
        self.schedule(after, Action::Timer { node, generation });
    }

    fn random_node(&mut self) -> usize {
        self.rng.random_range(0..self.nodes.len())
    }
}
