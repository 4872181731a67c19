#!/usr/bin/env python3
"""Chaos for hosts of many groups: three network namespaces (chaos.py's network), one
`almost-raft-node host` process in each with the same groups (every host a voter of every
group, state files kept across restarts), and faults for the chosen duration, one at a time:
kill -9 and restart, SIGSTOP for 2-4 s, a partition of one host (both ways or one way, by
nftables rules), a graceful restart (SIGTERM: every group it leads handed over). After each
fault heals, every group must have one leader that all three hosts know, within the bound
(20 x the maximum election timeout); the time it took is reported. All along, per group:

- no two hosts lead it in the same term (Election Safety);
- no host's term for it goes down, across restarts too (the host state file).

Usage (as root): hosts.py --duration SECONDS --groups N [--binary PATH] [--seed N]
[--faults kill,pause,partition,one-way,graceful].
Prints the counts and exits non-zero on any violation; removes everything it created.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Set, Tuple

import chaos as net

HOSTS = 3
PORT = 7300
ELECTION_MS = 500
HEARTBEAT_MS = 50
BOUND_S = 20 * 2 * ELECTION_MS / 1000


class Hosts:
    def __init__(self, binary: str, groups: int, state_dir: str) -> None:
        self.binary, self.groups, self.state_dir = binary, groups, state_dir
        self.procs: Dict[int, "subprocess.Popen[str]"] = {}
        self.lock = threading.Lock()
        # Per host: each group's (term, leader) as it last said; cleared when it goes down.
        self.latest: Dict[int, Dict[str, Tuple[int, Optional[str]]]] = {i: {} for i in range(HOSTS)}
        self.max_term: Dict[Tuple[int, str], int] = collections.defaultdict(int)
        self.leader_of: Dict[Tuple[str, int], str] = {}
        self.violations: List[str] = []
        self.events = 0

    def start(self, i: int) -> None:
        cmd = ["ip", "netns", "exec", net.ns(i), self.binary, "host", "--id", f"h{i}",
               "--listen", f"{net.ip_of(i)}:{PORT}", "--groups", str(self.groups),
               "--state", os.path.join(self.state_dir, f"h{i}.state"),
               "--election-timeout-ms", str(ELECTION_MS), "--heartbeat-ms", str(HEARTBEAT_MS)]
        for j in range(HOSTS):
            if j != i:
                cmd += ["--peer", f"h{j}={net.ip_of(j)}:{PORT}"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.procs[i] = proc
        threading.Thread(target=self._read, args=(i, proc), daemon=True).start()

    def _read(self, i: int, proc: "subprocess.Popen[str]") -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            e = json.loads(line)
            if e["event"] != "leader":
                continue
            g, term, leader = e["group"], int(e["term"]), e["leader"]
            with self.lock:
                self.events += 1
                key = (i, g)
                if term < self.max_term[key]:
                    self.violations.append(f"h{i}'s term for {g} went down from {self.max_term[key]} to {term}")
                self.max_term[key] = max(self.max_term[key], term)
                if leader is not None:
                    other = self.leader_of.setdefault((g, term), leader)
                    if other != leader:
                        self.violations.append(f"{g}: two leaders in term {term}: {other} and {leader}")
                if self.procs.get(i) is proc:
                    self.latest[i][g] = (term, leader)

    def down(self, i: int, how: int) -> None:
        self.procs[i].send_signal(how)
        if how in (signal.SIGKILL, signal.SIGTERM):
            code = self.procs[i].wait(timeout=60)
            if how == signal.SIGTERM and code != 0:
                with self.lock:
                    self.violations.append(f"h{i} exited with {code} after SIGTERM")
            with self.lock:
                self.latest[i] = {}

    def unsettled(self) -> int:
        """Groups without one leader known by all three hosts."""
        with self.lock:
            views = [self.latest[i] for i in range(HOSTS)]
            count = 0
            for g in range(self.groups):
                name = f"g{g}"
                first = views[0].get(name)
                if first is None or first[1] is None or any(v.get(name) != first for v in views[1:]):
                    count += 1
            return count

    def describe_unsettled(self, limit: int = 5) -> str:
        """Each host's last word on a few groups that are not settled, for the failure report."""
        with self.lock:
            lines = []
            for g in range(self.groups):
                name = f"g{g}"
                views = [self.latest[i].get(name) for i in range(HOSTS)]
                if views[0] is None or views[0][1] is None or any(v != views[0] for v in views[1:]):
                    lines.append(f"  {name}: " + ", ".join(f"h{i} {v}" for i, v in enumerate(views)))
                    if len(lines) == limit:
                        break
            return "\n".join(lines)

    def wait_settled(self) -> Optional[float]:
        start = time.monotonic()
        while time.monotonic() - start < BOUND_S:
            if self.unsettled() == 0:
                return time.monotonic() - start
            time.sleep(0.1)
        return None

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()


