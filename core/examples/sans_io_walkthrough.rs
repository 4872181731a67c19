//! A three-node cluster in virtual time: it elects a leader, the leader crashes, a new one
//! takes over, the old one restarts from its saved state and follows, then leadership is
//! handed over gracefully. Run with
//! `cargo run --release -p almost-raft --example sans_io_walkthrough`.
//!
//! This drives the sans-IO machine directly with a tiny in-memory network (1 ms per message),
//! which is exactly what a runtime does with real sockets and real time.

use std::collections::BTreeMap;
use std::time::Duration;

use almost_raft_core::{Config, Envelope, Event, HardState, Machine, decode, encode};

const IDS: [&str; 3] = ["n1", "n2", "n3"];
const LATENCY: Duration = Duration::from_millis(1);

struct Cluster {
    now: Duration,
    running: BTreeMap<String, Machine>,
    saved: BTreeMap<String, HardState>,
    in_flight: Vec<(Duration, Vec<u8>)>,
    seed: u64,
    /// When a node last announced itself leader.
    elected_at: Duration,
}

impl Cluster {
    fn start(&mut self, id: &str) {
        self.seed += 1;
        let state = self.saved.get(id).cloned().unwrap_or_default();
        println!(
            "{:>8.3}s  {id} starts at term {}",
            self.now.as_secs_f64(),
            state.term
        );
        let mut machine =
            Machine::new(id, Config::fast_lan(), state, self.seed, self.now).expect("valid config");
        for peer in IDS.iter().filter(|p| **p != id) {
            machine.add_peer(self.now, peer).expect("valid peer");
        }
        self.running.insert(id.to_owned(), machine);
    }

    fn crash(&mut self, id: &str) {
        println!("{:>8.3}s  {id} crashes", self.now.as_secs_f64());
        self.running.remove(id);
    }

    fn leader(&self) -> Option<String> {
        self.running
            .values()
            .find(|m| m.leader() == Some(m.id()))
            .map(|m| m.id().to_owned())
    }

    /// Saves, sends and reports what a node produced, as a runtime would.
    fn drain(&mut self, id: &str) {
        let Some(machine) = self.running.get_mut(id) else {
            return;
        };
        while machine.has_ready() {
            let ready = machine.ready();
            if let Some(state) = ready.hard_state {
                self.saved.insert(id.to_owned(), state.clone()); // "fsync"
                machine.persisted(self.now, &state);
            }
            for msg in &ready.messages {
                self.in_flight
                    .push((self.now + LATENCY, encode(msg).expect("valid ids")));
            }
            for event in ready.events {
                if let Event::LeaderChanged { leader, term } = event {
                    if leader.as_deref() == Some(id) {
                        self.elected_at = self.now;
                    }
                    let who = leader.unwrap_or_else(|| "nobody".into());
                    println!(
                        "{:>8.3}s  {id} sees leader {who} in term {term}",
                        self.now.as_secs_f64()
                    );
                }
            }
        }
    }

    fn run_for(&mut self, span: Duration) {
        let end = self.now + span;
        loop {
            let next_timer = self
                .running
                .values()
                .filter_map(Machine::next_deadline)
                .min();
            let next_msg = self.in_flight.iter().map(|(at, _)| *at).min();
            let Some(next) = next_timer
                .into_iter()
                .chain(next_msg)
                .min()
                .filter(|t| *t <= end)
            else {
                break;
            };
            self.now = next;
            let due: Vec<_> = self
                .in_flight
                .iter()
                .filter(|(at, _)| *at <= next)
                .map(|(_, b)| b.clone())
                .collect();
            self.in_flight.retain(|(at, _)| *at > next);
            for bytes in due {
                let msg: Envelope = decode(&bytes).expect("valid message");
                if let Some(machine) = self.running.get_mut(&msg.to) {
                    let to = msg.to.clone();
                    machine.step(self.now, msg).expect("known peer");
                    self.drain(&to);
                }
            }
            let ids: Vec<String> = self.running.keys().cloned().collect();
            for id in ids {
                let machine = self.running.get_mut(&id).expect("running");
                if machine.next_deadline().is_some_and(|d| d <= self.now) {
                    machine.handle_timeout(self.now);
                    self.drain(&id);
                }
            }
        }
        self.now = end;
    }
}

fn main() {
    let mut c = Cluster {
        now: Duration::ZERO,
        running: BTreeMap::new(),
        saved: BTreeMap::new(),
        in_flight: Vec::new(),
        seed: 0,
        elected_at: Duration::ZERO,
    };
    println!(
        "A 3-node cluster, election timeout 150 ms (drawn from [150, 300) ms), heartbeat 50 ms, 1 ms links.\n"
    );
    for id in IDS {
        c.start(id);
    }
    c.run_for(Duration::from_secs(1));
    let first = c.leader().expect("a leader within a second");

    println!("\n-- the leader crashes --");
    c.crash(&first);
    let crashed_at = c.now;
    c.run_for(Duration::from_secs(1));
    let second = c.leader().expect("a new leader");
    println!(
        "   {second} leads {:?} after the crash (virtual time)",
        c.elected_at - crashed_at
    );

    println!("\n-- {first} restarts from its saved term and vote --");
    c.start(&first);
    c.run_for(Duration::from_secs(1));

    println!("\n-- {second} hands leadership to {first} --");
    let now = c.now;
    let machine = c.running.get_mut(&second).expect("leader runs");
    machine
        .transfer_leadership(now, Some(&first))
        .expect("leader can transfer");
    c.drain(&second);
    c.run_for(Duration::from_millis(500));
    println!(
        "\nFinal leader: {}",
        c.leader().unwrap_or_else(|| "none".into())
    );
    for m in c.running.values() {
        println!("  {} term {} role {:?}", m.id(), m.term(), m.role());
    }
}
