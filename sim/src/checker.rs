//! The invariants checked after every step of the simulation. Each returns a description of
//! what went wrong; the simulator adds the seed, the config and the replay command.

use std::collections::{BTreeMap, BTreeSet};

use almost_raft_core::machine::{Event, Machine, Role};
use almost_raft_core::message::{Body, Envelope, MAX_TERM_JUMP};
use almost_raft_core::storage::HardState;

/// What a node looked like just before a step.
#[derive(Debug, Clone, Copy)]
pub(super) struct Before {
    pub term: u64,
}

impl Before {
    pub(super) fn of(machine: &Machine) -> Self {
        Before {
            term: machine.term(),
        }
    }
}

#[derive(Default)]
pub(super) struct Checker {
    nodes: Vec<String>,
    check_persist_before_send: bool,
    /// Election Safety: who led each term.
    leader_of_term: BTreeMap<u64, usize>,
    /// One vote per term: whom each node voted for in each term, as seen from outside.
    vote_of: BTreeMap<(usize, u64), String>,
    /// The distinct voters whose grant each candidate was sent, per term.
    grants: BTreeMap<(u64, usize), BTreeSet<usize>>,
    /// The highest term each node has shown the world (sent, saved or announced).
    exposed_term: Vec<u64>,
    /// The term of each node's last leader event: the fencing token.
    fencing_term: Vec<u64>,
    /// The leader each node last announced.
    announced_leader: Vec<Option<String>>,
    /// Terms that hostile messages carried: a node may follow a forged leader there.
    tainted: BTreeSet<u64>,
}

pub(super) type Check = Result<(), String>;

impl Checker {
    pub(super) fn new(nodes: Vec<String>, check_persist_before_send: bool) -> Self {
        let n = nodes.len();
        Checker {
            nodes,
            check_persist_before_send,
            exposed_term: vec![0; n],
            fencing_term: vec![0; n],
            announced_leader: vec![None; n],
            ..Default::default()
        }
    }

