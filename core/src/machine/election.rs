//! The election rules: how each role reacts to messages and to time. Section numbers refer to
//! the Raft paper (§5) and Ongaro's thesis (§3.10, §6.2, §9.6).

use std::time::Duration;

use super::{Machine, Role};
use crate::id::NodeId;
use crate::message::{Body, Envelope, MAX_TERM, MAX_TERM_JUMP};

impl Machine {
    pub(super) fn step_known_peer(&mut self, now: Duration, msg: Envelope) {
        if msg.term > self.term {
            if let Some(why) = self.refuses_higher_term(now, &msg) {
                tracing::debug!(node = %self.id, from = %msg.from, term = msg.term, kind = ?msg.body, "higher term ignored: {why}");
                if msg.body == Body::PreVote && self.refuses_votes(now, &msg) {
                    self.refused_pre_vote(&msg); // asked again if the leader turns out dead
                }
                return;
            }
            let keeps_term = match msg.body {
                // A pre-vote, or a grant of one, carries a term nobody has moved to yet.
                Body::PreVote | Body::PreVoteReply { granted: true } => true,
                Body::VoteReply { .. } => bug!(self, HigherTermInVoteReplyIgnored),
                _ => false,
            };
            if !keeps_term {
                // §5.1: a higher term makes any node a follower of that term.
                self.become_follower(now, msg.term, None);
            }
        } else if msg.term < self.term {
            // §5.1: never act on a stale term; answer requests so the sender learns ours.
            self.reply_to_stale(&msg);
            return;
        }

        match msg.body {
            Body::PreVote | Body::Vote { .. } => self.handle_vote_request(now, &msg),
            Body::PreVoteReply { granted } => {
                let counts = if granted {
                    msg.term == self.pre_vote_term
                } else {
                    msg.term == self.term
                };
                if self.role == Role::PreCandidate && counts {
                    self.record_vote(now, &msg.from, granted);
                }
            }
            Body::VoteReply { granted } => {
                if self.role == Role::Candidate && msg.term == self.term {
                    self.record_vote(now, &msg.from, granted);
                }
            }
            Body::Heartbeat { round } => self.handle_heartbeat(now, &msg.from, round),
            // `step` notes that the peer is reachable; the round may extend the lease.
            Body::HeartbeatReply { round } => self.heartbeat_acknowledged(&msg.from, round),
            Body::TimeoutNow => {
                // Only the leader this node follows (or the candidate it voted for, which may
                // have won without a heartbeat reaching us yet) may hand over to it.
                let from_leader = self.leader.as_deref() == Some(msg.from.as_str())
                    || self.voted_for.as_deref() == Some(msg.from.as_str());
                if !from_leader {
                    tracing::debug!(node = %self.id, from = %msg.from, "TimeoutNow from a node that does not lead: ignored");
                } else if self.role != Role::Leader {
                    tracing::info!(node = %self.id, term = self.term, from = %msg.from, "leadership handed over: campaigning now");
                    self.campaign(now, true);
                }
            }
        }
    }

    pub(super) fn on_timeout(&mut self, now: Duration) {
        if self.role != Role::Leader {
            self.on_evidence_turn(now);
            if now >= self.election_deadline {
                self.campaign(now, false);
            }
            return;
        }
        if now >= self.heartbeat_deadline {
            // Check-quorum at every heartbeat tick: a leader that last heard a majority at `h`
            // steps down at the first tick after `h + T`, so within T + one heartbeat interval.
            if self.config.check_quorum && !self.quorum_active(now) {
                tracing::warn!(node = %self.id, term = self.term, "no majority heard within the election timeout: stepping down");
                self.become_follower(now, self.term, None);
                return;
            }
            let round = self.next_heartbeat_round(now);
            self.broadcast(self.term, Body::Heartbeat { round });
            self.heartbeat_deadline = now + self.config.heartbeat_interval;
        }
    }

