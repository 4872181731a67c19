#!/usr/bin/env python3
"""The hostile network of chaos.py --hostile, in two processes (one per network namespace):

    hostile.py capture PORT   in the hub namespace: prints every UDP datagram to PORT that
                              crosses the bridge, as "SRC_IP DST_IP HEX" lines;
    hostile.py inject PORT    in the attacker's namespace: sends each "DST_IP HEX" line read
                              from stdin to DST_IP:PORT.

chaos.py decides what to send: exact replays, a dead leader's heartbeats, unsigned copies,
tampered and forged messages.
"""

from __future__ import annotations

import socket
import sys

ETH_P_ALL = 0x0003


def capture(port: int) -> None:
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
    out = sys.stdout
    while True:
        frame = raw.recv(65535)
        if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
            continue  # not IPv4
        ip = frame[14:]
        header = (ip[0] & 0x0F) * 4
        if ip[9] != 17 or len(ip) < header + 8:
            continue  # not UDP
        udp = ip[header:]
        if int.from_bytes(udp[2:4], "big") != port:
            continue
        src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        out.write(f"{src} {dst} {udp[8:].hex()}\n")
        out.flush()


def inject(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for line in sys.stdin:
        dst, payload = line.split()
        try:
            sock.sendto(bytes.fromhex(payload), (dst, port))
        except OSError:
            pass  # a node that is down: the next one


if __name__ == "__main__":
    {"capture": capture, "inject": inject}[sys.argv[1]](int(sys.argv[2]))
