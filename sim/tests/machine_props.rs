//! Property tests: the machine fed arbitrary sequences of messages, passing time and commands
//! never panics and keeps its promises: the term never goes down, one vote per term, the
//! fencing token in events never goes down, a leader names itself, deadlines lie ahead.
//! (cargo-fuzz runs the same driver for much longer: see sim/fuzz.)

use std::time::Duration;

use almost_raft_sim::fuzzing::{Op, run_ops};
use proptest::prelude::*;

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..5, 0u8..4, 0u64..6, 0u8..7, any::<bool>()).prop_map(|(from, to, term, kind, flag)| Op::Message { from, to, term, kind, flag }),
        3 => (0u32..3000).prop_map(|ms| Op::Tick(Duration::from_millis(u64::from(ms)))),
        1 => (0u8..6).prop_map(Op::AddPeer),
        1 => (0u8..6).prop_map(Op::RemovePeer),
        1 => proptest::option::of(0u8..6).prop_map(Op::Transfer),
        1 => Just(Op::StepDown),
        2 => Just(Op::Persist),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_inputs_keep_the_machine_s_promises(ops in proptest::collection::vec(any_op(), 0..200), pre_vote: bool, check_quorum: bool) {
        if let Err(broken) = run_ops(&ops, pre_vote, check_quorum) {
            prop_assert!(false, "{broken}");
        }
    }
}
