//! Three `almost-raft-node` processes on 127.0.0.1: SIGTERM (or SIGINT) to the leader's process
//! makes it hand over. The stopping leader prints its handover line, hears the new leader, and
//! exits cleanly; the two others agree on the leader it named, in the very next term. Every
//! wait reads the processes' stdout; the guard only bounds a hang. The same holds for a
//! cluster whose messages are signed (`--key-file`); a key file every user may read is refused.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

const NODES: usize = 3;
const GUARD: Duration = Duration::from_secs(60);

/// What one line said: (node index, the parsed line), or (node index, None) at end of output.
type Line = (usize, Option<Value>);

struct Cluster {
    /// Which test this is, for the log.
    name: &'static str,
    ids: Vec<String>,
    children: Vec<Child>,
    lines: Receiver<Line>,
    /// The latest (term, leader) each node printed.
    latest: BTreeMap<usize, (u64, Option<String>)>,
    deadline: Instant,
}

impl Cluster {
    fn start(name: &'static str, key_file: Option<&std::path::Path>) -> Cluster {
        // Free ports: bind to port 0, note the port, release it for the node.
        let ports: Vec<u16> = (0..NODES)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect::<Vec<_>>()
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        let ids: Vec<String> = (0..NODES).map(|i| format!("n{i}")).collect();
        let (tx, lines) = channel();
        let mut children = Vec::new();
        for i in 0..NODES {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_almost-raft-node"));
            cmd.args([
                "--id",
                &ids[i],
                "--listen",
                &format!("127.0.0.1:{}", ports[i]),
            ])
            // A long timeout: no election on a busy machine but the handover's.
            .args(["--election-timeout-ms", "1000", "--heartbeat-ms", "100"]);
            if let Some(path) = key_file {
                cmd.arg("--key-file").arg(path);
            }
            for j in (0..NODES).filter(|&j| j != i) {
                cmd.args(["--peer", &format!("{}@127.0.0.1:{}", ids[j], ports[j])]);
            }
            let mut child = cmd
                .stdout(Stdio::piped())
                .spawn()
                .expect("almost-raft-node");
            let stdout = BufReader::new(child.stdout.take().unwrap());
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in stdout.lines().map_while(Result::ok) {
                    let value = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("not a JSON line: {line}: {e}"));
                    let _ = tx.send((i, Some(value)));
                }
                let _ = tx.send((i, None));
            });
            children.push(child);
        }
        Cluster {
            name,
            ids,
            children,
            lines,
            latest: BTreeMap::new(),
            deadline: Instant::now() + GUARD,
        }
    }

    /// The next line of any node; the latest state is updated first.
    fn next(&mut self) -> Line {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let (i, line) = self
            .lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("nothing more within the guard; latest: {:?}", self.latest));
        if let Some(v) = &line {
            let term = v["term"].as_u64().expect("a term");
            let leader = v["leader"].as_str().map(str::to_owned);
            eprintln!("{} {}: {v}", self.name, self.ids[i]);
            self.latest.insert(i, (term, leader));
        }
        (i, line)
    }

    /// The (term, leader) that all of `among` printed last, if they agree on a leader.
    fn agreed(&self, among: &[usize]) -> Option<(u64, String)> {
        let first = self.latest.get(&among[0])?.clone();
        let leader = first.1.clone()?;
        among
            .iter()
            .all(|i| self.latest.get(i) == Some(&first))
            .then_some((first.0, leader))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn leader_hands_over_on(signal: libc::c_int, name: &'static str) {
    leader_hands_over(signal, name, None);
}

fn leader_hands_over(signal: libc::c_int, name: &'static str, key_file: Option<&std::path::Path>) {
    let mut c = Cluster::start(name, key_file);
    let all: Vec<usize> = (0..NODES).collect();
    let (term, leader) = loop {
        if let Some(agreed) = c.agreed(&all) {
            break agreed;
        }
        c.next();
    };
    let li = c.ids.iter().position(|id| *id == leader).unwrap();
    let rest: Vec<usize> = all.iter().copied().filter(|&i| i != li).collect();
    let sent = Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(c.children[li].id() as i32, signal) }, 0);

    let (mut handover_to, mut leader_saw, mut leader_ended) = (None, None, false);
    let mut new_leader = None;
    while handover_to.is_none() || !leader_ended || new_leader.is_none() {
        let (i, line) = c.next();
        match line {
            None if i == li => {
                assert!(
                    handover_to.is_some(),
                    "{leader} exited without handing over"
                );
                leader_ended = true;
            }
            None => panic!("{} ended", c.ids[i]),
            Some(v) if i == li && v["event"] == "handover" => {
                assert_eq!(v["term"], term, "the handover is in the leader's term");
                handover_to = Some(v["to"].as_str().expect("a target").to_owned());
            }
            Some(v) if i == li && v["leader"].as_str().is_some_and(|l| l != leader) => {
                leader_saw = Some((v["term"].as_u64().unwrap(), v["leader"].clone()));
            }
            Some(_) => {}
        }
        if new_leader.is_none()
            && let Some(agreed) = c.agreed(&rest).filter(|(t, _)| *t > term)
        {
            eprintln!(
                "{name} to {leader}: {agreed:?} agreed by the others after {:?}",
                sent.elapsed()
            );
            new_leader = Some(agreed);
        }
    }
    let status = c.children[li].wait().unwrap();
    assert!(status.success(), "the stopped leader exited with {status}");
    let to = handover_to.expect("the stopping leader printed its handover");
    assert_ne!(to, leader);
    // The target won the election the handover started: the next term, before any timeout.
    assert_eq!(
        new_leader,
        Some((term + 1, to.clone())),
        "the others follow the target"
    );
    // The old leader kept heartbeating until it heard the new leader, then stopped.
    assert_eq!(
        leader_saw,
        Some((term + 1, Value::from(to))),
        "the stopping leader heard the target win"
    );
}

#[test]
fn sigterm_to_the_leader_hands_over() {
    leader_hands_over_on(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sigint_to_the_leader_hands_over() {
    leader_hands_over_on(libc::SIGINT, "SIGINT");
}

/// A private key file in a fresh directory; `mode` sets its permissions.
fn key_file(mode: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    // The documented test key of docs/wire.md, in hex.
    std::fs::write(
        &path,
        "616c6d6f73742d726166742074657374206b65792c206e6f7420736563726574\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    (dir, path)
}

#[test]
fn a_signed_cluster_elects_and_hands_over_on_sigterm() {
    let (_dir, path) = key_file(0o600);
    leader_hands_over(libc::SIGTERM, "SIGTERM (signed)", Some(&path));
}

#[test]
fn a_key_file_every_user_may_read_is_refused_at_start() {
    let (_dir, path) = key_file(0o644);
    let out = Command::new(env!("CARGO_BIN_EXE_almost-raft-node"))
        .args([
            "--id",
            "a",
            "--listen",
            "127.0.0.1:0",
            "--peer",
            "b@127.0.0.1:9",
        ])
        .arg("--key-file")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("key_file") && err.contains("chmod 600"),
        "{err}"
    );
}
