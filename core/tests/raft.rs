//! Ports of the election tests of etcd-io/raft `raft_test.go`, on the test network of
//! `support` (etcd's `network`). Each test names the etcd test it ports and the section of the
//! Raft paper (§5.x) or of Ongaro's thesis (§9.6 pre-vote, §6.2 check-quorum and leader
//! stickiness, §3.10 leadership transfer) it checks.
//!
//! Adaptations, because the machine has no log:
//! - `MsgHup` is a node's election timer firing ([`Network::fire`]); a heartbeat stands in for
//!   `MsgApp`; `MsgTransferLeader` is `Machine::transfer_leadership`.
//! - Where etcd makes a voter refuse because the candidate's log is behind, nothing refuses
//!   here; such tests keep their election part, with the outcome that follows without a log.
//! - A follower's leader stickiness does not depend on `check_quorum` here (it does in etcd),
//!   so where etcd relies on "no ticks, no lease", the tests let T pass first.
//!
//! Not ported:
//! - TestProgress*, TestUncommittedEntryLimit, TestLogReplication, TestSingleNodeCommit,
//!   Test(Cannot)CommitWithoutNewTermEntry, TestOldMessages, TestProposal(ByProxy), TestCommit,
//!   TestHandleMsgApp, TestHandleHeartbeatResp, TestMsgAppRespWaitReset, TestLeaderAppResp,
//!   TestBcastBeat, TestLeaderIncreaseNext, TestSendAppendFor*, TestRecvMsgUnreachable,
//!   TestFastLogRejection, TestLogReplicationWithReorderedMessage,
//!   TestLeaderMsgAppSelfAckAfterTermChange, TestCommitAfterRemoveNode: the log and its
//!   replication.
//! - TestRestore*, TestProvideSnap, TestIgnoreProvidingSnap, TestSlowNodeRestore,
//!   TestLearnerReceiveSnapshot, TestLeaderTransferAfterSnapshot: snapshots.
//! - TestLearner*, TestAddLearner, TestRemoveLearner, TestLeaderTransferDemoteNode,
//!   TestRestoreWithLearner, TestReadOnlyWithLearner: there are no learners.
//! - TestReadOnly*, TestRaftFreesReadOnlyMem: ReadIndex.
//! - TestStepConfig, TestStepIgnoreConfig, TestNewLeaderPendingConfig,
//!   TestConfChange(V2)CheckBeforeCampaign: membership is local, not a log entry.
//! - TestNonPromotableVoterWithCheckQuorum, TestPromotable: a node is always a voter.
//! - TestStateTransition, TestRecvMsgBeat, TestRaftNodes: internal transitions and MsgBeat.
//! - TestLeaderTransferTimeout, TestLeaderTransferSecondTransferToSameNode,
//!   TestLeaderTransferIgnoreProposal: no pending-transfer state (a transfer is one
//!   TimeoutNow) and no proposals.
//! - TestLeaderTransferToSlowFollower: "slow" means a shorter log; same as TestLeaderTransfer
//!   ToUpToDateNode here.
//! - TestRecvMsgVote / TestRecvMsgPreVote: ported as `vote_rules` in paper.rs.
//! - TestCandidateResetTermMsgApp: MsgApp; the heartbeat variant is ported.
//! - TestTransferNonMember: a node outside its own configuration; here a message from a
//!   non-peer is refused with an error instead (see `add_node`, `leader_transfer_remove_node`).

mod support;

use std::time::Duration;

use almost_raft_core::{Body, Config, Error, Event, HardState, Machine, Role};
use support::{Network, T, TICK, config, config_with, drain, fire, ids, machine, msg};

fn net(n: usize, pre_vote: bool, check_quorum: bool) -> Network {
    Network::new(n, config_with(pre_vote, check_quorum))
}

/// Node `id` is leader and everyone else follows it (etcd's checkLeaderTransferState).
fn assert_leader(nw: &Network, id: &str, term: u64) {
    assert_eq!(
        (nw.role(id), nw.term(id)),
        (Role::Leader, term),
        "node {id}"
    );
    assert_eq!(nw.leader(id), Some(id));
}

/// §5.2: a candidate that gets a majority wins; without one it stays candidate (or, with
/// pre-vote, thesis §9.6, pre-candidate in the old term). Ports etcd TestLeaderElection and
/// TestLeaderElectionPreVote, with black holes (nopStepper) and cut links.
fn leader_election(pre_vote: bool) {
    let (cand, cand_term) = if pre_vote {
        (Role::PreCandidate, 0)
    } else {
        (Role::Candidate, 1)
    };
    #[allow(clippy::type_complexity)]
    let cases: &[(usize, &[&str], &[(&str, &str)], Role, u64)] = &[
        (3, &[], &[], Role::Leader, 1),
        (3, &["3"], &[], Role::Leader, 1),
        (3, &["2", "3"], &[], cand, cand_term),
        (4, &["2", "3"], &[], cand, cand_term),
        (5, &["2", "3"], &[], Role::Leader, 1),
        (3, &[], &[("1", "2"), ("1", "3")], cand, cand_term),
        (3, &[], &[("2", "3")], Role::Leader, 1),
        (
            5,
            &[],
            &[("1", "2"), ("1", "3"), ("1", "4")],
            cand,
            cand_term,
        ),
        (5, &["5"], &[("1", "2")], Role::Leader, 1),
    ];
    for (i, (n, holes, cuts, role, term)) in cases.iter().enumerate() {
        let mut nw = net(*n, pre_vote, false);
        holes.iter().for_each(|h| nw.black_hole(h));
        cuts.iter().for_each(|(a, b)| nw.cut(a, b));
        nw.fire("1");
        assert_eq!((nw.role("1"), nw.term("1")), (*role, *term), "case #{i}");
    }
}

/// Ports etcd TestLeaderElection (§5.2).
#[test]
fn leader_election_test() {
    leader_election(false);
}

/// Ports etcd TestLeaderElectionPreVote (§5.2, thesis §9.6).
#[test]
fn leader_election_pre_vote() {
    leader_election(true);
}

/// §5.2: every node can campaign and win in turn, from a cluster that already had leaders (and
/// with pre-vote, thesis §9.6). Ports etcd TestLeaderCycle and TestLeaderCyclePreVote.
fn leader_cycle(pre_vote: bool) {
    let mut nw = net(3, pre_vote, false);
    for (term, campaigner) in ["1", "2", "3", "1"].into_iter().enumerate() {
        nw.fire(campaigner);
        for id in ids(3) {
            let want = if id == campaigner {
                Role::Leader
            } else {
                Role::Follower
            };
            assert_eq!(nw.role(&id), want, "campaigner {campaigner}, node {id}");
            assert_eq!(nw.leader(&id), Some(campaigner));
            assert_eq!(nw.term(&id), term as u64 + 1);
        }
    }
}