def partition(i: int, one_way: bool) -> None:
    """Drops what h{i} receives from the others, and (both ways) what they receive from it."""
    for j in range(HOSTS):
        if j != i:
            net.nft(i, f"add rule inet chaos input ip saddr {net.ip_of(j)} drop")
            if not one_way:
                net.nft(j, f"add rule inet chaos input ip saddr {net.ip_of(i)} drop")


def heal_network() -> None:
    for j in range(HOSTS):
        net.nft(j, "flush chain inet chaos input")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--groups", type=int, default=10000)
    ap.add_argument("--binary", default="target/debug/almost-raft-node")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--faults", default="kill,pause,partition,one-way,graceful",
                    help="the faults to draw from, comma-separated")
    args = ap.parse_args()
    kinds = args.faults.split(",")
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    rng = random.Random(seed)
    binary = os.path.abspath(args.binary)
    print(f"hosts chaos: seed {seed}, {args.groups} groups on {HOSTS} hosts, {args.duration:.0f} s", flush=True)
    net.ensure_tools()
    net.NODES = HOSTS  # chaos.py's network, three namespaces
    atexit.register(net.teardown)
    net.setup()
    state_dir = tempfile.mkdtemp(prefix="almost-raft-hosts-chaos-")
    hosts = Hosts(binary, args.groups, state_dir)
    atexit.register(hosts.stop_all)
    for i in range(HOSTS):
        hosts.start(i)
    first = hosts.wait_settled()
    if first is None:
        print(f"FAIL: {hosts.unsettled()} groups not led and agreed {BOUND_S:.0f} s after the start", flush=True)
        return 1
    print(f"all {args.groups} groups led and agreed {first:.1f} s after the start", flush=True)
    counts: Dict[str, int] = collections.Counter()
    settle: Dict[str, List[float]] = collections.defaultdict(list)
    failed = 0
    end = time.monotonic() + args.duration
    while time.monotonic() < end and not hosts.violations:
        i = rng.randrange(HOSTS)
        fault = rng.choice(kinds)
        counts[fault] += 1
        if fault == "kill":
            hosts.down(i, signal.SIGKILL)
            time.sleep(rng.uniform(1, 3))
            hosts.start(i)
        elif fault == "pause":
            hosts.down(i, signal.SIGSTOP)
            time.sleep(rng.uniform(2, 4))
            hosts.procs[i].send_signal(signal.SIGCONT)
        elif fault in ("partition", "one-way"):
            partition(i, fault == "one-way")
            time.sleep(rng.uniform(2, 4))
            heal_network()
        else:
            hosts.down(i, signal.SIGTERM)
            hosts.start(i)
        took = hosts.wait_settled()
        if took is None:
            failed += 1
            print(f"FAIL: after {fault} of h{i}: {hosts.unsettled()} groups not led and agreed within {BOUND_S:.0f} s", flush=True)
            print(hosts.describe_unsettled(), flush=True)
            break
        settle[fault].append(took)
    hosts.stop_all()
    print(f"faults: {dict(counts)}; leader events read: {hosts.events}", flush=True)
    for fault, times in sorted(settle.items()):
        times.sort()
        print(f"  after {fault}: every group led again in median {times[len(times) // 2]:.2f} s, longest {times[-1]:.2f} s ({len(times)} times)", flush=True)
    for v in hosts.violations[:20]:
        print(f"VIOLATION: {v}", flush=True)
    ok = not hosts.violations and not failed
    print(f"hosts chaos: {'passed' if ok else 'FAILED'} (seed {seed}; replay: chaos/hosts.py --duration {args.duration:.0f} --groups {args.groups} --faults {args.faults} --seed {seed})", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
