//! The host's resolv.conf as a source of upstream servers: read at start and again whenever
//! the file changes (checked at most once a second, on use).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Docker's `maxExtDNS`: more upstreams only lengthen a failing query.
pub const MAX_UPSTREAMS: usize = 3;

/// `nameserver` lines, in order (a zone index such as `%eth0` is dropped), at most three.
pub fn nameservers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .filter_map(|a| a.split('%').next()?.parse().ok())
        .take(MAX_UPSTREAMS)
        .collect()
}

/// One upstream server. Loopback servers of the host (a local caching resolver such as
/// 127.0.0.53) are reached from the host's namespace; all others from the container's, so
/// the container's own routes and NAT apply, as with Docker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Upstream {
    pub addr: SocketAddr,
    pub host_ns: bool,
}

impl Upstream {
    pub fn new(ip: IpAddr, from_host: bool) -> Upstream {
        Upstream {
            addr: SocketAddr::new(ip, 53),
            host_ns: from_host && ip.is_loopback(),
        }
    }
}

struct Cached {
    checked: Instant,
    mtime: Option<SystemTime>,
    servers: Arc<Vec<Upstream>>,
}

/// The host's servers, kept fresh.
pub struct HostResolvConf {
    path: PathBuf,
    cached: Mutex<Cached>,
}

impl HostResolvConf {
    pub fn new(path: PathBuf) -> HostResolvConf {
        let h = HostResolvConf {
            path,
            cached: Mutex::new(Cached {
                checked: Instant::now(),
                mtime: None,
                servers: Arc::new(vec![]),
            }),
        };
        h.reload(&mut h.cached.lock().unwrap());
        h
    }

    fn reload(&self, c: &mut Cached) {
        c.checked = Instant::now();
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if mtime == c.mtime && mtime.is_some() {
            return;
        }
        c.mtime = mtime;
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let servers = nameservers(&text)
            .into_iter()
            .map(|ip| Upstream::new(ip, true))
            .collect();
        c.servers = Arc::new(servers);
    }

    pub fn servers(&self) -> Arc<Vec<Upstream>> {
        let mut c = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if c.checked.elapsed() >= Duration::from_secs(1) {
            self.reload(&mut c);
        }
        Arc::clone(&c.servers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nameservers() {
        let t = "# c\nsearch x\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\nnameserver bad\n\
                 nameserver 127.0.0.53\nnameserver 10.0.0.9\n";
        let ns = nameservers(t);
        assert_eq!(
            ns,
            [
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap(),
                "127.0.0.53".parse().unwrap()
            ]
        );
        assert!(Upstream::new(ns[2], true).host_ns);
        assert!(
            !Upstream::new(ns[2], false).host_ns,
            "a container's own --dns 127.x"
        );
        assert!(!Upstream::new(ns[0], true).host_ns);
    }

    #[test]
    fn follows_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("resolv.conf");
        std::fs::write(&p, "nameserver 10.0.0.1\n").unwrap();
        let h = HostResolvConf::new(p.clone());
        assert_eq!(h.servers().len(), 1);
        std::fs::write(&p, "nameserver 10.0.0.1\nnameserver 10.0.0.2\n").unwrap();
        // backdate the last check instead of sleeping
        h.cached.lock().unwrap().checked -= Duration::from_secs(2);
        h.cached.lock().unwrap().mtime = None;
        assert_eq!(h.servers().len(), 2);
    }
}
