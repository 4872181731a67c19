//! What a host keeps about one other host: the two quiet sets between them (the groups this
//! host leads that ride on the pair's heartbeat, and the groups it follows that ride on the
//! other's), the pair's heartbeat rounds and acknowledgements, and what waits to be sent.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::time::Duration;

use super::wire::Item;
use crate::id::NodeId;

/// An acknowledgement of one of our heartbeats that counts: the other host held our quiet
/// set as it was when we sent it.
#[derive(Debug, Clone, Copy)]
pub(super) struct HostAck {
    pub sent_at: Duration,
    pub heard_at: Duration,
    /// The version of our quiet set it covers.
    pub version: u64,
}

#[derive(Debug)]
pub(super) struct Pair {
    pub id: NodeId,
    /// The other host's incarnation, and the sequence numbers taken from it.
    pub incarnation: Option<u64>,
    pub seen: ReplayWindow,

    // This host leads, the other follows.
    /// The version of our quiet set towards it, and the operations it has not acknowledged.
    pub out_version: u64,
    pub ops: VecDeque<Item>,
    pub quiet_to: HashSet<u32>,
    pub round: u64,
    /// Recent rounds: number, when sent, the set version they carried.
    pub rounds: VecDeque<(u64, Duration, u64)>,
    pub last_ack: Option<HostAck>,
    /// Whether it acknowledged recently enough to keep groups quiet.
    pub current: bool,

    // The other leads, this host follows.
    pub in_version: u64,
    /// Operations on its set that came ahead of their turn (their datagrams overtook
    /// earlier ones), by version: applied when the gap closes. Without this, a set that
    /// changes faster than one round of in-order delivery never matches a heartbeat.
    held_ops: BTreeMap<u64, Item>,
    pub quiet_from: HashSet<u32>,
    /// Groups in its set that no longer follow it here, reported in every ack until removed.
    pub exceptions: BTreeSet<String>,
    /// We gave its set up (it went silent): every ack asks it to start afresh.
    pub dropped: bool,
    /// When a heartbeat that matched its set last came: the heartbeat of every group in it.
    pub last_heard: Option<Duration>,
    /// When it last showed it was alive to the followers here (a matching heartbeat, an add).
    pub alive_at: Option<Duration>,
    /// Leader placement: how many groups it leads, and its fair share in thousandths.
    pub led: u32,
    pub share_milli: u32,

    pub outbox: Vec<Item>,
}

impl Pair {
    pub fn new(id: NodeId) -> Self {
        Pair {
            id,
            incarnation: None,
            seen: ReplayWindow::default(),
            out_version: 1,
            ops: VecDeque::from([Item::Reset { version: 1 }]),
            quiet_to: HashSet::new(),
            round: 0,
            rounds: VecDeque::new(),
            last_ack: None,
            current: false,
            in_version: 0,
            held_ops: BTreeMap::new(),
            quiet_from: HashSet::new(),
            exceptions: BTreeSet::new(),
            dropped: false,
            last_heard: None,
            alive_at: None,
            led: 0,
            share_milli: 0,
            outbox: Vec::new(),
        }
    }

    /// Queues an operation on our quiet set towards this host; returns its version.
    pub fn push_op(&mut self, op: impl FnOnce(u64) -> Item) -> u64 {
        self.out_version += 1;
        self.ops.push_back(op(self.out_version));
        self.out_version
    }

    /// Starts our quiet set towards it afresh (it restarted, or gave our set up). The
    /// caller has taken every group out of `quiet_to`.
    pub fn restart_set(&mut self) {
        self.out_version += 1;
        self.ops.clear();
        self.ops.push_back(Item::Reset {
            version: self.out_version,
        });
        self.last_ack = None;
    }

    /// Forgets it acknowledged operations up to `version`.
    pub fn ops_acked(&mut self, version: u64) {
        while self.ops.front().is_some_and(|op| op_version(op) <= version) {
            self.ops.pop_front();
        }
    }

