//! Choosing host ports for a container's bindings, and holding them.

use super::alloc::Allocator;
use super::diag::Bound;
use super::host::{Held, HostPorts};
use super::runs::Binding;
use super::spec::{Proto, Want};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::IpAddr;

#[derive(Debug)]
pub enum AssignError {
    /// Docker's `Bind for 0.0.0.0:8080 failed: port is already allocated`: another container
    /// or another process holds the port.
    Allocated { ip: IpAddr, port: u16 },
    /// No port of the range (or of the ephemeral range) is free.
    AllAllocated,
    /// The kernel refused a bind for another reason (e.g. an address the host does not have).
    Bind { b: Binding, err: io::Error },
}

impl fmt::Display for AssignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Docker's wording (its portallocator prints the address as is, also IPv6).
            AssignError::Allocated { ip, port } => {
                write!(f, "Bind for {ip}:{port} failed: port is already allocated")
            }
            AssignError::AllAllocated => f.write_str("all ports are allocated"),
            AssignError::Bind { b, err } => write!(
                f,
                "failed to bind host port {}/{}: {err}",
                super::join_host_port(b.host_ip, b.host_port),
                b.proto.as_str()
            ),
        }
    }
}

/// Publications of up to this many host ports are checked by trying each port (a bind, a few
/// microseconds) and hold them all before the start goes on, so even a process racing for
/// one of them is refused like any conflict. Bigger ones are checked against the kernel's list
/// of sockets (one dump, ~2 ms whatever the count: it walks the kernel's whole socket tables)
/// and held in the background (see `controller::ports`).
pub const HOLD_INLINE: usize = 256;

/// Which ports other sockets of the host hold.
enum Busy<'a> {
    /// Try each port with a bind.
    Probe(&'a dyn HostPorts),
    /// The kernel's list, per protocol and family, over the ports the publication may use.
    /// `None`: the kernel could not tell (then holding is the only test).
    Listed(HashMap<(Proto, bool), Option<ByPort>>),
}

/// Sockets by local port.
type ByPort = HashMap<u16, Vec<Bound>>;

impl<'a> Busy<'a> {
    fn ask(
        host: &'a dyn HostPorts,
        wants: &[Want],
        defaults: &[IpAddr],
        eph: (u16, u16),
    ) -> Busy<'a> {
        let mut spans: HashMap<(Proto, bool), (u16, u16)> = HashMap::new();
        let mut count = 0usize;
        for w in wants {
            let (lo, hi) = w.host_ports.unwrap_or(eph);
            let ips = w
                .host_ip
                .map(|ip| vec![ip])
                .unwrap_or_else(|| defaults.to_vec());
            for ip in ips {
                count += 1;
                let e = spans.entry((w.proto, ip.is_ipv6())).or_insert((lo, hi));
                *e = (e.0.min(lo), e.1.max(hi));
            }
        }
        if count <= HOLD_INLINE {
            return Busy::Probe(host);
        }
        let mut m = HashMap::new();
        for ((proto, v6), (lo, hi)) in spans {
            let mut fam = vec![v6];
            if !v6 {
                fam.push(true); // dual-stack IPv6 sockets hold IPv4 ports too
            }
            let mut by_port: Option<ByPort> = Some(HashMap::new());
            for f in fam {
                match (host.bound(proto, f, lo, hi), by_port.as_mut()) {
                    (Ok(list), Some(bp)) => {
                        for b in list {
                            bp.entry(b.port).or_default().push(b);
                        }
                    }
                    (Err(e), _) => {
                        tracing::debug!("listing the sockets on {proto:?} ports: {e}");
                        by_port = None;
                    }
                    _ => {}
                }
            }
            m.insert((proto, v6), by_port);
        }
        Busy::Listed(m)
    }

    /// Whether the kernel listed everything: then a port that is not listed is free, and
    /// the ports may be held later.
    fn known(&self) -> bool {
        match self {
            Busy::Probe(_) => false,
            Busy::Listed(m) => m.values().all(Option::is_some),
        }
    }

    fn clashes(&self, proto: Proto, ip: IpAddr, port: u16) -> bool {
        match self {
            Busy::Probe(host) => !host.free(proto, ip, port),
            Busy::Listed(m) => match m.get(&(proto, ip.is_ipv6())) {
                Some(Some(m)) => m
                    .get(&port)
                    .is_some_and(|v| v.iter().any(|b| b.clashes(ip, port))),
                _ => false,
            },
        }
    }
}

