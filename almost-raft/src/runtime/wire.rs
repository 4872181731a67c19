//! Where the runtime meets bytes, both ways: received bytes are decoded here before they reach
//! the machine, and the machine's messages are encoded here before they reach the
//! application's [`Transport`]. (The 0.4 API exchanges typed messages and skips this.)

use std::future::Future;
use std::io;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::{AuthError, Keyring};
use crate::codec::{EncodeError, decode_authenticated, encode, encode_signed};
use crate::error::Error;
use crate::id::NodeId;
use crate::message::Envelope;

use super::outbox::Outbox;

/// How a node's messages reach its peers. Implement it for your network, or pass a closure
/// `Fn(&str, Vec<u8>)` that hands the bytes on without blocking.
///
/// Each call is bounded by the message timeout; one peer's slow sends never delay another's.
pub trait Transport: Send + Sync + 'static {
    /// Sends `message` to the peer `to`. Errors are logged, and the message is lost: the
    /// election protocol tolerates lost messages.
    fn send(&self, to: &str, message: Vec<u8>) -> impl Future<Output = io::Result<()>> + Send;
}

impl<F: Fn(&str, Vec<u8>) + Send + Sync + 'static> Transport for F {
    fn send(&self, to: &str, message: Vec<u8>) -> impl Future<Output = io::Result<()>> + Send {
        self(to, message);
        std::future::ready(Ok(()))
    }
}

/// Encodes (and with a keyring, signs and numbers) each message for the application's
/// transport.
pub(crate) struct BytesOutbox<T>(pub(crate) T, pub(crate) Option<Arc<Signer>>);

/// Signs a node's messages and numbers them: the numbers start at the wall clock's
/// microseconds when the node starts and grow by one a message, so that receivers can refuse
/// replays (docs/wire.md, "Replays"), also after this node restarts.
pub(crate) struct Signer {
    /// Replaced whole when the keys rotate ([`Signer::replace`]).
    keyring: RwLock<Keyring>,
    next_seq: AtomicU64,
}

impl Signer {
    pub(crate) fn new(keyring: Keyring) -> Self {
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        Signer {
            keyring: RwLock::new(keyring),
            next_seq: AtomicU64::new(start),
        }
    }

    fn keyring(&self) -> RwLockReadGuard<'_, Keyring> {
        self.keyring.read().unwrap_or_else(|p| p.into_inner())
    }

    fn sign(&self, msg: &Envelope) -> Result<Vec<u8>, EncodeError> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        encode_signed(msg, seq, &self.keyring())
    }

    /// The tag of `bytes` under the signing key (the liveness channel's hellos).
    pub(crate) fn tag(&self, bytes: &[u8]) -> [u8; crate::auth::TAG_LEN] {
        self.keyring().sign(bytes)
    }

    /// Whether `tag` is the tag of `bytes` under one of the keys.
    pub(crate) fn check(&self, bytes: &[u8], tag: &[u8]) -> bool {
        self.keyring().verify(bytes, tag).is_ok()
    }

    /// Rotates the keys: from now on `keyring`'s first key signs, and only its keys verify.
    pub(crate) fn replace(&self, keyring: Keyring) {
        *self.keyring.write().unwrap_or_else(|p| p.into_inner()) = keyring;
    }
}

/// The keyring of `keys`, or the config error that names `keys` (at start and on rotation).
pub(crate) fn keyring_of(keys: &[Vec<u8>]) -> Result<Keyring, Error> {
    Keyring::new(keys).map_err(|e| {
        Error::Config(crate::config::ConfigError {
            field: "keys",
            reason: e.to_string(),
        })
    })
}

/// The last signed message accepted from each sender, as (term, sequence number): a message
/// must come after it to be accepted.
#[derive(Default)]
pub(crate) struct ReplayGuard(Mutex<HashMap<NodeId, (u64, u64)>>);

impl ReplayGuard {
    /// Accepts `msg` (numbered `seq`) if it comes after the sender's last accepted message.
    fn admit(&self, msg: &Envelope, seq: u64) -> Result<(), Error> {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match last.get(&msg.from) {
            Some(&(term, prior)) if (msg.term, seq) <= (term, prior) => {
                Err(Error::Unauthenticated(AuthError::Replayed))
            }
            _ => {
                last.insert(msg.from.clone(), (msg.term, seq));
                Ok(())
            }
        }
    }
}

impl<T: Transport> Outbox for BytesOutbox<T> {
    async fn send(&self, msg: Envelope) {
        let encoded = match &self.1 {
            Some(signer) => signer.sign(&msg),
            None => encode(&msg),
        };
        match encoded {
            Ok(bytes) => {
                if let Err(e) = self.0.send(&msg.to, bytes).await {
                    tracing::debug!(to = %msg.to, error = %e, "send failed");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot encode a message"),
        }
    }
}

/// Decodes what the application received: a malformed message, or one without a valid tag
/// under the keyring, is refused here, before it reaches the machine.
pub(crate) fn decode_received(
    bytes: &[u8],
    signer: Option<&Signer>,
    replays: &ReplayGuard,
) -> Result<Envelope, Error> {
    let (msg, seq) = match signer {
        Some(signer) => decode_authenticated(bytes, Some(&signer.keyring()))?,
        None => decode_authenticated(bytes, None)?,
    };
    if let Some(seq) = seq {
        replays.admit(&msg, seq)?;
    }
    Ok(msg)
}
