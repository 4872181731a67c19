//! Swarm testing: every seed draws its own mix and intensity of faults, so that a run of many
//! seeds covers calm networks, lossy ones, partitions, crashes and pauses in many combinations.

use std::time::Duration;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::network::{Delay, LinkFaults};

/// Which node-level faults a seed injects, and how often.
#[derive(Debug, Clone)]
pub(super) struct Swarm {
    pub link: LinkFaults,
    pub partitions: bool,
    pub one_way: bool,
    pub holds: bool,
    pub crashes: bool,
    pub pauses: bool,
    /// Leaders hand over now and then (leadership transfer, thesis §3.10).
    pub transfers: bool,
    /// Death evidence: true when a node crashes, sometimes stale, and false now and then.
    pub evidence: bool,
    /// Chance, at each step of a node's output, that it crashes right there (before the write,
    /// before the sync, after the sync but before sending, or between two sends).
    pub crash_point: f64,
    /// Mean time between two faults.
    pub fault_every: Duration,
    pub drift_ppm: i64,
    /// Mean time between two hostile messages from a peer (forged terms, TimeoutNow from a
    /// non-leader, grants never asked for, replays), or `None`.
    pub hostile_every: Option<Duration>,
    /// Chance that a save fails (the node stops, as a real driver stops it).
    pub save_error: f64,
    /// Chance that a save is slow: it takes up to one election timeout, while messages keep
    /// arriving; a crash may strike while it is in flight.
    pub slow_save: f64,
}

impl Swarm {
    pub(super) fn draw(rng: &mut ChaCha8Rng, nodes: usize, election_timeout: Duration) -> Self {
        let ms = Duration::from_millis;
        let mut link = LinkFaults::calm(nodes);
        link.drop = if rng.random_bool(0.7) {
            rng.random_range(0.0..0.3)
        } else {
            0.0
        };
        link.duplicate = if rng.random_bool(0.5) {
            rng.random_range(0.0..0.3)
        } else {
            0.0
        };
        link.delay = match rng.random_range(0..3) {
            0 => Delay::Fixed(ms(rng.random_range(0..5))),
            1 => Delay::Uniform(ms(0), ms(rng.random_range(1..60))),
            _ => Delay::HeavyTail {
                base: ms(1),
                alpha: rng.random_range(0.8..2.0),
                cap: election_timeout * 8,
            },
        };
        if rng.random_bool(0.3) {
            link.kind_drop[rng.random_range(0..7)] = rng.random_range(0.2..0.8);
        }
        for row in &mut link.link_drop {
            for p in row.iter_mut() {
                if rng.random_bool(0.1) {
                    *p = rng.random_range(0.0..0.6);
                }
            }
        }
        Swarm {
            link,
            partitions: rng.random_bool(0.6),
            one_way: rng.random_bool(0.5),
            holds: rng.random_bool(0.5),
            crashes: rng.random_bool(0.6),
            pauses: rng.random_bool(0.4),
            crash_point: if rng.random_bool(0.5) {
                rng.random_range(0.0..0.05)
            } else {
                0.0
            },
            fault_every: election_timeout.mul_f64(rng.random_range(0.5..8.0)),
            drift_ppm: if rng.random_bool(0.7) {
                rng.random_range(0..100_000)
            } else {
                0
            },
            hostile_every: rng
                .random_bool(0.3)
                .then(|| election_timeout.mul_f64(rng.random_range(0.05..3.0))),
            save_error: if rng.random_bool(0.3) {
                rng.random_range(0.0..0.05)
            } else {
                0.0
            },
            slow_save: if rng.random_bool(0.4) {
                rng.random_range(0.0..0.5)
            } else {
                0.0
            },
            transfers: rng.random_bool(0.5),
            evidence: rng.random_bool(0.4),
        }
    }
}
