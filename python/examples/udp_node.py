"""A real almost-raft node over asyncio UDP.

    python udp_node.py <id> <listen-host:port> <peer-id>@<host:port> [...]

e.g. in three terminals:

    python udp_node.py a 127.0.0.1:7001 b@127.0.0.1:7002 c@127.0.0.1:7003
    python udp_node.py b 127.0.0.1:7002 a@127.0.0.1:7001 c@127.0.0.1:7003
    python udp_node.py c 127.0.0.1:7003 a@127.0.0.1:7001 b@127.0.0.1:7002

With ALMOST_RAFT_KEY_FILE naming a key file (hex keys, one per line, readable by its owner
only), every message is signed and unsigned or forged ones are refused.

Each prints every leader change as a JSON line. Ctrl-C or SIGTERM stops a node; a leader
first hands over, prints {"term": T, "leader": <itself>, "handover": <peer>}, and waits (up to
four election timeouts) to see the new leader before it exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Dict, Optional, Tuple

import almost_raft

Address = Tuple[str, int]
ELECTION_TIMEOUT_MS = 150


def parse_address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return host, int(port)


class Receiver(asyncio.DatagramProtocol):
    """Hands datagrams to the node; reports refused ones at most once a second."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.node: Optional[almost_raft.Node] = None
        self.loop = loop
        self.refused = 0  # not reported yet
        self.reporting = False

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if self.node is None:
            return
        try:
            self.node.receive(data)
        except almost_raft.Error as e:  # malformed or foreign bytes: refused, go on
            if not self.reporting:  # the first of a series in full, then a count a second
                print(f"refused {len(data)} bytes from {addr}: {e}", file=sys.stderr)
                self.reporting = True
                self.loop.call_later(1.0, self.report)
            else:
                self.refused += 1

    def report(self) -> None:
        if self.refused:
            print(f"refused {self.refused} more datagrams in the last second", file=sys.stderr)
            self.refused = 0
            self.loop.call_later(1.0, self.report)
        else:
            self.reporting = False


async def hand_over(node: almost_raft.Node) -> None:
    """On the leader: hand over, and wait (up to four election timeouts) for the new leader."""
    try:
        if not node.is_leader:
            return
        term = node.term
        to = node.transfer_leadership()
    except almost_raft.Error:  # not the leader any more, no peer heard from, or stopped
        return
    print(json.dumps({"term": term, "leader": node.id, "handover": to}), flush=True)

    async def new_leader() -> None:
        async for change in node.leader_changes():
            if change.term > term and change.leader is not None:
                return

    try:
        await asyncio.wait_for(new_leader(), 4 * ELECTION_TIMEOUT_MS / 1000)
    except asyncio.TimeoutError:
        pass  # close() still stops the node; the others elect after a timeout


async def main(argv: list[str]) -> None:
    if len(argv) < 3:
        raise SystemExit(__doc__)
    me, listen = argv[1], parse_address(argv[2])
    peers: Dict[str, Address] = {}
    for spec in argv[3:]:
        id, _, address = spec.partition("@")
        peers[id] = parse_address(address)
    loop = asyncio.get_running_loop()
    receiver = Receiver(loop)
    transport, _ = await loop.create_datagram_endpoint(lambda: receiver, local_addr=listen)

    def send(to: str, data: bytes) -> None:
        # Runs on the node's thread: hand the datagram to the event loop's thread.
        loop.call_soon_threadsafe(transport.sendto, data, peers[to])

    node = almost_raft.Node(
        me, send, peers=list(peers), election_timeout_ms=ELECTION_TIMEOUT_MS, heartbeat_interval_ms=50,
        min_nodes=len(peers) + 1, key_file=os.environ.get("ALMOST_RAFT_KEY_FILE"),
    )
    receiver.node = node
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # systemd, Docker and Kubernetes send SIGTERM
        loop.add_signal_handler(sig, stop.set)

    async def print_changes() -> None:
        async for change in node.leader_changes():
            print(json.dumps({"term": change.term, "leader": change.leader}), flush=True)

    printer = asyncio.ensure_future(print_changes())
    try:
        await asyncio.wait([printer, asyncio.ensure_future(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            await hand_over(node)
    finally:
        node.close()  # a leader that did not hand over yet does now
        await printer  # ends once the node is closed, after its last change
        await asyncio.sleep(0)  # let the datagrams the node handed over leave
        transport.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv))
