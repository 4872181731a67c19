//! `almost-raft run`: three runners on 127.0.0.1, each wanting to run a job that starts a
//! grandchild and waits. Only the leader's runner runs it, with the term in its environment;
//! SIGTERM to that runner stops the job and its grandchild before any other runner starts it
//! (the job's stop is reported before the next start, by the host's one clock), and the next
//! start carries a higher term. SIGKILL to a runner takes its job and the job's children
//! with it. Every wait reads
//! the runners' output; the guard only bounds a hang.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{Out, Runners, field};

/// The job: prints its term and its grandchild's pid, then waits for the grandchild.
const JOB: &str = "sleep 1000 & echo \"job term=$ALMOST_RAFT_TERM grandchild=$!\"; wait";

/// Waits for a `child_start` and the job's own line, which may come in either order:
/// (runner, the event, the job's term, its grandchild's pid).
fn job_started(r: &Runners) -> (usize, Value, u64, u32) {
    let (mut start, mut job) = (None, None);
    loop {
        match r.next() {
            Out::Event(i, v) if v["event"] == "child_start" => start = Some((i, v)),
            Out::Job(_, line) => job = Some((field(&line, "term"), field(&line, "grandchild"))),
            Out::Event(..) => {}
        }
        if let (Some((i, v)), Some((term, grandchild))) = (&start, job) {
            return (*i, v.clone(), term, grandchild);
        }
    }
}

#[test]
fn only_the_leader_runs_the_job_and_it_is_gone_before_another_starts() {
    let mut r = Runners::start(3, &["--kill-grace-ms", "200"], JOB);
    let (first, start, job_term, grandchild) = job_started(&r);
    let term = start["term"].as_u64().unwrap();
    assert_eq!(start["leader"], format!("r{first}"));
    assert_eq!(job_term, term, "the job gets the fencing token");

    r.signal(first, libc::SIGTERM);
    let (i, stop) = r.event("child_stop");
    assert_eq!(i, first);
    assert_eq!(stop["reason"], "runner_stopping");
    r.gone(grandchild); // the whole process group went
    let (next, restart, next_term, next_grandchild) = job_started(&r);
    assert_ne!(next, first);
    assert_eq!(next_term, restart["term"].as_u64().unwrap());
    assert!(restart["term"].as_u64().unwrap() > term);
    assert!(
        stop["ts_ms"].as_u64() <= restart["ts_ms"].as_u64(),
        "the job stopped at {} and started elsewhere at {}",
        stop["ts_ms"],
        restart["ts_ms"]
    );
    assert!(r.children[first].wait().unwrap().success(), "a clean exit");

    // A runner killed outright takes its job with it, grandchildren included.
    let pid = restart["pid"].as_u64().unwrap() as u32;
    r.children[next].kill().unwrap();
    r.gone(pid);
    r.gone(next_grandchild);
}

#[test]
fn bad_usage_is_refused_with_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_almost-raft"))
        .args(["run", "--id", "a", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no command"));
    let out = Command::new(env!("CARGO_BIN_EXE_almost-raft"))
        .args([
            "run",
            "--id",
            "a",
            "--listen",
            "127.0.0.1:0",
            "--kill-grace-ms",
            "2000",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lease_margin_ms"));
}
