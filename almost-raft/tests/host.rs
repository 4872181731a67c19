//! Hosts of many groups on tokio: election, quiet, placement, handover, crash, restart from
//! the state file, the built-in UDP transport, and bad input.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use almost_raft::host::HostStats;
use almost_raft::host::{GroupEvent, HostBuilder, HostHandle};
use almost_raft::{Config, ErrorKind, Event};
use tokio::sync::mpsc;

/// Nothing here waits on a clock: this only bounds a hang.
const GUARD: Duration = Duration::from_secs(60);
const HOSTS: [&str; 3] = ["h1", "h2", "h3"];

fn config() -> Config {
    Config {
        cluster: "test-hosts".into(),
        election_timeout: Duration::from_millis(300),
        heartbeat_interval: Duration::from_millis(30),
        ..Config::default()
    }
}

/// An in-process network between hosts; a host taken out of it is cut off (a crash). Every
/// host's events are forwarded to one channel, which the tests await.
#[derive(Clone)]
struct Router {
    hosts: Arc<RwLock<HashMap<String, Arc<HostHandle>>>>,
    events: mpsc::UnboundedSender<(String, GroupEvent)>,
}

impl Router {
    fn new() -> (Self, mpsc::UnboundedReceiver<(String, GroupEvent)>) {
        let (events, rx) = mpsc::unbounded_channel();
        let router = Router {
            hosts: Default::default(),
            events,
        };
        (router, rx)
    }

    fn sender(&self, from: &str) -> impl Fn(&str, &[u8]) + Send + Sync + 'static {
        let (router, from) = (self.clone(), from.to_owned());
        move |to, bytes| {
            let hosts = router.hosts.read().unwrap();
            if !hosts.contains_key(&from) {
                return; // a crashed host says nothing more
            }
            if let Some(host) = hosts.get(to).cloned() {
                let bytes = bytes.to_vec();
                tokio::spawn(async move {
                    let _ = host.receive(&bytes);
                });
            }
        }
    }

    fn start(&self, id: &str, state: Option<&std::path::Path>) -> Arc<HostHandle> {
        let mut builder = HostBuilder::new(id).config(config()).send(self.sender(id));
        if let Some(path) = state {
            builder = builder.state_file(path);
        }
        let host = Arc::new(builder.start().unwrap());
        self.hosts
            .write()
            .unwrap()
            .insert(id.to_owned(), host.clone());
        let (events, forwarded, name) = (self.events.clone(), host.clone(), id.to_owned());
        tokio::spawn(async move {
            while let Some(e) = forwarded.next_event().await {
                let _ = events.send((name.clone(), e));
            }
        });
        host
    }

    fn cut(&self, id: &str) -> Arc<HostHandle> {
        self.hosts.write().unwrap().remove(id).unwrap()
    }
}

fn group_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("g{i}")).collect()
}

/// Waits (on events, not on a clock) until every group has one leader that each of the
/// given hosts knows, in one term; returns the leaders and terms.
async fn agreed(
    hosts: &[Arc<HostHandle>],
    groups: &[String],
    events: &mut mpsc::UnboundedReceiver<(String, GroupEvent)>,
) -> HashMap<String, (String, u64)> {
    agreed_without(hosts, groups, events, None).await
}

/// As [`agreed`], with no group led by `gone`.
async fn agreed_without(
    hosts: &[Arc<HostHandle>],
    groups: &[String],
    events: &mut mpsc::UnboundedReceiver<(String, GroupEvent)>,
    gone: Option<&str>,
) -> HashMap<String, (String, u64)> {
    tokio::time::timeout(GUARD, async {
        loop {
            let mut leaders = HashMap::new();
            for g in groups {
                let views: BTreeSet<(Option<String>, u64)> = hosts
                    .iter()
                    .map(|h| {
                        let s = h.status(g).unwrap();
                        (s.leader, s.term)
                    })
                    .collect();
                if let [(Some(leader), term)] = views.into_iter().collect::<Vec<_>>().as_slice()
                    && Some(leader.as_str()) != gone
                {
                    leaders.insert(g.clone(), (leader.clone(), *term));
                }
            }
            if leaders.len() == groups.len() {
                return leaders;
            }
            events.recv().await.expect("hosts run");
        }
    })
    .await
    .expect("every group led within the guard")
}

