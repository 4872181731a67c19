//! Known election bugs that the simulator must catch. Test-only: this module, and every branch
//! that a bug switches, exist only in builds with the `bug-injection` feature (the simulator's
//! crate turns it on); each bug names the rule it breaks.

/// A known bug the machine can be told to have (with the `bug-injection` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bug {
    /// A vote for another node is kept in memory only: the reply goes out, the vote is not saved.
    VoteNotPersisted,
    /// The new term is saved (and the vote reply sent) before the vote is saved in a second
    /// write, so a crash between the two writes forgets a vote that was already cast.
    TermAndVoteSavedSeparately,
    /// A candidate or leader that steps down in the same term forgets its vote.
    VoteClearedOnStepDown,
    /// A candidate ignores the higher term in a vote reply (breaks Raft §5.1).
    HigherTermInVoteReplyIgnored,
    /// A pre-candidate bumps its term before it has a majority of pre-votes (thesis §9.6).
    PreVoteBumpsTerm,
    /// Vote grants are counted, not the distinct voters who sent them (the original crate's
    /// bug): a duplicated grant counts twice.
    GrantsCountedWithoutVoterId,
    /// Terms grow with wrapping arithmetic and any term from a peer is taken, even beyond
    /// `MAX_TERM` or `MAX_TERM_JUMP`: one hostile message can stop elections for good.
    TermOverflowUnchecked,
    /// A node stopped by a failed save keeps its role and leader, so it goes on saying who leads.
    StoppedNodeKeepsLeader,
    /// A save still in flight when its node crashes lands after the node restarted (no lock
    /// on the state file fences it), overwriting what the new life saved. Simulated by the
    /// simulator's storage, not by the machine.
    SaveOutlivesCrash,
    /// A node that starts grants votes, and counts for a new leader's lease, at once, though
    /// it may have answered a leader just before it went down (breaks the leader lease,
    /// thesis §6.4.1).
    NoVoteWaitAfterRestart,
    /// A leader keeps its lease when it hands over, though the target is elected at once.
    LeaseKeptOnTransfer,
    /// A node acknowledges a new leader's heartbeats for its lease while it still stands
    /// behind the previous leader (the ack barrier of `machine/evidence.rs` is off): a leader
    /// elected on false death evidence holds a lease beside the live one.
    NoAckBarrier,
    /// A host applies nothing of the pairs' heartbeats to a quiet follower when it is touched
    /// (`host`): the follower forgets its leader was heard, and grants votes while that
    /// leader holds a lease.
    QuietFollowerNotRefreshed,
}

impl Bug {
    pub const ALL: [Bug; 13] = [
        Bug::VoteNotPersisted,
        Bug::TermAndVoteSavedSeparately,
        Bug::VoteClearedOnStepDown,
        Bug::HigherTermInVoteReplyIgnored,
        Bug::PreVoteBumpsTerm,
        Bug::GrantsCountedWithoutVoterId,
        Bug::TermOverflowUnchecked,
        Bug::StoppedNodeKeepsLeader,
        Bug::SaveOutlivesCrash,
        Bug::NoVoteWaitAfterRestart,
        Bug::LeaseKeptOnTransfer,
        Bug::NoAckBarrier,
        Bug::QuietFollowerNotRefreshed,
    ];

    /// The kebab-case name used on the simulator's command line.
    pub fn name(self) -> &'static str {
        match self {
            Bug::VoteNotPersisted => "vote-not-persisted",
            Bug::TermAndVoteSavedSeparately => "term-and-vote-saved-separately",
            Bug::VoteClearedOnStepDown => "vote-cleared-on-step-down",
            Bug::HigherTermInVoteReplyIgnored => "higher-term-in-vote-reply-ignored",
            Bug::PreVoteBumpsTerm => "pre-vote-bumps-term",
            Bug::GrantsCountedWithoutVoterId => "grants-counted-without-voter-id",
            Bug::TermOverflowUnchecked => "term-overflow-unchecked",
            Bug::StoppedNodeKeepsLeader => "stopped-node-keeps-leader",
            Bug::SaveOutlivesCrash => "save-outlives-crash",
            Bug::NoVoteWaitAfterRestart => "no-vote-wait-after-restart",
            Bug::LeaseKeptOnTransfer => "lease-kept-on-transfer",
            Bug::NoAckBarrier => "no-ack-barrier",
            Bug::QuietFollowerNotRefreshed => "quiet-follower-not-refreshed",
        }
    }

    pub fn from_name(name: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|b| b.name() == name)
    }
}
