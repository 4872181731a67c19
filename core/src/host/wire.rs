//! The host wire format: one datagram per pair of hosts and instant, carrying the pair's
//! heartbeat and everything the groups say to each other. See docs/wire.md, "Hosts".
//!
//! ```text
//! 0     1     version: 5 unsigned, 6 signed (then a TAG_LEN-byte tag of every byte before it)
//! 1     1+n   cluster of hosts (length-prefixed UTF-8, as in version 3)
//! ..    1+n   from host
//! ..    1+n   to host
//! ..    8     incarnation of the sender (grows at every start)
//! ..    8     sequence number (grows from datagram to datagram within an incarnation)
//! ..    2     item count, then the items, each a kind byte and its fields:
//!   1 Heartbeat   round u64, version u64, led u32, share u32 (thousandths)
//!   2 Ack         incarnation u64, round u64, version u64, reset u8, count u16, count x group
//!   3 Reset       version u64
//!   4 Add         version u64, group, term u64
//!   5 Remove      version u64, group
//!   6 Group       group, then a version-3 message's kind, flags and term, and the round
//!                 (Heartbeat and HeartbeatReply only)
//! ```
//! Integers are big-endian; nothing follows the last item.

use crate::auth::{Keyring, TAG_LEN};
use crate::codec::DecodeError;
use crate::id::MAX_ID_LEN;
use crate::message::{Body, MAX_TERM};

pub const HOST_WIRE_VERSION: u8 = 5;
pub const SIGNED_HOST_WIRE_VERSION: u8 = 6;
/// The encoder splits what a pair has to say into datagrams of at most this many bytes
/// (tag included): small enough for one IP packet on any usual network, so that a lost
/// fragment never loses a whole batch.
pub const MAX_DATAGRAM_LEN: usize = 1_400;
/// The longest datagram a receiver accepts (from encoders with another split size).
pub const MAX_ACCEPTED_LEN: usize = 65_000;

/// One datagram between two hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub cluster: String,
    pub from: String,
    pub to: String,
    pub incarnation: u64,
    pub seq: u64,
    pub items: Vec<Item>,
}

/// What one host says to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// The pair's heartbeat: stands for the heartbeat of every group quiet towards the
    /// recipient. `version` is the sender's quiet set towards it; `led` and `share` feed
    /// leader placement.
    Heartbeat {
        round: u64,
        version: u64,
        led: u32,
        share_milli: u32,
    },
    /// Answers a heartbeat. `incarnation` is the recipient's, as the sender knows it: an
    /// ack written before the sender heard of the recipient's restart answers a set that
    /// is gone. `version` is the quiet set the sender holds; the ack counts for the groups
    /// in it only when it equals the heartbeat's. `reset` asks the leader's host to start
    /// the set afresh; `exceptions` are groups in it that no longer follow.
    Ack {
        incarnation: u64,
        round: u64,
        version: u64,
        reset: bool,
        exceptions: Vec<String>,
    },
    /// Operations on the sender's quiet set towards the recipient, applied in version order.
    Reset {
        version: u64,
    },
    Add {
        version: u64,
        group: String,
        term: u64,
    },
    Remove {
        version: u64,
        group: String,
    },
    /// A group's own message.
    Group {
        group: String,
        term: u64,
        body: Body,
    },
}

impl Item {
    /// An upper bound of its encoded length.
    fn encoded_len(&self) -> usize {
        match self {
            Item::Heartbeat { .. } => 1 + 24,
            Item::Ack { exceptions, .. } => {
                1 + 27 + exceptions.iter().map(|g| 1 + g.len()).sum::<usize>()
            }
            Item::Reset { .. } => 9,
            Item::Add { group, .. } => 1 + 16 + 1 + group.len(),
            Item::Remove { group, .. } => 1 + 8 + 1 + group.len(),
            Item::Group { group, .. } => 1 + 1 + group.len() + 18,
        }
    }
}

