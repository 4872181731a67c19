//! Many election groups in one process: a *host*, sans-IO like the [`Machine`].
//!
//! Each group is a [`Machine`] of its own (its voters are hosts, its node id this host's id,
//! its cluster name the group id), so every rule of a single node holds per group. What the
//! host adds is the cost at rest: a group whose leader holds its lease and whose voters all
//! acknowledged goes *quiet*, and from then on its heartbeats ride on one heartbeat per pair
//! of hosts (see `Machine::heard_leader_via_host`): nothing runs per group until something
//! changes. Each pair keeps, on both sides, the set of groups quiet between them, changed by
//! numbered operations; a heartbeat counts for a quiet group only when both sides held the
//! same set, so an acknowledgement always stands for the group's own. A follower's host
//! that stops hearing the leader's host for an election timeout gives its set up, and those
//! groups' timers run again (a host crash starts their elections together, batched per
//! pair). Everything a host says to another in one instant travels in one datagram
//! (`wire`), and the terms and votes of every group that voted in that instant are saved
//! by one write ([`HostReady::hard_states`]).
//!
//! The driver's loop is the machine's: feed [`Host::receive`], [`Host::handle_timeout`] at
//! [`Host::next_deadline`] and commands, then take [`Host::ready`], save its hard states,
//! call [`Host::persisted`], send its datagrams, deliver its events.

mod balance;
mod groups;
mod pair;
mod pairs;
pub mod storage;
mod timers;
pub mod wire;

use std::collections::HashMap;
use std::time::Duration;

use crate::auth::Keyring;
use crate::config::Config;
use crate::error::Error;
use crate::id::{NodeId, validate_id};
use crate::machine::{Event, Machine, Role, Status};
use crate::storage::HardState;
use pair::Pair;
use timers::Timers;

pub use storage::{FileHostStorage, HostState, HostStorage, MemHostStorage};

/// At most this many groups' election timers are handled per heartbeat interval; the rest
/// wait for a later interval. A host crash makes thousands of groups campaign at once: past
/// what the hosts can process, datagrams are dropped, elections fail and are tried again,
/// and the storm feeds itself. Putting campaigns off never endangers safety.
pub const MAX_CAMPAIGNS_PER_TICK: usize = 500;
/// Fewer campaigns start while this host leads this many groups that are not quiet (they
/// heartbeat by themselves, which is what a group costs).
pub const MAX_ACTIVE_LEADERS: usize = 1000;
/// Campaigns that start per heartbeat interval however many groups this host leads
/// actively: waiting must end. Leaders that cannot go quiet (their followers wait for
/// their own campaigns to end a split vote, say) would otherwise stop every campaign.
pub const MIN_CAMPAIGNS_PER_TICK: usize = 25;

/// A group's id: the same rules as a node id.
pub type GroupId = String;

/// What a host hands out: save every hard state (one write may cover them all), then call
/// [`Host::persisted`], then send the datagrams, then deliver the events in order.
#[derive(Debug, Default)]
pub struct HostReady {
    pub hard_states: Vec<(GroupId, HardState)>,
    pub datagrams: Vec<(NodeId, Vec<u8>)>,
    pub events: Vec<(GroupId, Event)>,
}

impl HostReady {
    pub fn is_empty(&self) -> bool {
        self.hard_states.is_empty() && self.datagrams.is_empty() && self.events.is_empty()
    }
}

/// Counts a host keeps about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStats {
    pub groups: usize,
    pub leading: usize,
    /// Groups whose heartbeats ride on the pairs' (as leader or follower here).
    pub quiet: usize,
    /// Group messages refused: unknown group, or a sender that is not one of its voters.
    pub refused_items: u64,
    pub handovers_for_balance: u64,
    pub datagrams_sent: u64,
    pub datagrams_received: u64,
    /// Group timers put off because the host had started its campaigns for the interval.
    pub campaigns_deferred: u64,
}

/// Where a group's leadership belongs, if anywhere in particular.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Preferred {
    Anywhere,
    Here,
    /// The host of this pair.
    Peer(u16),
}

