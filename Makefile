# The two commands of the README: `make demo` and `make test`. Both set up what they need.
CARGO ?= cargo
SEEDS ?= 100000
NODES ?= 5
PRE_VOTE ?= on
CHECK_QUORUM ?= on
PREFIX ?= /usr/local
# install builds `release`; tests install a `debug` build to check the layout quickly.
PROFILE ?= release
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
MAJOR := $(word 1,$(subst ., ,$(VERSION)))
MINOR := $(word 2,$(subst ., ,$(VERSION)))
# The C ABI's version, in the shared library's SONAME (as ffi/build.rs sets it).
ABI := $(if $(filter 0,$(MAJOR)),$(MAJOR).$(MINOR),$(MAJOR))

.PHONY: test release-check dist core-alone c-test python-test node-test four-languages chaos chaos-runners chaos-hosts chaos-short demo soak soak-hosts bench fmt install c-example

## Every test: unit tests, ported etcd election tests, codec vectors, 1000 simulator seeds per
## configuration, and proof that the simulator catches each injected bug.
test:
	$(MAKE) release-check
	$(CARGO) test --all-targets
	$(CARGO) test -p almost-raft-sim --all-targets -- --nocapture
	$(MAKE) core-alone
	$(MAKE) c-test
	$(MAKE) python-test
	$(MAKE) node-test
	$(MAKE) four-languages
	$(MAKE) chaos-short

## What a release needs of the Rust crates and of every package's version: one version
## everywhere, clippy clean, docs without warnings, and the crates.io crates packaged (each
## built alone from its .crate file, against the others packaged with it).
release-check:
	python3 scripts/check-versions.py
	$(CARGO) clippy -q --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -q --workspace --no-deps
	$(CARGO) package -q --allow-dirty -p almost-raft-core -p almost-raft -p almost-raft-cli

## The packages of a release, built and checked here (see python/scripts/dist.sh and
## node/scripts/dist.sh): Python wheels for manylinux2014 x86_64 and aarch64 and
## musllinux_1_2 x86_64, and the sdist; npm packages for linux-x64-gnu, linux-arm64-gnu and
## linux-x64-musl; written to target/dist.
dist:
	python/scripts/dist.sh all
	node/scripts/dist.sh

## The sans-IO core builds alone, without tokio, async-trait or serde; and no build of the
## library (or of a binding) has the simulator's bug switches.
core-alone:
	$(CARGO) build -q -p almost-raft-core
	scripts/check-deps.sh

## The Python package: a fresh venv, `pip install ./python`, pytest, mypy --strict, and a
## release wheel installed into a second fresh venv.
python-test:
	python/scripts/test.sh

## The C API: tests as C and C++, shared and static, under valgrind and ASan+UBSan; the
## install layout; a C++ consumer built with CMake (find_package) against the installed
## prefix; the C example built through pkg-config, handing over on SIGTERM and SIGINT.
c-test:
	command -v pkg-config >/dev/null || apt-get install -y -qq pkgconf >/dev/null
	ffi/tests/c/run.sh
	rm -rf target/prefix-test
	$(MAKE) install PREFIX=$(CURDIR)/target/prefix-test PROFILE=debug
	ffi/tests/cmake/run.sh $(CURDIR)/target/prefix-test $(VERSION) $(ABI)
	$(MAKE) c-example PREFIX=$(CURDIR)/target/prefix-test
	python3 tests/signal_handover.py target/udp_node

