//! A small deterministic test network after etcd-io/raft's `network` (raft_test.go): machines
//! keyed by id, one virtual clock, instant delivery, links that can be cut. Delivery plays the
//! driver: it saves each hard state (`durable`), calls `persisted`, and only then sends.
//! etcd's `MsgHup` is [`Network::fire`]: time jumps to that node's next deadline and only its
//! timer runs (so a leader sends no heartbeats meanwhile); [`Network::run_for`] runs every
//! node's timers in time order.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::mem::{Discriminant, discriminant};
use std::time::Duration;

use almost_raft_core::{Body, Config, Envelope, Error, Event, HardState, Machine, Role};

/// The election timeout `T` of the tests; timeouts are drawn from `[T, 2T)`.
pub const T: Duration = Duration::from_millis(100);
/// etcd's tick: etcd tests use 10 ticks per election timeout and a heartbeat every tick.
pub const TICK: Duration = Duration::from_millis(10);

/// etcd's test defaults: no pre-vote, no check-quorum, any cluster size allowed.
pub fn config() -> Config {
    config_with(false, false)
}
pub fn config_with(pre_vote: bool, check_quorum: bool) -> Config {
    let mut c = Config::default();
    (c.election_timeout, c.heartbeat_interval, c.min_nodes) = (T, TICK, 1);
    (c.pre_vote, c.check_quorum) = (pre_vote, check_quorum);
    c
}

/// Ids "1".."n", as in etcd's `idsBySize`.
pub fn ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| i.to_string()).collect()
}
/// A distinct, fixed seed per id (test ids are numbers).
pub fn seed(id: &str) -> u64 {
    id.parse().expect("numeric id")
}

/// A machine that knows `peers` (itself is skipped), created at time zero.
pub fn machine(id: &str, config: Config, state: HardState, peers: &[String]) -> Machine {
    let mut m = Machine::new(id, config, state, seed(id), Duration::ZERO).unwrap();
    for p in peers.iter().filter(|p| *p != id) {
        m.add_peer(Duration::ZERO, p).unwrap();
    }
    m
}

pub fn msg(from: &str, to: &str, term: u64, body: Body) -> Envelope {
    Envelope {
        cluster: String::new(),
        from: from.into(),
        to: to.into(),
        term,
        body,
    }
}

/// Plays the driver for one machine: persists every hard state, returns what it sent and said.
pub fn drain(m: &mut Machine, now: Duration) -> (Vec<Envelope>, Vec<Event>) {
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    while m.has_ready() {
        let ready = m.ready();
        if let Some(hs) = &ready.hard_state {
            m.persisted(now, hs);
        }
        sent.extend(ready.messages);
        events.extend(ready.events);
    }
    (sent, events)
}

/// Lets the machine's next timer fire; returns the time it fired at.
pub fn fire(m: &mut Machine) -> Duration {
    let at = m.next_deadline().unwrap();
    m.handle_timeout(at);
    at
}

#[derive(Default)]
pub struct Network {
    pub now: Duration,
    nodes: BTreeMap<String, Machine>,
    /// What each node last saved.
    pub durable: BTreeMap<String, HardState>,
    /// Every event of every node, in order.
    pub events: BTreeMap<String, Vec<Event>>,
    /// Every message sent (whether or not it was dropped), in order.
    pub sent: Vec<Envelope>,
    /// Messages a node refused, with its error.
    pub refused: Vec<(Envelope, Error)>,
    dropped: BTreeSet<(String, String)>,
    ignored: Vec<Discriminant<Body>>,
}

