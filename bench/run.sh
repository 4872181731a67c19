#!/usr/bin/env bash
# `make bench`: the benchmark suite (not part of `make test`). Best run on a quiet machine.
# Writes bench/RESULTS.md and bench/failover.svg; BENCH_TRIALS sets trials per row (200).
set -euo pipefail
cd "$(dirname "$0")"
cargo build -q --release
./target/release/almost-raft-bench
# 7. Machine cost: criterion (wall time) and callgrind (instructions, repeatable).
(cd .. && cargo bench -q -p almost-raft-core --bench machine -- --noplot 2>/dev/null | grep -E "^[a-z_ ]+time:|time:" || true) > /tmp/almost-raft-criterion.txt
{
  echo
  echo "## 7. Machine cost"
  echo
  echo "criterion (\`cargo bench -p almost-raft-core --bench machine\`):"
  echo
  echo '```'
  cat /tmp/almost-raft-criterion.txt
  echo '```'
  echo
  (cd .. && cargo build -q --release -p almost-raft-core --example machine_ops)
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
# 6, continued: the same receive() from C, Python and Node.js (where built).
{
  echo
  echo "The same \`receive()\` of a heartbeat through each binding, 200,000 calls:"
  echo
  echo "| binding | ns per receive() |"
  echo "|---|---|"
  (cd .. && cargo build -q --release -p almost-raft-ffi)
  cc -O2 -std=c11 -I../include receive_cost.c ../target/release/libalmost_raft_ffi.a -lpthread -ldl -lm -lrt -o target/receive_cost
  echo "| C (\`almost_raft_node_receive\`) | $(target/receive_cost) |"
  if [ -x ../target/py-venv/bin/python ]; then
    echo "| Python (\`Node.receive\`) | $(../target/py-venv/bin/python -c '
import time, almost_raft
hb = bytes.fromhex("010500000000000000000100016c0166")
with almost_raft.Node("f", lambda to, data: None, peers=["l"]) as node:
    t = time.perf_counter_ns()
    for _ in range(200000):
        node.receive(hb)
    print(round((time.perf_counter_ns() - t) / 200000))
') |"
  else
    echo "| Python | not built (run make test first) |"
  fi
  if ls ../node/almost-raft.*.node >/dev/null 2>&1; then
    echo "| Node.js (\`node.receive\`) | $(node -e '
const { Node } = require("../node");
const hb = Buffer.from("010500000000000000000100016c0166", "hex");
const node = new Node({ id: "f", peers: ["l"], send() {} });
const t = process.hrtime.bigint();
for (let i = 0; i < 200000; i++) node.receive(hb);
console.log(Number((process.hrtime.bigint() - t) / 200000n));
node.close().then(() => process.exit(0));
') |"
  else
    echo "| Node.js | not built (run make test first) |"
  fi
} >> RESULTS.md
# 9. Process-crash failover with death evidence, against the timer (real processes).
(cd .. && cargo build -q --release -p almost-raft-cli)
python3 process_failover.py --binary ../target/release/almost-raft-node --python ../target/py-venv/bin/python >> RESULTS.md
# 10. Many groups per host: idle cost, memory, failover and placement (real processes).
python3 hosts.py --binary ../target/release/almost-raft-node >> RESULTS.md
# The reading of the results against the targets, written by hand after a run.
cat TARGETS.md >> RESULTS.md
echo "bench/RESULTS.md written"
