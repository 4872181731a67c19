#!/usr/bin/env python3
"""Chaos for `almost-raft run`: five network namespaces (as chaos.py builds them), one runner
in each, all wanting to run chaos/fenced_job.py. The job writes its term to a shared resource
(a Unix socket served here, reachable from every namespace) that refuses terms lower than the
highest it accepted; the resource records every run of the job: its start (the job's wall
clock, taken first thing) and its end (when its connection closes, however it died), by this
host's one clock.

Every runner's clock runs at its own rate, drawn anew at each start within +-4.5% (inside the
default drift bound of 5%) by libfaketime, when it is installed. Faults, one at a time:
message loss, symmetric and one-way partitions, kill -9 of a runner (its job dies with it),
SIGSTOP of a runner for longer than the election timeout (its job keeps running: no local
supervisor can stop it), and graceful restarts (SIGTERM: the job stops, the leader hands over).

The checker asserts:
- no two runs of the job overlap in time, except where the older run's runner was frozen by
  SIGSTOP; there the resource must have refused every write of the older run after the newer
  run's first write (fencing held);
- runs by different nodes start in increasing terms;
- no two runners lead in one term, and no runner's term goes down (chaos.py's checks);
- after every heal, a job runs again within 10 x the maximum election timeout.

Usage (as root): runners.py --duration SECONDS [--binary PATH] [--seed N] [--hostile].
Prints the faults, the runs, the longest gaps without a running job after a crash and after a
graceful stop, and the overlaps; exits non-zero on any violation.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaos as base  # noqa: E402

ELECTION_MS = 500
HEARTBEAT_MS = 100
KILL_GRACE_MS = 100
MAX_ELECTION = 2 * ELECTION_MS / 1000
LIVENESS = 10 * MAX_ELECTION
DRIFT = 0.045
FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
JOB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fenced_job.py")


@dataclass
class Run:
    """One run of the job, as the resource saw it."""

    node: str
    term: int
    pid: int
    start: float
    end: Optional[float] = None
    accepted: int = 0
    refused: int = 0
    first_accepted: Optional[float] = None
    last_accepted: Optional[float] = None


class Resource:
    """The shared resource: accepts a write only if its term is at least the highest accepted."""

    def __init__(self, path: str) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.highest = 0
        self.runs: List[Run] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        os.chmod(path, 0o777)
        self.listener.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        f = conn.makefile("rw")
        run: Optional[Run] = None
        try:
            _, node, term, pid, started = f.readline().split()
            run = Run(node, int(term), int(pid), float(started))
            with self.lock:
                self.runs.append(run)
                self.changed.notify_all()
            for line in f:
                term = int(line.split()[1])
                with self.lock:
                    now = time.time()
                    ok = term >= self.highest
                    if ok:
                        self.highest = term
                        run.accepted += 1
                        run.first_accepted = run.first_accepted or now
                        run.last_accepted = now
                    else:
                        run.refused += 1
                f.write("ok\n" if ok else "refused\n")
                f.flush()
        except (OSError, ValueError):
            pass
        finally:
            with self.lock:
                if run is not None:
                    run.end = time.time()
                self.changed.notify_all()
            conn.close()

    def wait_running(self, timeout: float, min_term: int) -> Optional[float]:
        """Waits until a run of at least `min_term` is open; how long that took."""
        start = time.monotonic()
        with self.lock:
            ok = self.changed.wait_for(
                lambda: any(r.end is None and r.term >= min_term for r in self.runs), timeout)
        return time.monotonic() - start if ok else None

    def open_run_of(self, node: str) -> Optional[Run]:
        with self.lock:
            return next((r for r in self.runs if r.node == node and r.end is None), None)


class Runners(base.Cluster):
    """base.Cluster with `almost-raft run` in each namespace, each at its own clock rate."""

    def __init__(self, binary: str, state_dir: str, key_file: Optional[str], sock: str, rng: random.Random,
                 drift: float) -> None:
        super().__init__(binary, state_dir, key_file)
        self.sock = sock
        self.rng = rng
        self.drift = drift
        self.rates: List[float] = []

    def start(self, i: int) -> None:
        prefix: List[str] = []
        if os.path.exists(FAKETIME):
            rate = 1 + self.rng.uniform(-self.drift, self.drift)
            self.rates.append(rate)
            prefix = ["env", f"LD_PRELOAD={FAKETIME}", f"FAKETIME=+0 x{rate:.4f}"]
        cmd = ["ip", "netns", "exec", base.ns(i), *prefix, self.binary, "run", "--id", f"n{i}",
               "--listen", f"{base.ip_of(i)}:{base.PORT}", "--state-dir", self.state_dir,
               "--election-timeout-ms", str(ELECTION_MS), "--heartbeat-ms", str(HEARTBEAT_MS),
               "--kill-grace-ms", str(KILL_GRACE_MS)]
        for j in range(base.NODES):
            if j != i:
                cmd += ["--peer", f"n{j}@{base.ip_of(j)}:{base.PORT}"]
        if self.key_file:
            cmd += ["--key-file", self.key_file]
        # The job runs on the host's real clock: it measures, it is not under test.
        cmd += ["--", "env", "-u", "LD_PRELOAD", "-u", "FAKETIME", sys.executable, JOB, self.sock]
        self._spawn(i, cmd)

    def _spawn(self, i: int, cmd: List[str]) -> None:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.procs[i] = proc
        self.readers[proc] = threading.Thread(target=self._read, args=(i, proc), daemon=True)
        self.readers[proc].start()


@dataclass
class Report:
    faults: collections.Counter = field(default_factory=collections.Counter)
    # (kind, node, when): a kill or graceful stop of the runner whose job ran.
    stops: List[Tuple[str, str, float]] = field(default_factory=list)
    # node -> [(frozen at, thawed at)]
    pauses: Dict[str, List[Tuple[float, float]]] = field(default_factory=lambda: collections.defaultdict(list))
    heal_to_job: List[float] = field(default_factory=list)


def check(runs: List[Run], report: Report, violations: List[str]) -> Dict[str, object]:
    """Overlaps (excused only under SIGSTOP, with fencing held), term order, gaps."""
    now = time.time()
    runs = sorted(runs, key=lambda r: r.start)
    overlaps = excused = 0
    stale_refused = 0
    for i, a in enumerate(runs):
        a_end = a.end if a.end is not None else now
        for b in runs[i + 1:]:
            if b.start >= a_end:
                break
            overlaps += 1
            frozen = any(p0 <= a_end and p0 <= b.start and p0 >= a.start for p0, _ in report.pauses.get(a.node, []))
            if not frozen:
                violations.append(f"runs overlap: {a.node} term {a.term} [{a.start:.3f}, {a_end:.3f}] and {b.node} term {b.term} from {b.start:.3f}")
                continue
            excused += 1
            stale_refused += a.refused
            if b.first_accepted is not None and a.last_accepted is not None and a.last_accepted > b.first_accepted:
                violations.append(f"fencing failed: {a.node}'s write in term {a.term} accepted after {b.node}'s in term {b.term}")
    for a, b in zip(runs, runs[1:]):
        if a.node != b.node and b.term <= a.term:
            violations.append(f"{b.node}'s run in term {b.term} started after {a.node}'s in term {a.term}")
    gaps: Dict[str, List[float]] = collections.defaultdict(list)
    for kind, node, when in report.stops:
        ran = [r for r in runs if r.node == node and r.start <= when and (r.end is None or r.end >= when)]
        if not ran or ran[0].end is None:
            continue
        after = [r.start for r in runs if r.start >= ran[0].end]
        if after:
            gaps[kind].append(min(after) - ran[0].end)
    return {"overlaps": overlaps, "excused": excused, "stale_refused": stale_refused, "gaps": gaps}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "debug", "almost-raft"))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--hostile", action="store_true", help="signed messages (no attacker: chaos.py has one)")
    parser.add_argument("--drift", type=float, default=DRIFT,
                        help="largest clock-rate error (default 0.045; above the bound of 0.05 the lease promises nothing)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("runners.py needs root (network namespaces)", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    base.ensure_tools()
    if not os.path.exists(FAKETIME):
        base.sh("apt-get", "install", "-y", "-qq", "libfaketime", check=False)
    state_dir = tempfile.mkdtemp(prefix="almost-raft-runners-")
    os.chmod(state_dir, 0o755)
    atexit.register(shutil.rmtree, state_dir, True)
    atexit.register(base.teardown)
    base.setup()
    key_file = None
    if args.hostile:
        key_file = os.path.join(state_dir, "cluster.key")
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(bytes(rng.randrange(256) for _ in range(32)).hex() + "\n")
    resource = Resource(os.path.join(state_dir, "resource.sock"))
    cluster = Runners(os.path.abspath(args.binary), state_dir, key_file, os.path.join(state_dir, "resource.sock"), rng, args.drift)
    atexit.register(cluster.stop_all)
    for i in range(base.NODES):
        cluster.start(i)
    report = Report()
    drift = f"clock rates within +-{args.drift * 100:g}% (libfaketime)" if os.path.exists(FAKETIME) else "no libfaketime: clocks not drifted"
    print(f"runner chaos: seed {seed}, {args.duration:.0f} s, {base.NODES} runners, election timeout {ELECTION_MS} ms, kill grace {KILL_GRACE_MS} ms, {drift}", flush=True)
    if cluster.wait_agreed(LIVENESS) is None or resource.wait_running(LIVENESS, 1) is None:
        cluster.violations.append("no job running after start")
    end = time.monotonic() + args.duration
    while time.monotonic() < end and not cluster.violations:
        kind = rng.choice(["loss", "partition", "one-way", "kill", "pause", "graceful"])
        report.faults[kind] += 1
        hold = rng.uniform(0.5, 3.0)
        victim = rng.randrange(base.NODES)
        with cluster.lock:
            leader = cluster.agreed()
        if leader is not None and rng.random() < 0.6:
            victim = int(leader[1][1:])  # aim at the leader more often than not
        name = f"n{victim}"
        ran = resource.open_run_of(name) is not None
        if kind == "loss":
            pct = rng.randrange(10, 60)
            for i in range(base.NODES):
                base.nft(i, f"add rule inet chaos input udp dport {base.PORT} numgen random mod 100 < {pct} drop")
            time.sleep(hold)
        elif kind in ("partition", "one-way"):
            side = {j for j in range(base.NODES) if rng.random() < 0.5} or {victim}
            for a in range(base.NODES):
                for b in range(base.NODES):
                    if (a in side) != (b in side) and (kind == "partition" or a in side):
                        base.nft(a, f"add rule inet chaos input ip saddr {base.ip_of(b)} drop")
            time.sleep(hold)
        elif kind == "kill":
            if ran:
                report.stops.append(("crash", name, time.time()))
            cluster.kill(victim)
            time.sleep(hold)
            cluster.start(victim)
        elif kind == "pause":
            frozen = time.time()
            cluster.signal(victim, signal.SIGSTOP)
            time.sleep(max(hold, 2 * MAX_ELECTION))
            report.pauses[name].append((frozen, time.time()))
            cluster.signal(victim, signal.SIGCONT)
        else:
            if ran:
                report.stops.append(("graceful", name, time.time()))
            cluster.graceful(victim)
            cluster.start(victim)
        for i in range(base.NODES):
            base.nft(i, "flush chain inet chaos input")
        healed = time.monotonic()
        if cluster.wait_agreed(LIVENESS) is None or resource.wait_running(LIVENESS - (time.monotonic() - healed), 1) is None:
            cluster.violations.append(f"after healing a {kind} fault, no job running within {LIVENESS:.1f} s")
        else:
            report.heal_to_job.append(time.monotonic() - healed)
    with resource.lock:
        runs = list(resource.runs)
    result = check(runs, report, cluster.violations)
    print(f"faults injected: {sum(report.faults.values())} ({', '.join(f'{k} {v}' for k, v in sorted(report.faults.items()))})")
    if cluster.rates:
        print(f"clock rates drawn: {len(cluster.rates)}, from {min(cluster.rates):.4f} to {max(cluster.rates):.4f}")
    print(f"runs of the job: {len(runs)}, by {len({r.node for r in runs})} runners, terms {min((r.term for r in runs), default=0)}..{max((r.term for r in runs), default=0)}; writes accepted {sum(r.accepted for r in runs)}, refused {sum(r.refused for r in runs)}")
    gaps = result["gaps"]
    assert isinstance(gaps, dict)
    for kind in ("crash", "graceful"):
        g = sorted(gaps.get(kind, []))
        if g:
            print(f"gap without a running job after a {kind} stop of its runner: {len(g)} times, median {g[len(g) // 2] * 1000:.0f} ms, longest {g[-1] * 1000:.0f} ms")
    if report.heal_to_job:
        h = sorted(report.heal_to_job)
        print(f"time from healing to a running job: median {h[len(h) // 2] * 1000:.0f} ms, longest {h[-1] * 1000:.0f} ms (bound {LIVENESS * 1000:.0f} ms)")
    print(f"overlapping runs: {result['overlaps']} ({result['excused']} while the older run's runner was frozen by SIGSTOP, fencing held: {result['stale_refused']} stale writes refused)")
    print(f"violations: {len(cluster.violations)}")
    for v in cluster.violations:
        print(f"  VIOLATION: {v}")
    again = f"runners.py --duration {args.duration:.0f} --seed {seed}{' --hostile' if args.hostile else ''}"
    print(f"the same fault schedule: {again}{f' --drift {args.drift:g}' if args.drift != DRIFT else ''}")
    return 1 if cluster.violations else 0


if __name__ == "__main__":
    sys.exit(main())
