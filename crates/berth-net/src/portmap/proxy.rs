//! berthd's one proxy, for the bindings the kernel cannot translate: IPv6 loopback (`::1` is
//! never routed off the host, so no DNAT can send it to a container) and IPv6 host addresses
//! published for a container that has only IPv4 (NAT cannot change the address family).
//!
//! The proxy serves the very sockets that hold those ports: TCP ones listen, UDP ones receive.
//! One thread waits on one epoll set for all of them, however many ports are published; each
//! accepted connection (or UDP flow) is relayed by a task on the daemon's runtime. Traffic the
//! kernel does translate never reaches these sockets: DNAT happens before local delivery.

use super::host::Relay;
use super::spec::Proto;
use socket2::Socket;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A UDP flow without traffic for this long is forgotten (conntrack's default for UDP streams
/// is 120 s, for single datagrams 30 s).
const UDP_IDLE: Duration = Duration::from_secs(60);
/// UDP flows one published socket relays at once: each holds a socket and a 64 KiB buffer,
/// and any sender can open one per source port. When full, datagrams from new clients are
/// dropped until a flow goes idle, as a full conntrack table drops new flows. (docker-proxy
/// has no cap; 1024 × 64 KiB bounds a port's share at 64 MiB.)
const MAX_UDP_FLOWS_PER_PORT: usize = if cfg!(test) { 8 } else { 1024 };
/// How long a relayed TCP connection may take to reach the container.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

struct Entry {
    sock: Arc<Socket>,
    proto: Proto,
    to: SocketAddr,
    /// Relayed TCP connections: ended with the binding (an accepted socket would otherwise
    /// keep the port busy for the container's next start).
    tasks: Vec<tokio::task::AbortHandle>,
}

#[derive(Default)]
struct Inner {
    by_fd: HashMap<RawFd, Entry>,
    by_key: HashMap<String, Vec<RawFd>>,
}

/// UDP flows: per (published socket, client), the socket connected to the container. Sent to
/// directly (a new tokio socket does not know yet that it is writable), read by a task.
type Flows = Arc<Mutex<HashMap<(RawFd, SocketAddr), Flow>>>;

struct Flow {
    send: Arc<std::net::UdpSocket>,
    task: tokio::task::AbortHandle,
}

pub struct Proxy {
    epoll: Arc<OwnedFd>,
    inner: Arc<Mutex<Inner>>,
    flows: Flows,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Proxy {
    /// Starts the proxy thread. Must be called from within the daemon's tokio runtime (the
    /// relays run on it).
    pub fn start() -> io::Result<Proxy> {
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|e| io::Error::other(format!("no async runtime: {e}")))?;
        // SAFETY: plain syscall; the fd is owned right away.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor nobody else owns.
        let epoll = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let flows: Flows = Arc::default();
        let (ep, inn, fl) = (epoll.clone(), inner.clone(), flows.clone());
        std::thread::Builder::new()
            .name("berth-proxy".into())
            .spawn(move || serve(ep, inn, fl, rt))?;
        Ok(Proxy {
            epoll,
            inner,
            flows,
        })
    }

    /// Serves `relays` (the held sockets of container `key`).
    pub fn add(&self, key: &str, relays: Vec<Relay>) -> io::Result<()> {
        let result = (|| {
            for r in relays {
                let Some(sock) = r.held.0 else { continue };
                if r.proto == Proto::Tcp {
                    sock.listen(1024)?;
                }
                sock.set_nonblocking(true)?;
                let fd = sock.as_raw_fd();
                let mut ev = libc::epoll_event {
                    events: libc::EPOLLIN as u32,
                    u64: fd as u64,
                };
                let mut inner = lock(&self.inner);
                // SAFETY: both descriptors are live; `ev` outlives the call.
                if unsafe {
                    libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev)
                } != 0
                {
                    return Err(io::Error::last_os_error());
                }
                inner.by_fd.insert(
                    fd,
                    Entry {
                        sock: Arc::new(sock),
                        proto: r.proto,
                        to: r.to,
                        tasks: Vec::new(),
                    },
                );
                inner.by_key.entry(key.to_string()).or_default().push(fd);
            }
            Ok(())
        })();
        if result.is_err() {
            self.remove(key);
        }
        result
    }

    /// Stops serving container `key`'s sockets and closes them, with the connections and
    /// flows relayed through them.
    pub fn remove(&self, key: &str) {
        let mut inner = lock(&self.inner);
        let fds = inner.by_key.remove(key).unwrap_or_default();
        lock(&self.flows).retain(|(fd, _), flow| {
            let ours = fds.contains(fd);
            if ours {
                flow.task.abort();
            }
            !ours
        });
        for fd in fds {
            // SAFETY: `fd` is still open (owned by the entry removed just after).
            unsafe {
                libc::epoll_ctl(
                    self.epoll.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    fd,
                    std::ptr::null_mut(),
                )
            };
            if let Some(e) = inner.by_fd.remove(&fd) {
                e.tasks.iter().for_each(|t| t.abort());
            }
        }
    }
}

