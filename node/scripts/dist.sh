#!/usr/bin/env bash
# The npm packages of a release, built here: the addon for linux-x64-gnu, and, cross-compiled
# by napi (-x: cargo-zigbuild with zig, both from PyPI), for linux-arm64-gnu and
# linux-x64-musl; each checked for its ELF machine and C library; then packed by
# scripts/pack.sh into target/dist/npm (the main package with its optionalDependencies, and
# one package per platform); and test/pack.test.js: the main package and the linux-x64-gnu
# one installed into an empty project, offline, work there. Called by `make dist`.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(cd .. && pwd)"
venv="$root/target/zig-venv"
[ -x "$venv/bin/cargo-zigbuild" ] || {
  python3 -m venv --clear "$venv"
  "$venv/bin/pip" install -q "ziglang==0.13.0.post1" "cargo-zigbuild==0.20.1"
}
export PATH="$venv/bin:$PATH"
[ -d node_modules/@napi-rs/cli ] || npm ci --no-audit --no-fund --loglevel=error

# target triple | napi's platform name | ELF machine | C library the addon needs
builds=("x86_64-unknown-linux-gnu linux-x64-gnu X86-64 libc.so.6"
        "aarch64-unknown-linux-gnu linux-arm64-gnu AArch64 libc.so.6"
        "x86_64-unknown-linux-musl linux-x64-musl X86-64 libc.so")
for build in "${builds[@]}"; do
  read -r target platform machine libc <<<"$build"
  rustup target list --installed | grep -qx "$target" || rustup target add "$target"
  cross=()
  [ "$target" = "$(rustc -vV | sed -n 's/^host: //p')" ] || cross=(-x)
  echo "== addon for $target"
  npx napi build --platform --release --strip --target "$target" "${cross[@]}" >/dev/null
  addon="almost-raft.$platform.node"
  got="$(readelf -h "$addon" | sed -n 's/^ *Machine: *//p')"
  [[ "$got" == *"$machine"* ]] || { echo "$addon: ELF machine '$got', not $machine" >&2; exit 1; }
  readelf -d "$addon" | grep -q "NEEDED.*\[$libc" || {
    readelf -d "$addon" >&2; echo "$addon does not need $libc" >&2; exit 1; }
  echo "$addon: $(stat -c %s "$addon") bytes, ELF $got, needs $libc"
done
# The generated loader must not change with the targets built.
git diff --exit-code -- index.js index.d.ts

dest="$root/target/dist/npm"
rm -rf "$dest"
scripts/pack.sh "$dest"
for tarball in "$dest"/*.tgz; do
  echo "$(basename "$tarball"): $(stat -c %s "$tarball") bytes"
done
# With every platform's addon here, the main package names all three; installed offline
# with this platform's package, it must skip the other two and work.
node --test test/pack.test.js
