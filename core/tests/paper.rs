//! Ports of the election tests of etcd-io/raft `raft_paper_test.go`: each checks a few
//! sentences of the Raft paper (https://raft.github.io/raft.pdf), named in its doc comment.
//!
//! The machine has no log, so a "heartbeat" stands in for etcd's `MsgApp`, an election timer
//! firing stands in for `MsgHup`, and etcd's ticks become virtual time (`TICK` = T/10).
//!
//! Not ported, because they are about the log the machine does not have:
//! - TestLeaderStartReplication, TestLeaderCommitEntry, TestLeaderAcknowledgeCommit,
//!   TestLeaderCommitPrecedingEntries, TestFollowerCommitEntry, TestFollowerCheckMsgApp,
//!   TestFollowerAppendEntries, TestLeaderSyncFollowerLog: log replication and commit (§5.3).
//! - TestVoteRequest: the vote request's last log index and term (§5.4.1).
//! - TestLeaderOnlyCommitsLogFromCurrentTerm: commitment rules (§5.4.2).
//! - TestVoter checks the log up-to-date rule (§5.4.1); `vote_rules` below ports what is left
//!   of it without a log: who may vote for whom, in which term (with TestRecvMsgVote).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use almost_raft_core::{Body, Envelope, Event, HardState, Machine, Role};
use support::{T, TICK, config, drain, fire, ids, machine, msg};

const NS: Duration = Duration::from_nanos(1);

fn three() -> Vec<String> {
    ids(3)
}

/// Node "1" of a 3-node cluster, fresh, with etcd's test config.
fn node1() -> Machine {
    machine("1", config(), HardState::default(), &three())
}

/// Node "1" made leader of term 1 with node "2"'s vote; returns the time it became leader.
fn make_leader(m: &mut Machine) -> Duration {
    let now = fire(m);
    drain(m, now);
    m.step(
        now,
        msg("2", "1", m.term(), Body::VoteReply { granted: true }),
    )
    .unwrap();
    drain(m, now);
    assert_eq!(m.role(), Role::Leader);
    now
}

/// Messages sorted by recipient (etcd's `messageSlice` sort).
fn by_recipient(mut sent: Vec<Envelope>) -> Vec<Envelope> {
    sent.sort_by(|a, b| a.to.cmp(&b.to));
    sent
}

/// §5.1: "If one server's current term is smaller than the other's, then it updates its current
/// term to the larger value. If a candidate or leader discovers that its term is out of date,
/// it immediately reverts to follower state." Ports testUpdateTermFromMessage.
fn update_term_from_message(role: Role) {
    // etcd steps a MsgApp; here every kind of message that is not a vote request (those are
    // covered by vote_rules) must carry its higher term over, replies included.
    let bodies = [
        (Body::Heartbeat { round: 0 }, Some("3")),
        (Body::HeartbeatReply { round: 0 }, None),
        (Body::VoteReply { granted: false }, None),
        (Body::VoteReply { granted: true }, None),
        (Body::PreVoteReply { granted: false }, None),
    ];
    for (body, leader) in bodies {
        let mut m = node1();
        let now = match role {
            Role::Follower => {
                m.step(TICK, msg("2", "1", 1, Body::Heartbeat { round: 0 }))
                    .unwrap();
                TICK
            }
            Role::Candidate => fire(&mut m),
            Role::Leader => make_leader(&mut m),
            Role::PreCandidate => unreachable!(),
        };
        drain(&mut m, now);
        assert_eq!((m.role(), m.term()), (role, 1));

        m.step(now, msg("3", "1", 2, body)).unwrap();
        assert_eq!(
            (m.role(), m.term(), m.leader()),
            (Role::Follower, 2, leader),
            "{body:?}"
        );
        assert_eq!(
            drain(&mut m, now).0.is_empty(),
            leader.is_none(),
            "{body:?}"
        );
    }
}

/// Ports etcd TestFollowerUpdateTermFromMessage (§5.1).
#[test]
fn follower_update_term_from_message() {
    update_term_from_message(Role::Follower);
}

/// Ports etcd TestCandidateUpdateTermFromMessage (§5.1).
#[test]
fn candidate_update_term_from_message() {
    update_term_from_message(Role::Candidate);
}

/// Ports etcd TestLeaderUpdateTermFromMessage (§5.1).
#[test]
fn leader_update_term_from_message() {
    update_term_from_message(Role::Leader);
}

