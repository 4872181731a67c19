//! Where a running node keeps its storage: shared, so that a node stopped from outside (a
//! dropped handle, a dropped 0.4 election) can wait for a save in flight and release the
//! storage (and the state file's lock) at once, instead of leaving a detached save that lands
//! after another node started on the same file.

use std::sync::{Condvar, Mutex};

use super::shared::lock;
use crate::error::Error;
use crate::storage::Storage;

struct Slot {
    /// `None` while a save has it, and once released.
    storage: Option<Box<dyn Storage>>,
    saving: bool,
    /// No save may start any more.
    sealed: bool,
}

pub(crate) struct StorageSlot {
    slot: Mutex<Slot>,
    saved: Condvar,
}

impl StorageSlot {
    pub(crate) fn new(storage: Box<dyn Storage>) -> Self {
        StorageSlot {
            slot: Mutex::new(Slot {
                storage: Some(storage),
                saving: false,
                sealed: false,
            }),
            saved: Condvar::new(),
        }
    }

    /// Hands the storage out for one save; fails once the node is being stopped.
    pub(crate) fn begin_save(&self) -> Result<Box<dyn Storage>, Error> {
        let mut slot = lock(&self.slot);
        if slot.sealed {
            return Err(Error::Closed);
        }
        let storage = slot.storage.take().ok_or(Error::Closed)?;
        slot.saving = true;
        Ok(storage)
    }

    /// Takes the storage back after a save, or drops it if the node was stopped meanwhile.
    pub(crate) fn end_save(&self, storage: Box<dyn Storage>) {
        let mut slot = lock(&self.slot);
        let unwanted = if slot.sealed {
            Some(storage)
        } else {
            slot.storage = Some(storage);
            None
        };
        // The storage (and its file lock) goes before anyone waiting is woken.
        drop(unwanted);
        slot.saving = false;
        self.saved.notify_all();
    }

    /// Whether saves block on I/O (see [`Storage::blocks`]).
    pub(crate) fn blocks(&self) -> bool {
        lock(&self.slot).storage.as_ref().is_none_or(|s| s.blocks())
    }

    /// No save starts from now on; waits for one in flight (milliseconds: one fsync), then
    /// drops the storage, releasing the state file's lock. Safe to call more than once.
    pub(crate) fn release(&self) {
        let mut slot = lock(&self.slot);
        slot.sealed = true;
        while slot.saving {
            slot = self.saved.wait(slot).unwrap_or_else(|p| p.into_inner());
        }
        let storage = slot.storage.take();
        drop(slot);
        drop(storage);
    }
}
