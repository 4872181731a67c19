#!/usr/bin/env python3
"""Failover of real node processes on 127.0.0.1 (the built-in UDP transport, with its TCP
liveness channel): the leader's process is killed with SIGKILL (its host stays up, so its
kernel refuses the followers' redial: death evidence) or frozen with SIGSTOP (silent: the
election timer's path), side by side in one run, for 3 and 5 nodes at T = 1000 ms and
T = 150 ms. The time measured runs from the signal to the moment every survivor has printed
the same new leader in a higher term, read as the lines arrive. Then false evidence: one
follower of a live leader is told the leader is gone (Python nodes, `peer_unreachable`);
leader and term must not change.

Usage: process_failover.py --binary target/release/almost-raft-node [--trials N]
       [--python target/py-venv/bin/python]. Prints a markdown section on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Tuple

GUARD = 30.0


def free_ports(n: int) -> List[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Cluster:
    def __init__(self, binary: str, n: int, t_ms: int, state_root: str) -> None:
        self.binary, self.n, self.t_ms = binary, n, t_ms
        self.ports = free_ports(n)
        self.state = tempfile.mkdtemp(prefix="almost-raft-bench-", dir=state_root)
        self.procs: Dict[int, subprocess.Popen[str]] = {}
        self.lines: "queue.Queue[Tuple[int, float, dict]]" = queue.Queue()
        self.latest: Dict[int, Tuple[int, Optional[str]]] = {}
        for i in range(n):
            self.start(i)

    def start(self, i: int) -> None:
        cmd = [self.binary, "--id", f"n{i}", "--listen", f"127.0.0.1:{self.ports[i]}",
               "--state-dir", self.state, "--election-timeout-ms", str(self.t_ms),
               "--heartbeat-ms", str(min(self.t_ms // 3, 100))]
        for j in range(self.n):
            if j != i:
                cmd += ["--peer", f"n{j}@127.0.0.1:{self.ports[j]}"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.procs[i] = proc
        threading.Thread(target=self._read, args=(i, proc), daemon=True).start()

    def _read(self, i: int, proc: "subprocess.Popen[str]") -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                self.lines.put((i, time.monotonic(), json.loads(line)))
            except ValueError:
                pass

    def wait(self, among: List[int], after: int, leader_not: Optional[str] = None) -> Tuple[float, int, str]:
        """Waits until every node of `among` names one leader in a term above `after`:
        (arrival time of the last line needed, term, leader)."""
        deadline = time.monotonic() + GUARD
        while True:
            values = [self.latest.get(i) for i in among]
            first = values[0]
            if first is not None and first[1] is not None and first[0] > after and first[1] != leader_not \
                    and all(v == first for v in values):
                return self.last_at, first[0], first[1]
            i, at, event = self.lines.get(timeout=max(deadline - time.monotonic(), 0.001))
            if "event" in event:
                continue
            self.latest[i] = (int(event["term"]), event["leader"])
            self.last_at = at

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()
        shutil.rmtree(self.state, ignore_errors=True)


def trial(c: Cluster, how: int) -> float:
    _, term, leader = c.wait(list(range(c.n)), 0)
    victim = int(leader[1:])
    others = [i for i in range(c.n) if i != victim]
    before = time.monotonic()
    c.procs[victim].send_signal(how)
    c.latest.pop(victim, None)
    at, _, _ = c.wait(others, term, leader_not=leader)
    took = at - before
    if how == signal.SIGKILL:
        c.procs[victim].wait()
        c.start(victim)
    else:
        c.procs[victim].send_signal(signal.SIGCONT)
    c.wait(list(range(c.n)), term)  # every node, the old leader included, agrees again
    # A node refuses votes for T after it restarts (the lease's rule): let that pass, so that
    # every trial starts from a settled cluster.
    time.sleep(2 * c.t_ms / 1000)
    return took


def percentile(sample: List[float], p: float) -> float:
    s = sorted(sample)
    return s[min(round(p / 100 * (len(s) - 1)), len(s) - 1)]


def false_evidence(python: str, trials: int) -> str:
    script = r"""
import sys, threading, time, almost_raft
trials = int(sys.argv[1])
ids = ["a", "b", "c"]
nodes = {}
def sender(to, data):
    peer = nodes.get(to)
    if peer is not None:
        try: peer.receive(data)
        except almost_raft.ClosedError: pass
for i in ids:
    nodes[i] = almost_raft.Node(i, sender, peers=[p for p in ids if p != i],
                                election_timeout_ms=150, heartbeat_interval_ms=50)
def agreed():
    while True:
        s = [nodes[i].status() for i in ids]
        if s[0].leader and all((x.leader, x.term) == (s[0].leader, s[0].term) for x in s):
            return s[0].leader, s[0].term
        time.sleep(0.01)
changed = 0
for _ in range(trials):
    leader, term = agreed()
    follower = next(i for i in ids if i != leader)
    nodes[follower].peer_unreachable(leader)
    time.sleep(0.5)  # ten heartbeat intervals
    if agreed() != (leader, term):
        changed += 1
print(changed)
for n in nodes.values(): n.close()
"""
    out = subprocess.run([python, "-c", script, str(trials)], capture_output=True, text=True, timeout=600)
    return out.stdout.strip() or f"error: {out.stderr.strip()[-200:]}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="target/release/almost-raft-node")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--python", default="target/py-venv/bin/python")
    args = parser.parse_args()
    disk = tempfile.gettempdir()
    print("## 9. A crashed leader process: death evidence against the election timer\n")
    print(f"Real `almost-raft-node` processes on 127.0.0.1 (built-in UDP transport and its TCP liveness channel), "
          f"heartbeat min(T/3, 100 ms). From the signal to the new leader known by every survivor, in ms, {args.trials} trials per row "
          "(`bench/process_failover.py`). SIGKILL: the host stays up, its kernel refuses the redial (evidence). "
          "SIGSTOP: the process is frozen, nothing tells anyone (the timer's path).\n")
    print(f"State files (term and vote, fsync'd before every vote) in {disk}, or in /dev/shm (tmpfs: "
          "the same failover without the cost of two sequential fsyncs).\n")
    print("| T | nodes | SIGKILL p50 | p99 | max | SIGKILL, state in tmpfs p50 | p99 | max | SIGSTOP p50 | p99 | max |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for t_ms in (1000, 150):
        for n in (3, 5):
            cells = []
            for how, where in ((signal.SIGKILL, disk), (signal.SIGKILL, "/dev/shm"), (signal.SIGSTOP, disk)):
                c = Cluster(args.binary, n, t_ms, where)
                try:
                    sample = [trial(c, how) * 1000 for _ in range(args.trials)]
                finally:
                    c.stop()
                cells += [f"{percentile(sample, 50):.1f}", f"{percentile(sample, 99):.1f}", f"{max(sample):.1f}"]
            print(f"| {t_ms} ms | {n} | " + " | ".join(cells) + " |", flush=True)
    if os.path.exists(args.python):
        trials = max(args.trials // 2, 10)
        changed = false_evidence(args.python, trials)
        print(f"\nFalse evidence: one follower of a live leader told the leader is gone (`peer_unreachable`), "
              f"{trials} times, three Python nodes, T = 150 ms: leader or term changed {changed} times.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