/// Chooses a host port for every wanted binding on each of its host addresses (`defaults`
/// when it names none): not berth's (`alloc`), not held by another socket of the host (one
/// kernel dump, so thousands of ports cost no bind each). The ports are taken in `alloc`; on
/// error nothing is. `.1`: whether the kernel told which ports are in use (if not, holding
/// the ports is the only test).
pub fn assign(
    alloc: &mut Allocator,
    host: &dyn HostPorts,
    wants: &[Want],
    defaults: &[IpAddr],
    ephemeral: (u16, u16),
) -> Result<(Vec<Binding>, bool), AssignError> {
    let busy = Busy::ask(host, wants, defaults, ephemeral);
    let mut done: Vec<Binding> = Vec::new();
    for w in wants {
        let ips: Vec<IpAddr> = match w.host_ip {
            Some(ip) => vec![ip],
            None => defaults.to_vec(),
        };
        let Some(&first) = ips.first() else { continue };
        let exact = matches!(w.host_ports, Some((a, b)) if a == b);
        let mut found = None;
        for port in alloc.candidates(w.proto, first, w.host_ports, ephemeral) {
            let clash = ips
                .iter()
                .copied()
                .find(|&ip| alloc.is_taken(w.proto, ip, port) || busy.clashes(w.proto, ip, port));
            match clash {
                None => {
                    found = Some(port);
                    break;
                }
                Some(ip) if exact => {
                    release(alloc, &done);
                    return Err(AssignError::Allocated { ip, port });
                }
                Some(_) => continue,
            }
        }
        let Some(port) = found else {
            release(alloc, &done);
            return Err(AssignError::AllAllocated);
        };
        for ip in ips {
            alloc.take(w.proto, ip, port);
            if w.host_ports.is_none() {
                alloc.advance(w.proto, ip, port);
            }
            done.push(Binding {
                proto: w.proto,
                host_ip: ip,
                host_port: port,
                container_port: w.container_port,
            });
        }
    }
    Ok((done, busy.known()))
}

/// Gives back what `assign` took.
pub fn release(alloc: &mut Allocator, bindings: &[Binding]) {
    for b in bindings {
        alloc.release(b.proto, b.host_ip, b.host_port);
    }
}

