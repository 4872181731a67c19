"""The edges of the callback thread: a stalled thread, callbacks that raise anything (also
SystemExit and KeyboardInterrupt) or raise on every call, and waits on a node that closes."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import threading
from typing import Callable, Iterator, List, Optional

import pytest

import almost_raft
from almost_raft import LeaderChange, Node, _native

from .conftest import GUARD


def heartbeat(term: int, sender: str, to: str = "a") -> bytes:
    """A heartbeat (round 1) of the leader `sender` in `term` (docs/wire.md, version 3)."""
    ids = b"".join(bytes([len(i)]) + i.encode() for i in (sender, to))
    return bytes([3, 5, 0]) + term.to_bytes(8, "big") + b"\x00" + ids + (1).to_bytes(8, "big")


def poll(predicate: Callable[[], bool], what: str) -> None:
    """Waits for a state of the native node that no callback announces (the callback thread
    is stalled on purpose); GUARD is a hang guard."""
    tick = threading.Event()
    for _ in range(int(GUARD * 100)):
        if predicate():
            return
        tick.wait(0.01)
    raise AssertionError(f"never: {what}")


class Records(logging.Handler):
    """The records of the almost_raft logger, with a wait for one that matches."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []
        self.cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.cond:
            self.records.append(record)
            self.cond.notify_all()

    def wait_for(self, pattern: str) -> logging.LogRecord:
        def find() -> Optional[logging.LogRecord]:
            return next((r for r in self.records if re.search(pattern, r.getMessage())), None)

        with self.cond:
            found = self.cond.wait_for(find, GUARD)
        assert found is not None, f"no log record matching {pattern!r}: {[r.getMessage() for r in self.records]}"
        return found


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("almost_raft")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


class Recorder:
    def __init__(self, then: Callable[[LeaderChange], None] = lambda c: None) -> None:
        self.seen: List[LeaderChange] = []
        self.cond = threading.Condition()
        self.then = then

    def __call__(self, change: LeaderChange) -> None:
        with self.cond:
            self.seen.append(change)
            self.cond.notify_all()
        self.then(change)

    def wait_for(self, want: LeaderChange) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: want in self.seen, GUARD), f"{want} never delivered: {self.seen[-5:]}"


def test_a_stalled_callback_thread_holds_a_bounded_queue_and_ends_with_the_current_state(records: Records) -> None:
    stalled, release = threading.Event(), threading.Event()

    def send(to: str, data: bytes) -> None:
        stalled.set()
        release.wait()  # the callback thread stalls until the test releases it

    changes = Recorder()
    node = Node("a", send, peers=["b", "c"], on_leader_change=changes)
    try:
        node.receive(heartbeat(1, "b"))  # a replies: the send that stalls the thread
        assert stalled.wait(GUARD)
        # Every heartbeat asks for a reply; one in a new term also makes a leader change. They
        # go in batches smaller than the core's per-peer send queue, so none is lost before
        # reaching the callback queue.
        sends, changes_queued = _native.MAX_QUEUED_SENDS, _native.MAX_QUEUED_CHANGES
        while node._native.backlog()[0] < sends:
            before = node._native.backlog()[0]
            for _ in range(32):
                node.receive(heartbeat(1, "b"))
            poll(lambda: node._native.backlog()[0] >= min(before + 32, sends), "replies queued")
        last = 1 + 4 * changes_queued
        for first in range(2, last + 1, 16):
            for term in range(first, first + 16):
                node.receive(heartbeat(term, "b" if term % 2 else "c"))
            poll(lambda: node.status().term == first + 15, "a batch of terms published")
        final = LeaderChange("b" if (first + 15) % 2 else "c", first + 15)
        assert node._native.backlog() == (sends, changes_queued), "bounded, however much more came"
        release.set()
        changes.wait_for(final)  # the final state always arrives
        terms = [c.term for c in changes.seen]
        assert terms == sorted(terms), "terms in order"
        assert changes.seen[-1] == final
        # Only the newest changes waited; at most two were delivered before the stall.
        assert len(changes.seen) <= changes_queued + 2, len(changes.seen)
        warning = records.wait_for(r"fell behind: dropped \d+ stale sends")
        sends, skipped = map(int, re.findall(r"dropped (\d+) stale sends.*skipped (\d+) leader", warning.getMessage())[0])
        assert sends > 0 and skipped > 0
    finally:
        release.set()
        node.close()


def test_wait_for_leader_raises_closed_error_when_the_node_closes_first() -> None:
    node = Node("a", lambda to, data: None, peers=["b", "c"])
    outcome: List[BaseException] = []

    def wait() -> None:
        try:
            node.wait_for_leader(GUARD)
        except BaseException as e:
            outcome.append(e)

    waiter = threading.Thread(target=wait)
    waiter.start()
    node.close()
    waiter.join(GUARD)
    assert len(outcome) == 1 and isinstance(outcome[0], almost_raft.ClosedError), outcome
    with pytest.raises(almost_raft.ClosedError):
        node.wait_for_leader(GUARD)
    stopping = Node("a", lambda to, data: None, peers=["b", "c"])
    stopping.remove_peer("a")  # removing itself stops the node
    with pytest.raises(almost_raft.ClosedError):
        stopping.wait_for_leader(GUARD)
    stopping.close()


