//! A hook for metrics: the runtime tells an [`Observer`] what the node does, as it does it.

use std::time::Duration;

use crate::{Envelope, Error, Event};

/// Told of every message, refusal, save and event of one node, on the node's own tasks: each
/// method must return quickly and never block (count, then return). Every method does nothing
/// unless overridden. Install one with [`crate::NodeBuilder::observer`].
pub trait Observer: Send + Sync + 'static {
    /// A message from a peer passed every check and reached the election.
    fn received(&self, _message: &Envelope) {}
    /// A message was handed to the transport's queue for its peer.
    fn sent(&self, _message: &Envelope) {}
    /// Bytes were refused before reaching the election; [`Error::kind`] says why.
    fn refused(&self, _error: &Error) {}
    /// The term and vote were saved durably; `took` is the save's duration.
    fn saved(&self, _took: Duration) {}
    /// An event was delivered to the application, in order (role, leader and lease changes).
    fn event(&self, _event: &Event) {}
}

/// The observer of a node that has none.
pub(crate) struct Unobserved;

impl Observer for Unobserved {}

/// A node's observer, as the node holds it.
#[derive(Clone)]
pub(crate) struct Observed(pub(crate) std::sync::Arc<dyn Observer>);

// A node stays unwind-safe with any observer: a panic inside one is contained by the node's
// driver, and what the observer holds (counts) cannot break the node's state.
impl std::panic::RefUnwindSafe for Observed {}
impl std::panic::UnwindSafe for Observed {}

impl std::ops::Deref for Observed {
    type Target = dyn Observer;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}
