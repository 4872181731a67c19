#!/usr/bin/env python3
"""Chaos on real hosts: five network namespaces joined by veth pairs and a bridge, one
almost-raft-node process in each, and faults for the chosen duration: message loss, symmetric
and one-way partitions (nftables rules inside the namespaces), kill -9 and restart with the
same state directory, SIGSTOP/SIGCONT pauses longer than the election timeout, and graceful
restarts. A checker reads every node's events and checks:

- no two nodes lead in the same term;
- no node's term goes down, across restarts;
- after each heal, one leader known by all within 10 x the maximum election timeout;
- a killed leader (kill -9; its namespace, the host, stays up, so its kernel refuses the
  others' redial: death evidence) and a frozen one (SIGSTOP: no evidence) are replaced; the
  failover times are reported apart;
- SIGTERM to the leader (once at the start of every run, and whenever a graceful restart hits
  it) is a handover: the leader prints {"event": "handover", "to": X} and exits with 0, and
  the next term's leader is X.

With --hostile, every node signs its messages under one key file, and an attacker in a sixth
namespace on the same bridge sends, all along: exact replays of captured messages, the
captured heartbeats of every leader killed (for as long as it is down), unsigned copies,
tampered copies and forgeries (chaos/hostile.py). The same checks must hold: in particular a
dead leader's replayed heartbeats must not keep the cluster from electing within the bound.
A further fault, "spoof", forges death evidence at one follower from the bridge: TCP resets
of its liveness connection to the leader and refusals of its redials, racing the leader's
kernel; leadership must not move.

Usage (as root): chaos.py --duration SECONDS [--binary PATH] [--seed N] [--hostile]. Prints the counts and
exits non-zero on any violation. Everything it creates is removed afterwards, even on failure.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Deque, Dict, List, Optional, Set, Tuple

NODES = 5
PORT = 7000
ELECTION_MS = 150
HEARTBEAT_MS = 50
MAX_ELECTION = 2 * ELECTION_MS / 1000
LIVENESS = 10 * MAX_ELECTION
PREFIX = "arch"


def sh(*args: str, check: bool = True) -> None:
    subprocess.run(args, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ns(i: int) -> str:
    return f"{PREFIX}-n{i}"


def ip_of(i: int) -> str:
    return f"10.77.0.{i + 1}"


def ensure_tools() -> None:
    missing = [pkg for tool, pkg in (("ip", "iproute2"), ("nft", "nftables")) if shutil.which(tool) is None]
    if missing:
        print(f"installing {' '.join(missing)}", flush=True)
        if subprocess.run(["apt-get", "install", "-y", "-qq", *missing]).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True)


EVIL = f"{PREFIX}-evil"
EVIL_IP = "10.77.0.200"


def teardown() -> None:
    for i in range(NODES):
        sh("ip", "netns", "del", ns(i), check=False)
    sh("ip", "netns", "del", EVIL, check=False)
    sh("ip", "netns", "del", f"{PREFIX}-hub", check=False)


def setup_attacker() -> None:
    """A sixth namespace on the bridge, with no node in it: the attacker's."""
    hub = f"{PREFIX}-hub"
    sh("ip", "netns", "add", EVIL)
    sh("ip", "link", "add", f"{PREFIX}ve", "type", "veth", "peer", "name", f"{PREFIX}pe")
    sh("ip", "link", "set", f"{PREFIX}ve", "netns", EVIL)
    sh("ip", "link", "set", f"{PREFIX}pe", "netns", hub)
    sh("ip", "-n", hub, "link", "set", f"{PREFIX}pe", "master", "br0", "up")
    sh("ip", "-n", EVIL, "addr", "add", f"{EVIL_IP}/24", "dev", f"{PREFIX}ve")
    sh("ip", "-n", EVIL, "link", "set", f"{PREFIX}ve", "up")


