//! The simulator for hosts of many groups ([`Host`]): the same hostile world as for single
//! nodes (loss, duplication, reordering and delay, partitions also one-way, crashes and
//! restarts from what was saved, slow disks, drifting clocks, replayed and garbage
//! datagrams) and hosts that stop for a while (SIGSTOP, a long GC or VM pause: nothing runs,
//! what arrives waits in a bounded socket buffer, and the clock has jumped on resume), with
//! the invariants checked per group after every step:
//! - one leader per group and term (Raft §5.2, Election Safety);
//! - a host's fencing term for a group never goes down, across restarts too;
//! - never two hosts hold a group's lease at one instant of real time (thesis §6.4.1), as the
//!   application sees it (its lease events);
//!
//! and, after the last fault heals, every group has one leader that all its voters know,
//! and (the point of hosts) every group goes quiet.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::time::Duration;

use almost_raft_core::config::Config;
use almost_raft_core::host::{GroupId, Host};
use almost_raft_core::machine::Event;
use almost_raft_core::storage::HardState;
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::clock::Clock;

mod checks;
mod faults;

/// What to simulate; everything else comes from the seed.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSimConfig {
    pub hosts: usize,
    pub groups: usize,
    /// Voters per group, drawn from the hosts.
    pub voters: usize,
    /// How long faults are injected; then the world heals and must settle.
    pub chaos_time: Duration,
    pub election_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub faults: bool,
    /// Print a line of counts every simulated second (for the example's `--verbose`).
    pub verbose: bool,
    /// Known bugs to give every host (and its groups' machines).
    pub bugs: Vec<almost_raft_core::bugs::Bug>,
}

impl Default for HostSimConfig {
    fn default() -> Self {
        HostSimConfig {
            hosts: 3,
            groups: 1000,
            voters: 3,
            chaos_time: Duration::from_secs(20),
            election_timeout: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(30),
            faults: true,
            verbose: false,
            bugs: Vec::new(),
        }
    }
}

impl HostSimConfig {
    pub fn replay_command(&self, seed: u64) -> String {
        format!(
            "cargo run -p almost-raft-sim --release --example simulate_hosts -- --seed {seed} --hosts {} --groups {} --voters {} --chaos-ms {}{}",
            self.hosts,
            self.groups,
            self.voters,
            self.chaos_time.as_millis(),
            if self.faults { "" } else { " --no-faults" },
        ) + &self
            .bugs
            .iter()
            .map(|b| format!(" --bug {}", b.name()))
            .collect::<String>()
    }
}

/// What a run that held every invariant measured.
#[derive(Debug, Clone, Default)]
pub struct HostSimReport {
    pub steps: u64,
    pub datagrams: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub pauses: u64,
    pub elections_won: u64,
    /// From the last heal to every group led with all voters agreeing.
    pub settle_time: Duration,
    /// Datagrams per second between the hosts at the end, all groups quiet.
    pub idle_datagrams_per_second: f64,
    /// Groups each host leads at the end.
    pub leaders: Vec<usize>,
}

#[derive(Debug)]
pub struct HostViolation {
    pub seed: u64,
    pub config: HostSimConfig,
    pub at: Duration,
    pub what: String,
}

impl fmt::Display for HostViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "host simulation failed: seed {} at {:?}: {}",
            self.seed, self.at, self.what
        )?;
        writeln!(f, "config: {:?}", self.config)?;
        write!(f, "replay: {}", self.config.replay_command(self.seed))
    }
}

impl std::error::Error for HostViolation {}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Deliver { to: usize, bytes: Vec<u8> },
    Timer { host: usize, generation: u64 },
    DiskDone { host: usize },
    Fault,
    Restart { host: usize },
    Resume { host: usize },
    Heal,
}

/// A write in flight: it completes at `done`, then its datagrams leave and its events are
/// delivered.
struct Write {
    done: Duration,
    states: Vec<(GroupId, HardState)>,
    datagrams: Vec<(String, Vec<u8>)>,
    events: Vec<(GroupId, Event)>,
}

/// How many datagrams wait for a stopped host (a 1 MiB socket buffer of ~1,400-byte
/// datagrams); later ones are dropped, as the kernel drops them.
const SOCKET_BUFFER_DATAGRAMS: usize = 750;

struct SimHost {
    host: Option<Host>,
    clock: Clock,
    /// What the disk holds: the last completed write of each group, and the incarnation.
    saved: HashMap<GroupId, HardState>,
    incarnation: u64,
    writing: std::collections::VecDeque<Write>,
    disk_delay: Duration,
    timer_generation: u64,
    /// Stopped (SIGSTOP): no timer, no receive, no completed write is seen until resumed.
    paused: bool,
    /// What arrived while stopped, as a socket buffer holds it: the oldest, up to its size.
    inbox: Vec<Vec<u8>>,
}