/// Ports etcd TestLeaderCycle (§5.2).
#[test]
fn leader_cycle_test() {
    leader_cycle(false);
}

/// Ports etcd TestLeaderCyclePreVote (§5.2, thesis §9.6).
#[test]
fn leader_cycle_pre_vote() {
    leader_cycle(true);
}

/// §5.2: a node that already voted in a term refuses a second candidate, and a candidate
/// refused by a majority stays candidate until its timer fires again; its higher term then
/// wins (etcd's log check, which would refuse it, does not exist here). Ports etcd
/// TestDuelingCandidates.
#[test]
fn dueling_candidates() {
    let mut nw = net(3, false, false);
    nw.cut("1", "3");
    nw.fire("1");
    nw.fire("3");
    assert_leader(&nw, "1", 1);
    assert_eq!(
        (nw.role("3"), nw.term("3")),
        (Role::Candidate, 1),
        "2 already voted for 1"
    );

    nw.recover();
    nw.fire("3");
    assert_leader(&nw, "3", 2);
    for id in ["1", "2"] {
        assert_eq!(
            (nw.role(id), nw.term(id), nw.leader(id)),
            (Role::Follower, 2, Some("3"))
        );
    }
}

/// Thesis §9.6: with pre-vote, a node that cannot win does not bump its term and does not
/// disrupt a live leader. Ports etcd TestDuelingPreCandidates; etcd's stale log becomes a
/// one-way link (leader to 3 down), so that 3 keeps timing out while the leader is alive. The
/// leader ignores its pre-votes (check-quorum, §6.2) and so does 2, which hears the leader.
#[test]
fn dueling_pre_candidates() {
    let mut nw = net(3, true, true);
    nw.cut("1", "3");
    nw.fire("1");
    nw.fire("3");
    assert_leader(&nw, "1", 1);
    assert_eq!(
        (nw.role("3"), nw.term("3")),
        (Role::Follower, 1),
        "pre-vote refused by 2"
    );

    nw.recover();
    nw.drop_link("1", "3");
    let campaigned = nw.sent.len();
    nw.run_for(5 * T);
    assert!(
        nw.sent[campaigned..]
            .iter()
            .any(|m| m.from == "3" && m.body == Body::PreVote)
    );
    nw.recover();
    nw.run_for(T);
    assert_leader(&nw, "1", 1);
    for id in ["2", "3"] {
        assert_eq!(
            (nw.role(id), nw.term(id), nw.leader(id)),
            (Role::Follower, 1, Some("1"))
        );
    }
}

/// §5.2: a candidate that hears a heartbeat from a leader of its own term concedes. Ports etcd
/// TestCandidateConcede.
#[test]
fn candidate_concede() {
    let mut nw = net(3, false, false);
    nw.isolate("1");
    nw.fire("1");
    nw.fire("3");
    assert_eq!((nw.role("1"), nw.term("1")), (Role::Candidate, 1));
    assert_leader(&nw, "3", 1);

    nw.recover();
    nw.heartbeat("3");
    assert_eq!(
        (nw.role("1"), nw.term("1"), nw.leader("1")),
        (Role::Follower, 1, Some("3"))
    );
}

/// §5.2: a one-node cluster elects itself as soon as its vote is saved. Ports etcd
/// TestSingleNodeCandidate and TestSingleNodePreCandidate (thesis §9.6).
#[test]
fn single_node_candidate_and_pre_candidate() {
    for pre_vote in [false, true] {
        let mut nw = net(1, pre_vote, true);
        nw.fire("1");
        assert_leader(&nw, "1", 1);
        assert_eq!(nw.leader_changes("1"), vec![(Some("1".into()), 1)]);
        let saved = HardState {
            term: 1,
            voted_for: Some("1".into()),
        };
        assert_eq!(nw.durable["1"], saved);
    }
}

/// §5.1 and thesis §9.6: a vote request with a higher term is granted from any role, making the
/// node a follower of that term; a pre-vote request is granted and changes nothing. Ports etcd
/// TestVoteFromAnyState and TestPreVoteFromAnyState (check-quorum off, as there, and the
/// follower's leader silent for T so that stickiness does not apply).
fn vote_from_any_state(pre: bool) {
    for role in [
        Role::Follower,
        Role::PreCandidate,
        Role::Candidate,
        Role::Leader,
    ] {
        let cfg = config_with(role == Role::PreCandidate, false);
        let mut m = machine(
            "1",
            cfg,
            HardState {
                term: 1,
                voted_for: None,
            },
            &ids(3),
        );
        let mut now = TICK;
        match role {
            Role::Follower => {
                m.step(now, msg("3", "1", 1, Body::Heartbeat { round: 0 }))
                    .unwrap();
                now += T;
            }
            Role::PreCandidate | Role::Candidate => now = fire(&mut m),
            Role::Leader => {
                now = fire(&mut m);
                drain(&mut m, now);
                m.step(now, msg("3", "1", 2, Body::VoteReply { granted: true }))
                    .unwrap();
            }
        }
        drain(&mut m, now);
        assert_eq!(m.role(), role);
        let (orig_term, orig_vote) = (m.term(), m.voted_for().map(String::from));
        let new_term = orig_term + 1;

        let body = if pre {
            Body::PreVote
        } else {
            Body::Vote { transfer: false }
        };
        m.step(now, msg("2", "1", new_term, body)).unwrap();
        let (sent, _) = drain(&mut m, now);
        let granted = true;
        let reply = if pre {
            Body::PreVoteReply { granted }
        } else {
            Body::VoteReply { granted }
        };
        assert_eq!(sent, vec![msg("1", "2", new_term, reply)], "{role:?}");
        if pre {
            assert_eq!((m.role(), m.term()), (role, orig_term), "{role:?}");
            assert_eq!(m.voted_for().map(String::from), orig_vote, "{role:?}");
        } else {
            assert_eq!(
                (m.role(), m.term(), m.voted_for()),
                (Role::Follower, new_term, Some("2"))
            );
        }
    }
}

/// Ports etcd TestVoteFromAnyState (§5.1).
#[test]
fn vote_from_any_state_test() {
    vote_from_any_state(false);
}

/// Ports etcd TestPreVoteFromAnyState (thesis §9.6).
#[test]
fn pre_vote_from_any_state() {
    vote_from_any_state(true);
}

