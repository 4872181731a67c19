//! The embedding layer: a callback-based node on a process-wide runtime. The C, Python and
//! Node.js packages are thin wrappers over [`EmbeddedNode`], so that all of them behave alike.
//!
//! Threading contract (README):
//! - one process-wide tokio runtime, started on first use; [`set_worker_threads`] before that;
//! - a node's callbacks run on a runtime thread, one at a time, never concurrently;
//! - every method may be called from any thread, including from inside a callback;
//! - [`EmbeddedNode::close`] waits for the node's callbacks to finish, then drops the
//!   [`Callbacks`] exactly once; called from inside one of the node's own callbacks it returns
//!   at once, and the drop happens after that callback returns.

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use tokio::runtime::Runtime;
use tokio::sync::oneshot;

use crate::error::Error;
use crate::machine::Status;
use crate::runtime::{
    BytesOutbox, LeaderChange, Lease, NodeBuilder, Shared, Transport, run_node, udp,
};

pub mod host;
mod host_queue;
mod queue;

pub use host_queue::{HostItem, HostQueue, QueuedHostCallbacks};
pub use queue::{
    Backlog, CallbackQueue, Item, MAX_QUEUED_CHANGES, MAX_QUEUED_SENDS, Popped, QueuedCallbacks,
    Wake,
};

/// What a node calls back into the application with. Both methods must return quickly: hand
/// the bytes to a socket or a queue, note the change; never wait on the node itself.
pub trait Callbacks: Send + 'static {
    /// Sends `message` to the peer `to`.
    fn send(&mut self, to: &str, message: &[u8]);
    /// The leader this node knows changed (`leader` is `None` when it knows none).
    fn leader_changed(&mut self, change: &LeaderChange);
    /// This node gained (`held`) or lost the leader lease of `term`. A loss comes when the
    /// lease ends (`lease_margin` before its bound, also when no message arrives), when the
    /// node steps down or hands over, and before [`Callbacks::stopped`]; it comes before the
    /// leader change that goes with it.
    fn lease_changed(&mut self, held: bool, term: u64) {
        let _ = (held, term);
    }
    /// The node stopped, after its last leader change (which names no leader): `failure`
    /// says why when it stopped by itself (a failed save, an internal error), and is `None`
    /// when it was closed or removed from its cluster. Called once, last.
    fn stopped(&mut self, failure: Option<&Error>) {
        let _ = failure;
    }
}

static WORKER_THREADS: AtomicUsize = AtomicUsize::new(0);
static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// Held while the runtime starts and while its thread count is set, so that a setting either
/// takes effect or fails with [`Error::RuntimeStarted`]: never "OK" and ignored.
static STARTING: Mutex<()> = Mutex::new(());

/// Sets the number of worker threads of the process-wide runtime (default: 2). Must be called
/// before the first node starts; afterwards it fails with [`Error::RuntimeStarted`].
pub fn set_worker_threads(threads: usize) -> Result<(), Error> {
    if threads == 0 {
        return Err(Error::Config(crate::config::ConfigError {
            field: "worker_threads",
            reason: "must be at least 1".into(),
        }));
    }
    let _starting = STARTING.lock().unwrap_or_else(|p| p.into_inner());
    if RUNTIME.get().is_some() {
        return Err(Error::RuntimeStarted);
    }
    WORKER_THREADS.store(threads, Ordering::SeqCst);
    Ok(())
}

/// The process-wide runtime. It lives as long as the process, so it is never dropped from
/// one of its own threads.
pub fn runtime() -> &'static Runtime {
    if let Some(runtime) = RUNTIME.get() {
        return runtime;
    }
    let _starting = STARTING.lock().unwrap_or_else(|p| p.into_inner());
    RUNTIME.get_or_init(|| {
        let threads = match WORKER_THREADS.load(Ordering::SeqCst) {
            0 => 2,
            n => n,
        };
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("almost-raft")
            .enable_time()
            .enable_io() // the built-in UDP transport
            .build()
            .expect("cannot start the almost-raft runtime")
    })
}

thread_local! {
    /// The dispatcher whose callback this thread is running, if any.
    static IN_CALLBACK: Cell<usize> = const { Cell::new(0) };
}

/// Runs the callbacks of one node, one at a time, and drops them exactly once.
struct Dispatch {
    callbacks: Mutex<Option<Box<dyn Callbacks>>>,
    closed: AtomicBool,
}

impl Dispatch {
    fn id(&self) -> usize {
        self as *const Self as usize
    }

