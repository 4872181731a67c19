//! A deterministic simulator for the election machine.
//!
//! One `u64` seed derives everything: each node's randomness, the faults of the run (see
//! [`swarm`]), and every delay, loss, duplication, partition, crash and pause. The run has two
//! phases. During *chaos*, faults come and go; after every step the [`checker`] verifies the
//! safety invariants. Then everything is *healed* (network calm, crashed nodes restarted,
//! paused nodes resumed) and the run checks liveness: one leader known by every node within
//! 10 x the maximum election timeout, then no term change for 20 x that.
//!
//! A failure is a [`Violation`] that prints the seed, the config and the command that replays
//! it; the same seed always gives the same run (and the same [`SimReport::trace_hash`]).

mod checker;
mod clock;
mod network;
mod swarm;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::bugs::Bug;
use crate::codec;
use crate::config::Config;
use crate::machine::{Event, Machine, Role};
use crate::message::{Body, Envelope};
use crate::storage::HardState;
use checker::{Before, Check, Checker};
use clock::Clock;
use network::{Fate, Network};
use swarm::Swarm;

pub use network::Delay;

/// What to simulate. Everything else comes from the seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub nodes: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub election_timeout: Duration,
    pub heartbeat_interval: Duration,
    /// Virtual time spent injecting faults before everything is healed.
    pub chaos_time: Duration,
    /// Known bugs to give every node (needs the `bug-injection` feature).
    pub bugs: Vec<Bug>,
    /// Check that nothing is sent before the state it depends on is saved. Switching it off
    /// shows which deeper invariant a persistence bug breaks.
    pub check_persist_before_send: bool,
}

impl SimConfig {
    pub fn new(nodes: usize, pre_vote: bool, check_quorum: bool) -> Self {
        SimConfig {
            nodes,
            pre_vote,
            check_quorum,
            election_timeout: Duration::from_millis(150),
            heartbeat_interval: Duration::from_millis(50),
            chaos_time: Duration::from_secs(10),
            bugs: Vec::new(),
            check_persist_before_send: true,
        }
    }

    /// The command that replays `seed` under this config, with a full trace.
    pub fn replay_command(&self, seed: u64) -> String {
        let on_off = |b: bool| if b { "on" } else { "off" };
        let mut cmd = String::from("cargo run --release -p almost-raft --example simulate");
        if !self.bugs.is_empty() {
            cmd.push_str(" --features bug-injection");
        }
        cmd += &format!(
            " -- --nodes {} --pre-vote {} --check-quorum {} --chaos-ms {} --seed {seed} --trace",
            self.nodes,
            on_off(self.pre_vote),
            on_off(self.check_quorum),
            self.chaos_time.as_millis()
        );
        for bug in &self.bugs {
            cmd += &format!(" --bug {}", bug.name());
        }
        if !self.check_persist_before_send {
            cmd += " --no-persist-check";
        }
        cmd
    }

    fn machine_config(&self) -> Config {
        Config {
            cluster: "sim".into(),
            election_timeout: self.election_timeout,
            heartbeat_interval: self.heartbeat_interval,
            message_timeout: self.heartbeat_interval,
            min_nodes: self.nodes,
            max_nodes: Some(self.nodes),
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
        }
    }
}

impl fmt::Display for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} nodes, pre-vote {}, check-quorum {}, election timeout {:?}, heartbeat {:?}, chaos {:?}",
            self.nodes,
            self.pre_vote,
            self.check_quorum,
            self.election_timeout,
            self.heartbeat_interval,
            self.chaos_time
        )?;
        if !self.bugs.is_empty() {
            write!(f, ", injected bugs {:?}", self.bugs)?;
        }
        Ok(())
    }
}

