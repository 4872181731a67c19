#!/usr/bin/env bash
# The npm packages as they are published, packed into DEST: the main package, whose
# optionalDependencies name every platform package (written by `napi pre-publish`, as at a
# release), and the package of each platform whose addon was built here
# (almost-raft.<platform>.node, by `napi build --platform`). A platform whose addon was not
# built here is left out of both, with a note (`make test` builds only this machine's;
# `make dist` builds every one). Usage: scripts/pack.sh DEST
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p "$1"
dest="$(cd "$1" && pwd)"
quiet=(--no-audit --no-fund --loglevel=error)
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp package.json index.js index.d.ts README.md "$stage/"
cp -r npm "$stage/npm"
# The targets whose addon is here, in package.json's order.
node - "$stage" <<'JS'
const fs = require('fs');
const path = require('path');
const stage = process.argv[2];
const file = path.join(stage, 'package.json');
const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
const platformOf = (dir) => JSON.parse(fs.readFileSync(path.join(stage, 'npm', dir, 'package.json'), 'utf8'));
const built = new Set(fs.readdirSync(stage + '/npm').filter((dir) => fs.existsSync(`almost-raft.${dir}.node`)));
for (const dir of fs.readdirSync(path.join(stage, 'npm'))) {
  if (!built.has(dir)) {
    console.error(`note: no addon for ${dir} here: ${platformOf(dir).name} left out`);
    fs.rmSync(path.join(stage, 'npm', dir), { recursive: true });
  }
}
const kept = pkg.napi.targets.filter((t) => built.has(tripleToDir(t)));
function tripleToDir(triple) {
  const [arch, , os, abi] = triple.split('-');
  const cpu = { x86_64: 'x64', aarch64: 'arm64' }[arch] ?? arch;
  return `${os}-${cpu}-${abi}`;
}
pkg.napi.targets = kept;
fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');
JS
for dir in "$stage"/npm/*/; do
  cp "almost-raft.$(basename "$dir").node" "$dir"
done
npx napi pre-publish --cwd "$stage" --no-gh-release --skip-optional-publish >/dev/null
(cd "$stage" && npm pack "${quiet[@]}" --pack-destination "$dest" >/dev/null)
for dir in "$stage"/npm/*/; do
  (cd "$dir" && npm pack "${quiet[@]}" --pack-destination "$dest" >/dev/null)
done
ls "$dest"
