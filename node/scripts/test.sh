#!/usr/bin/env bash
# The whole check of the Node.js package, from a fresh clone, with Node >= 20, npm and Rust:
#   1. npm ci                        (pinned @napi-rs/cli, typescript, @types/node)
#   2. napi build --release          (the addon; regenerates index.js and index.d.ts)
#   3. drift check                   (the generated index.js / index.d.ts equal the committed ones)
#   4. tsc --noEmit -p examples      (the TypeScript example, against the generated types)
#   5. cargo test --lib              (the rate limit)
#   6. node --test test/*.test.js    (cluster, errors, callbacks, edges, examples, npm pack + install)
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() {
    printf '\n==> %s  (%ss)\n' "$*" "$((SECONDS - started))"
}

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "Node.js >= 20 is needed; this is $(node --version)" >&2
    exit 1
fi

step "npm ci"
npm ci --no-audit --no-fund --loglevel=error

step "build the addon (napi build --release, pinned @napi-rs/cli $(node -p 'require("@napi-rs/cli/package.json").version'))"
committed=$(mktemp -d)
trap 'rm -rf "$committed"' EXIT
cp index.js index.d.ts "$committed/"
host=$(rustc -vV | sed -n 's/^host: //p')
npx napi build --platform --release --strip --target "$host"

step "drift check of the generated index.js and index.d.ts"
drift=0
for f in index.js index.d.ts; do
    if ! diff -u "$committed/$f" "$f"; then
        echo "node/$f differs from what the build generates (diff above): commit the generated file" >&2
        drift=1
    fi
done
[ "$drift" -eq 0 ]

step "tsc --noEmit on the TypeScript example"
npx tsc --noEmit -p examples

step "cargo test of the addon's Rust units (bounded callback queue, rate limit)"
cargo test -q -p almost-raft-node --lib

step "node --test"
node --test test/*.test.js

step "done"