/// Encodes `items` from `from` to `to` as one or more datagrams of at most
/// [`MAX_DATAGRAM_LEN`] bytes, signed when a keyring is given. `next_seq` numbers them.
pub fn encode_datagrams(
    header: (&str, &str, &str, u64),
    items: &[Item],
    mut next_seq: impl FnMut() -> u64,
    keyring: Option<&Keyring>,
) -> Vec<Vec<u8>> {
    let (cluster, from, to, incarnation) = header;
    let fixed = 1 + 3 + cluster.len() + from.len() + to.len() + 16 + 2 + TAG_LEN;
    let mut out = Vec::new();
    let mut start = 0;
    while start < items.len() || (items.is_empty() && out.is_empty()) {
        let mut len = fixed;
        let mut end = start;
        while end < items.len() && end - start < u16::MAX as usize {
            let item_len = items[end].encoded_len();
            if len + item_len > MAX_DATAGRAM_LEN && end > start {
                break;
            }
            len += item_len;
            end += 1;
        }
        let mut bytes = Vec::with_capacity(len);
        bytes.push(if keyring.is_some() {
            SIGNED_HOST_WIRE_VERSION
        } else {
            HOST_WIRE_VERSION
        });
        for s in [cluster, from, to] {
            put_str(&mut bytes, s);
        }
        bytes.extend_from_slice(&incarnation.to_be_bytes());
        bytes.extend_from_slice(&next_seq().to_be_bytes());
        bytes.extend_from_slice(&((end - start) as u16).to_be_bytes());
        for item in &items[start..end] {
            put_item(&mut bytes, item);
        }
        if let Some(keyring) = keyring {
            let tag = keyring.sign(&bytes);
            bytes.extend_from_slice(&tag);
        }
        out.push(bytes);
        start = end;
        if items.is_empty() {
            break;
        }
    }
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(MAX_ID_LEN)];
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

fn put_item(out: &mut Vec<u8>, item: &Item) {
    match item {
        Item::Heartbeat {
            round,
            version,
            led,
            share_milli,
        } => {
            out.push(1);
            out.extend_from_slice(&round.to_be_bytes());
            out.extend_from_slice(&version.to_be_bytes());
            out.extend_from_slice(&led.to_be_bytes());
            out.extend_from_slice(&share_milli.to_be_bytes());
        }
        Item::Ack {
            incarnation,
            round,
            version,
            reset,
            exceptions,
        } => {
            out.push(2);
            out.extend_from_slice(&incarnation.to_be_bytes());
            out.extend_from_slice(&round.to_be_bytes());
            out.extend_from_slice(&version.to_be_bytes());
            out.push(u8::from(*reset));
            let n = exceptions.len().min(u16::MAX as usize);
            out.extend_from_slice(&(n as u16).to_be_bytes());
            for g in &exceptions[..n] {
                put_str(out, g);
            }
        }
        Item::Reset { version } => {
            out.push(3);
            out.extend_from_slice(&version.to_be_bytes());
        }
        Item::Add {
            version,
            group,
            term,
        } => {
            out.push(4);
            out.extend_from_slice(&version.to_be_bytes());
            put_str(out, group);
            out.extend_from_slice(&term.to_be_bytes());
        }
        Item::Remove { version, group } => {
            out.push(5);
            out.extend_from_slice(&version.to_be_bytes());
            put_str(out, group);
        }
        Item::Group { group, term, body } => {
            out.push(6);
            put_str(out, group);
            let (kind, flag) = crate::codec::kind_code(*body);
            out.push(kind);
            out.push(u8::from(flag));
            out.extend_from_slice(&term.to_be_bytes());
            if let Body::Heartbeat { round } | Body::HeartbeatReply { round } = body {
                out.extend_from_slice(&round.to_be_bytes());
            }
        }
    }
}