/// §5.1: "If a server receives a request with a stale term number, it rejects the request."
/// Ports etcd TestRejectStaleTermMessage: a stale heartbeat does not make its sender leader or
/// reset the election timer, and a stale vote request is refused; both answers carry our term.
#[test]
fn reject_stale_term_message() {
    let state = HardState {
        term: 2,
        voted_for: None,
    };
    let mut m = machine("1", config(), state.clone(), &three());
    let deadline = m.next_deadline();

    m.step(TICK, msg("2", "1", 1, Body::Heartbeat { round: 0 }))
        .unwrap();
    m.step(TICK, msg("3", "1", 1, Body::Vote { transfer: false }))
        .unwrap();
    m.step(TICK, msg("3", "1", 1, Body::TimeoutNow)).unwrap();
    let (sent, _) = drain(&mut m, TICK);

    assert_eq!(m.leader(), None);
    assert_eq!(m.role(), Role::Follower);
    assert_eq!(
        m.next_deadline(),
        deadline,
        "a stale heartbeat must not reset the timer"
    );
    assert_eq!(m.hard_state(), state, "no vote for a stale candidate");
    assert_eq!(
        by_recipient(sent),
        vec![
            msg("1", "2", 2, Body::HeartbeatReply { round: 0 }),
            msg("1", "3", 2, Body::VoteReply { granted: false }),
        ]
    );
}

/// §5.2: "When servers start up, they begin as followers." Ports etcd TestStartAsFollower,
/// also from a saved term and vote, which are kept.
#[test]
fn start_as_follower() {
    let m = node1();
    assert_eq!(
        (m.role(), m.term(), m.leader(), m.voted_for()),
        (Role::Follower, 0, None, None)
    );

    let saved = HardState {
        term: 7,
        voted_for: Some("2".into()),
    };
    let mut m = machine("1", config(), saved.clone(), &three());
    assert_eq!(m.role(), Role::Follower);
    assert_eq!(m.hard_state(), saved);
    assert!(
        m.next_deadline().unwrap() >= T,
        "a restarted node waits for a leader first"
    );
    assert!(drain(&mut m, Duration::ZERO).0.is_empty());
}

/// §5.2: "Leaders send periodic heartbeats ... to all followers in order to maintain their
/// authority." Ports etcd TestLeaderBcastBeat: at each heartbeat interval the leader sends one
/// heartbeat in its term to every peer.
#[test]
fn leader_bcast_beat() {
    let mut m = node1();
    let elected = make_leader(&mut m);
    for beat in 1..=3u32 {
        let round = u64::from(beat) + 1; // round 1 went out on election
        let at = m.next_deadline().unwrap();
        assert_eq!(at, elected + TICK * beat, "heartbeat interval");
        m.handle_timeout(at);
        let (sent, _) = drain(&mut m, at);
        assert_eq!(
            by_recipient(sent),
            vec![
                msg("1", "2", 1, Body::Heartbeat { round }),
                msg("1", "3", 1, Body::Heartbeat { round })
            ]
        );
    }
}

/// §5.2: "If a follower receives no communication over a period of time called the election
/// timeout, then it ... begins an election ... increments its current term and transitions to
/// candidate state. It then votes for itself and issues RequestVote RPCs in parallel to each
/// of the other servers." and "if ... no candidate obtains a majority, each candidate will time
/// out and start a new election by incrementing its term and initiating another round".
/// Ports testNonleaderStartElection.
fn nonleader_start_election(role: Role) {
    let mut m = node1();
    let start = match role {
        Role::Follower => {
            m.step(TICK, msg("2", "1", 1, Body::Heartbeat { round: 0 }))
                .unwrap();
            TICK
        }
        Role::Candidate => fire(&mut m),
        _ => unreachable!(),
    };
    drain(&mut m, start);
    assert_eq!((m.role(), m.term()), (role, 1));

    let at = m.next_deadline().unwrap();
    assert!(at >= start + T && at < start + 2 * T, "timeout in [T, 2T)");
    m.handle_timeout(at - NS);
    assert_eq!((m.role(), m.term()), (role, 1), "not before the timeout");
    m.handle_timeout(at);
    let ready = m.ready();

    assert_eq!(
        (m.role(), m.term(), m.voted_for()),
        (Role::Candidate, 2, Some("1"))
    );
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 2,
            voted_for: Some("1".into())
        })
    );
    let vote = Body::Vote { transfer: false };
    assert_eq!(
        by_recipient(ready.messages),
        vec![msg("1", "2", 2, vote), msg("1", "3", 2, vote)]
    );
}

