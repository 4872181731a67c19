"""The Node: a thin Python face over the native node, with its callbacks run on a Python
thread so that the election never waits for the GIL."""

from __future__ import annotations

import _thread
import asyncio
import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from types import TracebackType
from typing import AsyncGenerator, AsyncIterator, Callable, Iterable, List, Mapping, Optional, Tuple, Type, Union, cast

from . import _native
from ._errors import ClosedError, ConfigError, Error
from ._ratelimit import PERIOD, RateLimit
from ._types import LeaderChange, Role, Status

logger = logging.getLogger("almost_raft")

SendCallback = Callable[[str, bytes], None]
"""Called with (peer id, bytes): hand the bytes to your network; do not block for long."""
LeaderCallback = Callable[[LeaderChange], None]
"""Called with each change of the leader this node knows."""

_POLL_MS = 100
_open_nodes: "weakref.WeakSet[Node]" = weakref.WeakSet()
_exiting = threading.Event()
_log_lock = threading.Lock()
_log_thread: Optional[threading.Thread] = None


def _check_type(name: str, value: object, kind: type) -> None:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{name} must be {kind.__name__}, not {type(value).__name__}")


def _check_count(name: str, value: object, minimum: int) -> int:
    _check_type(name, value, int)
    assert isinstance(value, int)
    if value < minimum:
        raise ConfigError(f"invalid config: {name}: must be at least {minimum}, got {value}", "INVALID_CONFIG")
    return value


def _key_list(keys: Iterable[Union[bytes, bytearray]]) -> List[bytes]:
    """The keys as a list of bytes; a single key or a wrong type raises TypeError."""
    if isinstance(keys, (str, bytes, bytearray)):
        raise TypeError("keys must be an iterable of bytes (one per key), not a single value")
    key_list = [bytes(k) if isinstance(k, (bytes, bytearray)) else k for k in keys]
    for key in key_list:
        _check_type("each key", key, bytes)
    return key_list


