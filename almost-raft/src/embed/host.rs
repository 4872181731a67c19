//! A host of many groups behind plain callbacks, on the process-wide runtime: what the C,
//! Python and Node.js hosts wrap, so that all of them behave alike.
//!
//! The contract is the embedded node's: callbacks run on a runtime thread, one at a time;
//! every method may be called from any thread, including from inside a callback;
//! [`EmbeddedHost::close`] hands every group over, waits for the last callback, then drops
//! the callbacks exactly once (from inside a callback it returns at once, and the rest
//! happens after that callback returns).

use std::cell::Cell;
use std::sync::{Arc, Condvar, Mutex};

use super::runtime;
use crate::error::Error;
use crate::host::{HostBuilder, HostHandle, HostStats};
use crate::machine::{Event, Status};
use crate::runtime::shared::lock;

/// What a host calls back into the application with. Both must return quickly.
pub trait HostCallbacks: Send + 'static {
    /// Sends `datagram` to the host `to`.
    fn send(&mut self, to: &str, datagram: &[u8]);
    /// Something happened to `group`: its leader changed (the term is its fencing token),
    /// its lease was gained or lost here, or it stopped here. One ordered stream for all
    /// groups.
    fn event(&mut self, group: &str, event: &Event);
}

thread_local! {
    /// The host whose callback this thread is running, if any.
    static IN_CALLBACK: Cell<usize> = const { Cell::new(0) };
}

struct Dispatch {
    callbacks: Mutex<Option<Box<dyn HostCallbacks>>>,
}

impl Dispatch {
    fn id(&self) -> usize {
        self as *const Self as usize
    }
    fn call(&self, f: impl FnOnce(&mut dyn HostCallbacks)) {
        let mut guard = lock(&self.callbacks);
        if let Some(callbacks) = guard.as_mut() {
            let outer = IN_CALLBACK.with(|c| c.replace(self.id()));
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(callbacks.as_mut())));
            IN_CALLBACK.with(|c| c.set(outer));
            if result.is_err() {
                tracing::error!("a host callback panicked; the host goes on");
            }
        }
    }
    fn in_callback(&self) -> bool {
        IN_CALLBACK.with(|c| c.get() == self.id())
    }
}

/// A running host of many groups; see the module docs.
pub struct EmbeddedHost {
    handle: Arc<HostHandle>,
    dispatch: Arc<Dispatch>,
    /// Set once the event pump has delivered the last event and dropped the callbacks.
    done: Arc<(Mutex<bool>, Condvar)>,
}

impl EmbeddedHost {
    /// Starts a host (its builder's transport is replaced by `callbacks.send`, unless it
    /// uses the built-in UDP transport) on the process-wide runtime.
    pub fn start(
        builder: HostBuilder,
        callbacks: impl HostCallbacks,
        udp: bool,
    ) -> Result<Self, Error> {
        let dispatch = Arc::new(Dispatch {
            callbacks: Mutex::new(Some(Box::new(callbacks))),
        });
        let sender = dispatch.clone();
        let builder = if udp {
            builder
        } else {
            builder.send(move |to, bytes| sender.call(|c| c.send(to, bytes)))
        };
        let rt = runtime();
        let handle = {
            let _enter = rt.enter();
            Arc::new(builder.start()?)
        };
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        let (pump_handle, pump_dispatch, pump_done) =
            (handle.clone(), dispatch.clone(), done.clone());
        rt.spawn(async move {
            while let Some(e) = pump_handle.next_event().await {
                if matches!(e.event, Event::RoleChanged { .. }) {
                    continue; // roles are in status(); the stream carries what apps act on
                }
                pump_dispatch.call(|c| c.event(&e.group, &e.event));
            }
            drop(lock(&pump_dispatch.callbacks).take());
            *lock(&pump_done.0) = true;
            pump_done.1.notify_all();
        });
        Ok(EmbeddedHost {
            handle,
            dispatch,
            done,
        })
    }

    pub fn add_group(
        &self,
        group: &str,
        voters: &[&str],
        preferred: Option<&str>,
    ) -> Result<(), Error> {
        self.handle.add_group(group, voters, preferred)
    }
    pub fn remove_group(&self, group: &str) -> Result<(), Error> {
        self.handle.remove_group(group)
    }
    pub fn receive(&self, bytes: &[u8]) -> Result<(), Error> {
        self.handle.receive(bytes)
    }
    pub fn status(&self, group: &str) -> Result<Status, Error> {
        self.handle.status(group)
    }
    pub fn holds_lease(&self, group: &str) -> Result<bool, Error> {
        self.handle.holds_lease(group)
    }
    pub fn transfer_leadership(&self, group: &str, to: Option<&str>) -> Result<String, Error> {
        self.handle.transfer_leadership(group, to)
    }
    pub fn peer_unreachable(&self, host: &str) -> Result<(), Error> {
        self.handle.peer_unreachable(host)
    }
    pub fn stats(&self) -> HostStats {
        self.handle.stats()
    }
    /// Why the host stopped by itself (a failed save), if it did.
    pub fn failure(&self) -> Option<Error> {
        self.handle.failure()
    }

    /// Hands every group over, stops, delivers the last events, drops the callbacks; waits
    /// for all of it unless called from inside one of this host's callbacks. Closing twice
    /// does nothing more.
    pub fn close(&self) {
        let handle = self.handle.clone();
        let stopped = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stopped.clone();
        runtime().spawn(async move {
            handle.shutdown().await;
            *lock(&signal.0) = true;
            signal.1.notify_all();
        });
        if self.dispatch.in_callback() {
            return;
        }
        let (lock_done, cv) = &*self.done;
        let mut done = lock(lock_done);
        while !*done {
            done = cv.wait(done).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for EmbeddedHost {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        runtime().spawn(async move { handle.shutdown().await });
    }
}