/// Node "1" of a 3-node cluster made leader of term 1 with check-quorum, at the returned time.
fn check_quorum_leader() -> (Machine, Duration) {
    let mut m = machine("1", config_with(false, true), HardState::default(), &ids(3));
    let now = fire(&mut m);
    drain(&mut m, now);
    m.step(now, msg("2", "1", 1, Body::VoteReply { granted: true }))
        .unwrap();
    drain(&mut m, now);
    assert_eq!(m.role(), Role::Leader);
    (m, now)
}

/// Thesis §6.2 (check-quorum): a leader that keeps hearing from a majority stays leader.
/// Ports etcd TestLeaderStepdownWhenQuorumActive.
#[test]
fn leader_stepdown_when_quorum_active() {
    let (mut m, mut now) = check_quorum_leader();
    for _ in 0..50 {
        now += TICK;
        m.step(now, msg("2", "1", 1, Body::HeartbeatReply { round: 0 }))
            .unwrap();
        m.handle_timeout(now);
        drain(&mut m, now);
    }
    assert_eq!((m.role(), m.leader()), (Role::Leader, Some("1")));
}

/// Thesis §6.2 (check-quorum, promise 3 of the README): a leader that hears from no majority
/// for an election timeout steps down and says so; not before T, and within 2T of the last
/// message. Without check-quorum it would lead on. Ports etcd TestLeaderStepdownWhenQuorumLost.
#[test]
fn leader_stepdown_when_quorum_lost() {
    let (mut m, elected) = check_quorum_leader();
    let mut now = elected;
    while now < elected + T - TICK {
        now += TICK;
        m.handle_timeout(now);
    }
    assert_eq!(m.role(), Role::Leader, "not before T");
    let mut events = drain(&mut m, now).1;
    while now < elected + 2 * T {
        now += TICK;
        m.handle_timeout(now);
        events.extend(drain(&mut m, now).1);
    }
    assert_eq!((m.role(), m.leader(), m.term()), (Role::Follower, None, 1));
    assert_eq!(
        m.voted_for(),
        Some("1"),
        "stepping down keeps the vote of the term"
    );
    assert!(events.contains(&Event::LeaderChanged {
        leader: None,
        term: 1
    }));

    let mut m = machine(
        "1",
        config_with(false, false),
        HardState::default(),
        &ids(3),
    );
    let now = fire(&mut m);
    drain(&mut m, now);
    m.step(now, msg("2", "1", 1, Body::VoteReply { granted: true }))
        .unwrap();
    m.handle_timeout(now + 5 * T);
    assert_eq!(
        m.role(),
        Role::Leader,
        "without check-quorum a leader never steps down alone"
    );
}

/// §5.2 (one vote per term) with `Machine::step_down`: a leader asked to step down becomes a
/// follower in its term, says it no longer leads, and keeps its vote, so a rival of the same
/// term gets none from it. On a follower, step_down does nothing. Not in etcd.
#[test]
fn step_down_keeps_the_vote() {
    let (mut m, now) = check_quorum_leader();
    m.step_down(now).unwrap();
    let (_, events) = drain(&mut m, now);
    assert_eq!((m.role(), m.term(), m.leader()), (Role::Follower, 1, None));
    assert!(events.contains(&Event::LeaderChanged {
        leader: None,
        term: 1
    }));
    assert_eq!(m.voted_for(), Some("1"));

    m.step(now, msg("2", "1", 1, Body::Vote { transfer: true }))
        .unwrap();
    let refused = Body::VoteReply { granted: false };
    assert_eq!(drain(&mut m, now).0, vec![msg("1", "2", 1, refused)]);
    let before = m.status(now);
    m.step_down(now).unwrap();
    assert_eq!(m.status(now), before);
    assert!(!m.has_ready());
}

/// Thesis §6.2 / §4.2.3: a follower that heard its leader within T ignores a candidate; once
/// the leader has been silent for T it votes again. Ports etcd
/// TestLeaderSupersedingWithCheckQuorum (the leader's heartbeats stop reaching 3, so that its
/// timer fires while 2 still hears the leader).
#[test]
fn leader_superseding_with_check_quorum() {
    let mut nw = net(3, false, true);
    nw.fire("1");
    assert_leader(&nw, "1", 1);

    nw.drop_link("1", "3");
    let end = nw.now + 3 * T;
    assert!(nw.run_until_or(end, |nw| nw.role("3") == Role::Candidate));
    assert_eq!(nw.term("3"), 2);
    assert_eq!(
        (nw.term("2"), nw.leader("2")),
        (1, Some("1")),
        "2 ignored it: leader live"
    );
    assert!(
        !nw.sent.iter().any(|m| m.from == "2" && m.term == 2),
        "2 did not even answer"
    );

    // 3's timer fires again; nobody else's runs, so 2 has not heard the leader for T.
    nw.fire("3");
    assert_leader(&nw, "3", 3);
    assert_eq!((nw.role("2"), nw.leader("2")), (Role::Follower, Some("3")));
    assert_eq!((nw.role("1"), nw.leader("1")), (Role::Follower, Some("3")));
}

/// Thesis §6.2: followers whose leader has been silent for T elect a new leader; the old leader
/// (which ignores the request, check-quorum) follows once it hears the new one. Ports etcd
/// TestLeaderElectionWithCheckQuorum.
#[test]
fn leader_election_with_check_quorum() {
    let mut nw = net(3, false, true);
    nw.fire("1");
    assert_leader(&nw, "1", 1);
    assert_eq!(nw.role("3"), Role::Follower);

    nw.fire("3"); // at least T after the leader's last heartbeat
    assert_leader(&nw, "3", 2);
    assert_eq!(
        (nw.role("1"), nw.leader("1"), nw.term("1")),
        (Role::Follower, Some("3"), 2)
    );
    let leader_voted = nw.sent.iter().any(|m| {
        m.from == "1"
            && m.to == "3"
            && m.term == 2
            && !matches!(m.body, Body::HeartbeatReply { .. })
    });
    assert!(
        !leader_voted,
        "the leader, in its lease, does not answer vote requests"
    );
}

/// Thesis §6.2: a candidate stuck at a higher term (its requests ignored by voters that hear
/// the leader) is freed when the leader hears its higher term in the answer to a heartbeat:
/// the leader steps down and adopts it. Ports etcd TestFreeStuckCandidateWithCheckQuorum.
#[test]
fn free_stuck_candidate_with_check_quorum() {
    let mut nw = net(3, false, true);
    nw.fire("1");
    nw.cut("1", "3");
    nw.run_for(5 * T);
    assert_leader(&nw, "1", 1);
    assert_eq!((nw.role("2"), nw.term("2")), (Role::Follower, 1));
    assert_eq!(nw.role("3"), Role::Candidate);
    assert!(
        nw.term("3") >= 3,
        "campaigned again and again: term {}",
        nw.term("3")
    );

    nw.recover();
    nw.heartbeat("1"); // 3 answers with its term
    assert_eq!(nw.role("1"), Role::Follower);
    let stuck = nw.term("3");
    assert_eq!(nw.term("1"), stuck);

    nw.fire("3");
    assert_leader(&nw, "3", stuck + 1);
}

