//! The leader lease (Raft thesis §6.4.1) and the stickiness it rests on. The simulator checks
//! the lease's promise (never two leases at one instant) under drift and faults; these tests
//! pin each rule down on one machine, where a broken rule shows as one wrong value.

mod support;

use std::time::Duration;

use almost_raft_core::{Body, Envelope, Event, HardState, Machine, Role};
use support::{T, TICK, config_with, drain, fire, ids, machine, msg};

/// Node "1" of three, with check-quorum and pre-vote, elected in term 1 with "2"'s vote.
/// Returns it with the time it was elected (when round 1 went out).
fn leader() -> (Machine, Duration) {
    let mut m = machine("1", config_with(true, true), HardState::default(), &ids(3));
    let now = fire(&mut m);
    drain(&mut m, now);
    m.step(now, msg("2", "1", 1, Body::PreVoteReply { granted: true }))
        .unwrap();
    drain(&mut m, now);
    m.step(now, msg("2", "1", 1, Body::VoteReply { granted: true }))
        .unwrap();
    let (sent, _) = drain(&mut m, now);
    assert_eq!(m.role(), Role::Leader);
    assert!(sent.iter().all(|s| s.body == Body::Heartbeat { round: 1 }));
    (m, now)
}

fn lease_events(events: &[Event]) -> Vec<bool> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::LeaseChanged { held, .. } => Some(*held),
            _ => None,
        })
        .collect()
}

fn ack(m: &mut Machine, at: Duration, from: &str, round: u64) -> Vec<Event> {
    m.step(at, msg(from, "1", 1, Body::HeartbeatReply { round }))
        .unwrap();
    drain(m, at).1
}

#[test]
fn a_leader_holds_no_lease_until_a_majority_answered_a_round() {
    let (m, elected) = leader();
    assert_eq!(m.lease_until(), None);
    assert!(!m.holds_lease(elected));
    assert_eq!(m.status(elected).lease_remaining, None);
}

/// The lease runs from the send time of the answered round, not from the answer.
#[test]
fn the_lease_runs_from_the_send_time_of_the_round_a_majority_answered() {
    let (mut m, elected) = leader();
    let lease = m.config().lease_duration();
    let events = ack(&mut m, elected + 3 * Duration::from_millis(1), "2", 1);
    assert_eq!(lease_events(&events), vec![true]);
    assert_eq!(m.lease_bound(), Some(elected + lease));
    // The application's lease ends `lease_margin` before the bound.
    let margin = m.config().lease_margin();
    assert_eq!(m.lease_until(), Some(elected + lease - margin));
    let at = elected + TICK / 2;
    assert_eq!(
        m.status(at).lease_remaining,
        Some(elected + lease - margin - at)
    );
}

/// A late answer to an old round extends the lease only from that round's send time.
#[test]
fn a_late_answer_counts_for_its_own_round() {
    let (mut m, elected) = leader();
    let lease = m.config().lease_duration();
    let r2 = fire(&mut m);
    let r3 = fire(&mut m);
    drain(&mut m, r3);
    ack(&mut m, r3, "3", 1);
    assert_eq!(m.lease_bound(), Some(elected + lease));
    ack(&mut m, r3, "2", 2);
    assert_eq!(m.lease_bound(), Some(r2 + lease));
    // A round this leader never sent proves nothing.
    ack(&mut m, r3, "2", 99);
    assert_eq!(m.lease_bound(), Some(r2 + lease));
}

/// "Fires at the latest when the lease ends, even when no message arrives": the lease's end
/// for the application, `lease_margin` before its bound, is a deadline of the machine, and the
/// loss is an event at exactly that time.
#[test]
fn the_lease_is_lost_at_its_end_without_any_message() {
    let (mut m, elected) = leader();
    ack(&mut m, elected, "2", 1);
    let end = m.lease_until().unwrap();
    let mut lost_at = None;
    while lost_at.is_none() {
        let at = m.next_deadline().unwrap();
        assert!(at <= end, "no deadline may pass the lease's end");
        m.handle_timeout(at);
        let (_, events) = drain(&mut m, at);
        if lease_events(&events) == vec![false] {
            lost_at = Some(at);
        }
    }
    assert_eq!(lost_at, Some(end));
    assert_eq!(
        m.lease_bound().map(|bound| bound - end),
        Some(m.config().lease_margin())
    );
    assert!(!m.holds_lease(end));
    assert_eq!(
        m.role(),
        Role::Leader,
        "still leader: check-quorum acts later, at T"
    );
}

/// "A leader drops its lease before it sends TimeoutNow": the loss is in the same output as
/// the TimeoutNow, and answers in the rest of the term do not bring the lease back.
#[test]
fn a_leader_drops_its_lease_before_it_hands_over() {
    let (mut m, elected) = leader();
    ack(&mut m, elected, "2", 1);
    assert!(m.holds_lease(elected));
    m.transfer_leadership(elected, Some("2")).unwrap();
    assert!(!m.holds_lease(elected));
    let (sent, events) = drain(&mut m, elected);
    assert_eq!(sent, vec![msg("1", "2", 1, Body::TimeoutNow)]);
    assert_eq!(lease_events(&events), vec![false]);
    let r2 = fire(&mut m);
    ack(&mut m, r2, "3", 2);
    assert_eq!(m.lease_bound(), None);
}

