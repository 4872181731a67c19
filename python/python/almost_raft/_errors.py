"""The exceptions of almost_raft. Every one is an :class:`Error` and carries ``kind``, the
stable name of its error kind, the same in every language (``INVALID_CONFIG``, ...)."""

from __future__ import annotations


class Error(Exception):
    """Base class of every almost_raft error."""

    kind: str

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


class ConfigError(Error, ValueError):
    """A config value is invalid; the message names the key and says why."""


class InvalidIdError(Error, ValueError):
    """A node id is empty, longer than 255 bytes of UTF-8, or the node's own."""


class MessageError(Error, ValueError):
    """Received bytes were refused: malformed, from another cluster, or for another node."""


class PeerError(Error):
    """The peer is unknown, the cluster is full (max_nodes), or there is no peer to hand to."""


class NotLeaderError(Error):
    """Only the leader can do this."""


class StorageError(Error, OSError):
    """The state file could not be read or written, or is corrupt."""


class ClosedError(Error):
    """The node was closed, or stopped (removed from its cluster, or failed to save)."""


class UnauthenticatedError(MessageError):
    """Received bytes were refused because they are not signed under this node's keyring
    (unsigned, forged, tampered with, or signed with a key this node lacks)."""


class GroupError(Error, KeyError):
    """A host has no group of that id, or has one already."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InternalError(Error):
    """A bug in almost-raft (a panic inside it): the node stopped."""


_BY_KIND: dict[str, type[Error]] = {
    "INVALID_CONFIG": ConfigError,
    "INVALID_ID": InvalidIdError,
    "MALFORMED_MESSAGE": MessageError,
    "WRONG_CLUSTER": MessageError,
    "WRONG_RECIPIENT": MessageError,
    "UNKNOWN_PEER": PeerError,
    "TOO_MANY_NODES": PeerError,
    "NO_PEERS": PeerError,
    "NOT_LEADER": NotLeaderError,
    "STORAGE": StorageError,
    "CLOSED": ClosedError,
    "INTERNAL": InternalError,
    "UNAUTHENTICATED": UnauthenticatedError,
    "UNKNOWN_GROUP": GroupError,
    "GROUP_EXISTS": GroupError,
}


def exception_for(kind: str) -> type[Error]:
    """The exception class for an error kind (used by the native module)."""
    return _BY_KIND.get(kind, Error)
