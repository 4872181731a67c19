//! The wire codec: the documented test vectors, round trips, and arbitrary bytes.

use almost_raft_core::codec::{
    DecodeError, EncodeError, MAX_MESSAGE_LEN, decode, decode_authenticated, encode, encode_signed,
};
use almost_raft_core::{AuthError, Body, Envelope, Keyring, MAX_TERM};
use proptest::prelude::*;
use serde_json::Value;

fn vectors() -> Value {
    let text = include_str!("../../docs/wire-vectors.json");
    serde_json::from_str(text).expect("docs/wire-vectors.json is valid JSON")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn body_of(v: &Value) -> Body {
    let flag = |key: &str| v[key].as_bool().unwrap();
    let round = || v["round"].as_str().unwrap().parse().unwrap();
    match v["kind"].as_str().unwrap() {
        "PreVote" => Body::PreVote,
        "PreVoteReply" => Body::PreVoteReply {
            granted: flag("granted"),
        },
        "Vote" => Body::Vote {
            transfer: flag("transfer"),
        },
        "VoteReply" => Body::VoteReply {
            granted: flag("granted"),
        },
        "Heartbeat" => Body::Heartbeat { round: round() },
        "HeartbeatReply" => Body::HeartbeatReply { round: round() },
        "TimeoutNow" => Body::TimeoutNow,
        other => panic!("unknown kind {other} in vectors"),
    }
}

#[test]
fn every_valid_vector_decodes_to_its_fields_and_encodes_back() {
    let vectors = vectors();
    let valid = vectors["valid"].as_array().unwrap();
    assert!(valid.len() >= 10);
    for v in valid {
        let bytes = hex(v["hex"].as_str().unwrap());
        let expected = Envelope {
            cluster: v["cluster"].as_str().unwrap().into(),
            from: v["from"].as_str().unwrap().into(),
            to: v["to"].as_str().unwrap().into(),
            term: v["term"].as_str().unwrap().parse().unwrap(),
            body: body_of(v),
        };
        assert_eq!(decode(&bytes), Ok(expected.clone()), "vector {}", v["name"]);
        assert_eq!(encode(&expected).unwrap(), bytes, "vector {}", v["name"]);
    }
}

#[test]
fn every_invalid_vector_gives_its_documented_error() {
    let vectors = vectors();
    for v in vectors["invalid"].as_array().unwrap() {
        let bytes = hex(v["hex"].as_str().unwrap());
        let err = decode(&bytes).expect_err(v["name"].as_str().unwrap());
        let kind = format!("{err:?}");
        let expected = v["error"].as_str().unwrap();
        assert!(
            kind.starts_with(expected),
            "vector {}: got {kind}, documented {expected}",
            v["name"]
        );
    }
}

#[test]
fn the_doc_lists_every_vector() {
    let doc = include_str!("../../docs/wire.md");
    let vectors = vectors();
    let signed = &vectors["signed"];
    for group in [
        &vectors["valid"],
        &vectors["invalid"],
        &signed["valid"],
        &signed["invalid"],
    ] {
        for v in group.as_array().unwrap() {
            let name = format!("`{}`", v["name"].as_str().unwrap());
            assert!(doc.contains(&name), "docs/wire.md does not list {name}");
            let hex = v["hex"].as_str().unwrap();
            assert!(
                hex.len() > 80 || doc.contains(&format!("`{hex}`")),
                "docs/wire.md has a stale hex for {name}"
            );
        }
    }
}

fn envelope_of(v: &Value) -> Envelope {
    Envelope {
        cluster: v["cluster"].as_str().unwrap().into(),
        from: v["from"].as_str().unwrap().into(),
        to: v["to"].as_str().unwrap().into(),
        term: v["term"].as_str().unwrap().parse().unwrap(),
        body: body_of(v),
    }
}

/// Version 2: the signed vectors, made with an independent HMAC-SHA256 under the documented
/// test key, decode under that key and are what this codec signs.
#[test]
fn every_signed_vector_verifies_under_the_test_key_and_signs_back() {
    let vectors = vectors();
    let signed = &vectors["signed"];
    let key = hex(signed["key_hex"].as_str().unwrap());
    assert_eq!(key, signed["key_text"].as_str().unwrap().as_bytes());
    let keyring = Keyring::new([&key]).unwrap();
    for v in signed["valid"].as_array().unwrap() {
        let bytes = hex(v["hex"].as_str().unwrap());
        let expected = envelope_of(v);
        let seq: u64 = v["seq"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            decode_authenticated(&bytes, Some(&keyring)),
            Ok((expected.clone(), Some(seq))),
            "{}",
            v["name"]
        );
        assert_eq!(
            encode_signed(&expected, seq, &keyring).unwrap(),
            bytes,
            "{}",
            v["name"]
        );
        // A node without a keyring cannot check it, and says so.
        assert_eq!(
            decode_authenticated(&bytes, None),
            Err(DecodeError::Unauthenticated(AuthError::NoKeyring))
        );
    }
    for v in signed["invalid"].as_array().unwrap() {
        let bytes = hex(v["hex"].as_str().unwrap());
        let err =
            decode_authenticated(&bytes, Some(&keyring)).expect_err(v["name"].as_str().unwrap());
        let expected = v["error"].as_str().unwrap();
        assert!(
            format!("{err:?}").contains(expected),
            "{}: got {err:?}",
            v["name"]
        );
    }
}

#[test]
fn a_signed_message_too_short_for_a_tag_is_refused() {
    let keyring = Keyring::new([[1u8; 32]]).unwrap();
    for len in 0..40 {
        let mut bytes = vec![2u8; len];
        bytes.truncate(len);
        assert!(
            decode_authenticated(&bytes, Some(&keyring)).is_err(),
            "{len} bytes"
        );
    }
}

#[test]
fn errors_say_what_is_wrong() {
    assert_eq!(
        decode(&[9]).unwrap_err().to_string(),
        "unsupported wire version 9 (this build speaks version 3)"
    );
    assert_eq!(
        decode(&[3, 5, 0, 0]).unwrap_err(),
        DecodeError::Truncated {
            field: "term",
            needed: 7
        }
    );
    let long_id = Envelope {
        cluster: String::new(),
        from: "x".repeat(256),
        to: "b".into(),
        term: 1,
        body: Body::Heartbeat { round: 0 },
    };
    assert_eq!(
        encode(&long_id),
        Err(EncodeError::TooLong {
            field: "from",
            len: 256
        })
    );
    let empty_to = Envelope {
        to: String::new(),
        from: "a".into(),
        ..long_id
    };
    assert_eq!(encode(&empty_to), Err(EncodeError::EmptyId { field: "to" }));
}

fn any_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        Just(Body::PreVote),
        any::<bool>().prop_map(|granted| Body::PreVoteReply { granted }),
        any::<bool>().prop_map(|transfer| Body::Vote { transfer }),
        any::<bool>().prop_map(|granted| Body::VoteReply { granted }),
        any::<u64>().prop_map(|round| Body::Heartbeat { round }),
        any::<u64>().prop_map(|round| Body::HeartbeatReply { round }),
        Just(Body::TimeoutNow),
    ]
}