/// A broken invariant, with everything needed to replay it.
#[derive(Debug, Clone)]
pub struct Violation {
    pub seed: u64,
    pub config: SimConfig,
    /// Virtual time of the failing step.
    pub at: Duration,
    pub what: String,
    /// The last steps before the failure.
    pub recent: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "simulation failed: seed {} at {:?}: {}",
            self.seed, self.at, self.what
        )?;
        writeln!(f, "config: {}", self.config)?;
        writeln!(f, "replay: {}", self.config.replay_command(self.seed))?;
        writeln!(f, "last steps:")?;
        for line in &self.recent {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violation {}

/// What a successful run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimReport {
    pub seed: u64,
    /// A hash of every step: equal for equal seeds and configs.
    pub trace_hash: u64,
    pub steps: u64,
    pub messages_sent: u64,
    pub messages_dropped: u64,
    pub faults_injected: u64,
    pub crashes: u64,
    /// Terms in which a leader was elected.
    pub leaders_elected: usize,
    /// Virtual time from healing to a leader known by all.
    pub time_to_leader_after_heal: Duration,
    /// Whether the run checked liveness after healing. Only a run whose hostile input left
    /// nodes' terms too far apart, or hit a cluster without pre-vote, is excused.
    pub liveness_checked: bool,
    pub final_term: u64,
}

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

/// One step of the run, as recorded in the trace.
#[derive(Debug, Clone, Hash)]
enum Step {
    Deliver {
        from: usize,
        to: usize,
        term: u64,
        body: Body,
    },
    Timeout {
        node: usize,
    },
    State {
        node: usize,
        term: u64,
        role: Role,
        leader: Option<String>,
    },
    Crash {
        node: usize,
        point: &'static str,
    },
    Restart {
        node: usize,
        term: u64,
    },
    Pause {
        node: usize,
    },
    Resume {
        node: usize,
    },
    Cut {
        links: Vec<(usize, usize)>,
    },
    Mend {
        links: Vec<(usize, usize)>,
    },
    Hold {
        link: (usize, usize),
    },
    Release {
        link: (usize, usize),
        count: usize,
    },
    Heal,
    Stable {
        leader: usize,
        term: u64,
    },
    SaveFailed {
        node: usize,
        landed: bool,
    },
    SlowSave {
        node: usize,
        term: u64,
        takes: Duration,
    },
    SaveDone {
        node: usize,
    },
    /// A save that was in flight when its node crashed lands after the crash.
    SaveLanded {
        node: usize,
        term: u64,
        late: bool,
    },
    Hostile {
        from: usize,
        to: usize,
        term: u64,
        body: Body,
    },
    Replay {
        from: usize,
        to: usize,
    },
}

enum Action {
    Deliver {
        from: usize,
        to: usize,
        bytes: Vec<u8>,
    },
    Timer {
        node: usize,
        generation: u64,
    },
    Crash(usize),
    Restart(usize),
    Pause(usize),
    Resume(usize),
    Mend(Vec<(usize, usize)>),
    Release((usize, usize)),
    Nemesis,
    Hostile,
    SaveDone {
        node: usize,
        life: u64,
    },
    DetachedSave {
        node: usize,
        state: HardState,
    },
    Heal,
}

struct Scheduled {
    at: Duration,
    seq: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
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

/// FNV-1a: a hasher whose output does not depend on the process, unlike std's.
struct Fnv(u64);
impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
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
    hash: Fnv,
    recent: VecDeque<(Duration, Step)>,
    /// The last messages sent, for hostile replays.
    sent: VecDeque<(usize, usize, Vec<u8>)>,
    /// A violation found where it cannot be returned at once (inside a crash).
    deferred: Option<String>,
    trace: Option<&'t mut dyn FnMut(&str)>,
    report: SimReport,
}