/// Thesis §6.2 / §9.6 background: without pre-vote, a follower cut off from the leader's
/// heartbeats campaigns at a higher term, and its answer to the leader's next heartbeat
/// deposes the leader. Ports etcd TestDisruptiveFollower.
#[test]
fn disruptive_follower() {
    let mut nw = net(3, false, true);
    nw.fire("1");
    assert_leader(&nw, "1", 1);

    nw.isolate("3");
    let end = nw.now + 3 * T;
    assert!(nw.run_until_or(end, |nw| nw.role("3") == Role::Candidate));
    assert_leader(&nw, "1", 1);
    assert_eq!((nw.role("2"), nw.term("2")), (Role::Follower, 1));
    assert_eq!((nw.role("3"), nw.term("3")), (Role::Candidate, 2));

    nw.recover();
    nw.heartbeat("1"); // the leader's late heartbeat reaches 3
    assert_eq!(
        (nw.role("1"), nw.term("1")),
        (Role::Follower, 2),
        "the leader was disrupted"
    );
    assert_eq!((nw.role("2"), nw.term("2")), (Role::Follower, 1));
    assert_eq!((nw.role("3"), nw.term("3")), (Role::Candidate, 2));
}

/// Thesis §9.6: with pre-vote, the same cut-off follower only becomes a pre-candidate, keeps its
/// term, and the leader's heartbeat brings it back without disruption. Ports etcd
/// TestDisruptiveFollowerPreVote.
#[test]
fn disruptive_follower_pre_vote() {
    let mut nw = net(3, true, true);
    nw.fire("1");
    nw.isolate("3");
    let end = nw.now + 3 * T;
    assert!(nw.run_until_or(end, |nw| nw.role("3") == Role::PreCandidate));
    for id in ids(3) {
        assert_eq!(nw.term(&id), 1, "node {id}");
    }

    nw.recover();
    nw.heartbeat("1");
    assert_leader(&nw, "1", 1);
    assert_eq!((nw.role("3"), nw.leader("3")), (Role::Follower, Some("1")));
}

/// Thesis §9.6: after a split vote with pre-vote on, the next election completes. Ports etcd
/// TestPreVoteWithSplitVote (the split: 2 and 3 time out at the same instant).
#[test]
fn pre_vote_with_split_vote() {
    let mut nw = net(3, true, false);
    nw.fire("1");
    nw.isolate("1");
    nw.fire_together(&["2", "3"]);
    for id in ["2", "3"] {
        assert_eq!(
            (nw.role(id), nw.term(id)),
            (Role::Candidate, 2),
            "node {id}"
        );
    }

    nw.fire("2");
    assert_leader(&nw, "2", 3);
    assert_eq!(
        (nw.role("3"), nw.term("3"), nw.leader("3")),
        (Role::Follower, 3, Some("2"))
    );
}

/// Thesis §9.6 with §6.2: a follower that hears the leader ignores a pre-vote, and so does the
/// leader; once the leader is gone, a new leader is elected. Ports etcd
/// TestPreVoteWithCheckQuorum.
#[test]
fn pre_vote_with_check_quorum() {
    let mut nw = net(3, true, true);
    nw.fire("1");
    nw.drop_link("1", "3");
    let end = nw.now + 3 * T;
    assert!(nw.run_until_or(end, |nw| nw.role("3") == Role::PreCandidate));
    assert_eq!(nw.term("3"), 1);
    assert_eq!(
        (nw.term("2"), nw.leader("2")),
        (1, Some("1")),
        "2 ignored the pre-vote"
    );
    assert_leader(&nw, "1", 1);

    nw.isolate("1");
    nw.fire("2");
    assert_leader(&nw, "2", 2);
    assert_eq!((nw.role("3"), nw.leader("3")), (Role::Follower, Some("2")));
}

/// Thesis §9.6: a node left behind in term (it was partitioned) rejoins as the leader crashes;
/// the cluster still elects a leader. Ports etcd TestNodeWithSmallerTermCanCompleteElection.
#[test]
fn node_with_smaller_term_can_complete_election() {
    let mut nw = net(3, true, false);
    nw.cut("1", "3");
    nw.cut("2", "3");
    nw.fire("1");
    assert_leader(&nw, "1", 1);
    assert_eq!(nw.role("2"), Role::Follower);
    nw.fire("3");
    assert_eq!((nw.role("3"), nw.term("3")), (Role::PreCandidate, 0));

    nw.fire("2");
    assert_eq!((nw.term("1"), nw.term("2"), nw.term("3")), (2, 2, 0));
    assert_eq!(nw.role("1"), Role::Follower);
    assert_leader(&nw, "2", 2);
    assert_eq!(nw.role("3"), Role::PreCandidate);

    nw.recover();
    nw.cut("2", "1");
    nw.cut("2", "3");
    nw.fire("3");
    nw.fire("1");
    assert!(nw.role("1") == Role::Leader || nw.role("3") == Role::Leader);
    assert!(nw.term("1") > 2);
}

/// §5.2 with thesis §9.6, no log: a node whose election fails because a majority already moved
/// on to a later term adopts that term, and wins when it tries again. What remains of etcd
/// TestLeaderElectionOverwriteNewerLogs(PreVote) without a log (3 won term 2 with 4 and 5).
fn leader_election_overwrite_newer_terms(pre_vote: bool) {
    let all = ids(5);
    let voted = |term| HardState {
        term,
        voted_for: Some("3".into()),
    };
    let states = [
        HardState {
            term: 1,
            voted_for: None,
        },
        HardState {
            term: 1,
            voted_for: None,
        },
        voted(2),
        voted(2),
        voted(2),
    ];
    let machines = all
        .iter()
        .zip(states)
        .map(|(id, hs)| machine(id, config_with(pre_vote, false), hs, &all));
    let mut nw = Network::from_machines(machines);

    nw.fire("1");
    assert_eq!((nw.role("1"), nw.term("1")), (Role::Follower, 2));
    nw.fire("1");
    assert_leader(&nw, "1", 3);
}

/// Ports the election part of etcd TestLeaderElectionOverwriteNewerLogs (§5.1, §5.2).
#[test]
fn leader_election_overwrite_newer_terms_test() {
    leader_election_overwrite_newer_terms(false);
}

