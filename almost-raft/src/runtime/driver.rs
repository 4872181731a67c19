//! The task that runs one node: it sleeps until the machine's next deadline or the next
//! input, saves before it sends, then delivers events.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::outbox::{Outbox, PeerQueues};
use super::shared::Shared;
use crate::error::Error;
use crate::machine::Role;
use crate::storage::{HardState, StorageError};

/// Runs the node like [`drive`], and contains a panic inside it: the node then stops as if a
/// save had failed (no leader, the reason recorded, streams end) instead of hanging whoever
/// waits for it. Dropping this future stops the node, and waits for a save in flight.
pub(crate) async fn run_node<O: Outbox>(
    shared: Arc<Shared>,
    outbox: O,
    stop: oneshot::Receiver<bool>,
) -> Result<(), Error> {
    let task = tokio::spawn(drive(shared.clone(), outbox, stop));
    let _stop_on_drop = StopOnDrop(task.abort_handle(), shared.clone());
    match task.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            let error = Error::Internal(format!("the node's driver panicked: {what}"));
            shared.fail(error.clone());
            Err(error)
        }
        Err(_) => Err(Error::Closed),
    }
}

/// Stops the driver task and releases the storage when its owner goes away.
struct StopOnDrop(tokio::task::AbortHandle, Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.abort();
        self.1.storage.release();
    }
}

/// Runs the node until it is removed from its cluster, fails to save, or `stop` fires (or its
/// sender is dropped). With `stop` set to `true`, a leader hands over before it goes.
pub(crate) async fn drive<O: Outbox>(
    shared: Arc<Shared>,
    outbox: O,
    mut stop: oneshot::Receiver<bool>,
) -> Result<(), Error> {
    let message_timeout = shared.machine().config().message_timeout;
    let mut queues = PeerQueues::new(outbox, message_timeout);
    let mut handover = false;
    let result = loop {
        if let Err(e) = handle_ready(&shared, &mut queues).await {
            break Err(e);
        }
        let (deadline, pending, stopped) = {
            let m = shared.machine();
            (m.next_deadline(), m.has_ready(), m.is_stopped())
        };
        if stopped {
            break Ok(());
        }
        if pending {
            continue;
        }
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(shared.instant(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = sleep => {}
            graceful = &mut stop => {
                handover = graceful.unwrap_or(false);
                break Ok(());
            }
        }
    };
    if result.is_ok() && handover {
        hand_over(&shared, &mut queues).await;
    }
    shared.storage.release();
    match &result {
        Ok(()) => shared.close(None),
        Err(e) => shared.fail(e.clone()),
    }
    queues
        .flush(if handover {
            message_timeout
        } else {
            std::time::Duration::ZERO
        })
        .await;
    result
}

/// Handles one `Ready`, in the one safe order. Inputs reach the machine through
/// `Shared::receive` and the commands, and timers here; then: save (and tell the machine),
/// send, publish events. Nothing is sent before the state it depends on is durable.
async fn handle_ready<O: Outbox>(
    shared: &Arc<Shared>,
    queues: &mut PeerQueues<O>,
) -> Result<(), Error> {
    let ready = {
        let mut m = shared.machine();
        let now = shared.now();
        if m.next_deadline().is_some_and(|d| d <= now) {
            m.handle_timeout(now);
        }
        queues.forget_peers_not_in(m.peers());
        // Before anything is sent: a lease given up for a handover is gone before TimeoutNow.
        shared.publish_lease(&m);
        m.ready()
    };
    if let Some(state) = &ready.hard_state {
        let started = std::time::Instant::now();
        save(shared, state).await?;
        shared.observer.saved(started.elapsed());
        let mut m = shared.machine();
        m.persisted(shared.now(), state);
        shared.publish_lease(&m);
    }
    for msg in ready.messages {
        shared.observer.sent(&msg);
        queues.send(msg);
    }
    shared.publish(ready.hard_state.as_ref(), &ready.events);
    Ok(())
}

/// A leader that stops hands leadership to its most responsive peer first (thesis §3.10):
/// only to a peer that answered in the current term; with none, it stops without handover.
async fn hand_over<O: Outbox>(shared: &Arc<Shared>, queues: &mut PeerQueues<O>) {
    let target = {
        let mut m = shared.machine();
        if m.role() != Role::Leader {
            return;
        }
        m.transfer_leadership(shared.now(), None)
    };
    match target {
        Ok(to) => tracing::info!(%to, "shutting down: leadership handed over"),
        Err(e) => tracing::info!(error = %e, "shutting down without handover"),
    }
    let _ = handle_ready(shared, queues).await;
}

/// Saves durably; a storage that blocks (a file) saves on a blocking thread, so the runtime
/// never waits on fsync. That thread gives the storage back even if this future is dropped,
/// and a save that panics gives it back too (so that a node stopping never waits forever).
async fn save(shared: &Arc<Shared>, state: &HardState) -> Result<(), Error> {
    let blocks = shared.storage.blocks();
    let mut lent = Lent(shared.clone(), Some(shared.storage.begin_save()?));
    if !blocks {
        return Ok(lent.storage().save(state)?);
    }
    let state = state.clone();
    let result = tokio::task::spawn_blocking(move || lent.storage().save(&state))
        .await
        .map_err(|e| {
            Error::Storage(StorageError::Failed {
                reason: format!("save panicked: {e}"),
            })
        })?;
    Ok(result?)
}

/// The storage, lent out for one save; it goes back to the node's slot when dropped.
struct Lent(Arc<Shared>, Option<Box<dyn crate::storage::Storage>>);

impl Lent {
    fn storage(&mut self) -> &mut Box<dyn crate::storage::Storage> {
        self.1.as_mut().expect("lent until dropped")
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(storage) = self.1.take() {
            self.0.storage.end_save(storage);
        }
    }
}
