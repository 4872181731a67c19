"""A 3-node in-process cluster: election, failover, transfer, restart, async iteration."""

from __future__ import annotations

import asyncio
import logging
import pathlib
import threading
from typing import List

import pytest

import almost_raft
from almost_raft import LeaderChange, Node, Role

from .conftest import GUARD, Cluster


def test_three_nodes_elect_one_leader_agreed_by_all(cluster: Cluster) -> None:
    agreed = cluster.agreed()
    assert agreed.leader in cluster.ids
    leader = cluster.nodes[agreed.leader]
    assert leader.is_leader and leader.status().role is Role.LEADER
    for id, node in cluster.nodes.items():
        status = node.status()
        assert status.id == id and not status.stopped
        assert (status.leader, status.term) == (agreed.leader, agreed.term)
        assert status.since_leader_heard_ms is not None and status.since_leader_heard_ms >= 0
        assert node.leader == agreed.leader and node.term == agreed.term
        assert len(status.peers) == 2 and status.waiting_for_nodes == 0
        assert node.wait_for_leader(GUARD) == agreed


def test_closing_the_leader_elects_a_new_leader_with_a_higher_term(cluster: Cluster) -> None:
    first = cluster.agreed()
    assert first.leader is not None
    cluster.remove(first.leader).close()
    second = cluster.agreed(after=first.term)
    assert second.leader != first.leader and second.term > first.term


def test_transfer_hands_leadership_to_the_chosen_peer(cluster: Cluster) -> None:
    first = cluster.agreed()
    assert first.leader is not None
    target = next(id for id in cluster.ids if id != first.leader)
    assert cluster.nodes[first.leader].transfer_leadership(target) == target
    second = cluster.agreed(after=first.term)
    assert second.leader == target
    with pytest.raises(almost_raft.NotLeaderError):
        cluster.nodes[first.leader].transfer_leadership()


def test_a_restarted_node_with_a_state_path_keeps_its_term(tmp_path: pathlib.Path) -> None:
    c = Cluster(3, state_path=None)
    try:
        for id in c.ids:
            c.remove(id).close()
        for id in c.ids:
            c.start(id, state_path=tmp_path / id)
        first = c.agreed()
        follower = next(id for id in c.ids if id != first.leader)
        before = c.nodes[follower].status()
        c.remove(follower).close()
        restarted = Node(follower, lambda to, data: None, peers=[p for p in c.ids if p != follower], state_path=tmp_path / follower)
        with restarted:
            status = restarted.status()
            assert status.term >= before.term and status.term == first.term
            assert status.voted_for == before.voted_for
    finally:
        c.close()


def test_the_async_iterator_yields_every_change_in_order(cluster: Cluster) -> None:
    first = cluster.agreed()
    assert first.leader is not None
    watched = cluster.nodes[next(id for id in cluster.ids if id != first.leader)]

    async def watch() -> List[LeaderChange]:
        seen: List[LeaderChange] = []
        async for change in watched.leader_changes():
            seen.append(change)
            if len(seen) == 1:
                assert change == first, "the current state comes first"
                target = next(id for id in cluster.ids if id not in (first.leader, watched.id))
                cluster.nodes[first.leader].transfer_leadership(target)  # type: ignore[index]
            elif change.leader is not None and change.term > first.term:
                watched.close()  # ends the iteration
        return seen

    seen = asyncio.run(asyncio.wait_for(watch(), GUARD))
    assert [c.term for c in seen] == sorted(c.term for c in seen), "terms never go down"
    assert seen[-1].leader is not None and seen[-1].term > first.term
    cluster.remove(watched.id)


def test_a_callback_that_raises_is_logged_and_the_cluster_continues(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="almost_raft"):
        c = Cluster(3, broken=["p1"])
        try:
            first = c.agreed()
            assert first.leader is not None
            c.remove(first.leader).close()
            second = c.agreed(after=first.term)  # p1's callback raised every time, and p1 went on
        finally:
            c.close()
    assert second.term > first.term and len(c.seen["p1"]) >= 2
    assert any("user callback of p1 failed" in (r.exc_text or "") or "raised" in r.getMessage() for r in caplog.records)


def test_a_node_can_close_itself_from_inside_its_callback() -> None:
    closed = threading.Event()
    holder: List[Node] = []

    def close_on_leader(change: LeaderChange) -> None:
        if change.leader is not None:
            holder[0].close()
            closed.set()

    node = Node("solo", lambda to, data: None, min_nodes=1, election_timeout_ms=150, heartbeat_interval_ms=50, on_leader_change=close_on_leader)
    holder.append(node)
    assert closed.wait(GUARD)
    with pytest.raises(almost_raft.ClosedError):
        node.status()
    node.close()  # again: nothing happens


def test_the_core_logs_reach_the_almost_raft_logger(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="almost_raft"):
        with Node("logged", lambda to, data: None, min_nodes=1, election_timeout_ms=150, heartbeat_interval_ms=50) as node:
            node.wait_for_leader(GUARD)
            deadline = threading.Event()
            for _ in range(int(GUARD * 10)):
                if any("elected leader" in r.getMessage() for r in caplog.records):
                    break
                deadline.wait(0.1)  # log records arrive on the package's log thread
    assert any("elected leader" in r.getMessage() and r.name == "almost_raft" for r in caplog.records)