/// Ports etcd TestFollowerStartElection (§5.2).
#[test]
fn follower_start_election() {
    nonleader_start_election(Role::Follower);
}

/// Ports etcd TestCandidateStartNewElection (§5.2).
#[test]
fn candidate_start_new_election() {
    nonleader_start_election(Role::Candidate);
}

/// §5.2: a candidate "wins an election if it receives votes from a majority of the servers";
/// it returns to follower if a majority refuses; otherwise it stays candidate. Ports etcd
/// TestLeaderElectionInOneRoundRPC (one round of RequestVote, table-driven).
#[test]
fn leader_election_in_one_round_rpc() {
    /// The cluster's size, the votes that come back (voter, granted), the role that follows.
    type Case<'a> = (usize, &'a [(u32, bool)], Role);
    let cases: &[Case] = &[
        // wins with votes from a majority
        (1, &[], Role::Leader),
        (3, &[(2, true), (3, true)], Role::Leader),
        (3, &[(2, true)], Role::Leader),
        (
            5,
            &[(2, true), (3, true), (4, true), (5, true)],
            Role::Leader,
        ),
        (5, &[(2, true), (3, true), (4, true)], Role::Leader),
        (5, &[(2, true), (3, true)], Role::Leader),
        // back to follower when a majority refuses
        (3, &[(2, false), (3, false)], Role::Follower),
        (
            5,
            &[(2, false), (3, false), (4, false), (5, false)],
            Role::Follower,
        ),
        (
            5,
            &[(2, true), (3, false), (4, false), (5, false)],
            Role::Follower,
        ),
        // still candidate without a majority either way
        (3, &[], Role::Candidate),
        (5, &[(2, true)], Role::Candidate),
        (5, &[(2, false), (3, false)], Role::Candidate),
        (5, &[], Role::Candidate),
    ];
    for (i, (size, votes, want)) in cases.iter().enumerate() {
        let mut m = machine("1", config(), HardState::default(), &ids(*size));
        let now = fire(&mut m);
        drain(&mut m, now);
        for (from, granted) in *votes {
            let reply = msg(
                &from.to_string(),
                "1",
                1,
                Body::VoteReply { granted: *granted },
            );
            m.step(now, reply).unwrap();
        }
        assert_eq!(m.role(), *want, "case #{i}");
        assert_eq!(m.term(), 1, "case #{i}");
    }
}

/// §5.2: "Each server will vote for at most one candidate in a given term, on a
/// first-come-first-served basis." Ports etcd TestFollowerVote, then checks the order of
/// arrival decides and that the vote is in the hard state handed out with the reply.
#[test]
fn follower_vote() {
    let cases = [
        (None, "2", true),
        (None, "3", true),
        (Some("2"), "2", true),
        (Some("3"), "3", true),
        (Some("2"), "3", false),
        (Some("3"), "2", false),
    ];
    for (i, (vote, candidate, granted)) in cases.into_iter().enumerate() {
        let state = HardState {
            term: 1,
            voted_for: vote.map(Into::into),
        };
        let mut m = machine("1", config(), state, &three());
        // A node that resumes a saved term grants no vote for T after it starts (the lease).
        let at = T + TICK;
        m.step(at, msg(candidate, "1", 1, Body::Vote { transfer: false }))
            .unwrap();
        let (sent, _) = drain(&mut m, at);
        assert_eq!(
            sent,
            vec![msg("1", candidate, 1, Body::VoteReply { granted })],
            "case #{i}"
        );
    }

    // First come, first served, within one term.
    let mut m = node1();
    m.step(TICK, msg("3", "1", 1, Body::Vote { transfer: false }))
        .unwrap();
    let ready = m.ready();
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 1,
            voted_for: Some("3".into())
        })
    );
    assert_eq!(
        ready.messages,
        vec![msg("1", "3", 1, Body::VoteReply { granted: true })]
    );
    m.persisted(TICK, ready.hard_state.as_ref().unwrap());
    m.step(TICK, msg("2", "1", 1, Body::Vote { transfer: false }))
        .unwrap();
    m.step(TICK, msg("3", "1", 1, Body::Vote { transfer: false }))
        .unwrap();
    let (sent, _) = drain(&mut m, TICK);
    assert_eq!(
        sent,
        vec![
            msg("1", "2", 1, Body::VoteReply { granted: false }),
            msg("1", "3", 1, Body::VoteReply { granted: true }),
        ]
    );
    assert_eq!(m.voted_for(), Some("3"));
}

