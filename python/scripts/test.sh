#!/usr/bin/env bash
# The Python package's tests, on a fresh machine: a new virtual environment, `pip install
# ./python`, pytest, mypy --strict, and the portable release wheel checked and installed into a
# second fresh environment. Called by `make test`.
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

# The portable release wheel (manylinux2014 x86_64, abi3, built with zig as the linker):
# auditwheel's tag, the ELF machine, and the smoke test in a fresh environment. `make dist`
# builds and checks every wheel and the sdist.
python/scripts/dist.sh native
