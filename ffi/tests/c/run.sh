#!/usr/bin/env bash
# Builds the C tests against the shared and the static library, as C and as C++, and runs
# them plainly, under valgrind, and with ASan+UBSan. Called by `make test`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
out="$root/target/c-tests"
mkdir -p "$out"
cargo build -q -p almost-raft-ffi
lib="$root/target/debug"
# The shared library's SONAME names its ABI version (ffi/build.rs): the loader looks for that.
soname="$(readelf -d "$lib/libalmost_raft_ffi.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
ln -sf libalmost_raft_ffi.so "$lib/$soname"
static_libs="$(cargo rustc -q -p almost-raft-ffi --lib --crate-type staticlib -- --print native-static-libs 2>&1 | sed -n 's/.*native-static-libs: //p' | tail -1)"
[ -n "$static_libs" ] || static_libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
cflags=(-std=c11 -Wall -Wextra -Werror -pedantic -g -I"$root/include")
cxxflags=(-x c++ -std=c++17 -Wall -Wextra -Werror -pedantic -g -I"$root/include")
if ! command -v valgrind >/dev/null; then
  echo "installing valgrind"
  apt-get install -y -qq valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
fi
for test in test_bad_input test_cluster test_stopped test_worker_threads test_udp test_lease test_host; do
  src="$root/ffi/tests/c/$test.c"
  gcc "${cflags[@]}" "$src" -o "$out/$test-shared" -L"$lib" -lalmost_raft_ffi -lpthread -Wl,-rpath,"$lib"
  gcc "${cflags[@]}" "$src" -o "$out/$test-static" "$lib/libalmost_raft_ffi.a" $static_libs
  g++ "${cxxflags[@]}" "$src" -x none -o "$out/$test-cxx" "$lib/libalmost_raft_ffi.a" $static_libs
  gcc "${cflags[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer "$src" -o "$out/$test-asan" "$lib/libalmost_raft_ffi.a" $static_libs
  for variant in shared static cxx; do
    echo "== $test ($variant)"
    "$out/$test-$variant"
  done
  echo "== $test (ASan+UBSan)"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$out/$test-asan"
  echo "== $test (valgrind)"
  valgrind -q --error-exitcode=99 --suppressions="$(dirname "$0")/valgrind.supp" --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite "$out/$test-shared"
done
echo "C tests: all passed"
