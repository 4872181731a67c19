# Hand-written stub of the native module; tests check it names what the module has.
from typing import Optional, Tuple, Union

__version__: str
MAX_QUEUED_SENDS: int
MAX_QUEUED_CHANGES: int
DEFAULT_ELECTION_TIMEOUT_MS: int
DEFAULT_HEARTBEAT_INTERVAL_MS: int
DEFAULT_MESSAGE_TIMEOUT_MS: int
DEFAULT_MIN_NODES: int
DEFAULT_PRE_VOTE: bool
DEFAULT_CHECK_QUORUM: bool
DEFAULT_DRIFT_BOUND_PPM: int

# ("send", to, bytes), ("leader", leader, term), ("stopped", error or None), ("closed",)
_Callback = Union[Tuple[str, str, bytes], Tuple[str, Optional[str], int], Tuple[str, bool, int], Tuple[str, Optional[Exception]], Tuple[str]]

class NativeNode:
    def __init__(
        self,
        id: str,
        peers: list[str],
        election_timeout_ms: int,
        heartbeat_interval_ms: int,
        message_timeout_ms: int,
        min_nodes: int,
        max_nodes: Optional[int],
        pre_vote: bool,
        check_quorum: bool,
        state_path: Optional[str],
        cluster: str,
        keys: list[bytes],
        key_file: Optional[str],
        listen: Optional[str],
        addresses: list[Tuple[str, str]],
        drift_bound_ppm: int,
        lease_margin_ms: Optional[int],
    ) -> None: ...
    def receive(self, data: bytes) -> None: ...
    def add_peer(self, id: str) -> None: ...
    def remove_peer(self, id: str) -> None: ...
    def peer_unreachable(self, id: str) -> None: ...
    def transfer_leadership(self, to: Optional[str] = None) -> str: ...
    def status(self) -> Tuple[str, int, Optional[str], list[str], Optional[str], int, bool, str, Optional[float], int, Optional[float]]: ...
    def is_closed(self) -> bool: ...
    def set_keys(self, keys: list[bytes]) -> None: ...
    def next_callback(self, timeout_ms: int) -> Optional[_Callback]: ...
    def take_dropped(self) -> Tuple[int, int]: ...
    def backlog(self) -> Tuple[int, int]: ...
    def close(self) -> None: ...

def next_log(timeout_ms: int) -> Optional[Tuple[int, str]]: ...

# ("send", to, bytes), ("leader", group, leader, term), ("lease", group, held, term),
# ("stopped", group), ("closed",)
_HostCallback = Union[Tuple[str, str, bytes], Tuple[str, str, Optional[str], int], Tuple[str, str, bool, int], Tuple[str, str], Tuple[str]]

class NativeHost:
    def __init__(
        self,
        id: str,
        election_timeout_ms: int,
        heartbeat_interval_ms: int,
        pre_vote: bool,
        check_quorum: bool,
        state_path: Optional[str],
        cluster: str,
        keys: list[bytes],
        listen: Optional[str],
        addresses: list[Tuple[str, str]],
        drift_bound_ppm: int,
    ) -> None: ...
    def add_group(self, group: str, voters: list[str], preferred: Optional[str] = None) -> None: ...
    def remove_group(self, group: str) -> None: ...
    def receive(self, data: bytes) -> None: ...
    def transfer_leadership(self, group: str, to: Optional[str] = None) -> str: ...
    def status(self, group: str) -> Tuple[str, int, Optional[str], Optional[float]]: ...
    def stats(self) -> Tuple[int, int, int]: ...
    def next_callback(self, timeout_ms: int) -> Optional[_HostCallback]: ...
    def take_dropped(self) -> int: ...
    def close(self) -> None: ...
