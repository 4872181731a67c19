//! The wire format, version 3. See docs/wire.md for the layout and test vectors.
//!
//! ```text
//! offset  size  field
//! 0       1     version (3)
//! 1       1     kind: 1 PreVote, 2 PreVoteReply, 3 Vote, 4 VoteReply,
//!               5 Heartbeat, 6 HeartbeatReply, 7 TimeoutNow
//! 2       1     flags: bit 0 = granted (replies) or transfer (Vote); other bits zero
//! 3       8     term, unsigned big-endian, at most MAX_TERM (2^53 - 1)
//! 11      1+n   cluster: length n (0..=255), then n bytes of UTF-8
//! ..      1+n   from: length n (1..=255), then n bytes of UTF-8
//! ..      1+n   to: length n (1..=255), then n bytes of UTF-8
//! ..      8     round, Heartbeat and HeartbeatReply only: unsigned big-endian
//! ```
//! Nothing may follow the last field. Decoding never panics; every defect is a [`DecodeError`].
//!
//! Version 4 is version 3 signed: version byte 4, the fields of version 3 with an 8-byte
//! sender's sequence number after the term, then a [`TAG_LEN`]-byte HMAC-SHA256 tag of every
//! byte before it, under the cluster's [`Keyring`]. A node with a keyring speaks only
//! version 4 ([`encode_signed`], [`decode_authenticated`]). Versions 1 and 2 (0.5, before
//! heartbeats had rounds) are refused.

use thiserror::Error;

use crate::auth::{AuthError, Keyring, TAG_LEN};
use crate::id::MAX_ID_LEN;
use crate::message::{Body, Envelope, MAX_TERM};

/// The version this build writes and reads without a keyring.
pub const WIRE_VERSION: u8 = 3;
/// The version of signed messages: version 3's fields with a sequence number, then a tag.
pub const SIGNED_WIRE_VERSION: u8 = 4;
/// No valid message is longer than this.
pub const MAX_MESSAGE_LEN: usize = HEADER_LEN + 3 * (1 + MAX_ID_LEN) + ROUND_LEN;

const HEADER_LEN: usize = 11;
const ROUND_LEN: usize = 8;
const FLAG_SET: u8 = 1;