    fn call(&self, f: impl FnOnce(&mut dyn Callbacks)) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let mut guard = self.callbacks.lock().unwrap_or_else(|p| p.into_inner());
        let Some(callbacks) = guard.as_mut() else {
            return;
        };
        let outer = IN_CALLBACK.replace(self.id());
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(callbacks.as_mut())));
        IN_CALLBACK.set(outer);
        if result.is_err() {
            tracing::error!("a callback panicked; the node goes on");
        }
    }

    fn is_current(&self) -> bool {
        IN_CALLBACK.get() == self.id()
    }

    /// No callback after this; drops the callbacks once the running one (if any) returned.
    fn finish(&self) {
        self.closed.store(true, Ordering::Release);
        let callbacks = self
            .callbacks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(callbacks);
    }
}

struct DispatchTransport(Arc<Dispatch>);

impl Transport for DispatchTransport {
    fn send(
        &self,
        to: &str,
        message: Vec<u8>,
    ) -> impl std::future::Future<Output = io::Result<()>> + Send {
        self.0.call(|cb| cb.send(to, &message));
        std::future::ready(Ok(()))
    }
}

/// Where an embedded node's messages go: to the `send` callback, or the built-in UDP transport.
enum EmbedTransport {
    Callbacks(DispatchTransport),
    Udp(udp::UdpTransport),
}

impl Transport for EmbedTransport {
    async fn send(&self, to: &str, message: Vec<u8>) -> io::Result<()> {
        match self {
            EmbedTransport::Callbacks(t) => t.send(to, message).await,
            EmbedTransport::Udp(t) => t.send(to, message).await,
        }
    }
}

/// Signalled once the node has stopped and its callbacks are dropped.
#[derive(Default)]
struct Done {
    done: Mutex<bool>,
    cond: Condvar,
}

impl Done {
    fn signal(&self) {
        *self.done.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cond.notify_all();
    }

    fn wait(&self) {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        while !*done {
            done = self.cond.wait(done).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Drops the callbacks and signals [`Done`] when dropped: at the end of a node's last task,
/// or when that task is dropped or unwinds.
struct FinishOnDrop(Arc<Dispatch>, Arc<Done>);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        self.0.finish();
        self.1.signal();
    }
}

/// Calls the leader and lease callbacks, in order, until the node stops; then `stopped`.
async fn deliver_events(dispatch: Arc<Dispatch>, shared: Arc<Shared>) {
    let mut changes = shared.subscribe();
    let mut lease = shared.watch_lease();
    let mut told: Option<Lease> = None; // the lease the application was told it holds
    loop {
        let ends = told.map(|l| l.until);
        tokio::select! {
            biased;
            // A lost lease is told first, and at its end even if the driver is late.
            _ = sleep_until_some(ends) => {}
            _ = lease.changed() => {}
            change = changes.recv() => match change {
                Some(change) => dispatch.call(|cb| cb.leader_changed(&change)),
                None => break,
            },
        }
        let now = shared.lease();
        // Lost: another term, none, or the told one ran out (even if renewed since: the
        // application must hear of the gap).
        let lapsed = told.is_some_and(|l| tokio::time::Instant::now() >= l.until);
        if let Some(lost) = told.filter(|l| lapsed || now.map(|n| n.term) != Some(l.term)) {
            dispatch.call(|cb| cb.lease_changed(false, lost.term));
            told = None;
        }
        if let (None, Some(gained)) = (told, now) {
            dispatch.call(|cb| cb.lease_changed(true, gained.term));
        }
        told = now;
    }
    if let Some(lost) = told {
        dispatch.call(|cb| cb.lease_changed(false, lost.term));
    }
    let failure = shared.failure();
    dispatch.call(|cb| cb.stopped(failure.as_ref()));
}

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A running node that talks to the application through [`Callbacks`].
pub struct EmbeddedNode {
    shared: Arc<Shared>,
    dispatch: Arc<Dispatch>,
    stop: Mutex<Option<oneshot::Sender<bool>>>,
    done: Arc<Done>,
}

impl EmbeddedNode {
    /// Starts a node on the process-wide runtime.
    /// With [`NodeBuilder::listen`], the node runs on the built-in UDP transport: it never
    /// calls `send`, and the application never calls `receive`.
    pub fn start(mut builder: NodeBuilder, callbacks: impl Callbacks) -> Result<Self, Error> {
        let runtime = runtime();
        let _entered = runtime.enter();
        let udp = builder.take_udp()?;
        let shared = builder.prepare()?;
        let dispatch = Arc::new(Dispatch {
            callbacks: Mutex::new(Some(Box::new(callbacks))),
            closed: AtomicBool::new(false),
        });
        let (stop, stopped) = oneshot::channel();
        let done = Arc::new(Done::default());
        let events = runtime.spawn(deliver_events(dispatch.clone(), shared.clone()));
        let span = tracing::info_span!("almost_raft", node = %shared.machine().id());
        let (transport, receiver) = match udp {
            Some(mut udp) => {
                let receiver = udp.background().run(shared.clone());
                (EmbedTransport::Udp(udp), Some(receiver))
            }
            None => (
                EmbedTransport::Callbacks(DispatchTransport(dispatch.clone())),
                None,
            ),
        };
        let driver = run_node(
            shared.clone(),
            BytesOutbox(transport, shared.signer.clone()),
            stopped,
        );
        // The receive loop runs as long as the driver, and its socket closes with it.
        let driver = async move {
            match receiver {
                Some(receiver) => tokio::select! {
                    result = driver => result,
                    _ = receiver => Ok(()),
                },
                None => driver.await,
            }
        };
        {
            // Whatever happens to this task, close() must not wait forever.
            let finish = FinishOnDrop(dispatch.clone(), done.clone());
            runtime.spawn(tracing::Instrument::instrument(
                async move {
                    // A failure is logged and reported by `run_node` and `Callbacks::stopped`.
                    let _ = driver.await;
                    let _ = events.await; // every event published is delivered first
                    drop(finish);
                },
                span,
            ));
        }
        Ok(EmbeddedNode {
            shared,
            dispatch,
            stop: Mutex::new(Some(stop)),
            done,
        })
    }

