//! The wire decoder on arbitrary bytes: never panics, and whatever it accepts encodes back to
//! the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = almost_raft_core::decode(data) {
        assert_eq!(almost_raft_core::encode(&msg).unwrap(), data);
    }
});
