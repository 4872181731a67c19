//! The tokio runtime and the handle API, on in-process clusters. Tokio's paused clock makes
//! time virtual: timers fire in order and instantly, so runs are deterministic and fast.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use almost_raft::{Body, Config, Envelope, Error, LeaderChange, NodeBuilder, Role, encode};
use tokio::time::Instant;

mod support;

use support::net::{Net, ids, without};

#[tokio::test(start_paused = true)]
async fn a_leader_is_elected_and_known_by_all() {
    let (net, all) = Net::cluster(3);
    let agreed = net.agreed_leader(&all).await;
    let leader = net.node(agreed.leader.as_ref().unwrap());
    assert!(leader.is_leader());
    assert_eq!(leader.status().role, Role::Leader);
    let followers = all
        .iter()
        .filter(|id| Some(*id) != agreed.leader.as_ref())
        .count();
    assert_eq!(followers, 2);
    for id in &all {
        assert_eq!(net.node(id).wait_for_leader().await.unwrap(), agreed);
    }
}

#[tokio::test(start_paused = true)]
async fn a_crashed_leader_is_replaced_with_a_higher_term() {
    let (net, all) = Net::cluster(3);
    let first = net.agreed_leader(&all).await;
    let crashed = first.leader.clone().unwrap();
    drop(net.take(&crashed)); // dropping the handle stops the node at once, like a crash
    let rest = without(&all, &crashed);
    let second = net.agreed_leader_after(&rest, first.term).await;
    assert_ne!(second.leader, first.leader);
}

#[tokio::test(start_paused = true)]
async fn graceful_shutdown_of_the_leader_hands_over_without_an_election_timeout() {
    let (net, all) = Net::cluster(3);
    let first = net.agreed_leader(&all).await;
    let leaving = first.leader.clone().unwrap();
    let rest = without(&all, &leaving);
    let started = Instant::now();
    net.take(&leaving).shutdown().await.unwrap();
    let second = net.agreed_leader_after(&rest, first.term).await;
    assert_eq!(
        second.term,
        first.term + 1,
        "one election, started by TimeoutNow"
    );
    // Virtual time: no follower's election timer (at least 150 ms) had to fire.
    assert!(
        started.elapsed() < Config::fast_lan().election_timeout,
        "took {:?}",
        started.elapsed()
    );
    let transfers = net
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter(|(to, m)| rest.contains(to) && m[1] == 7)
        .count();
    assert_eq!(transfers, 1, "the leader sent one TimeoutNow");
}

#[tokio::test(start_paused = true)]
async fn a_partitioned_leader_steps_down_and_its_side_reports_no_leader() {
    let (net, all) = Net::cluster(3);
    let first = net.agreed_leader(&all).await;
    let old = first.leader.clone().unwrap();
    let mut changes = net.node(&old).leader_changes();
    assert_eq!(
        changes.next().await,
        Some(first.clone()),
        "current state first"
    );
    net.isolate(&old, &all);
    let change = changes.next().await.unwrap();
    assert_eq!(
        change,
        LeaderChange {
            leader: None,
            term: first.term
        },
        "check-quorum: no leader"
    );
    assert_ne!(net.node(&old).status().role, Role::Leader);
    let rest = without(&all, &old);
    net.agreed_leader_after(&rest, first.term).await;
    assert_eq!(
        net.node(&old).leader(),
        None,
        "the cut-off side knows no leader"
    );
}