/// §5.2: "While waiting for votes, a candidate may receive an AppendEntries RPC from another
/// server claiming to be leader. If the leader's term is at least as large as the candidate's
/// current term, then the candidate recognizes the leader as legitimate and returns to
/// follower state." Ports etcd TestCandidateFallback (a heartbeat stands in for MsgApp).
#[test]
fn candidate_fallback() {
    for term in [1, 2] {
        let mut m = node1();
        let now = fire(&mut m);
        drain(&mut m, now);
        assert_eq!((m.role(), m.term()), (Role::Candidate, 1));

        m.step(now, msg("2", "1", term, Body::Heartbeat { round: 0 }))
            .unwrap();
        assert_eq!(
            (m.role(), m.term(), m.leader()),
            (Role::Follower, term, Some("2"))
        );
        let (sent, _) = drain(&mut m, now);
        assert_eq!(
            sent,
            vec![msg("1", "2", term, Body::HeartbeatReply { round: 0 })]
        );

        // Conceding in its own term, it keeps the vote it gave itself (§5.2, one per term).
        let own_vote = if term == 1 { Some("1") } else { None };
        assert_eq!(m.voted_for(), own_vote);
        m.step(now, msg("3", "1", term, Body::Vote { transfer: true }))
            .unwrap();
        let (sent, _) = drain(&mut m, now);
        let refused = Body::VoteReply { granted: false };
        assert_eq!(sent, vec![msg("1", "3", term, refused)]);
    }
}

/// Which tenth of `[T, 2T)` a timeout falls in (etcd counts ticks 10..19).
fn tick_bucket(timeout: Duration) -> u128 {
    assert!(
        timeout >= T && timeout < 2 * T,
        "timeout {timeout:?} is outside [T, 2T)"
    );
    (timeout - T).as_nanos() * 10 / T.as_nanos()
}

/// §5.2: "Raft uses randomized election timeouts ... chosen randomly from a fixed interval".
/// Ports testNonleaderElectionTimeoutRandomized: 500 times, the time from becoming follower
/// (or candidate) to campaigning is in `[T, 2T)`, the node campaigns exactly then and not a
/// nanosecond before, and all ten tenths of the range occur.
fn nonleader_election_timeout_randomized(role: Role) {
    let mut m = node1();
    let mut now = Duration::ZERO;
    let mut seen = BTreeSet::new();
    for _ in 0..500 {
        let start = match role {
            Role::Follower => {
                let term = m.term() + 1;
                m.step(now, msg("2", "1", term, Body::Heartbeat { round: 0 }))
                    .unwrap();
                now
            }
            _ => fire(&mut m),
        };
        drain(&mut m, start);
        assert_eq!(m.role(), role);
        let at = m.next_deadline().unwrap();
        seen.insert(tick_bucket(at - start));
        m.handle_timeout(at - NS);
        assert!(
            drain(&mut m, at).0.is_empty(),
            "campaigned before its timeout"
        );
        m.handle_timeout(at);
        assert!(
            !drain(&mut m, at).0.is_empty(),
            "did not campaign at its timeout"
        );
        now = at;
    }
    assert_eq!(
        seen,
        (0..10).collect(),
        "every tenth of [T, 2T) should occur"
    );
}

/// Ports etcd TestFollowerElectionTimeoutRandomized (§5.2).
#[test]
fn follower_election_timeout_randomized() {
    nonleader_election_timeout_randomized(Role::Follower);
}

/// Ports etcd TestCandidateElectionTimeoutRandomized (§5.2).
#[test]
fn candidate_election_timeout_randomized() {
    nonleader_election_timeout_randomized(Role::Candidate);
}