/// How a group's heartbeats travel.
#[derive(Debug)]
enum Quiet {
    /// On its own: the machine's timers run.
    Active,
    /// This host leads it in `term`; its heartbeats ride on the pairs towards these peers
    /// (pair index, the version of that pair's set that added it).
    Leading { term: u64, towards: Vec<(u16, u64)> },
    /// It follows the host of pair `leader` in `term`, riding on that pair's heartbeat.
    Following { leader: u16, term: u64 },
}

#[derive(Debug)]
struct Group {
    /// Its cluster name is the group's id.
    machine: Machine,
    /// The pair index of each other voter.
    voters: Vec<u16>,
    preferred: Preferred,
    quiet: Quiet,
    leading: bool,
    timer: timers::Slot,
    /// In the queue of campaigns put off by admission.
    waiting: bool,
}

impl Group {
    fn id(&self) -> &str {
        &self.machine.config().cluster
    }
}

/// Many election groups over one transport and one storage. See the module docs.
#[derive(Debug)]
pub struct Host {
    id: NodeId,
    config: Config,
    seed: u64,
    incarnation: u64,
    keyring: Option<Keyring>,
    seq: u64,

    /// Boxed: the vector's spare capacity then costs a pointer per slot, not a group.
    groups: Vec<Option<Box<Group>>>,
    free: Vec<u32>,
    index: HashMap<GroupId, u32>,
    pairs: Vec<Pair>,
    pair_index: HashMap<NodeId, u16>,
    timers: Timers,
    next_tick: Duration,
    ticks: u64,
    preferring: Vec<u32>,
    /// This host's fair share of leaderships, in thousandths: 1/voters for each group.
    share_milli_total: u64,

    hard_states: Vec<(GroupId, HardState)>,
    events: Vec<(GroupId, Event)>,
    stats: HostStats,
    stopped: bool,
    /// Campaigns this host may still start in the current heartbeat interval.
    campaigns_left: usize,
    /// Groups this host leads quietly (the others it leads heartbeat by themselves).
    pub(super) quiet_leading: usize,
    /// Groups whose timer came when no campaign could start, in order.
    pub(super) waiting: std::collections::VecDeque<u32>,
    #[cfg(feature = "bug-injection")]
    bugs: Vec<crate::bugs::Bug>,
}

impl Host {
    /// A host named `id` in the cluster of hosts `config.cluster`; every group it hosts
    /// takes its timeouts and options from `config`. `incarnation` must grow from one start
    /// of the host to the next (a host state file keeps it), so that peers tell a restart
    /// from a replay. `seed` drives every group's randomized timeouts.
    pub fn new(
        id: impl Into<NodeId>,
        config: Config,
        incarnation: u64,
        seed: u64,
        now: Duration,
    ) -> Result<Self, Error> {
        let id = id.into();
        validate_id(&id)?;
        config.validate()?;
        Ok(Host {
            id,
            next_tick: now + config.heartbeat_interval,
            config,
            seed,
            incarnation,
            keyring: None,
            seq: 0,
            groups: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            pairs: Vec::new(),
            pair_index: HashMap::new(),
            timers: Timers::default(),
            ticks: 0,
            preferring: Vec::new(),
            share_milli_total: 0,
            hard_states: Vec::new(),
            events: Vec::new(),
            stats: HostStats::default(),
            stopped: false,
            campaigns_left: MAX_CAMPAIGNS_PER_TICK,
            quiet_leading: 0,
            waiting: std::collections::VecDeque::new(),
            #[cfg(feature = "bug-injection")]
            bugs: Vec::new(),
        })
    }

    /// Gives the host a known bug, for proving that the simulator catches it.
    #[cfg(feature = "bug-injection")]
    pub fn inject_bug(&mut self, bug: crate::bugs::Bug) {
        self.bugs.push(bug);
    }

    /// Whether the test build switched the host bug on; `false` in every other build.
    #[allow(unused_variables)]
    fn has_bug(&self, name: &str) -> bool {
        #[cfg(feature = "bug-injection")]
        return self.bugs.iter().any(|b| b.name() == name);
        #[cfg(not(feature = "bug-injection"))]
        false
    }

