#!/usr/bin/env python3
"""One election, four languages: a Rust node (almost-raft-node), a C node, a Python node and
a Node.js node over UDP on loopback. They must elect one leader known by all; killing the
leader's process must give a new leader, in a higher term, known by the three others.

Two rounds: "callbacks", where C, Python and Node.js bring their own sockets
(examples/c/udp_node.c, python/examples/udp_node.py, node/examples/udp_node.js) and the Rust
node uses the built-in transport; and "built-in, signed", where all four run on the library's
built-in UDP transport (examples/c/builtin_node.c, python/examples/builtin_node.py,
node/examples/builtin_node.js) with every message signed under one key file, which every
language reads. Run by `make test` after the binaries and packages are built."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Tuple

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
GUARD = 30.0  # seconds: a hang guard, not a timing assertion
BASE_PORT = 7460


def commands(base_port: int, key_file: Optional[str]) -> Dict[str, List[str]]:
    """With a key file, every node on the built-in transport; without, on the apps' sockets."""
    names = ["rust", "c", "python", "js"]
    addr = {n: f"127.0.0.1:{base_port + i}" for i, n in enumerate(names)}

    def peers(me: str) -> List[str]:
        return [f"{n}@{addr[n]}" for n in names if n != me]

    python = os.path.join(ROOT, "target", "py-venv", "bin", "python")
    example = "builtin_node" if key_file else "udp_node"
    return {
        "rust": [os.path.join(ROOT, "target", "debug", "almost-raft-node"), "--id", "rust", "--listen", addr["rust"]]
        + [arg for p in peers("rust") for arg in ("--peer", p)]
        + (["--key-file", key_file] if key_file else []),
        "c": [os.path.join(ROOT, "target", example), "c", addr["c"], *peers("c")],
        "python": [python, os.path.join(ROOT, "python", "examples", f"{example}.py"), "python", addr["python"], *peers("python")],
        "js": ["node", os.path.join(ROOT, "node", "examples", f"{example}.js"), "js", addr["js"], *peers("js")],
    }


class Watch:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.latest: Dict[str, Tuple[int, Optional[str]]] = {}
        self.leaders_of_term: Dict[int, set] = {}

    def read(self, name: str, proc: "subprocess.Popen[str]") -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.latest[name] = (int(event["term"]), event["leader"])
                if event["leader"] is not None:
                    self.leaders_of_term.setdefault(int(event["term"]), set()).add(event["leader"])
                self.cond.notify_all()

    def agreed(self, among: List[str], after: int) -> Optional[Tuple[int, str]]:
        with self.cond:
            def check() -> Optional[Tuple[int, str]]:
                values = [self.latest.get(n) for n in among]
                first = values[0]
                if first is None or first[1] is None or first[0] <= after:
                    return None
                return (first[0], first[1]) if all(v == first for v in values) else None

            return self.cond.wait_for(check, GUARD)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        key_file = os.path.join(tmp, "key")
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(b"almost-raft test key, not secret".hex() + "\n")  # docs/wire.md's test key
        for label, base_port, key in (("callbacks", BASE_PORT, None), ("built-in, signed", BASE_PORT + 10, key_file)):
            print(f"-- {label}")
            if run(base_port, key) != 0:
                return 1
    return 0


def run(base_port: int, key_file: Optional[str]) -> int:
    procs: Dict[str, "subprocess.Popen[str]"] = {}
    watch = Watch()
    env = dict(os.environ)
    if key_file:
        env["ALMOST_RAFT_KEY_FILE"] = key_file
    try:
        for name, cmd in commands(base_port, key_file).items():
            procs[name] = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
            threading.Thread(target=watch.read, args=(name, procs[name]), daemon=True).start()
        names = list(procs)
        first = watch.agreed(names, 0)
        if first is None:
            print(f"FAIL: no leader agreed by all four: {watch.latest}")
            return 1
        print(f"term {first[0]}: {first[1]} leads, known by {', '.join(names)}")
        killed_at = time.monotonic()
        procs[first[1]].send_signal(signal.SIGKILL)
        procs[first[1]].wait()
        rest = [n for n in names if n != first[1]]
        second = watch.agreed(rest, first[0])
        failover_ms = (time.monotonic() - killed_at) * 1000
        if second is None or second[1] == first[1]:
            print(f"FAIL: no new leader after killing {first[1]}: {watch.latest}")
            return 1
        print(f"killed {first[1]} (SIGKILL); term {second[0]}: {second[1]} leads, known by {', '.join(rest)}, "
              f"{failover_ms:.1f} ms after the kill")
        doubles = {t: l for t, l in watch.leaders_of_term.items() if len(l) > 1}
        if doubles:
            print(f"FAIL: two leaders in one term: {doubles}")
            return 1
        print("four languages: ok")
        return 0
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 5
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
