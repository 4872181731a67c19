#!/usr/bin/env bash
# Two promises of the crate layout, checked on the resolved dependency graph:
# - almost-raft-core (the machine, the codec, storage) needs no async runtime: no tokio,
#   async-trait or serde among its dependencies;
# - the library and everything built on it get the core without its test-only bug switches
#   (the `bug-injection` feature is turned on by the simulator's crate alone).
set -euo pipefail
cd "$(dirname "$0")/.."

core_deps=$(cargo tree -q -p almost-raft-core -e normal --prefix none)
for forbidden in tokio async-trait serde; do
    if grep -q "^$forbidden v" <<<"$core_deps"; then
        echo "almost-raft-core depends on $forbidden:" >&2
        cargo tree -q -p almost-raft-core -e normal -i "$forbidden" >&2
        exit 1
    fi
done
echo "almost-raft-core: $(wc -l <<<"$core_deps") crates, none of tokio, async-trait, serde"

for package in almost-raft almost-raft-ffi almost-raft-cli almost-raft-python almost-raft-node; do
    features=$(cargo tree -q -p "$package" -e features -i almost-raft-core --prefix none)
    if grep -q 'almost-raft-core feature "bug-injection"' <<<"$features"; then
        echo "$package builds almost-raft-core with the bug-injection feature" >&2
        exit 1
    fi
done
echo "no package but almost-raft-sim turns on bug-injection"
# And the check can fail: the simulator does turn it on.
cargo tree -q -p almost-raft-sim -e features -i almost-raft-core --prefix none \
    | grep -q 'almost-raft-core feature "bug-injection"'
