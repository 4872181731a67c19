//! Death evidence (`Machine::peer_unreachable`) and the ack barrier that keeps the lease safe
//! when evidence is acted on, true or false. Time is the test network's virtual clock.

mod support;

use std::time::Duration;

use almost_raft_core::{Body, Error, HardState, Machine, Role};
use support::{Network, T, TICK, config_with, drain, ids, machine, msg};

/// Three nodes with pre-vote and check-quorum; "1" leads term 1 and every follower has
/// answered a heartbeat round.
fn led_by_1() -> Network {
    let mut nw = Network::new(3, config_with(true, true));
    nw.fire("1");
    nw.heartbeat("1");
    assert_eq!(nw.role("1"), Role::Leader);
    nw
}

#[test]
fn followers_with_evidence_elect_a_new_leader_at_once() {
    let mut nw = led_by_1();
    nw.black_hole("1"); // its process died
    let died = nw.now;
    for id in ["2", "3"] {
        nw.node_mut(id).peer_unreachable(died, "1").unwrap();
    }
    // "2" comes first by id; "3" would campaign a tenth of a heartbeat interval later.
    nw.run_until_or(died + TICK / 10, |n| n.role("2") == Role::Leader);
    assert_eq!(nw.role("2"), Role::Leader);
    assert_eq!(nw.term("2"), 2);
    assert_eq!(
        nw.now, died,
        "elected when the evidence came, not after a timeout"
    );
    assert_eq!(nw.leader("3"), Some("2"));
}

#[test]
fn without_evidence_the_same_election_waits_for_the_timer() {
    let mut nw = led_by_1();
    nw.black_hole("1");
    let died = nw.now;
    nw.run_until_or(died + 3 * T, |n| {
        n.role("2") == Role::Leader || n.role("3") == Role::Leader
    });
    assert!(nw.now >= died + T, "elected at {:?}", nw.now - died);
}

#[test]
fn false_evidence_at_one_follower_changes_no_term() {
    let mut nw = led_by_1();
    let now = nw.now;
    nw.node_mut("2").peer_unreachable(now, "1").unwrap();
    nw.run_for(T / 2); // "2" asks for pre-votes: "3" still hears "1", and "1" leads
    for id in ["1", "2", "3"] {
        assert_eq!(nw.term(id), 1, "{id}");
    }
    assert_eq!(nw.role("1"), Role::Leader);
    nw.heartbeat("1");
    assert_eq!(nw.leader("2"), Some("1"));
}

#[test]
fn a_heartbeat_before_its_turn_cancels_the_campaign() {
    let mut m = machine("3", config_with(true, true), HardState::default(), &ids(3));
    m.step(TICK, msg("1", "3", 1, Body::Heartbeat { round: 1 }))
        .unwrap();
    drain(&mut m, TICK);
    m.peer_unreachable(TICK, "1").unwrap(); // "3" waits for "2"'s turn first
    m.step(TICK, msg("1", "3", 1, Body::Heartbeat { round: 2 }))
        .unwrap();
    drain(&mut m, TICK);
    let turn = m.next_deadline().unwrap();
    m.handle_timeout(turn);
    let (sent, _) = drain(&mut m, turn);
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(m.leader(), Some("1"));
}

#[test]
fn evidence_about_anyone_but_the_leader_or_without_pre_vote_changes_nothing() {
    let mut m = machine("3", config_with(true, true), HardState::default(), &ids(3));
    m.step(TICK, msg("1", "3", 1, Body::Heartbeat { round: 1 }))
        .unwrap();
    drain(&mut m, TICK);
    let deadline = m.next_deadline();
    m.peer_unreachable(TICK, "2").unwrap();
    assert_eq!(m.next_deadline(), deadline);
    assert!(matches!(
        m.peer_unreachable(TICK, "9"),
        Err(Error::UnknownPeer(p)) if p == "9"
    ));

    let mut m = machine("3", config_with(false, true), HardState::default(), &ids(3));
    m.step(TICK, msg("1", "3", 1, Body::Heartbeat { round: 1 }))
        .unwrap();
    drain(&mut m, TICK);
    let deadline = m.next_deadline();
    m.peer_unreachable(TICK, "1").unwrap();
    assert_eq!(m.next_deadline(), deadline, "no campaign without pre-vote");
}

