//! The built-in UDP transport, on real sockets on this machine: three nodes found by hostname
//! ("localhost:port") elect with signed messages and no code of the application's on the
//! message path; the leader dies, the two others elect another; bad settings fail at start.
//! Waits are on leader changes; the guard only bounds a hang.

use std::net::UdpSocket;
use std::time::Duration;

use almost_raft::{Config, Error, LeaderChange, NodeBuilder, NodeHandle};

const GUARD: Duration = Duration::from_secs(30);
const KEY: &[u8] = b"almost-raft test key, not secret";

/// Ports free now (bound to port 0, then released for the nodes).
fn free_ports(n: usize) -> Vec<u16> {
    let sockets: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect()
}

fn start(i: usize, ids: &[&str], ports: &[u16]) -> NodeHandle {
    let mut builder = NodeBuilder::new(ids[i])
        .config(Config {
            min_nodes: 3,
            ..Config::fast_lan()
        })
        .keys([KEY])
        .listen(format!("127.0.0.1:{}", ports[i]));
    for j in (0..ids.len()).filter(|&j| j != i) {
        builder = builder.peer_at(ids[j], format!("localhost:{}", ports[j]));
    }
    builder.start_udp().unwrap()
}

/// Waits until every node names the same leader in a term above `after`.
async fn agreed(nodes: &[&NodeHandle], after: u64) -> LeaderChange {
    let wait = async {
        let mut streams: Vec<_> = nodes.iter().map(|n| n.leader_changes()).collect();
        loop {
            let now: Vec<LeaderChange> = nodes
                .iter()
                .map(|n| LeaderChange {
                    leader: n.leader(),
                    term: n.term(),
                })
                .collect();
            if now[0].leader.is_some() && now[0].term > after && now.iter().all(|c| *c == now[0]) {
                return now[0].clone();
            }
            // Wake on the next change of any node.
            let next = streams.iter_mut().map(|s| Box::pin(s.next()));
            futures_select(next).await;
        }
    };
    tokio::time::timeout(GUARD, wait)
        .await
        .expect("a leader agreed by all")
}

/// Resolves when any of `futures` does.
async fn futures_select<F: std::future::Future + Unpin>(futures: impl Iterator<Item = F>) {
    let mut futures: Vec<F> = futures.collect();
    std::future::poll_fn(|cx| {
        for f in &mut futures {
            if std::pin::Pin::new(f).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_found_by_hostname_elect_and_replace_a_dead_leader() {
    let ids = ["a", "b", "c"];
    let ports = free_ports(3);
    let mut nodes: Vec<Option<NodeHandle>> = (0..3).map(|i| Some(start(i, &ids, &ports))).collect();
    for (i, node) in nodes.iter().enumerate() {
        let local = node.as_ref().unwrap().local_addr().unwrap();
        assert_eq!(local.port(), ports[i]);
    }
    let all: Vec<&NodeHandle> = nodes.iter().map(|n| n.as_ref().unwrap()).collect();
    let first = agreed(&all, 0).await;
    let leader = ids
        .iter()
        .position(|id| Some(*id) == first.leader.as_deref())
        .unwrap();

    drop(nodes[leader].take()); // dies at once: no handover
    let rest: Vec<&NodeHandle> = nodes.iter().flatten().collect();
    let second = agreed(&rest, first.term).await;
    assert_ne!(second.leader, first.leader);
    for node in &rest {
        assert_eq!(node.status().unauthenticated, 0);
    }
}

#[tokio::test]
async fn bad_udp_settings_fail_at_start_naming_the_option() {
    let used = UdpSocket::bind("127.0.0.1:0").unwrap();
    let taken = used.local_addr().unwrap().to_string();
    let error = |builder: NodeBuilder| match builder.start_udp() {
        Ok(_) => panic!("the node started"),
        Err(Error::Config(c)) => (c.field, c.reason),
        Err(e) => panic!("{e}"),
    };
    let (field, reason) = error(NodeBuilder::new("a").listen(taken.clone()));
    assert_eq!(field, "listen");
    assert!(reason.contains(&taken), "{reason}");
    let (field, _) = error(NodeBuilder::new("a").peer_at("b", "localhost:9"));
    assert_eq!(field, "listen");
    let (field, reason) = error(NodeBuilder::new("a").listen("127.0.0.1:0").peers(["b"]));
    assert_eq!(field, "peers");
    assert!(reason.contains("\"b\" has no address"), "{reason}");
}

/// Death evidence from the liveness channel: "a" campaigns first (T = 150 ms); "b" and "c"
/// have an election timeout of ten minutes, so their timers cannot elect anyone within the
/// guard. Dropping "a" closes its sockets as the death of its process would: their kernel
/// refuses the peers' next dial, and "b" and "c" elect one of them on that evidence alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_leader_is_replaced_on_evidence_from_its_host_not_on_a_timer() {
    let ids = ["a", "b", "c"];
    let ports = free_ports(3);
    let start_with = |i: usize, timeout: Duration| {
        let mut builder = NodeBuilder::new(ids[i])
            .config(Config {
                min_nodes: 3,
                election_timeout: timeout,
                ..Config::fast_lan()
            })
            .keys([KEY])
            .listen(format!("127.0.0.1:{}", ports[i]));
        for j in (0..3).filter(|&j| j != i) {
            builder = builder.peer_at(ids[j], format!("127.0.0.1:{}", ports[j]));
        }
        builder.start_udp().unwrap()
    };
    let a = start_with(0, Duration::from_millis(150));
    let b = start_with(1, Duration::from_secs(600));
    let c = start_with(2, Duration::from_secs(600));
    let first = agreed(&[&a, &b, &c], 0).await;
    assert_eq!(first.leader.as_deref(), Some("a"));
    drop(a);
    let second = agreed(&[&b, &c], first.term).await;
    assert_eq!(second.term, first.term + 1);
    assert!(matches!(
        b.peer_unreachable("nobody"),
        Err(Error::UnknownPeer(p)) if p == "nobody"
    ));
}
