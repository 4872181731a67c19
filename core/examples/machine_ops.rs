//! Runs one machine operation many times, for instruction counts under callgrind:
//! `machine_ops <none|heartbeat|vote|timeout> <count>`.

use std::time::Duration;

use almost_raft_core::{Body, Config, Envelope, HardState, Machine};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let op = args.get(1).map_or("none", String::as_str);
    let count: u64 = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(100_000);
    let config = Config {
        min_nodes: 1,
        ..Config::default()
    };
    let mut m = Machine::new(
        "f",
        config,
        HardState {
            term: 1,
            voted_for: None,
        },
        7,
        Duration::ZERO,
    )
    .unwrap();
    m.add_peer(Duration::ZERO, "l").unwrap();
    let mut now = Duration::ZERO;
    for i in 0..count {
        now += Duration::from_millis(1);
        match op {
            "heartbeat" => {
                let msg = Envelope {
                    cluster: String::new(),
                    from: "l".into(),
                    to: "f".into(),
                    term: 1,
                    body: Body::Heartbeat { round: 0 },
                };
                m.step(now, msg).unwrap();
            }
            "vote" => {
                // A new term every time, so every request is granted and the vote saved.
                let msg = Envelope {
                    cluster: String::new(),
                    from: "l".into(),
                    to: "f".into(),
                    term: 2 + i,
                    body: Body::Vote { transfer: true },
                };
                m.step(now, msg).unwrap();
            }
            "timeout" => {
                now += Duration::from_secs(3); // past any election deadline: campaign
                m.handle_timeout(now);
            }
            _ => {}
        }
        let ready = m.ready();
        if let Some(state) = &ready.hard_state {
            m.persisted(now, state);
        }
        std::hint::black_box(ready);
    }
}
