//! Runs the host simulator (many groups per host) over many seeds, or replays one.
//!
//! cargo run -p almost-raft-sim --release --example simulate_hosts -- \
//!     [--seed N | --start N --seeds K] [--hosts 3] [--groups 1000] [--voters 3] \
//!     [--chaos-ms 20000] [--no-faults] [--verbose] [--bug NAME]
//!
//! Exits 1 on the first violation, printing its seed, config and replay command.

use std::process::ExitCode;
use std::time::Duration;

use almost_raft_sim::hosts::{HostSimConfig, run_hosts};

fn main() -> ExitCode {
    let mut config = HostSimConfig::default();
    let (mut start, mut seeds) = (0u64, 1u64);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || -> u64 {
            let v = args.next().unwrap_or_default();
            v.parse().unwrap_or_else(|_| {
                eprintln!("{flag} takes a number, not {v:?}");
                std::process::exit(2)
            })
        };
        match flag.as_str() {
            "--seed" => (start, seeds) = (value(), 1),
            "--start" => start = value(),
            "--seeds" => seeds = value(),
            "--hosts" => config.hosts = value() as usize,
            "--groups" => config.groups = value() as usize,
            "--voters" => config.voters = value() as usize,
            "--chaos-ms" => config.chaos_time = Duration::from_millis(value()),
            "--no-faults" => config.faults = false,
            "--verbose" => config.verbose = true,
            "--bug" => {
                let name = args.next().unwrap_or_default();
                match almost_raft_sim::Bug::from_name(&name) {
                    Some(bug) => config.bugs.push(bug),
                    None => {
                        eprintln!("unknown bug {name:?}");
                        return ExitCode::from(2);
                    }
                }
            }
            other => {
                eprintln!("unknown flag {other}");
                return ExitCode::from(2);
            }
        }
    }
    for seed in start..start + seeds {
        match run_hosts(seed, &config) {
            Ok(r) => println!(
                "seed {seed}: ok: {} steps, {} datagrams, {} crashes, {} partitions, {} pauses, {} elections won, settled {:?} after the heal, idle {:.0} datagrams/s, leaders per host {:?}",
                r.steps,
                r.datagrams,
                r.crashes,
                r.partitions,
                r.pauses,
                r.elections_won,
                r.settle_time,
                r.idle_datagrams_per_second,
                r.leaders
            ),
            Err(v) => {
                eprintln!("{v}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
