//! Hostile peers: messages a peer could send but an honest one never would (any term, huge
//! jumps, `u64::MAX`, TimeoutNow from a non-leader, grants never asked for, replays).

use rand::RngExt;

use almost_raft_core::message::{Body, Envelope};

use crate::Simulation;
use crate::checker::{Before, Check};
use crate::trace::Entry;

impl Simulation<'_> {
    /// A peer sends what an honest one never would: any term (0, jumps, `MAX_TERM` and
    /// beyond), TimeoutNow from a node that does not lead, grants never asked for, or a
    /// replay of an old message. The machine is handed the message directly, as a sans-IO
    /// user could, so its own checks are what stands in the way.
    pub(crate) fn inject_hostile(&mut self) -> Check {
        let n = self.nodes.len();
        if n < 2 {
            return Ok(());
        }
        if self.rng.random_bool(0.25) && !self.sent.is_empty() {
            let (from, to, bytes) = self.sent[self.rng.random_range(0..self.sent.len())].clone();
            self.record(Entry::Replay { from, to });
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
                    Body::Heartbeat { round: 0 },
                    Body::HeartbeatReply { round: 0 },
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
            _ => (self.hostile_term(term), Body::Heartbeat { round: 0 }),
        };
        let msg = Envelope {
            cluster: "sim".into(),
            from: self.nodes[from].id.clone(),
            to: self.nodes[to].id.clone(),
            term,
            body,
        };
        self.record(Entry::Hostile {
            from,
            to,
            term,
            body,
        });
        self.checker.on_hostile(term);
        if body == Body::TimeoutNow {
            // A forged handover makes its target campaign past every voter's stickiness, in
            // the next term: no lease survives that without authentication.
            self.checker.on_hostile(term.saturating_add(1));
        }
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
        self.handle_ready(to)
    }

    /// Terms a hostile peer likes: stale, equal, one up, far up, at and beyond the limits.
    pub(crate) fn hostile_term(&mut self, term: u64) -> u64 {
        use almost_raft_core::message::{MAX_TERM, MAX_TERM_JUMP};
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
}
