//! The machine at the edges: hostile terms, TimeoutNow from a node that does not lead, the
//! check-quorum bound, handover targets, stopping after a failed save, and promise 4 with and
//! without check-quorum. Each test names the README promise or rule it checks.

mod support;

use std::time::Duration;

use almost_raft_core::codec::DecodeError;
use almost_raft_core::{Body, Error, Event, HardState, MAX_TERM, MAX_TERM_JUMP, Role};
use support::{Network, T, TICK, config_with, drain, fire, ids, machine, msg};

/// A leader "1" of term 1 among "1".."3", everything delivered.
fn cluster(pre_vote: bool, check_quorum: bool) -> Network {
    let mut nw = Network::new(3, config_with(pre_vote, check_quorum));
    nw.fire("1");
    assert_eq!(nw.role("1"), Role::Leader);
    nw
}

/// docs/wire.md "Terms": a term above MAX_TERM is malformed, from the wire or handed in
/// directly; the node's term does not move, and it goes on.
#[test]
fn a_term_above_max_term_is_refused_and_changes_nothing() {
    for body in [
        Body::Heartbeat { round: 0 },
        Body::HeartbeatReply { round: 0 },
        Body::Vote { transfer: true },
    ] {
        let mut nw = cluster(true, true);
        for term in [MAX_TERM + 1, u64::MAX] {
            let err = nw
                .node_mut("2")
                .step(TICK, msg("3", "2", term, body))
                .unwrap_err();
            assert_eq!(err, Error::Decode(DecodeError::TermTooLarge(term)));
            assert_eq!(err.kind(), almost_raft_core::ErrorKind::MalformedMessage);
        }
        assert_eq!((nw.term("2"), nw.leader("2")), (1, Some("1")), "{body:?}");
    }
}

/// README, hostile terms: no node takes a jump beyond MAX_TERM_JUMP from one
/// message (no honest peer is that far ahead); a jump of exactly MAX_TERM_JUMP is adopted
/// (Raft §5.1). Without check-quorum and pre-vote, so nothing else stands in the way.
#[test]
fn a_term_jump_beyond_max_term_jump_is_ignored_and_one_within_is_adopted() {
    let mut nw = cluster(false, false);
    let far = 1 + MAX_TERM_JUMP + 1;
    nw.node_mut("1")
        .step(TICK, msg("3", "1", far, Body::HeartbeatReply { round: 0 }))
        .unwrap();
    assert_eq!((nw.role("1"), nw.term("1")), (Role::Leader, 1), "ignored");
    nw.node_mut("1")
        .step(TICK, msg("3", "1", MAX_TERM, Body::Heartbeat { round: 0 }))
        .unwrap();
    assert_eq!((nw.role("1"), nw.term("1")), (Role::Leader, 1), "ignored");
    let within = 1 + MAX_TERM_JUMP;
    nw.node_mut("1")
        .step(
            TICK,
            msg("3", "1", within, Body::HeartbeatReply { round: 0 }),
        )
        .unwrap();
    assert_eq!(
        (nw.role("1"), nw.term("1")),
        (Role::Follower, within),
        "adopted"
    );
}

/// A node at MAX_TERM cannot campaign (there is no next term): it says so and stays a
/// follower; its term never wraps (the defect: `term + 1` wrapped to 0 in release builds).
#[test]
fn a_node_at_max_term_does_not_campaign_and_never_wraps() {
    for pre_vote in [false, true] {
        let state = HardState {
            term: MAX_TERM,
            voted_for: None,
        };
        let mut m = machine("1", config_with(pre_vote, true), state, &ids(3));
        for _ in 0..5 {
            let at = fire(&mut m);
            let (sent, _) = drain(&mut m, at);
            assert!(sent.is_empty(), "no campaign past MAX_TERM: {sent:?}");
            assert_eq!((m.role(), m.term()), (Role::Follower, MAX_TERM));
        }
    }
}

/// README promise 4 / thesis §4.2.3: a sticky follower and a check-quorum leader ignore vote
/// requests with any higher term, hostile jumps included, without adopting the term; a
/// pre-vote never moves anyone's term, so a hostile one cannot spread.
#[test]
fn hostile_vote_requests_move_no_term_of_a_healthy_cluster() {
    let mut nw = cluster(true, true);
    let huge = 1 + MAX_TERM_JUMP;
    for to in ["1", "2"] {
        for body in [Body::PreVote, Body::Vote { transfer: false }] {
            nw.node_mut(to)
                .step(TICK, msg("3", to, huge, body))
                .unwrap();
            nw.deliver();
        }
    }
    for id in ["1", "2"] {
        assert_eq!((nw.term(id), nw.leader(id)), (1, Some("1")), "{id}");
    }
    // Once the leader is silent, a follower grants a hostile pre-vote, but its term stays.
    let later = nw.now + T * 2;
    nw.node_mut("2")
        .step(later, msg("3", "2", huge, Body::PreVote))
        .unwrap();
    let (sent, _) = drain(nw.node_mut("2"), later);
    assert_eq!(
        sent,
        vec![msg("2", "3", huge, Body::PreVoteReply { granted: true })]
    );
    assert_eq!(nw.term("2"), 1, "pre-vote spreads no term");
}

