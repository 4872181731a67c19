#!/usr/bin/env python3
"""`make demo`, part two: exactly one copy of a job runs. Three `almost-raft run` supervisors
on 127.0.0.1, each wanting to run a small job that prints its term every 100 ms. The demo
kills the leader's runner outright (SIGKILL) and stops it gracefully (SIGTERM) in turn,
restarting it each time, then prints every run of the job (which runner, which term, from
when to when) and the gap between each run and the next.

A run starts when its runner reports `child_start` and ends when its runner reports the job
stopped, or, when the runner was killed, when the job's process is seen gone (later than it
died: the job dies with its runner). Exits 1 if two runs ever overlapped, if a run did not
have a higher term (the fencing token) than the one before, or if the job did not start
again after a fault.

    python3 demo/runner.py [--binary target/release/almost-raft] [--rounds 6]
"""

from __future__ import annotations

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
from typing import Dict, List, Optional

GUARD = 30.0  # seconds: a hang guard for waits on events
JOB = 'while :; do echo "job: term $ALMOST_RAFT_TERM on $ALMOST_RAFT_LEADER"; sleep 0.1; done'


class Run:
    def __init__(self, runner: str, term: int, pid: int, start: float) -> None:
        self.runner, self.term, self.pid, self.start = runner, term, pid, start
        self.end: Optional[float] = None


class Demo:
    def __init__(self, binary: str, state_dir: str) -> None:
        self.binary = binary
        self.state_dir = state_dir
        self.ids = ["r1", "r2", "r3"]
        self.ports = dict(zip(self.ids, free_ports(3)))
        self.procs: Dict[str, subprocess.Popen[str]] = {}
        self.runs: List[Run] = []
        self.cond = threading.Condition()

    def start(self, id: str) -> None:
        cmd = [self.binary, "run", "--id", id, "--listen", f"127.0.0.1:{self.ports[id]}",
               "--election-timeout-ms", "500", "--heartbeat-ms", "50", "--kill-grace-ms", "100",
               "--state-dir", self.state_dir]
        for peer in self.ids:
            if peer != id:
                cmd += ["--peer", f"{peer}@127.0.0.1:{self.ports[peer]}"]
        cmd += ["--", "sh", "-c", JOB]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.procs[id] = proc
        threading.Thread(target=self.read, args=(id, proc), daemon=True).start()

    def read(self, id: str, proc: "subprocess.Popen[str]") -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("job: "):
                continue  # the job's own ticks
            event = json.loads(line)
            now = event["ts_ms"] / 1000
            with self.cond:
                if event.get("event") == "child_start":
                    self.runs.append(Run(id, event["term"], event["pid"], now))
                    print(f"{time.strftime('%H:%M:%S')} {id} starts the job (term {event['term']}, pid {event['pid']})")
                elif event.get("event") in ("child_stop", "child_exit"):
                    for run in self.runs:
                        if run.pid == event["pid"] and run.end is None:
                            run.end = now
                    print(f"{time.strftime('%H:%M:%S')} {id} stopped the job ({event.get('reason', event['status'])})")
                self.cond.notify_all()

    def running(self) -> Optional[Run]:
        with self.cond:
            live = [r for r in self.runs if r.end is None]
            return live[-1] if live else None

    def wait_for_run(self, after: int) -> Run:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.runs) > after, GUARD)
        if not ok:
            raise SystemExit("FAIL: the job did not start again within the guard")
        return self.runs[after]

    def kill(self, run: Run) -> None:
        proc = self.procs[run.runner]
        print(f"{time.strftime('%H:%M:%S')} SIGKILL to {run.runner}'s runner")
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + GUARD
        while alive(run.pid):
            if time.monotonic() > deadline:
                raise SystemExit(f"FAIL: the job {run.pid} outlived its runner")
            time.sleep(0.005)
        with self.cond:
            run.end = time.time()  # seen gone: no earlier than it died

    def stop(self, run: Run) -> None:
        proc = self.procs[run.runner]
        print(f"{time.strftime('%H:%M:%S')} SIGTERM to {run.runner}'s runner")
        proc.send_signal(signal.SIGTERM)
        proc.wait(GUARD)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def free_ports(n: int) -> List[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "almost-raft"))
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    state_dir = tempfile.TemporaryDirectory()
    demo = Demo(args.binary, state_dir.name)
    try:
        for id in demo.ids:
            demo.start(id)
        seen = 0
        for round in range(args.rounds):
            run = demo.wait_for_run(seen)
            seen += 1
            time.sleep(0.5)  # let the job tick a few times: this is a demo, not a wait for an event
            if round % 2 == 0:
                demo.kill(run)
            else:
                demo.stop(run)
            demo.start(run.runner)  # it comes back as a follower
        demo.wait_for_run(seen)
    finally:
        demo.close()
        state_dir.cleanup()
    return summary(demo.runs)


def summary(runs: List[Run]) -> int:
    print("\nruns of the job (one at a time):")
    runs = sorted(runs, key=lambda r: r.start)
    overlaps = stale = 0
    for i, run in enumerate(runs):
        if i > 0 and run.term <= runs[i - 1].term:
            stale += 1
            print(f"  FENCING: a run in term {run.term} after one in term {runs[i - 1].term}")
        end = f"{(run.end - runs[0].start):7.3f} s" if run.end is not None else "   (end)"
        line = f"  {run.runner} term {run.term:3d}: {(run.start - runs[0].start):7.3f} s -> {end}"
        if i + 1 < len(runs) and run.end is not None:
            gap = runs[i + 1].start - run.end
            line += f"   gap before the next: {gap * 1000:6.0f} ms"
            if gap < 0:
                overlaps += 1
                line += "   OVERLAP"
        print(line)
    if overlaps or stale:
        print(f"FAIL: {overlaps} overlapping runs, {stale} runs without a higher term")
        return 1
    print("no two runs overlapped, and each ran in a higher term than the one before")
    return 0


if __name__ == "__main__":
    sys.exit(main())
