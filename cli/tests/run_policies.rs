//! `almost-raft run`'s policies, each on live runners over 127.0.0.1: SIGHUP reaches the job;
//! `--restart` runs an exited job again with a doubling backoff (100, 200, 400 ms, as the
//! runner reports it) or leaves it; `--on-exit handover` passes leadership, and with it the
//! job, to another runner; a leader cut off from every peer stops its job when its lease
//! ends, though no message arrives; `--metrics` serves Prometheus metrics and `/healthz`.

mod support;

use std::net::UdpSocket;

use support::{Runners, http_get, sample};

/// A job that says when it is ready and when it gets SIGHUP, and runs until stopped.
const HUP_JOB: &str =
    "trap 'echo job hup' HUP; echo job ready; while :; do sleep 0.05 || true; done";

#[test]
fn sighup_to_the_runner_reaches_the_job() {
    let r = Runners::start(1, &[], HUP_JOB);
    r.job_line("ready");
    r.signal(0, libc::SIGHUP);
    r.job_line("hup");
    // The runner and its job go on.
    r.signal(0, libc::SIGHUP);
    r.job_line("hup");
}

#[test]
fn restart_always_runs_the_job_again_with_a_doubling_backoff() {
    let r = Runners::start(1, &["--restart", "always"], "exit 0");
    let mut delays = Vec::new();
    for _ in 0..4 {
        let (_, exit) = r.event("child_exit");
        assert_eq!(exit["status"], "exit 0");
        assert_eq!(exit["then"], "restart");
        delays.push(exit["restart_in_ms"].as_u64().unwrap());
    }
    assert_eq!(delays, [100, 200, 400, 800]);
}

#[test]
fn restart_on_failure_reruns_a_failed_job_and_leaves_a_successful_one() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("failed-once");
    // Fails the first time, succeeds the second.
    let job = format!(
        "if [ -e {0} ]; then exit 0; fi; touch {0}; exit 3",
        marker.display()
    );
    let r = Runners::start(1, &["--restart", "on-failure"], &job);
    let (_, first) = r.event("child_exit");
    assert_eq!(first["status"], "exit 3");
    assert_eq!(first["then"], "restart");
    let (_, second) = r.event("child_exit");
    assert_eq!(second["status"], "exit 0");
    assert_eq!(
        second["then"], "stay",
        "a job that succeeded is not run again"
    );
}

#[test]
fn on_exit_handover_passes_the_job_to_another_runner() {
    let job = "echo job term=$ALMOST_RAFT_TERM; exit 0";
    let r = Runners::start(3, &["--restart", "never", "--on-exit", "handover"], job);
    let (first, exit) = r.event("child_exit");
    assert_eq!(exit["then"], "handover");
    let term = exit["term"].as_u64().unwrap();
    let (from, handover) = r.event("handover");
    assert_eq!(from, first);
    let to = handover["to"].as_str().unwrap().to_owned();
    let (next, start) = r.event("child_start");
    assert_eq!(
        format!("r{next}"),
        to,
        "the runner handed to runs the job next"
    );
    assert_eq!(start["term"].as_u64().unwrap(), term + 1);
}

#[test]
fn a_leader_cut_off_from_its_peers_stops_the_job_when_its_lease_ends() {
    let r = Runners::start(3, &[], HUP_JOB);
    let (leader, start) = r.event("child_start");
    let pid = start["pid"].as_u64().unwrap() as u32;
    // Freeze the two others: no message reaches the leader any more.
    for i in (0..3).filter(|&i| i != leader) {
        r.signal(i, libc::SIGSTOP);
    }
    let (i, stop) = r.event("child_stop");
    assert_eq!(i, leader);
    assert_eq!(stop["reason"], "lease_lost");
    r.gone(pid);
}

#[test]
fn metrics_and_health_are_served() {
    let r = Runners::start(3, &["--metrics", "127.0.0.1:0"], HUP_JOB);
    let mut addrs = vec![String::new(); 3];
    for _ in 0..3 {
        let (i, line) = r.event("metrics");
        addrs[i] = line["addr"].as_str().unwrap().to_owned();
    }
    let (leader, _) = r.event("child_start");
    r.job_line("ready");
    // Bytes that are no message, to the leader's port.
    let garbage = UdpSocket::bind("127.0.0.1:0").unwrap();
    garbage
        .send_to(b"\x03 no message", ("127.0.0.1", r.ports[leader]))
        .unwrap();

    let (status, body) = http_get(&addrs[leader], "/healthz");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, "ok\n");
    let refused = "almost_raft_messages_refused_total{reason=\"MALFORMED_MESSAGE\"}";
    let metrics = loop {
        // The datagram may still be on its way: scrape until it is counted.
        let (status, metrics) = http_get(&addrs[leader], "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        if sample(&metrics, refused).is_some() {
            break metrics;
        }
    };
    let value = |name: &str| sample(&metrics, name).unwrap_or_else(|| panic!("{name}"));
    assert_eq!(value(refused), 1.0);
    assert_eq!(value("almost_raft_role{role=\"leader\"}"), 1.0);
    assert!(value("almost_raft_term") >= 1.0);
    assert!(value("almost_raft_elections_won_total") >= 1.0);
    assert_eq!(value("almost_raft_child_running"), 1.0);
    assert!(value("almost_raft_child_starts_total") >= 1.0);
    assert!(value("almost_raft_lease_remaining_seconds") > 0.0);
    assert!(value("almost_raft_messages_sent_total{kind=\"heartbeat\"}") >= 2.0);
    assert!(value("almost_raft_messages_received_total{kind=\"vote_reply\"}") >= 1.0);
    assert!(metrics.ends_with("# EOF\n"));
    let follower = (0..3).find(|&i| i != leader).unwrap();
    let (_, theirs) = http_get(&addrs[follower], "/metrics");
    assert_eq!(
        sample(&theirs, "almost_raft_role{role=\"follower\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&theirs, "almost_raft_child_running"), Some(0.0));
    let (status, _) = http_get(&addrs[leader], "/nothing");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}