/// Leadership transfer (thesis §3.10) starts only at the leader's word: a TimeoutNow from a
/// node that does not lead is ignored, so a forged one cannot make a follower campaign.
#[test]
fn timeout_now_from_a_node_that_does_not_lead_is_ignored() {
    let mut nw = cluster(true, true);
    nw.node_mut("2")
        .step(TICK, msg("3", "2", 1, Body::TimeoutNow))
        .unwrap();
    assert_eq!((nw.role("2"), nw.term("2")), (Role::Follower, 1));
    nw.node_mut("2")
        .step(TICK, msg("1", "2", 1, Body::TimeoutNow))
        .unwrap();
    assert_eq!(
        (nw.role("2"), nw.term("2")),
        (Role::Candidate, 2),
        "the leader's is obeyed"
    );
}

/// README promise 3, `Config::check_quorum`: a leader that last heard a majority at `h`
/// steps down at the first heartbeat tick after `h + T`: within T + one heartbeat interval,
/// never later (it used to check once per T, so up to 2T).
#[test]
fn check_quorum_steps_down_within_one_election_timeout_and_one_heartbeat() {
    for cut_at_tick in 0..12 {
        let mut nw = cluster(true, true);
        for _ in 0..cut_at_tick {
            nw.heartbeat("1");
        }
        let heard = nw.now; // the followers answered the last round at once
        nw.isolate("1");
        while nw.role("1") == Role::Leader {
            nw.fire("1");
        }
        let stepped_down = nw.now;
        assert!(
            stepped_down > heard + T && stepped_down <= heard + T + TICK,
            "heard at {heard:?}, stepped down at {stepped_down:?}"
        );
    }
}

/// Handover (thesis §3.10) goes only to a peer heard from in the current term: never to a
/// newly added peer that has not answered (it may be dead), and with none it is refused.
#[test]
fn transfer_picks_only_a_peer_heard_from_in_this_term() {
    let mut nw = cluster(true, true);
    let now = nw.now;
    nw.node_mut("1").add_peer(now, "4").unwrap();
    nw.node_mut("1").add_peer(now, "5").unwrap();
    let target = nw.transfer("1", None).unwrap();
    assert!(["2", "3"].contains(&target.as_str()), "picked {target}");

    // A leader whose peers have not answered in its term has nobody to hand over to.
    let mut m = machine(
        "1",
        config_with(false, false),
        HardState::default(),
        &ids(1),
    );
    fire(&mut m);
    drain(&mut m, T);
    assert_eq!(m.role(), Role::Leader);
    m.add_peer(T, "2").unwrap();
    assert_eq!(m.transfer_leadership(T, None), Err(Error::NoPeers));
    m.step(T, msg("2", "1", 1, Body::HeartbeatReply { round: 0 }))
        .unwrap();
    assert_eq!(m.transfer_leadership(T, None), Ok("2".into()));
}

/// README promise 6: a node stopped by its driver (a failed save) reports no leader, in the
/// last saved term, then `Stopped`; it sends and saves nothing more and refuses every call.
#[test]
fn a_stopped_leader_reports_no_leader_in_its_saved_term() {
    let mut nw = cluster(true, true);
    let now = nw.now;
    let m = nw.node_mut("1");
    // It adopts a higher term, but that save fails: the driver stops it.
    m.step(now, msg("2", "1", 5, Body::HeartbeatReply { round: 0 }))
        .unwrap();
    assert!(m.has_ready());
    m.stop(now);
    let ready = m.ready();
    assert_eq!(ready.hard_state, None);
    assert!(ready.messages.is_empty());
    assert_eq!(
        ready.events,
        vec![
            Event::RoleChanged {
                role: Role::Follower,
                term: 1
            },
            Event::LeaderChanged {
                leader: None,
                term: 1
            },
            Event::Stopped
        ]
    );
    assert!(m.is_stopped() && m.leader().is_none() && m.role() == Role::Follower);
    assert_eq!(m.next_deadline(), None);
    assert_eq!(
        m.step(now, msg("2", "1", 5, Body::Heartbeat { round: 0 })),
        Err(Error::Stopped)
    );
    assert_eq!(m.add_peer(now, "9"), Err(Error::Stopped));
}

/// README promise 4 holds with check-quorum on (the default): a node rejoining after a
/// partition does not depose the leader. Without check-quorum the leader has no lease and
/// grants pre-votes, so in three nodes the rejoining node wins a pre-vote majority (itself
/// and the leader) and deposes it: the README states the condition.
#[test]
fn a_rejoining_node_disrupts_only_without_check_quorum() {
    for check_quorum in [true, false] {
        let mut nw = cluster(true, check_quorum);
        nw.isolate("3");
        nw.run_for(Duration::from_secs(2));
        // Run on (node 3 still cut off) until node 3's timer is the next to fire, so that
        // firing it skips no one's heartbeat; it rejoins and campaigns at once.
        let third_is_next = |nw: &Network| {
            let d3 = nw.node("3").next_deadline();
            ["1", "2"].iter().all(|o| nw.node(o).next_deadline() >= d3)
        };
        nw.run_until_or(nw.now + Duration::from_secs(10), third_is_next);
        nw.recover();
        nw.fire("3");
        nw.run_for(T * 4);
        let deposed = nw.role("1") != Role::Leader || nw.term("1") != 1;
        assert_eq!(deposed, !check_quorum, "check_quorum {check_quorum}");
    }
}
