//! A driver that feeds one machine an arbitrary sequence of inputs and checks its promises
//! after each, shared by the proptest (`tests/machine_props.rs`) and cargo-fuzz
//! (`fuzz/fuzz_targets/machine.rs`). Not part of the stable API.
#![doc(hidden)]

use std::time::Duration;

use almost_raft_core::config::Config;
use almost_raft_core::machine::{Event, Machine, Role};
use almost_raft_core::message::{Body, Envelope};
use almost_raft_core::storage::HardState;

/// One input. Small numbers pick ids from a fixed list, so that inputs often hit real peers.
#[derive(Debug, Clone)]
pub enum Op {
    Message {
        from: u8,
        to: u8,
        term: u64,
        kind: u8,
        flag: bool,
    },
    Tick(Duration),
    AddPeer(u8),
    RemovePeer(u8),
    Transfer(Option<u8>),
    StepDown,
    /// Saves the hard state handed out so far and tells the machine.
    Persist,
}

const IDS: [&str; 6] = ["me", "b", "c", "d", "", "stranger"];

fn id(i: u8) -> &'static str {
    IDS[usize::from(i) % IDS.len()]
}

fn body(kind: u8, flag: bool) -> Body {
    match kind % 7 {
        0 => Body::PreVote,
        1 => Body::PreVoteReply { granted: flag },
        2 => Body::Vote { transfer: flag },
        3 => Body::VoteReply { granted: flag },
        4 => Body::Heartbeat { round: 0 },
        5 => Body::HeartbeatReply { round: 0 },
        _ => Body::TimeoutNow,
    }
}

/// Decodes ops from raw fuzzer bytes.
pub fn ops_from_bytes(data: &[u8]) -> Vec<Op> {
    data.chunks(4)
        .map(|c| {
            let b = |i: usize| c.get(i).copied().unwrap_or(0);
            match b(0) % 9 {
                0..=2 => Op::Message {
                    from: b(1) % 5,
                    to: b(1) / 64,
                    term: u64::from(b(2) % 8),
                    kind: b(3),
                    flag: b(3) & 0x80 != 0,
                },
                3 | 4 => Op::Tick(Duration::from_millis(
                    u64::from(b(1)) * 16 + u64::from(b(2)),
                )),
                5 => Op::AddPeer(b(1)),
                6 => Op::RemovePeer(b(1)),
                7 => Op::Transfer((b(1) < 200).then_some(b(1))),
                _ => {
                    if b(1) % 2 == 0 {
                        Op::Persist
                    } else {
                        Op::StepDown
                    }
                }
            }
        })
        .collect()
}

/// Runs `ops` on a node "me" with peers b and c; `Err` says which promise broke.
pub fn run_ops(ops: &[Op], pre_vote: bool, check_quorum: bool) -> Result<(), String> {
    let config = Config {
        min_nodes: 1,
        max_nodes: Some(4),
        pre_vote,
        check_quorum,
        ..Config::fast_lan()
    };
    let mut now = Duration::ZERO;
    let mut m =
        Machine::new("me", config, HardState::default(), 42, now).map_err(|e| e.to_string())?;
    m.add_peer(now, "b").map_err(|e| e.to_string())?;
    m.add_peer(now, "c").map_err(|e| e.to_string())?;
    let mut to_save: Option<HardState> = None;
    let mut vote_in_term: Option<(u64, String)> = None;
    let mut fencing = 0;
    for (i, op) in ops.iter().enumerate() {
        let before = m.term();
        match op {
            Op::Message {
                from,
                to,
                term,
                kind,
                flag,
            } => {
                let msg = Envelope {
                    cluster: String::new(),
                    from: id(*from).into(),
                    to: id(*to).into(),
                    term: *term,
                    body: body(*kind, *flag),
                };
                let _ = m.step(now, msg);
            }
            Op::Tick(d) => {
                now += *d;
                m.handle_timeout(now);
                if let Some(deadline) = m.next_deadline()
                    && deadline <= now
                {
                    return Err(format!(
                        "op {i}: next deadline {deadline:?} is not after now {now:?}"
                    ));
                }
            }
            Op::AddPeer(p) => {
                let _ = m.add_peer(now, id(*p));
            }
            Op::RemovePeer(p) => {
                let _ = m.remove_peer(now, id(*p));
            }
            Op::Transfer(to) => {
                let _ = m.transfer_leadership(now, to.map(id));
            }
            Op::StepDown => {
                let _ = m.step_down(now);
            }
            Op::Persist => {
                if let Some(state) = to_save.take() {
                    m.persisted(now, &state);
                }
            }
        }
        let ready = m.ready();
        if let Some(state) = ready.hard_state {
            to_save = Some(state);
        }
        for event in &ready.events {
            if let Event::LeaderChanged { term, .. } = event {
                if *term < fencing {
                    return Err(format!(
                        "op {i}: leader event for term {term} after term {fencing}"
                    ));
                }
                fencing = *term;
            }
        }
        if m.term() < before {
            return Err(format!(
                "op {i} ({op:?}): term went down from {before} to {}",
                m.term()
            ));
        }
        if let Some(vote) = m.voted_for() {
            match &vote_in_term {
                Some((term, earlier)) if *term == m.term() && earlier != vote => {
                    return Err(format!(
                        "op {i}: voted for {earlier} and then {vote} in term {term}"
                    ));
                }
                _ => vote_in_term = Some((m.term(), vote.to_owned())),
            }
        }
        if m.role() == Role::Leader && m.leader() != Some("me") {
            return Err(format!(
                "op {i}: a leader that names {:?} as leader",
                m.leader()
            ));
        }
    }
    Ok(())
}
