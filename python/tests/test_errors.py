"""Bad input raises the documented exceptions, each saying what was wrong."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

import almost_raft
from almost_raft import Node

from .conftest import Cluster

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "wire-vectors.json"


def noop(to: str, data: bytes) -> None:
    pass


def test_wrong_types_raise_type_error() -> None:
    bad: Any
    for bad in (1, None, b"id"):
        with pytest.raises(TypeError, match="id must be str"):
            Node(bad, noop)
    with pytest.raises(TypeError, match="send must be callable"):
        Node("a", "not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="peers"):
        Node("a", noop, peers="bc")
    with pytest.raises(TypeError, match="election_timeout_ms must be int"):
        Node("a", noop, election_timeout_ms=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pre_vote must be bool"):
        Node("a", noop, pre_vote=1)  # type: ignore[arg-type]
    with Node("a", noop, peers=["b"]) as node:
        with pytest.raises(TypeError, match="data must be bytes"):
            node.receive("text")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            node.add_peer(3)  # type: ignore[arg-type]


def test_bad_ids_raise_invalid_id_error() -> None:
    with pytest.raises(almost_raft.InvalidIdError, match="empty"):
        Node("", noop)
    with pytest.raises(almost_raft.InvalidIdError, match="256 bytes"):
        Node("x" * 256, noop)
    with Node("a", noop) as node:
        with pytest.raises(almost_raft.InvalidIdError) as info:
            node.add_peer("a")
        assert info.value.kind == "INVALID_ID" and isinstance(info.value, ValueError)
        with pytest.raises(almost_raft.InvalidIdError):
            node.add_peer("")


def test_bad_config_raises_config_error_naming_the_key() -> None:
    with pytest.raises(almost_raft.ConfigError, match="heartbeat_interval_ms"):
        Node("a", noop, heartbeat_interval_ms=900)
    with pytest.raises(almost_raft.ConfigError, match="election_timeout_ms"):
        Node("a", noop, election_timeout_ms=0)
    with pytest.raises(almost_raft.ConfigError, match="max_nodes"):
        Node("a", noop, min_nodes=3, max_nodes=2)
    with pytest.raises(ValueError):
        Node("a", noop, min_nodes=-1)
    with pytest.raises(almost_raft.PeerError, match="max_nodes"):
        Node("a", noop, peers=["b", "c"], min_nodes=1, max_nodes=2)


def test_malformed_and_foreign_messages_raise_message_error() -> None:
    vectors = json.loads(VECTORS.read_text())
    with Node("a", noop, peers=["b"]) as node:
        for vector in vectors["invalid"]:
            with pytest.raises(almost_raft.MessageError) as info:
                node.receive(bytes.fromhex(vector["hex"]))
            assert info.value.kind == "MALFORMED_MESSAGE", vector["name"]
        heartbeat = bytes.fromhex("03050000000000000000050001620161" + "0000000000000001")  # from b to a
        node.receive(heartbeat)
        node.receive(bytearray(heartbeat))
        node.receive(memoryview(heartbeat))
        with pytest.raises(almost_raft.MessageError, match="cluster"):
            node.receive(bytes.fromhex("030500000000000000000501780162" + "0161" + "0000000000000001"))
        with pytest.raises(almost_raft.PeerError, match="not a peer"):
            node.receive(bytes.fromhex("03050000000000000000050001780161" + "0000000000000001"))  # from x


def test_calls_after_close_raise_closed_error() -> None:
    node = Node("a", noop, peers=["b"])
    node.close()
    for call in (lambda: node.receive(b"\x01"), lambda: node.add_peer("c"), node.status, lambda: node.transfer_leadership()):
        with pytest.raises(almost_raft.ClosedError):
            call()
    node.close()


def test_a_corrupt_state_file_raises_storage_error_naming_the_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "state"
    path.write_bytes(b"not a state file")
    with pytest.raises(almost_raft.StorageError, match=str(path)) as info:
        Node("a", noop, state_path=path)
    assert "corrupt" in str(info.value)


def test_every_error_is_an_almost_raft_error() -> None:
    for cls in (
        almost_raft.ConfigError,
        almost_raft.InvalidIdError,
        almost_raft.MessageError,
        almost_raft.PeerError,
        almost_raft.NotLeaderError,
        almost_raft.StorageError,
        almost_raft.ClosedError,
    ):
        assert issubclass(cls, almost_raft.Error)


KEY = b"almost-raft test key, not secret"


def test_a_keyed_cluster_elects_and_refuses_unsigned_messages() -> None:
    """With `keys`, nodes sign everything; an unsigned (or forged) message raises
    UnauthenticatedError, is counted, and the node goes on."""
    c = Cluster(3, keys=[KEY])
    try:
        agreed = c.agreed()
        follower = next(n for id, n in c.nodes.items() if id != agreed.leader)
        with pytest.raises(almost_raft.UnauthenticatedError, match="not signed") as raised:
            follower.receive(bytes([3, 5, 0]) + (agreed.term + 5).to_bytes(8, "big") + b"\x00\x02p1\x02p2" + bytes(8))
        assert raised.value.kind == "UNAUTHENTICATED" and isinstance(raised.value, almost_raft.MessageError)
        assert follower.status().unauthenticated == 1
        assert c.agreed() == agreed
        # Rotation, one node at a time: the new key second, then first, then alone.
        new = b"another key of thirty-two bytes!"
        for keys in ([KEY, new], [new, KEY], [new]):
            for node in c.nodes.values():
                node.set_keys(keys)
        with pytest.raises(almost_raft.ConfigError, match="5 bytes"):
            follower.set_keys([b"short"])
    finally:
        c.close()


def test_bad_keys_raise_config_error_naming_the_option(tmp_path: pathlib.Path) -> None:
    with pytest.raises(almost_raft.ConfigError, match="keys: key 0 is 5 bytes"):
        Node("a", lambda to, data: None, keys=[b"short"])
    with pytest.raises(TypeError, match="keys must be an iterable of bytes"):
        Node("a", lambda to, data: None, keys=KEY)  # type: ignore[arg-type]
    readable = tmp_path / "key"
    readable.write_text(KEY.hex() + "\n")
    readable.chmod(0o644)
    with pytest.raises(almost_raft.ConfigError, match="key_file: .*every user.*chmod 600"):
        Node("a", lambda to, data: None, key_file=readable)
    readable.chmod(0o600)
    Node("a", lambda to, data: None, key_file=readable).close()
