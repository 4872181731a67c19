"""In-process clusters for the tests: `send` calls the peer's `receive` directly."""

from __future__ import annotations

import socket
import threading
from typing import Callable, Dict, Iterable, Iterator, List, Optional

import pytest

import almost_raft
from almost_raft import LeaderChange, Node

GUARD = 30.0
"""Seconds: a hang guard for waits on events, not a timing assertion."""


class Cluster:
    def __init__(self, size: int, broken: Iterable[str] = (), **options: object) -> None:
        self.ids = [f"p{i}" for i in range(1, size + 1)]
        self.broken = set(broken)
        """Nodes whose leader callback raises (after recording the change)."""
        self.nodes: Dict[str, Node] = {}
        self.known: Dict[str, LeaderChange] = {}
        self.seen: Dict[str, List[LeaderChange]] = {id: [] for id in self.ids}
        self.cond = threading.Condition()
        self.options = options
        for id in self.ids:
            self.start(id)

    def start(self, id: str, **extra: object) -> Node:
        options: Dict[str, object] = dict(election_timeout_ms=150, heartbeat_interval_ms=50, min_nodes=len(self.ids))
        options.update(self.options)
        options.update(extra)
        node = Node(
            id,
            self._sender(),
            peers=[p for p in self.ids if p != id],
            on_leader_change=self._recorder(id),
            **options,  # type: ignore[arg-type]
        )
        with self.cond:
            self.nodes[id] = node
        return node

    def _sender(self) -> Callable[[str, bytes], None]:
        def send(to: str, data: bytes) -> None:
            with self.cond:
                peer = self.nodes.get(to)
            if peer is not None:
                try:
                    peer.receive(data)
                except almost_raft.ClosedError:
                    pass

        return send

    def _recorder(self, id: str) -> Callable[[LeaderChange], None]:
        def record(change: LeaderChange) -> None:
            with self.cond:
                self.known[id] = change
                self.seen[id].append(change)
                self.cond.notify_all()
            if id in self.broken:
                raise RuntimeError(f"user callback of {id} failed")

        return record

    def remove(self, id: str) -> Node:
        with self.cond:
            node = self.nodes.pop(id)
            self.known.pop(id, None)
        return node

    def agreed(self, after: int = 0, among: Optional[List[str]] = None) -> LeaderChange:
        """Waits for a leader known by every live node in a term above `after`."""

        def check() -> Optional[LeaderChange]:
            ids = among if among is not None else list(self.nodes)
            changes = [self.known.get(id) for id in ids]
            first = changes[0]
            if first is None or first.leader is None or first.term <= after:
                return None
            return first if all(c == first for c in changes) else None

        with self.cond:
            result = self.cond.wait_for(check, GUARD)
            assert result is not None, f"no agreed leader: {self.known}"
            return result

    def close(self) -> None:
        for id in list(self.nodes):
            self.remove(id).close()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster(3)
    yield c
    c.close()


def free_ports(n: int) -> List[int]:
    """Free UDP ports on 127.0.0.1 (bound to port 0, then released for the nodes)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
