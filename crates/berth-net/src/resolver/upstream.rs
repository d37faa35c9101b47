//! Forwarding what is not a container's name to upstream servers, avoiding the known failure
//! modes of Docker's and aardvark's resolvers:
//! - each upstream gets a share of a 4 s budget, so the client (5 s by default) always hears
//!   back, even when every upstream is down;
//! - an upstream that timed out is skipped for a while by the namespace it timed out from
//!   (every upstream down: SERVFAIL at once); another sandbox may have a route to it;
//! - at most [`MAX_IN_FLIGHT`] forwards at a time, past which the answer is REFUSED at once;
//! - UDP sockets are long-lived (one per sandbox, one for the host) with queries matched by id,
//!   source and question; TCP is used when the client asked over TCP.

use super::resolvconf::Upstream;
use super::wire;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
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
        let domain = if v6 {
            socket2::Domain::IPV6
        } else {
            socket2::Domain::IPV4
        };
        // close-on-exec, as socket2 makes every socket
        let s = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
        s.set_nonblocking(true)?;
        Ok(s.into())
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

/// Upstreams that timed out lately, per (upstream, namespace the query left from: `None` for
/// the host's): one sandbox's missing route or firewall says nothing of another's.
#[derive(Default)]
struct Health(Mutex<HashMap<(SocketAddr, Option<PathBuf>), Instant>>);

impl Health {
    fn alive(&self, to: SocketAddr, ns: Option<&Path>, now: Instant) -> bool {
        let dead = ms_lock(&self.0);
        let key = (to, ns.map(Path::to_path_buf));
        dead.get(&key).is_none_or(|until| *until <= now)
    }

    fn timed_out(&self, to: SocketAddr, ns: Option<&Path>, now: Instant) {
        let mut dead = ms_lock(&self.0);
        // expired entries go here, so namespaces that are gone do not pile up
        dead.retain(|_, until| *until > now);
        dead.insert((to, ns.map(Path::to_path_buf)), now + DEAD_FOR);
    }
}

/// The forwarding side of the resolver, shared by every sandbox.
pub struct Forwarder {
    in_flight: Arc<Semaphore>,
    dead: Health,
    host: Arc<UdpChannel>,
}

impl Forwarder {
    /// `host`: a UDP socket in the host's namespace, for loopback upstreams.
    pub fn new(host: Arc<UdpChannel>) -> Forwarder {
        Forwarder {
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            dead: Health::default(),
            host,
        }
    }

    /// The namespace queries to `u` leave from: the host's, or the sandbox's.
    fn leaves_from<'a>(u: &Upstream, from: &'a Origin) -> Option<&'a Path> {
        (!u.host_ns).then_some(from.netns.as_path())
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
        let now = Instant::now();
        let live: Vec<&Upstream> = ups
            .iter()
            .filter(|u| self.dead.alive(u.addr, Self::leaves_from(u, from), now))
            .collect();
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
                        let ns = Self::leaves_from(u, from);
                        self.dead.timed_out(u.addr, ns, Instant::now());
                    }
                    tracing::debug!("dns upstream {}: {e}", u.addr);
                }
            }
        }
        last.unwrap_or_else(|| fail(wire::SERVFAIL))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn health_is_per_upstream_and_namespace_and_expires() {
        let h = Health::default();
        let up: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let (a, b) = (Path::new("/run/netns/a"), Path::new("/run/netns/b"));
        let t = Instant::now();
        h.timed_out(up, Some(a), t);
        assert!(!h.alive(up, Some(a), t));
        assert!(h.alive(up, Some(b), t) && h.alive(up, None, t));
        assert!(h.alive("192.0.2.2:53".parse().unwrap(), Some(a), t));
        assert!(h.alive(up, Some(a), t + DEAD_FOR));
        // a later timeout elsewhere sweeps the expired entry
        h.timed_out(up, Some(b), t + DEAD_FOR);
        assert_eq!(ms_lock(&h.0).len(), 1);
    }

    /// A query as the resolver forwards it: id, RD, one question (`a.example. A IN`).
    fn query() -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x01a\x07example\x00\x00\x01\x00\x01");
        q
    }

    #[tokio::test]
    async fn one_sandboxs_timeout_leaves_the_upstream_to_the_others() {
        // the upstream: silent at first (a sandbox without a route to it), then answering
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let up = Upstream {
            addr: server.local_addr().unwrap(),
            host_ns: false,
        };
        let answer = Arc::new(AtomicBool::new(false));
        let on = answer.clone();
        std::thread::spawn(move || loop {
            let mut b = [0u8; 512];
            let Ok((n, from)) = server.recv_from(&mut b) else {
                return;
            };
            if on.load(Ordering::SeqCst) {
                b[2] |= 0x80; // QR: the question echoed back as an empty answer
                let _ = server.send_to(&b[..n], from);
            }
        });
        let chan = || {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_nonblocking(true).unwrap();
            UdpChannel::new(s).unwrap()
        };
        let fw = Forwarder::new(chan());
        let origin = |ns: &str| Origin {
            netns: PathBuf::from(ns),
            udp: chan(),
        };
        let (a, b) = (origin("/run/netns/a"), origin("/run/netns/b"));
        let r = fw
            .forward(&query(), std::slice::from_ref(&up), &a, false)
            .await;
        assert_eq!(wire::rcode_of(&r), Some(wire::SERVFAIL));
        answer.store(true, Ordering::SeqCst);
        let r = fw
            .forward(&query(), std::slice::from_ref(&up), &b, false)
            .await;
        assert_eq!(wire::rcode_of(&r), Some(0), "b still asks the upstream");
        assert_eq!(r[..2], [0x12, 0x34]);
        // a skips it for a while: SERVFAIL at once
        let t = Instant::now();
        let r = fw
            .forward(&query(), std::slice::from_ref(&up), &a, false)
            .await;
        assert_eq!(wire::rcode_of(&r), Some(wire::SERVFAIL));
        assert!(t.elapsed() < Duration::from_millis(500));
    }
}
