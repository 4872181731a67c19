//! The trace: every step of a run, recorded for the replay output and hashed, so that equal
//! seeds can be shown to give equal runs.

use std::hash::Hasher;
use std::time::Duration;

use almost_raft_core::machine::Role;
use almost_raft_core::message::Body;

/// One entry of the trace: what happened at one step of the run.
#[derive(Debug, Clone, Hash)]
pub(crate) enum Entry {
    Deliver {
        from: usize,
        to: usize,
        term: u64,
        body: Body,
    },
    Timeout {
        node: usize,
    },
    State {
        node: usize,
        term: u64,
        role: Role,
        leader: Option<String>,
    },
    Crash {
        node: usize,
        point: &'static str,
    },
    Restart {
        node: usize,
        term: u64,
    },
    Pause {
        node: usize,
    },
    Resume {
        node: usize,
    },
    Transfer {
        node: usize,
        to: Option<usize>,
    },
    Evidence {
        about: usize,
        to: usize,
    },
    Cut {
        links: Vec<(usize, usize)>,
    },
    Mend {
        links: Vec<(usize, usize)>,
    },
    Hold {
        link: (usize, usize),
    },
    Release {
        link: (usize, usize),
        count: usize,
    },
    Heal,
    Stable {
        leader: usize,
        term: u64,
    },
    SaveFailed {
        node: usize,
        landed: bool,
    },
    SlowSave {
        node: usize,
        term: u64,
        takes: Duration,
    },
    SaveDone {
        node: usize,
    },
    /// A save that was in flight when its node crashed lands after the crash.
    SaveLanded {
        node: usize,
        term: u64,
        late: bool,
    },
    Hostile {
        from: usize,
        to: usize,
        term: u64,
        body: Body,
    },
    Replay {
        from: usize,
        to: usize,
    },
}

/// FNV-1a: a hasher whose output does not depend on the process, unlike std's.
pub(crate) struct Fnv(pub(crate) u64);
impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}