/// Decodes a datagram, checking every field; with a keyring only a signed one whose tag
/// one of its keys verifies, without one only an unsigned one.
pub fn decode_datagram(bytes: &[u8], keyring: Option<&Keyring>) -> Result<Datagram, DecodeError> {
    if bytes.len() > MAX_ACCEPTED_LEN {
        return Err(DecodeError::TooLong { len: bytes.len() });
    }
    let body = match (bytes.first(), keyring) {
        (None, _) => return Err(DecodeError::Empty),
        (Some(&SIGNED_HOST_WIRE_VERSION), Some(keyring)) => {
            let Some(signed_len) = bytes.len().checked_sub(TAG_LEN) else {
                return Err(crate::auth::AuthError::BadTag.into());
            };
            let (signed, tag) = bytes.split_at(signed_len);
            keyring.verify(signed, tag)?;
            signed
        }
        (Some(&SIGNED_HOST_WIRE_VERSION), None) => {
            return Err(crate::auth::AuthError::NoKeyring.into());
        }
        (Some(&HOST_WIRE_VERSION), Some(_)) => return Err(crate::auth::AuthError::Unsigned.into()),
        (Some(&HOST_WIRE_VERSION), None) => bytes,
        (Some(&other), _) => return Err(DecodeError::UnsupportedVersion(other)),
    };
    let mut r = Reader { rest: &body[1..] };
    let cluster = r.string("cluster")?;
    let from = r.id("from")?;
    let to = r.id("to")?;
    let incarnation = r.u64("incarnation")?;
    let seq = r.u64("sequence number")?;
    let count = u16::from_be_bytes(r.take::<2>("item count")?);
    let mut items = Vec::with_capacity(usize::from(count).min(4096));
    for _ in 0..count {
        items.push(read_item(&mut r)?);
    }
    if !r.rest.is_empty() {
        return Err(DecodeError::TrailingBytes(r.rest.len()));
    }
    Ok(Datagram {
        cluster,
        from,
        to,
        incarnation,
        seq,
        items,
    })
}