class Node:
    """One node of an election.

    ``send(peer_id, data)`` must hand ``data`` to the peer, whose application passes it to
    its node's :meth:`receive`. ``on_leader_change(change)`` hears every change of leader.
    Both run on a thread of this node, one at a time, in order; an exception they raise is
    logged on the ``almost_raft`` logger (at most 3 tracebacks a second per callback, then a
    count) and the node goes on. A ``KeyboardInterrupt`` they raise is passed on to the main
    thread (as if Ctrl-C was pressed); a ``SystemExit`` is logged, since a callback cannot
    end the interpreter. If this thread falls behind, at most 1024 sends and 64 leader
    changes wait for it: the oldest sends are dropped, the oldest changes skipped (the latest
    is always delivered), and a warning says how many. With ``loop=`` an asyncio event loop,
    both callbacks run on that loop instead (scheduled with ``call_soon_threadsafe``), so
    they may use asyncio directly.

    With ``listen="host:port"`` and ``peers`` a mapping of ids to ``"host:port"``, the node
    runs on the built-in UDP transport instead of ``send`` and :meth:`receive`: the election
    then runs entirely on the library's threads, whatever the application's threads and the
    GIL do. Hostnames are looked up again every 30 s and after a failed send.

    ``keys`` (bytes, 16 to 64 each; the first signs, every one verifies) or ``key_file`` (hex
    keys, one per line, not readable by every user) give the cluster a keyring: the node then
    sends only signed messages and :meth:`receive` refuses anything unsigned, forged or
    tampered with (:class:`UnauthenticatedError`, counted in ``status().unauthenticated``).

    The defaults are those of every almost-raft binding: election timeout 1000 ms (drawn
    from [T, 2T)), heartbeat 100 ms, message timeout 100 ms, ``min_nodes`` 3 (counting this
    node), no ``max_nodes``, pre-vote and check-quorum on, no state file (the term and vote
    live in memory: give ``state_path`` so that a restarted node cannot vote twice in a term).

    Close it with :meth:`close` (or ``await`` :meth:`aclose`), or use it as a context
    manager (``with``, ``async with``); a leader hands leadership over as it closes. A node that is no longer referenced keeps running until closed; open
    nodes are closed when the interpreter exits.
    """

    def __init__(
        self,
        id: str,
        send: Optional[SendCallback] = None,
        *,
        peers: Union[Iterable[str], Mapping[str, str]] = (),
        listen: Optional[str] = None,
        on_leader_change: Optional[LeaderCallback] = None,
        election_timeout_ms: int = _native.DEFAULT_ELECTION_TIMEOUT_MS,
        heartbeat_interval_ms: int = _native.DEFAULT_HEARTBEAT_INTERVAL_MS,
        message_timeout_ms: int = _native.DEFAULT_MESSAGE_TIMEOUT_MS,
        min_nodes: int = _native.DEFAULT_MIN_NODES,
        max_nodes: Optional[int] = None,
        pre_vote: bool = _native.DEFAULT_PRE_VOTE,
        check_quorum: bool = _native.DEFAULT_CHECK_QUORUM,
        state_path: Union[str, "os.PathLike[str]", None] = None,
        cluster: str = "",
        loop: Optional[asyncio.AbstractEventLoop] = None,
        keys: Iterable[Union[bytes, bytearray]] = (),
        key_file: Union[str, "os.PathLike[str]", None] = None,
        drift_bound_ppm: int = _native.DEFAULT_DRIFT_BOUND_PPM,
        lease_margin_ms: Optional[int] = None,
    ) -> None:
        _check_type("id", id, str)
        if listen is not None:
            _check_type("listen", listen, str)
            if send is not None:
                raise TypeError("give send or listen, not both: with listen the node has its own UDP transport")
            if not isinstance(peers, Mapping):
                raise TypeError("with listen, peers must map each peer's id to its address, e.g. {'b': 'host:7001'}")
        elif not callable(send):
            raise TypeError(f"send must be callable (or give listen for the built-in UDP transport), not {type(send).__name__}")
        if on_leader_change is not None and not callable(on_leader_change):
            raise TypeError(f"on_leader_change must be callable, not {type(on_leader_change).__name__}")
        if isinstance(peers, (str, bytes)):
            raise TypeError("peers must be an iterable of str, not a single string")
        addresses = [(p, a) for p, a in peers.items()] if isinstance(peers, Mapping) else []
        peer_list = list(peers)
        for peer in peer_list:
            _check_type("each peer", peer, str)
        for _, address in addresses:
            _check_type("each peer's address", address, str)
        timeouts = [
            _check_count(name, value, 1)
            for name, value in (
                ("election_timeout_ms", election_timeout_ms),
                ("heartbeat_interval_ms", heartbeat_interval_ms),
                ("message_timeout_ms", message_timeout_ms),
            )
        ]
        min_count = _check_count("min_nodes", min_nodes, 1)
        drift = _check_count("drift_bound_ppm", drift_bound_ppm, 0)
        margin = None if lease_margin_ms is None else _check_count("lease_margin_ms", lease_margin_ms, 0)
        max_count = None if max_nodes is None else _check_count("max_nodes", max_nodes, 1)
        _check_type("pre_vote", pre_vote, bool)
        _check_type("check_quorum", check_quorum, bool)
        _check_type("cluster", cluster, str)
        key_list = _key_list(keys)
        key_path = None if key_file is None else os.fspath(key_file)
        if key_path is not None:
            _check_type("key_file", key_path, str)
        if loop is not None and not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(f"loop must be an asyncio event loop, not {type(loop).__name__}")
        path = None if state_path is None else os.fspath(state_path)
        if path is not None:
            _check_type("state_path", path, str)

        self._id = id
        self._send = send
        self._on_leader_change = on_leader_change
        self._loop = loop
        self._lock = threading.Condition()
        self._current = LeaderChange(None, 0)
        self._subscribers: List[Tuple[asyncio.AbstractEventLoop, "asyncio.Queue[Optional[LeaderChange]]"]] = []
        self._stream_ended = False
        self._lease: Optional[int] = None  # the term whose lease this node holds, if any
        self._lease_waiters: List[Callable[[], None]] = []  # told of every lease change
        self._failure: Optional[Error] = None
        self._closed = False
        self._native = _native.NativeNode(
            id, peer_list, timeouts[0], timeouts[1], timeouts[2], min_count, max_count, pre_vote, check_quorum, path, cluster,
            key_list, key_path, listen, addresses, drift, margin,
        )
        self._thread = threading.Thread(target=self._run_callbacks, name=f"almost-raft-{id}", daemon=True)
        self._thread.start()
        _open_nodes.add(self)
        _start_log_thread()

    def __repr__(self) -> str:
        return f"<almost_raft.Node {self._id!r}{' closed' if self._closed else ''}>"

    @property
    def id(self) -> str:
        return self._id

    def receive(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Hands the node a message its network received. Raises :class:`MessageError` for
        malformed bytes or another cluster's message, :class:`PeerError` for an unknown
        sender; the node goes on either way."""
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        elif not isinstance(data, bytes):
            raise TypeError(f"data must be bytes, bytearray or memoryview, not {type(data).__name__}")
        self._native.receive(data)

    def add_peer(self, id: str) -> None:
        """Adds a voter; adding a known peer again does nothing."""
        _check_type("id", id, str)
        self._native.add_peer(id)

    def remove_peer(self, id: str) -> None:
        """Removes a voter; removing this node's own id stops it."""
        _check_type("id", id, str)
        self._native.remove_peer(id)

    def peer_unreachable(self, id: str) -> None:
        """Reports that peer ``id``'s process is gone, on evidence from its host (a connection
        its kernel reset or refused, a supervisor's exit notice); never on mere silence. A
        follower of that peer campaigns at once instead of waiting for its election timeout.
        False evidence at a minority changes no term and never breaks the lease. Needs
        pre-vote (without it: no effect). Raises ``PeerError`` for an unknown id."""
        _check_type("id", id, str)
        self._native.peer_unreachable(id)

    def set_keys(self, keys: Iterable[Union[bytes, bytearray]]) -> None:
        """Rotates the cluster's keys on this running node (started with ``keys`` or
        ``key_file``): the first signs, every one verifies. Rotate one node at a time: the new
        key second on every node, then first, then alone."""
        self._native.set_keys(_key_list(keys))

    def transfer_leadership(self, to: Optional[str] = None) -> str:
        """Hands leadership to ``to``, or to the most responsive peer; returns the peer chosen.
        Raises :class:`NotLeaderError` on any node but the leader."""
        if to is not None:
            _check_type("to", to, str)
        return self._native.transfer_leadership(to)

    def status(self) -> Status:
        role, term, leader, peers, voted_for, waiting, stopped, id, since_ms, refused, lease_ms = self._native.status()
        return Status(Role(role), term, leader, tuple(peers), voted_for, waiting, stopped, id, since_ms, refused, lease_ms)

    @property
    def is_leader(self) -> bool:
        return self.status().role is Role.LEADER

    @property
    def leader(self) -> Optional[str]:
        return self.status().leader

    @property
    def term(self) -> int:
        return self.status().term

    def wait_for_leader(self, timeout: Optional[float] = None) -> LeaderChange:
        """Blocks until a leader is known (as delivered to callbacks); returns it.
        Raises TimeoutError after ``timeout`` seconds, and :class:`ClosedError` if the node is
        closed (or stops) first."""
        with self._lock:
            known = lambda: self._closed or self._stream_ended or self._current.leader is not None  # noqa: E731
            if not self._lock.wait_for(known, timeout):
                raise TimeoutError(f"no leader known by {self._id} within {timeout} s")
            if self._closed or self._current.leader is None:
                raise ClosedError(
                    f"node {self._id!r} was closed (or stopped) before a leader was known", "CLOSED"
                ) from self._failure
            return self._current

    @property
    def failure(self) -> Optional[Error]:
        """Why the node stopped by itself (a :class:`StorageError` when its state file could
        not be written, an :class:`InternalError`), once it has; None otherwise."""
        with self._lock:
            return self._failure

    async def leader_changes(self) -> AsyncGenerator[LeaderChange, None]:
        """Every leader change, in order, starting with the current state; nothing is lost.
        Ends when the node is closed or removed from its cluster; when it stops by itself
        (its state file cannot be written), the last change names no leader and the iterator
        then raises the error that stopped it."""
        loop = asyncio.get_running_loop()
        queue: "asyncio.Queue[Optional[LeaderChange]]" = asyncio.Queue()
        entry = (loop, queue)
        with self._lock:
            if self._closed:
                raise ClosedError(f"node {self._id!r} is closed", "CLOSED")
            queue.put_nowait(self._current)
            if self._stream_ended:
                queue.put_nowait(None)
            else:
                self._subscribers.append(entry)
        try:
            while True:
                change = await queue.get()
                if change is None:
                    with self._lock:
                        failure = self._failure
                    if failure is not None:
                        raise failure
                    return
                yield change
        finally:
            with self._lock:
                if entry in self._subscribers:
                    self._subscribers.remove(entry)

    @contextlib.asynccontextmanager
    async def leadership(self) -> AsyncIterator[int]:
        """``async with node.leadership() as term:`` waits until this node leads with a lease,
        then runs the body with the term (the fencing token), and cancels the body when the
        lease ends: ``lease_margin_ms`` before no other node can be elected, also when no
        message arrives. A body cut short ends the ``async with`` normally; one that finishes
        in time ends it as usual. Raises :class:`ClosedError` if the node stops first. The
        body must await now and then: cancellation reaches it only at an ``await``."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()
        task = asyncio.current_task()
        assert task is not None
        held: Optional[int] = None
        lost = False

        def wake() -> None:  # on the callback thread
            try:
                loop.call_soon_threadsafe(on_change)
            except RuntimeError:  # the loop is closed
                pass

        def on_change() -> None:  # on the event loop
            nonlocal lost
            changed.set()
            if held is not None and self._lease != held and not lost:
                lost = True
                task.cancel()

        with self._lock:
            self._lease_waiters.append(wake)
        try:
            while True:
                with self._lock:
                    if self._stream_ended or self._closed:
                        raise ClosedError(f"node {self._id!r} is closed", "CLOSED")
                    held = self._lease
                if held is not None:
                    break
                changed.clear()
                await changed.wait()
            try:
                yield held
            except asyncio.CancelledError:
                if not lost:
                    raise
                task.uncancel()  # our cancellation, not the caller's: the block ends normally
        finally:
            with self._lock:
                self._lease_waiters.remove(wake)

    def close(self) -> None:
        """Stops the node; a leader hands leadership over first. Waits until its callbacks
        are done (except when called from one of them). Calling it again does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._lock.notify_all()
        self._native.close()
        if threading.current_thread() is not self._thread:
            self._thread.join()
        _open_nodes.discard(self)

    async def aclose(self) -> None:
        """:meth:`close` for asyncio: waits for the node to stop without blocking the event
        loop."""
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    async def __aenter__(self) -> "Node":
        return self

    async def __aexit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        await self.aclose()

    def __enter__(self) -> "Node":
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()

    def _run_callbacks(self) -> None:
        native = self._native
        limit = RateLimit(self._report_suppressed)
        checked = 0.0
        while True:
            item = native.next_callback(_POLL_MS)
            now = time.monotonic()
            if now - checked >= PERIOD:  # at most one warning a second about the backlog
                checked = now
                self._report_dropped()
            limit.flush()
            if item is None:
                continue
            if item[0] == "closed":
                break
            if item[0] == "stopped":
                self._stopped(cast(Tuple[str, Optional[Error]], item)[1])
                continue
            if item[0] == "lease":
                _, held, term = cast(Tuple[str, bool, int], item)
                self._lease_changed(term if held else None)
                continue
            if item[0] == "send":
                _, to, data = cast(Tuple[str, str, bytes], item)
                if self._send is not None:  # None on the built-in transport, which sends itself
                    self._call(limit, "send", self._send, to, data)
            else:
                _, leader, term = cast(Tuple[str, Optional[str], int], item)
                self._deliver(limit, LeaderChange(leader, term))
        self._report_dropped()
        limit.flush(force=True)
        self._lease_changed(None)
        with self._lock:
            self._stream_ended = True
            self._notify(None)
            self._lock.notify_all()

    def _lease_changed(self, term: Optional[int]) -> None:
        with self._lock:
            self._lease = term
            waiters = list(self._lease_waiters)
        for wake in waiters:
            wake()

    def _stopped(self, failure: Optional[Error]) -> None:
        # The core has logged it already (through the almost_raft logger).
        with self._lock:
            self._failure = failure

    def _deliver(self, limit: RateLimit, change: LeaderChange) -> None:
        with self._lock:
            self._current = change
            self._notify(change)
            self._lock.notify_all()
        if self._on_leader_change is not None:
            self._call(limit, "on_leader_change", self._on_leader_change, change)

    def _report_dropped(self) -> None:
        sends, changes = self._native.take_dropped()
        if sends or changes:
            logger.warning(
                "the callback thread of node %r fell behind: dropped %d stale sends (at most %d wait) and "
                "skipped %d leader changes (at most %d wait; the latest is always delivered)",
                self._id, sends, _native.MAX_QUEUED_SENDS, changes, _native.MAX_QUEUED_CHANGES,
            )

    def _report_suppressed(self, kind: str, count: int) -> None:
        logger.error("the %s callback of node %r raised %d more times in the last seconds (tracebacks suppressed)", kind, self._id, count)

    def _notify(self, change: Optional[LeaderChange]) -> None:
        for entry in list(self._subscribers):
            loop, queue = entry
            try:
                loop.call_soon_threadsafe(queue.put_nowait, change)
            except RuntimeError:  # that event loop is closed
                self._subscribers.remove(entry)

    def _call(self, limit: RateLimit, kind: str, callback: Callable[..., None], *args: object) -> None:
        if self._loop is None:
            return self._call_now(limit, kind, callback, *args)
        try:
            self._loop.call_soon_threadsafe(self._call_now, limit, kind, callback, *args)
        except RuntimeError:  # the loop is closed: nothing can run there any more
            if limit.allow("loop"):
                logger.error("the event loop of node %r is closed: its %s callback was not called", self._id, kind)

    def _call_now(self, limit: RateLimit, kind: str, callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except KeyboardInterrupt:
            logger.warning("the %s callback of node %r raised KeyboardInterrupt: passed on to the main thread", kind, self._id)
            _thread.interrupt_main()
        except BaseException as e:  # SystemExit too: this thread must go on calling back
            if limit.allow(kind):
                what = "SystemExit, which a callback cannot use to exit" if isinstance(e, SystemExit) else "an exception"
                logger.error("the %s callback %r of node %r raised %s; the node goes on", kind, callback, self._id, what, exc_info=True)


def _start_log_thread() -> None:
    global _log_thread
    with _log_lock:
        if _log_thread is None:
            _log_thread = threading.Thread(target=_forward_logs, name="almost-raft-logs", daemon=True)
            _log_thread.start()


def _forward_logs() -> None:
    """Logs the core's tracing records on the ``almost_raft`` logger."""
    while not _exiting.is_set():
        record = _native.next_log(_POLL_MS)
        if record is not None:
            level, message = record
            logger.log(level, message)


@atexit.register
def _close_open_nodes() -> None:
    """Closes nodes left open, so that interpreter exit neither hangs nor leaves a thread
    inside native code."""
    for node in list(_open_nodes):
        try:
            node.close()
        except Exception:
            logger.exception("closing %r at exit failed", node)
    _exiting.set()
    if _log_thread is not None:
        _log_thread.join(timeout=1)
