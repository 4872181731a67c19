//! Election configuration, the same keys in every language (see the README).

use std::time::Duration;
use thiserror::Error;

use crate::id::MAX_ID_LEN;

/// The longest election timeout accepted: long enough for any real deployment, short enough
/// that deadline arithmetic can never overflow.
pub const MAX_ELECTION_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// How one node takes part in elections.
///
/// Build one with [`Config::default`] or [`Config::fast_lan`] and change fields; the machine
/// checks it with [`Config::validate`] before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Name shared by the nodes of one cluster; messages from another cluster are dropped.
    pub cluster: String,
    /// `T`: a follower that hears no leader for a time drawn afresh from `[T, 2T)` campaigns.
    pub election_timeout: Duration,
    /// How often a leader sends heartbeats. Must be at most half the election timeout.
    pub heartbeat_interval: Duration,
    /// How long a runtime waits for one send before giving up on it (not used by the machine).
    pub message_timeout: Duration,
    /// Cluster size, counting this node, below which no election starts.
    pub min_nodes: usize,
    /// Cluster size, counting this node, above which `add_peer` refuses peers.
    pub max_nodes: Option<usize>,
    /// Ask for pre-votes before bumping the term (Raft thesis §9.6).
    pub pre_vote: bool,
    /// A leader that has not heard from a majority for one election timeout steps down (§6.2).
    pub check_quorum: bool,
    /// The most any node's clock may run fast or slow, in parts per million of real time
    /// (50,000 = 5%). The leader lease is shortened by it (thesis §6.4.1); clocks that drift
    /// more than this void the lease's promise (never two leases at one instant).
    pub drift_bound_ppm: u32,
    /// How long before the lease's bound the application is told the lease is lost, so that
    /// it can stop acting (deliver the event, cancel a task) while the bound still holds.
    /// `None`: a quarter of the lease, at most 50 ms ([`Config::lease_margin`]).
    pub lease_margin: Option<Duration>,
}

/// The largest drift bound accepted: 50%. Beyond it the lease would be nearly nothing.
pub const MAX_DRIFT_BOUND_PPM: u32 = 500_000;

impl Default for Config {
    fn default() -> Self {
        Config {
            cluster: String::new(),
            election_timeout: Duration::from_millis(1000),
            heartbeat_interval: Duration::from_millis(100),
            message_timeout: Duration::from_millis(100),
            min_nodes: 3,
            max_nodes: None,
            pre_vote: true,
            check_quorum: true,
            drift_bound_ppm: 50_000,
            lease_margin: None,
        }
    }
}

/// Which field of a [`Config`] is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid config: {field}: {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: String,
}

impl ConfigError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ConfigError {
            field,
            reason: reason.into(),
        }
    }
}

impl Config {
    /// A preset for fast local networks: election timeout 150 ms, heartbeat 50 ms.
    pub fn fast_lan() -> Self {
        Config {
            election_timeout: Duration::from_millis(150),
            heartbeat_interval: Duration::from_millis(50),
            message_timeout: Duration::from_millis(50),
            ..Config::default()
        }
    }

    /// How long a leader's lease lasts after the heartbeat round a majority acknowledged was
    /// sent: the election timeout shrunk by the drift bound, `T × (1 − ρ) / (1 + ρ)`. Followers
    /// refuse votes for `T` of their own time after a heartbeat, at least `T / (1 + ρ)` of real
    /// time; the leader's clock reads at most `(1 − ρ)` of real time less than that.
    pub fn lease_duration(&self) -> Duration {
        let ppm = u128::from(self.drift_bound_ppm);
        let nanos = self.election_timeout.as_nanos() * (1_000_000 - ppm) / (1_000_000 + ppm);
        Duration::from_nanos(u64::try_from(nanos).expect("at most the election timeout"))
    }

    /// The lease margin in effect: the one set, or a quarter of the lease, at most 50 ms.
    pub fn lease_margin(&self) -> Duration {
        self.lease_margin
            .unwrap_or_else(|| (self.lease_duration() / 4).min(Duration::from_millis(50)))
    }

