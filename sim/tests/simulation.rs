//! The seeded simulator over many seeds, for each cluster size and protocol option. Every
//! seed checks the safety invariants after every step and liveness after healing; a failure
//! prints its seed, its config and the command that replays it.
//!
//! `SIM_SEEDS` sets the number of seeds per configuration (default 1000); for long soaks use
//! the `simulate` example, which runs seeds in parallel.

use almost_raft_sim::{self as sim, SimConfig};

fn seeds() -> u64 {
    std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
}

fn run_seeds(config: SimConfig) {
    let seeds = seeds();
    let started = std::time::Instant::now();
    let mut leaders = 0;
    for seed in 0..seeds {
        match sim::run(seed, &config) {
            Ok(report) => leaders += report.leaders_elected,
            Err(violation) => panic!("{violation}"),
        }
    }
    println!(
        "{seeds} seeds ({config}) passed in {:.1?}; {leaders} leaders elected",
        started.elapsed()
    );
}

#[test]
fn three_nodes_with_pre_vote_and_check_quorum() {
    run_seeds(SimConfig::new(3, true, true));
}

#[test]
fn three_nodes_without_pre_vote_or_check_quorum() {
    run_seeds(SimConfig::new(3, false, false));
}

#[test]
fn five_nodes_with_pre_vote_and_check_quorum() {
    run_seeds(SimConfig::new(5, true, true));
}

#[test]
fn five_nodes_without_pre_vote_or_check_quorum() {
    run_seeds(SimConfig::new(5, false, false));
}

#[test]
fn mixed_options_and_sizes() {
    for (nodes, pre_vote, check_quorum) in [
        (1, true, true),
        (2, true, false),
        (4, false, true),
        (7, true, true),
    ] {
        for seed in 0..seeds() / 10 {
            if let Err(violation) = sim::run(seed, &SimConfig::new(nodes, pre_vote, check_quorum)) {
                panic!("{violation}");
            }
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    let config = SimConfig::new(5, true, true);
    for seed in [0, 1, 42, 999] {
        let mut first = Vec::new();
        let a = sim::run_traced(seed, &config, &mut |line| first.push(line.to_owned())).unwrap();
        let mut second = Vec::new();
        let b = sim::run_traced(seed, &config, &mut |line| second.push(line.to_owned())).unwrap();
        assert_eq!(a, b, "seed {seed}: reports differ");
        assert_eq!(first, second, "seed {seed}: traces differ");
        assert_eq!(
            sim::run(seed, &config).unwrap(),
            a,
            "tracing must not change the run"
        );
    }
    let other = sim::run(7, &config).unwrap();
    assert_ne!(
        other.trace_hash,
        sim::run(8, &config).unwrap().trace_hash,
        "different seeds explore different runs"
    );
}

#[test]
fn the_chaos_actually_happens() {
    // Guards against a simulator that passes because it injects nothing.
    let config = SimConfig::new(5, true, true);
    let (mut faults, mut crashes, mut dropped, mut leaders) = (0, 0, 0, 0);
    for seed in 0..100 {
        let r = sim::run(seed, &config).unwrap();
        faults += r.faults_injected;
        crashes += r.crashes;
        dropped += r.messages_dropped;
        leaders += r.leaders_elected;
    }
    assert!(faults > 500, "faults injected: {faults}");
    assert!(crashes > 50, "crashes: {crashes}");
    assert!(dropped > 1000, "messages dropped: {dropped}");
    assert!(leaders > 300, "leaders elected: {leaders}");
}

#[test]
fn a_violation_names_its_seed_and_replay_command() {
    let config = SimConfig::new(3, true, false);
    let command = config.replay_command(1234);
    assert_eq!(
        command,
        "cargo run --release -p almost-raft-sim --example simulate -- --nodes 3 --pre-vote on --check-quorum off --chaos-ms 10000 --seed 1234 --trace"
    );
}