    fn check_open(&self) -> Result<(), Error> {
        if self
            .stop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
        {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Hands the node a message its network received.
    pub fn receive(&self, bytes: &[u8]) -> Result<(), Error> {
        self.check_open()?;
        self.shared.receive(bytes)
    }

    pub fn add_peer(&self, id: &str) -> Result<(), Error> {
        self.check_open()?;
        self.shared.with_machine(|m, now| m.add_peer(now, id))
    }

    pub fn remove_peer(&self, id: &str) -> Result<(), Error> {
        self.check_open()?;
        self.shared.with_machine(|m, now| m.remove_peer(now, id))
    }

    /// See [`crate::NodeHandle::peer_unreachable`].
    pub fn peer_unreachable(&self, id: &str) -> Result<(), Error> {
        self.check_open()?;
        self.shared
            .with_machine(|m, now| m.peer_unreachable(now, id))
    }

    /// Hands leadership to `to`, or to the most responsive peer; returns the chosen peer.
    pub fn transfer_leadership(&self, to: Option<&str>) -> Result<String, Error> {
        self.check_open()?;
        self.shared
            .with_machine(|m, now| m.transfer_leadership(now, to))
    }

    /// Rotates the cluster's keys (see [`crate::NodeHandle::set_keys`]).
    pub fn set_keys(&self, keys: &[Vec<u8>]) -> Result<(), Error> {
        self.check_open()?;
        self.shared.set_keys(keys)
    }

    pub fn status(&self) -> Result<Status, Error> {
        self.check_open()?;
        Ok(self.shared.status())
    }

    /// Whether `close()` was called. A node can also stop by itself (a failed save, an
    /// internal error, removal from its cluster): its status then says `stopped`.
    pub fn is_closed(&self) -> bool {
        self.check_open().is_err()
    }

    /// Why the node stopped by itself, if it did (see [`crate::NodeHandle::failure`]).
    pub fn failure(&self) -> Option<Error> {
        self.shared.failure()
    }

    /// Stops the node; a leader hands leadership over first. Waits until no callback runs and
    /// the callbacks are dropped, except when called from inside one of this node's callbacks:
    /// then it returns at once and the rest happens after that callback returns.
    /// Calling it again does nothing.
    pub fn close(&self) {
        let Some(stop) = self.stop.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let _ = stop.send(true);
        if self.dispatch.is_current() {
            return;
        }
        let wait = || self.done.wait();
        match tokio::runtime::Handle::try_current() {
            // On a runtime thread (another node's callback): let the runtime move on meanwhile.
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        }
    }
}

impl Drop for EmbeddedNode {
    /// A dropped node is closed (and, outside its own callbacks, waited for).
    fn drop(&mut self) {
        self.close();
    }
}
