//! The cost of handing a node one heartbeat: the machine's step alone, the handle API's
//! receive, the embedding layer's receive, and heartbeat-in to reply-callback end to end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ours::embed::{Callbacks, EmbeddedNode};
use ours::{Body, Config, Envelope, HardState, LeaderChange, Machine, NodeBuilder, encode};

const N: u32 = 200_000;

fn heartbeat() -> Envelope {
    Envelope { cluster: String::new(), from: "l".into(), to: "f".into(), term: 1, body: Body::Heartbeat { round: 1 } }
}

fn per_op(started: Instant, n: u32) -> f64 {
    started.elapsed().as_nanos() as f64 / f64::from(n)
}

pub fn machine_step() -> f64 {
    let mut m = Machine::new("f", Config::default(), HardState { term: 1, voted_for: None }, 1, Duration::ZERO).unwrap();
    m.add_peer(Duration::ZERO, "l").unwrap();
    let msg = heartbeat();
    let started = Instant::now();
    for i in 0..N {
        m.step(Duration::from_micros(u64::from(i)), msg.clone()).unwrap();
        std::hint::black_box(m.ready());
    }
    per_op(started, N)
}

pub fn decode_and_step() -> f64 {
    let mut m = Machine::new("f", Config::default(), HardState { term: 1, voted_for: None }, 1, Duration::ZERO).unwrap();
    m.add_peer(Duration::ZERO, "l").unwrap();
    let bytes = encode(&heartbeat()).unwrap();
    let started = Instant::now();
    for i in 0..N {
        m.step(Duration::from_micros(u64::from(i)), ours::decode(&bytes).unwrap()).unwrap();
        std::hint::black_box(m.ready());
    }
    per_op(started, N)
}

pub async fn handle_receive() -> f64 {
    let node = NodeBuilder::new("f").peers(["l"]).start(|_: &str, _: Vec<u8>| {}).unwrap();
    let bytes = encode(&heartbeat()).unwrap();
    let started = Instant::now();
    for _ in 0..N {
        node.receive(&bytes).unwrap();
    }
    per_op(started, N)
}

struct Count(Arc<AtomicU64>);
impl Callbacks for Count {
    fn send(&mut self, _: &str, _: &[u8]) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn leader_changed(&mut self, _: &LeaderChange) {}
}

/// (ns per receive() call, ns per heartbeat from receive to its reply's send callback)
pub fn embedded() -> (f64, f64) {
    let sent = Arc::new(AtomicU64::new(0));
    let node = EmbeddedNode::start(NodeBuilder::new("f").peers(["l"]), Count(sent.clone())).unwrap();
    let bytes = encode(&heartbeat()).unwrap();
    let started = Instant::now();
    for _ in 0..N {
        node.receive(&bytes).unwrap();
    }
    let receive = per_op(started, N);
    // Replies coalesce when the driver falls behind, so count round trips one at a time.
    let rounds = 20_000u32;
    let started = Instant::now();
    for _ in 0..rounds {
        let before = sent.load(Ordering::Relaxed);
        node.receive(&bytes).unwrap();
        while sent.load(Ordering::Relaxed) == before {
            std::hint::spin_loop();
        }
    }
    let end_to_end = per_op(started, rounds);
    node.close();
    (receive, end_to_end)
}
