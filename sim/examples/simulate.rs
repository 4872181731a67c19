//! Runs the election simulator over many seeds, or replays one with a full trace.
//!
//! ```text
//! cargo run --release -p almost-raft-sim --example simulate -- [options]
//!   --seeds N            run seeds START..START+N (default 1000)
//!   --start S            first seed (default 0)
//!   --seed S             run exactly seed S (same as --start S --seeds 1)
//!   --nodes N            cluster size (default 5)
//!   --pre-vote on|off    (default on)
//!   --check-quorum on|off (default on)
//!   --chaos-ms MS        virtual time of the fault phase (default 10000)
//!   --trace              print every step
//!   --bug NAME           inject a known bug ; repeatable
//!   --no-persist-check   do not check that state is saved before sending
//!   --drift-beyond-bound tell nodes their clocks do not drift (the lease check must fail)
//!   --threads N          worker threads (default: available cores)
//! ```
//! Exits 1 on the first violation, printing its seed, config and replay command.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use almost_raft_sim::Bug;
use almost_raft_sim::{self as sim, SimConfig};

struct Args {
    start: u64,
    seeds: u64,
    trace: bool,
    threads: usize,
    config: SimConfig,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        start: 0,
        seeds: 1000,
        trace: false,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        config: SimConfig::new(5, true, true),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let on_off = |v: String| match v.as_str() {
            "on" => Ok(true),
            "off" => Ok(false),
            _ => Err(format!("expected on or off, got {v:?}")),
        };
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{v:?}: {e}"));
        match flag.as_str() {
            "--seeds" => args.seeds = number(value()?)?,
            "--start" => args.start = number(value()?)?,
            "--seed" => (args.start, args.seeds) = (number(value()?)?, 1),
            "--nodes" => args.config.nodes = number(value()?)? as usize,
            "--pre-vote" => args.config.pre_vote = on_off(value()?)?,
            "--check-quorum" => args.config.check_quorum = on_off(value()?)?,
            "--chaos-ms" => args.config.chaos_time = Duration::from_millis(number(value()?)?),
            "--threads" => args.threads = number(value()?)?.max(1) as usize,
            "--trace" => args.trace = true,
            "--no-persist-check" => args.config.check_persist_before_send = false,
            "--drift-beyond-bound" => args.config.drift_beyond_bound = true,
            "--bug" => {
                let name = value()?;
                let bug = Bug::from_name(&name).ok_or_else(|| {
                    let known: Vec<_> = Bug::ALL.iter().map(|b| b.name()).collect();
                    format!("unknown bug {name:?}; known: {}", known.join(", "))
                })?;
                args.config.bugs.push(bug);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if args.config.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!(
                "{e}\nusage: simulate [--seeds N] [--start S | --seed S] [--nodes N] [--pre-vote on|off] [--check-quorum on|off] [--chaos-ms MS] [--trace] [--bug NAME] [--no-persist-check] [--drift-beyond-bound] [--threads N]"
            );
            return ExitCode::from(2);
        }
    };
    if args.trace {
        for seed in args.start..args.start + args.seeds {
            match sim::run_traced(seed, &args.config, &mut |line| println!("{line}")) {
                Ok(report) => println!("{report:?}"),
                Err(v) => {
                    eprintln!("{v}");
                    return ExitCode::FAILURE;
                }
            }
        }
        return ExitCode::SUCCESS;
    }
    let started = Instant::now();
    let next = AtomicU64::new(args.start);
    let end = args.start + args.seeds;
    let failed = AtomicBool::new(false);
    let (steps, leaders, excused) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        for _ in 0..args.threads {
            s.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        break;
                    }
                    match sim::run(seed, &args.config) {
                        Ok(r) => {
                            steps.fetch_add(r.steps, Ordering::Relaxed);
                            leaders.fetch_add(r.leaders_elected as u64, Ordering::Relaxed);
                            excused.fetch_add(u64::from(!r.liveness_checked), Ordering::Relaxed);
                        }
                        Err(v) => {
                            if !failed.swap(true, Ordering::Relaxed) {
                                eprintln!("{v}");
                            }
                        }
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed();
    println!(
        "{} seeds {}..{} ({}): {} in {:.1?}, {} steps, {} leaders elected, liveness excused in {} (hostile terms)",
        args.seeds,
        args.start,
        end,
        args.config,
        if failed.load(Ordering::Relaxed) {
            "VIOLATION"
        } else {
            "all passed"
        },
        elapsed,
        steps.load(Ordering::Relaxed),
        leaders.load(Ordering::Relaxed),
        excused.load(Ordering::Relaxed),
    );
    if failed.load(Ordering::Relaxed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