fn serve(epoll: Arc<OwnedFd>, inner: Arc<Mutex<Inner>>, flows: Flows, rt: tokio::runtime::Handle) {
    let _guard = rt.enter();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 64];
    loop {
        // SAFETY: `events` has room for 64 entries.
        let n = unsafe { libc::epoll_wait(epoll.as_raw_fd(), events.as_mut_ptr(), 64, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            tracing::error!("proxy: epoll_wait: {}", io::Error::last_os_error());
            return;
        }
        for ev in &events[..n as usize] {
            let fd = ev.u64 as RawFd;
            let (sock, proto, to) = {
                let inner = lock(&inner);
                match inner.by_fd.get(&fd) {
                    Some(e) => (e.sock.clone(), e.proto, e.to),
                    None => continue,
                }
            };
            match proto {
                Proto::Udp => udp_ready(fd, &sock, to, &flows),
                _ => tcp_ready(fd, &sock, to, &inner),
            }
        }
    }
}

fn tcp_ready(fd: RawFd, listener: &Socket, to: SocketAddr, inner: &Mutex<Inner>) {
    loop {
        match listener.accept() {
            Ok((client, _)) => {
                let task = tokio::spawn(async move {
                    if let Err(e) = relay_tcp(client, to).await {
                        tracing::debug!("proxy to {to}: {e}");
                    }
                });
                match lock(inner).by_fd.get_mut(&fd) {
                    Some(e) => {
                        e.tasks.retain(|t| !t.is_finished());
                        e.tasks.push(task.abort_handle());
                    }
                    // the binding went meanwhile
                    None => task.abort(),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => {
                tracing::warn!("proxy: accept: {e}");
                return;
            }
        }
    }
}

async fn relay_tcp(client: Socket, to: SocketAddr) -> io::Result<()> {
    client.set_nonblocking(true)?;
    let mut client = tokio::net::TcpStream::from_std(client.into())?;
    let mut upstream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(to))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// Datagrams from clients go to the container through one connected socket per client; a task
/// per client sends the answers back from the published port.
fn udp_ready(fd: RawFd, sock: &Arc<Socket>, to: SocketAddr, flows: &Flows) {
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 65536];
    loop {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok((n, from)) => match from.as_socket() {
                Some(a) => (n, a),
                None => continue,
            },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => {
                tracing::debug!("proxy: recv: {e}");
                return;
            }
        };
        // SAFETY: recv_from initialised the first `n` bytes.
        let data: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr() as *const u8, n) };
        let flow = lock(flows).get(&(fd, from)).map(|f| f.send.clone());
        let flow = match flow {
            Some(f) => f,
            None => match new_flow(fd, sock.clone(), from, to, flows.clone()) {
                Ok(f) => f,
                Err(e) => {
                    tracing::debug!("proxy: udp flow to {to}: {e}");
                    continue;
                }
            },
        };
        let _ = flow.send(data);
    }
}

