//! Hosts of many groups, driven by hand in virtual time: quiet groups keep every rule of a
//! single group (stickiness, check-quorum, the lease), and bad datagrams are refused.

use std::collections::VecDeque;
use std::time::Duration;

use almost_raft_core::host::Host;
use almost_raft_core::{Config, Error, ErrorKind, HardState, Role};

const IDS: [&str; 3] = ["h1", "h2", "h3"];
const MS: Duration = Duration::from_millis(1);

fn config() -> Config {
    Config {
        cluster: "hosts".into(),
        election_timeout: 300 * MS,
        heartbeat_interval: 30 * MS,
        ..Config::default()
    }
}

/// Rewrites a datagram from one host to another: (from, to, bytes) to the bytes sent.
type Rewrite = fn(usize, usize, Vec<u8>) -> Vec<u8>;

/// Three hosts on a lossless network with 1 ms of delay; `cut` hosts send and receive nothing.
struct World {
    now: Duration,
    hosts: Vec<Host>,
    wire: VecDeque<(Duration, usize, Vec<u8>)>,
    cut: Vec<bool>,
    /// A link down both ways.
    blocked: Option<(usize, usize)>,
    /// Rewrites a datagram (from, to, bytes) as it is sent.
    rewrite: Option<Rewrite>,
    sent: Vec<(usize, usize, Vec<u8>)>,
}

impl World {
    fn new(groups: usize, config: Config) -> Self {
        let mut hosts: Vec<Host> = IDS
            .iter()
            .enumerate()
            .map(|(i, id)| Host::new(*id, config.clone(), 1, i as u64, Duration::ZERO).unwrap())
            .collect();
        for h in &mut hosts {
            for g in 0..groups {
                h.add_group(
                    Duration::ZERO,
                    &format!("g{g}"),
                    &IDS,
                    None,
                    HardState::default(),
                )
                .unwrap();
            }
        }
        World {
            now: Duration::ZERO,
            hosts,
            wire: VecDeque::new(),
            cut: vec![false; 3],
            blocked: None,
            rewrite: None,
            sent: Vec::new(),
        }
    }

    fn index(id: &str) -> usize {
        IDS.iter().position(|i| *i == id).unwrap()
    }

    /// Runs until `until`, step by step (saves are instant).
    fn run_until(&mut self, until: Duration) {
        while self.now < until {
            for i in 0..3 {
                loop {
                    let ready = self.hosts[i].ready();
                    if ready.is_empty() {
                        break;
                    }
                    self.hosts[i].persisted(self.now, &ready.hard_states);
                    for (to, bytes) in ready.datagrams {
                        let j = Self::index(&to);
                        let bytes = match self.rewrite {
                            Some(rewrite) => rewrite(i, j, bytes),
                            None => bytes,
                        };
                        self.sent.push((i, j, bytes.clone()));
                        let blocked = self
                            .blocked
                            .is_some_and(|(a, b)| (a, b) == (i, j) || (b, a) == (i, j));
                        if !self.cut[i] && !self.cut[j] && !blocked {
                            self.wire.push_back((self.now + MS, j, bytes));
                        }
                    }
                }
            }
            let next_wire = self.wire.front().map(|w| w.0);
            let next_timer = self.hosts.iter().map(|h| h.next_deadline()).min().unwrap();
            let next = next_wire
                .map_or(next_timer, |w| w.min(next_timer))
                .min(until)
                .max(self.now);
            self.now = next;
            while self.wire.front().is_some_and(|w| w.0 <= self.now) {
                let (_, to, bytes) = self.wire.pop_front().unwrap();
                let _ = self.hosts[to].receive(self.now, &bytes);
            }
            for h in &mut self.hosts {
                if h.next_deadline() <= self.now {
                    h.handle_timeout(self.now);
                }
            }
            if next == until {
                break;
            }
        }
    }

    /// As `run_until`, with the link between the two hosts of `cut` down both ways.
    fn run_until_cut(&mut self, until: Duration, cut: Option<(usize, usize)>) {
        if let Some((a, b)) = cut {
            self.wire.retain(|(_, to, bytes)| {
                let from = almost_raft_core::host::wire::decode_datagram(bytes, None)
                    .map(|d| World::index(&d.from));
                !matches!(from, Ok(f) if (f == a && *to == b) || (f == b && *to == a))
            });
            self.blocked = Some((a, b));
        }
        self.run_until(until);
    }

