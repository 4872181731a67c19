//! The leader lease in the runtime: "run this only while I lead" cancels the task before any
//! other node can be elected, also when no message arrives, and before a handover's target
//! campaigns. Tokio's paused clock makes time virtual; the assertions are about order.

mod support;

use std::sync::Arc;

use almost_raft::{Error, NodeHandle};
use support::net::{Net, without};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// What `while_leader` returned for a task that never ends, and when.
type Cancelled = tokio::task::JoinHandle<(Result<Option<()>, Error>, Instant)>;

/// Runs a task that never ends under `while_leader` on `node`; returns a receiver that fires
/// when the task started (with its term) and a handle that yields when it was cancelled.
fn run_forever_while_leader(node: Arc<NodeHandle>) -> (oneshot::Receiver<u64>, Cancelled) {
    let (started, started_rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let result = node
            .while_leader(|term| async move {
                let _ = started.send(term);
                std::future::pending::<()>().await
            })
            .await;
        (result, Instant::now())
    });
    (started_rx, task)
}

/// The first instant at which one of `ids` announced a leader in a term above `term`.
async fn new_leader_at(net: &Net, ids: &[String], term: u64) -> Instant {
    let mut changes: Vec<_> = ids.iter().map(|id| net.node(id).leader_changes()).collect();
    loop {
        for c in &mut changes {
            while let Some(change) = c.try_next() {
                if change.leader.is_some() && change.term > term {
                    return Instant::now();
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_cut_off_leader_cancels_the_task_before_another_node_is_elected() {
    let (net, all) = Net::cluster(3);
    let first = net.agreed_leader(&all).await;
    let leader = first.leader.clone().unwrap();
    let (started, task) = run_forever_while_leader(net.node(&leader));
    assert_eq!(
        started.await.unwrap(),
        first.term,
        "the task gets the fencing token"
    );

    let others = without(&all, &leader);
    let elected = {
        let net = net.clone();
        let others = others.clone();
        tokio::spawn(async move { new_leader_at(&net, &others, first.term).await })
    };
    net.isolate(&leader, &all); // from now on no message reaches the leader or leaves it
    let (result, cancelled_at) = task.await.unwrap();
    assert_eq!(result.unwrap(), None, "cancelled, not finished");
    let elected_at = elected.await.unwrap();
    assert!(
        cancelled_at < elected_at,
        "cancelled at {cancelled_at:?}, another leader at {elected_at:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_handover_ends_the_lease_before_it_returns() {
    let (net, all) = Net::cluster(3);
    let first = net.agreed_leader(&all).await;
    let node = net.node(first.leader.as_deref().unwrap());
    let mut leadership = node.leadership().await.unwrap();
    assert_eq!(leadership.term(), first.term);
    assert!(node.lease().is_some());
    node.transfer_leadership(None).unwrap();
    assert_eq!(node.lease(), None, "gone before the TimeoutNow can leave");
    leadership.lost().await; // resolves at once
}

#[tokio::test(start_paused = true)]
async fn a_task_that_finishes_in_time_gives_its_output() {
    let (net, all) = Net::cluster(3);
    let first = net.agreed_leader(&all).await;
    let node = net.node(first.leader.as_deref().unwrap());
    let out = node.while_leader(|term| async move { term * 2 }).await;
    assert_eq!(out.unwrap(), Some(first.term * 2));
}

#[tokio::test(start_paused = true)]
async fn only_the_leader_reports_a_lease() {
    let (net, all) = Net::cluster(3);
    let first = net.agreed_leader(&all).await;
    let leader = first.leader.unwrap();
    // The first round's answers give the lease.
    let node = net.node(&leader);
    let lease = node.leadership().await.unwrap();
    assert_eq!(lease.term(), first.term);
    let remaining = node
        .status()
        .lease_remaining
        .expect("the leader holds a lease");
    let config = almost_raft::Config::fast_lan();
    assert!(remaining <= config.lease_duration() - config.lease_margin());
    for other in without(&all, &leader) {
        assert_eq!(net.node(&other).lease(), None);
        assert_eq!(net.node(&other).status().lease_remaining, None);
    }
}

#[tokio::test(start_paused = true)]
async fn waiting_for_leadership_fails_when_the_node_stops() {
    let (net, all) = Net::cluster(3);
    let first = net.agreed_leader(&all).await;
    let follower = without(&all, first.leader.as_deref().unwrap())[0].clone();
    let node = net.take(&follower);
    let waiting = tokio::spawn(node.leadership());
    tokio::task::yield_now().await;
    node.shutdown().await.unwrap();
    assert!(matches!(waiting.await.unwrap(), Err(Error::Closed)));
}
