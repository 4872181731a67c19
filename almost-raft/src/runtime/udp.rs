//! The built-in UDP transport: one socket per node, peers found by name. Hostnames are looked
//! up again every [`RESOLVE_EVERY`] and after a failed send, so that DNS-based discovery (a
//! Kubernetes headless service, docker compose) follows peers that move. The whole election
//! then runs on the library's threads: the application only hears leader changes.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::time::Instant;

use super::Transport;
use super::shared::{Shared, lock};
use crate::error::Error;
use crate::id::NodeId;

/// How long a looked-up address is used before it is looked up again.
pub const RESOLVE_EVERY: Duration = Duration::from_secs(30);

/// The largest datagram read: larger than any valid message, signed or not.
const RECEIVE_BUFFER: usize = 2048;

/// Peers' addresses by id, as given ("host:port"), and as last looked up.
pub(crate) struct AddressBook {
    names: BTreeMap<NodeId, String>,
    resolved: Mutex<HashMap<NodeId, (SocketAddr, Instant)>>,
    /// How many times a name was looked up (for the tests of when that happens).
    #[cfg(test)]
    lookups: std::sync::atomic::AtomicUsize,
}

impl AddressBook {
    pub(crate) fn new(names: BTreeMap<NodeId, String>) -> Self {
        AddressBook {
            names,
            resolved: Mutex::new(HashMap::new()),
            #[cfg(test)]
            lookups: Default::default(),
        }
    }

    /// The peers it has addresses for.
    pub(crate) fn peers(&self) -> Vec<NodeId> {
        self.names.keys().cloned().collect()
    }

    pub(crate) async fn address(&self, id: &str) -> io::Result<SocketAddr> {
        if let Some(&(addr, at)) = lock(&self.resolved).get(id)
            && at.elapsed() < RESOLVE_EVERY
        {
            return Ok(addr);
        }
        let name = self.names.get(id).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no address for peer {id:?}"),
            )
        })?;
        #[cfg(test)]
        self.lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let addr = tokio::net::lookup_host(name.as_str())
            .await?
            .next()
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{name} has no address"))
            })?;
        lock(&self.resolved).insert(id.to_owned(), (addr, Instant::now()));
        Ok(addr)
    }

    /// The address looked up for `id`, if it is still fresh (no waiting).
    pub(crate) fn cached(&self, id: &str) -> Option<SocketAddr> {
        lock(&self.resolved)
            .get(id)
            .filter(|(_, at)| at.elapsed() < RESOLVE_EVERY)
            .map(|(addr, _)| *addr)
    }

    /// After a failed send: look the peer up again next time.
    pub(crate) fn forget(&self, id: &str) {
        lock(&self.resolved).remove(id);
    }
}

pub(crate) struct UdpTransport {
    pub(crate) socket: Arc<UdpSocket>,
    pub(crate) book: Arc<AddressBook>,
    /// The liveness channel's listener (`super::liveness`), on the same address over TCP.
    pub(crate) tcp: Option<TcpListener>,
}

impl UdpTransport {
    /// Binds the node's UDP socket and, on the same address, its TCP liveness listener. A
    /// TCP port already taken costs only the death evidence: the node runs without it.
    pub(crate) fn bind(listen: &str, book: AddressBook) -> Result<Self, Error> {
        let socket = bind(listen)?;
        let tcp = socket.local_addr().and_then(|addr| {
            let listener = std::net::TcpListener::bind(addr)?;
            listener.set_nonblocking(true)?;
            TcpListener::from_std(listener)
        });
        let tcp = tcp
            .inspect_err(|e| tracing::warn!(error = %e, "no liveness channel (TCP on the UDP address): failover on a crash waits for the election timeout"))
            .ok();
        Ok(UdpTransport {
            socket,
            book: Arc::new(book),
            tcp,
        })
    }

    /// What must run beside the node (see [`Background::run`]); taken once.
    pub(crate) fn background(&mut self) -> Background {
        Background {
            socket: self.socket.clone(),
            book: self.book.clone(),
            tcp: self.tcp.take(),
        }
    }
}

/// The built-in transport's work beside the node's driver.
pub(crate) struct Background {
    socket: Arc<UdpSocket>,
    book: Arc<AddressBook>,
    tcp: Option<TcpListener>,
}

impl Background {
    /// Receives datagrams, and runs the liveness channel, until dropped.
    pub(crate) async fn run(self, shared: Arc<Shared>) {
        let receiving = receive(self.socket, shared.clone());
        match self.tcp {
            Some(tcp) => {
                let liveness = super::liveness::run(tcp, self.book, shared);
                tokio::join!(receiving, liveness);
            }
            None => receiving.await,
        }
    }
}

impl Transport for UdpTransport {
    async fn send(&self, to: &str, message: Vec<u8>) -> io::Result<()> {
        let addr = self.book.address(to).await?;
        let sent = self.socket.send_to(&message, addr).await;
        if sent.is_err() {
            self.book.forget(to);
        }
        sent.map(|_| ())
    }
}

/// Binds the node's socket (a hostname is looked up once, here).
pub(crate) fn bind(listen: &str) -> Result<Arc<UdpSocket>, Error> {
    let invalid = |reason: String| {
        Error::Config(crate::config::ConfigError {
            field: "listen",
            reason,
        })
    };
    let socket = std::net::UdpSocket::bind(listen)
        .map_err(|e| invalid(format!("cannot listen on {listen:?}: {e}")))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(Arc::new(
        UdpSocket::from_std(socket).map_err(|e| invalid(e.to_string()))?,
    ))
}

/// Hands every datagram to the node until it stops. Refused datagrams (malformed, foreign,
/// unsigned) cost nothing but a debug line: the node goes on.
async fn receive(socket: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; RECEIVE_BUFFER];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => match shared.receive(&buf[..n]) {
                Err(Error::Closed | Error::Stopped) => return,
                Err(e) => tracing::debug!(%from, error = %e, "datagram refused"),
                Ok(()) => {}
            },
            // E.g. ECONNREFUSED after a send to a peer that is down: nothing to do here.
            Err(e) => tracing::debug!(error = %e, "receive failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    /// The claim of the docs: a name is looked up again every RESOLVE_EVERY, and after a
    /// failed send; in between, the address looked up is used.
    #[tokio::test(start_paused = true)]
    async fn names_are_looked_up_again_after_resolve_every_and_after_a_failure() {
        let book = AddressBook::new([("b".to_owned(), "127.0.0.1:9".to_owned())].into());
        let lookups = || book.lookups.load(Ordering::Relaxed);
        assert_eq!(book.address("b").await.unwrap().port(), 9);
        book.address("b").await.unwrap();
        assert_eq!(lookups(), 1, "used as looked up");
        tokio::time::advance(RESOLVE_EVERY).await;
        book.address("b").await.unwrap();
        assert_eq!(lookups(), 2, "looked up again after RESOLVE_EVERY");
        book.forget("b"); // what a failed send does
        book.address("b").await.unwrap();
        assert_eq!(lookups(), 3, "looked up again after a failure");
        let err = book.address("stranger").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