struct World {
    seed: u64,
    config: HostSimConfig,
    rng: ChaCha8Rng,
    now: Duration,
    queue: BinaryHeap<Reverse<(Duration, u64, Action)>>,
    seq: u64,
    hosts: Vec<SimHost>,
    ids: Vec<String>,
    groups: Vec<(GroupId, Vec<usize>, Option<usize>)>,
    /// blocked[a][b]: datagrams from a to b are dropped.
    blocked: Vec<Vec<bool>>,
    loss: f64,
    duplicate: f64,
    max_delay_ms: u64,
    captured: Vec<(usize, Vec<u8>)>,
    // Checker.
    leader_of: HashMap<(usize, u64), usize>,
    fencing: HashMap<(usize, usize), u64>,
    lease_holders: HashMap<usize, Vec<(usize, u64)>>,
    group_index: HashMap<GroupId, usize>,
    report: HostSimReport,
    healed_at: Option<Duration>,
    settled: bool,
    /// A violation seen while taking events, reported after the step.
    pending: Option<String>,
    /// A group found not led or not agreed, for the report when the run does not settle.
    unsettled: Option<GroupId>,
}

/// Runs one seeded simulation of hosts.
pub fn run_hosts(seed: u64, config: &HostSimConfig) -> Result<HostSimReport, Box<HostViolation>> {
    World::new(seed, config.clone()).run()
}

impl World {
    fn new(seed: u64, config: HostSimConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let ids: Vec<String> = (0..config.hosts).map(|i| format!("h{i}")).collect();
        let mut groups = Vec::new();
        let mut group_index = HashMap::new();
        for g in 0..config.groups {
            let mut voters: Vec<usize> = (0..config.hosts).collect();
            for i in (1..voters.len()).rev() {
                voters.swap(i, rng.random_range(0..=i));
            }
            voters.truncate(config.voters.min(config.hosts));
            voters.sort_unstable();
            let preferred = (rng.random_range(0..10) == 0).then(|| voters[0]);
            group_index.insert(format!("g{g}"), g);
            groups.push((format!("g{g}"), voters, preferred));
        }
        let n = config.hosts;
        let faults = config.faults;
        let mut world = World {
            seed,
            rng,
            now: Duration::ZERO,
            queue: BinaryHeap::new(),
            seq: 0,
            hosts: Vec::new(),
            ids,
            groups,
            blocked: vec![vec![false; n]; n],
            loss: 0.0,
            duplicate: 0.0,
            max_delay_ms: 2,
            captured: Vec::new(),
            leader_of: HashMap::new(),
            fencing: HashMap::new(),
            lease_holders: HashMap::new(),
            group_index,
            report: HostSimReport::default(),
            healed_at: None,
            settled: false,
            pending: None,
            unsettled: None,
            config,
        };
        if faults {
            world.loss = world.rng.random_range(0.0..0.2);
            world.duplicate = world.rng.random_range(0.0..0.1);
            world.max_delay_ms = world.rng.random_range(1..30);
        }
        for h in 0..n {
            world.hosts.push(SimHost {
                host: None,
                clock: Clock::new(Duration::ZERO, 0),
                saved: HashMap::new(),
                incarnation: 0,
                writing: Default::default(),
                disk_delay: Duration::ZERO,
                timer_generation: 0,
                paused: false,
                inbox: Vec::new(),
            });
            world.start(h);
        }
        if faults {
            world.schedule(Duration::from_millis(500), Action::Fault);
        }
        world.schedule(world.config.chaos_time, Action::Heal);
        world
    }

    fn config_for_groups(&self) -> Config {
        Config {
            cluster: "sim".into(),
            election_timeout: self.config.election_timeout,
            heartbeat_interval: self.config.heartbeat_interval,
            min_nodes: 1,
            ..Config::default()
        }
    }

