"""The smoke test of an installed almost_raft: the version is the one expected, and a node of
a one-node cluster elects itself. Usage: smoke.py VERSION (run outside the source tree)."""

import sys

import almost_raft

assert almost_raft.__version__ == sys.argv[1], (almost_raft.__version__, sys.argv[1])
assert "site-packages" in almost_raft.__file__, almost_raft.__file__
with almost_raft.Node("w", lambda to, data: None, min_nodes=1, election_timeout_ms=150, heartbeat_interval_ms=50) as node:
    change = node.wait_for_leader(30)
    assert change.leader == "w" and node.is_leader, change
print(f"almost_raft {almost_raft.__version__} works in a fresh environment ({sys.version.split()[0]})")