impl Network {
    /// `n` nodes "1".."n" that all know each other.
    pub fn new(n: usize, config: Config) -> Self {
        let all = ids(n);
        let new = |id: &String| machine(id, config.clone(), HardState::default(), &all);
        Self::from_machines(all.iter().map(new))
    }
    pub fn from_machines(machines: impl IntoIterator<Item = Machine>) -> Self {
        let mut nw = Network::default();
        machines.into_iter().for_each(|m| nw.insert(m));
        nw
    }
    fn insert(&mut self, m: Machine) {
        self.durable.insert(m.id().to_owned(), m.hard_state());
        self.nodes.insert(m.id().to_owned(), m);
    }
    pub fn node(&self, id: &str) -> &Machine {
        &self.nodes[id]
    }
    pub fn node_mut(&mut self, id: &str) -> &mut Machine {
        self.nodes.get_mut(id).unwrap()
    }
    pub fn role(&self, id: &str) -> Role {
        self.node(id).role()
    }
    pub fn term(&self, id: &str) -> u64 {
        self.node(id).term()
    }
    pub fn leader(&self, id: &str) -> Option<&str> {
        self.node(id).leader()
    }
    /// Replaces a node by etcd's `nopStepper`: it stays a peer, but swallows every message.
    pub fn black_hole(&mut self, id: &str) {
        self.nodes.remove(id);
    }
    /// Restarts a node from what it saved, with the same peers and `config` (which may differ,
    /// as in a rolling upgrade).
    pub fn restart(&mut self, id: &str, config: Config) {
        let (now, state) = (self.now, self.durable[id].clone());
        let peers: Vec<String> = self.node(id).peers().map(String::from).collect();
        let mut m = Machine::new(id, config, state, seed(id).rotate_left(1), now).unwrap();
        peers.iter().for_each(|p| m.add_peer(now, p).unwrap());
        self.insert(m);
    }
    /// Drops messages from `from` to `to` (one direction).
    pub fn drop_link(&mut self, from: &str, to: &str) {
        self.dropped.insert((from.into(), to.into()));
    }
    pub fn cut(&mut self, a: &str, b: &str) {
        self.drop_link(a, b);
        self.drop_link(b, a);
    }
    pub fn isolate(&mut self, id: &str) {
        let others: Vec<String> = self.nodes.keys().filter(|o| *o != id).cloned().collect();
        others.iter().for_each(|o| self.cut(id, o));
    }
    /// Drops every message of this kind (the fields of `body` do not matter).
    pub fn ignore(&mut self, body: Body) {
        self.ignored.push(discriminant(&body));
    }
    /// Heals every link and stops ignoring message kinds.
    pub fn recover(&mut self) {
        self.dropped.clear();
        self.ignored.clear();
    }
    /// etcd's `MsgHup`: time jumps to the node's next deadline (if later) and its timer fires.
    pub fn fire(&mut self, id: &str) {
        self.fire_together(&[id]);
    }
    /// Fires several nodes' timers at the same instant, before any message is delivered.
    pub fn fire_together(&mut self, ids: &[&str]) {
        let deadlines = ids.iter().map(|id| self.node(id).next_deadline().unwrap());
        self.now = deadlines.fold(self.now, Duration::max);
        let now = self.now;
        ids.iter()
            .for_each(|id| self.node_mut(id).handle_timeout(now));
        self.deliver();
    }
    /// Runs the leader's own timers until it has sent a round of heartbeats (etcd's `MsgBeat`).
    pub fn heartbeat(&mut self, leader: &str) {
        let beat = |m: &Envelope| m.from == leader && matches!(m.body, Body::Heartbeat { .. });
        let before = self.sent.len();
        while !self.sent[before..].iter().any(beat) {
            assert_eq!(self.role(leader), Role::Leader, "{leader} is not leader");
            self.fire(leader);
        }
    }
    /// Runs every node's timers in time order for `d`.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until_or(self.now + d, |_| false);
    }
    /// Runs timers in time order until `stop` holds (checked after each one) or `end`.
    pub fn run_until_or(&mut self, end: Duration, stop: impl Fn(&Network) -> bool) -> bool {
        while !stop(self) {
            let deadline = |m: &Machine| Some((m.next_deadline()?, m.id().to_owned()));
            let next = self.nodes.values().filter_map(deadline).min();
            let Some((_, id)) = next.filter(|(at, _)| *at <= end) else {
                self.now = self.now.max(end);
                return false;
            };
            self.fire(&id);
        }
        true
    }
    /// Asks `leader` to hand over to `to`, then delivers.
    pub fn transfer(&mut self, leader: &str, to: Option<&str>) -> Result<String, Error> {
        let now = self.now;
        let result = self.node_mut(leader).transfer_leadership(now, to);
        self.deliver();
        result
    }

    /// Persists and delivers until no node has anything more to say; `refused` keeps errors.
    pub fn deliver(&mut self) {
        let mut queue = VecDeque::new();
        let ids: Vec<String> = self.nodes.keys().cloned().collect();
        ids.iter().for_each(|id| self.flush(id, &mut queue));
        while let Some(m) = queue.pop_front() {
            let to = m.to.clone();
            let Some(node) = self.nodes.get_mut(&to) else {
                continue; // a black hole
            };
            if let Err(e) = node.step(self.now, m.clone()) {
                self.refused.push((m, e));
            }
            self.flush(&to, &mut queue);
        }
    }
    /// The driver's loop for one node: save, then `persisted`, then send; events are kept.
    fn flush(&mut self, id: &str, queue: &mut VecDeque<Envelope>) {
        let node = self.nodes.get_mut(id).unwrap();
        let (sent, events) = drain(node, self.now);
        self.durable.insert(id.to_owned(), node.hard_state()); // what `drain` saved last
        self.events.entry(id.to_owned()).or_default().extend(events);
        for m in sent {
            let dropped = self.dropped.contains(&(m.from.clone(), m.to.clone()))
                || self.ignored.contains(&discriminant(&m.body));
            if !dropped {
                queue.push_back(m.clone());
            }
            self.sent.push(m);
        }
    }

    /// The `(leader, term)` of every `LeaderChanged` event `id` emitted.
    pub fn leader_changes(&self, id: &str) -> Vec<(Option<String>, u64)> {
        let events = self.events.get(id).into_iter().flatten();
        let change = |e: &Event| match e {
            Event::LeaderChanged { leader, term } => Some((leader.clone(), *term)),
            _ => None,
        };
        events.filter_map(change).collect()
    }
}
