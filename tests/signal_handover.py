#!/usr/bin/env python3
"""SIGTERM and SIGINT to the leader's process make it hand over. For each signal: three node
processes on 127.0.0.1, started as `COMMAND... <id> <host:port> <peer-id>@<host:port>...` (the
command line of the C, Python and Node.js examples), agree on a leader; the signal goes to the
leader's process; it must print {"event": "handover", "term": T, ...} (with "to" when it knows
the target), print a peer as leader in a higher term before it exits, and exit with status 0;
the two others must agree on that peer in term T + 1, the election the handover started.
Every wait reads the processes' stdout; GUARD only bounds a hang. The time from the signal to
the others' agreement is printed, not asserted.

Usage: signal_handover.py COMMAND... (e.g. signal_handover.py target/udp_node)
"""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Tuple

GUARD = 30.0  # seconds: a hang guard, not a timing assertion
NODES = 3


def free_ports(n: int) -> List[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Cluster:
    def __init__(self, command: List[str], label: str) -> None:
        self.label = label
        self.ids = [f"n{i}" for i in range(NODES)]
        addrs = [f"127.0.0.1:{p}" for p in free_ports(NODES)]
        self.lines: "queue.Queue[Tuple[int, Optional[dict]]]" = queue.Queue()
        self.latest: Dict[int, Tuple[int, Optional[str]]] = {}
        self.procs: List[subprocess.Popen] = []
        self.deadline = time.monotonic() + GUARD
        for i in range(NODES):
            peers = [f"{self.ids[j]}@{addrs[j]}" for j in range(NODES) if j != i]
            proc = subprocess.Popen([*command, self.ids[i], addrs[i], *peers], stdout=subprocess.PIPE, text=True)
            self.procs.append(proc)
            threading.Thread(target=self._read, args=(i, proc), daemon=True).start()

    def _read(self, i: int, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # not a JSON line: a log line
            self.lines.put((i, event))
        self.lines.put((i, None))

    def next(self) -> Tuple[int, Optional[dict]]:
        """The next line of any node (None: its output ended); updates the latest state."""
        try:
            i, event = self.lines.get(timeout=max(0.0, self.deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"{self.label}: nothing more within {GUARD} s; latest: {self.latest}")
        if event is not None:
            print(f"{self.label} {self.ids[i]}: {json.dumps(event)}")
            self.latest[i] = (int(event["term"]), event.get("leader"))
        return i, event

    def agreed(self, among: List[int]) -> Optional[Tuple[int, str]]:
        first = self.latest.get(among[0])
        if first is None or first[1] is None or any(self.latest.get(i) != first for i in among):
            return None
        return first[0], first[1]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def leader_hands_over(command: List[str], sig: signal.Signals) -> None:
    c = Cluster(command, sig.name)
    try:
        everyone = list(range(NODES))
        while (first := c.agreed(everyone)) is None:
            c.next()
        term, leader = first
        li = c.ids.index(leader)
        rest = [i for i in everyone if i != li]
        sent = time.monotonic()
        c.procs[li].send_signal(sig)
        handover: Optional[dict] = None
        leader_saw: Optional[Tuple[int, str]] = None
        ended = False
        new_leader: Optional[Tuple[int, str]] = None
        while handover is None or not ended or new_leader is None:
            i, event = c.next()
            if event is None:
                assert i == li, f"{c.ids[i]} ended"
                assert handover is not None, f"{leader} exited without handing over"
                ended = True
            elif i == li and event.get("event") == "handover":
                assert int(event["term"]) == term, f"handover in term {event['term']}, not {term}"
                handover = event
            elif i == li and event.get("leader") not in (None, leader):
                leader_saw = (int(event["term"]), event["leader"])
            if new_leader is None and (agreed := c.agreed(rest)) is not None and agreed[0] > term:
                new_leader = agreed
                print(f"{sig.name} to {leader}: {agreed} agreed by the others after {(time.monotonic() - sent) * 1000:.1f} ms")
        code = c.procs[li].wait(timeout=GUARD)
        assert code == 0, f"{leader} exited with {code}"
        target = new_leader[1]
        assert target != leader
        assert new_leader[0] == term + 1, f"the others follow {new_leader}, not a leader of term {term + 1}"
        assert handover.get("to", target) == target, f"handed over to {handover['to']}, yet {target} leads"
        assert leader_saw == (term + 1, target), f"{leader} saw {leader_saw} before it exited, not {target}"
    finally:
        c.stop()


def main() -> int:
    command = sys.argv[1:]
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            leader_hands_over(command, sig)
        except AssertionError as e:
            print(f"FAIL: {' '.join(command)}: {sig.name}: {e}")
            return 1
    print(f"signal handover ({' '.join(command)}): 2 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
