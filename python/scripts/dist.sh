#!/usr/bin/env bash
# The Python distributions, built here by maturin with zig as the cross linker (ziglang from
# PyPI) into target/dist/python:
#   almost_raft-V-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
#   almost_raft-V-cp39-abi3-manylinux2014_aarch64.manylinux_2_17_aarch64.whl
#   almost_raft-V-cp39-abi3-musllinux_1_2_x86_64.whl
#   almost_raft-V.tar.gz (the sdist)
# Each wheel is checked with `auditwheel show` (its platform tag; for musl, that it needs
# nothing but musl's libc) and for the ELF machine of its extension; the x86_64 manylinux2014 wheel installs into a fresh venv and passes the
# smoke test (python/scripts/smoke.py); the sdist builds a wheel that passes it too.
# Usage: dist.sh [all|native]   (native: the x86_64 manylinux2014 wheel alone; make test)
set -euo pipefail
which="${1:-all}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out="$root/target/dist/python"
venv="$root/target/py-dist-venv"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
[ -x "$venv/bin/maturin" ] || {
  python3 -m venv --clear "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q "maturin==1.16.0" "ziglang==0.13.0.post1" "auditwheel==6.8.2"
}
export PATH="$venv/bin:$PATH"
rm -rf "$out"
mkdir -p "$out"

# target triple | maturin --compatibility | auditwheel's tag | ELF machine (readelf -h)
builds=("x86_64-unknown-linux-gnu manylinux2014 manylinux_2_17_x86_64 X86-64")
if [ "$which" = all ]; then
  builds+=("aarch64-unknown-linux-gnu manylinux2014 manylinux_2_17_aarch64 AArch64"
           "x86_64-unknown-linux-musl musllinux_1_2 musllinux_1_2_x86_64 X86-64")
fi
for build in "${builds[@]}"; do
  read -r target compat tag machine <<<"$build"
  rustup target list --installed | grep -qx "$target" || rustup target add "$target"
  echo "== wheel for $target ($compat)"
  maturin build -q --release --zig --target "$target" --compatibility "$compat" \
    -m python/Cargo.toml -o "$out/$target"
  wheel="$(ls "$out/$target"/almost_raft-"$version"-cp39-abi3-*.whl)"
  case "$(basename "$wheel")" in
    *"$tag"*) ;;
    *) echo "$(basename "$wheel") is not tagged $tag" >&2; exit 1 ;;
  esac
  if [[ "$compat" == musllinux* ]]; then
    # auditwheel judges against this (glibc) machine's libc: given musl's libc.so to look
    # at, it must find that the wheel needs nothing else. (zig names musl's libc `libc.so`,
    # which musl's loader takes for itself; auditwheel's musllinux list knows only the
    # Alpine name, so it cannot print the tag here.)
    [ -f /usr/lib/x86_64-linux-musl/libc.so ] || apt-get install -y -qq musl >/dev/null \
      || { apt-get update -qq && apt-get install -y -qq musl >/dev/null; }
    shown="$(LD_LIBRARY_PATH=/usr/lib/x86_64-linux-musl auditwheel show "$wheel" 2>&1)"
    external="$(echo "$shown" | sed -n '/external shared libraries are required/,/^}/p' | grep -c '": "' || true)"
    echo "$shown" | grep -q '"libc.so": "/usr/lib/x86_64-linux-musl/libc.so"' && [ "$external" = 1 ] \
      || { echo "$shown" >&2; echo "the musl wheel needs more than musl's libc" >&2; exit 1; }
  else
    shown="$(auditwheel show "$wheel")"
    echo "$shown" | tr '\n' ' ' | grep -q "\"${tag}\"" || { echo "$shown" >&2; echo "auditwheel does not find $tag" >&2; exit 1; }
  fi
  unpacked="$(mktemp -d)"
  python3 -m zipfile -e "$wheel" "$unpacked"
  got="$(readelf -h "$unpacked"/almost_raft/_native*.so | sed -n 's/^ *Machine: *//p')"
  rm -rf "$unpacked"
  case "$got" in
    *"$machine"*) ;;
    *) echo "$(basename "$wheel"): ELF machine '$got', not $machine" >&2; exit 1 ;;
  esac
  mv "$wheel" "$out/" && rmdir "$out/$target"
  checked="auditwheel: $tag"
  [[ "$compat" == musllinux* ]] && checked="auditwheel: needs only musl's libc; tag $tag"
  echo "$(basename "$wheel"): $(stat -c %s "$out/$(basename "$wheel")") bytes, $checked, ELF: $got"
done

smoke() { # a fresh venv, the wheel installed into it, the smoke test run outside the tree
  local wheel="$1" env="$root/target/py-dist-check"
  python3 -m venv --clear "$env"
  "$env/bin/pip" install -q "$wheel"
  (cd /tmp && "$env/bin/python" "$root/python/scripts/smoke.py" "$version")
}
smoke "$out"/almost_raft-"$version"-cp39-abi3-manylinux2014_x86_64.*.whl

if [ "$which" = all ]; then
  echo "== sdist"
  maturin sdist -m python/Cargo.toml -o "$out" >/dev/null
  sdist="$out/almost_raft-$version.tar.gz"
  echo "$(basename "$sdist"): $(stat -c %s "$sdist") bytes"
  from_sdist="$(mktemp -d)"
  "$venv/bin/pip" wheel -q --no-deps "$sdist" -w "$from_sdist"
  smoke "$from_sdist"/almost_raft-*.whl
  rm -rf "$from_sdist"
fi
