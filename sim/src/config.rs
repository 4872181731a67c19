//! What to simulate ([`SimConfig`]), and what a run gives back: a [`SimReport`], or the
//! [`Violation`] that stopped it, with the command that replays it.

use std::fmt;
use std::time::Duration;

use almost_raft_core::bugs::Bug;
use almost_raft_core::config::Config;

/// What to simulate. Everything else comes from the seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub nodes: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub election_timeout: Duration,
    pub heartbeat_interval: Duration,
    /// Virtual time spent injecting faults before everything is healed.
    pub chaos_time: Duration,
    /// Known bugs to give every node.
    pub bugs: Vec<Bug>,
    /// Check that nothing is sent before the state it depends on is saved. Switching it off
    /// shows which deeper invariant a persistence bug breaks.
    pub check_persist_before_send: bool,
    /// Tell the nodes that clocks do not drift while they do, to show that the lease check
    /// catches clocks that drift beyond the bound.
    pub drift_beyond_bound: bool,
}

impl SimConfig {
    pub fn new(nodes: usize, pre_vote: bool, check_quorum: bool) -> Self {
        SimConfig {
            nodes,
            pre_vote,
            check_quorum,
            election_timeout: Duration::from_millis(150),
            heartbeat_interval: Duration::from_millis(50),
            chaos_time: Duration::from_secs(10),
            bugs: Vec::new(),
            check_persist_before_send: true,
            drift_beyond_bound: false,
        }
    }

    /// The command that replays `seed` under this config, with a full trace.
    pub fn replay_command(&self, seed: u64) -> String {
        let on_off = |b: bool| if b { "on" } else { "off" };
        let mut cmd = String::from("cargo run --release -p almost-raft-sim --example simulate");
        cmd += &format!(
            " -- --nodes {} --pre-vote {} --check-quorum {} --chaos-ms {} --seed {seed} --trace",
            self.nodes,
            on_off(self.pre_vote),
            on_off(self.check_quorum),
            self.chaos_time.as_millis()
        );
        for bug in &self.bugs {
            cmd += &format!(" --bug {}", bug.name());
        }
        if !self.check_persist_before_send {
            cmd += " --no-persist-check";
        }
        if self.drift_beyond_bound {
            cmd += " --drift-beyond-bound";
        }
        cmd
    }

    /// The nodes' config; `drift_ppm` is the most the run's clocks drift.
    pub(crate) fn machine_config(&self, drift_ppm: i64) -> Config {
        let drift = u32::try_from(drift_ppm).expect("a drift bound is not negative");
        Config {
            cluster: "sim".into(),
            election_timeout: self.election_timeout,
            heartbeat_interval: self.heartbeat_interval,
            message_timeout: self.heartbeat_interval,
            min_nodes: self.nodes,
            max_nodes: Some(self.nodes),
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
            drift_bound_ppm: if self.drift_beyond_bound { 0 } else { drift },
            lease_margin: Some(Duration::ZERO), // the check is on the lease's bound itself
        }
    }
}

impl fmt::Display for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} nodes, pre-vote {}, check-quorum {}, election timeout {:?}, heartbeat {:?}, chaos {:?}",
            self.nodes,
            self.pre_vote,
            self.check_quorum,
            self.election_timeout,
            self.heartbeat_interval,
            self.chaos_time
        )?;
        if !self.bugs.is_empty() {
            write!(f, ", injected bugs {:?}", self.bugs)?;
        }
        if self.drift_beyond_bound {
            write!(f, ", clocks drift beyond the bound")?;
        }
        Ok(())
    }
}

/// A broken invariant, with everything needed to replay it.
#[derive(Debug, Clone)]
pub struct Violation {
    pub seed: u64,
    pub config: SimConfig,
    /// Virtual time of the failing step.
    pub at: Duration,
    pub what: String,
    /// The last steps before the failure.
    pub recent: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "simulation failed: seed {} at {:?}: {}",
            self.seed, self.at, self.what
        )?;
        writeln!(f, "config: {}", self.config)?;
        writeln!(f, "replay: {}", self.config.replay_command(self.seed))?;
        writeln!(f, "last steps:")?;
        for line in &self.recent {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violation {}

/// What a successful run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimReport {
    pub seed: u64,
    /// A hash of every step: equal for equal seeds and configs.
    pub trace_hash: u64,
    pub steps: u64,
    pub messages_sent: u64,
    pub messages_dropped: u64,
    pub faults_injected: u64,
    pub crashes: u64,
    /// Terms in which a leader was elected.
    pub leaders_elected: usize,
    /// Virtual time from healing to a leader known by all.
    pub time_to_leader_after_heal: Duration,
    /// Whether the run checked liveness after healing. Only a run whose hostile input left
    /// nodes' terms too far apart, or hit a cluster without pre-vote, is excused.
    pub liveness_checked: bool,
    pub final_term: u64,
}