    /// Why a message with a term above ours is ignored without adopting it, if it is (see
    /// README, "Hostile terms"). The rest adopt it, as Raft §5.1 says.
    fn refuses_higher_term(&self, now: Duration, msg: &Envelope) -> Option<&'static str> {
        let jump = msg.term - self.term;
        if jump > MAX_TERM_JUMP && !bug!(self, TermOverflowUnchecked) {
            return Some("no honest peer is that far ahead");
        }
        // Leader stickiness (§6.2 / thesis §4.2.3): while a live leader is known, a campaign
        // can only disrupt, unless the leader itself asked for it (TimeoutNow, §3.10).
        if msg.body.is_vote_request() && self.refuses_votes(now, msg) {
            return Some("a live leader is known");
        }
        None
    }

    /// Whether this node refuses the vote request `msg` whatever its term (leader stickiness):
    /// unless the leader asked for the campaign (TimeoutNow), it refuses for one election
    /// timeout after hearing a leader and after its start, whatever it learnt since (a
    /// higher term included): the leader lease counts on it.
    fn refuses_votes(&self, now: Duration, msg: &Envelope) -> bool {
        if matches!(msg.body, Body::Vote { transfer: true }) {
            return false;
        }
        match self.role {
            // Check-quorum makes sure a leader that lost its majority steps down. Without it a
            // leader grants pre-votes, as in etcd: a rejoining node can then depose it
            // (README, promise 4, says so), and it loses its lease as it steps down.
            Role::Leader => self.config.check_quorum,
            // A node that starts may have answered a leader just before it went down (one
            // that never saved a term never answered any: its reply would carry the term).
            _ if self.restarted && now < self.started_at + self.config.election_timeout => {
                !bug!(self, NoVoteWaitAfterRestart)
            }
            _ => now < self.sticky_until,
        }
    }

    fn quorum_active(&self, now: Duration) -> bool {
        let window = self.config.election_timeout;
        let heard = self
            .peers
            .values()
            .filter(|peer| peer.active_at.is_some_and(|at| at + window >= now))
            .count();
        heard + 1 >= self.quorum()
    }

    fn reply_to_stale(&mut self, msg: &Envelope) {
        let reply = match msg.body {
            // Round 0 acknowledges nothing: this node did not follow that leader's round in
            // the leader's present term (it may lead this term again, with the same rounds).
            Body::Heartbeat { .. } => Body::HeartbeatReply { round: 0 },
            Body::PreVote => Body::PreVoteReply { granted: false },
            Body::Vote { .. } => Body::VoteReply { granted: false },
            _ => return,
        };
        self.send(&msg.from, self.term, reply);
    }

    /// §5.2 votes, thesis §9.6 pre-votes. `msg.term >= self.term` here.
    pub(super) fn handle_vote_request(&mut self, now: Duration, msg: &Envelope) {
        let pre = msg.body == Body::PreVote;
        let sticky = self.refuses_votes(now, msg);
        if sticky && pre {
            self.refused_pre_vote(msg); // asked again at once if the leader turns out dead
        }
        let can_vote = !sticky
            && (self.voted_for.as_deref() == Some(msg.from.as_str())
                || (self.voted_for.is_none() && self.leader.is_none())
                || (pre && msg.term > self.term));
        let (reply_term, granted) = if can_vote {
            (msg.term, true)
        } else {
            (self.term, false)
        };
        if granted && !pre {
            if msg.body == (Body::Vote { transfer: true }) {
                self.voted_for_handover(msg.term);
            }
            // One vote per term, first come first served; saved before the reply leaves.
            self.voted_for = Some(msg.from.clone());
            self.vote_dirty |= !bug!(self, VoteNotPersisted);
            self.reset_election_timer(now);
        }
        tracing::debug!(node = %self.id, term = self.term, candidate = %msg.from, pre, granted, "vote request");
        let reply = if pre {
            Body::PreVoteReply { granted }
        } else {
            Body::VoteReply { granted }
        };
        self.send(&msg.from, reply_term, reply);
    }

    fn handle_heartbeat(&mut self, now: Duration, from: &str, round: u64) {
        if self.role == Role::Leader {
            // Two leaders in one term: impossible while voters keep one vote per term.
            tracing::error!(node = %self.id, term = self.term, other = %from, "heartbeat from another leader of my term");
            return;
        }
        self.become_follower(now, self.term, Some(from.to_owned()));
        self.leader_heard_at = Some(now);
        self.refused_pre_votes.clear(); // the leader lives: those refusals stand
        self.sticky_until = self.sticky_until.max(now + self.config.election_timeout);
        // Round 0 acknowledges nothing: this node still stands behind an earlier leader.
        let round = if self.acknowledges_for_lease(now, from) {
            round
        } else {
            0
        };
        self.send(from, self.term, Body::HeartbeatReply { round });
    }

    fn record_vote(&mut self, now: Duration, from: &str, granted: bool) {
        let counted_before = self.votes.insert(from.to_owned(), granted) == Some(true);
        if granted && counted_before && bug!(self, GrantsCountedWithoutVoterId) {
            self.duplicate_grants += 1;
        }
        self.tally(now);
    }

    /// Counts the votes of the current campaign and moves on when a majority has answered.
    pub(super) fn tally(&mut self, now: Duration) {
        let own_vote = match self.role {
            Role::PreCandidate => true,
            // A candidate's own vote counts only once it is saved.
            Role::Candidate => {
                self.durable.term == self.term
                    && self.durable.voted_for.as_deref() == Some(self.id.as_str())
            }
            _ => return,
        };
        let granted = self.votes.values().filter(|g| **g).count()
            + self.duplicate_grants
            + usize::from(own_vote);
        let refused = self.votes.values().filter(|g| !**g).count();
        if granted >= self.quorum() {
            match self.role {
                Role::PreCandidate => self.become_candidate(now, false),
                _ => self.become_leader(now),
            }
        } else if refused >= self.quorum() {
            self.become_follower(now, self.term, None);
        }
    }

    /// Starts an election if enough nodes are known (`min_nodes`); `transfer` skips pre-vote
    /// and voters' stickiness, because the leader itself asked for it.
    pub(super) fn campaign(&mut self, now: Duration, transfer: bool) {
        if self.next_term().is_none() {
            tracing::error!(node = %self.id, term = self.term, "not campaigning: the term is at its limit, MAX_TERM");
            self.reset_election_timer(now);
            return;
        }
        if self.voter_count() < self.config.min_nodes {
            tracing::debug!(node = %self.id, known = self.voter_count(), min_nodes = self.config.min_nodes, "not campaigning: too few nodes");
            self.reset_election_timer(now);
            return;
        }
        if self.config.pre_vote && !transfer {
            self.become_pre_candidate(now);
        } else {
            self.become_candidate(now, transfer);
        }
    }

    pub(super) fn become_follower(&mut self, now: Duration, term: u64, leader: Option<String>) {
        if term > self.term {
            self.enter_term(term, None);
        } else if bug!(self, VoteClearedOnStepDown)
            && matches!(self.role, Role::Candidate | Role::Leader)
        {
            self.voted_for = None;
            self.vote_dirty = true;
        }
        if self.role == Role::Leader {
            tracing::info!(node = %self.id, term = self.term, "stepping down");
        }
        self.role = Role::Follower;
        if leader.is_none() {
            self.leader_heard_at = None;
        }
        self.leader = leader;
        self.clear_votes();
        self.reset_election_timer(now);
    }

    fn become_pre_candidate(&mut self, now: Duration) {
        if bug!(self, PreVoteBumpsTerm) {
            let term = self.next_term().expect("campaign checks the term limit");
            self.enter_term(term, None);
        }
        self.pre_vote_term = if bug!(self, PreVoteBumpsTerm) {
            self.term
        } else {
            self.next_term().expect("campaign checks the term limit")
        };
        tracing::debug!(node = %self.id, term = self.term, "asking for pre-votes");
        self.role = Role::PreCandidate;
        self.leader = None;
        self.leader_heard_at = None;
        self.clear_votes();
        self.reset_election_timer(now);
        self.broadcast(self.pre_vote_term, Body::PreVote);
        self.tally(now);
    }

    fn become_candidate(&mut self, now: Duration, transfer: bool) {
        let term = self.next_term().expect("campaign checks the term limit");
        if transfer {
            self.voted_for_handover(term); // the leader that asked gave up its lease
        }
        self.enter_term(term, Some(self.id.clone()));
        tracing::info!(node = %self.id, term = self.term, transfer, "campaigning");
        self.role = Role::Candidate;
        self.leader = None;
        self.leader_heard_at = None;
        self.clear_votes();
        self.reset_election_timer(now);
        self.broadcast(self.term, Body::Vote { transfer });
        self.tally(now);
    }

    fn become_leader(&mut self, now: Duration) {
        tracing::info!(node = %self.id, term = self.term, "elected leader");
        self.role = Role::Leader;
        self.leader = Some(self.id.clone());
        self.leader_heard_at = None;
        self.clear_votes();
        self.reset_lease();
        self.lease.not_before = self.own_barrier_end();
        let round = self.next_heartbeat_round(now);
        self.broadcast(self.term, Body::Heartbeat { round });
        self.heartbeat_deadline = now + self.config.heartbeat_interval;
    }

    /// Moves to a higher term. Messages of earlier terms still queued are dropped: they
    /// speak for a state that will now never be saved (a driver may have been saving while
    /// they were queued), and no peer needs an old term's message.
    fn enter_term(&mut self, term: u64, vote: Option<NodeId>) {
        self.term = term;
        self.voted_for = vote;
        self.term_dirty = true;
        self.vote_dirty = true;
        self.messages.retain(|m| m.term >= term);
    }

    /// The term a campaign would run in: `None` at [`MAX_TERM`], where terms end.
    fn next_term(&self) -> Option<u64> {
        if bug!(self, TermOverflowUnchecked) {
            return Some(self.term.wrapping_add(1));
        }
        self.term.checked_add(1).filter(|t| *t <= MAX_TERM)
    }

    pub(super) fn clear_votes(&mut self) {
        self.votes.clear();
        self.duplicate_grants = 0;
    }
}
