//! Forwarding what is not a container's name to upstream servers, avoiding the known failure
//! modes of Docker's and aardvark's resolvers:
//! - each upstream gets a share of a 4 s budget, so the client (5 s by default) always hears
//!   back, even when every upstream is down;
//! - an upstream that timed out is skipped for a while (every upstream down: SERVFAIL at once);
//! - at most [`MAX_IN_FLIGHT`] forwards at a time, past which the answer is REFUSED at once;
//! - UDP sockets are long-lived (one per sandbox, one for the host) with queries matched by id,
//!   source and question; TCP is used when the client asked over TCP.

use super::resolvconf::Upstream;
use super::wire;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};
use tokio::sync::{oneshot, Semaphore};
use tokio::time::timeout;

/// Docker's `maxConcurrent`.
pub const MAX_IN_FLIGHT: usize = 1024;
/// What one forwarded query may take in all, below the clients' usual 5 s.
const BUDGET: Duration = Duration::from_secs(4);
/// How long an upstream that timed out is skipped.
const DEAD_FOR: Duration = Duration::from_secs(10);

fn ms_lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Pending {
    from: SocketAddr,
    query: Vec<u8>,
    tx: oneshot::Sender<Vec<u8>>,
}

/// A long-lived UDP socket that carries many queries at once, matched by id.
pub struct UdpChannel {
    sock: Arc<UdpSocket>,
    pending: Mutex<HashMap<u16, Pending>>,
    reader: Mutex<Option<tokio::task::AbortHandle>>,
}

impl UdpChannel {
    /// Wraps a bound, non-blocking socket; must be called inside the resolver's runtime.
    pub fn new(sock: std::net::UdpSocket) -> io::Result<Arc<UdpChannel>> {
        let ch = Arc::new(UdpChannel {
            sock: Arc::new(UdpSocket::from_std(sock)?),
            pending: Mutex::new(HashMap::new()),
            reader: Mutex::new(None),
        });
        let weak = Arc::downgrade(&ch);
        let sock = Arc::clone(&ch.sock);
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65535];
            loop {
                // errors here are per datagram (e.g. an ICMP error queued on the socket)
                let got = sock.recv_from(&mut buf).await;
                let Some(ch) = weak.upgrade() else { return };
                let Ok((n, from)) = got else { continue };
                let reply = &buf[..n];
                let Some(id) = reply.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
                    continue;
                };
                let mut pending = ms_lock(&ch.pending);
                let matches = pending
                    .get(&id)
                    .is_some_and(|p| p.from == from && wire::same_question(&p.query, reply));
                if matches {
                    let p = pending.remove(&id).expect("checked");
                    let _ = p.tx.send(reply.to_vec());
                }
            }
        });
        *ms_lock(&ch.reader) = Some(task.abort_handle());
        Ok(ch)
    }

    /// Sends `query` to `to` under a fresh id and waits for the matching reply, which is
    /// returned with the query's own id.
    async fn exchange(&self, query: &[u8], to: SocketAddr, wait: Duration) -> io::Result<Vec<u8>> {
        let mut q = query.to_vec();
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut pending = ms_lock(&self.pending);
            let id = loop {
                let id: u16 = rand::random();
                if !pending.contains_key(&id) {
                    break id;
                }
            };
            q[..2].copy_from_slice(&id.to_be_bytes());
            pending.insert(
                id,
                Pending {
                    from: to,
                    query: q.clone(),
                    tx,
                },
            );
            id
        };
        let sent = self.sock.send_to(&q, to).await;
        let got = match sent {
            Ok(_) => timeout(wait, rx).await,
            Err(e) => {
                ms_lock(&self.pending).remove(&id);
                return Err(e);
            }
        };
        ms_lock(&self.pending).remove(&id);
        match got {
            Ok(Ok(mut reply)) => {
                reply[..2].copy_from_slice(&query[..2]);
                Ok(reply)
            }
            _ => Err(io::ErrorKind::TimedOut.into()),
        }
    }
}

impl Drop for UdpChannel {
    fn drop(&mut self) {
        if let Some(t) = ms_lock(&self.reader).take() {
            t.abort();
        }
    }
}

/// Where a sandbox's forwards leave from.
pub struct Origin {
    /// The sandbox's namespace, for TCP sockets.
    pub netns: PathBuf,
    /// A UDP socket made inside the sandbox's namespace.
    pub udp: Arc<UdpChannel>,
}

