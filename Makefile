# The two commands of the README: `make demo` and `make test`. Both set up what they need.
CARGO ?= cargo
SEEDS ?= 100000
NODES ?= 5
PRE_VOTE ?= on
CHECK_QUORUM ?= on

.PHONY: test demo soak fmt

## Every test: unit tests, ported etcd election tests, codec vectors, 1000 simulator seeds per
## configuration, and proof that the simulator catches each injected bug.
test:
	$(CARGO) test --workspace --all-targets
	$(CARGO) test -p almost-raft --features bug-injection --test injected_bugs -- --nocapture

## Five nodes over UDP on 127.0.0.1: crashes and graceful shutdowns of the leader, a summary.
demo:
	$(CARGO) run --release -p almost-raft --example udp_cluster

## A long simulator soak: make soak SEEDS=100000 NODES=5 PRE_VOTE=on CHECK_QUORUM=on
soak:
	$(CARGO) run --release -p almost-raft --example simulate -- --seeds $(SEEDS) --nodes $(NODES) --pre-vote $(PRE_VOTE) --check-quorum $(CHECK_QUORUM)

fmt:
	$(CARGO) fmt --all
