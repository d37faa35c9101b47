//! The listeners at 127.0.0.11:53 (UDP and TCP) inside one sandbox, served by tasks of the
//! resolver's runtime. The sockets are made inside the sandbox's namespace and live in the
//! daemon: no process per container or network.
//!
//! UDP is drained in batches (`batch`) and local answers are sent inline, so a burst costs one
//! wake-up and two system calls per 32 queries; forwards run in their own tasks. A TCP client may
//! send several queries on one connection; idle, slow or truncated ones are cut off, and a
//! sandbox has at most [`TCP_CLIENTS`] connections at once, so no client can starve others.

use super::upstream::{Origin, UdpChannel};
use super::{batch, wire, Shared};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;
use tokio::time::timeout;

/// Docker's embedded resolver address.
pub const RESOLVER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
/// Concurrent TCP connections per sandbox.
pub const TCP_CLIENTS: usize = 32;
/// How long a TCP connection may sit between queries.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// How long a started TCP query (or its reply) may take to cross.
const TCP_IO: Duration = Duration::from_secs(3);
/// TTL of local answers (Docker's `respTTL`).
const TTL: u32 = 600;

/// The sockets of one sandbox, made in its namespace.
pub struct Sockets {
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    fwd: std::net::UdpSocket,
}

impl Sockets {
    /// Binds the listeners (on ports the kernel picks) and the forwarding socket inside
    /// `netns`, and redirects 127.0.0.11:53 to them there, as Docker does: port 53 itself stays
    /// free for the container's own processes (a DNS server in a container binds 0.0.0.0:53).
    /// `resumed`: the sandbox was served by an earlier berthd (only then is there a redirect
    /// to read back; a new sandbox skips that netlink round trip on the connect path).
    pub fn bind_in(netns: &Path, resumed: bool) -> io::Result<Sockets> {
        crate::osl::netns::run_in(netns, move || {
            let nft = crate::firewall::nft::Context::new().map_err(io::Error::other)?;
            // A daemon that died left its redirect, and conntrack keeps translating the flows
            // it saw to its ports for as long as a client keeps sending (a resolver retrying
            // from one source port): the ports of the last life are bound again if free.
            let (udp_was, tcp_was) = if resumed {
                nft.run("list table ip berth_dns")
                    .ok()
                    .filter(|o| o.ok)
                    .map_or((0, 0), |o| redirected_ports(&o.output))
            } else {
                (0, 0)
            };
            let at = |port| SocketAddr::new(IpAddr::V4(RESOLVER_IP), port);
            let udp = std::net::UdpSocket::bind(at(udp_was))
                .or_else(|_| std::net::UdpSocket::bind(at(0)))?;
            let tcp = std::net::TcpListener::bind(at(tcp_was))
                .or_else(|_| std::net::TcpListener::bind(at(0)))?;
            let fwd = std::net::UdpSocket::bind("0.0.0.0:0")?;
            // three per sandbox for its whole life: above the range libnftables can use
            use berth_api::fd::lift;
            let (udp, tcp, fwd) = (lift(udp), lift(tcp), lift(fwd));
            for s in [&udp, &fwd] {
                s.set_nonblocking(true)?;
            }
            tcp.set_nonblocking(true)?;
            let script = redirect_script(udp.local_addr()?.port(), tcp.local_addr()?.port());
            let out = nft.run(&script).map_err(io::Error::other)?;
            if !out.ok {
                return Err(io::Error::other(format!(
                    "redirecting 127.0.0.11:53: {}",
                    out.error.trim()
                )));
            }
            Ok(Sockets { udp, tcp, fwd })
        })
    }
}

/// The sandbox's own nat table: queries to 127.0.0.11:53 go to the listeners' ports (replies
/// are translated back by conntrack). Rewritten whole each time (a restarted daemon binds new
/// ports).
fn redirect_script(udp: u16, tcp: u16) -> String {
    format!(
        "add table ip berth_dns\ndelete table ip berth_dns\ntable ip berth_dns {{\n\
         chain output {{ type nat hook output priority -100; policy accept;\n\
         ip daddr {RESOLVER_IP} udp dport 53 dnat to {RESOLVER_IP}:{udp}\n\
         ip daddr {RESOLVER_IP} tcp dport 53 dnat to {RESOLVER_IP}:{tcp}\n}}\n}}\n"
    )
}

