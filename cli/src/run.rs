//! `almost-raft run`: runs a command only while this node leads with a valid lease, and stops
//! it, with its whole process group, before the lease ends, so that no other node's copy can
//! start before this one is gone.
//!
//! ```text
//! almost-raft run --id a --listen 0.0.0.0:7001 --peer b@10.0.0.2:7001 --peer c@10.0.0.3:7001 \
//!     --key-file /etc/my-job/key --state-dir /var/lib/my-job -- /usr/bin/my-job --flag
//! ```
//! The job gets `ALMOST_RAFT_TERM` (the fencing token: pass it to what the job guards),
//! `ALMOST_RAFT_LEADER` and `ALMOST_RAFT_CLUSTER`. When the lease is about to end it gets
//! SIGTERM, and SIGKILL `--kill-grace-ms` later, both before the lease's bound (the node is
//! told the lease is lost `--kill-grace-ms` + 50 ms early). The job dies with the runner
//! (`PR_SET_PDEATHSIG`), and the runner reaps orphaned descendants. SIGTERM or SIGINT to the
//! runner stops the job (with that signal), hands leadership over, and exits; SIGHUP is
//! passed on to the job. JSON lines on stdout: every leader change, and every start and stop
//! of the job. `--metrics ADDR` serves Prometheus metrics and `/healthz` (see `metrics`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use almost_raft::{Config, Leadership, NodeHandle};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::child::{self, Fencing, Job};
use crate::metrics::{self, Exporter, Metrics};
use crate::node;
use crate::output::{json_string, print_line};

/// Time for the runner itself to act on the lease's loss: added to the kill grace.
const SLACK: Duration = Duration::from_millis(50);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

const USAGE: &str = "usage: almost-raft run --id ID --listen HOST:PORT --peer ID@HOST:PORT... \
[--state-dir DIR] [--key-file FILE] [--election-timeout-ms MS] [--heartbeat-ms MS] \
[--cluster NAME] [--kill-grace-ms MS] [--restart never|on-failure|always] \
[--on-exit stay|handover] [--metrics HOST:PORT] -- COMMAND [ARGS...]";

/// When the job exits by itself while this node leads, whether it runs again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Restart {
    Never,
    OnFailure,
    Always,
}

/// When the job exits and is not run again: keep leading (idle), or hand leadership over so
/// that another node runs it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnExit {
    Stay,
    Handover,
}

struct RunArgs {
    node: node::Args,
    command: Vec<String>,
    kill_grace: Duration,
    restart: Restart,
    on_exit: OnExit,
    /// Where to serve `/metrics` and `/healthz`.
    metrics: Option<String>,
}

fn parse(args: Vec<String>) -> Result<RunArgs, String> {
    let split = args.iter().position(|a| a == "--");
    let (options, command) = match split {
        Some(at) => (args[..at].to_vec(), args[at + 1..].to_vec()),
        None => return Err("no command: give it after --".into()),
    };
    if command.is_empty() {
        return Err("no command after --".into());
    }
    let (mut kill_grace, mut restart, mut on_exit) =
        (Duration::from_millis(300), Restart::OnFailure, OnExit::Stay);
    let mut metrics = None;
    let mut node_options = Vec::new();
    let mut it = options.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--kill-grace-ms" => {
                let v = value()?;
                kill_grace = Duration::from_millis(
                    v.parse().map_err(|e| format!("--kill-grace-ms {v}: {e}"))?,
                );
            }
            "--restart" => {
                restart = match value()?.as_str() {
                    "never" => Restart::Never,
                    "on-failure" => Restart::OnFailure,
                    "always" => Restart::Always,
                    other => return Err(format!("--restart {other}: never, on-failure or always")),
                }
            }
            "--on-exit" => {
                on_exit = match value()?.as_str() {
                    "stay" => OnExit::Stay,
                    "handover" => OnExit::Handover,
                    other => return Err(format!("--on-exit {other}: stay or handover")),
                }
            }
            "--metrics" => metrics = Some(value()?),
            _ => {
                node_options.push(flag.clone());
                if let Some(v) = it.next() {
                    node_options.push(v);
                }
            }
        }
    }
    let mut node = node::parse(node_options, Config::default())?;
    node.config.lease_margin = Some(kill_grace + SLACK);
    Ok(RunArgs {
        node,
        command,
        kill_grace,
        restart,
        on_exit,
        metrics,
    })
}

struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

/// What stopped the wait for the lease or for the job.
enum Stop {
    /// SIGTERM or SIGINT: the job was stopped with it; hand over, exit.
    Asked,
    /// The node stopped by itself.
    NodeStopped,
}

fn event(node: &str, term: u64, what: &str, extra: &str) {
    let extra = format!(",\"event\":{}{extra}", json_string(what));
    print_line(node, term, Some(node), &extra);
}

/// `almost-raft run ...`.
pub async fn main(args: Vec<String>) -> ExitCode {
    let args = match parse(args) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("almost-raft run: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let signals = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(term), Ok(int), Ok(hup)) => Signals { term, int, hup },
        _ => {
            eprintln!("almost-raft run: cannot handle signals");
            return ExitCode::FAILURE;
        }
    };
    let listener = match &args.metrics {
        None => None,
        Some(addr) => match tokio::net::TcpListener::bind(addr.as_str()).await {
            Ok(listener) => Some(listener),
            Err(e) => {
                eprintln!("almost-raft run: --metrics {addr}: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    child::become_subreaper();
    let exporter = Arc::new(Exporter::new());
    let builder = args.node.builder().observer(exporter.metrics.clone());
    let node = match builder.start_udp() {
        Ok(node) => Arc::new(node),
        Err(e) => {
            eprintln!("almost-raft run: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = listener.map(|listener| {
        if let Ok(addr) = listener.local_addr() {
            let extra = format!(",\"addr\":{}", json_string(&addr.to_string()));
            event(&args.node.id, node.term(), "metrics", &extra);
        }
        tokio::spawn(metrics::serve(listener, exporter.clone(), node.clone()))
    });
    let printer = {
        let (mut changes, id) = (node.leader_changes(), args.node.id.clone());
        tokio::spawn(async move {
            while let Some(change) = changes.next().await {
                print_line(&id, change.term, change.leader.as_deref(), "");
            }
        })
    };
    let mut runner = Runner {
        node: &node,
        args: &args,
        metrics: &exporter.metrics,
        signals,
    };
    let code = match runner.supervise().await {
        Stop::Asked => ExitCode::SUCCESS,
        Stop::NodeStopped => ExitCode::FAILURE,
    };
    if let Some(server) = server {
        server.abort();
        let _ = server.await;
    }
    let Some(node) = Arc::into_inner(node) else {
        unreachable!("the metrics server, the only other owner, has stopped");
    };
    // A leader hands over here, after its job is gone.
    if let Err(e) = node.shutdown().await {
        eprintln!("almost-raft run: {e}");
        return ExitCode::FAILURE;
    }
    let _ = printer.await;
    code
}

/// The supervisor: the node, what it was asked to run, and the signals it acts on.
struct Runner<'a> {
    node: &'a NodeHandle,
    args: &'a RunArgs,
    metrics: &'a Metrics,
    signals: Signals,
}

impl Runner<'_> {
    /// Runs the job whenever this node leads, until asked to stop.
    async fn supervise(&mut self) -> Stop {
        loop {
            let mut leadership = tokio::select! {
                held = self.node.leadership() => match held {
                    Ok(leadership) => leadership,
                    Err(_) => return Stop::NodeStopped,
                },
                _ = self.signals.term.recv() => return Stop::Asked,
                _ = self.signals.int.recv() => return Stop::Asked,
            };
            if let Some(stop) = self.lead(&mut leadership).await {
                return stop;
            }
        }
    }

    /// Runs (and reruns) the job while `leadership` lasts; `Some` when the runner must stop.
    async fn lead(&mut self, leadership: &mut Leadership) -> Option<Stop> {
        let (id, term) = (self.args.node.id.as_str(), leadership.term());
        let fencing = Fencing {
            term,
            leader: id,
            cluster: &self.args.node.config.cluster,
        };
        let mut backoff = FIRST_BACKOFF;
        let mut restarting = false;
        loop {
            let mut job = match child::start(&self.args.command, &fencing) {
                Ok(job) => job,
                Err(e) => {
                    eprintln!(
                        "almost-raft run: cannot start {}: {e}",
                        self.args.command[0]
                    );
                    return self.idle(leadership, term).await;
                }
            };
            self.metrics.child_starts.inc();
            if restarting {
                self.metrics.child_restarts.inc();
            }
            self.metrics.child_running.set(1);
            event(id, term, "child_start", &format!(",\"pid\":{}", job.pid));
            let signals = &mut self.signals;
            let stopped = tokio::select! {
                _ = leadership.lost() => Err((libc::SIGTERM, "lease_lost", None)),
                _ = signals.term.recv() => Err((libc::SIGTERM, "runner_stopping", Some(Stop::Asked))),
                _ = signals.int.recv() => Err((libc::SIGINT, "runner_stopping", Some(Stop::Asked))),
                status = wait_passing_hup(&mut job, &mut signals.hup) => Ok(status),
            };
            let status = match stopped {
                Ok(status) => status,
                Err((first, why, then)) => {
                    stop_job(job, self.args, id, term, first, why).await;
                    self.metrics.child_running.set(0);
                    return then;
                }
            };
            self.metrics.child_running.set(0);
            job.signal(libc::SIGKILL); // what it left behind in its group
            let success = status.as_ref().is_ok_and(|s| s.success());
            let again = match self.args.restart {
                Restart::Always => true,
                Restart::OnFailure => !success,
                Restart::Never => false,
            };
            let how = status
                .as_ref()
                .map_or_else(|e| e.to_string(), child::describe);
            let then = match (again, self.args.on_exit) {
                (true, _) => format!("\"restart\",\"restart_in_ms\":{}", backoff.as_millis()),
                (false, OnExit::Stay) => "\"stay\"".into(),
                (false, OnExit::Handover) => "\"handover\"".into(),
            };
            let extra = format!(
                ",\"pid\":{},\"status\":{},\"then\":{then}",
                job.pid,
                json_string(&how)
            );
            event(id, term, "child_exit", &extra);
            if !again {
                return self.idle(leadership, term).await;
            }
            // Back off, unless the lease ends first.
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = leadership.lost() => return None,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            restarting = true;
        }
    }

    /// The job is done and is not run again: keep leading, or hand over; then wait for the
    /// lease's end or a signal.
    async fn idle(&mut self, leadership: &mut Leadership, term: u64) -> Option<Stop> {
        if self.args.on_exit == OnExit::Handover {
            match self.node.transfer_leadership(None) {
                Ok(to) => {
                    let extra = format!(",\"to\":{}", json_string(&to));
                    event(&self.args.node.id, term, "handover", &extra);
                }
                Err(e) => eprintln!("almost-raft run: cannot hand over: {e}"),
            }
        }
        tokio::select! {
            _ = leadership.lost() => None,
            _ = self.signals.term.recv() => Some(Stop::Asked),
            _ = self.signals.int.recv() => Some(Stop::Asked),
        }
    }
}

/// Waits for the job to exit, passing every SIGHUP on to its group.
async fn wait_passing_hup(
    job: &mut Job,
    hup: &mut Signal,
) -> std::io::Result<std::process::ExitStatus> {
    loop {
        tokio::select! {
            status = job.exited() => return status,
            _ = hup.recv() => job.signal(libc::SIGHUP),
        }
    }
}

async fn stop_job(job: Job, args: &RunArgs, id: &str, term: u64, first: i32, why: &str) {
    let pid = job.pid;
    let how = match job.stop(first, args.kill_grace).await {
        Ok(status) => child::describe(&status),
        Err(e) => e.to_string(),
    };
    let extra = format!(
        ",\"pid\":{pid},\"status\":{},\"reason\":{}",
        json_string(&how),
        json_string(why)
    );
    event(id, term, "child_stop", &extra);
}
