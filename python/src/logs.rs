//! Forwards the core's `tracing` events to Python's `logging` (logger `almost_raft`). The
//! runtime only queues a record; a Python thread of the package logs it.

use std::fmt::Write;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use pyo3::prelude::*;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Records beyond this many, not yet logged by Python, are dropped rather than wait.
const BACKLOG: usize = 10_000;

static RECORDS: OnceLock<Mutex<Receiver<(u8, String)>>> = OnceLock::new();

struct Forward(SyncSender<(u8, String)>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for Forward {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        // Python logging levels.
        let level = match *event.metadata().level() {
            Level::ERROR => 40,
            Level::WARN => 30,
            Level::INFO => 20,
            Level::DEBUG | Level::TRACE => 10,
        };
        let mut message = Message(String::new());
        event.record(&mut message);
        let _ = self.0.try_send((level, message.0));
    }
}

/// Installs the forwarding subscriber once per process (if the application has not set one).
pub(crate) fn install() {
    RECORDS.get_or_init(|| {
        let (tx, rx) = sync_channel(BACKLOG);
        let subscriber = tracing_subscriber::registry()
            .with(Forward(tx).with_filter(tracing_subscriber::filter::LevelFilter::DEBUG));
        let _ = tracing::subscriber::set_global_default(subscriber);
        Mutex::new(rx)
    });
}

/// The next (level, message) record, or None when none came within `timeout_ms`.
#[pyfunction]
pub(crate) fn next_log(py: Python<'_>, timeout_ms: u64) -> Option<(u8, String)> {
    let records = RECORDS.get()?;
    py.detach(|| {
        records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recv_timeout(Duration::from_millis(timeout_ms))
            .ok()
    })
}
