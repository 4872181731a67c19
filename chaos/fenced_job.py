#!/usr/bin/env python3
"""The job the runner chaos (chaos/runners.py) runs under `almost-raft run`: it connects to the
shared resource (a Unix socket, reachable from every network namespace of the host), says
when it started (wall clock, taken first thing) with its node and term, then writes its term
every 20 ms until it is stopped. It never stops by itself; the resource sees its end when the
connection closes, however it dies.

Usage: fenced_job.py SOCKET (with ALMOST_RAFT_TERM and ALMOST_RAFT_LEADER in the environment).
"""

import time

STARTED = time.time()

import os  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402


def main() -> None:
    node, term = os.environ["ALMOST_RAFT_LEADER"], int(os.environ["ALMOST_RAFT_TERM"])
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(sys.argv[1])
    f = sock.makefile("rw")
    f.write(f"start {node} {term} {os.getpid()} {STARTED!r}\n")
    while True:
        f.write(f"write {term}\n")
        f.flush()
        if not f.readline():
            return
        time.sleep(0.02)


if __name__ == "__main__":
    main()
