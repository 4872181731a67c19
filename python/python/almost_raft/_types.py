"""The values almost_raft hands out: roles, statuses and leader changes (all immutable)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional, Tuple


class Role(enum.Enum):
    """A node's part in the election."""

    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre_candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True)
class LeaderChange:
    """The leader a node knows (``None`` when it knows none) and the term, which never goes
    down: pass it as a fencing token to whatever the leader guards."""

    leader: Optional[str]
    term: int


@dataclass(frozen=True)
class Status:
    """What a node knows; it agrees with the last leader change delivered."""

    role: Role
    term: int
    leader: Optional[str]
    peers: Tuple[str, ...]
    voted_for: Optional[str]
    waiting_for_nodes: int
    """How many more nodes must be known before this node may campaign (``min_nodes``)."""
    stopped: bool
    """The node stopped: closed, removed from its cluster, or failed (see ``Node.failure``)."""
    id: str
    """This node's id."""
    since_leader_heard_ms: Optional[float]
    """How long ago the leader was last heard from, in ms (0 on the leader itself); ``None``
    when no leader is known."""
    unauthenticated: int
    """Messages refused because they were not signed under the node's keyring."""
    lease_remaining_ms: Optional[float]
    """How much of the leader lease is left, in ms: no other node can be elected before it
    ends. ``None`` unless this node leads and holds a lease."""