class Attacker:
    """Captures the cluster's datagrams on the bridge and sends hostile ones from the
    attacker's namespace, every 10 ms, until stopped."""

    def __init__(self, rng: random.Random) -> None:
        here = os.path.dirname(os.path.abspath(__file__))
        script = os.path.join(here, "hostile.py")
        self.capture = subprocess.Popen(["ip", "netns", "exec", f"{PREFIX}-hub", sys.executable, script, "capture", str(PORT)],
                                        stdout=subprocess.PIPE, text=True)
        self.inject = subprocess.Popen(["ip", "netns", "exec", EVIL, sys.executable, script, "inject", str(PORT)],
                                       stdin=subprocess.PIPE, text=True)
        self.rng = rng
        self.lock = threading.Lock()
        self.recent: Deque[Tuple[str, str, bytes]] = collections.deque(maxlen=500)
        self.heartbeats: Dict[str, Deque[Tuple[str, bytes]]] = collections.defaultdict(lambda: collections.deque(maxlen=50))
        self.dead: Set[str] = set()  # IPs of killed nodes, whose heartbeats are replayed
        self.sent: collections.Counter[str] = collections.Counter()
        self.running = True
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._attack, daemon=True).start()

    def _read(self) -> None:
        assert self.capture.stdout is not None
        for line in self.capture.stdout:
            src, dst, payload = line.split()
            data = bytes.fromhex(payload)
            with self.lock:
                self.recent.append((src, dst, data))
                if len(data) > 1 and data[1] == 5:  # a heartbeat
                    self.heartbeats[src].append((dst, data))

    def _send(self, kind: str, dst: str, data: bytes) -> None:
        assert self.inject.stdin is not None
        self.inject.stdin.write(f"{dst} {data.hex()}\n")
        self.sent[kind] += 1

    def _attack(self) -> None:
        while self.running:
            with self.lock:
                recent = list(self.recent)
                dead = [hb for ip in self.dead for hb in self.heartbeats.get(ip, ())]
            try:
                for dst, data in dead[-8:]:
                    self._send("dead leader's heartbeat", dst, data)
                if recent:
                    _, dst, data = self.rng.choice(recent)
                    self._send("replay", dst, data)
                    if data[:1] == b"\x04" and len(data) > 51:  # unsigned: version 3, no seq, no tag
                        self._send("unsigned", dst, b"\x03" + data[1:11] + data[19:-32])
                    tampered = bytearray(data)
                    tampered[self.rng.randrange(1, len(tampered))] ^= 1 << self.rng.randrange(8)
                    self._send("tampered", dst, bytes(tampered))
                    forged = data[:-32] + bytes(self.rng.randrange(256) for _ in range(32))
                    self._send("forged", dst, forged)
                assert self.inject.stdin is not None
                self.inject.stdin.flush()
            except (BrokenPipeError, ValueError):
                return
            time.sleep(0.01)

    def killed(self, ip: str) -> None:
        with self.lock:
            self.dead.add(ip)

    def restarted(self, ip: str) -> None:
        with self.lock:
            self.dead.discard(ip)

    def stop(self) -> None:
        self.running = False
        for proc in (self.capture, self.inject):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def spoof(leader: int, follower: int, seconds: float) -> Tuple[int, int]:
    """Forges TCP resets and refusals, as the leader, to `follower`, from the bridge (an
    attacker on the path; chaos/hostile.py spoof): (resets, refusals) sent."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(["ip", "netns", "exec", f"{PREFIX}-hub", sys.executable, os.path.join(here, "hostile.py"), "spoof",
                          ip_of(leader), ip_of(follower), str(PORT), f"{PREFIX}p{follower}", f"{seconds:.2f}"],
                         capture_output=True, text=True, timeout=seconds + 30)
    resets, refusals = (int(v) for v in out.stdout.split())
    return resets, refusals


def setup() -> None:
    teardown()
    hub = f"{PREFIX}-hub"
    sh("ip", "netns", "add", hub)
    sh("ip", "-n", hub, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", hub, "link", "set", "br0", "up")
    for i in range(NODES):
        sh("ip", "netns", "add", ns(i))
        sh("ip", "link", "add", f"{PREFIX}v{i}", "type", "veth", "peer", "name", f"{PREFIX}p{i}")
        sh("ip", "link", "set", f"{PREFIX}v{i}", "netns", ns(i))
        sh("ip", "link", "set", f"{PREFIX}p{i}", "netns", hub)
        sh("ip", "-n", hub, "link", "set", f"{PREFIX}p{i}", "master", "br0", "up")
        sh("ip", "-n", ns(i), "addr", "add", f"{ip_of(i)}/24", "dev", f"{PREFIX}v{i}")
        sh("ip", "-n", ns(i), "link", "set", f"{PREFIX}v{i}", "up")
        sh("ip", "-n", ns(i), "link", "set", "lo", "up")
        nft(i, "add table inet chaos")
        nft(i, "add chain inet chaos input { type filter hook input priority 0 ; policy accept ; }")


def nft(i: int, rule: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns(i), "nft", *rule.split()], check=True, stderr=subprocess.DEVNULL)


class Cluster:
    def __init__(self, binary: str, state_dir: str, key_file: Optional[str] = None) -> None:
        self.binary = binary
        self.state_dir = state_dir
        self.key_file = key_file
        self.procs: Dict[int, subprocess.Popen[str]] = {}
        self.paused: Set[int] = set()
        self.lock = threading.Lock()
        self.latest: Dict[int, Tuple[int, Optional[str]]] = {}
        self.max_term: Dict[int, int] = collections.defaultdict(int)
        self.leaders_of_term: Dict[int, Set[str]] = collections.defaultdict(set)
        self.violations: List[str] = []
        self.changed = threading.Condition(self.lock)
        # Per process: (term, target) of the handover line it printed, if any; its reader.
        self.handovers: Dict["subprocess.Popen[str]", Tuple[int, str]] = {}
        self.readers: Dict["subprocess.Popen[str]", threading.Thread] = {}

    def start(self, i: int) -> None:
        peers = [f"--peer=n{j}@{ip_of(j)}:{PORT}" for j in range(NODES) if j != i]
        cmd = ["ip", "netns", "exec", ns(i), self.binary, "--id", f"n{i}", "--listen", f"{ip_of(i)}:{PORT}",
               "--state-dir", self.state_dir, "--election-timeout-ms", str(ELECTION_MS), "--heartbeat-ms", str(HEARTBEAT_MS)]
        # almost-raft-node takes --peer VALUE; split the '=' form.
        for p in peers:
            cmd += p.split("=", 1)
        if self.key_file:
            cmd += ["--key-file", self.key_file]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.procs[i] = proc
        self.readers[proc] = threading.Thread(target=self._read, args=(i, proc), daemon=True)
        self.readers[proc].start()

    def _read(self, i: int, proc: "subprocess.Popen[str]") -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") not in (None, "handover"):
                continue  # a runner's job events carry the job's term, not the node's latest
            term, leader = int(event["term"]), event["leader"]
            with self.lock:
                if event.get("event") == "handover":
                    self.handovers[proc] = (term, event["to"])
                if term < self.max_term[i]:
                    self.violations.append(f"n{i}'s term went down from {self.max_term[i]} to {term}")
                self.max_term[i] = max(self.max_term[i], term)
                if leader is not None:
                    self.leaders_of_term[term].add(leader)
                    if len(self.leaders_of_term[term]) > 1:
                        self.violations.append(f"two leaders in term {term}: {sorted(self.leaders_of_term[term])}")
                if self.procs.get(i) is proc:
                    self.latest[i] = (term, leader)
                self.changed.notify_all()

    def signal(self, i: int, sig: int) -> None:
        # `ip netns exec` execs the node, so the process is the node itself.
        self.procs[i].send_signal(sig)

    def kill(self, i: int) -> None:
        self.signal(i, signal.SIGKILL)
        self.procs[i].wait()
        with self.lock:
            self.latest.pop(i, None)

    def graceful(self, i: int) -> Optional[Tuple[int, str]]:
        """SIGTERM, wait for the exit and the end of its output; returns the handover
        (term, target) it printed, if any."""
        proc = self.procs[i]
        self.signal(i, signal.SIGTERM)
        code = proc.wait(timeout=10)
        self.readers[proc].join(timeout=10)
        with self.lock:
            self.latest.pop(i, None)
            if code != 0:
                self.violations.append(f"n{i} exited with {code} after SIGTERM")
            return self.handovers.get(proc)

    def handover(self, i: int, term: int) -> Optional[str]:
        """Restarts n{i}, the leader of `term`, with SIGTERM; returns the peer it handed over
        to (whose term, term + 1, check_handover checks once a leader is agreed)."""
        handed = self.graceful(i)
        self.start(i)
        if handed is None or handed[0] != term:
            with self.lock:
                self.violations.append(f"n{i}, leader of term {term}, stopped on SIGTERM without a handover in that term: {handed}")
            return None
        return handed[1]

    def check_handover(self, term: int, target: str) -> None:
        with self.lock:
            led = self.leaders_of_term.get(term + 1)
            if led != {target}:
                self.violations.append(f"handed over to {target} in term {term}, yet term {term + 1} was led by {led}")

    def agreed(self, among: Optional[List[int]] = None) -> Optional[Tuple[int, str]]:
        values = [self.latest.get(i) for i in (range(NODES) if among is None else among)]
        first = values[0]
        if first is None or first[1] is None:
            return None
        return (first[0], first[1]) if all(v == first for v in values) else None

    def wait_agreed(self, timeout: float, among: Optional[List[int]] = None, after: int = -1) -> Optional[float]:
        start = time.monotonic()

        def done() -> bool:
            agreed = self.agreed(among)
            return agreed is not None and agreed[0] > after

        with self.lock:
            ok = self.changed.wait_for(done, timeout)
        return time.monotonic() - start if ok else None

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "debug", "almost-raft-node"))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--hostile", action="store_true", help="signed messages, and an attacker on the network")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("chaos.py needs root (network namespaces)", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    ensure_tools()
    state_dir = tempfile.mkdtemp(prefix="almost-raft-chaos-")
    atexit.register(shutil.rmtree, state_dir, True)
    atexit.register(teardown)
    setup()
    key_file = None
    attacker: Optional[Attacker] = None
    if args.hostile:
        setup_attacker()
        key_file = os.path.join(state_dir, "cluster.key")
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(bytes(rng.randrange(256) for _ in range(32)).hex() + "\n")
        attacker = Attacker(rng)
        atexit.register(attacker.stop)
    cluster = Cluster(os.path.abspath(args.binary), state_dir, key_file)
    atexit.register(cluster.stop_all)
    for i in range(NODES):
        cluster.start(i)
    faults: collections.Counter[str] = collections.Counter()
    heal_times: List[float] = []
    print(f"chaos: seed {seed}, {args.duration:.0f} s, {NODES} nodes, election timeout {ELECTION_MS} ms", flush=True)
    if cluster.wait_agreed(LIVENESS) is None:
        cluster.violations.append("no leader agreed by all after start")
    end = time.monotonic() + args.duration
    handovers = 0
    failovers_under_replay = 0
    spoofs: List[Tuple[int, int]] = []
    # Failover after the leader's process dies (kill -9: its kernel says so) and after it
    # goes silent (SIGSTOP: nothing says so), from the signal to a new leader known by all.
    failovers: Dict[str, List[float]] = collections.defaultdict(list)
    first = True
    while time.monotonic() < end and not cluster.violations:
        kinds = ["loss", "partition", "one-way", "kill", "pause", "graceful"] + (["spoof"] if attacker else [])
        kind = "graceful" if first else rng.choice(kinds)
        faults[kind] += 1
        hold = rng.uniform(0.3, 2.5)
        victim = rng.randrange(NODES)
        with cluster.lock:
            leader = cluster.agreed()
        if leader is not None and (first or rng.random() < 0.5):
            victim = int(leader[1][1:])  # aim at the leader half of the time, and first
        first = False
        handed_to: Optional[str] = None
        if kind == "loss":
            pct = rng.randrange(10, 60)
            for i in range(NODES):
                nft(i, f"add rule inet chaos input udp dport {PORT} numgen random mod 100 < {pct} drop")
            time.sleep(hold)
        elif kind in ("partition", "one-way"):
            side = {j for j in range(NODES) if rng.random() < 0.5} or {victim}
            for a in range(NODES):
                for b in range(NODES):
                    if (a in side) != (b in side) and (kind == "partition" or a in side):
                        nft(a, f"add rule inet chaos input ip saddr {ip_of(b)} drop")
            time.sleep(hold)
        elif kind == "kill":
            cluster.kill(victim)
            if attacker is not None:
                attacker.killed(ip_of(victim))
            if leader is not None and victim == int(leader[1][1:]):
                # With an attacker its heartbeats are being replayed: elect all the same.
                others = [i for i in range(NODES) if i != victim]
                took = cluster.wait_agreed(LIVENESS, others, leader[0])
                if took is None:
                    cluster.violations.append(f"the leader n{victim} was killed: no new leader within {LIVENESS:.1f} s")
                else:
                    failovers["process death (kill -9)"].append(took)
                failovers_under_replay += attacker is not None
            time.sleep(hold)
            cluster.start(victim)
            if attacker is not None:
                attacker.restarted(ip_of(victim))
        elif kind == "spoof":
            if leader is not None:
                follower = rng.choice([i for i in range(NODES) if i != int(leader[1][1:])])
                spoofed = spoof(int(leader[1][1:]), follower, max(hold, 4.0))  # keepalives every 1-2 s
                spoofs.append(spoofed)
                took = cluster.wait_agreed(LIVENESS)
                with cluster.lock:
                    now = cluster.agreed()
                if took is not None and now != leader:
                    cluster.violations.append(f"forged resets and refusals at n{follower} ({spoofed}) moved leadership from {leader} to {now}")
        elif kind == "pause":
            cluster.signal(victim, signal.SIGSTOP)
            started = time.monotonic()
            if leader is not None and victim == int(leader[1][1:]):
                others = [i for i in range(NODES) if i != victim]
                took = cluster.wait_agreed(LIVENESS, others, leader[0])
                if took is not None:
                    failovers["silent (SIGSTOP)"].append(took)
            time.sleep(max(0.0, max(hold, 2 * MAX_ELECTION) - (time.monotonic() - started)))
            cluster.signal(victim, signal.SIGCONT)
        elif leader is not None and victim == int(leader[1][1:]):
            handed_to = cluster.handover(victim, leader[0])
        else:
            cluster.graceful(victim)
            cluster.start(victim)
        for i in range(NODES):
            nft(i, "flush chain inet chaos input")
        took = cluster.wait_agreed(LIVENESS)
        if took is None:
            cluster.violations.append(f"after healing a {kind} fault, no leader known by all within {LIVENESS:.1f} s: {cluster.latest}")
        else:
            heal_times.append(took)
            if handed_to is not None and leader is not None:
                cluster.check_handover(leader[0], handed_to)
                handovers += 1
    with cluster.lock:
        terms_with_leaders = len(cluster.leaders_of_term)
    print(f"faults injected: {sum(faults.values())} ({', '.join(f'{k} {v}' for k, v in sorted(faults.items()))})")
    print(f"terms with a leader (elections): {terms_with_leaders}")
    print(f"SIGTERM to the leader: {handovers} handovers, each followed by the target leading the next term")
    if handovers == 0 and not cluster.violations:
        cluster.violations.append("no SIGTERM reached a leader: the handover was not checked")
    for what, sample in sorted(failovers.items()):
        s = sorted(sample)
        print(f"failover after the leader's {what}: {len(s)} times, median {s[len(s) // 2] * 1000:.1f} ms, longest {s[-1] * 1000:.1f} ms")
    if heal_times:
        print(f"time to a leader known by all after healing: median {sorted(heal_times)[len(heal_times) // 2] * 1000:.0f} ms, longest {max(heal_times) * 1000:.0f} ms")
    if attacker is not None:
        attacker.stop()
        print(f"hostile datagrams sent: {sum(attacker.sent.values())} ({', '.join(f'{k} {v}' for k, v in sorted(attacker.sent.items()))})")
        print(f"leaders killed while their heartbeats were replayed: {failovers_under_replay}, each replaced within {LIVENESS:.1f} s")
        print(f"false death evidence at one follower (forged TCP resets of its connection to the leader, forged refusals of its redials): {len(spoofs)} times, "
              f"{sum(r for r, _ in spoofs)} resets and {sum(f for _, f in spoofs)} refusals sent; leadership moved 0 times (else a violation)")
    print(f"violations: {len(cluster.violations)}")
    for v in cluster.violations:
        print(f"  VIOLATION: {v}")
    print(f"the same fault schedule: chaos.py --duration {args.duration:.0f} --seed {seed}")
    return 1 if cluster.violations else 0


if __name__ == "__main__":
    sys.exit(main())
