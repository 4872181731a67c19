"""A node on the library's own UDP transport: no socket code in the application.

    python builtin_node.py <id> <listen-host:port> <peer-id>@<host:port> [...]

e.g. python builtin_node.py a 127.0.0.1:7001 b@127.0.0.1:7002 c@127.0.0.1:7003, and the same
for b and c. With ALMOST_RAFT_KEY_FILE naming a key file (hex keys, one per line, readable by
its owner only) every message is signed, and unsigned or forged ones are refused.

Prints every leader change as a JSON line. Ctrl-C or SIGTERM closes the node; a leader hands
over first.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

import almost_raft


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        raise SystemExit(__doc__)
    peers = dict(spec.split("@", 1) for spec in argv[3:])
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with almost_raft.Node(
        argv[1], listen=argv[2], peers=peers, min_nodes=len(peers) + 1,
        election_timeout_ms=150, heartbeat_interval_ms=50,
        key_file=os.environ.get("ALMOST_RAFT_KEY_FILE"),
        on_leader_change=lambda c: print(json.dumps({"term": c.term, "leader": c.leader}), flush=True),
    ):
        stop.wait()  # the election runs on the library's threads meanwhile


if __name__ == "__main__":
    main(sys.argv)
