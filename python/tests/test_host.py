"""Hosts of many groups from Python: election, handover, bad input, close."""

import threading
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pytest

import almost_raft
from almost_raft import GroupError, GroupEvent, Host, MessageError, PeerError

GUARD_S = 60  # bounds a hang; nothing here waits on a clock
IDS = ["h1", "h2", "h3"]


class World:
    """Three hosts whose datagrams go straight to each other's receive; every leader event
    noted, waited on with a condition."""

    def __init__(self, groups: List[str]) -> None:
        self.cond = threading.Condition()
        self.leaders: Dict[str, Dict[str, Tuple[Optional[str], int]]] = {h: {} for h in IDS}
        self.hosts: Dict[str, Host] = {}
        for h in IDS:
            self.hosts[h] = Host(
                h,
                self._sender(h),
                on_event=self._on_event(h),
                election_timeout_ms=300,
                heartbeat_interval_ms=30,
                cluster="py-hosts",
            )
        for host in self.hosts.values():
            for g in groups:
                host.add_group(g, IDS)
        self.groups = groups

    def _sender(self, me: str) -> Callable[[str, bytes], None]:
        def send(to: str, data: bytes) -> None:
            host = self.hosts.get(to)
            if host is not None:
                try:
                    host.receive(data)
                except almost_raft.ClosedError:
                    pass

        return send

    def _on_event(self, me: str) -> Callable[[GroupEvent], None]:
        def on_event(e: GroupEvent) -> None:
            if e.kind == "leader":
                with self.cond:
                    self.leaders[me][e.group] = (e.leader, e.term)
                    self.cond.notify_all()

        return on_event

    def agreed(
        self,
        hosts: Sequence[str],
        check: Callable[[str, Tuple[Optional[str], int]], bool] = lambda g, view: True,
    ) -> Dict[str, Tuple[Optional[str], int]]:
        def done() -> bool:
            for g in self.groups:
                views = {self.leaders[h].get(g) for h in hosts}
                if len(views) != 1:
                    return False
                (view,) = views
                if view is None or view[0] is None or not check(g, view):
                    return False
            return True

        with self.cond:
            assert self.cond.wait_for(done, GUARD_S), "every group led and agreed within the guard"
            return {g: self.leaders[hosts[0]][g] for g in self.groups}


def test_three_hosts_elect_every_group_and_hand_one_over() -> None:
    world = World([f"g{i}" for i in range(30)])
    try:
        leaders = world.agreed(IDS)
        for g, (leader, term) in leaders.items():
            status = world.hosts["h2"].status(g)
            assert status.leader == leader and status.term >= term
        assert sum(world.hosts[h].stats().leading for h in IDS) == 30
        leader, term = leaders["g0"]
        assert leader is not None
        target = "h3" if leader != "h3" else "h1"
        assert world.hosts[leader].transfer_leadership("g0", target) == target
        world.agreed(IDS, lambda g, view: g != "g0" or (view[0] == target and view[1] == term + 1))
    finally:
        for h in world.hosts.values():
            h.close()


def test_bad_input_raises_the_right_error_and_changes_nothing() -> None:
    with Host("h1", lambda to, data: None, cluster="py-bad") as host:
        with pytest.raises(PeerError):
            host.add_group("g", ["h2", "h3"])
        with pytest.raises(TypeError):
            host.add_group("g", "h1")
        with pytest.raises(TypeError):
            host.add_group(3, IDS)  # type: ignore[arg-type]
        host.add_group("g", IDS)
        with pytest.raises(GroupError):
            host.add_group("g", IDS)
        with pytest.raises(GroupError):
            host.status("nope")
        with pytest.raises(MessageError):
            host.receive(b"\x05junk")
        with pytest.raises(TypeError):
            host.receive("text")  # type: ignore[arg-type]
        with pytest.raises(almost_raft.NotLeaderError):
            host.transfer_leadership("g")
        assert host.stats().groups == 1
    with pytest.raises(almost_raft.ClosedError):
        host.add_group("late", IDS)
    with pytest.raises(TypeError):
        Host("h1", None)
