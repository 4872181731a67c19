//! Criterion benchmarks of the machine alone: a heartbeat, a vote request, a timeout.

use std::time::Duration;

use almost_raft_core::{Body, Config, Envelope, HardState, Machine};
use criterion::{Criterion, criterion_group, criterion_main};

fn follower() -> Machine {
    let mut m = Machine::new(
        "f",
        Config {
            min_nodes: 1,
            ..Config::default()
        },
        HardState {
            term: 1,
            voted_for: None,
        },
        7,
        Duration::ZERO,
    )
    .unwrap();
    m.add_peer(Duration::ZERO, "l").unwrap();
    m
}

fn msg(term: u64, body: Body) -> Envelope {
    Envelope {
        cluster: String::new(),
        from: "l".into(),
        to: "f".into(),
        term,
        body,
    }
}

fn bench(c: &mut Criterion) {
    c.bench_function("heartbeat", |b| {
        let mut m = follower();
        let mut now = Duration::ZERO;
        b.iter(|| {
            now += Duration::from_millis(1);
            m.step(now, msg(1, Body::Heartbeat)).unwrap();
            m.ready()
        })
    });
    c.bench_function("vote_request", |b| {
        let mut m = follower();
        let (mut now, mut term) = (Duration::ZERO, 1);
        b.iter(|| {
            now += Duration::from_millis(1);
            term += 1;
            m.step(now, msg(term, Body::Vote { transfer: true }))
                .unwrap();
            let ready = m.ready();
            if let Some(s) = &ready.hard_state {
                m.persisted(now, s);
            }
            ready
        })
    });
    c.bench_function("election_timeout", |b| {
        let mut m = follower();
        let mut now = Duration::ZERO;
        b.iter(|| {
            now += Duration::from_secs(3);
            m.handle_timeout(now);
            let ready = m.ready();
            if let Some(s) = &ready.hard_state {
                m.persisted(now, s);
            }
            ready
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
