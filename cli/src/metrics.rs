//! `--metrics ADDR`: Prometheus metrics (OpenMetrics text) on `/metrics`, and `/healthz`.
//!
//! Counters come from the node's [`Observer`] hook as things happen; the gauges that describe
//! the present (role, term, lease remaining) are read from the node's status at each scrape.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use almost_raft::{Body, Envelope, Error, Event, NodeHandle, Observer, Role, Status};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Label = [(&'static str, &'static str); 1];

const ROLES: [Role; 4] = [
    Role::Follower,
    Role::PreCandidate,
    Role::Candidate,
    Role::Leader,
];

/// Every metric; cheap to clone (the values are shared).
#[derive(Clone, Default)]
pub(crate) struct Metrics {
    role: Family<Label, Gauge>,
    term: Gauge,
    lease_remaining: Gauge<f64, AtomicU64>,
    leader_changes: Counter,
    pre_votes_started: Counter,
    elections_started: Counter,
    elections_won: Counter,
    sent: Family<Label, Counter>,
    received: Family<Label, Counter>,
    refused: Family<Label, Counter>,
    save_seconds: SaveSeconds,
    pub(crate) child_running: Gauge,
    pub(crate) child_starts: Counter,
    pub(crate) child_restarts: Counter,
}

#[derive(Clone)]
struct SaveSeconds(Histogram);

impl Default for SaveSeconds {
    fn default() -> Self {
        // 50 µs to about 1.6 s.
        SaveSeconds(Histogram::new(exponential_buckets(0.000_05, 2.0, 16)))
    }
}

/// The metrics and the registry that names them.
pub(crate) struct Exporter {
    registry: Registry,
    pub(crate) metrics: Metrics,
}

impl Exporter {
    pub(crate) fn new() -> Exporter {
        let metrics = Metrics::default();
        let m = metrics.clone();
        let mut r = Registry::with_prefix("almost_raft");
        r.register("role", "1 for this node's current role", m.role);
        r.register("term", "This node's current term", m.term);
        r.register(
            "lease_remaining_seconds",
            "Time left on this node's leader lease (0 without one)",
            m.lease_remaining,
        );
        r.register(
            "leader_changes",
            "Changes of the known leader",
            m.leader_changes,
        );
        r.register(
            "pre_votes_started",
            "Pre-vote rounds this node started",
            m.pre_votes_started,
        );
        r.register(
            "elections_started",
            "Elections this node started (terms it campaigned in)",
            m.elections_started,
        );
        r.register("elections_won", "Elections this node won", m.elections_won);
        r.register("messages_sent", "Messages sent, by kind", m.sent);
        r.register(
            "messages_received",
            "Messages received, by kind",
            m.received,
        );
        r.register(
            "messages_refused",
            "Datagrams refused, by reason (an error kind)",
            m.refused,
        );
        r.register(
            "save_duration_seconds",
            "Time to save the term and vote durably",
            m.save_seconds.0,
        );
        r.register("child_running", "1 while the job runs", m.child_running);
        r.register("child_starts", "Starts of the job", m.child_starts);
        r.register(
            "child_restarts",
            "Starts of the job after it exited by itself in the same term",
            m.child_restarts,
        );
        Exporter {
            registry: r,
            metrics,
        }
    }

    /// The OpenMetrics text of every metric, the gauges read from `status`.
    pub(crate) fn render(&self, status: &Status) -> String {
        let m = &self.metrics;
        for role in ROLES {
            m.role
                .get_or_create(&[("role", role.name())])
                .set(i64::from(role == status.role));
        }
        m.term.set(status.term as i64);
        let lease = status.lease_remaining.unwrap_or(Duration::ZERO);
        m.lease_remaining.set(lease.as_secs_f64());
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

fn kind(body: &Body) -> &'static str {
    match body {
        Body::PreVote => "pre_vote",
        Body::PreVoteReply { .. } => "pre_vote_reply",
        Body::Vote { .. } => "vote",
        Body::VoteReply { .. } => "vote_reply",
        Body::Heartbeat { .. } => "heartbeat",
        Body::HeartbeatReply { .. } => "heartbeat_reply",
        Body::TimeoutNow => "timeout_now",
    }
}

impl Observer for Metrics {
    fn received(&self, message: &Envelope) {
        self.received
            .get_or_create(&[("kind", kind(&message.body))])
            .inc();
    }
    fn sent(&self, message: &Envelope) {
        self.sent
            .get_or_create(&[("kind", kind(&message.body))])
            .inc();
    }
    fn refused(&self, error: &Error) {
        self.refused
            .get_or_create(&[("reason", error.kind().name())])
            .inc();
    }
    fn saved(&self, took: Duration) {
        self.save_seconds.0.observe(took.as_secs_f64());
    }
    fn event(&self, event: &Event) {
        match event {
            Event::LeaderChanged { .. } => self.leader_changes.inc(),
            Event::RoleChanged { role, .. } => match role {
                Role::PreCandidate => self.pre_votes_started.inc(),
                Role::Candidate => self.elections_started.inc(),
                Role::Leader => self.elections_won.inc(),
                Role::Follower => 0,
            },
            Event::LeaseChanged { .. } | Event::Stopped => 0,
        };
    }
}

/// Answers `GET /metrics` and `GET /healthz` on `listener` until dropped. One slow client
/// cannot stall the others: each connection has a task, and five seconds.
pub(crate) async fn serve(listener: TcpListener, exporter: Arc<Exporter>, node: Arc<NodeHandle>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("almost-raft run: metrics: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await; // e.g. out of descriptors
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let (exporter, node) = (exporter.clone(), node.clone());
        connections.spawn(tokio::time::timeout(
            Duration::from_secs(5),
            answer(stream, exporter, node),
        ));
    }
}

async fn answer(mut stream: TcpStream, exporter: Arc<Exporter>, node: Arc<NodeHandle>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&request);
    let mut words = line.split_whitespace();
    let (status, content_type, body) = match (words.next(), words.next()) {
        (Some("GET"), Some("/metrics")) => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            exporter.render(&node.status()),
        ),
        (Some("GET"), Some("/healthz")) => match health(&node) {
            Ok(()) => ("200 OK", "text/plain", "ok\n".to_owned()),
            Err(why) => ("503 Service Unavailable", "text/plain", format!("{why}\n")),
        },
        (Some("GET"), _) => (
            "404 Not Found",
            "text/plain",
            "try /metrics or /healthz\n".into(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Healthy while the node runs: not stopped by a failed save or an internal error.
fn health(node: &NodeHandle) -> Result<(), String> {
    if let Some(failure) = node.failure() {
        return Err(format!("the node stopped: {failure}"));
    }
    if node.status().stopped {
        return Err("the node stopped".into());
    }
    Ok(())
}
