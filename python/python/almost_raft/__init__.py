"""almost_raft: leader election as a library (Raft's election half), on one Rust core.

>>> from almost_raft import Node
>>> node = Node("a", send, peers=["b", "c"], on_leader_change=print)  # doctest: +SKIP
"""

import logging

from ._errors import (
    ClosedError,
    InternalError,
    ConfigError,
    Error,
    GroupError,
    InvalidIdError,
    MessageError,
    NotLeaderError,
    PeerError,
    StorageError,
    UnauthenticatedError,
)
from ._host import GroupEvent, GroupStatus, Host, HostStats
from ._native import __version__
from ._node import LeaderCallback, Node, SendCallback
from ._types import LeaderChange, Role, Status

__all__ = [
    "ClosedError",
    "InternalError",
    "ConfigError",
    "Error",
    "GroupError",
    "GroupEvent",
    "GroupStatus",
    "Host",
    "HostStats",
    "InvalidIdError",
    "LeaderCallback",
    "LeaderChange",
    "MessageError",
    "Node",
    "NotLeaderError",
    "PeerError",
    "Role",
    "SendCallback",
    "Status",
    "StorageError",
    "UnauthenticatedError",
    "__version__",
]

# A library logs, the application decides where logs go: nothing reaches stderr unless the
# application configures logging.
logging.getLogger("almost_raft").addHandler(logging.NullHandler())
