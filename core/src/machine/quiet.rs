//! Quiet groups: heartbeats carried by the host, not by the group (see `crate::host`).
//!
//! A process that hosts many groups sends one heartbeat per pair of hosts, not one per group.
//! While a group is *quiet*, its leader's host stands in for the group's heartbeats and its
//! followers' hosts for their replies. Nothing runs per group meanwhile: the host applies
//! what the group would have heard only when the group is next touched (a message, a command,
//! a status query, the end of quiet), with the two inputs below. Applied lazily, each leaves
//! the machine exactly as the per-group heartbeats it stands for would have, so every rule
//! of the single group (stickiness, check-quorum, the lease and its ack barrier) holds as is.

use std::time::Duration;

use super::{Machine, Role};

impl Machine {
    /// Whether this leader may go quiet: each of `peers` acknowledged the previous heartbeat
    /// round (so each follows it in this term, and would count towards its lease), and they
    /// form a majority with this node. The lease itself is not needed: a leader that gave
    /// its lease up for a handover that did not happen goes quiet without one.
    pub fn can_go_quiet<'a>(&self, peers: impl IntoIterator<Item = &'a str>) -> bool {
        if self.role != Role::Leader || self.lease.round < 2 {
            return false;
        }
        let mut count = 1;
        for id in peers {
            match self.peers.get(id) {
                Some(peer) if peer.acked_round + 1 >= self.lease.round => count += 1,
                _ => return false,
            }
        }
        count > 1 && count >= self.quorum()
    }

    /// Whether this node follows `leader` in `term`, as a quiet group's follower must.
    pub fn follows(&self, leader: &str, term: u64) -> bool {
        self.role == Role::Follower && self.term == term && self.leader.as_deref() == Some(leader)
    }

    /// A follower's host heard its leader's host at `at` (no earlier than any heartbeat
    /// applied before), for this group and term, and acknowledged it: the heartbeat of a
    /// quiet group, applied as if it came then. Returns `false`, applying nothing, when this
    /// node no longer follows that leader in that term, or when its acknowledgement could not
    /// count for the lease (then the group must not stay quiet).
    pub fn heard_leader_via_host(&mut self, leader: &str, term: u64, at: Duration) -> bool {
        if !self.follows(leader, term) {
            return false;
        }
        if self.leader_heard_at.is_some_and(|heard| heard >= at) {
            return true; // a later heartbeat of the group itself was applied already
        }
        if !self.acknowledges_for_lease(at, leader) {
            return false;
        }
        self.leader_heard_at = Some(at);
        self.refused_pre_votes.clear();
        self.sticky_until = self.sticky_until.max(at + self.config.election_timeout);
        self.reset_election_timer(at);
        true
    }

    /// A leader's host learnt that `peer`'s host acknowledged, at `heard_at`, a heartbeat
    /// of the host sent at `sent_at`, while this group was quiet towards it: the reply to a
    /// heartbeat round of this group sent then. Ignored unless this node leads.
    pub fn acked_via_host(&mut self, peer: &str, sent_at: Duration, heard_at: Duration) {
        if self.role != Role::Leader {
            return;
        }
        let term = self.term;
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        p.active_at = Some(p.active_at.map_or(heard_at, |a| a.max(heard_at)));
        p.heard = Some((term, heard_at));
        p.host_acked_sent = Some(p.host_acked_sent.map_or(sent_at, |s| s.max(sent_at)));
        self.extend_lease_from_host();
    }

    /// Extends the lease from the latest host heartbeat a majority acknowledged (the
    /// leader has every heartbeat it sent), as [`Machine::extend_lease`] does from rounds.
    fn extend_lease_from_host(&mut self) {
        let mut sent: Vec<Duration> = self
            .peers
            .values()
            .filter_map(|p| p.host_acked_sent)
            .collect();
        let needed = self.quorum() - 1; // the leader's own
        if sent.len() < needed || needed == 0 {
            return;
        }
        sent.sort_unstable_by(|a, b| b.cmp(a));
        let majority_sent = sent[needed - 1];
        if majority_sent < self.lease.not_before {
            return; // sent before this leader's own ack barrier ended
        }
        self.lease
            .extend_to(majority_sent + self.config.lease_duration());
    }
}