/// Stepping down loses the lease, and the application hears of the loss first.
#[test]
fn stepping_down_loses_the_lease_before_anything_else_is_told() {
    let (mut m, elected) = leader();
    ack(&mut m, elected, "2", 1);
    m.step(elected, msg("3", "1", 2, Body::HeartbeatReply { round: 1 }))
        .unwrap();
    let (_, events) = drain(&mut m, elected);
    assert_eq!(
        events.first(),
        Some(&Event::LeaseChanged {
            held: false,
            term: 1
        })
    );
    assert_eq!(m.role(), Role::Follower);
}

#[test]
fn a_single_node_holds_the_lease_from_its_first_round() {
    let mut m = machine("1", config_with(true, true), HardState::default(), &[]);
    let at = fire(&mut m);
    let (_, events) = drain(&mut m, at);
    assert_eq!(m.role(), Role::Leader);
    assert_eq!(lease_events(&events), vec![true]);
    assert_eq!(m.lease_bound(), Some(at + m.config().lease_duration()));
}

fn vote(from: &str, term: u64) -> Envelope {
    msg(from, "1", term, Body::Vote { transfer: false })
}

fn granted(sent: &[Envelope]) -> bool {
    sent.iter()
        .any(|s| s.body == Body::VoteReply { granted: true })
}

/// Stickiness is a matter of time, not of what the node learnt since: a higher term carried
/// by a late refusal must not let it vote within T of the heartbeat (else a majority that
/// answered the leader could elect another leader inside its lease).
#[test]
fn a_follower_refuses_votes_for_t_after_a_heartbeat_whatever_it_learns() {
    let mut m = machine("1", config_with(true, true), HardState::default(), &ids(3));
    let heard = TICK;
    m.step(heard, msg("2", "1", 1, Body::Heartbeat { round: 1 }))
        .unwrap();
    drain(&mut m, heard);
    m.step(
        heard,
        msg("3", "1", 2, Body::PreVoteReply { granted: false }),
    )
    .unwrap();
    drain(&mut m, heard);
    assert_eq!((m.term(), m.leader()), (2, None), "it took the higher term");
    let before_t = heard + T - Duration::from_nanos(1);
    m.step(before_t, vote("3", 2)).unwrap();
    assert!(!granted(&drain(&mut m, before_t).0));
    m.step(heard + T, vote("3", 2)).unwrap();
    assert!(granted(&drain(&mut m, heard + T).0));
}

/// "A node that restarts grants no vote until one election timeout has passed since its
/// start": it may have answered a leader just before it went down.
#[test]
fn a_restarted_node_grants_no_vote_for_t_after_it_starts() {
    let saved = HardState {
        term: 3,
        voted_for: None,
    };
    let started = Duration::from_secs(7);
    let mut m = Machine::new("1", config_with(true, true), saved, 1, started).unwrap();
    for p in ["2", "3"] {
        m.add_peer(started, p).unwrap();
    }
    let before_t = started + T - Duration::from_nanos(1);
    m.step(before_t, vote("2", 4)).unwrap();
    assert!(!granted(&drain(&mut m, before_t).0));
    assert_eq!(m.term(), 3, "the request was ignored, its term not taken");
    m.step(started + T, vote("2", 4)).unwrap();
    assert!(granted(&drain(&mut m, started + T).0));
}

/// A node that never saved a term never answered a leader: it may vote at once.
#[test]
fn a_new_node_votes_at_once() {
    let mut m = machine("1", config_with(true, true), HardState::default(), &ids(3));
    m.step(TICK, vote("2", 1)).unwrap();
    assert!(granted(&drain(&mut m, TICK).0));
}

/// The leader's own handover campaign passes stickiness: the leader gave up its lease first.
#[test]
fn a_transfer_vote_passes_stickiness() {
    let mut m = machine("1", config_with(true, true), HardState::default(), &ids(3));
    m.step(TICK, msg("2", "1", 1, Body::Heartbeat { round: 1 }))
        .unwrap();
    drain(&mut m, TICK);
    m.step(2 * TICK, msg("3", "1", 2, Body::Vote { transfer: true }))
        .unwrap();
    assert!(granted(&drain(&mut m, 2 * TICK).0));
}

/// A reply to a heartbeat of an older term says so with round 0: the same leader may lead the
/// present term, with rounds of the same numbers, and must not take it as an answer to them.
#[test]
fn a_stale_heartbeat_is_answered_without_its_round() {
    let mut m = machine("1", config_with(true, true), HardState::default(), &ids(3));
    m.step(TICK, msg("2", "1", 8, Body::Heartbeat { round: 1 }))
        .unwrap();
    drain(&mut m, TICK);
    m.step(TICK, msg("2", "1", 6, Body::Heartbeat { round: 4 }))
        .unwrap();
    let (sent, _) = drain(&mut m, TICK);
    assert_eq!(
        sent,
        vec![msg("1", "2", 8, Body::HeartbeatReply { round: 0 })]
    );
}

#[test]
fn round_zero_extends_no_lease() {
    let (mut m, elected) = leader();
    ack(&mut m, elected, "2", 0);
    assert_eq!(m.lease_bound(), None);
}
