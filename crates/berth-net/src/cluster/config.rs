//! `--cluster-store`, `--cluster-advertise` and `--cluster-store-opt`, parsed with dockerd's
//! names and checked before the daemon starts.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where this host is reachable by the others: an address, or an interface whose IPv4 address
/// is looked up at start.
#[derive(Debug, Clone, PartialEq)]
pub enum Advertise {
    Addr(IpAddr, u16),
    Iface(String, u16),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// `--cluster-store` as given (shown by `info`).
    pub url: String,
    /// `http(s)://HOST:PORT` for each etcd member.
    pub endpoints: Vec<String>,
    /// Key prefix: `/berth/v1/`, under the URL's path if it has one.
    pub prefix: String,
    pub advertise: Advertise,
    /// `--cluster-advertise` as given.
    pub advertise_str: String,
    /// The host's lease TTL (`discovery.ttl`): a dead host's endpoints vanish after it.
    pub ttl: Duration,
    pub tls: Option<Tls>,
    pub user: Option<(String, String)>,
}

const OPTS: [&str; 7] = [
    "kv.cacertfile",
    "kv.certfile",
    "kv.keyfile",
    "discovery.ttl",
    "discovery.heartbeat",
    "kv.username",
    "kv.password",
];

impl ClusterConfig {
    pub fn parse(store: &str, advertise: Option<&str>, opts: &[String]) -> Result<Self, String> {
        let (scheme, rest) = store
            .split_once("://")
            .ok_or_else(|| format!("invalid --cluster-store {store:?}: want etcd://HOST:PORT"))?;
        match scheme {
            "etcd" => {}
            "consul" | "zk" | "boltdb" => {
                return Err(format!(
                    "cluster store {scheme:?} is not supported: berth supports etcd (v3) only, as --cluster-store=etcd://HOST:PORT[,HOST:PORT...]"
                ))
            }
            _ => {
                return Err(format!(
                    "unknown cluster store scheme {scheme:?}: berth supports etcd://HOST:PORT[,HOST:PORT...]"
                ))
            }
        }
        let (hosts, path) = match rest.split_once('/') {
            Some((h, p)) => (h, p.trim_matches('/')),
            None => (rest, ""),
        };
        let mut kv = BTreeMap::new();
        for o in opts {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| format!("invalid --cluster-store-opt {o:?}: want KEY=VALUE"))?;
            if !OPTS.contains(&k) {
                return Err(format!(
                    "unsupported --cluster-store-opt {k:?} (supported: {})",
                    OPTS.join(", ")
                ));
            }
            kv.insert(k.to_string(), v.to_string());
        }
        let tls = match kv.get("kv.cacertfile") {
            Some(ca) => Some(Tls {
                ca: ca.into(),
                cert: kv.get("kv.certfile").map(PathBuf::from),
                key: kv.get("kv.keyfile").map(PathBuf::from),
            }),
            None if kv.contains_key("kv.certfile") || kv.contains_key("kv.keyfile") => {
                return Err("kv.certfile and kv.keyfile need kv.cacertfile".into())
            }
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoints = Vec::new();
        for h in hosts.split(',') {
            let (host, port) = h
                .rsplit_once(':')
                .ok_or_else(|| format!("invalid cluster store address {h:?}: want HOST:PORT"))?;
            if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(format!(
                    "invalid cluster store address {h:?}: want HOST:PORT"
                ));
            }
            endpoints.push(format!("{scheme}://{h}"));
        }
        let advertise_str = advertise
            .ok_or("--cluster-store needs --cluster-advertise IP:PORT or IFACE:PORT")?
            .to_string();
        let advertise = parse_advertise(&advertise_str)?;
        let secs = |k: &str, default: u64| -> Result<u64, String> {
            match kv.get(k) {
                None => Ok(default),
                Some(v) => {
                    let n = v
                        .trim_end_matches('s')
                        .parse::<u64>()
                        .map_err(|_| format!("invalid {k} {v:?}: want a number of seconds"))?;
                    if n == 0 || n > 3600 {
                        return Err(format!("invalid {k} {v:?}: between 1 and 3600 seconds"));
                    }
                    Ok(n)
                }
            }
        };
        // A short default: other hosts drop a dead host's peers and names within it.
        let ttl = secs("discovery.ttl", 10)?.max(2);
        let _ = secs("discovery.heartbeat", 1)?;
        let user = match (kv.get("kv.username"), kv.get("kv.password")) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            (None, None) => None,
            _ => return Err("kv.username and kv.password go together".into()),
        };
        let prefix = if path.is_empty() {
            "/berth/v1/".to_string()
        } else {
            format!("/{path}/berth/v1/")
        };
        Ok(ClusterConfig {
            url: store.to_string(),
            endpoints,
            prefix,
            advertise,
            advertise_str,
            ttl: Duration::from_secs(ttl),
            tls,
            user,
        })
    }
}

