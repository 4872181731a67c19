"""A real almost-raft node over asyncio UDP.

    python udp_node.py <id> <listen-host:port> <peer-id>@<host:port> [...]

e.g. in three terminals:

    python udp_node.py a 127.0.0.1:7001 b@127.0.0.1:7002 c@127.0.0.1:7003
    python udp_node.py b 127.0.0.1:7002 a@127.0.0.1:7001 c@127.0.0.1:7003
    python udp_node.py c 127.0.0.1:7003 a@127.0.0.1:7001 b@127.0.0.1:7002

Each prints every leader change as a JSON line. Ctrl-C stops a node; a leader hands over.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Dict, Optional, Tuple

import almost_raft

Address = Tuple[str, int]


def parse_address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return host, int(port)


class Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.node: Optional[almost_raft.Node] = None

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if self.node is not None:
            try:
                self.node.receive(data)
            except almost_raft.Error as e:  # malformed or foreign bytes: refused, go on
                print(f"refused {len(data)} bytes from {addr}: {e}", file=sys.stderr)


async def main(argv: list[str]) -> None:
    if len(argv) < 3:
        raise SystemExit(__doc__)
    me, listen = argv[1], parse_address(argv[2])
    peers: Dict[str, Address] = {}
    for spec in argv[3:]:
        id, _, address = spec.partition("@")
        peers[id] = parse_address(address)
    loop = asyncio.get_running_loop()
    receiver = Receiver()
    transport, _ = await loop.create_datagram_endpoint(lambda: receiver, local_addr=listen)

    def send(to: str, data: bytes) -> None:
        # Runs on the node's thread: hand the datagram to the event loop's thread.
        loop.call_soon_threadsafe(transport.sendto, data, peers[to])

    node = almost_raft.Node(
        me, send, peers=list(peers), election_timeout_ms=150, heartbeat_interval_ms=50, min_nodes=len(peers) + 1
    )
    receiver.node = node
    try:
        async for change in node.leader_changes():
            print(json.dumps({"term": change.term, "leader": change.leader}), flush=True)
    finally:
        node.close()
        transport.close()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv))
    except KeyboardInterrupt:
        pass