/// Why bytes are not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("empty message")]
    Empty,
    #[error("message is {len} bytes; the limit is {MAX_MESSAGE_LEN}")]
    TooLong { len: usize },
    #[error("unsupported wire version {0} (this build speaks version {WIRE_VERSION})")]
    UnsupportedVersion(u8),
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    #[error("invalid flags {flags:#04x} for message kind {kind}")]
    InvalidFlags { kind: u8, flags: u8 },
    #[error("message truncated: {field} needs {needed} more bytes")]
    Truncated { field: &'static str, needed: usize },
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 { field: &'static str },
    #[error("{field} is empty")]
    EmptyId { field: &'static str },
    #[error("{0} unexpected bytes after the message")]
    TrailingBytes(usize),
    #[error("term {0} is above the largest valid term {MAX_TERM}")]
    TermTooLarge(u64),
    #[error("{0}")]
    Unauthenticated(#[from] AuthError),
}

/// Why a message cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("{field} is {len} bytes long; the limit is {MAX_ID_LEN}")]
    TooLong { field: &'static str, len: usize },
    #[error("{field} is empty")]
    EmptyId { field: &'static str },
    #[error("term {0} is above the largest valid term {MAX_TERM}")]
    TermTooLarge(u64),
}

pub(crate) fn kind_code(body: Body) -> (u8, bool) {
    match body {
        Body::PreVote => (1, false),
        Body::PreVoteReply { granted } => (2, granted),
        Body::Vote { transfer } => (3, transfer),
        Body::VoteReply { granted } => (4, granted),
        Body::Heartbeat { .. } => (5, false),
        Body::HeartbeatReply { .. } => (6, false),
        Body::TimeoutNow => (7, false),
    }
}

/// The body of a message of `kind`; `round` reads a heartbeat's round, the last field.
pub(crate) fn body_from(
    kind: u8,
    flags: u8,
    round: impl FnOnce() -> Result<u64, DecodeError>,
) -> Result<Body, DecodeError> {
    let flag = flags == FLAG_SET;
    let takes_flag = matches!(kind, 2..=4);
    if flags & !FLAG_SET != 0 || (flag && !takes_flag) {
        return Err(DecodeError::InvalidFlags { kind, flags });
    }
    Ok(match kind {
        1 => Body::PreVote,
        2 => Body::PreVoteReply { granted: flag },
        3 => Body::Vote { transfer: flag },
        4 => Body::VoteReply { granted: flag },
        5 => Body::Heartbeat { round: round()? },
        6 => Body::HeartbeatReply { round: round()? },
        7 => Body::TimeoutNow,
        other => return Err(DecodeError::UnknownKind(other)),
    })
}

/// Encodes a message. Fails only when a string is too long, an id is empty or the term is
/// above [`MAX_TERM`].
pub fn encode(msg: &Envelope) -> Result<Vec<u8>, EncodeError> {
    if msg.term > MAX_TERM {
        return Err(EncodeError::TermTooLarge(msg.term));
    }
    let fields = [
        ("cluster", &msg.cluster, true),
        ("from", &msg.from, false),
        ("to", &msg.to, false),
    ];
    let mut out = Vec::with_capacity(
        HEADER_LEN + 3 + ROUND_LEN + fields.iter().map(|f| f.1.len()).sum::<usize>(),
    );
    let (kind, flag) = kind_code(msg.body);
    out.extend_from_slice(&[WIRE_VERSION, kind, u8::from(flag)]);
    out.extend_from_slice(&msg.term.to_be_bytes());
    for (field, value, may_be_empty) in fields {
        if value.is_empty() && !may_be_empty {
            return Err(EncodeError::EmptyId { field });
        }
        let len = u8::try_from(value.len()).map_err(|_| EncodeError::TooLong {
            field,
            len: value.len(),
        })?;
        out.push(len);
        out.extend_from_slice(value.as_bytes());
    }
    if let Body::Heartbeat { round } | Body::HeartbeatReply { round } = msg.body {
        out.extend_from_slice(&round.to_be_bytes());
    }
    Ok(out)
}

/// Bytes between the term and the cluster in version 4: the sender's sequence number.
const SEQ_LEN: usize = 8;

/// Encodes and signs a message (version 4): what a node with a keyring sends. `seq` is the
/// sender's sequence number, which must grow from one message to the next (receivers refuse
/// what does not: a replay).
pub fn encode_signed(msg: &Envelope, seq: u64, keyring: &Keyring) -> Result<Vec<u8>, EncodeError> {
    let v1 = encode(msg)?;
    let mut out = Vec::with_capacity(v1.len() + SEQ_LEN + TAG_LEN);
    out.push(SIGNED_WIRE_VERSION);
    out.extend_from_slice(&v1[1..HEADER_LEN]);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&v1[HEADER_LEN..]);
    let tag = keyring.sign(&out);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Decodes what a node received: with a keyring, only a signed message (version 4) whose tag
/// one of its keys verifies, with the sender's sequence number; without, only an unsigned one
/// (version 3), which has none.
pub fn decode_authenticated(
    bytes: &[u8],
    keyring: Option<&Keyring>,
) -> Result<(Envelope, Option<u64>), DecodeError> {
    match (bytes.first(), keyring) {
        (Some(&SIGNED_WIRE_VERSION), Some(keyring)) => {
            if bytes.len() > MAX_MESSAGE_LEN + SEQ_LEN + TAG_LEN {
                return Err(DecodeError::TooLong { len: bytes.len() });
            }
            let Some(signed_len) = bytes.len().checked_sub(TAG_LEN) else {
                return Err(AuthError::BadTag.into());
            };
            let (signed, tag) = bytes.split_at(signed_len);
            keyring.verify(signed, tag)?;
            if signed.len() < HEADER_LEN + SEQ_LEN {
                return Err(DecodeError::Truncated {
                    field: "sequence number",
                    needed: HEADER_LEN + SEQ_LEN - signed.len(),
                });
            }
            let seq_at = HEADER_LEN..HEADER_LEN + SEQ_LEN;
            let seq = u64::from_be_bytes(signed[seq_at.clone()].try_into().expect("8 bytes"));
            let mut fields = signed[..HEADER_LEN].to_vec();
            fields.extend_from_slice(&signed[seq_at.end..]);
            Ok((decode_fields(&fields)?, Some(seq)))
        }
        (Some(&SIGNED_WIRE_VERSION), None) => Err(AuthError::NoKeyring.into()),
        (Some(&WIRE_VERSION), Some(_)) => Err(AuthError::Unsigned.into()),
        _ => Ok((decode(bytes)?, None)),
    }
}

/// Decodes one unsigned message (version 3), checking every field.
pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    if bytes.first() == Some(&SIGNED_WIRE_VERSION) {
        return Err(DecodeError::UnsupportedVersion(SIGNED_WIRE_VERSION));
    }
    decode_fields(bytes)
}

/// The fields of version 3, after a version byte of 3 or (tag removed) 4.
fn decode_fields(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(DecodeError::TooLong { len: bytes.len() });
    }
    if bytes[0] != WIRE_VERSION && bytes[0] != SIGNED_WIRE_VERSION {
        return Err(DecodeError::UnsupportedVersion(bytes[0]));
    }
    let mut reader = Reader { rest: &bytes[1..] };
    let [kind, flags] = reader.take::<2>("header")?;
    body_from(kind, flags, || Ok(0))?; // the kind and flags are checked before the rest
    let term = u64::from_be_bytes(reader.take::<8>("term")?);
    if term > MAX_TERM {
        return Err(DecodeError::TermTooLarge(term));
    }
    let cluster = reader.string("cluster")?;
    let from = reader.string("from")?;
    let to = reader.string("to")?;
    for (field, value) in [("from", &from), ("to", &to)] {
        if value.is_empty() {
            return Err(DecodeError::EmptyId { field });
        }
    }
    let body = body_from(kind, flags, || {
        Ok(u64::from_be_bytes(reader.take::<8>("round")?))
    })?;
    if !reader.rest.is_empty() {
        return Err(DecodeError::TrailingBytes(reader.rest.len()));
    }
    Ok(Envelope {
        cluster,
        from,
        to,
        term,
        body,
    })
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl Reader<'_> {
    fn bytes(&mut self, field: &'static str, n: usize) -> Result<&[u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated {
                field,
                needed: n - self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.bytes(field, N)?);
        Ok(out)
    }

    fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let [len] = self.take::<1>(field)?;
        let raw = self.bytes(field, usize::from(len))?;
        let text = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8 { field })?;
        Ok(text.to_owned())
    }
}