    fn leader_of(&mut self, group: &str) -> Option<usize> {
        let now = self.now;
        (0..3).find(|i| self.hosts[*i].status(now, group).unwrap().role == Role::Leader)
    }
}

#[test]
fn groups_go_quiet_and_the_pairs_carry_one_heartbeat_each_way_per_interval() {
    let mut w = World::new(50, config());
    w.run_until(3000 * MS);
    for h in &w.hosts {
        assert_eq!(h.stats().quiet, 50, "every replica quiet on {}", h.id());
    }
    let before = w.sent.len();
    w.run_until(4000 * MS); // one second at rest: 33 intervals
    let per_second = w.sent.len() - before;
    // 6 directed pairs, a heartbeat and an ack each per 30 ms interval: 6 x 2 x 33.3.
    assert!(
        (390..=410).contains(&per_second),
        "{per_second} datagrams in a second at rest"
    );
}

#[test]
fn a_quiet_leader_holds_its_lease_on_the_pairs_acks_and_loses_lease_and_lead_when_cut_off() {
    let mut w = World::new(5, config());
    w.run_until(3000 * MS);
    let leader = w.leader_of("g0").unwrap();
    let now = w.now;
    assert!(w.hosts[leader].is_quiet("g0").unwrap());
    assert!(
        w.hosts[leader].holds_lease(now, "g0").unwrap(),
        "the pairs' acks keep the lease"
    );
    // Cut the leader's host off: the group leaves quiet and the lease ends on time, without
    // a message; the others elect a new leader only after their stickiness ran out.
    w.cut[leader] = true;
    let cut_at = w.now;
    w.run_until(cut_at + 1000 * MS);
    let now = w.now;
    assert!(!w.hosts[leader].holds_lease(now, "g0").unwrap());
    assert_ne!(
        w.hosts[leader].status(now, "g0").unwrap().role,
        Role::Leader,
        "check-quorum"
    );
    let new = (0..3)
        .filter(|i| *i != leader)
        .find(|i| w.hosts[*i].status(now, "g0").unwrap().role == Role::Leader);
    assert!(new.is_some(), "the two others elected a leader of g0");
}

#[test]
fn with_a_long_heartbeat_groups_never_go_quiet() {
    // heartbeat T/2: the pairs' silence could not be noticed before the lease ends.
    let config = Config {
        heartbeat_interval: 150 * MS,
        ..config()
    };
    let mut w = World::new(5, config);
    w.run_until(5000 * MS);
    assert!(w.leader_of("g0").is_some());
    for h in &w.hosts {
        assert_eq!(h.stats().quiet, 0);
    }
}

#[test]
fn bad_datagrams_are_refused_with_a_reason_and_change_nothing() {
    let mut w = World::new(3, config());
    w.run_until(2000 * MS);
    let (from, to, bytes) = w
        .sent
        .iter()
        .rev()
        .find(|(f, t, _)| *f == 0 && *t == 1)
        .cloned()
        .unwrap();
    let now = w.now;
    // The same datagram again is a replay.
    let replay = w.hosts[to].receive(now, &bytes).unwrap_err();
    assert!(matches!(replay, Error::Unauthenticated(_)), "{replay}");
    // Sent to another host, from another cluster, garbage, from a stranger.
    assert_eq!(
        w.hosts[2].receive(now, &bytes).unwrap_err().kind(),
        ErrorKind::WrongRecipient
    );
    let mut stranger = Host::new(
        "h9",
        Config {
            cluster: "hosts".into(),
            ..config()
        },
        1,
        9,
        now,
    )
    .unwrap();
    stranger
        .add_group(now, "g0", &["h9", "h2"], None, HardState::default())
        .unwrap();
    stranger.handle_timeout(now + 100 * MS);
    let theirs = stranger
        .ready()
        .datagrams
        .into_iter()
        .find(|(to, _)| to == "h2")
        .unwrap()
        .1;
    assert_eq!(
        w.hosts[1].receive(now, &theirs).unwrap_err().kind(),
        ErrorKind::UnknownPeer
    );
    assert_eq!(
        w.hosts[1].receive(now, b"\x05nonsense").unwrap_err().kind(),
        ErrorKind::MalformedMessage
    );
    let mut other = Host::new(
        "h1",
        Config {
            cluster: "other".into(),
            ..config()
        },
        1,
        9,
        now,
    )
    .unwrap();
    other
        .add_group(now, "g0", &IDS, None, HardState::default())
        .unwrap();
    other.handle_timeout(now + 100 * MS);
    let foreign = other
        .ready()
        .datagrams
        .into_iter()
        .find(|(to, _)| to == "h2")
        .unwrap()
        .1;
    assert_eq!(
        w.hosts[1].receive(now, &foreign).unwrap_err().kind(),
        ErrorKind::WrongCluster
    );
    let _ = from;
    // Nothing changed: the groups still agree and are led.
    w.run_until(now + 1000 * MS);
    assert!(w.leader_of("g0").is_some());
}

