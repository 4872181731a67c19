//! Rate limits for repeated warnings: a callback that throws on every call cannot flood stderr.

use std::time::{Duration, Instant};

/// A rate limit for repeated warnings of one kind: at most `burst` per `period`; the rest are
/// counted, and the count is reported with the first warning allowed afterwards (or by
/// [`RateLimit::flush`]).
pub struct RateLimit {
    burst: u32,
    period: Duration,
    window: Option<Instant>,
    allowed: u32,
    suppressed: u64,
}

/// What to do with one warning.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Emit the warning itself.
    pub emit: bool,
    /// Before it, report this many suppressed since the last report (if non-zero).
    pub suppressed: u64,
}

impl RateLimit {
    pub const fn new(burst: u32, period: Duration) -> Self {
        RateLimit {
            burst,
            period,
            window: None,
            allowed: 0,
            suppressed: 0,
        }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        let suppressed = self.flush(now);
        if self.window.is_none() {
            self.window = Some(now);
            self.allowed = 0;
        }
        if self.allowed < self.burst {
            self.allowed += 1;
            Verdict {
                emit: true,
                suppressed,
            }
        } else {
            self.suppressed += 1;
            Verdict {
                emit: false,
                suppressed,
            }
        }
    }

    /// Once the window is over: how many were suppressed in it (to report now), and a new
    /// window starts with the next warning.
    pub fn flush(&mut self, now: Instant) -> u64 {
        match self.window {
            Some(start) if now.duration_since(start) >= self.period => {
                self.window = None;
                std::mem::take(&mut self.suppressed)
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_allows_a_burst_then_reports_what_it_suppressed() {
        let mut limit = RateLimit::new(3, Duration::from_secs(1));
        let t0 = Instant::now();
        let verdicts: Vec<Verdict> = (0..100).map(|_| limit.check(t0)).collect();
        assert_eq!(verdicts.iter().filter(|v| v.emit).count(), 3);
        assert!(verdicts.iter().all(|v| v.suppressed == 0));
        assert_eq!(limit.flush(t0), 0, "not before the window is over");
        let later = limit.check(t0 + Duration::from_secs(1));
        assert_eq!(
            later,
            Verdict {
                emit: true,
                suppressed: 97
            }
        );
        assert_eq!(limit.flush(t0 + Duration::from_secs(5)), 0);
    }
}