/// §5.2: randomized timeouts mean that "in most cases only a single server will time out",
/// which makes split votes rare. Ports testNonleadersElectionTimeoutNonconflict: 5 nodes,
/// 1000 rounds; all of them reset their timers at one instant, then time advances in etcd's
/// ticks (T/10) and each node's timer is run; in at most 30% of rounds does more than one node
/// campaign in the first tick in which any does.
fn nonleaders_election_timeout_nonconflict(role: Role) {
    let all = ids(5);
    let mut nodes: Vec<Machine> = all
        .iter()
        .map(|id| machine(id, config(), HardState::default(), &all))
        .collect();
    let mut now = Duration::ZERO;
    let mut conflicts = 0;
    for _ in 0..1000 {
        for m in &mut nodes {
            match role {
                // A higher term from a peer, with no leader: a fresh follower timer from now.
                Role::Follower => {
                    let from = if m.id() == "1" { "2" } else { "1" };
                    m.step(
                        now,
                        msg(
                            from,
                            m.id(),
                            m.term() + 1,
                            Body::HeartbeatReply { round: 0 },
                        ),
                    )
                    .unwrap();
                }
                _ => {
                    now = now.max(m.next_deadline().unwrap());
                }
            }
        }
        if role == Role::Candidate {
            for m in &mut nodes {
                m.handle_timeout(now);
            }
        }
        for m in &mut nodes {
            drain(m, now);
            assert_eq!(m.role(), role);
        }
        let mut timed_out = 0;
        while timed_out == 0 {
            now += TICK;
            for m in &mut nodes {
                m.handle_timeout(now);
                if !drain(m, now).0.is_empty() {
                    timed_out += 1;
                }
            }
        }
        if timed_out > 1 {
            conflicts += 1;
        }
    }
    assert!(
        conflicts <= 300,
        "{conflicts} of 1000 rounds had more than one node time out"
    );
    assert!(
        conflicts > 0,
        "5 nodes over 10 ticks must collide sometimes; timers look fixed"
    );
}

/// Ports etcd TestFollowersElectionTimeoutNonconflict (§5.2).
#[test]
fn followers_election_timeout_nonconflict() {
    nonleaders_election_timeout_nonconflict(Role::Follower);
}

/// Ports etcd TestCandidatesElectionTimeoutNonconflict (§5.2).
#[test]
fn candidates_election_timeout_nonconflict() {
    nonleaders_election_timeout_nonconflict(Role::Candidate);
}

