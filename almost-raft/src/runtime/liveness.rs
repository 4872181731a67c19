//! The built-in transport's liveness channel: death evidence from the peers' kernels.
//!
//! Each node listens on TCP at its UDP address (the same port) and keeps one connection open
//! to every peer, idle once both sides said hello: their ids, and their *incarnation*, a
//! number drawn when the node starts. When a connection ends, the node dials again at once.
//! A refusal (`ECONNREFUSED`: the peer's host is up and nothing listens on the port) or a
//! hello from another incarnation (the process restarted) proves that the process it knew is
//! gone: that is reported as evidence ([`crate::NodeHandle::peer_unreachable`]), once per
//! connection. A timeout, a frozen process (SIGSTOP) or a silent host proves nothing: those
//! stay on the election timer. With a keyring, hellos are signed, and a reply must echo the
//! dialer's random nonce, so a recorded hello cannot pass for a restart.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::shared::Shared;
use super::udp::AddressBook;
use crate::auth::TAG_LEN;
use crate::id::NodeId;

const MAGIC: &[u8; 4] = b"ARL1";
/// How long a dial or a hello may take before it proves nothing.
const PATIENCE: Duration = Duration::from_secs(1);
/// Waits between dials that proved nothing, doubling up to the last.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(1);
/// A connection that resets during its hello may be the last gasp of a dying process: dial
/// again at once, this many times, before backing off.
const QUICK_REDIALS: u32 = 3;

/// One side's hello: who it is, to whom, its incarnation, and the dialer's nonce.
#[derive(Debug, PartialEq, Eq)]
struct Hello {
    from: NodeId,
    to: NodeId,
    incarnation: u64,
    nonce: u64,
}

impl Hello {
    fn encode(&self, shared: &Shared) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for id in [&self.from, &self.to] {
            out.push(id.len() as u8);
            out.extend_from_slice(id.as_bytes());
        }
        out.extend_from_slice(&self.incarnation.to_be_bytes());
        out.extend_from_slice(&self.nonce.to_be_bytes());
        if let Some(signer) = &shared.signer {
            let tag = signer.tag(&out);
            out.extend_from_slice(&tag);
        }
        let mut framed = vec![out.len() as u8];
        framed.extend_from_slice(&out);
        framed
    }

    /// Reads one framed hello; `None` when it is not one (or not signed by the cluster).
    async fn read(stream: &mut TcpStream, shared: &Shared) -> io::Result<Option<Hello>> {
        let len = stream.read_u8().await? as usize;
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await?;
        Ok(Hello::decode(&body, shared))
    }

    fn decode(body: &[u8], shared: &Shared) -> Option<Hello> {
        let signed = match &shared.signer {
            Some(signer) => {
                let (signed, tag) = body.split_at_checked(body.len().checked_sub(TAG_LEN)?)?;
                signer.check(signed, tag).then_some(signed)?
            }
            None => body,
        };
        let rest = signed.strip_prefix(MAGIC)?;
        let (from, rest) = take_id(rest)?;
        let (to, rest) = take_id(rest)?;
        let (incarnation, nonce) = rest.split_at_checked(8)?;
        Some(Hello {
            from,
            to,
            incarnation: u64::from_be_bytes(incarnation.try_into().ok()?),
            nonce: u64::from_be_bytes(nonce.try_into().ok()?),
        })
    }
}

fn take_id(bytes: &[u8]) -> Option<(NodeId, &[u8])> {
    let (&len, rest) = bytes.split_first()?;
    let (id, rest) = rest.split_at_checked(len as usize)?;
    Some((String::from_utf8(id.to_vec()).ok()?, rest))
}

/// Runs the channel until dropped: answers peers' dials on `listener`, and watches each peer.
pub(crate) async fn run(listener: TcpListener, book: Arc<AddressBook>, shared: Arc<Shared>) {
    let incarnation: u64 = rand::random();
    let me = shared.machine().id().to_owned();
    // A peer that dials us is up: its watcher dials back at once instead of after its wait.
    let wakers: Arc<BTreeMap<NodeId, Notify>> = Arc::new(
        book.peers()
            .into_iter()
            .map(|p| (p, Notify::new()))
            .collect(),
    );
    let mut tasks = JoinSet::new();
    for peer in book.peers() {
        let (book, shared, me, wakers) = (book.clone(), shared.clone(), me.clone(), wakers.clone());
        tasks.spawn(async move {
            let wake = &wakers[&peer];
            watch(&peer, &book, &shared, &me, incarnation, wake).await
        });
    }
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(FIRST_RETRY).await; // e.g. out of file descriptors
            continue;
        };
        while tasks.try_join_next().is_some() {}
        let (shared, me, wakers) = (shared.clone(), me.clone(), wakers.clone());
        tasks.spawn(async move { answer(stream, &shared, &me, incarnation, &wakers).await });
    }
}