## Installs the header, the shared library (SONAME libalmost_raft_ffi.so.$(ABI): the major
## version, and the minor too before 1.0), the static library, almost-raft.pc and the CMake
## package (lib/cmake/almost_raft: find_package(almost_raft CONFIG)) under PREFIX.
install:
	$(CARGO) build -p almost-raft-ffi $(if $(filter release,$(PROFILE)),--release,)
	install -d $(PREFIX)/include $(PREFIX)/lib/pkgconfig $(PREFIX)/lib/cmake/almost_raft
	install -m 644 include/almost_raft.h $(PREFIX)/include/
	install -m 755 target/$(PROFILE)/libalmost_raft_ffi.so $(PREFIX)/lib/libalmost_raft_ffi.so.$(VERSION)
	ln -sf libalmost_raft_ffi.so.$(VERSION) $(PREFIX)/lib/libalmost_raft_ffi.so.$(ABI)
	ln -sf libalmost_raft_ffi.so.$(ABI) $(PREFIX)/lib/libalmost_raft_ffi.so
	install -m 644 target/$(PROFILE)/libalmost_raft_ffi.a $(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' ffi/almost-raft.pc.in > $(PREFIX)/lib/pkgconfig/almost-raft.pc
	for f in almost_raftConfig almost_raftConfigVersion; do \
		sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@MAJOR@|$(MAJOR)|g' -e 's|@MINOR@|$(MINOR)|g' -e 's|@ABI@|$(ABI)|g' \
			ffi/cmake/$$f.cmake.in > $(PREFIX)/lib/cmake/almost_raft/$$f.cmake || exit 1; \
	done

## The C examples (examples/c/*.c), built against an installed library.
c-example:
	for example in udp_node builtin_node; do \
		PKG_CONFIG_PATH=$(PREFIX)/lib/pkgconfig cc -std=c11 -Wall -Wextra -Werror -pedantic -pthread -o target/$$example examples/c/$$example.c \
			$$(PKG_CONFIG_PATH=$(PREFIX)/lib/pkgconfig pkg-config --cflags --libs almost-raft) -Wl,-rpath,$(PREFIX)/lib || exit 1; \
	done

## Five nodes over UDP on 127.0.0.1: crashes and graceful shutdowns of the leader, a summary;
## then three `almost-raft run` supervisors and one job that must never run twice at once.
demo:
	$(CARGO) run --release -p almost-raft --example udp_cluster
	$(CARGO) build -q --release -p almost-raft-cli
	python3 demo/runner.py --binary target/release/almost-raft

## The Node.js package: npm ci, the addon, drift of index.js/index.d.ts, tsc, node --test,
## npm pack installed into an empty project.
node-test:
	node/scripts/test.sh

## A Rust, a C, a Python and a Node.js node in one election (after the tests above built them).
four-languages:
	$(CARGO) build -q -p almost-raft-cli
	python3 tests/four_languages.py

## Chaos on five network namespaces with real node processes (needs root):
## make chaos DURATION=1200 [HOSTILE=1] (HOSTILE: signed messages and an attacker on the network)
DURATION ?= 1200
chaos:
	$(CARGO) build -q --release -p almost-raft-cli
	python3 chaos/chaos.py --duration $(DURATION) --binary target/release/almost-raft-node $(if $(HOSTILE),--hostile,)

## Chaos for `almost-raft run` (needs root): five runners, a fenced shared resource, drifting
## clocks; no two runs of the job may overlap. make chaos-runners DURATION=1200
chaos-runners:
	$(CARGO) build -q --release -p almost-raft-cli
	python3 chaos/runners.py --duration $(DURATION) --binary target/release/almost-raft

## Chaos for hosts of many groups (needs root): three hosts of GROUPS groups each, kill -9,
## SIGSTOP, partitions, graceful restarts. make chaos-hosts DURATION=600 GROUPS=10000
GROUPS ?= 10000
chaos-hosts:
	$(CARGO) build -q --release -p almost-raft-cli
	python3 chaos/hosts.py --duration $(DURATION) --groups $(GROUPS) --binary target/release/almost-raft-node

## The short chaos runs of `make test` (about three minutes): plain, then signed with an
## attacker on the network (replays, a dead leader's heartbeats, unsigned, tampered, forged),
## then runners with a fenced job (after the checker's own tests), then hosts of 2000 groups.
chaos-short:
	$(CARGO) build -q -p almost-raft-cli
	python3 chaos/chaos.py --duration 60 --binary target/debug/almost-raft-node
	python3 chaos/chaos.py --duration 30 --hostile --binary target/debug/almost-raft-node
	python3 chaos/test_runners_check.py
	python3 chaos/runners.py --duration 45 --binary target/debug/almost-raft
	python3 chaos/hosts.py --duration 30 --groups 2000 --binary target/debug/almost-raft-node

## The benchmark suite (not part of `make test`): writes bench/RESULTS.md and bench/failover.svg.
bench:
	bench/run.sh

## A long simulator soak: make soak SEEDS=100000 NODES=5 PRE_VOTE=on CHECK_QUORUM=on
soak:
	$(CARGO) run --release -p almost-raft-sim --example simulate -- --seeds $(SEEDS) --nodes $(NODES) --pre-vote $(PRE_VOTE) --check-quorum $(CHECK_QUORUM)

## A soak of hosts of many groups in the simulator: make soak-hosts SEEDS=200 HOSTS=5 GROUPS=10000
HOSTS ?= 3
soak-hosts:
	$(CARGO) run --release -p almost-raft-sim --example simulate_hosts -- --seeds $(SEEDS) --hosts $(HOSTS) --groups $(GROUPS)

fmt:
	$(CARGO) fmt --all