/// Ports the election part of etcd TestLeaderElectionOverwriteNewerLogsPreVote (thesis §9.6).
#[test]
fn leader_election_overwrite_newer_terms_pre_vote() {
    leader_election_overwrite_newer_terms(true);
}

/// Thesis §3.10: the leader hands over with TimeoutNow; the target campaigns at once (no
/// pre-vote), and its request passes voters' stickiness and the leader's lease. Then back.
/// Ports etcd TestLeaderTransferToUpToDateNode and TestLeaderTransferWithCheckQuorum.
#[test]
fn leader_transfer_to_up_to_date_node() {
    for (pre_vote, check_quorum) in [(false, false), (true, true)] {
        let mut nw = net(3, pre_vote, check_quorum);
        nw.fire("1");
        assert_eq!(nw.transfer("1", Some("2")), Ok("2".into()));
        assert_leader(&nw, "2", 2);
        assert_eq!((nw.role("1"), nw.leader("1")), (Role::Follower, Some("2")));

        assert_eq!(nw.transfer("2", Some("1")), Ok("1".into()));
        assert_leader(&nw, "1", 3);
        assert_eq!(nw.leader("3"), Some("1"));
    }
}

/// Thesis §3.10: only the leader hands over; a follower is told who leads. Adapts etcd
/// TestLeaderTransferToUpToDateNodeFromFollower (etcd forwards the request to the leader).
#[test]
fn leader_transfer_from_follower_is_refused() {
    let mut nw = net(3, false, false);
    nw.fire("1");
    let err = nw.transfer("2", Some("2"));
    assert_eq!(
        err,
        Err(Error::NotLeader {
            leader: Some("1".into())
        })
    );
    assert_leader(&nw, "1", 1);
}

/// Thesis §3.10: transfer to self is a no-op. Ports etcd TestLeaderTransferToSelf.
#[test]
fn leader_transfer_to_self() {
    let mut nw = net(3, false, false);
    nw.fire("1");
    let sent = nw.sent.len();
    assert_eq!(nw.transfer("1", Some("1")), Ok("1".into()));
    assert_eq!(nw.sent.len(), sent, "nothing is sent");
    assert_leader(&nw, "1", 1);
}

/// Thesis §3.10: transfer to a node that is not a peer is refused. Ports etcd
/// TestLeaderTransferToNonExistingNode.
#[test]
fn leader_transfer_to_non_existing_node() {
    let mut nw = net(3, false, false);
    nw.fire("1");
    assert_eq!(
        nw.transfer("1", Some("4")),
        Err(Error::UnknownPeer("4".into()))
    );
    assert_leader(&nw, "1", 1);
}

/// §5.1 with thesis §3.10: a handover that did not arrive does not stop another node's election
/// at a higher term from deposing the leader. Ports etcd TestLeaderTransferReceiveHigherTermVote.
#[test]
fn leader_transfer_receive_higher_term_vote() {
    let mut nw = net(3, false, false);
    nw.fire("1");
    nw.isolate("3");
    assert_eq!(nw.transfer("1", Some("3")), Ok("3".into()));
    assert_leader(&nw, "1", 1);

    nw.fire("2");
    assert_leader(&nw, "2", 2);
    assert_eq!((nw.role("1"), nw.leader("1")), (Role::Follower, Some("2")));
}

/// Thesis §3.10: removing the target of a handover that did not arrive leaves the leader
/// leading, and the removed node is no longer heard. Ports etcd TestLeaderTransferRemoveNode.
#[test]
fn leader_transfer_remove_node() {
    let mut nw = net(3, false, false);
    nw.fire("1");
    nw.ignore(Body::TimeoutNow);
    assert_eq!(nw.transfer("1", Some("3")), Ok("3".into()));
    let now = nw.now;
    nw.node_mut("1").remove_peer(now, "3").unwrap();
    nw.recover();
    nw.run_for(3 * T); // 3, no longer hearing the leader, campaigns; 1 refuses it
    assert_leader(&nw, "1", 1);
    assert_eq!(nw.leader("2"), Some("1"));
    assert!(nw.term("3") > 1);
    let refused = nw
        .refused
        .iter()
        .map(|(m, e)| (m.from.as_str(), m.to.as_str(), e));
    assert!(
        refused
            .into_iter()
            .all(|r| r == ("3", "1", &Error::UnknownPeer("3".into())))
    );
    assert!(!nw.refused.is_empty());
}

/// Thesis §3.10: while a handover is outstanding the leader can hand back to itself (a no-op)
/// and keeps leading. Ports etcd TestLeaderTransferBack.
#[test]
fn leader_transfer_back() {
    let mut nw = net(3, false, false);
    nw.fire("1");
    nw.isolate("3");
    nw.transfer("1", Some("3")).unwrap();
    assert_eq!(nw.transfer("1", Some("1")), Ok("1".into()));
    assert_leader(&nw, "1", 1);
}

/// Thesis §3.10: while a handover to an unreachable node is outstanding, a second one to another
/// node succeeds. Ports etcd TestLeaderTransferSecondTransferToAnotherNode.
#[test]
fn leader_transfer_second_transfer_to_another_node() {
    let mut nw = net(3, false, false);
    nw.fire("1");
    nw.isolate("3");
    nw.transfer("1", Some("3")).unwrap();
    nw.transfer("1", Some("2")).unwrap();
    assert_leader(&nw, "2", 2);
    assert_eq!((nw.role("1"), nw.leader("1")), (Role::Follower, Some("2")));
}

/// §5.2: a leader's timers only send heartbeats; it never campaigns again. Ports etcd
/// TestCampaignWhileLeader and TestPreCampaignWhileLeader.
#[test]
fn campaign_while_leader() {
    for pre_vote in [false, true] {
        let mut nw = net(1, pre_vote, true);
        nw.fire("1");
        assert_leader(&nw, "1", 1);
        nw.fire("1");
        nw.run_for(10 * T);
        assert_leader(&nw, "1", 1);
        assert_eq!(nw.leader_changes("1").len(), 1);
    }
}

/// Membership (README): peers are added and removed locally; adding twice is a no-op,
/// `max_nodes` refuses more, a node cannot be its own peer. Ports etcd TestAddNode.
#[test]
fn add_node() {
    let cfg = Config {
        max_nodes: Some(3),
        ..config()
    };
    let mut m = machine("1", cfg, HardState::default(), &[]);
    m.add_peer(TICK, "2").unwrap();
    m.add_peer(TICK, "2").unwrap();
    assert_eq!(m.peers().collect::<Vec<_>>(), ["2"]);
    m.add_peer(TICK, "3").unwrap();
    assert_eq!(m.add_peer(TICK, "4"), Err(Error::TooManyNodes { max: 3 }));
    assert_eq!(m.add_peer(TICK, "1"), Err(Error::SelfAsPeer));
    assert_eq!(m.peers().collect::<Vec<_>>(), ["2", "3"]);
    assert_eq!(
        m.step(TICK, msg("4", "1", 1, Body::Heartbeat { round: 0 })),
        Err(Error::UnknownPeer("4".into()))
    );
}