fn any_id(min: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), min..70).prop_map(|chars| {
        let mut s: String = chars.into_iter().collect();
        while s.len() > 255 {
            s.pop();
        }
        s
    })
}

#[test]
fn terms_above_max_term_are_refused_both_ways() {
    let msg = |term| Envelope {
        cluster: "c".into(),
        from: "b".into(),
        to: "a".into(),
        term,
        body: Body::Heartbeat { round: 0 },
    };
    let max = encode(&msg(MAX_TERM)).unwrap();
    assert_eq!(decode(&max).unwrap().term, MAX_TERM);
    for term in [MAX_TERM + 1, u64::MAX / 2, u64::MAX] {
        assert_eq!(encode(&msg(term)), Err(EncodeError::TermTooLarge(term)));
        let mut bytes = max.clone();
        bytes[3..11].copy_from_slice(&term.to_be_bytes());
        assert_eq!(decode(&bytes), Err(DecodeError::TermTooLarge(term)));
    }
}

proptest! {
    #[test]
    fn any_message_round_trips(cluster in any_id(0), from in any_id(1), to in any_id(1), term in 0..=MAX_TERM, body in any_body()) {
        let msg = Envelope { cluster, from, to, term, body };
        let bytes = encode(&msg).unwrap();
        prop_assert!(bytes.len() <= MAX_MESSAGE_LEN);
        prop_assert_eq!(decode(&bytes), Ok(msg));
    }

    #[test]
    fn arbitrary_bytes_never_panic_signed_or_not(bytes in proptest::collection::vec(any::<u8>(), 0..1000)) {
        let keyring = Keyring::new([[5u8; 32]]).unwrap();
        let _ = decode_authenticated(&bytes, Some(&keyring));
        let _ = decode_authenticated(&bytes, None);
        if let Ok(msg) = decode(&bytes) {
            // Whatever decodes is canonical: it encodes back to the same bytes.
            prop_assert_eq!(encode(&msg).unwrap(), bytes);
        }
    }

    #[test]
    fn corrupting_a_valid_message_never_panics(term in 0..=MAX_TERM, at in 0usize..40, byte: u8, cut in 0usize..40) {
        let msg = Envelope { cluster: "c".into(), from: "node-a".into(), to: "node-b".into(), term, body: Body::Vote { transfer: false } };
        let mut bytes = encode(&msg).unwrap();
        let at = at % bytes.len();
        bytes[at] = byte;
        bytes.truncate(bytes.len() - cut.min(bytes.len()));
        let _ = decode(&bytes);
    }
}
