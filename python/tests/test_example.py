"""examples/udp_node.py as a real process: a leader hands over on SIGTERM and SIGINT, and a
flood of garbage datagrams prints a few lines, not one per datagram."""

from __future__ import annotations

import json
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, TypeVar

import pytest

from .conftest import GUARD, free_ports

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "udp_node.py"
T = TypeVar("T")


class Proc:
    """One example process; its stdout JSON lines and stderr lines, with waits on them."""

    def __init__(self, id: str, ports: Dict[str, int], cond: threading.Condition) -> None:
        self.id = id
        peers = [f"{p}@127.0.0.1:{port}" for p, port in ports.items() if p != id]
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE), id, f"127.0.0.1:{ports[id]}", *peers],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: List[Dict[str, Any]] = []
        self.errors: List[str] = []
        self.cond = cond
        self.readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True),
        ]
        for r in self.readers:
            r.start()

    def _read(self, stream: Any, is_json: bool) -> None:
        for line in stream:
            with self.cond:
                if is_json:
                    self.lines.append(json.loads(line))
                else:
                    self.errors.append(line.rstrip("\n"))
                self.cond.notify_all()

    def changes(self) -> List[Dict[str, Any]]:
        return [line for line in self.lines if "handover" not in line]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(GUARD)
        for r in self.readers:
            r.join(GUARD)
        return code


def wait(cond: threading.Condition, check: Callable[[], Optional[T]], what: str) -> T:
    with cond:
        found = cond.wait_for(check, GUARD)
    assert found is not None, f"never: {what}"
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_leader_hands_over_on_a_signal_and_the_others_agree_on_the_new_leader(sig: int) -> None:
    ids = ["a", "b", "c"]
    ports = dict(zip(ids, free_ports(3)))
    cond = threading.Condition()
    procs = {id: Proc(id, ports, cond) for id in ids}

    def agreed(among: List[str], after: int) -> Optional[Dict[str, Any]]:
        last = [procs[id].changes()[-1] if procs[id].changes() else None for id in among]
        first = last[0]
        if first is None or first["leader"] is None or first["term"] <= after:
            return None
        return first if all(c == first for c in last) else None

    try:
        first = wait(cond, lambda: agreed(ids, 0), "a leader agreed by all three")
        leader = procs[first["leader"]]
        assert leader.stop(sig) == 0, leader.errors
        handover = next((line for line in leader.lines if "handover" in line), None)
        assert handover is not None, f"the leader printed no handover: {leader.lines}"
        assert handover["leader"] == leader.id and handover["term"] == first["term"]
        rest = [id for id in ids if id != leader.id]
        second = wait(cond, lambda: agreed(rest, first["term"]), "a new leader agreed by the two others")
        assert second["leader"] == handover["handover"], "the peer handed to leads"
        # The old leader saw its successor before it exited: a handover, not a timeout.
        assert leader.changes()[-1] == second, leader.lines
    finally:
        for p in procs.values():
            if p.proc.poll() is None:
                p.stop(signal.SIGINT)


def test_a_flood_of_garbage_prints_a_few_lines_and_a_count() -> None:
    ports = dict(zip(["a", "b", "c"], free_ports(3)))
    cond = threading.Condition()
    proc = Proc("a", ports, cond)
    try:
        wait(cond, lambda: proc.lines or None, "the node started")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(10_000):
                s.sendto(b"garbage %d" % i, ("127.0.0.1", ports["a"]))
        summary = wait(
            cond, lambda: next((e for e in proc.errors if re.match(r"refused \d+ more datagrams", e)), None),
            "a line counting the refused datagrams",
        )
        assert int(summary.split()[1]) > 0
    finally:
        assert proc.stop() == 0
    assert proc.errors[0].startswith("refused 9 bytes"), proc.errors[:3]
    counted = 1 + sum(int(e.split()[1]) for e in proc.errors[1:])
    assert counted <= 10_000
    # One line in full, then at most one a second while the flood lasts.
    assert len(proc.errors) <= 10, proc.errors
