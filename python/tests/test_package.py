"""The package itself: the stub names what the native module has; exit with open nodes."""

from __future__ import annotations

import ast
import inspect
import pathlib
import subprocess
import sys
import textwrap
from typing import Dict, Set

import almost_raft
from almost_raft import _native


def stub_names() -> Dict[str, Set[str]]:
    stub = pathlib.Path(inspect.getfile(almost_raft)).parent / "_native.pyi"
    tree = ast.parse(stub.read_text())
    names: Dict[str, Set[str]] = {"": set()}
    for item in tree.body:
        if isinstance(item, ast.ClassDef):
            names[""].add(item.name)
            names[item.name] = {f.name for f in item.body if isinstance(f, ast.FunctionDef) and f.name != "__init__"}
        elif isinstance(item, ast.FunctionDef):
            names[""].add(item.name)
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and not item.target.id.startswith("_C"):
            names[""].add(item.target.id)
    return names


def test_the_stub_names_what_the_native_module_has() -> None:
    stub = stub_names()
    public = {n for n in dir(_native) if not n.startswith("__") or n == "__version__"}
    assert stub[""] == public
    for cls, methods in stub.items():
        if cls:
            runtime = {n for n in dir(getattr(_native, cls)) if not n.startswith("_")}
            assert methods == runtime, cls


def test_the_version_matches_the_package() -> None:
    assert almost_raft.__version__ == _native.__version__ and almost_raft.__version__.count(".") == 2


def test_interpreter_exit_with_open_nodes_completes() -> None:
    script = textwrap.dedent(
        """
        import almost_raft
        nodes = {}
        def send(to, data):
            peer = nodes.get(to)
            if peer is not None:
                peer.receive(data)
        for id in ("a", "b", "c"):
            nodes[id] = almost_raft.Node(id, send, peers=[p for p in "abc" if p != id],
                                         election_timeout_ms=150, heartbeat_interval_ms=50)
        nodes["a"].wait_for_leader(30)
        unreferenced = almost_raft.Node("d", send, min_nodes=1)  # never closed
        del unreferenced
        print("exiting with open nodes")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "exiting with open nodes" in result.stdout