/// Membership (README, no etcd equivalent): `min_nodes` holds elections (§5.2) back until
/// the cluster is that large, and status says how many nodes are missing.
#[test]
fn min_nodes_holds_elections_back() {
    let cfg = Config {
        min_nodes: 3,
        ..config()
    };
    let mut m = machine("1", cfg, HardState::default(), &ids(2));
    assert_eq!(m.status(TICK).waiting_for_nodes, 1);
    let mut now = Duration::ZERO;
    for _ in 0..5 {
        now = fire(&mut m);
        assert!(
            drain(&mut m, now).0.is_empty(),
            "no campaign with 2 of 3 nodes"
        );
        assert_eq!((m.role(), m.term()), (Role::Follower, 0));
    }
    m.add_peer(now, "3").unwrap();
    assert_eq!(m.status(now).waiting_for_nodes, 0);
    let now = fire(&mut m);
    drain(&mut m, now);
    assert_eq!((m.role(), m.term()), (Role::Candidate, 1));
}

/// Membership: removing a peer shrinks the majority; removing an unknown peer does nothing;
/// removing the node itself stops it. Ports etcd TestRemoveNode (etcd panics on removing the
/// last voter; here the node stops instead).
#[test]
fn remove_node() {
    let mut m = machine("1", config(), HardState::default(), &ids(3));
    m.remove_peer(TICK, "2").unwrap();
    m.remove_peer(TICK, "9").unwrap();
    assert_eq!(m.peers().collect::<Vec<_>>(), ["3"]);

    let now = fire(&mut m);
    drain(&mut m, now);
    m.step(now, msg("3", "1", 1, Body::VoteReply { granted: true }))
        .unwrap();
    assert_eq!(m.role(), Role::Leader, "2 of 2 after removing a peer");
    drain(&mut m, now);

    m.remove_peer(now, "1").unwrap();
    let (sent, events) = drain(&mut m, now);
    assert!(sent.is_empty());
    assert_eq!(events.last(), Some(&Event::Stopped));
    assert!(m.is_stopped() && m.status(now).stopped);
    assert_eq!((m.leader(), m.next_deadline()), (None, None));
    assert_eq!(
        m.step(now, msg("3", "1", 1, Body::HeartbeatReply { round: 0 })),
        Err(Error::Stopped)
    );
    assert_eq!(m.add_peer(now, "2"), Err(Error::Stopped));
}

/// Promise 5 of the README (the last event agrees with status()): a leader that removes itself
/// gives up leadership in what it reports. Not in etcd (there it panics).
#[test]
fn removed_leader_no_longer_reports_leading() {
    let mut nw = net(3, false, true);
    nw.fire("1");
    let now = nw.now;
    nw.node_mut("1").remove_peer(now, "1").unwrap();
    nw.deliver();
    let status = nw.node("1").status(now);
    assert!(status.stopped);
    assert_eq!(status.leader, None);
    assert_ne!(status.role, Role::Leader);
}

/// Thesis §6.2: adding a peer does not make a check-quorum leader step down at the very next
/// check; it steps down only once it has not heard the new majority for an election timeout.
/// Ports etcd TestAddNodeCheckQuorum (etcd counts a new peer as recently active).
#[test]
fn add_node_check_quorum() {
    let mut m = machine("1", config_with(false, true), HardState::default(), &[]);
    let elected = fire(&mut m);
    drain(&mut m, elected);
    assert_eq!(m.role(), Role::Leader);
    let mut now = elected;
    while now < elected + T - TICK {
        now += TICK;
        m.handle_timeout(now);
    }
    m.add_peer(now, "2").unwrap();
    now += TICK;
    m.handle_timeout(now);
    assert_eq!(m.role(), Role::Leader, "one tick after adding the peer");
    for _ in 0..20 {
        now += TICK;
        m.handle_timeout(now);
    }
    assert_eq!(
        m.role(),
        Role::Follower,
        "an election timeout without hearing the new peer"
    );
}

/// §5.1: a message with an old term changes nothing (no leader, no vote, no campaign, no
/// timer reset, no grant counted); requests get an answer that tells the sender our term.
/// Ports etcd TestStepIgnoreOldTermMsg, for every kind of message.
#[test]
fn step_ignore_old_term_msg() {
    let bodies = [
        (
            Body::Heartbeat { round: 0 },
            Some(Body::HeartbeatReply { round: 0 }),
        ),
        (Body::HeartbeatReply { round: 0 }, None),
        (Body::PreVote, Some(Body::PreVoteReply { granted: false })),
        (Body::PreVoteReply { granted: true }, None),
        (
            Body::Vote { transfer: true },
            Some(Body::VoteReply { granted: false }),
        ),
        (Body::VoteReply { granted: true }, None),
        (Body::TimeoutNow, None),
    ];
    for (body, reply) in bodies {
        let mut m = machine(
            "1",
            config(),
            HardState {
                term: 2,
                voted_for: None,
            },
            &ids(3),
        );
        let now = fire(&mut m);
        drain(&mut m, now);
        assert_eq!((m.role(), m.term()), (Role::Candidate, 3));
        let (state, deadline) = (m.hard_state(), m.next_deadline());
        m.step(now, msg("2", "1", 2, body)).unwrap();
        let (sent, _) = drain(&mut m, now);
        assert_eq!(
            (m.role(), m.leader(), m.hard_state()),
            (Role::Candidate, None, state),
            "{body:?}"
        );
        assert_eq!(m.next_deadline(), deadline, "{body:?}");
        let want: Vec<_> = reply.into_iter().map(|r| msg("1", "2", 3, r)).collect();
        assert_eq!(sent, want, "{body:?}");
    }
}

