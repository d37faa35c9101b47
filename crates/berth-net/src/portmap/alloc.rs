//! Which host ports berth's containers hold, and which port a random binding gets next. Pure:
//! whether another process holds a port is the kernel's answer ([`super::host`]); this only
//! knows berth's own bindings, which are also what make the message "already allocated".
//!
//! A port on `0.0.0.0` (`::`) clashes with the same port on any IPv4 (IPv6) address, as two
//! sockets would; IPv4 and IPv6 never clash (berth's IPv6 sockets are IPv6-only). Memory is a
//! bitmap of 8 KiB per protocol and host address in use, so 10,000 published ports cost no
//! more than one.

use super::runs::Run;
use super::spec::Proto;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

struct Bitmap(Box<[u64; 1024]>);

impl Bitmap {
    fn new() -> Bitmap {
        Bitmap(Box::new([0; 1024]))
    }
    fn get(&self, p: u16) -> bool {
        self.0[p as usize / 64] & (1 << (p % 64)) != 0
    }
    fn set(&mut self, p: u16, v: bool) {
        let (w, bit) = (p as usize / 64, 1u64 << (p % 64));
        if v {
            self.0[w] |= bit;
        } else {
            self.0[w] &= !bit;
        }
    }
}

/// The wildcard address of `ip`'s family.
pub fn unspecified_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

#[derive(Default)]
pub struct Allocator {
    taken: HashMap<(Proto, IpAddr), Bitmap>,
    /// Last port handed out at random, per protocol and host address (Docker's allocator
    /// goes on after it rather than reusing a just-freed port at once).
    cursors: HashMap<(Proto, IpAddr), u16>,
}

impl Allocator {
    /// Whether one of berth's bindings holds `port` in a way that clashes with `ip`.
    pub fn is_taken(&self, proto: Proto, ip: IpAddr, port: u16) -> bool {
        if ip.is_unspecified() {
            self.taken
                .iter()
                .any(|((p, a), m)| *p == proto && a.is_ipv6() == ip.is_ipv6() && m.get(port))
        } else {
            [ip, unspecified_of(ip)]
                .iter()
                .any(|a| self.taken.get(&(proto, *a)).is_some_and(|m| m.get(port)))
        }
    }

    pub fn take(&mut self, proto: Proto, ip: IpAddr, port: u16) {
        self.taken
            .entry((proto, ip))
            .or_insert_with(Bitmap::new)
            .set(port, true);
    }

    pub fn release(&mut self, proto: Proto, ip: IpAddr, port: u16) {
        if let Some(m) = self.taken.get_mut(&(proto, ip)) {
            m.set(port, false);
        }
    }

    pub fn take_run(&mut self, r: &Run) {
        for (h, _) in r.pairs() {
            self.take(r.proto, r.host_ip, h);
        }
    }

    pub fn release_run(&mut self, r: &Run) {
        for (h, _) in r.pairs() {
            self.release(r.proto, r.host_ip, h);
        }
    }

    /// The ports to try, in order, for a binding on `ip`: all of `range`, or for a random
    /// port the whole `ephemeral` range starting after the last port handed out.
    pub fn candidates(
        &self,
        proto: Proto,
        ip: IpAddr,
        range: Option<(u16, u16)>,
        ephemeral: (u16, u16),
    ) -> Vec<u16> {
        match range {
            Some((a, b)) => (a..=b).collect(),
            None => {
                let (lo, hi) = ephemeral;
                let start = match self.cursors.get(&(proto, ip)) {
                    Some(&c) if c >= lo && c < hi => c + 1,
                    _ => lo,
                };
                (start..=hi).chain(lo..start).collect()
            }
        }
    }

    /// Remembers the random port just handed out.
    pub fn advance(&mut self, proto: Proto, ip: IpAddr, port: u16) {
        self.cursors.insert((proto, ip), port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn wildcards_clash_within_a_family() {
        let mut a = Allocator::default();
        a.take(Proto::Tcp, ip("0.0.0.0"), 8080);
        assert!(a.is_taken(Proto::Tcp, ip("0.0.0.0"), 8080));
        assert!(a.is_taken(Proto::Tcp, ip("127.0.0.1"), 8080));
        assert!(!a.is_taken(Proto::Udp, ip("0.0.0.0"), 8080));
        assert!(!a.is_taken(Proto::Tcp, ip("::"), 8080));
        assert!(!a.is_taken(Proto::Tcp, ip("0.0.0.0"), 8081));

        a.take(Proto::Udp, ip("127.0.0.1"), 53);
        assert!(a.is_taken(Proto::Udp, ip("0.0.0.0"), 53));
        assert!(a.is_taken(Proto::Udp, ip("127.0.0.1"), 53));
        assert!(!a.is_taken(Proto::Udp, ip("10.0.0.1"), 53));
        assert!(!a.is_taken(Proto::Udp, ip("::"), 53));

        a.release(Proto::Tcp, ip("0.0.0.0"), 8080);
        assert!(!a.is_taken(Proto::Tcp, ip("127.0.0.1"), 8080));
    }

    #[test]
    fn runs_are_taken_and_released_whole() {
        let mut a = Allocator::default();
        let r = Run {
            proto: Proto::Tcp,
            host_ip: ip("::"),
            host_port: 65000,
            container_port: 1,
            count: 536,
        };
        a.take_run(&r);
        assert!(a.is_taken(Proto::Tcp, ip("::1"), 65535));
        assert!(a.is_taken(Proto::Tcp, ip("::"), 65000));
        assert!(!a.is_taken(Proto::Tcp, ip("::"), 64999));
        a.release_run(&r);
        assert!((0..=65535).all(|p| !a.is_taken(Proto::Tcp, ip("::"), p)));
    }

    #[test]
    fn random_ports_go_on_after_the_last_one() {
        let mut a = Allocator::default();
        let v4 = ip("0.0.0.0");
        let c = a.candidates(Proto::Tcp, v4, None, (32768, 32770));
        assert_eq!(c, vec![32768, 32769, 32770]);
        a.advance(Proto::Tcp, v4, 32768);
        assert_eq!(
            a.candidates(Proto::Tcp, v4, None, (32768, 32770)),
            vec![32769, 32770, 32768]
        );
        a.advance(Proto::Tcp, v4, 32770);
        assert_eq!(
            a.candidates(Proto::Tcp, v4, None, (32768, 32770)),
            vec![32768, 32769, 32770]
        );
        // separate cursors per protocol and address, as Docker's
        assert_eq!(a.candidates(Proto::Udp, v4, None, (32768, 32770))[0], 32768);
        assert_eq!(
            a.candidates(Proto::Tcp, ip("127.0.0.1"), None, (32768, 32770))[0],
            32768
        );
        // an explicit range is tried in order
        assert_eq!(
            a.candidates(Proto::Tcp, v4, Some((8000, 8002)), (1, 2)),
            vec![8000, 8001, 8002]
        );
    }
}