/// A TCP socket made in `netns` (sockets stay in the namespace they were made in).
fn tcp_socket_in(netns: Option<PathBuf>, v6: bool) -> io::Result<TcpSocket> {
    let make = move || -> io::Result<OwnedFd> {
        let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        let fd = unsafe {
            libc::socket(
                family,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let fd = match netns {
        Some(p) => crate::osl::netns::run_in(&p, make)?,
        None => make()?,
    };
    Ok(TcpSocket::from_std_stream(std::net::TcpStream::from(fd)))
}

async fn tcp_exchange(sock: TcpSocket, query: &[u8], to: SocketAddr) -> io::Result<Vec<u8>> {
    let mut s = sock.connect(to).await?;
    let mut msg = Vec::with_capacity(query.len() + 2);
    msg.extend_from_slice(&(query.len() as u16).to_be_bytes());
    msg.extend_from_slice(query);
    s.write_all(&msg).await?;
    let len = s.read_u16().await? as usize;
    let mut reply = vec![0u8; len];
    s.read_exact(&mut reply).await?;
    if !wire::same_question(query, &reply) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "reply to another question",
        ));
    }
    Ok(reply)
}

/// The forwarding side of the resolver, shared by every sandbox.
pub struct Forwarder {
    in_flight: Arc<Semaphore>,
    dead: Mutex<HashMap<SocketAddr, Instant>>,
    host: Arc<UdpChannel>,
}

impl Forwarder {
    /// `host`: a UDP socket in the host's namespace, for loopback upstreams.
    pub fn new(host: Arc<UdpChannel>) -> Forwarder {
        Forwarder {
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            dead: Mutex::new(HashMap::new()),
            host,
        }
    }

    fn alive(&self, u: &Upstream) -> bool {
        let mut dead = ms_lock(&self.dead);
        match dead.get(&u.addr) {
            Some(until) if *until > Instant::now() => false,
            Some(_) => {
                dead.remove(&u.addr);
                true
            }
            None => true,
        }
    }

    /// The reply to `query` (a parsed, valid query) from the first upstream that gives a
    /// usable one, or SERVFAIL/REFUSED. Never takes longer than the budget.
    pub async fn forward(
        &self,
        query: &[u8],
        ups: &[Upstream],
        from: &Origin,
        tcp: bool,
    ) -> Vec<u8> {
        let fail = |rcode| {
            let mut out = Vec::new();
            match wire::parse(query) {
                Ok(q) => wire::failure(&q, rcode, &mut out),
                Err(_) => wire::error_reply(0, 0, rcode, &mut out),
            }
            out
        };
        let Ok(_permit) = Arc::clone(&self.in_flight).try_acquire_owned() else {
            return fail(wire::REFUSED);
        };
        let live: Vec<&Upstream> = ups.iter().filter(|u| self.alive(u)).collect();
        if live.is_empty() {
            return fail(wire::SERVFAIL);
        }
        let wait = BUDGET / live.len() as u32;
        let mut last = None;
        for u in live {
            let got = if tcp {
                let netns = (!u.host_ns).then(|| from.netns.clone());
                let v6 = u.addr.is_ipv6();
                let sock = tokio::task::spawn_blocking(move || tcp_socket_in(netns, v6)).await;
                match sock {
                    Ok(Ok(s)) => timeout(wait, tcp_exchange(s, query, u.addr))
                        .await
                        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into())),
                    Ok(Err(e)) => Err(e),
                    Err(e) => Err(io::Error::other(e)),
                }
            } else {
                let ch = if u.host_ns { &self.host } else { &from.udp };
                ch.exchange(query, u.addr, wait).await
            };
            match got {
                // a server that refuses or fails may be alone in that: ask the next
                Ok(r) if matches!(wire::rcode_of(&r), Some(wire::SERVFAIL | wire::REFUSED)) => {
                    last = Some(r)
                }
                Ok(r) => return r,
                Err(e) => {
                    if e.kind() == io::ErrorKind::TimedOut {
                        ms_lock(&self.dead).insert(u.addr, Instant::now() + DEAD_FOR);
                    }
                    tracing::debug!("dns upstream {}: {e}", u.addr);
                }
            }
        }
        last.unwrap_or_else(|| fail(wire::SERVFAIL))
    }
}