/// §5.2 (a majority of distinct servers): a duplicated grant counts once, for votes and
/// pre-votes. Guards against the original crate's bug of counting grants, not voters.
#[test]
fn duplicated_grant_counts_once() {
    for pre_vote in [false, true] {
        let mut m = machine(
            "1",
            config_with(pre_vote, false),
            HardState::default(),
            &ids(5),
        );
        let now = fire(&mut m);
        drain(&mut m, now);
        let (body, term) = if pre_vote {
            (Body::PreVoteReply { granted: true }, 1)
        } else {
            (Body::VoteReply { granted: true }, 1)
        };
        for _ in 0..3 {
            m.step(now, msg("2", "1", term, body)).unwrap();
            drain(&mut m, now);
        }
        let stuck = if pre_vote {
            Role::PreCandidate
        } else {
            Role::Candidate
        };
        assert_eq!(m.role(), stuck, "2 of 5, however often 2 says yes");
        m.step(now, msg("3", "1", term, body)).unwrap();
        drain(&mut m, now);
        let next = if pre_vote {
            Role::Candidate
        } else {
            Role::Leader
        };
        assert_eq!(m.role(), next);
    }
}

/// §5.2 with the README's durable state: a candidate's own vote counts only once it is saved
/// (`persisted` with a state holding it), so it cannot win on an unsaved vote. Also ports etcd
/// TestCandidateDeliversPreCandidateSelfVoteAfterBecomingCandidate.
#[test]
fn own_vote_counts_only_after_persisted() {
    let mut m = machine("1", config_with(true, false), HardState::default(), &ids(3));
    let now = fire(&mut m);
    assert_eq!(m.role(), Role::PreCandidate);
    m.step(now, msg("2", "1", 1, Body::PreVoteReply { granted: true }))
        .unwrap();
    m.step(now, msg("3", "1", 1, Body::PreVoteReply { granted: true }))
        .unwrap();
    assert_eq!((m.role(), m.term()), (Role::Candidate, 1));
    let ready = m.ready();
    let saved = ready.hard_state.unwrap();
    assert_eq!(
        saved,
        HardState {
            term: 1,
            voted_for: Some("1".into())
        }
    );

    m.step(now, msg("2", "1", 1, Body::VoteReply { granted: true }))
        .unwrap();
    assert_eq!(
        m.role(),
        Role::Candidate,
        "2's vote alone is not a majority"
    );
    m.persisted(
        now,
        &HardState {
            term: 0,
            voted_for: None,
        },
    );
    assert_eq!(
        m.role(),
        Role::Candidate,
        "an older state does not hold the vote"
    );
    m.persisted(now, &saved);
    assert_eq!(m.role(), Role::Leader);

    // A one-node cluster, too.
    let mut m = machine("1", config(), HardState::default(), &[]);
    let now = fire(&mut m);
    assert_eq!(m.role(), Role::Candidate);
    let saved = m.ready().hard_state.unwrap();
    assert_eq!(m.role(), Role::Candidate);
    m.persisted(now, &saved);
    assert_eq!(m.role(), Role::Leader);
}

/// §5.2: a (pre-)candidate that learns of the winner before its own vote is saved stays
/// follower when the save completes and late grants arrive. Ports etcd
/// TestCandidateSelfVoteAfterLostElection(PreVote).
#[test]
fn candidate_self_vote_after_lost_election() {
    for pre_vote in [false, true] {
        let mut m = machine(
            "1",
            config_with(pre_vote, false),
            HardState::default(),
            &ids(3),
        );
        let now = fire(&mut m);
        let pending = m.ready();
        m.step(now, msg("2", "1", 1, Body::Heartbeat { round: 0 }))
            .unwrap();
        assert_eq!((m.role(), m.leader()), (Role::Follower, Some("2")));
        if let Some(hs) = pending.hard_state {
            m.persisted(now, &hs);
        }
        m.step(now, msg("3", "1", 1, Body::PreVoteReply { granted: true }))
            .unwrap();
        m.step(now, msg("3", "1", 1, Body::VoteReply { granted: true }))
            .unwrap();
        assert_eq!(
            (m.role(), m.leader()),
            (Role::Follower, Some("2")),
            "pre_vote={pre_vote}"
        );
    }
}

/// §5.2 with the README's `min_nodes` (no etcd equivalent): a one-node cluster elects itself
/// only with `min_nodes = 1`; with the default (3) it waits, and says for how many nodes.
#[test]
fn one_node_cluster_elects_itself_only_with_min_nodes_1() {
    let mut nw = Network::new(
        1,
        Config {
            min_nodes: 1,
            ..Config::fast_lan()
        },
    );
    nw.run_for(Duration::from_secs(1));
    assert_leader(&nw, "1", 1);
    assert_eq!(nw.leader_changes("1"), vec![(Some("1".into()), 1)]);

    let mut nw = Network::new(1, Config::fast_lan());
    nw.run_for(Duration::from_secs(10));
    assert_eq!((nw.role("1"), nw.term("1")), (Role::Follower, 0));
    assert_eq!(nw.node("1").status(nw.now).waiting_for_nodes, 2);
}

/// Thesis §9.6: a pre-candidate that cannot win never bumps (or saves) its term, however often
/// it tries; its requests carry the term it would campaign in. Without pre-vote each try
/// bumps the term.
#[test]
fn pre_vote_does_not_bump_term() {
    let mut nw = net(3, true, false);
    nw.isolate("1");
    for _ in 0..5 {
        nw.fire("1");
    }
    assert_eq!((nw.role("1"), nw.term("1")), (Role::PreCandidate, 0));
    assert_eq!(nw.durable["1"].term, 0);
    let pre_votes: Vec<_> = nw.sent.iter().filter(|m| m.body == Body::PreVote).collect();
    assert_eq!(pre_votes.len(), 10);
    assert!(pre_votes.iter().all(|m| m.term == 1));

    let mut nw = net(3, false, false);
    nw.isolate("1");
    for _ in 0..5 {
        nw.fire("1");
    }
    assert_eq!(nw.durable["1"].term, 5);
}

/// Promise 2 of the README (fencing token) and §5.2 Election Safety: under a fixed pseudo-random
/// schedule of partitions and timeouts, the term in each node's LeaderChanged events never goes
/// down, no two nodes announce different leaders for one term, and a saved term never goes down.
#[test]
fn leader_changed_term_never_goes_down() {
    for (pre_vote, check_quorum) in [(false, false), (true, true), (true, false), (false, true)] {
        let mut nw = net(5, pre_vote, check_quorum);
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut saved_terms = [0; 5];
        for _ in 0..300 {
            let id = (next(5) + 1).to_string();
            match next(6) {
                0 => nw.isolate(&id),
                1 => nw.cut(&id, &(next(5) + 1).to_string()),
                2 => nw.recover(),
                3 => nw.fire(&id),
                _ => nw.run_for(TICK * next(30) as u32),
            }
            for (i, id) in ids(5).iter().enumerate() {
                assert!(nw.durable[id].term >= saved_terms[i]);
                saved_terms[i] = nw.durable[id].term;
            }
        }
        let mut leader_of_term = std::collections::BTreeMap::new();
        for id in ids(5) {
            let changes = nw.leader_changes(&id);
            assert!(
                changes.windows(2).all(|w| w[0].1 <= w[1].1),
                "node {id}: {changes:?}"
            );
            for (leader, term) in changes.into_iter().filter(|(l, _)| l.is_some()) {
                let first = leader_of_term.entry(term).or_insert_with(|| leader.clone());
                assert_eq!(*first, leader, "two leaders in term {term}");
            }
        }
        assert!(
            leader_of_term.len() > 3,
            "the schedule should see several terms with leaders"
        );
    }
}

