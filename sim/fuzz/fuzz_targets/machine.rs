//! The machine fed arbitrary sequences of messages, passing time and commands (the same
//! driver and checks as the proptest in tests/machine_props.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (pre_vote, check_quorum) = match data.first() {
        Some(b) => (b & 1 == 1, b & 2 == 2),
        None => (true, true),
    };
    let ops = almost_raft_sim::fuzzing::ops_from_bytes(data.get(1..).unwrap_or_default());
    if let Err(broken) = almost_raft_sim::fuzzing::run_ops(&ops, pre_vote, check_quorum) {
        panic!("{broken}");
    }
});