fn new_flow(
    fd: RawFd,
    listener: Arc<Socket>,
    client: SocketAddr,
    to: SocketAddr,
    flows: Flows,
) -> io::Result<Arc<std::net::UdpSocket>> {
    let local: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let full = lock(&flows).keys().filter(|(f, _)| *f == fd).count() >= MAX_UDP_FLOWS_PER_PORT;
    if full {
        return Err(io::Error::other(format!(
            "{MAX_UDP_FLOWS_PER_PORT} UDP flows already: datagram from {client} dropped"
        )));
    }
    let s = std::net::UdpSocket::bind(local)?;
    s.connect(to)?;
    s.set_nonblocking(true)?;
    let up = tokio::net::UdpSocket::from_std(s.try_clone()?)?;
    let send = Arc::new(s);
    let mut map = lock(&flows);
    let task = tokio::spawn({
        let flows = flows.clone();
        async move {
            let mut buf = vec![0u8; 65536];
            while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, up.recv(&mut buf)).await {
                let _ = listener.send_to(&buf[..n], &client.into());
            }
            lock(&flows).remove(&(fd, client));
        }
    });
    map.insert(
        (fd, client),
        Flow {
            send: send.clone(),
            task: task.abort_handle(),
        },
    );
    Ok(send)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portmap::host::{HostPorts, Kernel};
    use std::io::{Read, Write};
    use std::net::IpAddr;

    #[test]
    fn relays_tcp_and_udp_from_ipv6_loopback_to_ipv4() {
        crate::testing::block_on_in_new_netns(|| async {
            crate::testing::run(&["ip", "link", "set", "lo", "up"]);
            // the "container": an IPv4 echo server on loopback
            let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let tcp_to = tcp.local_addr().unwrap();
            std::thread::spawn(move || {
                for c in tcp.incoming() {
                    let mut c = c.unwrap();
                    let mut b = [0u8; 5];
                    c.read_exact(&mut b).unwrap();
                    c.write_all(&b).unwrap();
                }
            });
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let udp_to = udp.local_addr().unwrap();
            std::thread::spawn(move || loop {
                let mut b = [0u8; 64];
                let (n, from) = udp.recv_from(&mut b).unwrap();
                udp.send_to(&b[..n], from).unwrap();
            });
            let k = Kernel::default();
            let v6: IpAddr = "::".parse().unwrap();
            let relays = vec![
                Relay {
                    held: k.hold(Proto::Tcp, v6, 18443).unwrap(),
                    proto: Proto::Tcp,
                    to: tcp_to,
                },
                Relay {
                    held: k.hold(Proto::Udp, v6, 18443).unwrap(),
                    proto: Proto::Udp,
                    to: udp_to,
                },
            ];
            k.proxy("c1", relays).unwrap();
            let out = tokio::task::spawn_blocking(|| {
                let mut c = std::net::TcpStream::connect("[::1]:18443").unwrap();
                c.write_all(b"hello").unwrap();
                let mut b = [0u8; 5];
                c.read_exact(&mut b).unwrap();
                let u = std::net::UdpSocket::bind("[::1]:0").unwrap();
                u.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                u.send_to(b"ping", "[::1]:18443").unwrap();
                let mut r = [0u8; 8];
                let (n, from) = u.recv_from(&mut r).unwrap();
                (b, r[..n].to_vec(), from)
            })
            .await
            .unwrap();
            assert_eq!(&out.0, b"hello");
            assert_eq!(out.1, b"ping");
            assert_eq!(out.2, "[::1]:18443".parse().unwrap());
            // flows are capped per published port: clients past the cap get nothing
            let answered = tokio::task::spawn_blocking(|| {
                let clients: Vec<_> = (0..MAX_UDP_FLOWS_PER_PORT + 3)
                    .map(|_| std::net::UdpSocket::bind("[::1]:0").unwrap())
                    .collect();
                let mut answered = 0;
                for u in &clients {
                    u.set_read_timeout(Some(Duration::from_millis(300)))
                        .unwrap();
                    u.send_to(b"x", "[::1]:18443").unwrap();
                    let mut r = [0u8; 8];
                    answered += u.recv_from(&mut r).is_ok() as usize;
                }
                answered
            })
            .await
            .unwrap();
            // the first client's flow is still open
            assert_eq!(answered, MAX_UDP_FLOWS_PER_PORT - 1);
            k.unproxy("c1");
            // the listener is closed with the relay
            let e = std::net::TcpStream::connect("[::1]:18443").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        })
    }
}
