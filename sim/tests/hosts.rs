//! Hosts of many groups in the hostile world: every invariant per group, after every step.

use std::time::Duration;

use almost_raft_sim::hosts::{HostSimConfig, run_hosts};

fn check(seeds: std::ops::Range<u64>, config: &HostSimConfig) {
    for seed in seeds {
        match run_hosts(seed, config) {
            Ok(report) => {
                // Idle pairs: one heartbeat and one ack per pair and interval, whatever the
                // number of groups (3 hosts: 6 pairs' directions, x2 for the acks).
                let pairs = (config.hosts * (config.hosts - 1)) as f64;
                let per_second = 1.0 / config.heartbeat_interval.as_secs_f64();
                assert!(
                    report.idle_datagrams_per_second <= 2.0 * pairs * per_second * 1.05,
                    "seed {seed}: {report:?}"
                );
            }
            Err(violation) => panic!("{violation}"),
        }
    }
}

#[test]
fn a_thousand_groups_on_three_hosts_without_faults_settle_quiet() {
    let config = HostSimConfig {
        faults: false,
        chaos_time: Duration::from_secs(2),
        ..HostSimConfig::default()
    };
    check(0..2, &config);
}

#[test]
fn a_thousand_groups_on_three_hosts_in_a_hostile_world() {
    check(0..4, &HostSimConfig::default());
}

#[test]
fn groups_of_three_on_five_hosts_in_a_hostile_world() {
    let config = HostSimConfig {
        hosts: 5,
        groups: 300,
        ..HostSimConfig::default()
    };
    check(0..4, &config);
}

/// The injected bug `quiet-follower-not-refreshed` (a quiet follower forgets that its
/// leader's host was heard) must give two leases at once within a few seeds.
#[test]
fn a_quiet_follower_that_forgets_its_leader_is_caught() {
    let config = HostSimConfig {
        bugs: vec![almost_raft_sim::Bug::QuietFollowerNotRefreshed],
        ..HostSimConfig::default()
    };
    let caught = (0..20).find_map(|seed| run_hosts(seed, &config).err());
    let violation = caught.expect("caught within 20 seeds");
    assert!(violation.what.contains("lease"), "{violation}");
    assert!(
        violation
            .to_string()
            .contains("--bug quiet-follower-not-refreshed"),
        "{violation}"
    );
}