fn read_item(r: &mut Reader<'_>) -> Result<Item, DecodeError> {
    let [kind] = r.take::<1>("item kind")?;
    Ok(match kind {
        1 => Item::Heartbeat {
            round: r.u64("round")?,
            version: r.u64("version")?,
            led: u32::from_be_bytes(r.take::<4>("led")?),
            share_milli: u32::from_be_bytes(r.take::<4>("share")?),
        },
        2 => {
            let incarnation = r.u64("incarnation")?;
            let round = r.u64("round")?;
            let version = r.u64("version")?;
            let [reset] = r.take::<1>("reset")?;
            if reset > 1 {
                return Err(DecodeError::InvalidFlags { kind, flags: reset });
            }
            let n = u16::from_be_bytes(r.take::<2>("exception count")?);
            let mut exceptions = Vec::with_capacity(usize::from(n).min(4096));
            for _ in 0..n {
                exceptions.push(r.id("group")?);
            }
            Item::Ack {
                incarnation,
                round,
                version,
                reset: reset == 1,
                exceptions,
            }
        }
        3 => Item::Reset {
            version: r.u64("version")?,
        },
        4 => Item::Add {
            version: r.u64("version")?,
            group: r.id("group")?,
            term: r.term()?,
        },
        5 => Item::Remove {
            version: r.u64("version")?,
            group: r.id("group")?,
        },
        6 => {
            let group = r.id("group")?;
            let [kind, flags] = r.take::<2>("message kind")?;
            let term = r.term()?;
            let body = crate::codec::body_from(kind, flags, || r.u64("round"))?;
            Item::Group { group, term, body }
        }
        other => return Err(DecodeError::UnknownKind(other)),
    })
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        if self.rest.len() < N {
            return Err(DecodeError::Truncated {
                field,
                needed: N - self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(N);
        self.rest = tail;
        Ok(head.try_into().expect("N bytes"))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take::<8>(field)?))
    }

    fn term(&mut self) -> Result<u64, DecodeError> {
        let term = self.u64("term")?;
        if term > MAX_TERM {
            return Err(DecodeError::TermTooLarge(term));
        }
        Ok(term)
    }

    fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let [len] = self.take::<1>(field)?;
        let len = usize::from(len);
        if self.rest.len() < len {
            return Err(DecodeError::Truncated {
                field,
                needed: len - self.rest.len(),
            });
        }
        let (raw, tail) = self.rest.split_at(len);
        self.rest = tail;
        let text = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8 { field })?;
        Ok(text.to_owned())
    }

    fn id(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let id = self.string(field)?;
        if id.is_empty() {
            return Err(DecodeError::EmptyId { field });
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Item> {
        vec![
            Item::Reset { version: 1 },
            Item::Add {
                version: 2,
                group: "g1".into(),
                term: 7,
            },
            Item::Remove {
                version: 3,
                group: "g1".into(),
            },
            Item::Heartbeat {
                round: 9,
                version: 3,
                led: 5,
                share_milli: 3333,
            },
            Item::Ack {
                incarnation: 7,
                round: 8,
                version: 2,
                reset: true,
                exceptions: vec!["g2".into(), "g3".into()],
            },
            Item::Group {
                group: "g4".into(),
                term: 3,
                body: Body::Heartbeat { round: 4 },
            },
            Item::Group {
                group: "g5".into(),
                term: 3,
                body: Body::VoteReply { granted: true },
            },
        ]
    }

    #[test]
    fn round_trips_every_item_signed_and_unsigned() {
        let keyring = Keyring::new([[7u8; 32]]).unwrap();
        for keys in [None, Some(&keyring)] {
            let mut seq = 0;
            let out = encode_datagrams(
                ("c", "a", "b", 2),
                &sample(),
                || {
                    seq += 1;
                    seq
                },
                keys,
            );
            assert_eq!(out.len(), 1);
            let d = decode_datagram(&out[0], keys).unwrap();
            assert_eq!(
                (d.cluster.as_str(), d.from.as_str(), d.to.as_str()),
                ("c", "a", "b")
            );
            assert_eq!((d.incarnation, d.seq), (2, 1));
            assert_eq!(d.items, sample());
        }
    }

    #[test]
    fn splits_what_does_not_fit_one_datagram() {
        let items: Vec<Item> = (0..10_000)
            .map(|i| Item::Group {
                group: format!("group-{i:08}"),
                term: 1,
                body: Body::PreVote,
            })
            .collect();
        let out = encode_datagrams(("c", "a", "b", 1), &items, || 1, None);
        assert!(out.len() > 1);
        let mut back = Vec::new();
        for bytes in &out {
            assert!(bytes.len() <= MAX_DATAGRAM_LEN);
            back.extend(decode_datagram(bytes, None).unwrap().items);
        }
        assert_eq!(back, items);
    }

    #[test]
    fn refuses_every_defect_with_a_reason() {
        let keyring = Keyring::new([[7u8; 32]]).unwrap();
        let good = encode_datagrams(("c", "a", "b", 1), &sample(), || 1, None).remove(0);
        assert_eq!(decode_datagram(&[], None), Err(DecodeError::Empty));
        assert_eq!(
            decode_datagram(&[9], None),
            Err(DecodeError::UnsupportedVersion(9))
        );
        assert!(matches!(
            decode_datagram(&good, Some(&keyring)),
            Err(DecodeError::Unauthenticated(_))
        ));
        for cut in 1..good.len() {
            assert!(decode_datagram(&good[..cut], None).is_err(), "cut at {cut}");
        }
        let mut extra = good.clone();
        extra.push(0);
        assert_eq!(
            decode_datagram(&extra, None),
            Err(DecodeError::TrailingBytes(1))
        );
        let signed =
            encode_datagrams(("c", "a", "b", 1), &sample(), || 1, Some(&keyring)).remove(0);
        let mut forged = signed.clone();
        forged[5] ^= 1;
        assert!(matches!(
            decode_datagram(&forged, Some(&keyring)),
            Err(DecodeError::Unauthenticated(_))
        ));
        assert!(matches!(
            decode_datagram(&signed, None),
            Err(DecodeError::Unauthenticated(_))
        ));
    }
}
