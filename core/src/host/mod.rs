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
mod pair;
pub mod storage;
mod timers;
pub mod wire;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use crate::auth::{AuthError, Keyring};
use crate::config::Config;
use crate::error::Error;
use crate::id::{NodeId, validate_id};
use crate::machine::{Event, Machine, Role, Status};
use crate::message::Envelope;
use crate::storage::HardState;
use pair::{HostAck, Pair};
use timers::Timers;
use wire::{Datagram, Item};

pub use storage::{FileHostStorage, HostState, HostStorage, MemHostStorage};

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
    id: GroupId,
    machine: Machine,
    /// The pair index of each other voter.
    voters: Vec<u16>,
    preferred: Preferred,
    quiet: Quiet,
    leading: bool,
    timer: timers::Slot,
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

    groups: Vec<Option<Group>>,
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
        })
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
            .map(|g| g.id.clone())
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
        let mut machine = Machine::new(self.id.clone(), config, state, self.group_seed(group), now)?;
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
        self.groups[slot as usize] = Some(Group {
            id: group.to_owned(),
            machine,
            voters: others,
            preferred,
            quiet: Quiet::Active,
            leading: false,
            timer: timers::Slot::default(),
        });
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
        let id = g.id.clone();
        let voters = g.voters.len();
        if g.leading {
            self.stats.leading -= 1;
        }
        self.events.extend(events.into_iter().map(|e| (id.clone(), e)));
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
            self.events.extend(ready.events.into_iter().map(|e| (g.id.clone(), e)));
            self.timers.cancel(&mut g.timer);
        }
        self.stopped = true;
    }

    /// When [`Host::handle_timeout`] is next due.
    pub fn next_deadline(&self) -> Duration {
        self.timers.next().map_or(self.next_tick, |at| at.min(self.next_tick))
    }

    /// Lets time pass: the pairs' heartbeats, leader placement, and every group timer due.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.stopped {
            return;
        }
        if now >= self.next_tick {
            self.tick(now);
            self.next_tick = now + self.config.heartbeat_interval;
        }
        while let Some((slot, generation, at)) = self.timers.pop_due(now) {
            let Some(g) = self.groups.get_mut(slot as usize).and_then(Option::as_mut) else {
                continue;
            };
            if !g.timer.claim(generation, at) {
                continue;
            }
            g.machine.handle_timeout(now);
            self.maybe_go_quiet(slot, now);
            self.after(slot, now);
        }
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
            let header = (self.config.cluster.as_str(), self.id.as_str(), pair_id.as_str(), self.incarnation);
            let seq = &mut self.seq;
            for bytes in wire::encode_datagrams(header, &items, || { *seq += 1; *seq }, self.keyring.as_ref()) {
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

    // --- groups -------------------------------------------------------------------------

    fn check_running(&self) -> Result<(), Error> {
        if self.stopped { Err(Error::Closed) } else { Ok(()) }
    }

    fn group_seed(&self, group: &str) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.seed, group).hash(&mut h);
        h.finish()
    }

    fn slot(&self, group: &str) -> Result<u32, Error> {
        self.index
            .get(group)
            .copied()
            .ok_or_else(|| Error::UnknownGroup(group.to_owned()))
    }

    fn group(&self, slot: u32) -> &Group {
        self.groups[slot as usize].as_ref().expect("a live slot")
    }

    fn group_mut(&mut self, slot: u32) -> &mut Group {
        self.groups[slot as usize].as_mut().expect("a live slot")
    }

    fn live_slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.is_some())
            .map(|(i, _)| i as u32)
    }

    fn pair_of(&mut self, host: &str) -> u16 {
        if let Some(&p) = self.pair_index.get(host) {
            return p;
        }
        let p = self.pairs.len() as u16;
        self.pairs.push(Pair::new(host.to_owned()));
        self.pair_index.insert(host.to_owned(), p);
        p
    }

    /// Brings a quiet group's machine up to date with what the pairs' heartbeats stood for.
    fn touch(&mut self, slot: u32) {
        let g = self.groups[slot as usize].as_mut().expect("a live slot");
        match &g.quiet {
            Quiet::Active => {}
            Quiet::Leading { towards, .. } => {
                for &(p, added) in towards {
                    let pair = &self.pairs[p as usize];
                    if let Some(ack) = pair.last_ack.filter(|a| a.version >= added) {
                        g.machine.acked_via_host(&pair.id, ack.sent_at, ack.heard_at);
                    }
                }
            }
            &Quiet::Following { leader, term } => {
                let pair = &self.pairs[leader as usize];
                if let Some(heard) = pair.last_heard {
                    if !g.machine.heard_leader_via_host(&pair.id, term, heard) {
                        self.follower_leaves(slot);
                    }
                }
            }
        }
    }

    /// After anything happened to a group: collect its output, end its quiet if it no
    /// longer holds, count leaders, and set its timer.
    fn after(&mut self, slot: u32, now: Duration) {
        let g = self.groups[slot as usize].as_mut().expect("a live slot");
        let ready = g.machine.ready();
        if let Some(state) = ready.hard_state {
            self.hard_states.push((g.id.clone(), state));
        }
        for msg in ready.messages {
            let Some(&p) = self.pair_index.get(&msg.to) else {
                continue;
            };
            self.pairs[p as usize].outbox.push(Item::Group {
                group: msg.cluster,
                term: msg.term,
                body: msg.body,
            });
        }
        let id = &g.id;
        self.events.extend(ready.events.into_iter().map(|e| (id.clone(), e)));
        let leads = g.machine.role() == Role::Leader;
        if leads != g.leading {
            g.leading = leads;
            if leads {
                self.stats.leading += 1;
            } else {
                self.stats.leading -= 1;
            }
        }
        match g.quiet {
            Quiet::Leading { term, .. } if !leads || g.machine.term() != term => {
                self.end_quiet(slot, now);
            }
            Quiet::Following { leader, term } => {
                if !g.machine.follows(&self.pairs[leader as usize].id, term) {
                    self.follower_leaves(slot);
                }
            }
            _ => {}
        }
        let g = self.groups[slot as usize].as_mut().expect("a live slot");
        if matches!(g.quiet, Quiet::Active) {
            let due = g.machine.next_deadline();
            self.timers.schedule(slot, &mut g.timer, due);
        }
    }

    /// A leader group after its heartbeat tick: quiet, if every voter whose host answers
    /// the pair's heartbeats follows it, and they are a majority.
    fn maybe_go_quiet(&mut self, slot: u32, _now: Duration) {
        let g = self.groups[slot as usize].as_ref().expect("a live slot");
        if g.machine.role() != Role::Leader || !matches!(g.quiet, Quiet::Active) || !self.quiet_allowed() {
            return;
        }
        let towards: Vec<u16> = g
            .voters
            .iter()
            .copied()
            .filter(|p| self.pairs[*p as usize].current)
            .collect();
        let ids = towards.iter().map(|p| self.pairs[*p as usize].id.as_str());
        if !g.machine.can_go_quiet(ids) {
            return;
        }
        let (term, group) = (g.machine.term(), g.id.clone());
        let mut added = Vec::with_capacity(towards.len());
        for p in towards {
            let pair = &mut self.pairs[p as usize];
            let version = pair.push_op(|version| Item::Add {
                version,
                group: group.clone(),
                term,
            });
            pair.quiet_to.insert(slot);
            added.push((p, version));
        }
        let g = self.group_mut(slot);
        g.quiet = Quiet::Leading {
            term,
            towards: added,
        };
        self.stats.quiet += 1;
        let g = self.groups[slot as usize].as_mut().expect("a live slot");
        self.timers.cancel(&mut g.timer);
    }

    /// Ends a group's quiet (the caller touched it first): as leader, it leaves every pair's
    /// set; as follower, it is reported to the leader's host. Its timers run again.
    fn end_quiet(&mut self, slot: u32, now: Duration) {
        let g = self.groups[slot as usize].as_mut().expect("a live slot");
        match std::mem::replace(&mut g.quiet, Quiet::Active) {
            Quiet::Active => return,
            Quiet::Leading { towards, .. } => {
                for (p, _) in towards {
                    let pair = &mut self.pairs[p as usize];
                    if pair.quiet_to.remove(&slot) {
                        let group = g.id.clone();
                        pair.push_op(|version| Item::Remove { version, group });
                    }
                }
            }
            Quiet::Following { leader, .. } => {
                let pair = &mut self.pairs[leader as usize];
                pair.quiet_from.remove(&slot);
                pair.exceptions.insert(g.id.clone());
            }
        }
        self.stats.quiet -= 1;
        let due = g.machine.next_deadline();
        self.timers.schedule(slot, &mut g.timer, due);
        let _ = now;
    }

    /// A quiet follower that no longer follows: reported as an exception.
    fn follower_leaves(&mut self, slot: u32) {
        let g = self.groups[slot as usize].as_mut().expect("a live slot");
        if let Quiet::Following { leader, .. } = g.quiet {
            g.quiet = Quiet::Active;
            let pair = &mut self.pairs[leader as usize];
            pair.quiet_from.remove(&slot);
            pair.exceptions.insert(g.id.clone());
            self.stats.quiet -= 1;
            let due = g.machine.next_deadline();
            self.timers.schedule(slot, &mut g.timer, due);
        }
    }

    /// Gives up every group this host follows quietly through pair `p`: each is brought up
    /// to date with the last heartbeat that counted and runs its own timer again.
    /// Acks then ask the leader's host to start its set afresh.
    fn drop_quiet_from(&mut self, p: u16, _now: Duration) {
        let slots: Vec<u32> = self.pairs[p as usize].quiet_from.drain().collect();
        let heard = self.pairs[p as usize].last_heard;
        let leader = self.pairs[p as usize].id.clone();
        for slot in slots {
            let g = self.group_mut(slot);
            if let Quiet::Following { term, .. } = g.quiet {
                if let Some(heard) = heard {
                    g.machine.heard_leader_via_host(&leader, term, heard);
                }
                g.quiet = Quiet::Active;
                self.stats.quiet -= 1;
                let g = self.groups[slot as usize].as_mut().expect("a live slot");
                let due = g.machine.next_deadline();
                self.timers.schedule(slot, &mut g.timer, due);
            }
        }
        let pair = &mut self.pairs[p as usize];
        pair.exceptions.clear();
        pair.dropped = true;
    }

    /// Ends the quiet of every group this host leads quietly towards pair `p`.
    fn drop_quiet_to(&mut self, p: u16, now: Duration) {
        let slots: Vec<u32> = self.pairs[p as usize].quiet_to.iter().copied().collect();
        for slot in slots {
            self.touch(slot);
            self.end_quiet(slot, now);
            self.after(slot, now);
        }
    }

    // --- pairs ------------------------------------------------------------------------

    /// A pair whose last counted acknowledgement is older than this (from its heartbeat's
    /// sending) no longer keeps groups quiet: half the lease, so that a group that loses its
    /// majority leaves quiet, and its own timers end its lease, before the lease's end.
    fn stale_after(&self) -> Duration {
        self.config.lease_duration() / 2
    }

    /// Whether groups may go quiet with these timeouts: the pairs' silence must be noticed
    /// (within a heartbeat of `stale_after`) before the lease the last ack gave ends.
    fn quiet_allowed(&self) -> bool {
        let lease_end = self.config.lease_duration().saturating_sub(self.config.lease_margin());
        self.stale_after() + 2 * self.config.heartbeat_interval < lease_end
    }

    /// Refuses replays; notices a restart of the other host.
    fn check_sequence(&mut self, p: u16, d: &Datagram, now: Duration) -> Result<(), Error> {
        let pair = &self.pairs[p as usize];
        match pair.incarnation {
            Some(inc) if d.incarnation < inc => return Err(Error::Unauthenticated(AuthError::Replayed)),
            Some(inc) if d.incarnation > inc => self.peer_restarted(p, now),
            _ => {}
        }
        let pair = &mut self.pairs[p as usize];
        if pair.incarnation != Some(d.incarnation) {
            pair.incarnation = Some(d.incarnation);
            pair.seen = Default::default();
        }
        if !pair.seen.take(d.seq) {
            return Err(Error::Unauthenticated(AuthError::Replayed));
        }
        Ok(())
    }

    /// The other host started again: both sets between us start afresh.
    fn peer_restarted(&mut self, p: u16, now: Duration) {
        self.drop_quiet_from(p, now);
        self.drop_quiet_to(p, now);
        let pair = &mut self.pairs[p as usize];
        pair.in_version = 0;
        pair.dropped = false;
        pair.last_heard = None;
        pair.alive_at = None;
        pair.restart_set();
        pair.current = false;
    }

    fn apply(&mut self, p: u16, item: Item, now: Duration) {
        match item {
            Item::Reset { version } => {
                if version > self.pairs[p as usize].in_version {
                    self.drop_quiet_from(p, now);
                    let pair = &mut self.pairs[p as usize];
                    pair.in_version = version;
                    pair.dropped = false;
                    pair.last_heard = None;
                }
            }
            Item::Add {
                version,
                group,
                term,
            } => {
                if version != self.pairs[p as usize].in_version + 1 {
                    return;
                }
                self.pairs[p as usize].in_version = version;
                self.follower_add(p, &group, term, now);
            }
            Item::Remove { version, group } => {
                if version != self.pairs[p as usize].in_version + 1 {
                    return;
                }
                let pair = &mut self.pairs[p as usize];
                pair.in_version = version;
                pair.exceptions.remove(&group);
                if let Some(&slot) = self.index.get(&group) {
                    if self.pairs[p as usize].quiet_from.contains(&slot) {
                        self.touch(slot);
                        self.follower_leaves(slot);
                        self.pairs[p as usize].exceptions.remove(&group);
                        self.after(slot, now);
                    }
                }
            }
            Item::Heartbeat {
                round,
                version,
                led,
                share_milli,
            } => {
                let pair = &mut self.pairs[p as usize];
                pair.led = led;
                pair.share_milli = share_milli;
                let matches = !pair.dropped && version == pair.in_version;
                if matches {
                    pair.last_heard = Some(now);
                    pair.alive_at = Some(now);
                }
                let ack = Item::Ack {
                    round,
                    version: pair.in_version,
                    reset: pair.dropped,
                    exceptions: pair.exceptions.iter().cloned().collect(),
                };
                pair.outbox.push(ack);
            }
            Item::Ack {
                round,
                version,
                reset,
                exceptions,
            } => self.on_ack(p, round, version, reset, exceptions, now),
            Item::Group { group, term, body } => {
                let Some(&slot) = self.index.get(&group) else {
                    self.stats.refused_items += 1;
                    return;
                };
                self.touch(slot);
                let msg = Envelope {
                    cluster: group,
                    from: self.pairs[p as usize].id.clone(),
                    to: self.id.clone(),
                    term,
                    body,
                };
                if self.group_mut(slot).machine.step(now, msg).is_err() {
                    self.stats.refused_items += 1;
                }
                self.after(slot, now);
            }
        }
    }

    /// The leader's host added `group` (at `term`) to its quiet set towards us.
    fn follower_add(&mut self, p: u16, group: &str, term: u64, now: Duration) {
        let leader = self.pairs[p as usize].id.clone();
        let follows = self.index.get(group).copied().filter(|slot| {
            let g = self.group(*slot);
            matches!(g.quiet, Quiet::Active) && g.machine.follows(&leader, term)
        });
        let Some(slot) = follows else {
            self.pairs[p as usize].exceptions.insert(group.to_owned());
            return;
        };
        let g = self.group_mut(slot);
        g.quiet = Quiet::Following { leader: p, term };
        self.stats.quiet += 1;
        let pair = &mut self.pairs[p as usize];
        pair.quiet_from.insert(slot);
        pair.alive_at = Some(pair.alive_at.map_or(now, |a| a.max(now)));
        let g = self.groups[slot as usize].as_mut().expect("a live slot");
        self.timers.cancel(&mut g.timer);
    }

    fn on_ack(
        &mut self,
        p: u16,
        round: u64,
        version: u64,
        reset: bool,
        exceptions: Vec<String>,
        now: Duration,
    ) {
        if reset {
            self.drop_quiet_to(p, now);
            self.pairs[p as usize].restart_set();
            self.pairs[p as usize].current = false;
            return;
        }
        // Groups that no longer follow there leave quiet first, with what counted before.
        for group in exceptions {
            if let Some(&slot) = self.index.get(&group) {
                if self.pairs[p as usize].quiet_to.contains(&slot) {
                    self.touch(slot);
                    self.end_quiet(slot, now);
                    self.after(slot, now);
                }
            }
        }
        let pair = &mut self.pairs[p as usize];
        pair.ops_acked(version);
        let Some((sent_at, sent_version)) = pair.sent_round(round) else {
            return;
        };
        if sent_version != version {
            return; // it did not hold the set this heartbeat stood for
        }
        if pair.last_ack.is_none_or(|a| a.sent_at < sent_at) {
            pair.last_ack = Some(HostAck {
                sent_at,
                heard_at: now,
                version,
            });
        }
    }

    /// The pairs' heartbeats, and what their answers (or silence) mean for quiet groups.
    fn tick(&mut self, now: Duration) {
        self.ticks += 1;
        let t = self.config.election_timeout;
        let keep = 2 * t;
        let stale_after = self.stale_after();
        let (led, share) = (self.stats.leading as u32, self.share_milli());
        for p in 0..self.pairs.len() {
            // Leader side: is it still answering?
            // Counted from when the heartbeat was sent: a late ack must not keep groups
            // quiet past the lease it gave them.
            let current = self.pairs[p]
                .last_ack
                .is_some_and(|a| a.sent_at + stale_after >= now);
            let was = std::mem::replace(&mut self.pairs[p].current, current);
            if was && !current {
                self.pair_went_silent(p as u16, now);
            } else if !was && current {
                self.pair_came_back(p as u16, now);
            }
            // Follower side: silent for an election timeout, its set is given up.
            let pair = &self.pairs[p];
            let silent = pair.alive_at.is_none_or(|a| a + t <= now);
            if !pair.quiet_from.is_empty() && silent {
                self.drop_quiet_from(p as u16, now);
            }
            let pair = &mut self.pairs[p];
            let round = pair.next_round(now, keep);
            let ops: Vec<Item> = pair.ops.iter().cloned().collect();
            pair.outbox.extend(ops);
            pair.outbox.push(Item::Heartbeat {
                round,
                version: pair.out_version,
                led,
                share_milli: share,
            });
        }
        if self.ticks % 10 == 0 {
            self.balance(now);
        }
    }

    /// Pair `p` stopped answering: each group quiet towards it stays quiet only if the
    /// pairs still answering make a majority with this host.
    fn pair_went_silent(&mut self, p: u16, now: Duration) {
        let slots: Vec<u32> = self.pairs[p as usize].quiet_to.iter().copied().collect();
        for slot in slots {
            let g = self.group(slot);
            let Quiet::Leading { towards, .. } = &g.quiet else {
                continue;
            };
            let answering = towards
                .iter()
                .filter(|(q, _)| self.pairs[*q as usize].current)
                .count();
            let voters = g.voters.len() + 1;
            if answering + 1 < voters / 2 + 1 {
                self.touch(slot);
                self.end_quiet(slot, now);
                self.after(slot, now);
            }
        }
    }

    /// Pair `p` answers again: the groups this host leads that it votes in but that are
    /// not quiet towards it run their own heartbeats until it follows them again.
    fn pair_came_back(&mut self, p: u16, now: Duration) {
        let slots: Vec<u32> = self
            .live_slots()
            .filter(|slot| {
                let g = self.group(*slot);
                match &g.quiet {
                    Quiet::Leading { towards, .. } => {
                        g.voters.contains(&p) && !towards.iter().any(|(q, _)| *q == p)
                    }
                    _ => false,
                }
            })
            .collect();
        for slot in slots {
            self.touch(slot);
            self.end_quiet(slot, now);
            self.after(slot, now);
        }
    }
}