fn parse_advertise(s: &str) -> Result<Advertise, String> {
    let bad = || format!("invalid --cluster-advertise {s:?}: want IP:PORT or IFACE:PORT");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(format!(
                "invalid --cluster-advertise {s:?}: {ip} cannot be reached by other hosts"
            ));
        }
        return Ok(Advertise::Addr(ip, port));
    }
    if crate::drivers::bridge::valid_ifname(host) {
        return Ok(Advertise::Iface(host.to_string(), port));
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_urls_and_options() {
        let c = ClusterConfig::parse(
            "etcd://10.0.9.1:2379,10.0.9.2:2379/pfx",
            Some("10.0.9.11:2376"),
            &["discovery.ttl=3".into()],
        )
        .unwrap();
        assert_eq!(
            c.endpoints,
            vec!["http://10.0.9.1:2379", "http://10.0.9.2:2379"]
        );
        assert_eq!(c.prefix, "/pfx/berth/v1/");
        assert_eq!(
            c.advertise,
            Advertise::Addr("10.0.9.11".parse().unwrap(), 2376)
        );
        assert_eq!(c.ttl, Duration::from_secs(3));
        let c = ClusterConfig::parse("etcd://e:2379", Some("eth0:2376"), &[]).unwrap();
        assert_eq!(c.advertise, Advertise::Iface("eth0".into(), 2376));
        assert_eq!(c.prefix, "/berth/v1/");
    }

    #[test]
    fn refusals_name_what_is_supported() {
        let e = ClusterConfig::parse("consul://c:8500", Some("1.2.3.4:1"), &[]).unwrap_err();
        assert!(e.contains("etcd"), "{e}");
        let e = ClusterConfig::parse("zk://z:2181", Some("1.2.3.4:1"), &[]).unwrap_err();
        assert!(e.contains("etcd"), "{e}");
        assert!(ClusterConfig::parse("etcd://e:2379", None, &[]).is_err());
        assert!(ClusterConfig::parse("etcd://e", Some("1.2.3.4:1"), &[]).is_err());
        assert!(ClusterConfig::parse("etcd://e:2379", Some("0.0.0.0:1"), &[]).is_err());
        assert!(ClusterConfig::parse("etcd://e:2379", Some("1.2.3.4:x"), &[]).is_err());
        assert!(ClusterConfig::parse("etcd://e:2379", Some("1.2.3.4:1"), &["x=1".into()]).is_err());
        assert!(ClusterConfig::parse(
            "etcd://e:2379",
            Some("1.2.3.4:1"),
            &["discovery.ttl=0".into()]
        )
        .is_err());
        let tls = ClusterConfig::parse(
            "etcd://e:2379",
            Some("1.2.3.4:1"),
            &["kv.cacertfile=/ca.pem".into()],
        )
        .unwrap();
        assert_eq!(tls.endpoints, vec!["https://e:2379"]);
    }
}