    /// Checks every field; the error names the first field that is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.cluster.len() > MAX_ID_LEN {
            return Err(ConfigError::new(
                "cluster",
                format!(
                    "{} bytes long; the limit is {MAX_ID_LEN} bytes",
                    self.cluster.len()
                ),
            ));
        }
        if self.election_timeout.is_zero() {
            return Err(ConfigError::new(
                "election_timeout_ms",
                "must be greater than zero",
            ));
        }
        if self.election_timeout > MAX_ELECTION_TIMEOUT {
            return Err(ConfigError::new(
                "election_timeout_ms",
                "must be at most 24 hours",
            ));
        }
        if self.heartbeat_interval.is_zero() {
            return Err(ConfigError::new(
                "heartbeat_interval_ms",
                "must be greater than zero",
            ));
        }
        if self.heartbeat_interval * 2 > self.election_timeout {
            return Err(ConfigError::new(
                "heartbeat_interval_ms",
                format!(
                    "{} ms is more than half the election timeout ({} ms); followers would \
                     time out between heartbeats",
                    self.heartbeat_interval.as_millis(),
                    self.election_timeout.as_millis()
                ),
            ));
        }
        if self.message_timeout.is_zero() {
            return Err(ConfigError::new(
                "message_timeout_ms",
                "must be greater than zero",
            ));
        }
        if self.min_nodes == 0 {
            return Err(ConfigError::new(
                "min_nodes",
                "must be at least 1 (the node itself)",
            ));
        }
        if self.drift_bound_ppm > MAX_DRIFT_BOUND_PPM {
            return Err(ConfigError::new(
                "drift_bound_ppm",
                format!(
                    "{} is more than {MAX_DRIFT_BOUND_PPM} (50%)",
                    self.drift_bound_ppm
                ),
            ));
        }
        let lease = self.lease_duration();
        if self.lease_margin() >= lease {
            return Err(ConfigError::new(
                "lease_margin_ms",
                format!(
                    "{} ms leaves no lease: it must be less than the lease, {} ms (the \
                     election timeout shrunk by the drift bound), and should leave more than \
                     one heartbeat interval",
                    self.lease_margin().as_millis(),
                    lease.as_millis(),
                ),
            ));
        }
        if let Some(max) = self.max_nodes
            && max < self.min_nodes
        {
            return Err(ConfigError::new(
                "max_nodes",
                format!("{max} is less than min_nodes ({})", self.min_nodes),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(config: Config) -> &'static str {
        config.validate().unwrap_err().field
    }

    #[test]
    fn defaults_and_preset_are_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
        assert_eq!(Config::fast_lan().validate(), Ok(()));
    }

    #[test]
    fn each_invalid_field_is_named() {
        let base = Config::default;
        let ms = Duration::from_millis;
        assert_eq!(
            field_of(Config {
                cluster: "c".repeat(256),
                ..base()
            }),
            "cluster"
        );
        assert_eq!(
            field_of(Config {
                election_timeout: ms(0),
                ..base()
            }),
            "election_timeout_ms"
        );
        assert_eq!(
            field_of(Config {
                election_timeout: Duration::from_secs(100_000),
                ..base()
            }),
            "election_timeout_ms"
        );
        assert_eq!(
            field_of(Config {
                heartbeat_interval: ms(0),
                ..base()
            }),
            "heartbeat_interval_ms"
        );
        assert_eq!(
            field_of(Config {
                heartbeat_interval: ms(501),
                ..base()
            }),
            "heartbeat_interval_ms"
        );
        assert_eq!(
            field_of(Config {
                message_timeout: ms(0),
                ..base()
            }),
            "message_timeout_ms"
        );
        assert_eq!(
            field_of(Config {
                min_nodes: 0,
                ..base()
            }),
            "min_nodes"
        );
        assert_eq!(
            field_of(Config {
                max_nodes: Some(2),
                ..base()
            }),
            "max_nodes"
        );
        assert_eq!(
            field_of(Config {
                drift_bound_ppm: MAX_DRIFT_BOUND_PPM + 1,
                ..base()
            }),
            "drift_bound_ppm"
        );
        assert_eq!(
            field_of(Config {
                lease_margin: Some(ms(905)), // the lease is 904 ms
                ..base()
            }),
            "lease_margin_ms"
        );
    }

    #[test]
    fn the_lease_is_the_election_timeout_shrunk_by_the_drift_bound() {
        let lease = |ppm| {
            Config {
                drift_bound_ppm: ppm,
                ..Config::default()
            }
            .lease_duration()
        };
        assert_eq!(lease(0), Duration::from_millis(1000));
        // 1000 ms × 0.95 / 1.05
        assert_eq!(lease(50_000), Duration::from_nanos(904_761_904));
        assert_eq!(
            lease(MAX_DRIFT_BOUND_PPM),
            Duration::from_nanos(333_333_333)
        );
    }

    #[test]
    fn error_message_says_why() {
        let err = Config {
            heartbeat_interval: Duration::from_millis(600),
            ..Config::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid config: heartbeat_interval_ms: 600 ms is more than half the election \
             timeout (1000 ms); followers would time out between heartbeats"
        );
    }
}
