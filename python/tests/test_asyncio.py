"""asyncio use: `async with` and `aclose()`, callbacks delivered on a given event loop, and the
closed error from `leader_changes()` after close (the same as Node.js's ERR_CLOSED)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from typing import List

import pytest

import almost_raft
from almost_raft import LeaderChange, Node

from .conftest import GUARD


def test_async_with_closes_the_node_and_aclose_does_not_block_the_loop() -> None:
    async def main() -> Node:
        async with Node("a", lambda to, data: None, min_nodes=1, election_timeout_ms=150, heartbeat_interval_ms=50) as node:
            changes = node.leader_changes()
            first = await asyncio.wait_for(changes.__anext__(), GUARD)
            assert first == LeaderChange(None, 0)
            elected = await asyncio.wait_for(changes.__anext__(), GUARD)
            assert elected.leader == "a"
            await changes.aclose()
        return node

    node = asyncio.run(main())
    with pytest.raises(almost_raft.ClosedError):
        node.status()


def test_callbacks_run_on_the_given_event_loop() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        on_loop = threading.get_ident()
        seen: "asyncio.Queue[LeaderChange]" = asyncio.Queue()
        threads: List[int] = []

        def on_change(change: LeaderChange) -> None:
            threads.append(threading.get_ident())
            # On the loop's own thread, asyncio may be used directly.
            asyncio.get_running_loop()
            seen.put_nowait(change)

        async with Node("a", lambda to, data: None, on_leader_change=on_change, loop=loop,
                        min_nodes=1, election_timeout_ms=150, heartbeat_interval_ms=50):
            while (await asyncio.wait_for(seen.get(), GUARD)).leader != "a":
                pass
        assert threads and all(t == on_loop for t in threads), (threads, on_loop)

    asyncio.run(main())


def test_loop_must_be_an_event_loop() -> None:
    with pytest.raises(TypeError, match="loop must be an asyncio event loop"):
        Node("a", lambda to, data: None, loop="not a loop")  # type: ignore[arg-type]


def test_leader_changes_after_close_raises_closed_error() -> None:
    node = Node("a", lambda to, data: None, peers=["b", "c"])
    node.close()

    async def main() -> None:
        with pytest.raises(almost_raft.ClosedError):
            async for _ in node.leader_changes():
                pass

    asyncio.run(main())


def test_nothing_reaches_stderr_unless_the_application_configures_logging() -> None:
    """The core warns (here: two voters cannot reach min_nodes 3), but a library must not
    print: the almost_raft logger has a NullHandler."""
    script = (
        "import logging, threading\n"
        "import almost_raft\n"
        "warned = threading.Event()\n"
        "def note(record):\n"
        "    if 'min_nodes' in record.getMessage():\n"
        "        warned.set()\n"
        "    return True\n"
        "logging.getLogger('almost_raft').addFilter(note)  # a filter, not a handler\n"
        "with almost_raft.Node('a', lambda to, data: None, peers=['b']):\n"
        "    assert warned.wait(30), 'the core warned'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=GUARD)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
