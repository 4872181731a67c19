//! What the simulation does next: actions in virtual time, ordered by time, then by when
//! they were scheduled (so equal times keep their order and a seed replays exactly).

use std::time::Duration;

use almost_raft_core::storage::HardState;

pub(crate) enum Action {
    Deliver {
        from: usize,
        to: usize,
        bytes: Vec<u8>,
    },
    Timer {
        node: usize,
        generation: u64,
    },
    Crash(usize),
    Restart(usize),
    Pause(usize),
    Resume(usize),
    /// The node, if it leads, hands leadership over (to a random peer, or to its choice).
    Transfer(usize),
    /// `to` is told that `about`'s process is gone (true, stale or false evidence).
    Evidence {
        about: usize,
        to: usize,
    },
    Mend(Vec<(usize, usize)>),
    Release((usize, usize)),
    Nemesis,
    Hostile,
    SaveDone {
        node: usize,
        life: u64,
    },
    DetachedSave {
        node: usize,
        state: HardState,
    },
    Heal,
}

pub(crate) struct Scheduled {
    pub(crate) at: Duration,
    pub(crate) seq: u64,
    pub(crate) action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}