fn reply_round(m: &mut Machine, at: Duration, from: &str, term: u64, round: u64) -> u64 {
    m.step(
        at,
        msg(
            from,
            m.id().to_owned().as_str(),
            term,
            Body::Heartbeat { round },
        ),
    )
    .unwrap();
    let (sent, _) = drain(m, at);
    match sent.last().map(|s| s.body) {
        Some(Body::HeartbeatReply { round }) => round,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_node_counts_for_a_new_leaders_lease_only_t_after_it_stood_behind_the_old_one() {
    let mut m = machine("3", config_with(true, true), HardState::default(), &ids(3));
    assert_eq!(reply_round(&mut m, TICK, "1", 1, 4), 4);
    // A leader of a later term, within T of the last acknowledgement: round 0.
    assert_eq!(reply_round(&mut m, TICK + T / 2, "2", 2, 1), 0);
    assert_eq!(reply_round(&mut m, TICK + T - TICK / 10, "2", 2, 2), 0);
    // T after it: the new leader's rounds count.
    assert_eq!(reply_round(&mut m, TICK + T, "2", 2, 3), 3);
    assert_eq!(reply_round(&mut m, TICK + T + TICK, "2", 2, 4), 4);
}

#[test]
fn a_restarted_node_counts_for_no_lease_for_t_after_it_starts() {
    let state = HardState {
        term: 1,
        voted_for: None,
    };
    let mut m = machine("3", config_with(true, true), state, &ids(3));
    assert_eq!(reply_round(&mut m, T - TICK, "1", 1, 7), 0);
    assert_eq!(reply_round(&mut m, T, "1", 1, 8), 8);
}

/// "1" leads, cut off from "3" long enough that "3" no longer stands behind it, and renews
/// its lease through "2". False evidence makes "2" campaign; "3" votes; "2" leads term 2
/// while "1" (which hears nothing from "2" any more) still holds its lease. "2" had stood
/// behind "1" until the instant of the evidence: it gets no lease until T after that, and
/// by then "1"'s lease is over.
#[test]
fn a_leader_elected_on_false_evidence_holds_no_lease_beside_the_old_one() {
    let mut nw = led_by_1();
    nw.cut("1", "3");
    nw.run_for(2 * T);
    nw.drop_link("2", "1");
    let now = nw.now;
    assert!(nw.node("1").lease_bound().is_some_and(|b| b > now));
    nw.node_mut("2").peer_unreachable(now, "1").unwrap();
    nw.run_until_or(now + T, |n| n.role("2") == Role::Leader);
    assert_eq!(
        (nw.role("2"), nw.now),
        (Role::Leader, now),
        "elected at once"
    );
    nw.run_until_or(now + 3 * T, |n| n.node("2").lease_bound().is_some());
    let leased_at = nw.now;
    let old_bound = nw.node("1").lease_bound();
    assert!(
        old_bound.is_none_or(|b| b <= leased_at),
        "the old lease ends at {old_bound:?}, the new one starts at {leased_at:?}"
    );
    assert!(
        leased_at >= now + T,
        "the new lease starts {:?} after the evidence",
        leased_at - now
    );
}

#[test]
fn a_handover_target_holds_a_lease_at_once() {
    let mut nw = led_by_1();
    nw.transfer("1", Some("2")).unwrap();
    assert_eq!(nw.role("2"), Role::Leader);
    nw.heartbeat("2");
    assert!(nw.node("2").lease_bound().is_some());
}

/// "2" hears of the death first and asks for pre-votes; "3" still stands behind "1" and
/// refuses. When "3"'s own evidence comes, it answers "2" again, granted: "2" is elected at
/// that instant, without waiting for "3"'s turn.
#[test]
fn a_refused_pre_vote_is_answered_again_when_the_evidence_arrives() {
    let mut nw = led_by_1();
    nw.black_hole("1");
    let died = nw.now;
    nw.node_mut("2").peer_unreachable(died, "1").unwrap();
    nw.run_until_or(died, |_| false); // "2" campaigns at once; "3" refuses
    assert_eq!(nw.role("2"), Role::PreCandidate);
    nw.node_mut("3").peer_unreachable(died, "1").unwrap();
    nw.deliver();
    assert_eq!(nw.role("2"), Role::Leader);
    assert_eq!(nw.now, died);
    assert_eq!(nw.leader("3"), Some("2"));
    assert!(
        !nw.sent
            .iter()
            .any(|m| m.from == "3" && m.body == Body::PreVote)
    );
}
