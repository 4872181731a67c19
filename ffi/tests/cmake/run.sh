#!/usr/bin/env bash
# Builds the C++ consumer (consumer.cpp) with CMake against an installed prefix, shared and
# static, and runs both; checks the shared library's SONAME and that the package refuses a
# version it is not compatible with. Usage: run.sh PREFIX VERSION ABI. Called by `make c-test`.
set -euo pipefail
prefix="$1" version="$2" abi="$3"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
if ! command -v cmake >/dev/null; then
  echo "installing cmake"
  apt-get install -y -qq cmake >/dev/null || { apt-get update -qq && apt-get install -y -qq cmake >/dev/null; }
fi
build="$root/target/cmake-consumer"

soname="$(readelf -d "$prefix/lib/libalmost_raft_ffi.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[ "$soname" = "libalmost_raft_ffi.so.$abi" ] || { echo "SONAME is '$soname', not libalmost_raft_ffi.so.$abi" >&2; exit 1; }

rm -rf "$build"
cmake -S "$here" -B "$build" -DCMAKE_PREFIX_PATH="$prefix" -DALMOST_RAFT_WANTED="$version" >/dev/null
cmake --build "$build" >/dev/null
needed="$(readelf -d "$build/consumer_shared" | sed -n 's/.*(NEEDED).*\[\(libalmost_raft[^]]*\)\]/\1/p')"
[ "$needed" = "libalmost_raft_ffi.so.$abi" ] || { echo "consumer_shared needs '$needed'" >&2; exit 1; }
if readelf -d "$build/consumer_static" | grep -q libalmost_raft; then
  echo "consumer_static links the shared library" >&2; exit 1
fi
# Runs with the prefix's library (the SONAME's link), found by the loader's path.
LD_LIBRARY_PATH="$prefix/lib" "$build/consumer_shared"
"$build/consumer_static"

# The package finds its files from where it is: a prefix moved elsewhere still works.
moved="$root/target/cmake-moved-prefix"
rm -rf "$moved" "$build-moved"
cp -a "$prefix" "$moved"
cmake -S "$here" -B "$build-moved" -DCMAKE_PREFIX_PATH="$moved" -DALMOST_RAFT_WANTED="$version" >/dev/null
cmake --build "$build-moved" >/dev/null
grep -q "$moved/lib/libalmost_raft_ffi.a" "$build-moved/CMakeFiles/consumer_static.dir/link.txt" \
  || { echo "the moved prefix's static library was not the one linked" >&2; exit 1; }
"$build-moved/consumer_static"
rm -rf "$moved" "$build-moved"

# Versions the package is not compatible with: another minor (before 1.0) or a later one.
IFS=. read -r major minor _ <<<"$version"
for wanted in "$major.$((minor + 1))" "$((major + 1)).0"; do
  if cmake -S "$here" -B "$build-refused" -DCMAKE_PREFIX_PATH="$prefix" -DALMOST_RAFT_WANTED="$wanted" >/dev/null 2>&1; then
    echo "find_package(almost_raft $wanted) accepted version $version" >&2; exit 1
  fi
  rm -rf "$build-refused"
done
echo "CMake consumer: shared and static built and ran; SONAME libalmost_raft_ffi.so.$abi"