    /// Signs every datagram with the keyring and accepts only datagrams it verifies.
    pub fn set_keyring(&mut self, keyring: Option<Keyring>) {
        self.keyring = keyring;
    }

    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }
    /// The groups this host leads now.
    pub fn leading(&self) -> Vec<GroupId> {
        self.groups
            .iter()
            .flatten()
            .filter(|g| g.leading)
            .map(|g| g.id().to_owned())
            .collect()
    }
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }
    pub fn stats(&self) -> HostStats {
        HostStats {
            groups: self.index.len(),
            ..self.stats
        }
    }

    /// The ids of the groups hosted here, in no particular order.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    /// Hosts group `group` here, resuming from `state` (its saved term and vote). `voters`
    /// are the hosts of the group, this one among them; `preferred`, if given, gets the
    /// leadership back whenever it is reachable. Fails with [`Error::GroupExists`] if the
    /// group is hosted already, [`Error::InvalidId`] for a bad id, and
    /// [`Error::UnknownPeer`] when `voters` does not name this host.
    pub fn add_group(
        &mut self,
        now: Duration,
        group: &str,
        voters: &[&str],
        preferred: Option<&str>,
        state: HardState,
    ) -> Result<(), Error> {
        self.check_running()?;
        validate_id(group)?;
        if self.index.contains_key(group) {
            return Err(Error::GroupExists(group.to_owned()));
        }
        if !voters.contains(&self.id.as_str()) {
            return Err(Error::UnknownPeer(self.id.clone()));
        }
        if let Some(p) = preferred.filter(|p| !voters.contains(p)) {
            return Err(Error::UnknownPeer(p.to_owned()));
        }
        let config = Config {
            cluster: group.to_owned(),
            min_nodes: self.config.min_nodes.min(voters.len()),
            ..self.config.clone()
        };
        let mut machine =
            Machine::new(self.id.clone(), config, state, self.group_seed(group), now)?;
        let mut others = Vec::new();
        let me = self.id.clone();
        for voter in voters.iter().filter(|v| **v != me) {
            machine.add_peer(now, voter)?;
            others.push(self.pair_of(voter));
        }
        others.sort_unstable();
        others.dedup();
        let preferred = match preferred {
            None => Preferred::Anywhere,
            Some(p) if p == self.id => Preferred::Here,
            Some(p) => Preferred::Peer(self.pair_of(p)),
        };
        let others_len = others.len();
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.groups.push(None);
                (self.groups.len() - 1) as u32
            }
        };
        self.groups[slot as usize] = Some(Box::new(Group {
            machine,
            voters: others,
            preferred,
            quiet: Quiet::Active,
            leading: false,
            timer: timers::Slot::default(),
            waiting: false,
        }));
        if matches!(preferred, Preferred::Peer(_)) {
            self.preferring.push(slot);
        }
        self.share_milli_total += 1000 / (others_len + 1) as u64;
        self.index.insert(group.to_owned(), slot);
        self.after(slot, now);
        Ok(())
    }

    /// Stops hosting `group`: it takes no further part here ([`Event::Stopped`] follows a
    /// leader change to none if one was known). Fails with [`Error::UnknownGroup`].
    pub fn remove_group(&mut self, now: Duration, group: &str) -> Result<(), Error> {
        self.check_running()?;
        let slot = self.slot(group)?;
        self.touch(slot);
        self.end_quiet(slot, now);
        let g = self.group_mut(slot);
        g.machine.stop(now);
        let events = g.machine.ready().events;
        let id = g.id().to_owned();
        let voters = g.voters.len();
        if g.leading {
            self.stats.leading -= 1;
        }
        self.events
            .extend(events.into_iter().map(|e| (id.to_owned(), e)));
        let mut timer = self.group(slot).timer;
        self.timers.cancel(&mut timer);
        self.groups[slot as usize] = None;
        self.index.remove(group);
        self.preferring.retain(|s| *s != slot);
        self.share_milli_total -= 1000 / (voters + 1) as u64;
        self.free.push(slot);
        Ok(())
    }

    /// What this host knows of `group` now.
    pub fn status(&mut self, now: Duration, group: &str) -> Result<Status, Error> {
        let slot = self.slot(group)?;
        self.touch(slot);
        let status = self.group(slot).machine.status(now);
        self.after(slot, now);
        Ok(status)
    }

    /// Whether `group`'s heartbeats ride on the pairs' here (as its leader or a follower).
    pub fn is_quiet(&self, group: &str) -> Result<bool, Error> {
        let slot = self.slot(group)?;
        Ok(!matches!(self.group(slot).quiet, Quiet::Active))
    }

    /// Whether this host holds the lease of `group` at `now`.
    pub fn holds_lease(&mut self, now: Duration, group: &str) -> Result<bool, Error> {
        let slot = self.slot(group)?;
        self.touch(slot);
        Ok(self.group(slot).machine.holds_lease(now))
    }

    /// Hands the leadership of `group` over, as [`Machine::transfer_leadership`].
    pub fn transfer_leadership(
        &mut self,
        now: Duration,
        group: &str,
        to: Option<&str>,
    ) -> Result<NodeId, Error> {
        self.check_running()?;
        let slot = self.slot(group)?;
        self.touch(slot);
        self.end_quiet(slot, now);
        let result = self.group_mut(slot).machine.transfer_leadership(now, to);
        self.after(slot, now);
        result
    }

    /// Evidence that `host`'s process is gone: every group here that follows it acts on it
    /// as [`Machine::peer_unreachable`] says.
    pub fn peer_unreachable(&mut self, now: Duration, host: &str) -> Result<(), Error> {
        self.check_running()?;
        let Some(&p) = self.pair_index.get(host) else {
            return Err(Error::UnknownPeer(host.to_owned()));
        };
        self.drop_quiet_from(p, now);
        let slots: Vec<u32> = self.live_slots().collect();
        for slot in slots {
            let g = self.group_mut(slot);
            if g.voters.contains(&p) && g.machine.leader() == Some(host) {
                let _ = g.machine.peer_unreachable(now, host);
                self.after(slot, now);
            }
        }
        Ok(())
    }

    /// Stops every group, as a driver must when a save fails: each drops what it had not
    /// handed out and announces a follower that knows no leader, then [`Event::Stopped`].
    /// Nothing more is sent; the groups stay hosted (their status says stopped).
    pub fn stop(&mut self, now: Duration) {
        for p in &mut self.pairs {
            p.outbox.clear();
        }
        self.hard_states.clear();
        let slots: Vec<u32> = self.live_slots().collect();
        for slot in slots {
            let g = self.groups[slot as usize].as_mut().expect("a live slot");
            g.machine.stop(now);
            let ready = g.machine.ready();
            self.events
                .extend(ready.events.into_iter().map(|e| (g.id().to_owned(), e)));
            self.timers.cancel(&mut g.timer);
        }
        self.stopped = true;
    }

    /// When [`Host::handle_timeout`] is next due.
    pub fn next_deadline(&self) -> Duration {
        self.timers
            .next()
            .map_or(self.next_tick, |at| at.min(self.next_tick))
    }

    /// Lets time pass: the pairs' heartbeats, leader placement, and every group timer due.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.stopped {
            return;
        }
        if now >= self.next_tick {
            self.tick(now);
            self.next_tick = now + self.config.heartbeat_interval;
            // Leaders that heartbeat by themselves are what a host pays for per group:
            // new campaigns wait while there are many (they go quiet within a few rounds).
            let active = self.stats.leading.saturating_sub(self.quiet_leading);
            self.campaigns_left = MAX_ACTIVE_LEADERS
                .saturating_sub(active)
                .clamp(MIN_CAMPAIGNS_PER_TICK, MAX_CAMPAIGNS_PER_TICK);
        }
        // Groups put off in earlier intervals go first, in the order they came.
        while self.campaigns_left > 0 {
            let Some(slot) = self.waiting.pop_front() else {
                break;
            };
            let Some(g) = self.groups.get_mut(slot as usize).and_then(Option::as_mut) else {
                continue;
            };
            g.waiting = false;
            if g.machine.next_deadline().is_some_and(|due| due > now) {
                // A leader was heard meanwhile: nothing is due, its timer runs as usual.
                self.after(slot, now);
                continue;
            }
            self.campaigns_left -= 1;
            self.run_timer(slot, now);
        }
        while let Some((slot, generation, at)) = self.timers.pop_due(now) {
            let Some(g) = self.groups.get_mut(slot as usize).and_then(Option::as_mut) else {
                continue;
            };
            if !g.timer.claim(generation, at) {
                continue;
            }
            if g.machine.role() != Role::Leader {
                // A campaign (or the end of one) may be due: at most MAX_CAMPAIGNS_PER_TICK
                // per heartbeat interval; the rest wait, in order, for a later one.
                if self.campaigns_left == 0 {
                    // Once in the queue: its timer comes again each time it is touched.
                    if !std::mem::replace(&mut g.waiting, true) {
                        self.waiting.push_back(slot);
                        self.stats.campaigns_deferred += 1;
                    }
                    continue;
                }
                self.campaigns_left -= 1;
            }
            self.run_timer(slot, now);
        }
    }

    /// A group's timer is due: its machine's time passes.
    fn run_timer(&mut self, slot: u32, now: Duration) {
        {
            let g = self.groups[slot as usize].as_mut().expect("a live slot");
            g.machine.handle_timeout(now);
        }
        self.maybe_go_quiet(slot, now);
        self.after(slot, now);
    }

    /// Handles one datagram from another host. Every item in it is applied; group messages
    /// for an unknown group, or from a host that is not one of its voters, are skipped and
    /// counted ([`HostStats::refused_items`]). Fails, applying nothing, on a malformed,
    /// unauthenticated or replayed datagram, or one from another cluster or for another
    /// host, or from a host no group here names.
    pub fn receive(&mut self, now: Duration, bytes: &[u8]) -> Result<(), Error> {
        if self.stopped {
            return Err(Error::Closed);
        }
        let d = wire::decode_datagram(bytes, self.keyring.as_ref())?;
        if d.cluster != self.config.cluster {
            return Err(Error::WrongCluster {
                expected: self.config.cluster.clone(),
                got: d.cluster,
            });
        }
        if d.to != self.id {
            return Err(Error::WrongRecipient {
                me: self.id.clone(),
                to: d.to,
            });
        }
        let Some(&p) = self.pair_index.get(&d.from) else {
            return Err(Error::UnknownPeer(d.from));
        };
        self.check_sequence(p, &d, now)?;
        self.stats.datagrams_received += 1;
        for item in d.items {
            self.apply(p, item, now);
        }
        Ok(())
    }

    /// Tells the host that these hard states are durable.
    pub fn persisted(&mut self, now: Duration, states: &[(GroupId, HardState)]) {
        for (group, state) in states {
            if let Some(&slot) = self.index.get(group) {
                self.group_mut(slot).machine.persisted(now, state);
                self.after(slot, now);
            }
        }
    }

    /// Takes everything produced since the last call.
    pub fn ready(&mut self) -> HostReady {
        let mut datagrams = Vec::new();
        for p in 0..self.pairs.len() {
            if self.pairs[p].outbox.is_empty() {
                continue;
            }
            let items = std::mem::take(&mut self.pairs[p].outbox);
            let pair_id = self.pairs[p].id.clone();
            let header = (
                self.config.cluster.as_str(),
                self.id.as_str(),
                pair_id.as_str(),
                self.incarnation,
            );
            let seq = &mut self.seq;
            for bytes in wire::encode_datagrams(
                header,
                &items,
                || {
                    *seq += 1;
                    *seq
                },
                self.keyring.as_ref(),
            ) {
                datagrams.push((pair_id.clone(), bytes));
            }
        }
        self.stats.datagrams_sent += datagrams.len() as u64;
        HostReady {
            hard_states: std::mem::take(&mut self.hard_states),
            datagrams,
            events: std::mem::take(&mut self.events),
        }
    }
}