#[test]
fn commands_on_groups_give_clear_errors() {
    let now = Duration::ZERO;
    let mut h = Host::new("h1", config(), 1, 1, now).unwrap();
    assert_eq!(
        h.add_group(now, "g", &["h2"], None, HardState::default())
            .unwrap_err()
            .kind(),
        ErrorKind::UnknownPeer
    );
    h.add_group(now, "g", &IDS, Some("h2"), HardState::default())
        .unwrap();
    assert_eq!(
        h.add_group(now, "g", &IDS, None, HardState::default())
            .unwrap_err()
            .kind(),
        ErrorKind::GroupExists
    );
    assert_eq!(
        h.status(now, "x").unwrap_err().kind(),
        ErrorKind::UnknownGroup
    );
    assert_eq!(
        h.transfer_leadership(now, "g", None).unwrap_err().kind(),
        ErrorKind::NotLeader
    );
    assert_eq!(
        Host::new("", config(), 1, 1, now).unwrap_err().kind(),
        ErrorKind::InvalidId
    );
    h.stop(now);
    assert_eq!(
        h.add_group(now, "y", &IDS, None, HardState::default())
            .unwrap_err()
            .kind(),
        ErrorKind::Closed
    );
    let events = h.ready().events;
    assert!(
        events
            .iter()
            .any(|(g, e)| g == "g" && *e == almost_raft_core::Event::Stopped)
    );
}

/// A follower's host that never learnt a group went quiet (the set operation lost, the
/// heartbeats delivered) acks the pair's heartbeats with an older set version: those acks
/// must not count for the group, whose follower there hears nothing and may vote for
/// another leader. Here it does: the third host, cut off from the leader's, campaigns and
/// wins with that follower's vote, and at no instant do two hosts hold the group's lease.
#[test]
fn an_ack_counts_for_a_quiet_group_only_when_both_hosts_held_the_same_set() {
    use almost_raft_core::host::wire::{Item, decode_datagram, encode_datagrams};
    let mut w = World::new(1, config());
    // Every "add" to the first host is stripped from the start; the leader is another host
    // (the run is deterministic), and the third is cut off from it once the group is quiet.
    let lagging = 0;
    let mut leader = None;
    let mut other = 0;
    let mut two_leases = None;
    let mut cut_at = None;
    let end = 4000 * MS;
    w.rewrite = Some(|_, to, bytes| {
        if to != 0 {
            return bytes;
        }
        let d = decode_datagram(&bytes, None).unwrap();
        let items: Vec<Item> = d
            .items
            .into_iter()
            .filter(|i| !matches!(i, Item::Add { .. }))
            .collect();
        encode_datagrams(
            (&d.cluster, &d.from, &d.to, d.incarnation),
            &items,
            || d.seq,
            None,
        )
        .remove(0)
    });
    while w.now < end {
        // Once the group is quiet at the leader, cut the third host off from it.
        if leader.is_none() {
            leader = w.leader_of("g0");
            other = 3 - lagging - leader.unwrap_or(0);
        }
        if let (None, Some(l)) = (cut_at, leader)
            && w.hosts[l].is_quiet("g0").unwrap()
        {
            cut_at = Some(w.now);
        }
        let step = w.now + MS;
        w.run_until_cut(step, cut_at.and(leader).map(|l| (l, other)));
        let now = w.now;
        let holders: Vec<usize> = (0..3)
            .filter(|i| w.hosts[*i].holds_lease(now, "g0").unwrap())
            .collect();
        if holders.len() > 1 {
            two_leases = Some((now, holders));
            break;
        }
    }
    assert_ne!(
        leader,
        Some(lagging),
        "the first host does not lead (deterministic run)"
    );
    assert!(cut_at.is_some(), "the group went quiet at its leader");
    assert_eq!(two_leases, None, "two hosts held g0's lease at once");
}

