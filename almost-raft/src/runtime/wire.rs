//! Where the runtime meets bytes, both ways: received bytes are decoded here before they reach
//! the machine, and the machine's messages are encoded here before they reach the
//! application's [`Transport`]. (The 0.4 API exchanges typed messages and skips this.)

use std::future::Future;
use std::io;

use crate::auth::Keyring;
use crate::codec::{decode_authenticated, encode, encode_signed};
use crate::error::Error;
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

/// Encodes (and with a keyring, signs) each message for the application's transport.
pub(crate) struct BytesOutbox<T>(pub(crate) T, pub(crate) Option<Keyring>);

impl<T: Transport> Outbox for BytesOutbox<T> {
    async fn send(&self, msg: Envelope) {
        let encoded = match &self.1 {
            Some(keyring) => encode_signed(&msg, keyring),
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
pub(crate) fn decode_received(bytes: &[u8], keyring: Option<&Keyring>) -> Result<Envelope, Error> {
    Ok(decode_authenticated(bytes, keyring)?)
}