    /// Starts (or restarts) host `h` from what its disk holds, on a freshly drifting clock.
    fn start(&mut self, h: usize) {
        let drift = if self.config.faults {
            self.rng.random_range(-40_000i64..40_000)
        } else {
            0
        };
        let offset = Duration::from_millis(self.rng.random_range(0..10_000));
        let clock = Clock::new(offset, drift);
        let local = clock.local(self.now);
        let sim = &mut self.hosts[h];
        sim.incarnation += 1;
        sim.clock = clock;
        sim.writing.clear();
        sim.disk_delay = if self.config.faults && self.rng.random_range(0..4) == 0 {
            Duration::from_millis(self.rng.random_range(1..40))
        } else {
            Duration::ZERO
        };
        let incarnation = sim.incarnation;
        let seed = self.rng.next_u64();
        let mut host = Host::new(
            self.ids[h].clone(),
            self.config_for_groups(),
            incarnation,
            seed,
            local,
        )
        .expect("valid host");
        for bug in &self.config.bugs {
            host.inject_bug(*bug);
        }
        let sim = &self.hosts[h];
        for (id, voters, preferred) in &self.groups {
            if !voters.contains(&h) {
                continue;
            }
            let names: Vec<&str> = voters.iter().map(|v| self.ids[*v].as_str()).collect();
            let state = sim.saved.get(id).cloned().unwrap_or_default();
            let preferred = preferred.map(|p| self.ids[p].as_str());
            host.add_group(local, id, &names, preferred, state)
                .expect("valid group");
        }
        self.hosts[h].host = Some(host);
        self.after_host(h);
    }

    fn schedule(&mut self, after: Duration, action: Action) {
        self.seq += 1;
        self.queue
            .push(Reverse((self.now + after, self.seq, action)));
    }

    fn violation(&self, what: String) -> Box<HostViolation> {
        Box::new(HostViolation {
            seed: self.seed,
            config: self.config.clone(),
            at: self.now,
            what,
        })
    }

    fn run(mut self) -> Result<HostSimReport, Box<HostViolation>> {
        let settle_limit = self.config.chaos_time + 80 * self.config.election_timeout;
        let mut idle_from: Option<(Duration, u64, u64)> = None;
        let mut next_print = Duration::ZERO;
        while let Some(Reverse((at, _, action))) = self.queue.pop() {
            self.now = at;
            if self.config.verbose && self.now >= next_print {
                next_print += Duration::from_secs(1);
                self.print_counts();
            }
            self.report.steps += 1;
            self.act(action)?;
            if self.healed_at.is_some() && !self.settled && self.all_led()? {
                self.settled = true;
                self.report.settle_time = self.now - self.healed_at.unwrap_or_default();
            }
            let handovers = self.balance_handovers();
            if idle_from.is_some_and(|(_, _, h)| h != handovers) {
                idle_from = None; // placement still moving: not idle yet
            }
            if self.settled && idle_from.is_none() && self.all_quiet() && self.balanced() {
                idle_from = Some((self.now, self.report.datagrams, handovers));
            }
            if let Some((since, count, _)) = idle_from {
                let window = 10 * self.config.election_timeout;
                if self.now >= since + window {
                    let secs = (self.now - since).as_secs_f64();
                    self.report.idle_datagrams_per_second =
                        (self.report.datagrams - count) as f64 / secs;
                    self.report.leaders = self
                        .hosts
                        .iter()
                        .map(|h| h.host.as_ref().map_or(0, |h| h.stats().leading))
                        .collect();
                    return Ok(self.report);
                }
            }
            if self.now > settle_limit {
                let quiet: usize = self
                    .hosts
                    .iter()
                    .filter_map(|h| h.host.as_ref())
                    .map(|h| h.stats().quiet)
                    .sum();
                let example = self.describe_unsettled();
                return Err(self.violation(format!(
                    "not settled {:?} after the last heal: every group led and agreed: {}, quiet group replicas: {quiet}, balanced: {}; {example}",
                    self.now - self.healed_at.unwrap_or_default(),
                    self.settled,
                    self.balanced()
                )));
            }
        }
        Err(self.violation("the event queue ran dry".into()))
    }

    fn act(&mut self, action: Action) -> Result<(), Box<HostViolation>> {
        match action {
            Action::Deliver { to, bytes } if self.hosts[to].paused => {
                let inbox = &mut self.hosts[to].inbox;
                if inbox.len() < SOCKET_BUFFER_DATAGRAMS {
                    inbox.push(bytes);
                }
            }
            Action::Deliver { to, bytes } => {
                let local = self.hosts[to].clock.local(self.now);
                let Some(host) = self.hosts[to].host.as_mut() else {
                    return Ok(());
                };
                // Replays and garbage are refused.
                if let Err(e) = host.receive(local, &bytes)
                    && self.config.verbose
                    && self.healed_at.is_some()
                {
                    eprintln!("{:?} {} refused a datagram: {e}", self.now, self.ids[to]);
                }
                self.after_host(to);
            }
            Action::Timer {
                host: h,
                generation,
            } => {
                if self.hosts[h].timer_generation != generation || self.hosts[h].paused {
                    return Ok(());
                }
                let local = self.hosts[h].clock.local(self.now);
                let Some(host) = self.hosts[h].host.as_mut() else {
                    return Ok(());
                };
                host.handle_timeout(local);
                self.after_host(h);
            }
            Action::DiskDone { host: h } if self.hosts[h].paused => {}
            Action::DiskDone { host: h } => self.disk_done(h),
            Action::Resume { host } => self.resume(host),
            // The heal may have restarted it already.
            Action::Restart { host } if self.hosts[host].host.is_none() => self.start(host),
            Action::Restart { .. } => {}
            Action::Fault => {
                if self.healed_at.is_none() {
                    self.fault();
                    let next = Duration::from_millis(self.rng.random_range(100..800));
                    self.schedule(next, Action::Fault);
                }
            }
            Action::Heal => {
                self.heal();
                self.healed_at = Some(self.now);
            }
        }
        self.check_after_step()
    }