/// A peer dialled: check its hello, answer with ours, then hold the connection open.
async fn answer(
    mut stream: TcpStream,
    shared: &Shared,
    me: &str,
    incarnation: u64,
    wakers: &BTreeMap<NodeId, Notify>,
) {
    let hello = tokio::time::timeout(PATIENCE, Hello::read(&mut stream, shared)).await;
    let Ok(Ok(Some(hello))) = hello else {
        return;
    };
    let known = shared.machine().peers().any(|p| p == hello.from);
    if hello.to != me || !known {
        return;
    }
    if let Some(wake) = wakers.get(&hello.from) {
        wake.notify_one();
    }
    let reply = Hello {
        from: me.to_owned(),
        to: hello.from,
        incarnation,
        nonce: hello.nonce,
    };
    if stream.write_all(&reply.encode(shared)).await.is_ok() {
        hold(stream).await;
    }
}

/// TCP keepalive on the channel's connections: a connection whose peer went silent (a
/// partition, a host gone) ends after about `KEEPALIVE_IDLE` + 3 `KEEPALIVE_EVERY`, with no
/// data of ours on the wire, so that the next dial finds out what became of the peer.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(2);
const KEEPALIVE_EVERY: Duration = Duration::from_secs(1);

fn keep_alive(stream: &TcpStream) {
    let probes = socket2::TcpKeepalive::new().with_time(KEEPALIVE_IDLE);
    #[cfg(any(
        target_os = "linux",
        target_os = "macos",
        target_os = "windows",
        target_os = "freebsd"
    ))]
    let probes = probes.with_interval(KEEPALIVE_EVERY).with_retries(3);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&probes) {
        tracing::debug!(error = %e, "no TCP keepalive on a liveness connection");
    }
}

/// Waits until the peer's side of the connection ends (or its keepalive gives up).
async fn hold(mut stream: TcpStream) {
    keep_alive(&stream);
    let mut buf = [0u8; 64];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

/// What one dial showed.
enum Dial {
    /// Connected to this incarnation; the connection has since ended, after this long.
    Ended(u64, Duration),
    /// Refused by the peer's host: nothing listens there.
    Refused,
    /// Reset or closed during the hello.
    Reset,
    /// Anything else (a timeout, no address, a wrong hello): proves nothing.
    Nothing,
}

/// Keeps a connection to `peer`, and reports evidence when its process is gone.
async fn watch(
    peer: &str,
    book: &AddressBook,
    shared: &Shared,
    me: &str,
    incarnation: u64,
    wake: &Notify,
) {
    let mut knew: Option<u64> = None;
    let (mut retry, mut quick) = (FIRST_RETRY, 0);
    while !shared.is_closed() {
        let dial = match book.address(peer).await {
            Ok(addr) => dial(addr, peer, shared, me, incarnation).await,
            Err(_) => Dial::Nothing,
        };
        let gone = match dial {
            Dial::Ended(seen, lasted) => {
                let restarted = knew.is_some_and(|k| k != seen);
                knew = Some(seen);
                if restarted {
                    report(shared, peer, "it restarted");
                }
                if lasted >= FIRST_RETRY {
                    (retry, quick) = (FIRST_RETRY, 0);
                    continue; // dial again at once: was that a death?
                }
                false // a peer that hangs up at once: back off
            }
            Dial::Refused => knew.take().is_some(),
            Dial::Reset if quick < QUICK_REDIALS => {
                quick += 1;
                continue;
            }
            Dial::Reset | Dial::Nothing => false,
        };
        if gone {
            report(shared, peer, "its host refused the connection");
        }
        tokio::select! {
            _ = tokio::time::sleep(retry) => retry = (retry * 2).min(LAST_RETRY),
            _ = wake.notified() => retry = FIRST_RETRY,
        }
    }
}

fn report(shared: &Shared, peer: &str, why: &str) {
    tracing::info!(%peer, "death evidence: {why}");
    let _ = shared.with_machine(|m, now| m.peer_unreachable(now, peer));
}

async fn dial(addr: SocketAddr, peer: &str, shared: &Shared, me: &str, incarnation: u64) -> Dial {
    let mut stream = match tokio::time::timeout(PATIENCE, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => return Dial::Refused,
        _ => return Dial::Nothing,
    };
    let nonce: u64 = rand::random();
    let hello = Hello {
        from: me.to_owned(),
        to: peer.to_owned(),
        incarnation,
        nonce,
    };
    let exchange = async {
        stream.write_all(&hello.encode(shared)).await?;
        Hello::read(&mut stream, shared).await
    };
    match tokio::time::timeout(PATIENCE, exchange).await {
        Ok(Ok(Some(reply))) if reply.from == peer && reply.to == me && reply.nonce == nonce => {
            let since = tokio::time::Instant::now();
            hold(stream).await;
            Dial::Ended(reply.incarnation, since.elapsed())
        }
        Ok(Err(e)) if is_reset(&e) => Dial::Reset,
        _ => Dial::Nothing,
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_reads_back_and_garbage_does_not() {
        let shared = crate::NodeBuilder::new("a").prepare().unwrap();
        let hello = Hello {
            from: "a".into(),
            to: "b".into(),
            incarnation: 7,
            nonce: 9,
        };
        let framed = hello.encode(&shared);
        assert_eq!(framed[0] as usize, framed.len() - 1);
        assert_eq!(Hello::decode(&framed[1..], &shared), Some(hello));
        assert_eq!(Hello::decode(b"ARL1\x05ab", &shared), None);
        assert_eq!(Hello::decode(b"", &shared), None);
    }
}
