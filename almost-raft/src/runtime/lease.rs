//! The leader lease as the application sees it: a watch of "this node holds the lease of this
//! term until then", and "run this only while I lead".
//!
//! The lease ends `lease_margin` before its bound (see [`crate::Config::lease_margin`]); the
//! watch is updated before the messages of the same step are sent, so that a handover's loss of
//! the lease is visible before its TimeoutNow leaves.

use std::future::Future;

use tokio::sync::watch;
use tokio::time::Instant;

use super::shared::Shared;
use crate::error::Error;
use crate::machine::Machine;

/// This node's lease: it leads `term`, and no other node can be elected before `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub term: u64,
    /// When the application must have stopped acting as the only leader.
    pub until: Instant,
}

/// What the lease watch holds: the lease, if held, and whether the node has stopped (then
/// waiting for a lease fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LeaseState {
    held: Option<Lease>,
    closed: bool,
}

pub(crate) type LeaseWatch = watch::Receiver<LeaseState>;

pub(crate) fn lease_channel() -> watch::Sender<LeaseState> {
    watch::channel(LeaseState::default()).0
}

impl Shared {
    /// Publishes the machine's lease as it is now (before the step's messages are sent).
    pub(crate) fn publish_lease(&self, machine: &Machine) {
        let now = self.now();
        let lease = machine
            .lease_until()
            .filter(|until| now < *until)
            .map(|until| Lease {
                term: machine.term(),
                until: self.instant(until),
            });
        self.lease.send_if_modified(|current| {
            let changed = current.held != lease && !current.closed;
            if changed {
                current.held = lease;
            }
            changed
        });
    }

    /// No lease from now on: the node stopped.
    pub(crate) fn close_lease(&self) {
        self.lease.send_replace(LeaseState {
            held: None,
            closed: true,
        });
    }

    pub(crate) fn lease(&self) -> Option<Lease> {
        self.lease
            .borrow()
            .held
            .filter(|l| Instant::now() < l.until)
    }

    pub(crate) fn watch_lease(&self) -> LeaseWatch {
        self.lease.subscribe()
    }
}

/// Leadership with a lease, as handed out by [`crate::NodeHandle::leadership`].
pub struct Leadership {
    term: u64,
    lease: LeaseWatch,
}

impl Leadership {
    /// Waits until this node holds a lease; fails with `Closed` if the node stops first.
    pub(crate) async fn acquire(mut lease: LeaseWatch) -> Result<Self, Error> {
        loop {
            let current = *lease.borrow_and_update();
            if current.closed {
                return Err(Error::Closed);
            }
            if let Some(held) = current.held
                && Instant::now() < held.until
            {
                return Ok(Leadership {
                    term: held.term,
                    lease,
                });
            }
            lease.changed().await.map_err(|_| Error::Closed)?;
        }
    }

    /// The term this node leads: the fencing token to hand to whatever it guards.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// Resolves when the lease of this term ends: at its end even when no message arrives,
    /// when the node steps down or hands over, or when it stops.
    pub async fn lost(&mut self) {
        loop {
            let current = *self.lease.borrow_and_update();
            let until = match current.held {
                Some(held) if held.term == self.term => held.until,
                _ => return,
            };
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {
                    // Renewed meanwhile? Then wait for the new end.
                    let now = self.lease.borrow().held;
                    if now.is_none_or(|l| l.term != self.term || l.until <= until) {
                        return;
                    }
                }
                changed = self.lease.changed() => {
                    if changed.is_err() {
                        return; // the node stopped
                    }
                }
            }
        }
    }

    /// Runs `task` until it finishes or the lease ends, whichever comes first; a task cut
    /// short is dropped (Rust's cancellation). `Some` with its output if it finished.
    pub async fn run<T>(mut self, task: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            _ = self.lost() => None,
            output = task => Some(output),
        }
    }
}
