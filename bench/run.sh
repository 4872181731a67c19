#!/usr/bin/env bash
# `make bench`: the benchmark suite (not part of `make test`). Best run on a quiet machine.
# Writes bench/RESULTS.md and bench/failover.svg; BENCH_TRIALS sets trials per row (200).
set -euo pipefail
cd "$(dirname "$0")"
cargo build -q --release
./target/release/almost-raft-bench
# 7. Machine cost: criterion (wall time) and callgrind (instructions, repeatable).
(cd .. && cargo bench -q -p almost-raft --bench machine -- --noplot 2>/dev/null | grep -E "^[a-z_ ]+time:|time:" || true) > /tmp/almost-raft-criterion.txt
{
  echo
  echo "## 7. Machine cost"
  echo
  echo "criterion (\`cargo bench -p almost-raft --bench machine\`):"
  echo
  echo '```'
  cat /tmp/almost-raft-criterion.txt
  echo '```'
  echo
  (cd .. && cargo build -q --release -p almost-raft --example machine_ops)
  command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
  echo "callgrind, instructions per operation (\`valgrind --tool=callgrind\`, 100,000 operations minus an empty run):"
  echo
  echo "| operation | instructions |"
  echo "|---|---|"
  base=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null ../target/release/examples/machine_ops none 100000 2>&1 | sed -n 's/.*Collected : //p')
  for op in heartbeat vote timeout; do
    total=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null ../target/release/examples/machine_ops $op 100000 2>&1 | sed -n 's/.*Collected : //p')
    echo "| $op | $(( (total - base) / 100000 )) |"
  done
} >> RESULTS.md
# The reading of the results against the targets, written by hand after a run.
cat TARGETS.md >> RESULTS.md
echo "bench/RESULTS.md written"