/// Holds every binding's port, or none: a port another socket took meanwhile is Docker's
/// "already allocated".
pub fn hold(
    host: &dyn HostPorts,
    bindings: &[Binding],
) -> Result<Vec<(Binding, Held)>, AssignError> {
    let mut held = Vec::with_capacity(bindings.len());
    for b in bindings {
        match host.hold(b.proto, b.host_ip, b.host_port) {
            Ok(h) => held.push((*b, h)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                return Err(AssignError::Allocated {
                    ip: b.host_ip,
                    port: b.host_port,
                })
            }
            Err(err) => return Err(AssignError::Bind { b: *b, err }),
        }
    }
    Ok(held)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::portmap::host::Relay;
    use std::collections::HashSet;
    use std::sync::Mutex;

    /// A host whose other processes hold `busy` (listed by the kernel) and `hidden` (not
    /// listed: a race, or a bound-only socket on an old kernel); remembers what berth holds.
    #[derive(Default)]
    pub struct FakeHost {
        pub busy: Mutex<HashSet<(Proto, IpAddr, u16)>>,
        pub hidden: Mutex<HashSet<(Proto, IpAddr, u16)>>,
        pub bad: Mutex<HashSet<IpAddr>>,
        pub no_diag: Mutex<bool>,
        pub holds: Mutex<usize>,
        pub proxied: Mutex<HashMap<String, Vec<(Proto, std::net::SocketAddr)>>>,
        pub localnet: Mutex<Vec<String>>,
    }

    fn clash(set: &HashSet<(Proto, IpAddr, u16)>, proto: Proto, ip: IpAddr, port: u16) -> bool {
        set.iter().any(|&(p, a, n)| {
            p == proto
                && n == port
                && a.is_ipv4() == ip.is_ipv4()
                && (a == ip || a.is_unspecified() || ip.is_unspecified())
        })
    }

    impl HostPorts for FakeHost {
        fn hold(&self, proto: Proto, ip: IpAddr, port: u16) -> io::Result<Held> {
            if self.bad.lock().unwrap().contains(&ip) {
                return Err(io::Error::from_raw_os_error(libc::EADDRNOTAVAIL));
            }
            if clash(&self.busy.lock().unwrap(), proto, ip, port)
                || clash(&self.hidden.lock().unwrap(), proto, ip, port)
            {
                return Err(io::Error::from(io::ErrorKind::AddrInUse));
            }
            *self.holds.lock().unwrap() += 1;
            Ok(Held(None))
        }
        fn free(&self, proto: Proto, ip: IpAddr, port: u16) -> bool {
            !clash(&self.busy.lock().unwrap(), proto, ip, port)
                && !clash(&self.hidden.lock().unwrap(), proto, ip, port)
        }
        fn bound(&self, proto: Proto, v6: bool, lo: u16, hi: u16) -> io::Result<Vec<Bound>> {
            if *self.no_diag.lock().unwrap() {
                return Err(io::Error::from(io::ErrorKind::PermissionDenied));
            }
            Ok(self
                .busy
                .lock()
                .unwrap()
                .iter()
                .filter(|&&(p, a, n)| p == proto && a.is_ipv6() == v6 && (lo..=hi).contains(&n))
                .map(|&(_, ip, port)| Bound {
                    ip,
                    port,
                    v6only: true,
                    inode: 0,
                })
                .collect())
        }
        fn route_localnet(&self, bridge: &str) -> io::Result<()> {
            self.localnet.lock().unwrap().push(bridge.to_string());
            Ok(())
        }
        fn ephemeral(&self) -> (u16, u16) {
            (32768, 32771)
        }
        fn proxy(&self, key: &str, relays: Vec<Relay>) -> io::Result<()> {
            self.proxied
                .lock()
                .unwrap()
                .insert(key.into(), relays.iter().map(|r| (r.proto, r.to)).collect());
            Ok(())
        }
        fn unproxy(&self, key: &str) {
            self.proxied.lock().unwrap().remove(key);
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn want(c: u16, host_ip: Option<&str>, ports: Option<(u16, u16)>) -> Want {
        Want {
            proto: Proto::Tcp,
            container_port: c,
            host_ip: host_ip.map(ip),
            host_ports: ports,
        }
    }

    fn ports(v: &[Binding]) -> Vec<(String, u16, u16)> {
        v.iter()
            .map(|b| (b.host_ip.to_string(), b.host_port, b.container_port))
            .collect()
    }

    #[test]
    fn explicit_random_and_ranges() {
        let host = FakeHost::default();
        let mut a = Allocator::default();
        let dual = [ip("0.0.0.0"), ip("::")];
        let (got, known) = assign(
            &mut a,
            &host,
            &[
                want(80, None, Some((8080, 8080))),
                want(81, None, None),
                want(82, Some("127.0.0.1"), None),
                want(83, None, Some((9000, 9005))),
            ],
            &dual,
            (32768, 32771),
        )
        .unwrap();
        assert!(!known, "a small publication is probed, port by port");
        assert_eq!(
            ports(&got),
            [
                ("0.0.0.0".into(), 8080, 80),
                ("::".into(), 8080, 80),
                ("0.0.0.0".into(), 32768, 81),
                ("::".into(), 32768, 81),
                // 32768 is held on 0.0.0.0, which covers 127.0.0.1
                ("127.0.0.1".into(), 32769, 82),
                ("0.0.0.0".into(), 9000, 83),
                ("::".into(), 9000, 83),
            ]
        );
        // the next container: 8080 is taken, random ports go on, the range skips what
        // another process holds
        host.busy
            .lock()
            .unwrap()
            .insert((Proto::Tcp, ip("0.0.0.0"), 9001));
        let e = assign(
            &mut a,
            &host,
            &[want(80, None, Some((8080, 8080)))],
            &dual,
            (32768, 32771),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bind for 0.0.0.0:8080 failed: port is already allocated"
        );
        let (got, _) = assign(
            &mut a,
            &host,
            &[want(81, None, None), want(83, None, Some((9000, 9005)))],
            &dual,
            (32768, 32771),
        )
        .unwrap();
        assert_eq!(
            ports(&got),
            [
                // after the 127.0.0.1 one
                ("0.0.0.0".into(), 32770, 81),
                ("::".into(), 32770, 81),
                ("0.0.0.0".into(), 9002, 83),
                ("::".into(), 9002, 83),
            ]
        );
        // nothing was held yet; holding holds them all
        assert_eq!(*host.holds.lock().unwrap(), 0);
        assert_eq!(hold(&host, &got).unwrap().len(), 4);
    }

    #[test]
    fn failures_leave_nothing_taken() {
        let host = FakeHost::default();
        host.busy
            .lock()
            .unwrap()
            .insert((Proto::Tcp, ip("127.0.0.1"), 7000));
        let mut a = Allocator::default();
        let v4 = [ip("0.0.0.0")];
        // another process on 127.0.0.1:7000 clashes with 0.0.0.0:7000
        let e = assign(
            &mut a,
            &host,
            &[
                want(1, None, Some((6999, 6999))),
                want(2, None, Some((7000, 7000))),
            ],
            &v4,
            (32768, 32771),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bind for 0.0.0.0:7000 failed: port is already allocated"
        );
        assert!(!a.is_taken(Proto::Tcp, ip("0.0.0.0"), 6999), "rolled back");
        // the ephemeral range exhausted
        let four: Vec<Want> = (0..4).map(|i| want(10 + i, None, None)).collect();
        assign(&mut a, &host, &four, &v4, (32768, 32771)).unwrap();
        let e = assign(&mut a, &host, &[want(20, None, None)], &v4, (32768, 32771)).unwrap_err();
        assert_eq!(e.to_string(), "all ports are allocated");
    }

    #[test]
    fn big_publications_trust_the_kernels_list_and_holding_finds_the_rest() {
        let host = FakeHost::default();
        let mut a = Allocator::default();
        let any = [ip("0.0.0.0")];
        host.hidden
            .lock()
            .unwrap()
            .insert((Proto::Tcp, ip("0.0.0.0"), 5150));
        // small: probed, the hidden socket is found at once
        let e = assign(
            &mut a,
            &host,
            &[want(1, None, Some((5150, 5150)))],
            &any,
            (1, 2),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bind for 0.0.0.0:5150 failed: port is already allocated"
        );
        // big: the kernel's list says free; holding finds it
        let big: Vec<Want> = (5000..5300).map(|p| want(p, None, Some((p, p)))).collect();
        let (got, known) = assign(&mut a, &host, &big, &any, (1, 2)).unwrap();
        assert!(known);
        assert_eq!(
            *host.holds.lock().unwrap(),
            0,
            "nothing bound to choose them"
        );
        let e = hold(&host, &got).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bind for 0.0.0.0:5150 failed: port is already allocated"
        );
        release(&mut a, &got);
        // a socket the kernel lists is a conflict before anything is held
        host.busy
            .lock()
            .unwrap()
            .insert((Proto::Tcp, ip("127.0.0.1"), 5299));
        let e = assign(&mut a, &host, &big, &any, (1, 2)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bind for 0.0.0.0:5299 failed: port is already allocated"
        );
        assert!(!a.is_taken(Proto::Tcp, ip("0.0.0.0"), 5000), "rolled back");
        // a kernel that does not tell: not "known" (everything is then held at once)
        *host.no_diag.lock().unwrap() = true;
        let big: Vec<Want> = (6000..6300).map(|p| want(p, None, Some((p, p)))).collect();
        let (_, known) = assign(&mut a, &host, &big, &any, (1, 2)).unwrap();
        assert!(!known);
        // an address the host does not have: holding tells
        host.bad.lock().unwrap().insert(ip("192.0.2.9"));
        let (got, _) = assign(
            &mut a,
            &host,
            &[want(1, Some("192.0.2.9"), Some((80, 80)))],
            &[],
            (1, 2),
        )
        .unwrap();
        let e = hold(&host, &got).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("failed to bind host port 192.0.2.9:80/tcp: "),
            "{e}"
        );
    }
}
