//! `almost-raft run`: three runners on 127.0.0.1, each wanting to run a job that starts a
//! grandchild and waits. Only the leader's runner runs it, with the term in its environment;
//! SIGTERM to that runner stops the job and its grandchild before any other runner starts it
//! (the job's stop is reported before the next start, by the host's one clock), and the next
//! start carries a higher term. SIGKILL to a runner takes its job and the job's children
//! with it. Every wait reads
//! the runners' output; the guard only bounds a hang.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

const RUNNERS: usize = 3;
const GUARD: Duration = Duration::from_secs(60);
/// The job: prints its term and its grandchild's pid, then waits for the grandchild.
const JOB: &str = "sleep 1000 & echo \"job term=$ALMOST_RAFT_TERM grandchild=$!\"; wait";

enum Out {
    Event(usize, Value),
    Job { term: u64, grandchild: u32 },
}

struct Runners {
    children: Vec<Child>,
    out: Receiver<Out>,
    deadline: Instant,
}

impl Runners {
    fn start() -> Runners {
        let ports: Vec<u16> = (0..RUNNERS)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect::<Vec<_>>()
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        let (tx, out) = channel();
        let mut children = Vec::new();
        for i in 0..RUNNERS {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_almost-raft"));
            cmd.args(["run", "--id", &format!("r{i}"), "--listen"])
                .arg(format!("127.0.0.1:{}", ports[i]))
                .args(["--kill-grace-ms", "200"]);
            for j in (0..RUNNERS).filter(|&j| j != i) {
                cmd.args(["--peer", &format!("r{j}@127.0.0.1:{}", ports[j])]);
            }
            cmd.args(["--", "sh", "-c", JOB]);
            let mut child = cmd.stdout(Stdio::piped()).spawn().expect("almost-raft run");
            let stdout = BufReader::new(child.stdout.take().unwrap());
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in stdout.lines().map_while(Result::ok) {
                    eprintln!("r{i}: {line}");
                    let out = match line.strip_prefix("job ") {
                        Some(job) => {
                            let field = |name: &str| {
                                job.split(' ')
                                    .find_map(|kv| kv.strip_prefix(name))
                                    .and_then(|v| v.parse().ok())
                                    .unwrap_or_else(|| panic!("{name} in {line}"))
                            };
                            Out::Job {
                                term: field("term="),
                                grandchild: field("grandchild=") as u32,
                            }
                        }
                        None => Out::Event(i, serde_json::from_str(&line).expect("a JSON line")),
                    };
                    let _ = tx.send(out);
                }
            });
            children.push(child);
        }
        Runners {
            children,
            out,
            deadline: Instant::now() + GUARD,
        }
    }

    fn next(&self) -> Out {
        let left = self.deadline.saturating_duration_since(Instant::now());
        self.out
            .recv_timeout(left)
            .expect("more output within the guard")
    }

    /// Waits for the event `what` from any runner: (runner, the line).
    fn event(&self, what: &str) -> (usize, Value) {
        loop {
            if let Out::Event(i, v) = self.next() {
                if v["event"] == what {
                    return (i, v);
                }
            }
        }
    }

    /// Waits for a `child_start` and the job's own line, which may come in either order:
    /// (runner, the event, the job's term, its grandchild's pid).
    fn job_started(&self) -> (usize, Value, u64, u32) {
        let (mut start, mut job) = (None, None);
        loop {
            match self.next() {
                Out::Event(i, v) if v["event"] == "child_start" => start = Some((i, v)),
                Out::Job { term, grandchild } => job = Some((term, grandchild)),
                Out::Event(..) => {}
            }
            if let (Some((i, v)), Some((term, grandchild))) = (&start, job) {
                return (*i, v.clone(), term, grandchild);
            }
        }
    }

    /// Waits until `pid` is gone (or a zombie: dead, waiting for its reaper).
    fn gone(&self, pid: u32) {
        while let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            if stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
            {
                return;
            }
            assert!(Instant::now() < self.deadline, "{pid} still runs");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Runners {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn only_the_leader_runs_the_job_and_it_is_gone_before_another_starts() {
    let mut r = Runners::start();
    let (first, start, job_term, grandchild) = r.job_started();
    let term = start["term"].as_u64().unwrap();
    assert_eq!(start["leader"], format!("r{first}"));
    assert_eq!(job_term, term, "the job gets the fencing token");

    // SAFETY: kill(2) on our own child.
    assert_eq!(
        unsafe { libc::kill(r.children[first].id() as i32, libc::SIGTERM) },
        0
    );
    let (i, stop) = r.event("child_stop");
    assert_eq!(i, first);
    assert_eq!(stop["reason"], "runner_stopping");
    r.gone(grandchild); // the whole process group went
    let (next, restart, next_term, next_grandchild) = r.job_started();
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
