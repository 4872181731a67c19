#!/usr/bin/env python3
"""Writes docs/wire-vectors.json from an encoder written apart from the Rust one, so that the
vectors check the implementation rather than repeat it. Run after a change of docs/wire.md:

    python3 scripts/wire_vectors.py > docs/wire-vectors.json
"""

import hashlib
import hmac
import json

VERSION, SIGNED = 3, 4
KINDS = {"PreVote": 1, "PreVoteReply": 2, "Vote": 3, "VoteReply": 4, "Heartbeat": 5, "HeartbeatReply": 6, "TimeoutNow": 7}
KEY = b"almost-raft test key, not secret"
OTHER_KEY = b"another key of thirty-two bytes!"


def s(text: str) -> bytes:
    raw = text.encode()
    return bytes([len(raw)]) + raw


def fields(v: dict) -> bytes:
    flag = int(v.get("granted", False) or v.get("transfer", False))
    head = bytes([KINDS[v["kind"]], flag]) + int(v["term"]).to_bytes(8, "big")
    tail = s(v["cluster"]) + s(v["from"]) + s(v["to"])
    if "round" in v:
        tail += int(v["round"]).to_bytes(8, "big")
    return head, tail


def plain(v: dict) -> str:
    head, tail = fields(v)
    return (bytes([VERSION]) + head + tail).hex()


def signed(v: dict, key: bytes = KEY) -> str:
    head, tail = fields(v)
    body = bytes([SIGNED]) + head + int(v["seq"]).to_bytes(8, "big") + tail
    return (body + hmac.new(key, body, hashlib.sha256).digest()).hex()


def msg(name, kind, term, cluster, frm, to, **extra):
    return {"name": name, "kind": kind, "term": str(term), "cluster": cluster, "from": frm, "to": to, **extra}


VALID = [
    msg("pre-vote", "PreVote", 1, "", "a", "b"),
    msg("pre-vote-reply-granted", "PreVoteReply", 7, "prod", "n2", "n1", granted=True),
    msg("pre-vote-reply-refused", "PreVoteReply", 6, "prod", "n2", "n1", granted=False),
    msg("vote", "Vote", 42, "", "node-1", "node-2", transfer=False),
    msg("vote-transfer", "Vote", 43, "", "node-1", "node-2", transfer=True),
    msg("vote-reply-granted", "VoteReply", 42, "", "node-2", "node-1", granted=True),
    msg("vote-reply-refused", "VoteReply", 42, "", "node-3", "node-1", granted=False),
    msg("heartbeat-utf8-ids", "Heartbeat", 5, "cluster-é", "nœud-1", "узел-2", round="3"),
    msg("heartbeat-reply-max-term", "HeartbeatReply", (1 << 53) - 1, "c", "b", "a", round="18446744073709551615"),
    msg("timeout-now", "TimeoutNow", 9, "", "leader", "next"),
]
HB = "0305000000000000000005000161016200000000000000"  # a heartbeat a -> b, term 5, round 0 (cut short)
INVALID = [
    ("term-above-max", "0306000020000000000000016301620161" + "00" * 8, "TermTooLarge"),
    ("term-u64-max", "030600ffffffffffffffff016301620161" + "00" * 8, "TermTooLarge"),
    ("empty", "", "Empty"),
    ("unsupported-version", "09050000000000000000050001610162" + "00" * 8, "UnsupportedVersion"),
    ("version-1", "01050000000000000000050001610162", "UnsupportedVersion"),
    ("unknown-kind-0", "03000000000000000000050001610162", "UnknownKind"),
    ("unknown-kind-8", "03080000000000000000050001610162", "UnknownKind"),
    ("reserved-flag-bit", "03030200000000000000050001610162", "InvalidFlags"),
    ("flag-on-heartbeat", "03050100000000000000050001610162" + "00" * 8, "InvalidFlags"),
    ("truncated-term", "03050000000000", "Truncated"),
    ("truncated-id", "030500000000000000000500016101", "Truncated"),
    ("truncated-round", HB, "Truncated"),
    ("invalid-utf8-from", "03050000000000000000050001ff0162" + "00" * 8, "InvalidUtf8"),
    ("empty-from", "030500000000000000000500000162" + "00" * 8, "EmptyId"),
    ("trailing-bytes", "0307000000000000000005000161016200", "TrailingBytes"),
    ("too-long", "03" + "00" * 800, "TooLong"),
]


def main() -> None:
    for v in VALID:
        v["hex"] = plain(v)
    hb = dict(VALID[7], seq="1")
    vr = dict(VALID[5], seq="2")
    tn = dict(VALID[9], seq="1717171717171717")
    good = signed(hb)
    tampered_term = good[:2 + 2 * 9] + "01" + good[2 + 2 * 10:]  # a byte of the term
    tampered_seq = good[:2 * 12] + "01" + good[2 * 13:]  # a byte of the sequence number
    short = bytes([SIGNED]) + bytes(5)
    out = {
        "version": VERSION,
        "valid": [{k: v[k] for k in ["name", "hex", *[f for f in v if f not in ("name", "hex")]]} for v in VALID],
        "invalid": [{"name": n, "hex": h, "error": e} for n, h, e in INVALID],
        "signed": {
            "version": SIGNED,
            "key_hex": KEY.hex(),
            "key_text": KEY.decode(),
            "valid": [
                {"name": "signed-" + v["name"], "hex": signed(v), **{k: x for k, x in v.items() if k not in ("name", "hex")}}
                for v in (hb, vr, tn)
            ],
            "invalid": [
                {"name": "signed-tampered-term", "hex": tampered_term, "error": "BadTag"},
                {"name": "signed-tampered-seq", "hex": tampered_seq, "error": "BadTag"},
                {"name": "signed-wrong-tag", "hex": good[:-1] + ("1" if good[-1] == "0" else "0"), "error": "BadTag"},
                {"name": "signed-unsigned", "hex": VALID[7]["hex"], "error": "Unsigned"},
                {"name": "signed-other-key", "hex": signed(hb, OTHER_KEY), "error": "BadTag"},
                {"name": "signed-no-sequence", "hex": (short + hmac.new(KEY, short, hashlib.sha256).digest()).hex(), "error": "Truncated"},
            ],
        },
    }
    print(json.dumps(out, indent=1, ensure_ascii=True))


if __name__ == "__main__":
    main()