    fn index(&self, id: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n == id)
            .expect("simulated ids are known")
    }

    fn quorum(&self) -> usize {
        self.nodes.len() / 2 + 1
    }

    fn record_vote(&mut self, voter: usize, term: u64, candidate: &str) -> Check {
        match self.vote_of.get(&(voter, term)) {
            Some(earlier) if earlier != candidate => Err(format!(
                "{} voted twice in term {term}: for {earlier} and for {candidate}",
                self.nodes[voter]
            )),
            Some(_) => Ok(()),
            None => {
                self.vote_of.insert((voter, term), candidate.to_owned());
                Ok(())
            }
        }
    }

    /// Within one life, a node's term never goes down; a step that raises it must be
    /// explained: adopted from the message (Raft §5.1), or one more to campaign (§5.2).
    pub(super) fn after_step(
        &self,
        node: usize,
        before: Before,
        msg: Option<&Envelope>,
        after: &Machine,
    ) -> Check {
        let name = &self.nodes[node];
        if after.term() < before.term {
            return Err(format!(
                "{name}'s term went down from {} to {}",
                before.term,
                after.term()
            ));
        }
        let seen = msg.map_or(before.term, |m| m.term.max(before.term));
        if let Some(m) = msg {
            // Pre-votes never move a term, a vote request may meet leader stickiness, and no
            // node takes a jump beyond MAX_TERM_JUMP (README, "Hostile terms").
            let may_ignore = matches!(
                m.body,
                Body::PreVote
                    | Body::PreVoteReply { granted: true }
                    | Body::Vote { transfer: false }
            );
            let must_adopt = !may_ignore && m.term.saturating_sub(before.term) <= MAX_TERM_JUMP;
            if must_adopt && after.term() < m.term {
                return Err(format!(
                    "{name} ignored term {} in {:?} from {} (stayed at {}): breaks §5.1",
                    m.term,
                    m.body,
                    m.from,
                    after.term()
                ));
            }
        }
        if after.term() > before.term {
            let campaigned = after.term() == seen.saturating_add(1)
                && matches!(after.role(), Role::Candidate | Role::Leader)
                && after.voted_for() == Some(name.as_str());
            if after.term() != seen && !campaigned {
                return Err(format!(
                    "{name}'s term rose from {} to {} as {:?} without campaigning or seeing that term",
                    before.term,
                    after.term(),
                    after.role()
                ));
            }
        }
        Ok(())
    }

    /// A node saved its hard state durably.
    pub(super) fn on_saved(&mut self, node: usize, state: &HardState) -> Check {
        self.exposed_term[node] = self.exposed_term[node].max(state.term);
        match &state.voted_for {
            Some(candidate) => self.record_vote(node, state.term, candidate),
            None => Ok(()),
        }
    }

    /// A node hands a message to the network; `durable` is what it has saved so far.
    pub(super) fn on_send(&mut self, node: usize, msg: &Envelope, durable: &HardState) -> Check {
        let name = self.nodes[node].clone();
        let needs_saved_vote_for = match msg.body {
            Body::Vote { .. } => Some(name.as_str()),
            Body::VoteReply { granted: true } => Some(msg.to.as_str()),
            _ => None,
        };
        let carries_own_term = !matches!(msg.body, Body::PreVote | Body::PreVoteReply { .. });
        if self.check_persist_before_send {
            if carries_own_term && durable.term < msg.term {
                return Err(format!(
                    "{name} sent {:?} in term {} with only term {} saved",
                    msg.body, msg.term, durable.term
                ));
            }
            if let Some(vote) = needs_saved_vote_for
                && (durable.term != msg.term || durable.voted_for.as_deref() != Some(vote))
            {
                return Err(format!(
                    "{name} sent {:?} for term {} before saving its vote (saved: {durable:?})",
                    msg.body, msg.term
                ));
            }
        }
        if carries_own_term {
            self.exposed_term[node] = self.exposed_term[node].max(msg.term);
        }
        if let Some(candidate) = needs_saved_vote_for {
            self.record_vote(node, msg.term, candidate)?;
        }
        if msg.body == (Body::VoteReply { granted: true }) {
            let candidate = self.index(&msg.to);
            self.grants
                .entry((msg.term, candidate))
                .or_default()
                .insert(node);
        }
        Ok(())
    }

    pub(super) fn on_event(
        &mut self,
        node: usize,
        event: &Event,
        machine: &Machine,
        durable: &HardState,
    ) -> Check {
        let name = self.nodes[node].clone();
        let Event::LeaderChanged { leader, term } = event else {
            return Ok(());
        };
        let term = *term;
        if term < self.fencing_term[node] {
            return Err(format!(
                "{name}'s fencing token went down: leader event for term {term} after term {}",
                self.fencing_term[node]
            ));
        }
        self.fencing_term[node] = term;
        if self.check_persist_before_send && durable.term < term {
            return Err(format!(
                "{name} announced term {term} with only term {} saved",
                durable.term
            ));
        }
        self.exposed_term[node] = self.exposed_term[node].max(term);
        match leader {
            Some(leader) if *leader == name => {
                if machine.role() != Role::Leader {
                    return Err(format!(
                        "{name} announced itself leader as {:?}",
                        machine.role()
                    ));
                }
                if let Some(&other) = self.leader_of_term.get(&term)
                    && other != node
                {
                    return Err(format!(
                        "two leaders in term {term}: {} and {name}",
                        self.nodes[other]
                    ));
                }
                self.leader_of_term.insert(term, node);
                let mut voters = self.grants.get(&(term, node)).cloned().unwrap_or_default();
                if durable.term == term && durable.voted_for.as_deref() == Some(name.as_str()) {
                    voters.insert(node);
                }
                if voters.len() < self.quorum() {
                    let names: Vec<_> = voters.iter().map(|v| self.nodes[*v].as_str()).collect();
                    return Err(format!(
                        "{name} became leader of term {term} with the votes of only {names:?}"
                    ));
                }
            }
            Some(leader) => {
                let won = self.leader_of_term.get(&term) == Some(&self.index(leader));
                if !won && !self.tainted.contains(&term) {
                    return Err(format!(
                        "{name} follows {leader} in term {term}, which {leader} did not win"
                    ));
                }
            }
            None => {}
        }
        self.announced_leader[node] = leader.clone();
        Ok(())
    }

    /// A hostile message carried `term`: a forged heartbeat may make a node follow a leader
    /// that did not win it, which no protocol can tell without authentication.
    pub(super) fn on_hostile(&mut self, term: u64) {
        self.tainted.insert(term);
    }

    /// A stopped node reports no leader: not in its state, and not in its last event.
    pub(super) fn stopped_reports_no_leader(&self, node: usize, machine: &Machine) -> Check {
        if !machine.is_stopped() {
            return Ok(());
        }
        let name = &self.nodes[node];
        if machine.role() == Role::Leader || machine.leader().is_some() {
            return Err(format!(
                "{name} stopped but still says {:?} leads (as {:?})",
                machine.leader(),
                machine.role()
            ));
        }
        if let Some(leader) = &self.announced_leader[node] {
            return Err(format!(
                "{name} stopped, and its last event still names {leader} as leader"
            ));
        }
        Ok(())
    }

    /// A node restarted: its announcements start afresh.
    pub(super) fn on_start(&mut self, node: usize) {
        self.announced_leader[node] = None;
    }

    /// A node restarts from what it saved: it must not forget a term it has shown.
    pub(super) fn on_restart(&self, node: usize, durable: &HardState) -> Check {
        if durable.term < self.exposed_term[node] {
            return Err(format!(
                "{} restarted at term {} after having shown term {}: the fencing token went down",
                self.nodes[node], durable.term, self.exposed_term[node]
            ));
        }
        Ok(())
    }

    /// The leader lease (thesis §6.4.1): while a node holds a lease, no other node has been
    /// elected in a later term, so at no instant of real time do two nodes hold a lease (nor
    /// does anyone lead beside a lease holder, but a deposed leader that has not heard yet).
    /// `holders` are the nodes whose lease, read on their own drifting clocks, has not ended at
    /// this instant, and `leaders` every node that leads, each with its term (with death
    /// evidence in play: every node that holds a lease). A forged message (a hostile term)
    /// voids the promise, as it voids election safety.
    pub(super) fn no_leader_beside_a_lease(
        &self,
        holders: &[(usize, u64)],
        leaders: &[(usize, u64)],
        leaders_are_holders: bool,
    ) -> Check {
        let leads = if leaders_are_holders {
            "holds the lease of"
        } else {
            "leads"
        };
        for &(holder, lease_term) in holders {
            for &(leader, term) in leaders {
                let tainted = self.tainted.contains(&term) || self.tainted.contains(&lease_term);
                if leader != holder && term > lease_term && !tainted {
                    return Err(format!(
                        "{} {leads} term {term} while {} still holds the lease of term {lease_term}",
                        self.nodes[leader], self.nodes[holder]
                    ));
                }
            }
        }
        Ok(())
    }

    pub(super) fn leaders_elected(&self) -> usize {
        self.leader_of_term.len()
    }
}
