//! The election state machine: Raft's election without a log, sans-IO.
//!
//! The machine has no clock, no threads and no I/O, and draws randomness only from the seed it
//! is given, so the same inputs always give the same outputs. A driver feeds it messages
//! ([`Machine::step`]), the passing of time ([`Machine::handle_timeout`], due at
//! [`Machine::next_deadline`]) and commands, then takes a [`Ready`] and must, in this order:
//! 1. save `ready.hard_state` durably, then call [`Machine::persisted`];
//! 2. send `ready.messages`;
//! 3. deliver `ready.events`.
//!
//! Time is a [`Duration`] since any origin the driver likes, as long as it never goes back.

/// Whether the test build switched the known bug `$bug` on for this machine (see `bugs`);
/// `false`, and so compiled away with the branch it guards, in every other build.
macro_rules! bug {
    ($machine:expr, $bug:ident) => {{
        #[cfg(feature = "bug-injection")]
        let on = $machine.bugs.contains(&crate::bugs::Bug::$bug);
        #[cfg(not(feature = "bug-injection"))]
        let on = false;
        on
    }};
}

mod announce;
mod election;
mod evidence;
mod lease;
mod peers;
mod quiet;

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

#[cfg(feature = "bug-injection")]
use crate::bugs::Bug;
use crate::codec::DecodeError;
use crate::config::Config;
use crate::error::Error;
use crate::id::{NodeId, validate_id};
use crate::message::{Body, Envelope, MAX_TERM};
use crate::storage::HardState;

/// A node's part in the election.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Follower,
    /// Asking for pre-votes, without having bumped its term (thesis §9.6).
    PreCandidate,
    Candidate,
    Leader,
}

impl Role {
    /// The role's name in every binding: "follower", "pre_candidate", "candidate", "leader".
    pub fn name(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre_candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

/// What the application is told.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    /// The leader this node knows changed; `term` is the fencing token and never goes down.
    LeaderChanged {
        leader: Option<NodeId>,
        term: u64,
    },
    RoleChanged {
        role: Role,
        term: u64,
    },
    /// This node gained or lost the leader lease of `term` ([`Machine::holds_lease`]). A lease
    /// is lost when it runs out ([`Machine::next_deadline`] is due then, so the driver learns
    /// of it even when no message arrives), when the node steps down, and before it hands over.
    LeaseChanged {
        held: bool,
        term: u64,
    },
    /// The node takes no further part: it was removed from its own peer set, or its driver
    /// stopped it ([`Machine::stop`]). A [`Event::LeaderChanged`] with no leader precedes it
    /// when a leader was known.
    Stopped,
}

/// The output of the machine since the last [`Machine::ready`]. Persist, then send, then deliver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ready {
    /// Must be saved durably before any of `messages` is sent.
    pub hard_state: Option<HardState>,
    pub messages: Vec<Envelope>,
    pub events: Vec<Event>,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none() && self.messages.is_empty() && self.events.is_empty()
    }
}

/// A snapshot of what a node knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub voted_for: Option<NodeId>,
    pub peers: Vec<NodeId>,
    /// How long ago the leader was last heard from (zero on the leader itself).
    pub since_leader_heard: Option<Duration>,
    /// How much of the leader lease is left: `Some` only on a leader holding one.
    pub lease_remaining: Option<Duration>,
    /// How many more nodes must be known before this node may campaign (`min_nodes`).
    pub waiting_for_nodes: usize,
    pub stopped: bool,
    /// Messages refused because they were not signed under the node's keyring (counted by
    /// the driver that decodes them; always 0 from a bare machine).
    pub unauthenticated: u64,
}

/// What a node knows of one peer. Check-quorum and handover ask different questions, so they
/// keep different records.
#[derive(Debug, Clone, Copy, Default)]
struct Peer {
    /// For check-quorum: when the peer last spoke in our term, or when it was added (a
    /// newcomer gets one election timeout to answer before it counts against the leader).
    active_at: Option<Duration>,
    /// When the peer really last spoke, and in which term: a handover goes only to a peer
    /// heard from in the current term.
    heard: Option<(u64, Duration)>,
    /// The latest heartbeat round of this leader's term the peer answered (the lease).
    acked_round: u64,
    /// When the host sent the latest host heartbeat the peer's host acknowledged for this
    /// quiet group in this leader's term (the lease, `quiet`).
    host_acked_sent: Option<Duration>,
}

/// The election state machine of one node.
#[derive(Debug, Clone)]
pub struct Machine {
    id: NodeId,
    config: Config,
    /// 32 bytes: a host keeps one machine per group (a ChaCha generator would be 304).
    rng: Xoshiro256PlusPlus,