def test_system_exit_in_a_callback_is_logged_and_callbacks_go_on(records: Records) -> None:
    def exit_each_time(change: LeaderChange) -> None:
        raise SystemExit(3)

    changes = Recorder(exit_each_time)
    with Node("a", lambda to, data: None, peers=["b", "c"], on_leader_change=changes) as node:
        node.receive(heartbeat(1, "b"))
        changes.wait_for(LeaderChange("b", 1))
        node.receive(heartbeat(2, "c"))
        changes.wait_for(LeaderChange("c", 2))  # the callback thread survived SystemExit
        assert node._thread.is_alive()
    assert records.wait_for(r"on_leader_change callback .* raised SystemExit").exc_info is not None


@pytest.fixture
def python_sigint_handler() -> Iterator[None]:
    """A shell that starts a job in the background makes it ignore SIGINT, and then Python's
    interrupt_main() does nothing: give the main thread Python's own handler meanwhile."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("python_sigint_handler")
def test_keyboard_interrupt_in_a_callback_reaches_the_main_thread_and_callbacks_go_on(records: Records) -> None:
    armed = threading.Event()

    def interrupt(change: LeaderChange) -> None:
        if armed.is_set():
            armed.clear()
            raise KeyboardInterrupt

    changes = Recorder(interrupt)
    with Node("a", lambda to, data: None, peers=["b", "c"], on_leader_change=changes) as node:
        interrupted = False
        armed.set()
        try:
            node.receive(heartbeat(1, "b"))
            tick = threading.Event()
            for _ in range(int(GUARD * 100)):  # the interrupt arrives between two ticks
                tick.wait(0.01)
        except KeyboardInterrupt:
            interrupted = True
        assert interrupted, "the main thread got the callback's KeyboardInterrupt"
        node.receive(heartbeat(2, "c"))
        changes.wait_for(LeaderChange("c", 2))
    records.wait_for(r"raised KeyboardInterrupt: passed on to the main thread")


def test_a_send_callback_raising_every_time_logs_a_few_tracebacks_then_a_count(records: Records) -> None:
    def fail(to: str, data: bytes) -> None:
        raise RuntimeError("the network is gone")

    # A pre-candidate that no one answers asks its two peers again every 20-40 ms.
    with Node("a", fail, peers=["b", "c"], election_timeout_ms=20, heartbeat_interval_ms=10):
        summary = records.wait_for(r"send callback of node 'a' raised (\d+) more times")
        with records.cond:
            index = records.records.index(summary)
            before = [r for r in records.records[:index] if "send callback" in r.getMessage()]
    assert len(before) == 3, [r.getMessage() for r in before]
    assert all(r.exc_info is not None for r in before), "the first ones are logged in full"
    assert int(re.findall(r"raised (\d+) more", summary.getMessage())[0]) > 0


def test_a_node_whose_save_fails_ends_its_stream_with_the_error_and_then_is_closed(
    tmp_path: "os.PathLike[str]", records: Records
) -> None:
    """Defect: a failed save stopped the node silently (the iterator just ended, later calls
    raised StorageError). Now the last change names no leader, the iterator raises the
    StorageError, the logger says why, status says stopped, and later calls raise ClosedError."""
    state_dir = os.path.join(tmp_path, "state")
    os.mkdir(state_dir)
    node = Node("a", lambda to, data: None, peers=["b"], min_nodes=2, election_timeout_ms=60_000,
                state_path=os.path.join(state_dir, "a.state"))
    shutil.rmtree(state_dir)  # the next save (of a higher term) cannot be written

    async def follow() -> List[LeaderChange]:
        seen: List[LeaderChange] = []
        async for change in node.leader_changes():
            seen.append(change)
            if len(seen) == 1:
                node.receive(heartbeat(5, "b"))
        return seen

    with pytest.raises(almost_raft.StorageError) as raised:
        asyncio.run(asyncio.wait_for(follow(), GUARD))
    assert "a.state" in str(raised.value)
    assert node.failure is raised.value
    records.wait_for(r"the node stops error=.*a\.state")  # the core's log, once
    status = node.status()
    assert status.stopped and status.leader is None and not node.is_leader
    with pytest.raises(almost_raft.ClosedError):
        node.receive(heartbeat(6, "b"))
    with pytest.raises(almost_raft.ClosedError) as waited:
        node.wait_for_leader(GUARD)
    assert waited.value.__cause__ is raised.value
    node.close()
