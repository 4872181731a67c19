"""The built-in UDP transport: three nodes with a key, no send callback and no receive call,
elect; the leader keeps its leadership while the application holds the GIL in a long
computation; when the leader closes, the others agree on a higher term."""

from __future__ import annotations

import socket
import threading
import time
from typing import Dict, List

import pytest

import almost_raft
from almost_raft import LeaderChange, Node

from .conftest import GUARD, free_ports

KEY = b"almost-raft test key, not secret"
T_MS = 150


def test_three_nodes_on_the_built_in_transport_elect_and_survive_a_busy_interpreter() -> None:
    ids = ["a", "b", "c"]
    ports = dict(zip(ids, free_ports(3)))
    cond = threading.Condition()
    known: Dict[str, LeaderChange] = {}

    def recorder(id: str) -> almost_raft.LeaderCallback:
        def record(change: LeaderChange) -> None:
            with cond:
                known[id] = change
                cond.notify_all()
        return record

    nodes = {
        id: Node(id, listen=f"127.0.0.1:{ports[id]}", keys=[KEY], on_leader_change=recorder(id),
                 peers={p: f"localhost:{ports[p]}" for p in ids if p != id},
                 election_timeout_ms=T_MS, heartbeat_interval_ms=50)
        for id in ids
    }

    def agreed(among: List[str], after: int) -> LeaderChange:
        def check() -> "LeaderChange | None":
            first = known.get(among[0])
            if first is None or first.leader is None or first.term <= after:
                return None
            return first if all(known.get(i) == first for i in among) else None
        with cond:
            found = cond.wait_for(check, GUARD)
        assert found is not None, known
        return found

    try:
        first = agreed(ids, 0)
        # Hold the interpreter busy for 10 election timeouts: the election runs on the
        # library's threads and needs no GIL, so nothing changes.
        end = time.monotonic() + 10 * T_MS / 1000
        while time.monotonic() < end:
            sum(range(10_000))
        for id in ids:
            status = nodes[id].status()
            assert (status.leader, status.term) == (first.leader, first.term), id
            assert status.unauthenticated == 0
        assert first.leader is not None
        nodes.pop(first.leader).close()  # hands over
        rest = list(nodes)
        second = agreed(rest, first.term)
        assert second.leader != first.leader
    finally:
        for node in nodes.values():
            node.close()


def test_the_built_in_transport_needs_addresses_and_no_send() -> None:
    with pytest.raises(TypeError, match="give send or listen, not both"):
        Node("a", lambda to, data: None, listen="127.0.0.1:0", peers={"b": "localhost:9"})
    with pytest.raises(TypeError, match="peers must map each peer's id to its address"):
        Node("a", listen="127.0.0.1:0", peers=["b"])
    with pytest.raises(TypeError, match="send must be callable"):
        Node("a")
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(almost_raft.ConfigError, match="listen: cannot listen"):
            Node("a", listen="127.0.0.1:%d" % taken.getsockname()[1], peers={"b": "localhost:9"})
    finally:
        taken.close()