    term: u64,
    voted_for: Option<NodeId>,
    /// What the driver last confirmed as saved: a candidate's own vote counts only once here.
    durable: HardState,
    term_dirty: bool,
    vote_dirty: bool,

    role: Role,
    leader: Option<NodeId>,
    /// Every known peer, with what this node heard from it.
    peers: peers::Peers,
    /// The (pre-)votes received in the current campaign, by voter: granted or refused.
    votes: BTreeMap<NodeId, bool>,
    /// The term a pre-candidate asked pre-votes for.
    pre_vote_term: u64,
    /// Grants counted twice; only the `GrantsCountedWithoutVoterId` bug makes this non-zero.
    duplicate_grants: usize,
    leader_heard_at: Option<Duration>,
    /// Vote requests are refused until then (leader stickiness, thesis §4.2.3 and §6.4.1): one
    /// election timeout after the last heartbeat.
    sticky_until: Duration,
    /// When this life of the node began, and whether it resumed a saved term: then it refuses
    /// votes for one election timeout after.
    started_at: Duration,
    restarted: bool,
    /// Whose lease this node's acknowledgements count for, until when (`evidence`).
    barrier: Option<evidence::AckBarrier>,
    /// A campaign on death evidence: when it starts, and in which term the evidence came.
    evidence_campaign: Option<(Duration, u64)>,
    /// Pre-vote requests refused since the last heartbeat because this node stood behind its
    /// leader, by candidate: answered again if evidence says the leader is dead.
    refused_pre_votes: BTreeMap<NodeId, Envelope>,
    lease: lease::Lease,
    election_deadline: Duration,
    heartbeat_deadline: Duration,
    stopped: bool,

    announced_leader: (Option<NodeId>, u64),
    announced_role: Role,
    announced_lease: bool,
    messages: Vec<Envelope>,
    events: Vec<Event>,
    #[cfg(feature = "bug-injection")]
    bugs: Vec<Bug>,
}

impl Machine {
    /// A follower with no peers, resuming from `hard_state` (the default for a new node).
    /// `seed` drives its randomized timeouts; give every node a different one.
    pub fn new(
        id: impl Into<NodeId>,
        config: Config,
        hard_state: HardState,
        seed: u64,
        now: Duration,
    ) -> Result<Self, Error> {
        let id = id.into();
        validate_id(&id)?;
        config.validate()?;
        let mut machine = Machine {
            id,
            config,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            term: hard_state.term,
            voted_for: hard_state.voted_for.clone(),
            restarted: hard_state.term > 0,
            durable: hard_state,
            term_dirty: false,
            vote_dirty: false,
            role: Role::Follower,
            leader: None,
            peers: peers::Peers::default(),
            votes: BTreeMap::new(),
            pre_vote_term: 0,
            duplicate_grants: 0,
            leader_heard_at: None,
            sticky_until: now,
            started_at: now,
            barrier: None,
            evidence_campaign: None,
            refused_pre_votes: BTreeMap::new(),
            lease: lease::Lease::default(),
            election_deadline: now,
            heartbeat_deadline: now,
            stopped: false,
            announced_leader: (None, 0),
            announced_role: Role::Follower,
            announced_lease: false,
            messages: Vec::new(),
            events: Vec::new(),
            #[cfg(feature = "bug-injection")]
            bugs: Vec::new(),
        };
        machine.announced_leader.1 = machine.term;
        machine.reset_election_timer(now);
        Ok(machine)
    }

