#!/usr/bin/env python3
"""The hostile network of chaos.py --hostile, in two processes (one per network namespace):

    hostile.py capture PORT   in the hub namespace: prints every UDP datagram to PORT that
                              crosses the bridge, as "SRC_IP DST_IP HEX" lines;
    hostile.py inject PORT    in the attacker's namespace: sends each "DST_IP HEX" line read
                              from stdin to DST_IP:PORT.

    hostile.py spoof LEADER_IP FOLLOWER_IP PORT IFACE SECONDS
                              in the hub namespace: for SECONDS, resets the follower's
                              liveness connection to the leader (a forged RST that the
                              follower's kernel accepts) and answers the follower's redials
                              with forged refusals (RST+ACK), racing the leader's kernel: false
                              death evidence at one follower. Frames go out on IFACE, the
                              follower's port of the bridge. Prints "RESETS REFUSALS".

chaos.py decides what to send: exact replays, a dead leader's heartbeats, unsigned copies,
tampered and forged messages, and when to spoof.
"""

from __future__ import annotations

import socket
import struct
import sys
import time

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


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_frame(eth_dst: bytes, eth_src: bytes, src: bytes, dst: bytes, sport: int, dport: int,
              seq: int, ack: int, flags: int) -> bytes:
    """An Ethernet frame carrying an IPv4 TCP segment with no payload, checksums filled."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 0, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return eth_dst + eth_src + b"\x08\x00" + ip + tcp


SYN, RST, ACK = 0x02, 0x04, 0x10


def spoof(leader: str, follower: str, port: int, iface: str, seconds: float) -> None:
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
    raw.settimeout(0.05)
    out = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    out.bind((iface, 0))
    lead, foll = socket.inet_aton(leader), socket.inet_aton(follower)
    resets = refusals = 0
    last_reset: dict = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            frame = raw.recv(65535)
        except socket.timeout:
            continue
        if len(frame) < 54 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        header = (ip[0] & 0x0F) * 4
        if ip[9] != 6 or ip[12:16] != foll or ip[16:20] != lead:
            continue  # only TCP from the follower to the leader
        sport, dport, seq, ack, _, flags = struct.unpack("!HHIIBB", ip[header:header + 14])
        if dport != port:
            continue
        # The reply goes from the leader's MAC (the frame's destination) to the follower's.
        eth_dst, eth_src = frame[6:12], frame[0:6]
        if flags & SYN and not flags & ACK:
            out.send(tcp_frame(eth_dst, eth_src, lead, foll, port, sport, 0, (seq + 1) & 0xFFFFFFFF, RST | ACK))
            refusals += 1
        elif flags & ACK and time.monotonic() - last_reset.get(sport, 0.0) > 0.2:
            # The follower acknowledges up to `ack`: a RST with exactly that number is taken.
            out.send(tcp_frame(eth_dst, eth_src, lead, foll, port, sport, ack, 0, RST))
            last_reset[sport] = time.monotonic()
            resets += 1
    print(resets, refusals, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "spoof":
        spoof(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], float(sys.argv[6]))
    else:
        {"capture": capture, "inject": inject}[sys.argv[1]](int(sys.argv[2]))
