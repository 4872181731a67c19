//! The simulated network: per-link and per-kind loss, duplication, delay, partitions (also
//! one-way) and hold-and-release. It decides what happens to each message; the simulator
//! schedules the deliveries.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use almost_raft_core::message::Body;

/// How long a message spends on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Delay {
    Fixed(Duration),
    Uniform(Duration, Duration),
    /// Pareto-distributed above `base`, capped: mostly fast, sometimes very slow.
    HeavyTail {
        base: Duration,
        alpha: f64,
        cap: Duration,
    },
}

impl Delay {
    fn sample(self, rng: &mut ChaCha8Rng) -> Duration {
        match self {
            Delay::Fixed(d) => d,
            Delay::Uniform(lo, hi) => rng.random_range(lo..=hi),
            Delay::HeavyTail { base, alpha, cap } => {
                let u: f64 = rng.random_range(f64::EPSILON..1.0);
                base.mul_f64(u.powf(-1.0 / alpha)).min(cap)
            }
        }
    }
}

pub(super) fn kind_index(body: Body) -> usize {
    match body {
        Body::PreVote => 0,
        Body::PreVoteReply { .. } => 1,
        Body::Vote { .. } => 2,
        Body::VoteReply { .. } => 3,
        Body::Heartbeat { .. } => 4,
        Body::HeartbeatReply { .. } => 5,
        Body::TimeoutNow => 6,
    }
}

/// The faults of the network, chosen per seed.
#[derive(Debug, Clone)]
pub(super) struct LinkFaults {
    pub drop: f64,
    pub duplicate: f64,
    pub delay: Delay,
    /// Extra loss for one message kind (index by `kind_index`).
    pub kind_drop: [f64; 7],
    /// Extra loss per directed link, `[from][to]`.
    pub link_drop: Vec<Vec<f64>>,
}

impl LinkFaults {
    pub(super) fn calm(nodes: usize) -> Self {
        LinkFaults {
            drop: 0.0,
            duplicate: 0.0,
            delay: Delay::Uniform(Duration::from_micros(200), Duration::from_millis(2)),
            kind_drop: [0.0; 7],
            link_drop: vec![vec![0.0; nodes]; nodes],
        }
    }
}

/// What the network does with one message.
pub(super) enum Fate {
    Dropped,
    /// Deliver after each of these delays (more than one when duplicated).
    Deliver(Vec<Duration>),
    /// Kept back until the link is released.
    Held,
}

pub(super) struct Network {
    pub faults: LinkFaults,
    blocked: BTreeSet<(usize, usize)>,
    held_links: BTreeSet<(usize, usize)>,
    held: BTreeMap<(usize, usize), Vec<Vec<u8>>>,
}

impl Network {
    pub(super) fn new(faults: LinkFaults) -> Self {
        Network {
            faults,
            blocked: BTreeSet::new(),
            held_links: BTreeSet::new(),
            held: BTreeMap::new(),
        }
    }

    pub(super) fn fate(
        &mut self,
        rng: &mut ChaCha8Rng,
        from: usize,
        to: usize,
        body: Body,
        bytes: &[u8],
    ) -> Fate {
        if self.blocked.contains(&(from, to)) {
            return Fate::Dropped;
        }
        let f = &self.faults;
        let loss = 1.0
            - (1.0 - f.drop)
                * (1.0 - f.kind_drop[kind_index(body)])
                * (1.0 - f.link_drop[from][to]);
        if rng.random_bool(loss.clamp(0.0, 1.0)) {
            return Fate::Dropped;
        }
        if self.held_links.contains(&(from, to)) {
            self.held
                .entry((from, to))
                .or_default()
                .push(bytes.to_vec());
            return Fate::Held;
        }
        let mut delays = vec![f.delay.sample(rng)];
        while delays.len() < 3 && rng.random_bool(f.duplicate) {
            delays.push(f.delay.sample(rng));
        }
        Fate::Deliver(delays)
    }

    pub(super) fn block(&mut self, links: &[(usize, usize)]) {
        self.blocked.extend(links.iter().copied());
    }

    pub(super) fn unblock(&mut self, links: &[(usize, usize)]) {
        for link in links {
            self.blocked.remove(link);
        }
    }

    pub(super) fn hold(&mut self, link: (usize, usize)) {
        self.held_links.insert(link);
    }

    /// Stops holding `link` and returns what it held, oldest first.
    pub(super) fn release(&mut self, link: (usize, usize)) -> Vec<Vec<u8>> {
        self.held_links.remove(&link);
        self.held.remove(&link).unwrap_or_default()
    }

    /// Removes every fault; returns every held message with its link.
    pub(super) fn heal(&mut self, nodes: usize) -> Vec<((usize, usize), Vec<u8>)> {
        self.faults = LinkFaults::calm(nodes);
        self.blocked.clear();
        self.held_links.clear();
        std::mem::take(&mut self.held)
            .into_iter()
            .flat_map(|(link, msgs)| msgs.into_iter().map(move |m| (link, m)))
            .collect()
    }
}
