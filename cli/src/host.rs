//! `almost-raft-node host`: one host of many election groups over the built-in UDP
//! transport, printing every group's leader changes and the host's counts as JSON lines.
//! The benchmark (bench/hosts.py) and the chaos run of hosts drive it.
//!
//! ```text
//! almost-raft-node host --id h1 --listen 127.0.0.1:7101 --peer h2=127.0.0.1:7102 \
//!     --peer h3=127.0.0.1:7103 --groups 10000 [--state FILE] [--cluster NAME]
//!     [--election-timeout-ms 1000] [--heartbeat-ms 100] [--preferred] [--no-group-events]
//! ```
//! Groups are named g0, g1, ...; every host is a voter of every group. With `--preferred`,
//! group gN prefers the host named N-th (mod the number of hosts, ids sorted). SIGTERM hands
//! every group over, then exits 0.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use almost_raft::host::HostBuilder;
use almost_raft::{Config, Event};

struct Options {
    id: String,
    listen: String,
    peers: Vec<(String, String)>,
    groups: usize,
    state: Option<String>,
    config: Config,
    preferred: bool,
    group_events: bool,
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut o = Options {
        id: String::new(),
        listen: String::new(),
        peers: Vec::new(),
        groups: 1,
        state: None,
        config: Config {
            cluster: "almost-raft-hosts".into(),
            ..Config::default()
        },
        preferred: false,
        group_events: true,
    };
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let ms = |v: String| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|e| format!("{v:?}: {e}"))
        };
        match flag.as_str() {
            "--id" => o.id = value()?,
            "--listen" => o.listen = value()?,
            "--peer" => {
                let v = value()?;
                let (id, addr) = v
                    .split_once('=')
                    .ok_or(format!("--peer takes ID=ADDR, not {v:?}"))?;
                o.peers.push((id.to_owned(), addr.to_owned()));
            }
            "--groups" => o.groups = value()?.parse().map_err(|e| format!("--groups: {e}"))?,
            "--state" => o.state = Some(value()?),
            "--cluster" => o.config.cluster = value()?,
            "--election-timeout-ms" => o.config.election_timeout = ms(value()?)?,
            "--heartbeat-ms" => o.config.heartbeat_interval = ms(value()?)?,
            "--preferred" => o.preferred = true,
            "--no-group-events" => o.group_events = false,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.id.is_empty() || o.listen.is_empty() {
        return Err("--id and --listen are required".into());
    }
    Ok(o)
}

/// Lines go out from a thread of their own: a reader that falls behind must never block the
/// runtime's threads, which run the host.
struct Output {
    lines: std::sync::mpsc::Sender<String>,
    printer: std::thread::JoinHandle<()>,
}

impl Output {
    fn start() -> Self {
        let (lines, rx) = std::sync::mpsc::channel::<String>();
        let printer = std::thread::spawn(move || {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            for line in rx {
                if writeln!(stdout, "{line}")
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    break;
                }
            }
        });
        Output { lines, printer }
    }
    fn line(&self, line: String) {
        let _ = self.lines.send(line);
    }
    /// Waits until every line is out.
    fn finish(self) {
        drop(self.lines);
        let _ = self.printer.join();
    }
}

fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0
}

pub async fn main(args: Vec<String>) -> ExitCode {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("almost-raft-node host: {e}");
            return ExitCode::from(2);
        }
    };
    let peers: Vec<(&str, &str)> = o
        .peers
        .iter()
        .map(|(i, a)| (i.as_str(), a.as_str()))
        .collect();
    let mut builder = HostBuilder::new(&o.id)
        .config(o.config.clone())
        .udp(&o.listen, peers);
    if let Some(state) = &o.state {
        builder = builder.state_file(state);
    }
    let host = match builder.start() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("almost-raft-node host: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut ids: Vec<&str> = o.peers.iter().map(|(i, _)| i.as_str()).collect();
    ids.push(&o.id);
    ids.sort_unstable();
    for g in 0..o.groups {
        let preferred = o.preferred.then(|| ids[g % ids.len()]);
        if let Err(e) = host.add_group(&format!("g{g}"), &ids, preferred) {
            eprintln!("almost-raft-node host: group g{g}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let out = Output::start();
    out.line(format!(
        "{{\"event\":\"started\",\"id\":\"{}\",\"groups\":{},\"t_ms\":{:.3}}}",
        o.id,
        o.groups,
        wall_ms()
    ));
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("almost-raft-node host: cannot watch SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            e = host.next_event() => {
                let Some(e) = e else { break };
                if let (true, Event::LeaderChanged { leader, term }) = (o.group_events, &e.event) {
                    let leader = leader.as_deref().map_or("null".to_owned(), |l| format!("\"{l}\""));
                    out.line(format!("{{\"event\":\"leader\",\"group\":\"{}\",\"leader\":{leader},\"term\":{term},\"t_ms\":{:.3}}}", e.group, wall_ms()));
                }
            }
            _ = tick.tick() => {
                let s = host.stats();
                out.line(format!(
                    "{{\"event\":\"stats\",\"groups\":{},\"leading\":{},\"quiet\":{},\"datagrams_sent\":{},\"datagrams_received\":{},\"balance_handovers\":{},\"t_ms\":{:.3}}}",
                    s.groups, s.leading, s.quiet, s.datagrams_sent, s.datagrams_received, s.handovers_for_balance, wall_ms()
                ));
            }
            _ = term.recv() => {
                host.shutdown().await;
                out.line(format!("{{\"event\":\"stopped\",\"t_ms\":{:.3}}}", wall_ms()));
                out.finish();
                return ExitCode::SUCCESS;
            }
        }
    }
    out.finish();
    match host.failure() {
        Some(e) => {
            eprintln!("almost-raft-node host: stopped: {e}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}
