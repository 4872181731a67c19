//! What a node's handle, its driver task and its subscribers share.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::changes::{ChangeReceiver, ChangeSender, change_channel};
use super::lease::{LeaseState, lease_channel};
use super::observer::Observed;
use super::slot::StorageSlot;
use super::wire::{ReplayGuard, Signer, decode_received};
use crate::auth::Keyring;
use crate::config::ConfigError;
use crate::error::Error;
use crate::id::NodeId;
use crate::machine::{Event, Machine, Role, Status};
use crate::storage::{HardState, Storage};

/// A change of leader as the application sees it: `term` is the fencing token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaderChange {
    pub leader: Option<NodeId>,
    pub term: u64,
}

/// What the application has been told: it changes only as events are delivered, so it always
/// agrees with the last event, and never shows a term that is not saved yet.
struct Published {
    role: Role,
    leader: LeaderChange,
    voted_for: Option<NodeId>,
    subscribers: Vec<ChangeSender>,
    /// Set when the node stopped by itself because of an error (a failed save, a panic).
    failure: Option<Error>,
}

pub(crate) struct Shared {
    origin: Instant,
    machine: Mutex<Machine>,
    /// Wakes the driver when an input left output in the machine.
    pub(crate) wake: Notify,
    published: Mutex<Published>,
    closed: AtomicBool,
    pub(crate) storage: StorageSlot,
    /// The cluster's keys, with this node's numbering: with them, only signed messages go in
    /// and out.
    pub(crate) signer: Option<Arc<Signer>>,
    /// The last signed message accepted from each peer, to refuse replays.
    replays: ReplayGuard,
    /// Messages refused for want of a valid tag.
    unauthenticated: AtomicU64,
    /// This node's lease, if it holds one (see `lease`).
    pub(super) lease: watch::Sender<LeaseState>,
    /// Told of messages, refusals, saves and events (metrics).
    pub(crate) observer: Observed,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these in a state worse than what they hold.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(crate) fn new(
        machine: Machine,
        origin: Instant,
        storage: Box<dyn Storage>,
        keyring: Option<Keyring>,
        observer: Observed,
    ) -> Self {
        let published = Published {
            role: machine.role(),
            leader: LeaderChange {
                leader: None,
                term: machine.term(),
            },
            voted_for: machine.voted_for().map(str::to_owned),
            subscribers: Vec::new(),
            failure: None,
        };
        Shared {
            origin,
            machine: Mutex::new(machine),
            wake: Notify::new(),
            published: Mutex::new(published),
            closed: AtomicBool::new(false),
            storage: StorageSlot::new(storage),
            signer: keyring.map(|k| Arc::new(Signer::new(k))),
            replays: ReplayGuard::default(),
            unauthenticated: AtomicU64::new(0),
            lease: lease_channel(),
            observer,
        }
    }

    /// The machine's clock: time since the node started.
    pub(crate) fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    pub(crate) fn instant(&self, at: Duration) -> Instant {
        self.origin + at
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Runs `f` on the machine, then wakes the driver to handle what it produced. Once the
    /// node has stopped, for whatever reason, every call fails with [`Error::Closed`]; why it
    /// stopped is [`Shared::failure`].
    pub(crate) fn with_machine<R>(
        &self,
        f: impl FnOnce(&mut Machine, Duration) -> Result<R, Error>,
    ) -> Result<R, Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let mut machine = lock(&self.machine);
        let result = f(&mut machine, self.now());
        self.publish_lease(&machine); // at once: a handover's loss shows before it returns
        drop(machine);
        self.wake.notify_one();
        result
    }

    /// For the driver: no wake-up, no closed check.
    pub(crate) fn machine(&self) -> MutexGuard<'_, Machine> {
        lock(&self.machine)
    }

    pub(crate) fn receive(&self, bytes: &[u8]) -> Result<(), Error> {
        let msg =
            decode_received(bytes, self.signer.as_deref(), &self.replays).inspect_err(|e| {
                if matches!(e, Error::Unauthenticated(_)) {
                    self.unauthenticated.fetch_add(1, Ordering::Relaxed);
                }
                self.observer.refused(e);
            })?;
        let observed = msg.clone();
        let result = self.with_machine(|m, now| m.step(now, msg));
        match &result {
            Ok(()) => self.observer.received(&observed),
            Err(Error::Closed) => {}
            Err(e) => self.observer.refused(e),
        }
        result
    }

    /// Rotates the cluster's keys on this running node (see [`crate::NodeHandle::set_keys`]).
    pub(crate) fn set_keys(&self, keys: &[Vec<u8>]) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let invalid = |reason: String| {
            Error::Config(ConfigError {
                field: "keys",
                reason,
            })
        };
        let Some(signer) = &self.signer else {
            return Err(invalid(
                "this node was started without keys; start it with keys to authenticate".into(),
            ));
        };
        signer.replace(super::wire::keyring_of(keys)?);
        Ok(())
    }

    pub(crate) fn status(&self) -> Status {
        let now = self.now();
        let mut status = lock(&self.machine).status(now);
        let published = lock(&self.published);
        status.role = published.role;
        status.term = published.leader.term;
        status.leader = published.leader.leader.clone();
        status.voted_for = published.voted_for.clone();
        status.stopped |= self.is_closed();
        status.unauthenticated = self.unauthenticated.load(Ordering::Relaxed);
        status
    }

    pub(crate) fn current_leader(&self) -> LeaderChange {
        lock(&self.published).leader.clone()
    }

    /// Why the node stopped by itself (a failed save, an internal error), if it did.
    pub(crate) fn failure(&self) -> Option<Error> {
        lock(&self.published).failure.clone()
    }

    /// A stream of leader changes that starts with the current state; bounded and coalescing
    /// (see [`super::changes`]).
    pub(crate) fn subscribe(&self) -> ChangeReceiver {
        let (tx, rx) = change_channel();
        let mut published = lock(&self.published);
        tx.send(published.leader.clone());
        if !self.is_closed() {
            published.subscribers.push(tx);
        }
        rx
    }

    /// Records a saved hard state and delivers events, in order, to every subscriber.
    pub(crate) fn publish(&self, saved: Option<&HardState>, events: &[Event]) {
        let mut published = lock(&self.published);
        if let Some(state) = saved {
            published.voted_for = state.voted_for.clone();
            published.leader.term = published.leader.term.max(state.term);
        }
        for event in events {
            self.observer.event(event);
            match event {
                Event::RoleChanged { role, .. } => published.role = *role,
                Event::LeaderChanged { leader, term } => {
                    let change = LeaderChange {
                        leader: leader.clone(),
                        term: *term,
                    };
                    published.leader = change.clone();
                    published.subscribers.retain(|s| s.send(change.clone()));
                }
                Event::LeaseChanged { .. } | Event::Stopped => {}
            }
        }
    }

    /// Stops the node because of `error`: the machine stops, the application is told (no
    /// leader, follower, then the streams end), and every later call fails as closed.
    pub(crate) fn fail(&self, error: Error) {
        tracing::error!(error = %error, "the node stops");
        let ready = {
            let mut m = self.machine();
            m.stop(self.now());
            self.publish_lease(&m);
            m.ready()
        };
        self.publish(None, &ready.events);
        self.close(Some(error));
    }

    /// Marks the node closed (with the error that stopped it, if any); streams end.
    pub(crate) fn close(&self, failure: Option<Error>) {
        let mut published = lock(&self.published);
        if published.failure.is_none() {
            published.failure = failure;
        }
        published.subscribers.clear();
        self.closed.store(true, Ordering::Release);
        self.close_lease();
    }
}
