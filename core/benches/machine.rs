//! Criterion benchmarks of the machine alone (a heartbeat, a vote request, a timeout) and of
//! authenticating one message (sign, verify, under a keyring of one and of three keys).

use std::time::Duration;

use almost_raft_core::codec::{decode_authenticated, encode_signed};
use almost_raft_core::{Body, Config, Envelope, HardState, Keyring, Machine};
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
            m.step(now, msg(1, Body::Heartbeat { round: 0 })).unwrap();
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

fn auth(c: &mut Criterion) {
    let heartbeat = msg(7, Body::Heartbeat { round: 0 });
    let one = Keyring::new([[1u8; 32]]).unwrap();
    // Mid-rotation, the worst case: the signing key is the last one tried.
    let three = Keyring::new([[2u8; 32], [3u8; 32], [1u8; 32]]).unwrap();
    let signed = encode_signed(&heartbeat, 1, &one).unwrap();
    c.bench_function("sign_heartbeat", |b| {
        b.iter(|| encode_signed(&heartbeat, 1, &one).unwrap())
    });
    c.bench_function("verify_heartbeat_1_key", |b| {
        b.iter(|| decode_authenticated(&signed, Some(&one)).unwrap())
    });
    c.bench_function("verify_heartbeat_3_keys_last", |b| {
        b.iter(|| decode_authenticated(&signed, Some(&three)).unwrap())
    });
}

criterion_group!(benches, bench, auth);
criterion_main!(benches);
