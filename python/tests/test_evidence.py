"""Death evidence (`Node.peer_unreachable`): an application that learns from its own transport
that the leader's process is gone tells the followers, and they elect another at once. The
two followers have a ten-minute election timeout: only the evidence can elect them within
the guard."""

from __future__ import annotations

import threading

import pytest

import almost_raft
from almost_raft import Node

from .conftest import Cluster


def test_evidence_of_a_dead_leader_elects_another_without_waiting_for_the_timer() -> None:
    cluster = Cluster(3, election_timeout_ms=600_000)
    cluster.remove("p1").close()
    dead = threading.Event()
    send = cluster._sender()

    def p1_send(to: str, data: bytes) -> None:
        if not dead.is_set():  # once its process is gone, nothing it sends arrives
            send(to, data)

    p1 = Node("p1", p1_send, peers=["p2", "p3"], on_leader_change=cluster._recorder("p1"),
              election_timeout_ms=150, heartbeat_interval_ms=50, min_nodes=3)
    with cluster.cond:
        cluster.nodes["p1"] = p1
    try:
        first = cluster.agreed()
        assert first.leader == "p1"
        dead.set()
        cluster.remove("p1")
        for id in ("p2", "p3"):
            cluster.nodes[id].peer_unreachable("p1")
        second = cluster.agreed(after=first.term)
        assert second.leader in ("p2", "p3")
        assert second.term == first.term + 1
        with pytest.raises(almost_raft.PeerError):
            cluster.nodes["p2"].peer_unreachable("nobody")
        with pytest.raises(TypeError):
            cluster.nodes["p2"].peer_unreachable(3)  # type: ignore[arg-type]
    finally:
        p1.close()
        cluster.close()


def test_evidence_after_close_raises_closed_error() -> None:
    cluster = Cluster(3)
    node = cluster.remove("p2")
    node.close()
    with pytest.raises(almost_raft.ClosedError):
        node.peer_unreachable("p1")
    cluster.close()
