//! Choosing host ports for a container's bindings and holding them, all or nothing.

use super::alloc::Allocator;
use super::host::{Held, HostPorts};
use super::runs::Binding;
use super::spec::Want;
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

/// Gives every wanted binding a host port on each of its host addresses (`defaults` when the
/// binding names none) and holds it. On success the ports are taken in `alloc`; on error
/// nothing stays taken or held.
pub fn assign(
    alloc: &mut Allocator,
    host: &dyn HostPorts,
    wants: &[Want],
    defaults: &[IpAddr],
    ephemeral: (u16, u16),
) -> Result<Vec<(Binding, Held)>, AssignError> {
    let mut done: Vec<(Binding, Held)> = Vec::new();
    let undo = |alloc: &mut Allocator, done: Vec<(Binding, Held)>| {
        for (b, _) in done {
            alloc.release(b.proto, b.host_ip, b.host_port);
        }
    };
    for w in wants {
        let ips: Vec<IpAddr> = match w.host_ip {
            Some(ip) => vec![ip],
            None => defaults.to_vec(),
        };
        let Some(&first) = ips.first() else { continue };
        let exact = matches!(w.host_ports, Some((a, b)) if a == b);
        let mut found = None;
        for port in alloc.candidates(w.proto, first, w.host_ports, ephemeral) {
            match hold_all(alloc, host, w, &ips, port) {
                Ok(held) => {
                    found = Some(held);
                    break;
                }
                Err(e @ AssignError::Allocated { .. }) if exact => {
                    undo(alloc, done);
                    return Err(e);
                }
                Err(AssignError::Allocated { .. }) => continue,
                Err(e) => {
                    undo(alloc, done);
                    return Err(e);
                }
            }
        }
        let Some(held) = found else {
            undo(alloc, done);
            return Err(AssignError::AllAllocated);
        };
        for (b, h) in held {
            alloc.take(b.proto, b.host_ip, b.host_port);
            if w.host_ports.is_none() {
                alloc.advance(b.proto, b.host_ip, b.host_port);
            }
            done.push((b, h));
        }
    }
    Ok(done)
}

/// Holds `port` on every address of `ips`, or none of them.
fn hold_all(
    alloc: &Allocator,
    host: &dyn HostPorts,
    w: &Want,
    ips: &[IpAddr],
    port: u16,
) -> Result<Vec<(Binding, Held)>, AssignError> {
    let mut held = Vec::with_capacity(ips.len());
    for &ip in ips {
        let b = Binding {
            proto: w.proto,
            host_ip: ip,
            host_port: port,
            container_port: w.container_port,
        };
        if alloc.is_taken(w.proto, ip, port) {
            return Err(AssignError::Allocated { ip, port });
        }
        match host.hold(w.proto, ip, port) {
            Ok(h) => held.push((b, h)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                return Err(AssignError::Allocated { ip, port })
            }
            Err(err) => return Err(AssignError::Bind { b, err }),
        }
    }
    Ok(held)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::portmap::host::Relay;
    use crate::portmap::spec::Proto;
    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;

    /// A host whose other processes hold `busy`; remembers what berth holds.
    #[derive(Default)]
    pub struct FakeHost {
        pub busy: Mutex<HashSet<(Proto, IpAddr, u16)>>,
        pub bad: Mutex<HashSet<IpAddr>>,
        pub holds: Mutex<usize>,
        pub proxied: Mutex<HashMap<String, Vec<(Proto, std::net::SocketAddr)>>>,
        pub localnet: Mutex<Vec<String>>,
    }

    impl HostPorts for FakeHost {
        fn hold(&self, proto: Proto, ip: IpAddr, port: u16) -> io::Result<Held> {
            if self.bad.lock().unwrap().contains(&ip) {
                return Err(io::Error::from_raw_os_error(libc::EADDRNOTAVAIL));
            }
            let busy = self.busy.lock().unwrap();
            let clash = busy.iter().any(|&(p, a, n)| {
                p == proto
                    && n == port
                    && a.is_ipv4() == ip.is_ipv4()
                    && (a == ip || a.is_unspecified() || ip.is_unspecified())
            });
            if clash {
                return Err(io::Error::from(io::ErrorKind::AddrInUse));
            }
            *self.holds.lock().unwrap() += 1;
            Ok(Held(None))
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

    fn ports(v: &[(Binding, Held)]) -> Vec<(String, u16, u16)> {
        v.iter()
            .map(|(b, _)| (b.host_ip.to_string(), b.host_port, b.container_port))
            .collect()
    }

    #[test]
    fn explicit_random_and_ranges() {
        let host = FakeHost::default();
        let mut a = Allocator::default();
        let dual = [ip("0.0.0.0"), ip("::")];
        let got = assign(
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
        // the next container: 8080 is taken, random ports go on, the range moves on
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
        let got = assign(
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
        // an address the host does not have
        host.bad.lock().unwrap().insert(ip("192.0.2.9"));
        let e = assign(
            &mut a,
            &host,
            &[want(1, Some("192.0.2.9"), Some((80, 80)))],
            &v4,
            (1, 2),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("failed to bind host port 192.0.2.9:80/tcp: "),
            "{e}"
        );
    }
}
