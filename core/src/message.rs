//! The messages nodes exchange. Every one carries the cluster, sender, recipient and term.

use crate::id::NodeId;

/// The largest valid term: 2^53 - 1, so that every language (JavaScript numbers included)
/// holds every term exactly. A message with a higher term is refused, and a node at this term
/// cannot campaign; at one election a millisecond it lasts 285,000 years, so only a hostile
/// or broken peer gets near it.
pub const MAX_TERM: u64 = (1 << 53) - 1;

/// The largest term jump a node adopts from one message. An honest peer is never this far
/// ahead; a hostile one that is would spend the term space (see the README, "Hostile
/// terms").
pub const MAX_TERM_JUMP: u64 = 1 << 32;

/// One message between two nodes of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Envelope {
    /// The cluster name; a node drops messages from another cluster.
    pub cluster: String,
    pub from: NodeId,
    pub to: NodeId,
    /// The sender's term, except a pre-vote request, which carries the term the sender would
    /// campaign in, and a granted pre-vote reply, which echoes it. At most [`MAX_TERM`].
    pub term: u64,
    pub body: Body,
}

/// What a message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Body {
    /// "Would you vote for me in `term`?" (thesis §9.6). Changes nobody's term.
    PreVote,
    PreVoteReply {
        granted: bool,
    },
    /// "Vote for me in `term`" (Raft §5.2). `transfer` is set when the leader told the
    /// candidate to campaign (TimeoutNow), which lets it past voters' leader stickiness.
    Vote {
        transfer: bool,
    },
    VoteReply {
        granted: bool,
    },
    /// The leader is alive (§5.2). `round` counts the leader's heartbeat rounds in its term,
    /// from 1, so that a reply says which round it answers (the leader lease, thesis §6.4.1).
    Heartbeat {
        round: u64,
    },
    /// Answers a heartbeat, so the leader learns of a higher term and who it can reach;
    /// echoes the heartbeat's `round`.
    HeartbeatReply {
        round: u64,
    },
    /// "Campaign now": the leader hands leadership to the recipient (thesis §3.10).
    TimeoutNow,
}

impl Body {
    /// Requests that a node in its leader lease may ignore without adopting their term.
    pub fn is_vote_request(self) -> bool {
        matches!(self, Body::PreVote | Body::Vote { .. })
    }
}