    /// Takes the host's output: saves go to its disk queue; what depends on them leaves
    /// when they are done.
    fn after_host(&mut self, h: usize) {
        loop {
            let Some(host) = self.hosts[h].host.as_mut() else {
                return;
            };
            let ready = host.ready();
            if ready.is_empty() {
                break;
            }
            let sim = &mut self.hosts[h];
            match (sim.writing.is_empty(), ready.hard_states.is_empty()) {
                (true, true) => {
                    for (to, bytes) in ready.datagrams {
                        self.transmit(h, &to, bytes);
                    }
                    for (group, event) in ready.events {
                        self.on_event(h, &group, event);
                    }
                }
                (true, false) => {
                    let delay = sim.disk_delay;
                    let done = self.now + delay;
                    sim.writing.push_back(Write {
                        done,
                        states: ready.hard_states,
                        datagrams: ready.datagrams,
                        events: ready.events,
                    });
                    if delay.is_zero() {
                        self.disk_done(h);
                    } else {
                        self.schedule(delay, Action::DiskDone { host: h });
                    }
                }
                // A write is in flight: this joins the next one (group commit), which starts
                // when it ends, as a host's storage does.
                (false, _) => {
                    if sim.writing.len() == 1 {
                        sim.writing.push_back(Write {
                            done: Duration::MAX,
                            states: Vec::new(),
                            datagrams: Vec::new(),
                            events: Vec::new(),
                        });
                    }
                    let next = sim.writing.back_mut().expect("two writes");
                    next.states.extend(ready.hard_states);
                    next.datagrams.extend(ready.datagrams);
                    next.events.extend(ready.events);
                }
            }
        }
        self.reschedule(h);
    }

    fn disk_done(&mut self, h: usize) {
        while self.hosts[h]
            .writing
            .front()
            .is_some_and(|w| w.done <= self.now)
        {
            let w = self.hosts[h].writing.pop_front().expect("checked");
            for (group, state) in &w.states {
                self.hosts[h].saved.insert(group.clone(), state.clone());
            }
            let local = self.hosts[h].clock.local(self.now);
            if let Some(host) = self.hosts[h].host.as_mut() {
                host.persisted(local, &w.states);
            }
            for (to, bytes) in w.datagrams {
                self.transmit(h, &to, bytes);
            }
            for (group, event) in w.events {
                self.on_event(h, &group, event);
            }
            // The batch that gathered meanwhile starts now.
            let sim = &mut self.hosts[h];
            if let Some(next) = sim.writing.front_mut() {
                let delay = if next.states.is_empty() {
                    Duration::ZERO
                } else {
                    sim.disk_delay
                };
                next.done = self.now + delay;
                if !delay.is_zero() {
                    self.schedule(delay, Action::DiskDone { host: h });
                }
            }
        }
        self.after_host(h);
    }

    fn transmit(&mut self, from: usize, to: &str, bytes: Vec<u8>) {
        let to = self
            .ids
            .iter()
            .position(|i| i == to)
            .expect("a simulated host");
        self.report.datagrams += 1;
        if self.captured.len() < 64 && self.rng.random_bool(0.01) {
            self.captured.push((to, bytes.clone()));
        }
        if self.blocked[from][to] || self.rng.random_bool(self.loss) {
            return;
        }
        let copies = if self.rng.random_bool(self.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay =
                Duration::from_micros(self.rng.random_range(500..=self.max_delay_ms * 1000));
            self.schedule(
                delay,
                Action::Deliver {
                    to,
                    bytes: bytes.clone(),
                },
            );
        }
    }

    fn reschedule(&mut self, h: usize) {
        let Some(host) = self.hosts[h].host.as_ref() else {
            return;
        };
        let due = self.hosts[h].clock.global(host.next_deadline());
        let sim = &mut self.hosts[h];
        sim.timer_generation += 1;
        let generation = sim.timer_generation;
        let after = due.saturating_sub(self.now);
        self.schedule(
            after,
            Action::Timer {
                host: h,
                generation,
            },
        );
    }
}