    /// Gives the machine a known bug, for proving that the simulator catches it.
    #[cfg(feature = "bug-injection")]
    pub fn inject_bug(&mut self, bug: Bug) {
        self.bugs.push(bug);
    }

    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn term(&self) -> u64 {
        self.term
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }
    pub fn voted_for(&self) -> Option<&str> {
        self.voted_for.as_deref()
    }
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }
    pub fn peers(&self) -> impl Iterator<Item = &str> {
        self.peers.keys().map(String::as_str)
    }
    /// The term and vote as they are now (which may not be saved yet).
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            voted_for: self.voted_for.clone(),
        }
    }

    pub fn status(&self, now: Duration) -> Status {
        let since_leader_heard = match self.role {
            Role::Leader => Some(Duration::ZERO),
            _ => self.leader_heard_at.map(|at| now.saturating_sub(at)),
        };
        Status {
            id: self.id.clone(),
            role: self.role,
            term: self.term,
            leader: self.leader.clone(),
            voted_for: self.voted_for.clone(),
            peers: self.peers.keys().cloned().collect(),
            since_leader_heard,
            lease_remaining: self
                .lease_until()
                .filter(|until| now < *until)
                .map(|until| until - now),
            waiting_for_nodes: self.config.min_nodes.saturating_sub(self.voter_count()),
            stopped: self.stopped,
            unauthenticated: 0,
        }
    }

    /// When [`Machine::handle_timeout`] is next due; `None` once stopped.
    pub fn next_deadline(&self) -> Option<Duration> {
        if self.stopped {
            return None;
        }
        Some(match self.role {
            // Check-quorum is checked at every heartbeat tick; the lease ends when it ends.
            Role::Leader => match self.lease_until() {
                Some(until) if self.announced_lease => until.min(self.heartbeat_deadline),
                _ => self.heartbeat_deadline,
            },
            _ => match self.evidence_deadline() {
                Some(at) => at.min(self.election_deadline),
                None => self.election_deadline,
            },
        })
    }

    /// Takes everything produced since the last call. See the module docs for what to do with it.
    pub fn ready(&mut self) -> Ready {
        let hard_state = self.take_hard_state();
        Ready {
            hard_state,
            messages: std::mem::take(&mut self.messages),
            events: std::mem::take(&mut self.events),
        }
    }

    /// Whether [`Machine::ready`] has something to hand out.
    pub fn has_ready(&self) -> bool {
        self.term_dirty || self.vote_dirty || !self.messages.is_empty() || !self.events.is_empty()
    }

    /// Tells the machine that `state` is now durable. A candidate's own vote counts from here.
    pub fn persisted(&mut self, now: Duration, state: &HardState) {
        self.durable = state.clone();
        if self.role == Role::Candidate {
            self.tally(now);
        }
        self.announce(now);
    }

    /// Handles one message from a peer.
    pub fn step(&mut self, now: Duration, msg: Envelope) -> Result<(), Error> {
        self.check_running()?;
        if msg.term > MAX_TERM && !bug!(self, TermOverflowUnchecked) {
            return Err(Error::Decode(DecodeError::TermTooLarge(msg.term)));
        }
        if msg.cluster != self.config.cluster {
            return Err(Error::WrongCluster {
                expected: self.config.cluster.clone(),
                got: msg.cluster,
            });
        }
        if msg.to != self.id {
            return Err(Error::WrongRecipient {
                me: self.id.clone(),
                to: msg.to,
            });
        }
        if !self.peers.contains_key(&msg.from) {
            return Err(Error::UnknownPeer(msg.from));
        }
        let (from, term) = (msg.from.clone(), msg.term);
        self.step_known_peer(now, msg);
        // Check-quorum counts a peer as heard only when it speaks in our current term: stale
        // messages and pre-votes (a term ahead) say nothing about following this leader.
        if term == self.term
            && let Some(peer) = self.peers.get_mut(&from)
        {
            peer.active_at = Some(now);
            peer.heard = Some((term, now));
        }
        self.announce(now);
        Ok(())
    }

    /// Lets time pass: campaigns, heartbeats and the leader's quorum check happen here.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.stopped {
            return;
        }
        self.on_timeout(now);
        self.announce(now);
    }

    /// Adds a voter. Adding a known peer again does nothing.
    pub fn add_peer(&mut self, now: Duration, id: &str) -> Result<(), Error> {
        self.check_running()?;
        validate_id(id)?;
        if id == self.id {
            return Err(Error::SelfAsPeer);
        }
        if self.peers.contains_key(id) {
            return Ok(());
        }
        if let Some(max) = self.config.max_nodes
            && self.voter_count() >= max
        {
            return Err(Error::TooManyNodes { max });
        }
        // A new peer counts as recently heard, as in etcd: a leader must not lose its quorum
        // check before the newcomer had an election timeout to answer.
        let peer = Peer {
            active_at: Some(now),
            heard: None,
            acked_round: 0,
            host_acked_sent: None,
        };
        self.peers.insert(id.to_owned(), peer);
        if self.role == Role::Leader {
            let round = self.lease.round;
            self.send(id, self.term, Body::Heartbeat { round });
        }
        Ok(())
    }

    /// Removes a voter; removing an unknown peer does nothing. Removing this node itself stops
    /// it: it takes no further part and emits [`Event::Stopped`].
    pub fn remove_peer(&mut self, now: Duration, id: &str) -> Result<(), Error> {
        self.check_running()?;
        validate_id(id)?;
        if id == self.id {
            self.halt();
            self.announce(now);
            self.events.push(Event::Stopped);
            return Ok(());
        }
        if self.peers.remove(id).is_none() {
            return Ok(());
        }
        self.votes.remove(id);
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
            self.leader_heard_at = None;
        }
        self.tally(now);
        self.announce(now);
        Ok(())
    }

    /// Asks the leader to hand over to `to`, or else to the peer heard from most recently in
    /// the current term (never to a peer that has not answered in this term: it may be dead).
    /// Returns the chosen peer; the handover completes when it wins the election it starts at
    /// once. Fails with [`Error::NoPeers`] when no peer has answered in this term.
    pub fn transfer_leadership(
        &mut self,
        now: Duration,
        to: Option<&str>,
    ) -> Result<NodeId, Error> {
        self.check_running()?;
        if let Some(to) = to {
            validate_id(to)?;
        }
        if self.role != Role::Leader {
            return Err(Error::NotLeader {
                leader: self.leader.clone(),
            });
        }
        let target = match to {
            Some(to) if to == self.id => return Ok(self.id.clone()),
            Some(to) if self.peers.contains_key(to) => to.to_owned(),
            Some(to) => return Err(Error::UnknownPeer(to.to_owned())),
            None => self.most_recently_heard_peer().ok_or(Error::NoPeers)?,
        };
        tracing::info!(node = %self.id, term = self.term, to = %target, "transferring leadership");
        // The target campaigns past every voter's stickiness: the lease ends first.
        self.forfeit_lease();
        self.announce(now);
        self.send(&target, self.term, Body::TimeoutNow);
        Ok(target)
    }

    /// Stops the node for good, as a driver must when a save fails: it drops what it had not
    /// handed out, will save and send nothing more, and its last events say it is a follower
    /// that knows no leader, in the last term confirmed saved ([`Machine::persisted`]), then
    /// [`Event::Stopped`]. Does nothing on a stopped node.
    pub fn stop(&mut self, now: Duration) {
        if self.stopped {
            return;
        }
        let _ = now;
        self.halt();
        self.messages.clear();
        self.term_dirty = false;
        self.vote_dirty = false;
        self.announce_stopped();
    }

    /// Takes no further part: no role, no leader, no deadlines.
    fn halt(&mut self) {
        self.stopped = true;
        if !bug!(self, StoppedNodeKeepsLeader) {
            self.role = Role::Follower;
            self.leader = None;
            self.leader_heard_at = None;
            self.clear_votes();
        }
    }

    /// A leader steps down to follower in its term; anything else is unchanged.
    pub fn step_down(&mut self, now: Duration) -> Result<(), Error> {
        self.check_running()?;
        if self.role == Role::Leader {
            self.become_follower(now, self.term, None);
            self.announce(now);
        }
        Ok(())
    }

    fn check_running(&self) -> Result<(), Error> {
        if self.stopped {
            Err(Error::Stopped)
        } else {
            Ok(())
        }
    }

    fn voter_count(&self) -> usize {
        self.peers.len() + 1
    }

    fn quorum(&self) -> usize {
        self.voter_count() / 2 + 1
    }

    /// The peer heard from most recently in the current term, if any was.
    fn most_recently_heard_peer(&self) -> Option<NodeId> {
        self.peers
            .iter()
            .filter_map(|(id, peer)| match peer.heard {
                Some((term, at)) if term == self.term => Some((at, id)),
                _ => None,
            })
            .max()
            .map(|(_, id)| id.clone())
    }

    fn send(&mut self, to: &str, term: u64, body: Body) {
        self.messages.push(Envelope {
            cluster: self.config.cluster.clone(),
            from: self.id.clone(),
            to: to.to_owned(),
            term,
            body,
        });
    }

    fn broadcast(&mut self, term: u64, body: Body) {
        let peers: Vec<NodeId> = self.peers.keys().cloned().collect();
        for peer in peers {
            self.send(&peer, term, body);
        }
    }

    /// A fresh timeout from `[T, 2T)`, drawn for every election and every heartbeat reset.
    fn reset_election_timer(&mut self, now: Duration) {
        let base = self.config.election_timeout;
        let jitter = self.rng.random_range(0..base.as_nanos() as u64);
        self.election_deadline = now + base + Duration::from_nanos(jitter);
    }

    fn take_hard_state(&mut self) -> Option<HardState> {
        if !self.term_dirty && !self.vote_dirty {
            return None;
        }
        let mut state = self.hard_state();
        if bug!(self, VoteNotPersisted) && state.voted_for.as_deref() != Some(&self.id) {
            state.voted_for = None;
        }
        if bug!(self, TermAndVoteSavedSeparately) && self.term_dirty && self.vote_dirty {
            // The term goes out first, with the messages; the vote follows in the next Ready.
            state.voted_for = None;
            self.term_dirty = false;
            return Some(state);
        }
        self.term_dirty = false;
        self.vote_dirty = false;
        Some(state)
    }
}