#[tokio::test(start_paused = true)]
async fn a_node_rejoining_after_a_partition_does_not_depose_the_leader() {
    let (net, all) = Net::cluster(3);
    let first = net.agreed_leader(&all).await;
    let leader = first.leader.clone().unwrap();
    let outsider = all.iter().find(|id| **id != leader).unwrap().clone();
    net.isolate(&outsider, &all);
    tokio::time::sleep(Duration::from_secs(5)).await; // many election timeouts alone
    assert_eq!(
        net.node(&outsider).term(),
        first.term,
        "pre-vote: no term bumped in isolation"
    );
    net.heal();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        net.agreed_leader(&all).await,
        first,
        "same leader, same term"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restarted_node_keeps_its_term_and_does_not_vote_twice() {
    let dir = tempfile::tempdir().unwrap();
    let net = Arc::new(Net::default());
    let all = ids(3);
    for id in &all {
        net.start(net.builder(id, &all).state_path(dir.path().join(id)), id);
    }
    let first = net.agreed_leader(&all).await;
    let voter = all
        .iter()
        .find(|id| Some(*id) != first.leader.as_ref())
        .unwrap()
        .clone();
    let before = net.node(&voter).status();
    assert_eq!(
        before.voted_for, first.leader,
        "the follower voted for the leader"
    );
    drop(net.take(&voter));
    // Restarted alone, from its file: same term, same vote. Its replies are recorded.
    let replies = Arc::new(Mutex::new(Vec::new()));
    let sink = replies.clone();
    let restarted = NodeBuilder::new(voter.as_str())
        .peers(without(&all, &voter))
        .config(Config {
            min_nodes: 3,
            ..Config::fast_lan()
        })
        .state_path(dir.path().join(&voter))
        .start(move |to: &str, bytes: Vec<u8>| sink.lock().unwrap().push((to.to_owned(), bytes)))
        .unwrap();
    let status = restarted.status();
    assert_eq!(
        (status.term, status.voted_for.clone()),
        (before.term, before.voted_for.clone())
    );
    // A vote request from another candidate in the same term is refused.
    let other = all
        .iter()
        .find(|id| **id != voter && Some(*id) != first.leader.as_ref())
        .unwrap();
    let request = Envelope {
        cluster: String::new(),
        from: other.clone(),
        to: voter.clone(),
        term: first.term,
        body: Body::Vote { transfer: false },
    };
    restarted.receive(&encode(&request).unwrap()).unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    let refused = Envelope {
        cluster: String::new(),
        from: voter.clone(),
        to: other.clone(),
        term: first.term,
        body: Body::VoteReply { granted: false },
    };
    assert!(
        replies
            .lock()
            .unwrap()
            .contains(&(other.clone(), encode(&refused).unwrap())),
        "vote refused"
    );
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_state_file_refuses_to_start_with_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    std::fs::write(&path, b"not a state file").unwrap();
    let err = NodeBuilder::new("n1")
        .state_path(&path)
        .start(|_: &str, _: Vec<u8>| {})
        .err()
        .unwrap();
    assert!(matches!(err, Error::Storage(_)), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_peer_whose_sends_hang_does_not_delay_the_others() {
    let net = Arc::new(Net::default());
    let all = ids(3);
    net.hang.lock().unwrap().insert("n3".into()); // n3 never runs; sends to it never finish
    for id in &all[..2] {
        net.start(net.builder(id, &all), id);
    }
    let agreed = net.agreed_leader(&all[..2]).await;
    assert!(agreed.leader.is_some());
    // and the leader keeps heartbeating the live follower: it stays leader for a long time
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(net.agreed_leader(&all[..2]).await, agreed);
}

#[tokio::test(start_paused = true)]
async fn events_arrive_in_order_and_a_late_subscriber_gets_the_current_state_first() {
    let (net, all) = Net::cluster(3);
    let early: Vec<_> = all.iter().map(|id| net.node(id).leader_changes()).collect();
    let first = net.agreed_leader(&all).await;
    let leader = first.leader.clone().unwrap();
    net.node(&leader).transfer_leadership(None).unwrap();
    let rest = without(&all, &leader);
    let second = net.agreed_leader_after(&all, first.term).await;
    assert_ne!(second.leader, first.leader);
    assert!(rest.contains(second.leader.as_ref().unwrap()));
    for (id, mut changes) in all.iter().zip(early) {
        let mut seen = Vec::new();
        while let Some(change) = changes.try_next() {
            seen.push(change);
        }
        assert_eq!(
            seen.first(),
            Some(&LeaderChange {
                leader: None,
                term: 0
            }),
            "{id}: the state at subscription first"
        );
        assert!(
            seen.windows(2).all(|w| w[0].term <= w[1].term),
            "{id}: terms never go down: {seen:?}"
        );
        assert!(
            seen.contains(&first) && seen.last() == Some(&second),
            "{id}: {seen:?}"
        );
    }
    let mut late = net.node(&all[0]).leader_changes();
    assert_eq!(
        late.try_next(),
        Some(second),
        "a late subscriber gets the current state first"
    );
}

#[tokio::test(start_paused = true)]
async fn bad_input_gives_clear_errors_and_the_node_goes_on() {
    let (net, all) = Net::cluster(3);
    let agreed = net.agreed_leader(&all).await;
    let node = net.node(&all[0]);
    assert!(matches!(node.receive(b""), Err(Error::Decode(_))));
    assert!(matches!(node.receive(&[1, 99, 0]), Err(Error::Decode(_))));
    let msg = |cluster: &str, from: &str, to: &str| {
        encode(&Envelope {
            cluster: cluster.into(),
            from: from.into(),
            to: to.into(),
            term: 1,
            body: Body::Heartbeat { round: 0 },
        })
        .unwrap()
    };
    assert!(matches!(
        node.receive(&msg("other", "n2", "n1")),
        Err(Error::WrongCluster { .. })
    ));
    assert!(matches!(
        node.receive(&msg("", "n9", "n1")),
        Err(Error::UnknownPeer(_))
    ));
    assert!(matches!(
        node.receive(&msg("", "n2", "n3")),
        Err(Error::WrongRecipient { .. })
    ));
    assert!(matches!(node.add_peer(""), Err(Error::InvalidId(_))));
    assert!(matches!(
        node.add_peer(&"x".repeat(256)),
        Err(Error::InvalidId(_))
    ));
    assert!(matches!(node.add_peer("n1"), Err(Error::SelfAsPeer)));
    assert_eq!(node.add_peer("n2"), Ok(()), "adding twice is idempotent");
    if node.is_leader() {
        assert!(matches!(
            node.transfer_leadership(Some("n9")),
            Err(Error::UnknownPeer(_))
        ));
    } else {
        assert!(matches!(
            node.transfer_leadership(None),
            Err(Error::NotLeader { .. })
        ));
    }
    assert_eq!(net.agreed_leader(&all).await, agreed, "the cluster went on");
}

#[tokio::test(start_paused = true)]
async fn calls_after_stopping_and_invalid_configs_are_errors() {
    let node = NodeBuilder::new("n1")
        .min_nodes(1)
        .start(|_: &str, _: Vec<u8>| {})
        .unwrap();
    let mut changes = node.leader_changes();
    let elected = node.wait_for_leader().await.unwrap();
    assert_eq!(
        elected.leader.as_deref(),
        Some("n1"),
        "a one-node cluster with min_nodes 1 elects itself"
    );
    node.remove_peer("n1").unwrap(); // removing itself stops the node
    while changes.next().await.is_some() {} // the stream ends when the node stops
    assert!(node.status().stopped);
    assert!(
        matches!(node.receive(b"x"), Err(Error::Decode(_))),
        "bytes are checked first"
    );
    assert!(matches!(
        node.add_peer("n2"),
        Err(Error::Closed | Error::Stopped)
    ));
    assert!(matches!(
        node.transfer_leadership(None),
        Err(Error::Closed | Error::Stopped)
    ));
    node.shutdown().await.unwrap();

    let err = NodeBuilder::new("n1")
        .heartbeat_interval(Duration::from_secs(5))
        .start(|_: &str, _: Vec<u8>| {})
        .err()
        .unwrap();
    assert!(
        matches!(&err, Error::Config(e) if e.field == "heartbeat_interval_ms"),
        "{err}"
    );
    let err = NodeBuilder::new("")
        .start(|_: &str, _: Vec<u8>| {})
        .err()
        .unwrap();
    assert!(matches!(err, Error::InvalidId(_)), "{err}");
    let err = NodeBuilder::new("n1")
        .peers(["n1"])
        .start(|_: &str, _: Vec<u8>| {})
        .err()
        .unwrap();
    assert_eq!(err, Error::SelfAsPeer);
}

#[test]
fn starting_outside_a_runtime_is_an_error() {
    let err = NodeBuilder::new("n1")
        .start(|_: &str, _: Vec<u8>| {})
        .err()
        .unwrap();
    assert_eq!(err, Error::NoRuntime);
}
