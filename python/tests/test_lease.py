"""The leader lease from Python: ``async with node.leadership() as term`` runs the body only
while this node leads with a lease, and cancels it when the lease ends, also when no message
arrives (here: both followers are closed, so no answer reaches the leader)."""

from __future__ import annotations

import asyncio

import pytest

import almost_raft
from almost_raft import Node

from .conftest import GUARD, Cluster


def test_the_body_runs_while_leading_and_is_cancelled_when_the_lease_ends() -> None:
    cluster = Cluster(3)
    try:
        first = cluster.agreed()
        assert first.leader is not None
        leader = cluster.nodes[first.leader]

        async def main() -> None:
            started = asyncio.Event()
            cancelled = False

            async def body(term: int) -> None:
                nonlocal cancelled
                assert term == first.term
                started.set()
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    cancelled = True
                    raise

            async def run() -> None:
                async with leader.leadership() as term:
                    await body(term)

            task = asyncio.ensure_future(run())
            await asyncio.wait_for(started.wait(), GUARD)
            remaining = leader.status().lease_remaining_ms
            assert remaining is not None and remaining > 0
            for id in [i for i in cluster.ids if i != first.leader]:
                cluster.remove(id).close()  # no answer reaches the leader any more
            await asyncio.wait_for(task, GUARD)  # the async with ended normally
            assert cancelled
            assert leader.status().lease_remaining_ms is None

        asyncio.run(main())
    finally:
        cluster.close()


def test_followers_hold_no_lease(cluster: Cluster) -> None:
    first = cluster.agreed()
    for id, node in cluster.nodes.items():
        if id != first.leader:
            assert node.status().lease_remaining_ms is None


def test_a_cancellation_from_outside_is_not_swallowed(cluster: Cluster) -> None:
    first = cluster.agreed()
    assert first.leader is not None
    leader = cluster.nodes[first.leader]

    async def main() -> None:
        async def run() -> None:
            async with leader.leadership():
                await asyncio.sleep(3600)

        task = asyncio.ensure_future(run())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_waiting_for_leadership_fails_once_the_node_is_closed() -> None:
    node = Node("a", lambda to, data: None, peers=["b", "c"])

    async def main() -> None:
        waiting = asyncio.ensure_future(node.leadership().__aenter__())
        await asyncio.sleep(0.01)
        await node.aclose()
        with pytest.raises(almost_raft.ClosedError):
            await asyncio.wait_for(waiting, GUARD)

    asyncio.run(main())


def test_lease_settings_are_checked() -> None:
    with pytest.raises(almost_raft.ConfigError, match="drift_bound_ppm"):
        Node("a", lambda to, data: None, peers=["b"], drift_bound_ppm=600_000)
    with pytest.raises(almost_raft.ConfigError, match="lease_margin_ms"):
        Node("a", lambda to, data: None, peers=["b"], lease_margin_ms=2_000)
    with pytest.raises(TypeError, match="lease_margin_ms must be int"):
        Node("a", lambda to, data: None, peers=["b"], lease_margin_ms="50")  # type: ignore[arg-type]