/// Polls the hosts' counts until `done` holds (quiet has no event of its own).
async fn until(hosts: &[Arc<HostHandle>], done: impl Fn(&[HostStats]) -> bool) {
    tokio::time::timeout(GUARD, async {
        loop {
            let stats: Vec<HostStats> = hosts.iter().map(|h| h.stats()).collect();
            if done(&stats) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the hosts' counts reach the state awaited within the guard")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_elect_every_group_go_quiet_and_spread_leaders() {
    let (router, mut events) = Router::new();
    let hosts: Vec<_> = HOSTS.iter().map(|h| router.start(h, None)).collect();
    let groups = group_ids(300);
    for h in &hosts {
        for g in &groups {
            h.add_group(g, &HOSTS, None).unwrap();
        }
    }
    let leaders = agreed(&hosts, &groups, &mut events).await;
    assert_eq!(leaders.len(), 300);
    // Quiet: every replica rides on the pairs' heartbeats; placement within 10% of 100 each.
    until(&hosts, |stats| {
        let balanced = stats.iter().all(|s| s.leading.abs_diff(100) <= 11);
        stats.iter().all(|s| s.quiet == 300) && balanced
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_hosts_groups_get_new_leaders_and_a_graceful_one_hands_over() {
    let (router, mut events) = Router::new();
    let hosts: Vec<_> = HOSTS.iter().map(|h| router.start(h, None)).collect();
    let groups = group_ids(100);
    for h in &hosts {
        for g in &groups {
            h.add_group(g, &HOSTS, None).unwrap();
        }
    }
    let before = agreed(&hosts, &groups, &mut events).await;
    until(&hosts, |stats| stats.iter().all(|s| s.quiet == 100)).await;

    // h1 crashes: cut off, no handover. Each group it led gets a leader among h2 and h3.
    let crashed = router.cut("h1");
    let survivors = &hosts[1..];
    let after = agreed_without(survivors, &groups, &mut events, Some("h1")).await;
    for (g, (leader, term)) in &after {
        assert_ne!(leader, "h1", "{g}");
        if before[g].0 == "h1" {
            assert!(*term > before[g].1, "{g}: a new term after the crash");
        }
    }
    drop(crashed);

    // h2 shuts down gracefully: every group it led is handed over, in the next term.
    let led_by_h2: Vec<&String> = after
        .iter()
        .filter(|(_, (l, _))| l == "h2")
        .map(|(g, _)| g)
        .collect();
    assert!(!led_by_h2.is_empty());
    hosts[1].shutdown().await;
    tokio::time::timeout(GUARD, async {
        loop {
            let done = led_by_h2.iter().all(|g| {
                let s = hosts[2].status(g).unwrap();
                s.leader.as_deref() == Some("h3") && s.term == after[*g].1 + 1
            });
            if done {
                return;
            }
            events.recv().await.expect("hosts run");
        }
    })
    .await
    .expect("h3 leads every group h2 led, one term later (a handover, not an election)");
    assert_eq!(
        hosts[1].add_group("late", &HOSTS, None).unwrap_err().kind(),
        ErrorKind::Closed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_host_resumes_every_groups_term_from_its_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let (router, mut events) = Router::new();
    let paths: Vec<_> = HOSTS
        .iter()
        .map(|h| dir.path().join(format!("{h}.state")))
        .collect();
    let hosts: Vec<_> = HOSTS
        .iter()
        .zip(&paths)
        .map(|(h, p)| router.start(h, Some(p)))
        .collect();
    let groups = group_ids(50);
    for h in &hosts {
        for g in &groups {
            h.add_group(g, &HOSTS, None).unwrap();
        }
    }
    let before = agreed(&hosts, &groups, &mut events).await;
    let old = router.cut("h3");
    old.shutdown().await; // releases the state file's lock
    drop(old);
    let h3 = router.start("h3", Some(&paths[2]));
    for g in &groups {
        h3.add_group(g, &HOSTS, None).unwrap();
        let s = h3.status(g).unwrap();
        assert!(
            s.term >= before[g].1,
            "{g}: term {} resumed, was {}",
            s.term,
            before[g].1
        );
    }
    let hosts = [hosts[0].clone(), hosts[1].clone(), h3];
    agreed(&hosts, &groups, &mut events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_udp_transport_elects_every_group() {
    let sockets: Vec<std::net::UdpSocket> = (0..3)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let addrs: Vec<String> = sockets
        .iter()
        .map(|s| s.local_addr().unwrap().to_string())
        .collect();
    drop(sockets);
    let (tx, mut events) = mpsc::unbounded_channel();
    let mut hosts = Vec::new();
    for (i, id) in HOSTS.iter().enumerate() {
        let peers: Vec<(&str, &str)> = HOSTS
            .iter()
            .zip(&addrs)
            .filter(|(h, _)| *h != id)
            .map(|(h, a)| (*h, a.as_str()))
            .collect();
        let host = Arc::new(
            HostBuilder::new(*id)
                .config(config())
                .udp(&addrs[i], peers)
                .start()
                .unwrap(),
        );
        let (tx, forwarded, name) = (tx.clone(), host.clone(), id.to_string());
        tokio::spawn(async move {
            while let Some(e) = forwarded.next_event().await {
                let _ = tx.send((name.clone(), e));
            }
        });
        hosts.push(host);
    }
    let groups = group_ids(50);
    for h in &hosts {
        for g in &groups {
            h.add_group(g, &HOSTS, None).unwrap();
        }
    }
    agreed(&hosts, &groups, &mut events).await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let (router, _events) = Router::new();
    let h = router.start("h1", None);
    assert_eq!(
        h.add_group("g", &["h2", "h3"], None).unwrap_err().kind(),
        ErrorKind::UnknownPeer
    );
    assert_eq!(
        h.add_group("", &HOSTS, None).unwrap_err().kind(),
        ErrorKind::InvalidId
    );
    assert_eq!(
        h.add_group("g", &HOSTS, Some("h9")).unwrap_err().kind(),
        ErrorKind::UnknownPeer
    );
    h.add_group("g", &HOSTS, Some("h2")).unwrap();
    assert_eq!(
        h.add_group("g", &HOSTS, None).unwrap_err().kind(),
        ErrorKind::GroupExists
    );
    assert_eq!(
        h.status("nope").unwrap_err().kind(),
        ErrorKind::UnknownGroup
    );
    assert_eq!(
        h.remove_group("nope").unwrap_err().kind(),
        ErrorKind::UnknownGroup
    );
    assert_eq!(
        h.receive(b"\x05garbage").unwrap_err().kind(),
        ErrorKind::MalformedMessage
    );
    assert_eq!(
        h.receive(&[]).unwrap_err().kind(),
        ErrorKind::MalformedMessage
    );
    assert_eq!(
        h.transfer_leadership("g", None).unwrap_err().kind(),
        ErrorKind::NotLeader
    );
    assert_eq!(h.stats().groups, 1);
    h.remove_group("g").unwrap();
    assert_eq!(h.stats().groups, 0);
    let no_transport = HostBuilder::new("x").start().err().unwrap();
    assert_eq!(no_transport.kind(), ErrorKind::InvalidConfig);
}

#[test]
fn starting_outside_a_runtime_is_an_error() {
    let err = HostBuilder::new("h").send(|_, _| {}).start().err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Runtime);
}

#[tokio::test]
async fn a_removed_group_announces_its_end() {
    let (router, mut events) = Router::new();
    let h = router.start("h1", None);
    h.add_group("solo", &["h1"], None).unwrap();
    let led = tokio::time::timeout(GUARD, async {
        loop {
            let (_, e) = events.recv().await.unwrap();
            if e.event
                == (Event::LeaderChanged {
                    leader: Some("h1".into()),
                    term: 1,
                })
            {
                return e;
            }
        }
    })
    .await
    .expect("a group of one elects itself");
    assert_eq!(led.group, "solo");
    h.remove_group("solo").unwrap();
    let rest: Vec<Event> = tokio::time::timeout(GUARD, async {
        let mut rest = Vec::new();
        loop {
            let (_, e) = events.recv().await.unwrap();
            rest.push(e.event.clone());
            if e.event == Event::Stopped {
                return rest;
            }
        }
    })
    .await
    .unwrap();
    assert!(
        rest.contains(&Event::LeaderChanged {
            leader: None,
            term: 1
        }),
        "{rest:?}"
    );
}
