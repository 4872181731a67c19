//! Death evidence, and the barrier that keeps the lease safe when evidence is acted on.
//!
//! **Evidence.** When a peer's host says the peer's process is gone (its kernel closed the
//! connection and refuses new ones), a follower of that peer need not wait out its election
//! timer: it stops refusing votes for it and asks for pre-votes at once
//! ([`Machine::peer_unreachable`]). Nodes that still hear the leader refuse the pre-vote, so
//! evidence that is false or stale, at a minority, changes no term. Only with pre-vote on:
//! without it a campaign bumps the term, and false evidence would depose a live leader. To
//! keep the survivors from splitting the vote when they learn of the death together, they
//! campaign in the order of their ids, `heartbeat_interval / 10` apart; and a node that
//! refused a survivor's pre-vote because it still stood behind the leader answers it again,
//! granted, when its own evidence arrives, so the first to campaign usually wins at once.
//!
//! **The ack barrier.** The lease counts on every node that acknowledged a leader's round
//! refusing votes for T after it; evidence lifts that refusal. So a node never lets its
//! acknowledgement count towards the lease of a leader other than the one it last
//! acknowledged (replying round 0) until T has passed since that last acknowledgement, nor
//! for T after it restarts. A leader elected on evidence leads at once, but it holds a lease
//! only when every lease of its predecessor must have ended, whether the evidence was true
//! or not. Voting for a handover's target lifts the barrier: the old leader gave up its
//! lease before it asked. Without evidence the barrier changes nothing: a new leader is
//! elected only after its voters' stickiness ran out.

use std::time::Duration;

use super::{Machine, Role};
use crate::error::Error;
use crate::id::NodeId;
use crate::message::Envelope;

/// The leader (and term) whose round this node last acknowledged, and until when that
/// acknowledgement keeps this node from counting towards another leader's lease.
#[derive(Debug, Clone)]
pub(super) struct AckBarrier {
    leader: NodeId,
    term: u64,
    until: Duration,
}

impl Machine {
    /// Tells the machine that `peer`'s process is gone: its host refused a connection to it
    /// (not a timeout: a frozen process or a silent host gives no evidence). A follower of
    /// `peer` campaigns at once (after its turn, see the module docs) instead of waiting for
    /// its election timer. Evidence about any other node, or with pre-vote off, changes
    /// nothing; so does evidence while its campaign is pending. Fails with
    /// [`Error::UnknownPeer`] for an unknown id, and [`Error::Closed`] on a stopped node.
    pub fn peer_unreachable(&mut self, now: Duration, peer: &str) -> Result<(), Error> {
        self.check_running()?;
        if !self.peers.contains_key(peer) {
            return Err(Error::UnknownPeer(peer.to_owned()));
        }
        let follows = self.role == Role::Follower && self.leader.as_deref() == Some(peer);
        let pending = self.evidence_campaign.is_some();
        if !follows || !self.config.pre_vote || pending {
            return Ok(());
        }
        tracing::info!(node = %self.id, term = self.term, leader = %peer, "the leader's process is gone: campaigning without waiting");
        self.sticky_until = now;
        self.evidence_campaign = Some((now + self.evidence_turn(peer), self.term));
        // A survivor that heard of the death first may have asked already: answer it again,
        // now that this node no longer stands behind the dead leader.
        let asked: Vec<Envelope> = std::mem::take(&mut self.refused_pre_votes)
            .into_values()
            .filter(|msg| msg.from != peer)
            .collect();
        for msg in asked {
            if msg.term > self.term {
                self.handle_vote_request(now, &msg);
            }
        }
        Ok(())
    }

    /// How long this node waits before it campaigns on evidence about `dead`: its rank among
    /// the other voters, by id, times a tenth of the heartbeat interval.
    fn evidence_turn(&self, dead: &str) -> Duration {
        let rank = self
            .peers
            .keys()
            .filter(|p| p.as_str() != dead && p.as_str() < self.id.as_str())
            .count();
        self.config.heartbeat_interval / 10 * rank as u32
    }

    /// The evidence campaign, when its turn came: only if the node still has no live
    /// leader in the term the evidence was about (a heartbeat in between cancelled it).
    pub(super) fn on_evidence_turn(&mut self, now: Duration) {
        let Some((at, term)) = self.evidence_campaign else {
            return;
        };
        if at <= now {
            self.evidence_campaign = None;
            let unchanged = term == self.term && self.role == Role::Follower;
            if unchanged && now >= self.sticky_until {
                self.campaign(now, false);
            }
        }
    }

    /// Whether this node's reply to a heartbeat from `leader` of the current term may count
    /// towards that leader's lease; if so, it now stands behind that leader for T.
    pub(super) fn acknowledges_for_lease(&mut self, now: Duration, leader: &str) -> bool {
        let t = self.config.election_timeout;
        if self.restarted && now < self.started_at + t && !bug!(self, NoVoteWaitAfterRestart) {
            return false;
        }
        if let Some(b) = &self.barrier {
            let other = b.leader != leader || b.term != self.term;
            if other && now < b.until && !bug!(self, NoAckBarrier) {
                return false;
            }
        }
        self.barrier = Some(AckBarrier {
            leader: leader.to_owned(),
            term: self.term,
            until: now + t,
        });
        true
    }

    /// A vote granted to a handover's target (term `term`): the leader of the term before
    /// gave up its lease before it asked, so this node's barrier for it is lifted.
    pub(super) fn voted_for_handover(&mut self, term: u64) {
        if self.barrier.as_ref().is_some_and(|b| b.term + 1 == term) {
            self.barrier = None;
        }
    }

    /// Remembers a pre-vote request refused because this node stands behind its leader.
    pub(super) fn refused_pre_vote(&mut self, msg: &Envelope) {
        self.refused_pre_votes.insert(msg.from.clone(), msg.clone());
    }

    /// When a leader elected now may count its own rounds towards its lease: after its own
    /// barrier, like any voter's (it may have acknowledged the leader it replaces).
    pub(super) fn own_barrier_end(&self) -> Duration {
        let restart = if self.restarted && !bug!(self, NoVoteWaitAfterRestart) {
            self.started_at + self.config.election_timeout
        } else {
            Duration::ZERO
        };
        let barrier = match &self.barrier {
            Some(b)
                if (b.leader != self.id || b.term != self.term) && !bug!(self, NoAckBarrier) =>
            {
                b.until
            }
            _ => Duration::ZERO,
        };
        restart.max(barrier)
    }

    /// The next instant the evidence path needs the machine's attention, if any.
    pub(super) fn evidence_deadline(&self) -> Option<Duration> {
        self.evidence_campaign.map(|(at, _)| at)
    }
}
