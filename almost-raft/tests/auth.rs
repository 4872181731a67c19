//! Authenticated messages on the runtime: a cluster with a keyring elects and sends only signed
//! messages; unsigned, forged and tampered messages are refused as `Unauthenticated`, counted,
//! and the node goes on; a node with another key cannot take part.

mod support;

use std::sync::Arc;

use almost_raft::codec::{SIGNED_WIRE_VERSION, encode};
use almost_raft::{AuthError, Body, Envelope, Error, ErrorKind, Keyring, NodeBuilder};
use support::net::{Net, ids};

const KEY: &[u8] = b"almost-raft test key, not secret";
const OTHER: &[u8] = b"another key of thirty-two bytes!";

fn keyed_cluster(keys: &[&[u8]]) -> (Arc<Net>, Vec<String>) {
    let net = Arc::new(Net::default());
    let all = ids(keys.len());
    for (id, key) in all.iter().zip(keys) {
        net.start(net.builder(id, &all).keys([key]), id);
    }
    (net, all)
}

#[tokio::test(start_paused = true)]
async fn a_keyed_cluster_elects_and_sends_only_signed_messages() {
    let (net, all) = keyed_cluster(&[KEY, KEY, KEY]);
    let leader = net.agreed_leader(&all).await;
    assert!(leader.leader.is_some());
    let sent = net.sent.lock().unwrap().clone();
    assert!(!sent.is_empty());
    assert!(
        sent.iter()
            .all(|(_, bytes)| bytes[0] == SIGNED_WIRE_VERSION),
        "every message is signed"
    );
}

#[tokio::test(start_paused = true)]
async fn unsigned_forged_and_tampered_messages_are_refused_and_counted() {
    let (net, all) = keyed_cluster(&[KEY, KEY, KEY]);
    let leader = net.agreed_leader(&all).await;
    let follower = all
        .iter()
        .find(|id| Some(*id) != leader.leader.as_ref())
        .unwrap();
    let node = net.node(follower);
    let forged = Envelope {
        cluster: String::new(),
        from: leader.leader.clone().unwrap(),
        to: follower.clone(),
        term: leader.term + 1_000,
        body: Body::Heartbeat { round: 0 },
    };
    let unsigned = encode(&forged).unwrap();
    let other_key =
        almost_raft::codec::encode_signed(&forged, u64::MAX, &Keyring::new([OTHER]).unwrap())
            .unwrap();
    let mut tampered = net.sent.lock().unwrap().last().unwrap().1.clone();
    tampered[5] ^= 1; // a bit of the term
    let refusals = [
        (unsigned, AuthError::Unsigned),
        (other_key, AuthError::BadTag),
        (tampered, AuthError::BadTag),
        (vec![SIGNED_WIRE_VERSION; 10], AuthError::BadTag),
    ];
    for (i, (bytes, why)) in refusals.into_iter().enumerate() {
        let err = node.receive(&bytes).unwrap_err();
        assert_eq!(err, Error::Unauthenticated(why), "refusal {i}");
        assert_eq!(err.kind(), ErrorKind::Unauthenticated);
        assert_eq!(node.status().unauthenticated, i as u64 + 1);
    }
    // Nothing moved: same leader, same term, and the cluster goes on.
    assert_eq!(net.agreed_leader(&all).await, leader);
    assert_eq!(node.status().term, leader.term);
}

