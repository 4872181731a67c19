//! `almost-raft run` processes on 127.0.0.1 for the tests, and what they print: JSON lines
//! (the runner's events) and the job's own lines, which start with "job ". Every wait reads
//! that output; the guard only bounds a hang.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

const GUARD: Duration = Duration::from_secs(60);

pub enum Out {
    /// (runner, its JSON line)
    Event(usize, Value),
    /// (runner, the job's line without "job ")
    Job(usize, String),
}

pub struct Runners {
    pub children: Vec<Child>,
    /// The UDP port each runner listens on.
    pub ports: Vec<u16>,
    out: Receiver<Out>,
    deadline: Instant,
}

impl Runners {
    /// `count` runners of `sh -c JOB`, each with `options` (besides --id, --listen, --peer).
    pub fn start(count: usize, options: &[&str], job: &str) -> Runners {
        let ports: Vec<u16> = (0..count)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect::<Vec<_>>()
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        let (tx, out) = channel();
        let mut children = Vec::new();
        for i in 0..count {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_almost-raft"));
            cmd.args(["run", "--id", &format!("r{i}"), "--listen"])
                .arg(format!("127.0.0.1:{}", ports[i]))
                .args(options);
            for j in (0..count).filter(|&j| j != i) {
                cmd.args(["--peer", &format!("r{j}@127.0.0.1:{}", ports[j])]);
            }
            cmd.args(["--", "sh", "-c", job]);
            let mut child = cmd.stdout(Stdio::piped()).spawn().expect("almost-raft run");
            let stdout = BufReader::new(child.stdout.take().unwrap());
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in stdout.lines().map_while(Result::ok) {
                    eprintln!("r{i}: {line}");
                    let out = match line.strip_prefix("job ") {
                        Some(job) => Out::Job(i, job.to_owned()),
                        None => Out::Event(i, serde_json::from_str(&line).expect("a JSON line")),
                    };
                    let _ = tx.send(out);
                }
            });
            children.push(child);
        }
        Runners {
            children,
            ports,
            out,
            deadline: Instant::now() + GUARD,
        }
    }

    pub fn next(&self) -> Out {
        let left = self.deadline.saturating_duration_since(Instant::now());
        self.out
            .recv_timeout(left)
            .expect("more output within the guard")
    }

    /// Waits for the event `what` from any runner: (runner, the line).
    pub fn event(&self, what: &str) -> (usize, Value) {
        loop {
            if let Out::Event(i, v) = self.next()
                && v["event"] == what
            {
                return (i, v);
            }
        }
    }

    /// Waits for a job's line that starts with `prefix`: (runner, the line).
    pub fn job_line(&self, prefix: &str) -> (usize, String) {
        loop {
            if let Out::Job(i, line) = self.next()
                && line.starts_with(prefix)
            {
                return (i, line);
            }
        }
    }

    /// Waits until `pid` is gone (or a zombie: dead, waiting for its reaper).
    pub fn gone(&self, pid: u32) {
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

    /// Sends `signal` to runner `i`.
    pub fn signal(&self, i: usize, signal: i32) {
        // SAFETY: kill(2) on our own child.
        assert_eq!(
            unsafe { libc::kill(self.children[i].id() as i32, signal) },
            0
        );
    }
}

impl Drop for Runners {
    fn drop(&mut self) {
        for child in &mut self.children {
            // SAFETY: kill(2) on our own child; a stopped one must run to die cleanly.
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `key=value` from a job's line, parsed.
pub fn field<T: std::str::FromStr>(line: &str, key: &str) -> T {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key}= in {line}"))
}

/// `GET path` over HTTP/1.0: (status line, body).
pub fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nhost: test\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The value of the sample `name` (with its labels, as printed) in a metrics text.
pub fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}
