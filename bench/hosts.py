#!/usr/bin/env python3
"""Section 10 of bench/RESULTS.md: many election groups per host.

Three `almost-raft-node host` processes on 127.0.0.1 (built-in UDP transport, state files in a
temporary directory, default timeouts T = 1000 ms, heartbeat 100 ms), every process a voter of
every group. For each number of groups: the time until every group is led and quiet; then over
an idle window, CPU (share of one core) and memory per process, datagrams per second between
two hosts; then one host killed with SIGKILL: for each group it led, the time until both
survivors know a new leader; then the host restarted on its state file, and the leaders per
host once placement settled.

    python3 bench/hosts.py --binary target/release/almost-raft-node [--groups 1000,10000,100000]
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

IDS = ["h1", "h2", "h3"]
T_MS = 1000


def free_ports(n):
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Host:
    """One host process and what it printed: its counts, and each group's leader as it sees
    it, with the wall time of each change."""

    def __init__(self, binary, hid, ports, groups, state):
        self.id = hid
        addr = {h: f"127.0.0.1:{p}" for h, p in zip(IDS, ports)}
        args = [binary, "host", "--id", hid, "--listen", addr[hid], "--groups", str(groups),
                "--state", state]
        for other in IDS:
            if other != hid:
                args += ["--peer", f"{other}={addr[other]}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.stats = {}
        self.leader = {}
        self.changes = []  # (t_ms, group, leader)
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            e = json.loads(line)
            with self.lock:
                if e["event"] == "stats":
                    self.stats = e
                elif e["event"] == "leader":
                    self.leader[e["group"]] = e["leader"]
                    self.changes.append((e["t_ms"], e["group"], e["leader"]))

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def wait_for(what, check, limit_s):
    start = time.time()
    while not check():
        if time.time() - start > limit_s:
            raise SystemExit(f"bench/hosts.py: gave up waiting for {what} after {limit_s} s")
        time.sleep(0.2)
    return time.time() - start


STABLE_S = 3.0


def settled(hosts, groups):
    """Every group quiet everywhere, placement within 10% (and one group) of a third, and no
    handover for placement for STABLE_S seconds (placement runs about once a second)."""
    stats = [h.stats for h in hosts]
    if any(not s for s in stats):
        return False
    share = groups / len(hosts)
    ok = all(s["quiet"] == groups and abs(s["leading"] - share) <= share * 0.1 + 1 for s in stats)
    moves = tuple(s["balance_handovers"] for s in stats) + tuple(s["leading"] for s in stats)
    now = time.time()
    if getattr(settled, "moves", None) != moves:
        settled.moves, settled.since = moves, now
    return ok and now - settled.since >= STABLE_S


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def baseline_rss(binary, tmp):
    ports = free_ports(3)
    h = Host(binary, "h1", ports, 0, os.path.join(tmp, "base.state"))
    wait_for("a host with no group", lambda: bool(h.stats), 30)
    rss = h.rss_bytes()
    h.kill()
    return rss


def run(binary, groups, window_s, tmp):
    ports = free_ports(3)
    states = {h: os.path.join(tmp, f"{groups}-{h}.state") for h in IDS}
    hosts = [Host(binary, h, ports, groups, states[h]) for h in IDS]
    try:
        settle = wait_for(f"{groups} groups led, quiet and placed", lambda: settled(hosts, groups), 600)
        time.sleep(2)
        cpu0 = [h.cpu_seconds() for h in hosts]
        sent0 = [h.stats["datagrams_sent"] for h in hosts]
        t0 = time.time()
        time.sleep(window_s)
        elapsed = time.time() - t0
        cpu = [(h.cpu_seconds() - c) / elapsed for h, c in zip(hosts, cpu0)]
        per_pair = [(h.stats["datagrams_sent"] - s) / elapsed / (len(IDS) - 1) for h, s in zip(hosts, sent0)]
        rss = [h.rss_bytes() for h in hosts]

        # SIGKILL h1: the groups it led need a leader both survivors know.
        victim, survivors = hosts[0], hosts[1:]
        with survivors[0].lock:
            led = [g for g, l in survivors[0].leader.items() if l == victim.id]
        kill_ms = time.time() * 1000
        victim.kill()

        def failed_over():
            for s in survivors:
                with s.lock:
                    if any(s.leader.get(g) in (None, victim.id) for g in led):
                        return False
            return True

        wait_for("every group of the killed host led again", failed_over, 120)
        times = []
        for g in led:
            known = []
            for s in survivors:
                with s.lock:
                    t = min((t for t, grp, l in s.changes if grp == g and l not in (None, victim.id) and t >= kill_ms), default=None)
                known.append(t)
            times.append(max(known) - kill_ms)

        # Restart h1 on its state file; placement must settle again.
        restarted_ms = time.time() * 1000
        hosts[0] = Host(binary, "h1", ports, groups, states["h1"])
        rebalance = wait_for("placement after the restart", lambda: settled(hosts, groups), 600)
        leaders = [h.stats["leading"] for h in hosts]
        return {
            "groups": groups,
            "settle_s": settle,
            "cpu": cpu,
            "rss": rss,
            "per_pair": per_pair,
            "failover": times,
            "led_by_victim": len(led),
            "rebalance_s": rebalance,
            "leaders": leaders,
            "restarted_ms": restarted_ms,
        }
    finally:
        for h in hosts:
            if h.proc.poll() is None:
                h.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--groups", default="1000,10000,100000")
    ap.add_argument("--window", type=float, default=10.0)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = baseline_rss(args.binary, tmp)
        for g in args.groups.split(","):
            rows.append(run(args.binary, int(g), args.window, tmp))
            print(f"bench/hosts.py: {g} groups measured: {rows[-1]['settle_s']:.1f} s to settle", file=sys.stderr, flush=True)
            print_table(rows, base, args.window)  # what was measured so far, at once


def print_table(rows, base, window):
    print()
    print("## 10. Many groups per host")
    print()
    print(f"Three `almost-raft-node host` processes on 127.0.0.1 (built-in UDP transport, state files on disk), every host a voter of every group of 3, T = {T_MS} ms (timeouts drawn from [T, 2T)), heartbeat 100 ms; 2 cores shared by the three. Idle figures over {window:.0f} s once every group was led and quiet and placement had settled. Memory per group: (RSS - RSS of a host with no group, {base / 1048576:.1f} MiB) / groups.")
    print()
    print("| groups | all led and quiet after | idle CPU per host (share of one core) | memory per group per host | datagrams per second, one host to another | SIGKILL of h1: its groups led again, p50 / p99 / max | groups h1 led | leaders per host after its restart and rebalance (rebalance time) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        g = r["groups"]
        cpu = " / ".join(f"{c * 100:.1f}%" for c in r["cpu"])
        mem = max(r["rss"]) - base
        f = r["failover"]
        print(f"| {g} | {r['settle_s']:.1f} s | {cpu} | {mem / g:.0f} B | {sum(r['per_pair']) / len(r['per_pair']):.1f} | {percentile(f, 50):.0f} / {percentile(f, 99):.0f} / {max(f) if f else float('nan'):.0f} ms | {r['led_by_victim']} | {' / '.join(map(str, r['leaders']))} ({r['rebalance_s']:.1f} s) |")
    print()
    print(f"Targets: idle CPU under 10% of a core per host at 100,000 groups; memory under 2 KiB per group; datagrams independent of the number of groups; failover p99 under 2 x the maximum election timeout = {4 * T_MS} ms; leaders within 10% of a third after a restart.")


if __name__ == "__main__":
    main()
