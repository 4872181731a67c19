//! The task that runs one node: it owns the storage and the send queues, sleeps until the
//! machine's next deadline or the next input, saves before it sends, then delivers events.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::outbox::{Outbox, PeerQueues};
use super::shared::Shared;
use crate::error::Error;
use crate::machine::Role;
use crate::storage::{HardState, MemStorage, Storage, StorageError};

/// Runs the node until it is removed from its cluster, fails to save, or `stop` fires (or its
/// sender is dropped). With `stop` set to `true`, a leader hands over before it goes.
pub(crate) async fn drive<O: Outbox>(
    shared: Arc<Shared>,
    mut storage: Box<dyn Storage>,
    outbox: O,
    mut stop: oneshot::Receiver<bool>,
) -> Result<(), Error> {
    let message_timeout = shared.machine().config().message_timeout;
    let mut queues = PeerQueues::new(outbox, message_timeout);
    let mut handover = false;
    let result = loop {
        if let Err(e) = step(&shared, &mut storage, &mut queues).await {
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
        hand_over(&shared, &mut storage, &mut queues).await;
    }
    shared.close(result.clone().err());
    queues
        .flush(if handover {
            message_timeout
        } else {
            std::time::Duration::ZERO
        })
        .await;
    result
}

/// Handles one round of the machine's output: timeouts due, then save, send, publish.
async fn step<O: Outbox>(
    shared: &Shared,
    storage: &mut Box<dyn Storage>,
    queues: &mut PeerQueues<O>,
) -> Result<(), Error> {
    let ready = {
        let mut m = shared.machine();
        let now = shared.now();
        if m.next_deadline().is_some_and(|d| d <= now) {
            m.handle_timeout(now);
        }
        m.ready()
    };
    if let Some(state) = &ready.hard_state {
        save(storage, state).await.inspect_err(
            |e| tracing::error!(error = %e, "cannot save the term and vote: stopping"),
        )?;
        shared.machine().persisted(shared.now(), state);
    }
    for msg in ready.messages {
        queues.send(msg);
    }
    shared.publish(ready.hard_state.as_ref(), &ready.events);
    Ok(())
}

/// A leader that stops hands leadership to its most responsive peer first (thesis §3.10).
async fn hand_over<O: Outbox>(
    shared: &Shared,
    storage: &mut Box<dyn Storage>,
    queues: &mut PeerQueues<O>,
) {
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
    let _ = step(shared, storage, queues).await;
}

/// Saves durably; file storage runs on a blocking thread so the runtime never waits on fsync.
async fn save(storage: &mut Box<dyn Storage>, state: &HardState) -> Result<(), Error> {
    if !storage.blocks() {
        return Ok(storage.save(state)?);
    }
    let mut owned = std::mem::replace(storage, Box::new(MemStorage::new()));
    let state = state.clone();
    let (owned, result) = tokio::task::spawn_blocking(move || {
        let result = owned.save(&state);
        (owned, result)
    })
    .await
    .map_err(|e| {
        Error::Storage(StorageError::Failed {
            reason: format!("save panicked: {e}"),
        })
    })?;
    *storage = owned;
    Ok(result?)
}