/// A cold start of more groups than a host lets campaign at once: campaigns are put off
/// (never more than MAX_CAMPAIGNS_PER_TICK per heartbeat interval), and still every group
/// ends up led, agreed and quiet.
#[test]
fn a_storm_of_campaigns_is_admitted_in_turns_and_every_group_ends_up_quiet() {
    use almost_raft_core::host::MAX_CAMPAIGNS_PER_TICK;
    // Their timers fire within ten heartbeat intervals: twice what may campaign in them.
    let groups = 20 * MAX_CAMPAIGNS_PER_TICK;
    let mut w = World::new(groups, config());
    w.run_until(60_000 * MS);
    let deferred: u64 = w.hosts.iter().map(|h| h.stats().campaigns_deferred).sum();
    assert!(deferred > 0, "some campaigns were put off");
    for h in &w.hosts {
        assert_eq!(h.stats().quiet, groups, "every replica quiet on {}", h.id());
    }
    let led: usize = w.hosts.iter().map(|h| h.stats().leading).sum();
    assert_eq!(led, groups, "one leader per group");
}

/// An ack written before its sender heard of our restart answers the set of our earlier
/// incarnation. Taken for the new set, its version (far past the new Reset's) dropped the
/// Reset unapplied: that pair never matched a heartbeat again, the restarted host's groups
/// went quiet towards the third host alone, and the other host's replicas of them stayed
/// leaderless for good (found by the chaos run of hosts: SIGSTOP while another restarted).
#[test]
fn an_ack_for_an_earlier_incarnation_of_the_host_is_ignored() {
    use almost_raft_core::host::wire::{Item, decode_datagram};
    let groups = 30;
    let mut w = World::new(groups, config());
    w.run_until(3000 * MS);
    let (restarted, acker) = (0, 1);
    let stale_ack = w
        .sent
        .iter()
        .rev()
        .find(|(from, to, bytes)| {
            (*from, *to) == (acker, restarted)
                && decode_datagram(bytes, None)
                    .is_ok_and(|d| d.items.iter().any(|i| matches!(i, Item::Ack { .. })))
        })
        .map(|(_, _, bytes)| bytes.clone())
        .expect("the acker acknowledged a heartbeat");
    // Restart the first host (next incarnation, its state as saved), and hand it the stale
    // ack before anything it sends reaches the acker.
    let now = w.now;
    let mut fresh = Host::new(IDS[restarted], config(), 2, 99, now).unwrap();
    for g in 0..groups {
        let group = format!("g{g}");
        let st = w.hosts[restarted].status(now, &group).unwrap();
        let state = HardState {
            term: st.term,
            voted_for: st.voted_for,
        };
        fresh.add_group(now, &group, &IDS, None, state).unwrap();
    }
    w.hosts[restarted] = fresh;
    w.wire.retain(|(_, to, _)| *to != restarted);
    w.hosts[restarted].receive(now, &stale_ack).unwrap();
    // Placement hands the restarted host its share, and every group goes quiet again.
    w.run_until(now + 20_000 * MS);
    assert!(
        w.hosts[restarted].stats().leading > 0,
        "the restarted host leads again"
    );
    let now = w.now;
    for g in 0..groups {
        let group = format!("g{g}");
        let leader = w.leader_of(&group).expect("a leader");
        for h in &mut w.hosts {
            let st = h.status(now, &group).unwrap();
            assert_eq!(
                st.leader.as_deref(),
                Some(IDS[leader]),
                "{group} on {}",
                h.id()
            );
        }
    }
    for h in &w.hosts {
        assert_eq!(h.stats().quiet, groups, "every replica quiet on {}", h.id());
    }
}
