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

.PHONY: test core-alone c-test python-test node-test four-languages chaos chaos-runners chaos-hosts chaos-short demo soak soak-hosts bench fmt install c-example

## Every test: unit tests, ported etcd election tests, codec vectors, 1000 simulator seeds per
## configuration, and proof that the simulator catches each injected bug.
test:
	$(CARGO) test --all-targets
	$(CARGO) test -p almost-raft-sim --all-targets -- --nocapture
	$(MAKE) core-alone
	$(MAKE) c-test
	$(MAKE) python-test
	$(MAKE) node-test
	$(MAKE) four-languages
	$(MAKE) chaos-short

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
## install layout; the C example built through pkg-config, handing over on SIGTERM and SIGINT.
c-test:
	command -v pkg-config >/dev/null || apt-get install -y -qq pkgconf >/dev/null
	ffi/tests/c/run.sh
	rm -rf target/prefix-test
	$(MAKE) install PREFIX=$(CURDIR)/target/prefix-test PROFILE=debug
	$(MAKE) c-example PREFIX=$(CURDIR)/target/prefix-test
	python3 tests/signal_handover.py target/udp_node

## Installs the header, the shared and static libraries and almost-raft.pc under PREFIX.
install:
	$(CARGO) build -p almost-raft-ffi $(if $(filter release,$(PROFILE)),--release,)
	install -d $(PREFIX)/include $(PREFIX)/lib/pkgconfig
	install -m 644 include/almost_raft.h $(PREFIX)/include/
	install -m 755 target/$(PROFILE)/libalmost_raft_ffi.so $(PREFIX)/lib/
	install -m 644 target/$(PROFILE)/libalmost_raft_ffi.a $(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' ffi/almost-raft.pc.in > $(PREFIX)/lib/pkgconfig/almost-raft.pc

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