impl<'t> Simulation<'t> {
    fn new(seed: u64, config: &SimConfig, trace: Option<&'t mut dyn FnMut(&str)>) -> Self {
        assert!(config.nodes >= 1, "a simulation needs at least one node");
        #[cfg(not(feature = "bug-injection"))]
        assert!(
            config.bugs.is_empty(),
            "injecting bugs needs the `bug-injection` feature"
        );
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let swarm = Swarm::draw(&mut rng, config.nodes, config.election_timeout);
        let ids: Vec<String> = (1..=config.nodes).map(|i| format!("n{i}")).collect();
        let nodes = ids
            .iter()
            .map(|id| SimNode {
                id: id.clone(),
                machine: None,
                durable: HardState::default(),
                clock: Clock::new(
                    Duration::from_millis(rng.random_range(0..1000)),
                    rng.random_range(-swarm.drift_ppm..=swarm.drift_ppm),
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
            hash: Fnv(0xcbf2_9ce4_8422_2325),
            recent: VecDeque::with_capacity(RECENT_STEPS),
            sent: VecDeque::with_capacity(REPLAY_LOG),
            deferred: None,
            trace,
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

    fn record(&mut self, step: Step) {
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
            Action::Crash(node) => {
                if self.phase == Phase::Chaos {
                    self.crash(node, "between steps");
                }
                Ok(())
            }
            Action::Restart(node) => self.start(node),
            Action::Pause(node) => {
                if self.nodes[node].machine.is_some() && !self.nodes[node].paused {
                    self.nodes[node].paused = true;
                    self.record(Step::Pause { node });
                }
                Ok(())
            }
            Action::Resume(node) => self.resume(node),
            Action::Mend(links) => {
                self.network.unblock(&links);
                self.record(Step::Mend { links });
                Ok(())
            }
            Action::Release(link) => {
                let held = self.network.release(link);
                self.record(Step::Release {
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
                self.record(Step::SaveLanded {
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
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(machine) = &n.machine {
                self.checker.stopped_reports_no_leader(i, machine)?;
            }
        }
        Ok(())
    }

    /// Starts (or restarts) a node from what it saved.
    fn start(&mut self, node: usize) -> Check {
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
            self.config.machine_config(),
            durable.clone(),
            seed,
            local,
        )
        .map_err(|e| format!("could not start {}: {e}", self.nodes[node].id))?;
        #[cfg(feature = "bug-injection")]
        for bug in &self.config.bugs {
            machine.inject_bug(*bug);
        }
        for peer in self.nodes.iter().filter(|n| n.id != self.nodes[node].id) {
            machine
                .add_peer(local, &peer.id)
                .map_err(|e| format!("could not add peer {}: {e}", peer.id))?;
        }
        self.record(Step::Restart {
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

    fn crash(&mut self, node: usize, point: &'static str) {
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
        self.record(Step::Crash { node, point });
        self.schedule_restart(node);
    }

    fn schedule_restart(&mut self, node: usize) {
        if self.phase == Phase::Chaos {
            let down_for = self
                .max_election_timeout()
                .mul_f64(self.rng.random_range(0.0..3.0));
            self.schedule(down_for, Action::Restart(node));
        }
    }

    /// A crash struck with a save in flight. A real driver holds the state file's lock until
    /// that save ends, so it lands (or not) before the node can start again; with the
    /// `SaveOutlivesCrash` bug it lands whenever it ends, perhaps after a restart.
    fn abandon_save(&mut self, node: usize, save: PendingSave) {
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
        self.record(Step::SaveLanded {
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
    fn crashes_at(&mut self, node: usize, point: &'static str) -> bool {
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

    fn resume(&mut self, node: usize) -> Check {
        if !self.nodes[node].paused {
            return Ok(());
        }
        self.nodes[node].paused = false;
        self.record(Step::Resume { node });
        for (from, bytes) in std::mem::take(&mut self.nodes[node].inbox) {
            self.deliver(from, node, bytes)?;
        }
        self.nodes[node].scheduled = None;
        self.reschedule(node);
        Ok(())
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
        self.record(Step::Deliver {
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
        self.drain(to)
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
        self.record(Step::Timeout { node });
        self.checker.after_step(
            node,
            before,
            None,
            self.nodes[node].machine.as_ref().expect("running"),
        )?;
        self.drain(node)
    }

    /// Handles a node's output the way a driver must: save, then send, then deliver events.
    /// A crash may strike between any two of these; a save may fail or be slow.
    fn drain(&mut self, node: usize) -> Check {
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
        let step = Step::State {
            node,
            term: machine.term(),
            role: machine.role(),
            leader: machine.leader().map(str::to_owned),
        };
        self.record(step);
        self.reschedule(node);
        Ok(())
    }

    /// Whether a storage fault with chance `p` strikes now (only during chaos).
    fn fails_now(&mut self, p: f64) -> bool {
        self.phase == Phase::Chaos && p > 0.0 && self.rng.random_bool(p)
    }

    /// The state is durable: tell the checker and the machine.
    fn save(&mut self, node: usize, state: &HardState) -> Check {
        self.nodes[node].durable = state.clone();
        self.checker.on_saved(node, state)?;
        let local = self.nodes[node].clock.local(self.now);
        if let Some(machine) = self.nodes[node].machine.as_mut() {
            machine.persisted(local, state);
        }
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

    /// The save failed: the write landed or not, and the node stops as a real driver stops it,
    /// sending nothing of that output. It is restarted later, like a crashed node.
    fn fail_save(&mut self, node: usize, state: HardState) -> Check {
        let landed = self.rng.random_bool(0.5);
        self.record(Step::SaveFailed { node, landed });
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

    fn start_slow_save(
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
        self.record(Step::SlowSave {
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

    fn finish_slow_save(&mut self, node: usize, life: u64) -> Check {
        if self.nodes[node].life != life {
            return Ok(());
        }
        let Some(save) = self.nodes[node].saving.take() else {
            return Ok(());
        };
        self.record(Step::SaveDone { node });
        self.save(node, &save.state)?;
        if !self.emit(node, &save.events, &save.messages)? {
            return Ok(());
        }
        self.drain(node)?;
        self.reschedule(node);
        Ok(())
    }

    /// A peer sends what an honest one never would: any term (0, jumps, `MAX_TERM` and
    /// beyond), TimeoutNow from a node that does not lead, grants never asked for, or a
    /// replay of an old message. The machine is handed the message directly, as a sans-IO
    /// user could, so its own checks are what stands in the way.
    fn inject_hostile(&mut self) -> Check {
        let n = self.nodes.len();
        if n < 2 {
            return Ok(());
        }
        if self.rng.random_bool(0.25) && !self.sent.is_empty() {
            let (from, to, bytes) = self.sent[self.rng.random_range(0..self.sent.len())].clone();
            self.record(Step::Replay { from, to });
            return self.deliver(from, to, bytes);
        }
        let to = self.random_node();
        let from = (to + self.rng.random_range(1..n)) % n;
        let target = &self.nodes[to];
        let Some(machine) = target
            .machine
            .as_ref()
            .filter(|m| !m.is_stopped() && !target.paused)
        else {
            return Ok(());
        };
        let (term, leader) = (machine.term(), machine.leader().map(str::to_owned));
        let (term, body) = match self.rng.random_range(0..4) {
            0 => {
                let bodies = [
                    Body::Heartbeat,
                    Body::HeartbeatReply,
                    Body::PreVote,
                    Body::Vote { transfer: false },
                    Body::Vote { transfer: true },
                    Body::VoteReply { granted: false },
                    Body::PreVoteReply { granted: false },
                    Body::TimeoutNow,
                ];
                let body = bodies[self.rng.random_range(0..bodies.len())];
                (self.hostile_term(term), body)
            }
            1 if leader.as_deref() != Some(self.nodes[from].id.as_str()) => {
                (term, Body::TimeoutNow)
            }
            2 => {
                // A grant for a term this node never asked about (its campaign term is
                // `term`, its pre-vote term `term + 1`).
                let other = match self.rng.random_range(0..3) {
                    0 => term.saturating_sub(1),
                    1 => term.saturating_add(2),
                    _ => self.hostile_term(term),
                };
                if self.rng.random_bool(0.5) && other != term {
                    (other, Body::VoteReply { granted: true })
                } else if other != term.saturating_add(1) {
                    (other, Body::PreVoteReply { granted: true })
                } else {
                    return Ok(());
                }
            }
            _ => (self.hostile_term(term), Body::Heartbeat),
        };
        let msg = Envelope {
            cluster: "sim".into(),
            from: self.nodes[from].id.clone(),
            to: self.nodes[to].id.clone(),
            term,
            body,
        };
        self.record(Step::Hostile {
            from,
            to,
            term,
            body,
        });
        self.checker.on_hostile(term);
        let n = &mut self.nodes[to];
        let local = n.clock.local(self.now);
        let machine = n.machine.as_mut().expect("checked above");
        let before = Before::of(machine);
        let accepted = machine.step(local, msg.clone()).is_ok();
        self.checker.after_step(
            to,
            before,
            accepted.then_some(&msg),
            self.nodes[to].machine.as_ref().expect("running"),
        )?;
        self.drain(to)
    }

    /// Terms a hostile peer likes: stale, equal, one up, far up, at and beyond the limits.
    fn hostile_term(&mut self, term: u64) -> u64 {
        use crate::message::{MAX_TERM, MAX_TERM_JUMP};
        match self.rng.random_range(0..20) {
            0..2 => 0,
            2..4 => term,
            4..6 => term.saturating_add(1),
            6..9 => term.saturating_add(self.rng.random_range(2..100)),
            9..12 => term.saturating_add(1 << 20),
            // The largest jump a node takes: rarer, as it can leave nodes too far apart
            // for liveness to be promised (see `liveness_promised`).
            12 => term.saturating_add(MAX_TERM_JUMP),
            13..15 => term.saturating_add(MAX_TERM_JUMP + 1),
            15..17 => MAX_TERM - self.rng.random_range(0..3),
            17 => MAX_TERM + 1,
            _ => u64::MAX,
        }
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

    fn fault_duration(&mut self) -> Duration {
        self.config
            .election_timeout
            .mul_f64(self.rng.random_range(0.25..10.0))
    }

    fn inject_fault(&mut self) {
        let n = self.nodes.len();
        let s = &self.swarm;
        let kinds: Vec<u8> = [
            (s.partitions, 0),
            (s.one_way, 1),
            (s.holds, 2),
            (s.crashes, 3),
            (s.pauses, 4),
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
            0 => {
                // Symmetric partition: a random side against the rest.
                let side: BTreeSet<usize> = (0..n).filter(|_| self.rng.random_bool(0.5)).collect();
                let links: Vec<_> = (0..n)
                    .flat_map(|a| (0..n).map(move |b| (a, b)))
                    .filter(|(a, b)| side.contains(a) != side.contains(b))
                    .collect();
                self.cut(links);
            }
            1 => {
                // One-way: some node stops hearing some others, or stops being heard.
                let node = self.random_node();
                let inbound = self.rng.random_bool(0.5);
                let links: Vec<_> = (0..n)
                    .filter(|&o| o != node && self.rng.random_bool(0.6))
                    .map(|o| if inbound { (o, node) } else { (node, o) })
                    .collect();
                self.cut(links);
            }
            2 => {
                let (a, b) = (self.random_node(), self.random_node());
                if a != b {
                    self.network.hold((a, b));
                    self.record(Step::Hold { link: (a, b) });
                    let after = self.fault_duration();
                    self.schedule(after, Action::Release((a, b)));
                }
            }
            3 => {
                let node = self.random_node();
                self.schedule(Duration::ZERO, Action::Crash(node));
            }
            _ => {
                let node = self.random_node();
                self.schedule(Duration::ZERO, Action::Pause(node));
                let after = self.fault_duration();
                self.schedule(after, Action::Resume(node));
            }
        }
    }

    fn cut(&mut self, links: Vec<(usize, usize)>) {
        if links.is_empty() {
            return;
        }
        self.network.block(&links);
        self.record(Step::Cut {
            links: links.clone(),
        });
        let after = self.fault_duration();
        self.schedule(after, Action::Mend(links));
    }

    fn heal(&mut self) -> Check {
        self.record(Step::Heal);
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

    /// Whether the cluster is promised to elect again after healing (README, "Hostile
    /// terms"): always without hostile input; after it, when no two nodes' terms are so far
    /// apart that the next elections could carry them past `MAX_TERM_JUMP`, where nodes
    /// refuse each other's terms.
    fn liveness_promised(&self) -> bool {
        if self.swarm.hostile_every.is_none() {
            return true;
        }
        let terms = self.nodes.iter().map(|n| {
            n.machine
                .as_ref()
                .map_or(n.durable.term, |m| m.term().max(n.durable.term))
        });
        let (low, high) = terms.fold((u64::MAX, 0), |(lo, hi), t| (lo.min(t), hi.max(t)));
        high - low <= crate::message::MAX_TERM_JUMP / 2
    }

    /// After healing: one leader known by all within 10 x the maximum election timeout, then
    /// no term change for 20 x. Returns the report once the run is over.
    fn check_liveness(&mut self) -> Result<Option<SimReport>, String> {
        let agreed = self.agreed_leader();
        match self.phase {
            Phase::Chaos => Ok(None),
            Phase::Electing { settled, deadline } => {
                if let Some((leader, term)) = agreed.filter(|_| self.now >= settled) {
                    self.record(Step::Stable { leader, term });
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
    fn agreed_leader(&self) -> Option<(usize, u64)> {
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
