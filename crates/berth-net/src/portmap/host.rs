//! The host side of publishing, behind a trait so the controller's decisions are unit-tested
//! without root: holding host ports with bound sockets, `route_localnet` on bridges, the
//! ephemeral port range, and handing sockets to the proxy.

use super::diag::Bound;
use super::proxy::Proxy;
use super::spec::Proto;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

/// A host port berth holds: the bound socket (`None` when there was nothing to bind, e.g. SCTP
/// on a kernel without it, or in tests). Dropping it frees the port.
#[derive(Debug)]
pub struct Held(pub Option<Socket>);

/// A held socket the proxy serves, and where it relays to.
#[derive(Debug)]
pub struct Relay {
    pub held: Held,
    pub proto: Proto,
    pub to: SocketAddr,
}

/// Fallback when `ip_local_port_range` cannot be read (Docker's).
pub const EPHEMERAL_FALLBACK: (u16, u16) = (49153, 65535);

pub trait HostPorts: Send + Sync {
    /// Binds a socket on `ip:port` for `proto`, so that nothing else can. `AddrInUse` when
    /// another socket holds it.
    fn hold(&self, proto: Proto, ip: IpAddr, port: u16) -> io::Result<Held>;
    /// Whether `ip:port` could be held now (tried with a bind, released at once).
    fn free(&self, proto: Proto, ip: IpAddr, port: u16) -> bool {
        !matches!(self.hold(proto, ip, port), Err(e) if e.kind() == io::ErrorKind::AddrInUse)
    }
    /// The sockets of the host bound to `proto` ports `lo..=hi` of one family.
    fn bound(&self, proto: Proto, v6: bool, lo: u16, hi: u16) -> io::Result<Vec<Bound>>;
    /// `net.ipv4.conf.<bridge>.route_localnet=1`: lets the host's own `127.0.0.1` traffic,
    /// DNATed to a container, leave through the bridge.
    fn route_localnet(&self, bridge: &str) -> io::Result<()>;
    /// The range random host ports come from (`net.ipv4.ip_local_port_range`).
    fn ephemeral(&self) -> (u16, u16);
    /// Starts relaying what reaches these sockets (`key`: the container). TCP sockets are
    /// put in listening state here.
    fn proxy(&self, key: &str, relays: Vec<Relay>) -> io::Result<()>;
    /// Stops relaying for `key` and closes its sockets.
    fn unproxy(&self, key: &str);
}

/// The real host: sockets, `/proc/sys`, and berthd's proxy (started on first use).
#[derive(Default)]
pub struct Kernel {
    proxy: OnceLock<io::Result<Proxy>>,
}

fn kind(proto: Proto) -> (Type, Protocol) {
    match proto {
        Proto::Tcp => (Type::STREAM, Protocol::TCP),
        Proto::Udp => (Type::DGRAM, Protocol::UDP),
        Proto::Sctp => (Type::STREAM, Protocol::from(libc::IPPROTO_SCTP)),
    }
}

/// Parses `ip_local_port_range` ("32768\t60999").
pub fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let mut it = s.split_whitespace().map(|x| x.parse::<u16>());
    match (it.next(), it.next()) {
        (Some(Ok(a)), Some(Ok(b))) if a > 0 && a <= b => Some((a, b)),
        _ => None,
    }
}

impl HostPorts for Kernel {
    fn hold(&self, proto: Proto, ip: IpAddr, port: u16) -> io::Result<Held> {
        let domain = if ip.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let (ty, p) = kind(proto);
        let s = match Socket::new(domain, ty, Some(p)) {
            Ok(s) => s,
            // A kernel without SCTP cannot have anything bound on an SCTP port either; the
            // firewall and berth's own allocator still apply.
            Err(e)
                if proto == Proto::Sctp
                    && matches!(
                        e.raw_os_error(),
                        Some(libc::EPROTONOSUPPORT | libc::ESOCKTNOSUPPORT)
                    ) =>
            {
                return Ok(Held(None))
            }
            Err(e) => return Err(e),
        };
        if ip.is_ipv6() {
            // [::]:p and 0.0.0.0:p are two bindings, each held by its own socket.
            s.set_only_v6(true)?;
            // These are the proxy's listening sockets: the connections it relayed and closed
            // linger in TIME_WAIT on the port, which must not keep the container's next start
            // from holding it again. (A listening socket still refuses every other bind.)
            if proto == Proto::Tcp && (ip.is_unspecified() || ip.is_loopback()) {
                s.set_reuse_address(true)?;
            }
        }
        s.bind(&SocketAddr::new(ip, port).into())?;
        // held as long as the port is published (a range: thousands of them)
        Ok(Held(Some(berth_api::fd::lift(s))))
    }

    fn bound(&self, proto: Proto, v6: bool, lo: u16, hi: u16) -> io::Result<Vec<Bound>> {
        match super::diag::bound(proto, v6, lo, hi) {
            // nothing can hold an SCTP port on a kernel without SCTP
            Err(_) if proto == Proto::Sctp => Ok(vec![]),
            r => r,
        }
    }

    fn route_localnet(&self, bridge: &str) -> io::Result<()> {
        crate::osl::sysctl::write(&format!("net/ipv4/conf/{bridge}/route_localnet"), "1")
    }

    fn ephemeral(&self) -> (u16, u16) {
        crate::osl::sysctl::read("net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| parse_port_range(&s))
            .unwrap_or(EPHEMERAL_FALLBACK)
    }

    fn proxy(&self, key: &str, relays: Vec<Relay>) -> io::Result<()> {
        match self.proxy.get_or_init(Proxy::start) {
            Ok(p) => p.add(key, relays),
            Err(e) => Err(io::Error::new(e.kind(), format!("starting the proxy: {e}"))),
        }
    }

    fn unproxy(&self, key: &str) {
        if let Some(Ok(p)) = self.proxy.get() {
            p.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_port_range("1024 1024"), Some((1024, 1024)));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("x"), None);
        assert_eq!(parse_port_range("0 10"), None);
    }

    #[test]
    fn held_ports_refuse_other_binds() {
        crate::testing::in_new_netns(|| {
            let k = Kernel::default();
            let any4: IpAddr = "0.0.0.0".parse().unwrap();
            let any6: IpAddr = "::".parse().unwrap();
            let lo: IpAddr = "127.0.0.1".parse().unwrap();
            let _a = k.hold(Proto::Tcp, any4, 18080).unwrap();
            // the wildcard holds every address of the family, not the other family
            let e = k.hold(Proto::Tcp, lo, 18080).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
            let e = std::net::TcpListener::bind(("127.0.0.1", 18080)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
            let _b = k.hold(Proto::Tcp, any6, 18080).unwrap();
            let _c = k.hold(Proto::Udp, any4, 18080).unwrap();
            assert!(std::net::UdpSocket::bind(("0.0.0.0", 18080)).is_err());
            drop(_c);
            assert!(std::net::UdpSocket::bind(("0.0.0.0", 18080)).is_ok());
            // SCTP: held when the kernel has it, nothing to hold when it does not
            let s = k.hold(Proto::Sctp, any4, 18080).unwrap();
            drop(s);
        })
    }
}
