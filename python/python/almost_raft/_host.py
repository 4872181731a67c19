"""The Host: many election groups over one transport and one state file, a thin Python face
over the native host. Its callbacks run on a thread of the host, never in the election."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Callable, Iterable, Mapping, Optional, Sequence, Type, Union

from . import _native
from ._errors import ClosedError
from ._node import _check_count, _check_type, _key_list
from ._types import Role

logger = logging.getLogger("almost_raft")

_POLL_MS = 100


@dataclass(frozen=True)
class GroupEvent:
    """Something happened to a group on this host. ``kind`` is ``"leader"`` (its leader
    changed: ``leader``, ``None`` when none is known, and ``term``, the fencing token),
    ``"lease"`` (this host gained, ``held``, or lost the group's lease of ``term``) or
    ``"stopped"`` (the group stopped here). One ordered stream for all groups."""

    group: str
    kind: str
    leader: Optional[str] = None
    term: int = 0
    held: Optional[bool] = None


@dataclass(frozen=True)
class GroupStatus:
    """What this host knows of one group."""

    role: Role
    term: int
    leader: Optional[str]
    lease_remaining_ms: Optional[float]


@dataclass(frozen=True)
class HostStats:
    groups: int
    leading: int
    quiet: int
    """Groups whose heartbeats ride on one heartbeat per pair of hosts (nothing runs per group)."""


class Host:
    """Many election groups in one process: one host of each group, with one transport and
    one state file (``state_path``: every group's term and vote, one fsync per batch).

    ``send(host_id, data)`` must hand ``data`` to that host, whose application passes it to
    its :meth:`receive`; or give ``listen="ip:port"`` and ``peers`` a mapping of host ids to
    addresses for the built-in UDP transport. ``on_event(event)`` hears every
    :class:`GroupEvent`. Both run on a thread of this host, one at a time, in order; an
    exception they raise is logged. Groups whose leader is stable cost nothing per group: one
    heartbeat per pair of hosts stands for all of them.

    Close it with :meth:`close` or use it as a context manager: every group it leads is
    handed over first.
    """

    def __init__(
        self,
        id: str,
        send: Optional[Callable[[str, bytes], None]] = None,
        *,
        on_event: Optional[Callable[[GroupEvent], None]] = None,
        listen: Optional[str] = None,
        peers: Optional[Mapping[str, str]] = None,
        election_timeout_ms: int = _native.DEFAULT_ELECTION_TIMEOUT_MS,
        heartbeat_interval_ms: int = _native.DEFAULT_HEARTBEAT_INTERVAL_MS,
        pre_vote: bool = _native.DEFAULT_PRE_VOTE,
        check_quorum: bool = _native.DEFAULT_CHECK_QUORUM,
        state_path: Union[str, "os.PathLike[str]", None] = None,
        cluster: str = "",
        keys: Iterable[Union[bytes, bytearray]] = (),
        drift_bound_ppm: int = _native.DEFAULT_DRIFT_BOUND_PPM,
    ) -> None:
        _check_type("id", id, str)
        if listen is not None:
            _check_type("listen", listen, str)
            if send is not None:
                raise TypeError("give send or listen, not both: with listen the host has its own UDP transport")
            if not isinstance(peers, Mapping):
                raise TypeError("with listen, peers must map each host's id to its address")
        elif not callable(send):
            raise TypeError(f"send must be callable (or give listen), not {type(send).__name__}")
        if on_event is not None and not callable(on_event):
            raise TypeError(f"on_event must be callable, not {type(on_event).__name__}")
        _check_type("cluster", cluster, str)
        _check_type("pre_vote", pre_vote, bool)
        _check_type("check_quorum", check_quorum, bool)
        addresses = [(h, a) for h, a in (peers or {}).items()]
        self._id = id
        self._send = send
        self._on_event = on_event
        self._native = _native.NativeHost(
            id,
            _check_count("election_timeout_ms", election_timeout_ms, 1),
            _check_count("heartbeat_interval_ms", heartbeat_interval_ms, 1),
            pre_vote,
            check_quorum,
            None if state_path is None else os.fspath(state_path),
            cluster,
            _key_list(keys),
            listen,
            addresses,
            _check_count("drift_bound_ppm", drift_bound_ppm, 0),
        )
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run_callbacks, name=f"almost-raft-host-{id}", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"Host({self._id!r})"

    @property
    def id(self) -> str:
        return self._id

    def add_group(self, group: str, voters: Sequence[str], preferred: Optional[str] = None) -> None:
        """Hosts ``group`` here; ``voters`` are its hosts, this one among them, ``preferred``
        the host that should lead it whenever it answers."""
        _check_type("group", group, str)
        if isinstance(voters, (str, bytes)):
            raise TypeError("voters must be a sequence of host ids, not a single string")
        voter_list = list(voters)
        for v in voter_list:
            _check_type("each voter", v, str)
        if preferred is not None:
            _check_type("preferred", preferred, str)
        self._native.add_group(group, voter_list, preferred)

    def remove_group(self, group: str) -> None:
        _check_type("group", group, str)
        self._native.remove_group(group)

    def receive(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Hands the host a datagram another host sent; refused ones raise (the host goes on)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        self._native.receive(bytes(data))

    def transfer_leadership(self, group: str, to: Optional[str] = None) -> str:
        _check_type("group", group, str)
        if to is not None:
            _check_type("to", to, str)
        return self._native.transfer_leadership(group, to)

    def status(self, group: str) -> GroupStatus:
        _check_type("group", group, str)
        role, term, leader, lease = self._native.status(group)
        return GroupStatus(Role(role), term, leader, lease)

    def stats(self) -> HostStats:
        return HostStats(*self._native.stats())

    def close(self) -> None:
        """Hands every group this host leads over, stops, and waits for the last callback
        (unless called from one of them)."""
        self._native.close()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def __enter__(self) -> "Host":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def _run_callbacks(self) -> None:
        while True:
            item = self._native.next_callback(_POLL_MS)
            if item is None:
                continue
            kind = item[0]
            if kind == "closed":
                self._closed.set()
                return
            try:
                if kind == "send":
                    if self._send is not None:
                        self._send(item[1], item[2])
                elif self._on_event is not None:
                    if kind == "leader":
                        event = GroupEvent(item[1], "leader", leader=item[2], term=item[3])
                    elif kind == "lease":
                        event = GroupEvent(item[1], "lease", held=item[2], term=item[3])
                    else:
                        event = GroupEvent(item[1], "stopped")
                    self._on_event(event)
            except Exception:
                logger.exception("almost_raft host %s: a callback raised", self._id)


__all__ = ["ClosedError", "GroupEvent", "GroupStatus", "Host", "HostStats"]
