//! The leader lease (Raft thesis §6.4.1): while it holds one, no other node can be elected,
//! so at no instant do two nodes hold a lease, as long as clocks drift within the bound.
//!
//! A follower refuses vote requests for one election timeout `T` of its own time after each
//! heartbeat, and after it starts (it may have heard a leader just before it went down). So a
//! heartbeat round that a majority acknowledged, sent at `s`, keeps every majority from
//! electing anyone else until `s + T / (1 + ρ)` of real time; the leader's lease ends at
//! `s + T × (1 − ρ) / (1 + ρ)` of its own clock, which is earlier ([`Config::lease_duration`]).
//! A leader drops its lease before it hands over: the target campaigns past stickiness.
//!
//! [`Config::lease_duration`]: crate::config::Config::lease_duration

use std::collections::VecDeque;
use std::time::Duration;

use super::{Machine, Role};

/// What a leader knows of its lease in its current term.
#[derive(Debug, Clone, Default)]
pub(super) struct Lease {
    /// The last heartbeat round sent in this term (rounds count from 1).
    pub(super) round: u64,
    /// When each round not yet acknowledged by a majority was sent.
    sent: VecDeque<(u64, Duration)>,
    /// The lease ends here, in the machine's time.
    until: Option<Duration>,
    /// Handed over in this term: no lease until the next.
    forfeited: bool,
    /// Rounds sent before this count for nothing: the leader's own ack barrier.
    pub(super) not_before: Duration,
}

impl Machine {
    /// Whether this node holds the lease at `now`: it leads, and no other node can be elected
    /// before the lease ends.
    pub fn holds_lease(&self, now: Duration) -> bool {
        self.lease_until().is_some_and(|until| now < until)
    }

    /// When the lease ends for the application, in the machine's time: `lease_margin` before
    /// its bound ([`Machine::lease_bound`]). `None` when this node holds none (it does not
    /// lead, handed over, or no round of this term was acknowledged by a majority yet).
    pub fn lease_until(&self) -> Option<Duration> {
        self.lease_bound()
            .and_then(|bound| bound.checked_sub(self.config.lease_margin()))
    }

    /// The instant before which no other node can be elected, in the machine's time, as long
    /// as clocks drift within the bound; `None` when this node holds no lease.
    pub fn lease_bound(&self) -> Option<Duration> {
        if self.role != Role::Leader || self.lease.forfeited {
            return None;
        }
        self.lease.until
    }

    /// A new leader starts without a lease: its first acknowledged round gives it one.
    pub(super) fn reset_lease(&mut self) {
        self.lease = Lease::default();
        for peer in self.peers.values_mut() {
            peer.acked_round = 0;
            peer.host_acked_sent = None;
        }
    }

    /// Starts a heartbeat round; returns its number.
    pub(super) fn next_heartbeat_round(&mut self, now: Duration) -> u64 {
        let duration = self.config.lease_duration();
        let lease = &mut self.lease;
        while lease
            .sent
            .front()
            .is_some_and(|(_, at)| *at + duration <= now)
        {
            lease.sent.pop_front(); // its lease would already be over
        }
        lease.round += 1;
        if now >= lease.not_before {
            lease.sent.push_back((lease.round, now));
        }
        self.extend_lease();
        self.lease.round
    }

    /// A peer answered heartbeat round `round` of the current term.
    pub(super) fn heartbeat_acknowledged(&mut self, from: &str, round: u64) {
        if self.role != Role::Leader || round > self.lease.round {
            return; // not a round this leader sent
        }
        if let Some(peer) = self.peers.get_mut(from) {
            peer.acked_round = peer.acked_round.max(round);
        }
        self.extend_lease();
    }

    /// Drops the lease for the rest of the term, before a handover.
    pub(super) fn forfeit_lease(&mut self) {
        if !bug!(self, LeaseKeptOnTransfer) {
            self.lease.forfeited = true;
        }
    }

    /// Extends the lease from the latest round a majority (this node included) acknowledged.
    pub(super) fn extend_lease(&mut self) {
        let mut acked: Vec<u64> = self.peers.values().map(|p| p.acked_round).collect();
        acked.push(self.lease.round); // the leader has every round it sent
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let majority_round = acked[self.quorum() - 1];
        let duration = self.config.lease_duration();
        let lease = &mut self.lease;
        while lease.sent.front().is_some_and(|(r, _)| *r < majority_round) {
            lease.sent.pop_front();
        }
        if let Some(&(round, sent_at)) = lease.sent.front()
            && round == majority_round
        {
            lease.extend_to(sent_at + duration);
        }
    }
}

impl Lease {
    /// Moves the lease's end to `until` if that is later.
    pub(super) fn extend_to(&mut self, until: Duration) {
        self.until = Some(self.until.map_or(until, |u| u.max(until)));
    }
}