    /// Keeps an operation on the other host's set that came before its turn. At most
    /// [`MAX_HELD_OPS`]: the leader's host sends every operation again until acknowledged.
    pub fn hold_op(&mut self, version: u64, op: Item) {
        if version > self.in_version + 1 && self.held_ops.len() < MAX_HELD_OPS {
            self.held_ops.insert(version, op);
        }
    }

    /// The held operation whose turn it is, if any; forgets those whose turn passed.
    pub fn next_held_op(&mut self) -> Option<Item> {
        while let Some(entry) = self.held_ops.first_entry() {
            let version = *entry.key();
            if version > self.in_version + 1 {
                return None;
            }
            let op = entry.remove();
            if version == self.in_version + 1 {
                return Some(op);
            }
        }
        None
    }

    /// Forgets everything about its set (it restarted).
    pub fn forget_its_set(&mut self) {
        self.in_version = 0;
        self.held_ops.clear();
    }

    /// The next heartbeat round, remembered with its time and set version.
    pub fn next_round(&mut self, now: Duration, keep: Duration) -> u64 {
        self.round += 1;
        self.rounds.push_back((self.round, now, self.out_version));
        while self
            .rounds
            .front()
            .is_some_and(|(_, at, _)| *at + keep < now)
        {
            self.rounds.pop_front();
        }
        self.round
    }

    /// When round `round` was sent and with which set version, if it is recent.
    pub fn sent_round(&self, round: u64) -> Option<(Duration, u64)> {
        self.rounds
            .iter()
            .find(|(r, _, _)| *r == round)
            .map(|(_, at, v)| (*at, *v))
    }
}

pub(super) fn op_version(op: &Item) -> u64 {
    match op {
        Item::Reset { version } | Item::Add { version, .. } | Item::Remove { version, .. } => {
            *version
        }
        _ => 0,
    }
}

/// Anti-replay for datagrams that may arrive out of order (as in IPsec and DTLS): the
/// highest sequence number taken, and which of the [`REPLAY_WINDOW`] below it were taken too.
/// A number taken before, or older than the window, is a replay. The window is wide because a
/// host sends hundreds of datagrams in one instant when thousands of groups campaign.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ReplayWindow {
    highest: u64,
    taken: [u64; (REPLAY_WINDOW / 64) as usize],
}

pub(super) const REPLAY_WINDOW: u64 = 1024;

/// The most operations a host keeps that came ahead of their turn, per pair (twice what a
/// leader's host may have waiting for acknowledgement).
pub(super) const MAX_HELD_OPS: usize = 2 * super::groups::MAX_PENDING_OPS;

impl ReplayWindow {
    fn bit(seq: u64) -> (usize, u64) {
        let i = seq % REPLAY_WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    /// Takes `seq` if it was never taken; whether it was new.
    pub fn take(&mut self, seq: u64) -> bool {
        if seq > self.highest {
            if seq - self.highest >= REPLAY_WINDOW {
                self.taken = Default::default();
            } else {
                for s in self.highest + 1..seq {
                    let (w, b) = Self::bit(s);
                    self.taken[w] &= !b;
                }
            }
            self.highest = seq;
            let (w, b) = Self::bit(seq);
            self.taken[w] |= b;
            return true;
        }
        if self.highest - seq >= REPLAY_WINDOW {
            return false;
        }
        let (w, b) = Self::bit(seq);
        let fresh = self.taken[w] & b == 0;
        self.taken[w] |= b;
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::ReplayWindow;

    #[test]
    fn takes_each_number_once_in_any_order_within_the_window() {
        let mut w = ReplayWindow::default();
        assert!(w.take(5));
        assert!(w.take(3));
        assert!(!w.take(3));
        assert!(!w.take(5));
        assert!(w.take(4));
        assert!(w.take(2000));
        assert!(!w.take(5)); // older than the window
        assert!(w.take(2000 - 1023)); // the oldest still in the window
        assert!(!w.take(2000 - 1024)); // just out of it
        assert!(w.take(1999));
        assert!(!w.take(1999));
        assert!(w.take(2000 + 1024)); // moves the window by exactly its width
        assert!(!w.take(2000)); // now just out of it
        assert!(w.take(2001));
        assert!(!w.take(2001));
    }
}