/// The UDP and TCP ports `redirect_script` sent 127.0.0.11:53 to, read back from
/// `list table ip berth_dns` (0: none).
fn redirected_ports(listing: &str) -> (u16, u16) {
    let port = |proto: &str| {
        listing
            .lines()
            .find(|l| l.contains(&format!("{proto} dport 53 dnat")))
            .and_then(|l| l.trim().rsplit(':').next()?.parse().ok())
            .unwrap_or(0)
    };
    (port("udp"), port("tcp"))
}

/// One sandbox being served; dropping it stops its tasks and closes its sockets.
pub struct Served {
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Served {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts serving `container_id`'s sandbox. Must be called inside the resolver's runtime.
pub fn serve(
    shared: Arc<Shared>,
    container_id: String,
    netns: PathBuf,
    s: Sockets,
) -> io::Result<Served> {
    let udp = Arc::new(UdpSocket::from_std(s.udp)?);
    let tcp = TcpListener::from_std(s.tcp)?;
    let origin = Arc::new(Origin {
        netns,
        udp: UdpChannel::new(s.fwd)?,
    });
    let cid: Arc<str> = container_id.into();
    let t1 = tokio::spawn(serve_udp(
        Arc::clone(&shared),
        Arc::clone(&cid),
        udp,
        Arc::clone(&origin),
    ));
    let t2 = tokio::spawn(serve_tcp(shared, cid, tcp, origin));
    Ok(Served {
        tasks: vec![t1.abort_handle(), t2.abort_handle()],
    })
}

/// What to do with one query.
enum Outcome {
    Reply,
    Forward,
    Drop,
}

/// Answers `pkt` into `out` when it can be answered without an upstream.
fn local(
    shared: &Shared,
    cid: &str,
    pkt: &[u8],
    limit: Option<usize>,
    out: &mut Vec<u8>,
) -> Outcome {
    let q = match wire::parse(pkt) {
        Ok(q) => q,
        Err(wire::Reject::Drop) => return Outcome::Drop,
        Err(wire::Reject::Reply { id, flags, rcode }) => {
            wire::error_reply(id, flags, rcode, out);
            return Outcome::Reply;
        }
    };
    let limit = limit.unwrap_or_else(|| q.udp_limit());
    let names = shared.names.read().unwrap_or_else(|p| p.into_inner());
    if q.qclass == wire::CLASS_IN && q.plain {
        let name = q.name();
        match q.qtype {
            wire::TYPE_A | wire::TYPE_AAAA => {
                if let super::names::Found::Addrs(addrs) =
                    names.lookup(cid, name, q.qtype == wire::TYPE_AAAA)
                {
                    drop(names);
                    // shared aliases: each query starts the list one further on
                    let k = if addrs.len() > 1 {
                        shared.rotation() % addrs.len()
                    } else {
                        0
                    };
                    let rd = addrs.iter().cycle().skip(k).take(addrs.len());
                    let rd = rd.map(|a| wire::Rdata::Addr(*a));
                    wire::answer(&q, wire::NOERROR, rd, TTL, limit, out);
                    return Outcome::Reply;
                }
            }
            wire::TYPE_PTR => {
                if let Some(ptr) = wire::ptr_addr(name).and_then(|ip| names.reverse(cid, ip)) {
                    drop(names);
                    wire::answer(&q, wire::NOERROR, [wire::Rdata::Ptr(&ptr)], TTL, limit, out);
                    return Outcome::Reply;
                }
            }
            _ => {
                // another type for a container's name: it exists, with no such record
                if names.lookup(cid, name, false) != super::names::Found::Unknown {
                    drop(names);
                    wire::answer(&q, wire::NOERROR, [], TTL, limit, out);
                    return Outcome::Reply;
                }
            }
        }
    }
    if !names.forwards(cid) {
        drop(names);
        wire::failure(&q, wire::NXDOMAIN, out);
        return Outcome::Reply;
    }
    Outcome::Forward
}

async fn serve_udp(shared: Arc<Shared>, cid: Arc<str>, sock: Arc<UdpSocket>, origin: Arc<Origin>) {
    use std::os::fd::AsRawFd;
    let fd = sock.as_raw_fd();
    let mut forwards: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
    loop {
        if sock.readable().await.is_err() {
            return;
        }
        loop {
            let got = sock.try_io(tokio::io::Interest::READABLE, || {
                batch::serve_batch(fd, |pkt, peer, out| {
                    match local(&shared, &cid, pkt, None, out) {
                        Outcome::Reply => {}
                        Outcome::Drop => out.clear(),
                        Outcome::Forward => {
                            out.clear();
                            if let Some(a) = batch::to_socket_addr(peer) {
                                forwards.push((pkt.to_vec(), a));
                            }
                        }
                    }
                })
            });
            for (query, from) in forwards.drain(..) {
                let (shared, cid, sock, origin) = (
                    Arc::clone(&shared),
                    Arc::clone(&cid),
                    Arc::clone(&sock),
                    Arc::clone(&origin),
                );
                tokio::spawn(async move {
                    let ups = shared.upstreams(&cid);
                    let reply = shared.fwd.forward(&query, &ups, &origin, false).await;
                    let _ = sock.send_to(&reply, from).await;
                });
            }
            match got {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // an error queued on the socket (e.g. ICMP) is reported once: go on
                Err(_) => {}
            }
        }
    }
}

async fn serve_tcp(shared: Arc<Shared>, cid: Arc<str>, listener: TcpListener, origin: Arc<Origin>) {
    let slots = Arc::new(Semaphore::new(TCP_CLIENTS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // e.g. out of file descriptors: back off instead of spinning
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            continue; // over the cap: closed at once
        };
        let (shared, cid, origin) = (Arc::clone(&shared), Arc::clone(&cid), Arc::clone(&origin));
        tokio::spawn(async move {
            let _ = tcp_client(&shared, &cid, stream, &origin).await;
            drop(slot);
        });
    }
}

async fn tcp_client(
    shared: &Shared,
    cid: &str,
    mut s: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    origin: &Origin,
) -> io::Result<()> {
    let mut out = Vec::new();
    loop {
        let len = match timeout(TCP_IDLE, s.read_u16()).await {
            Ok(Ok(len)) => len as usize,
            _ => return Ok(()), // idle, closed, or reset
        };
        let mut pkt = vec![0u8; len];
        timeout(TCP_IO, s.read_exact(&mut pkt))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        let reply = match local(shared, cid, &pkt, Some(65535), &mut out) {
            Outcome::Drop => continue,
            Outcome::Reply => std::mem::take(&mut out),
            Outcome::Forward => {
                let ups = shared.upstreams(cid);
                shared.fwd.forward(&pkt, &ups, origin, true).await
            }
        };
        let mut msg = Vec::with_capacity(reply.len() + 2);
        msg.extend_from_slice(&(reply.len() as u16).to_be_bytes());
        msg.extend_from_slice(&reply);
        timeout(TCP_IO, s.write_all(&msg))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    }
}

#[cfg(test)]
#[path = "tcp_framing_tests.rs"]
mod tcp_framing_tests;

#[cfg(test)]
mod tests {
    #[test]
    fn the_ports_of_the_last_redirect_are_read_back() {
        let listing = "table ip berth_dns {\n\tchain output {\n\t\ttype nat hook output \
            priority -100; policy accept;\n\t\tip daddr 127.0.0.11 udp dport 53 dnat to \
            127.0.0.11:41234\n\t\tip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:39999\n\
            \t}\n}\n";
        assert_eq!(super::redirected_ports(listing), (41234, 39999));
        assert_eq!(super::redirected_ports(""), (0, 0));
    }
}