/// §5.1 / §5.2: a candidate that hears a heartbeat from a leader of a higher term takes the
/// leader's term and follows it. Ports etcd TestCandidateResetTermMsgHeartbeat.
#[test]
fn candidate_reset_term_msg_heartbeat() {
    let mut nw = net(3, false, false);
    nw.fire("1");
    nw.isolate("3");
    nw.fire("2");
    nw.fire("1");
    assert_leader(&nw, "1", 3);
    assert_eq!(nw.role("2"), Role::Follower);

    nw.fire("3");
    assert_eq!((nw.role("3"), nw.term("3")), (Role::Candidate, 2));
    nw.recover();
    nw.heartbeat("1");
    assert_eq!(
        (nw.role("3"), nw.term("3"), nw.leader("3")),
        (Role::Follower, 3, Some("1"))
    );
}

/// §5.1: from any role, a vote request or a heartbeat with a higher term makes the node a
/// follower of that term (leaderless after a vote request, following the sender after a
/// heartbeat). Ports etcd TestAllServerStepdown.
#[test]
fn all_server_stepdown() {
    for role in [
        Role::Follower,
        Role::PreCandidate,
        Role::Candidate,
        Role::Leader,
    ] {
        let cfg = config_with(role == Role::PreCandidate, false);
        let mut m = machine("1", cfg, HardState::default(), &ids(3));
        let now = match role {
            Role::Follower => {
                m.step(TICK, msg("3", "1", 1, Body::HeartbeatReply { round: 0 }))
                    .unwrap();
                TICK
            }
            _ => fire(&mut m),
        };
        drain(&mut m, now);
        if role == Role::Leader {
            m.step(now, msg("3", "1", 1, Body::VoteReply { granted: true }))
                .unwrap();
        }
        assert_eq!(m.role(), role);
        for (body, leader) in [
            (Body::Vote { transfer: false }, None),
            (Body::Heartbeat { round: 0 }, Some("2")),
        ] {
            m.step(now, msg("2", "1", 3, body)).unwrap();
            assert_eq!(
                (m.role(), m.term(), m.leader()),
                (Role::Follower, 3, leader),
                "{role:?} {body:?}"
            );
        }
    }
}

/// §5.2: the election timeout is uniform in [T, 2T): the chance that it has fired after `e`
/// is (e - T) / T, clamped to [0, 1]. Ports etcd TestPastElectionTimeout.
#[test]
fn past_election_timeout() {
    let ms = Duration::from_millis;
    for (elapsed, want) in [
        (ms(50), 0.0),
        (ms(100), 0.0),
        (ms(130), 0.3),
        (ms(150), 0.5),
        (ms(180), 0.8),
        (ms(200), 1.0),
    ] {
        let mut m = machine("1", config(), HardState::default(), &ids(2));
        let mut now = Duration::ZERO;
        let mut fired = 0;
        for _ in 0..4000 {
            now += TICK;
            m.step(now, msg("2", "1", 1, Body::Heartbeat { round: 0 }))
                .unwrap();
            if m.next_deadline().unwrap() <= now + elapsed {
                fired += 1;
            }
        }
        let got = f64::from(fired) / 4000.0;
        assert!(
            (got - want).abs() < 0.03,
            "after {elapsed:?}: {got}, want {want}"
        );
    }
}

/// Thesis §9.6 in a rolling upgrade: a node without pre-vote, cut off, ran its term up; it
/// restarts with pre-vote from its saved state. Its pre-votes do not disturb the live leader,
/// its higher term (in the answer to the leader's heartbeat) frees it by deposing the leader,
/// and the cluster elects a leader again once the old one is gone. Ports etcd
/// TestPreVoteMigrationWithFreeStuckPreCandidate and TestPreVoteMigrationCanCompleteElection.
#[test]
fn pre_vote_migration() {
    let all = ids(3);
    let cfg = |pre_vote| config_with(pre_vote, true);
    let machines = all
        .iter()
        .map(|id| machine(id, cfg(id != "3"), HardState::default(), &all));
    let mut nw = Network::from_machines(machines);
    nw.fire("1");
    nw.isolate("3");
    let end = nw.now + 10 * T;
    assert!(nw.run_until_or(end, |nw| nw.term("3") == 3));
    assert_leader(&nw, "1", 1);
    assert_eq!((nw.role("3"), nw.durable["3"].term), (Role::Candidate, 3));

    nw.restart("3", cfg(true));
    nw.recover();
    nw.drop_link("1", "3");
    let end = nw.now + 3 * T;
    assert!(nw.run_until_or(end, |nw| nw.role("3") == Role::PreCandidate));
    assert_leader(&nw, "1", 1);
    assert_eq!((nw.term("2"), nw.term("3")), (1, 3));

    nw.recover();
    nw.heartbeat("1"); // 3 answers with term 3
    assert_eq!(
        (nw.role("1"), nw.term("1")),
        (Role::Follower, 3),
        "the stuck node is freed"
    );

    nw.isolate("1");
    let end = nw.now + 10 * T;
    assert!(nw.run_until_or(end, |nw| {
        ["2", "3"].iter().any(|id| nw.role(id) == Role::Leader)
    }));
    let (leader, other) = if nw.role("2") == Role::Leader {
        ("2", "3")
    } else {
        ("3", "2")
    };
    assert!(nw.term(leader) > 3);
    nw.run_for(T);
    assert_eq!(nw.leader(other), Some(leader));
}

/// §5.2: heartbeats are answered, in the follower's term. Ports etcd TestHandleHeartbeat
/// (the commit index part does not apply).
#[test]
fn handle_heartbeat() {
    let mut m = machine(
        "1",
        config(),
        HardState {
            term: 2,
            voted_for: None,
        },
        &ids(2),
    );
    m.step(TICK, msg("2", "1", 2, Body::Heartbeat { round: 0 }))
        .unwrap();
    assert_eq!(
        drain(&mut m, TICK).0,
        vec![msg("1", "2", 2, Body::HeartbeatReply { round: 0 })]
    );
    assert_eq!(m.status(TICK + TICK).since_leader_heard, Some(TICK));
}