/// §5.2 (one vote per term, first come first served), §5.1 (stale terms are refused), thesis
/// §9.6 (pre-votes change nothing and are granted for a later term) and thesis §4.2.3 / §6.2
/// (leader stickiness: a follower that heard its leader within T ignores higher-term requests
/// unless the leader itself asked for the election). What remains of etcd TestVoter without a
/// log, with the vote table of TestRecvMsgVote / TestRecvMsgPreVote. Node "1" is at term 2.
#[test]
fn vote_rules() {
    struct Case {
        name: &'static str,
        voted_for: Option<&'static str>,
        /// Heard a heartbeat from leader "3" in term 2 this long before the request.
        leader_heard: Option<Duration>,
        term: u64,
        body: Body,
        /// `None`: the request is ignored, no answer.
        want: Option<bool>,
    }
    let vote = Body::Vote { transfer: false };
    let (lease, expired) = (Some(T / 2), Some(T));
    let cases = [
        Case {
            name: "free",
            voted_for: None,
            leader_heard: None,
            term: 2,
            body: vote,
            want: Some(true),
        },
        Case {
            name: "same candidate again",
            voted_for: Some("2"),
            leader_heard: None,
            term: 2,
            body: vote,
            want: Some(true),
        },
        Case {
            name: "already voted for another",
            voted_for: Some("4"),
            leader_heard: None,
            term: 2,
            body: vote,
            want: Some(false),
        },
        Case {
            name: "own vote",
            voted_for: Some("1"),
            leader_heard: None,
            term: 2,
            body: vote,
            want: Some(false),
        },
        Case {
            name: "knows the leader of the term",
            voted_for: None,
            leader_heard: expired,
            term: 2,
            body: vote,
            want: Some(false),
        },
        Case {
            name: "stale term",
            voted_for: None,
            leader_heard: None,
            term: 1,
            body: vote,
            want: Some(false),
        },
        Case {
            name: "later term frees the vote",
            voted_for: Some("4"),
            leader_heard: None,
            term: 3,
            body: vote,
            want: Some(true),
        },
        Case {
            name: "later term, live leader",
            voted_for: None,
            leader_heard: lease,
            term: 3,
            body: vote,
            want: None,
        },
        Case {
            name: "later term, leader silent for T",
            voted_for: None,
            leader_heard: expired,
            term: 3,
            body: vote,
            want: Some(true),
        },
        Case {
            name: "transfer passes a live leader",
            voted_for: None,
            leader_heard: lease,
            term: 3,
            body: Body::Vote { transfer: true },
            want: Some(true),
        },
        Case {
            name: "pre-vote for a later term",
            voted_for: Some("4"),
            leader_heard: None,
            term: 3,
            body: Body::PreVote,
            want: Some(true),
        },
        Case {
            name: "pre-vote, same term, voted for another",
            voted_for: Some("4"),
            leader_heard: None,
            term: 2,
            body: Body::PreVote,
            want: Some(false),
        },
        Case {
            name: "pre-vote, same term, free",
            voted_for: None,
            leader_heard: None,
            term: 2,
            body: Body::PreVote,
            want: Some(true),
        },
        Case {
            name: "pre-vote, live leader",
            voted_for: None,
            leader_heard: lease,
            term: 3,
            body: Body::PreVote,
            want: None,
        },
        Case {
            name: "pre-vote, leader silent for T",
            voted_for: None,
            leader_heard: expired,
            term: 3,
            body: Body::PreVote,
            want: Some(true),
        },
        Case {
            name: "pre-vote, stale term",
            voted_for: None,
            leader_heard: None,
            term: 1,
            body: Body::PreVote,
            want: Some(false),
        },
    ];
    for c in cases {
        let state = HardState {
            term: 2,
            voted_for: c.voted_for.map(Into::into),
        };
        let peers = ids(4);
        let mut m = machine("1", config(), state, &peers);
        let mut now = T + TICK; // past the vote wait of a node that resumes a saved term
        if let Some(ago) = c.leader_heard {
            m.step(now, msg("3", "1", 2, Body::Heartbeat { round: 0 }))
                .unwrap();
            drain(&mut m, now);
            now += ago;
        }
        let before = m.hard_state();
        m.step(now, msg("2", "1", c.term, c.body)).unwrap();
        let (sent, _) = drain(&mut m, now);
        let pre = c.body == Body::PreVote;
        let want: Vec<Envelope> = match c.want {
            None => vec![],
            Some(granted) => {
                let term = if granted { c.term } else { 2 };
                let body = if pre {
                    Body::PreVoteReply { granted }
                } else {
                    Body::VoteReply { granted }
                };
                vec![msg("1", "2", term, body)]
            }
        };
        assert_eq!(sent, want, "{}", c.name);
        if pre || c.want.is_none() {
            assert_eq!(
                m.hard_state(),
                before,
                "{}: must change neither term nor vote",
                c.name
            );
        } else if c.want == Some(true) {
            assert_eq!((m.term(), m.voted_for()), (c.term, Some("2")), "{}", c.name);
        }
    }
}

/// §5.2 / Figure 2 "Rules for Servers": the follower's election timer restarts when it grants a
/// vote or hears the leader, not on other traffic. Not in etcd's paper tests; it guards the
/// timing the ports above rely on.
#[test]
fn timer_restarts_on_granted_vote_and_heartbeat_only() {
    let mut m = node1();
    let d0 = m.next_deadline().unwrap();
    m.step(TICK, msg("2", "1", 0, Body::HeartbeatReply { round: 0 }))
        .unwrap();
    assert_eq!(
        m.next_deadline().unwrap(),
        d0,
        "a reply is no reason to wait longer"
    );
    m.step(TICK, msg("2", "1", 1, Body::Vote { transfer: false }))
        .unwrap();
    let d1 = m.next_deadline().unwrap();
    assert!(d1 >= TICK + T && d1 < TICK + 2 * T);
    m.step(2 * TICK, msg("2", "1", 1, Body::Heartbeat { round: 0 }))
        .unwrap();
    let d2 = m.next_deadline().unwrap();
    assert!(d2 >= 2 * TICK + T && d2 < 2 * TICK + 2 * T);

    let leader_changes: Vec<Event> = drain(&mut m, 2 * TICK)
        .1
        .into_iter()
        .filter(|e| matches!(e, Event::LeaderChanged { .. }))
        .collect();
    let leader = Some("2".to_string());
    assert_eq!(
        leader_changes,
        vec![Event::LeaderChanged { leader, term: 1 }]
    );
}