/// A dead leader stays dead: its captured heartbeats, replayed to the followers again and
/// again after it died, are refused as replays and reset no timer, so the followers elect.
#[tokio::test(start_paused = true)]
async fn replayed_heartbeats_of_a_dead_leader_do_not_keep_it_alive() {
    let (net, all) = keyed_cluster(&[KEY, KEY, KEY]);
    let old = net.agreed_leader(&all).await;
    let leader = old.leader.clone().unwrap();
    let followers: Vec<String> = all.iter().filter(|id| **id != leader).cloned().collect();
    let captured: Vec<(String, Vec<u8>)> = net
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter(|(to, bytes)| followers.contains(to) && bytes[1] == 5) // heartbeats
        .cloned()
        .collect();
    assert!(!captured.is_empty());
    // Already accepted once: refused as a replay, and counted.
    let (to, bytes) = captured.last().unwrap();
    let err = net.node(to).receive(bytes).unwrap_err();
    assert_eq!(err, Error::Unauthenticated(AuthError::Replayed));

    drop(net.take(&leader)); // the leader dies, without a handover
    let replayer = {
        let net = net.clone();
        tokio::spawn(async move {
            loop {
                for (to, bytes) in &captured {
                    let _ = net.node(to).receive(bytes);
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
    };
    let guard = std::time::Duration::from_secs(60); // virtual time; a hang guard
    let new = tokio::time::timeout(guard, net.agreed_leader_after(&followers, old.term))
        .await
        .expect("the followers elect a new leader despite the replays");
    replayer.abort();
    assert_ne!(new.leader, old.leader);
    for id in &followers {
        assert!(
            net.node(id).status().unauthenticated > 0,
            "{id} refused replays"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_node_with_another_key_cannot_take_part() {
    // Two nodes share a key; the third has another: the two elect (a majority of three), the
    // third never learns of a leader and refuses everything it gets.
    let (net, all) = keyed_cluster(&[KEY, KEY, OTHER]);
    let two = &all[..2];
    let leader = net.agreed_leader(two).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let outsider = net.node(&all[2]).status();
    assert_eq!(outsider.leader, None);
    assert!(outsider.unauthenticated > 0);
    assert_eq!(net.agreed_leader(two).await, leader);
}

#[tokio::test(start_paused = true)]
async fn a_rotating_node_accepts_old_and_new_keys() {
    // Mid-rotation: one node signs with the new key and still verifies the old one; the
    // others have both, the old first. Every message verifies somewhere: the cluster elects.
    let net = Arc::new(Net::default());
    let all = ids(3);
    let rings: [[&[u8]; 2]; 3] = [[OTHER, KEY], [KEY, OTHER], [KEY, OTHER]];
    for (id, keys) in all.iter().zip(rings) {
        net.start(net.builder(id, &all).keys(keys), id);
    }
    assert!(net.agreed_leader(&all).await.leader.is_some());
    for id in &all {
        assert_eq!(net.node(id).status().unauthenticated, 0, "{id}");
    }
}

/// Starts `builder`, which must fail.
fn start_error(builder: NodeBuilder) -> Error {
    match builder.start(|_: &str, _: Vec<u8>| {}) {
        Ok(_) => panic!("the node started"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn bad_keys_fail_at_start_naming_the_option() {
    let short = start_error(NodeBuilder::new("a").keys([b"short"]));
    assert!(
        matches!(&short, Error::Config(c) if c.field == "keys" && c.reason.contains("5 bytes")),
        "{short}"
    );
    let both = start_error(NodeBuilder::new("a").keys([KEY]).key_file("/nonexistent"));
    assert!(
        matches!(&both, Error::Config(c) if c.field == "keys"),
        "{both}"
    );
    let missing = start_error(NodeBuilder::new("a").key_file("/nonexistent/key"));
    assert!(
        matches!(&missing, Error::Config(c) if c.field == "key_file" && c.reason.contains("/nonexistent/key")),
        "{missing}"
    );
}

/// Key rotation through a running cluster, one node at a time, in the three steps the docs
/// give (the new key second everywhere, then first, then alone): the leader never changes
/// and no message is refused.
#[tokio::test(start_paused = true)]
async fn keys_rotate_through_a_running_cluster_without_a_change_of_leader() {
    let (net, all) = keyed_cluster(&[KEY, KEY, KEY]);
    let before = net.agreed_leader(&all).await;
    let steps: [&[&[u8]]; 3] = [&[KEY, OTHER], &[OTHER, KEY], &[OTHER]];
    for keys in steps {
        for id in &all {
            net.node(id).set_keys(keys.iter().copied()).unwrap();
            // A few heartbeat rounds under the mixed keyrings.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            assert_eq!(
                net.agreed_leader(&all).await,
                before,
                "after {id} took {keys:?}"
            );
        }
    }
    for id in &all {
        assert_eq!(net.node(id).status().unauthenticated, 0, "{id}");
    }
    // The old key is gone: a message signed with it is refused now.
    let forged = Envelope {
        cluster: String::new(),
        from: all[0].clone(),
        to: all[1].clone(),
        term: before.term,
        body: Body::HeartbeatReply { round: 0 },
    };
    let old = almost_raft::codec::encode_signed(&forged, u64::MAX, &Keyring::new([KEY]).unwrap())
        .unwrap();
    let err = net.node(&all[1]).receive(&old).unwrap_err();
    assert_eq!(err, Error::Unauthenticated(AuthError::BadTag));
}

#[tokio::test(start_paused = true)]
async fn keys_cannot_be_set_on_a_node_started_without_them() {
    let (net, all) = Net::cluster(3);
    let err = net.node(&all[0]).set_keys([KEY]).unwrap_err();
    assert!(
        matches!(&err, Error::Config(c) if c.field == "keys" && c.reason.contains("without keys")),
        "{err}"
    );
    let (keyed, ids) = keyed_cluster(&[KEY]);
    let err = keyed.node(&ids[0]).set_keys([b"short"]).unwrap_err();
    assert!(
        matches!(&err, Error::Config(c) if c.reason.contains("5 bytes")),
        "{err}"
    );
}
