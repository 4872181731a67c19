//! A node's drifting clock: local time runs at `1 + ppm / 1e6` times global time.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    offset_ns: u128,
    rate_ppm: u128, // 1_000_000 means no drift
}

const PPM: u128 = 1_000_000;

impl Clock {
    pub(super) fn new(offset: Duration, drift_ppm: i64) -> Self {
        Clock {
            offset_ns: offset.as_nanos(),
            rate_ppm: (PPM as i64 + drift_ppm) as u128,
        }
    }

    pub(super) fn local(&self, global: Duration) -> Duration {
        nanos(self.offset_ns + global.as_nanos() * self.rate_ppm / PPM)
    }

    /// The first global instant at which local time has reached `local`.
    pub(super) fn global(&self, local: Duration) -> Duration {
        let since = local.as_nanos().saturating_sub(self.offset_ns);
        nanos((since * PPM).div_ceil(self.rate_ppm))
    }
}

fn nanos(n: u128) -> Duration {
    Duration::from_nanos(u64::try_from(n).expect("simulated time fits in u64 nanoseconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_of_a_local_deadline_is_the_first_instant_that_reaches_it() {
        for drift in [-100_000, -7, 0, 13, 100_000] {
            let clock = Clock::new(Duration::from_millis(123), drift);
            for ms in [123u64, 124, 1_000, 987_654] {
                let local = Duration::from_nanos(ms * 1_000_003);
                let g = clock.global(local);
                assert!(clock.local(g) >= local);
                assert!(g.is_zero() || clock.local(g - Duration::from_nanos(1)) < local);
            }
        }
    }
}
