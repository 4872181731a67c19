#!/usr/bin/env bash
# The Python package's tests, on a fresh machine: a new virtual environment, `pip install
# ./python`, pytest, mypy --strict, and a wheel built by maturin installed into a second fresh
# environment. Called by `make test`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
venv="$root/target/py-venv"
python3 -m venv --clear "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "maturin==1.16.0" "pytest==8.4.2" "mypy==1.18.2"
start=$(date +%s)
"$venv/bin/pip" install -q ./python
echo "pip install ./python took $(( $(date +%s) - start )) s"
"$venv/bin/python" -m pytest -q python/tests
"$venv/bin/python" -m mypy --strict python/examples python/tests

# A release wheel, installed into another fresh environment, works there.
rm -rf target/wheels
"$venv/bin/maturin" build -q --release -m python/Cargo.toml -o target/wheels
wheel="$(ls target/wheels/almost_raft-*.whl)"
echo "wheel: $(basename "$wheel")"
fresh="$root/target/py-wheel-venv"
python3 -m venv --clear "$fresh"
"$fresh/bin/pip" install -q "$wheel"
(cd /tmp && "$fresh/bin/python" - <<'PY'
import almost_raft
with almost_raft.Node("w", lambda to, data: None, min_nodes=1, election_timeout_ms=150, heartbeat_interval_ms=50) as node:
    change = node.wait_for_leader(30)
    assert change.leader == "w" and node.is_leader, change
print("the wheel works in a fresh environment:", almost_raft.__version__)
PY
)
