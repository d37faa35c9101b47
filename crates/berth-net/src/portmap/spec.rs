//! A container's port configuration (`ExposedPorts`, `HostConfig.PortBindings`,
//! `PublishAllPorts`) turned into the bindings to make, with Docker's checks and messages
//! (moby `validatePortBindings`, go-connections `nat`). Pure.

use crate::error::{NetError, Result};
use berth_api::PortBinding;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Transport protocols Docker publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }

    /// `tcp`, `udp`, `sctp`, in any case (the CLI lower-cases; API clients may not).
    pub fn parse(s: &str) -> Option<Proto> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "sctp" => Some(Proto::Sctp),
            _ => None,
        }
    }
}

/// One binding to make for one container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub proto: Proto,
    pub container_port: u16,
    /// `None`: `HostIp` was empty: the network's default binding address (`0.0.0.0` unless
    /// `host_binding_ipv4` says otherwise), and `::` too when the container has IPv6.
    pub host_ip: Option<IpAddr>,
    /// `None`: any free port of the ephemeral range. `(a, b)`: the first free one of `a..=b`
    /// (`a == b`: exactly that one).
    pub host_ports: Option<(u16, u16)>,
}

fn spec_error(s: &str) -> NetError {
    NetError::invalid(format!("invalid port specification: {s:?}"))
}

/// go-connections `SplitProtoPort`: `80/udp` → (`udp`, `80`); no protocol means tcp.
fn split_proto_port(raw: &str) -> (&str, &str) {
    let mut parts = raw.splitn(3, '/');
    let port = parts.next().unwrap_or_default();
    match parts.next() {
        None | Some("") => ("tcp", port),
        Some(proto) => (proto, port),
    }
}

/// A `PortBindings`/`ExposedPorts` key: `80`, `80/tcp`, `53/udp`.
pub fn parse_key(key: &str) -> Result<(Proto, u16)> {
    let (proto, port) = split_proto_port(key);
    let n: u16 = port.parse().map_err(|_| spec_error(port))?;
    if n == 0 {
        return Err(spec_error(port));
    }
    let proto = Proto::parse(proto)
        .ok_or_else(|| NetError::invalid(format!("invalid proto: {}", proto.to_lowercase())))?;
    Ok((proto, n))
}

/// `HostIp`: empty (the default), or an address.
///
/// Docker parses it with `net.ParseIP` and silently treats a bad value as "all interfaces";
/// berth refuses it instead (with go-connections' message), as binding everywhere what was
/// meant for one address is not a safe guess.
pub fn parse_host_ip(s: &str) -> Result<Option<IpAddr>> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| NetError::invalid(format!("invalid IP address: {s}")))
}

/// `HostPort`: empty or `0` (a random port), `8080`, or a range `8000-8010` to pick from.
/// A `/proto` suffix is ignored, as Docker does.
pub fn parse_host_port(s: &str) -> Result<Option<(u16, u16)>> {
    let (_, port) = split_proto_port(s);
    if port.is_empty() {
        return Ok(None);
    }
    let num = |p: &str| p.parse::<u16>().map_err(|_| spec_error(s));
    let (a, b) = match port.split_once('-') {
        None => {
            let p = num(port)?;
            (p, p)
        }
        Some((a, b)) => (num(a)?, num(b)?),
    };
    match (a, b) {
        (0, 0) => Ok(None),
        (0, _) => Err(spec_error(s)),
        (a, b) if b < a => Err(spec_error(s)),
        r => Ok(Some(r)),
    }
}

/// Every binding the container's configuration asks for, sorted by container port. `-P`
/// (`publish_all`) adds a random-port binding for each exposed port that has none.
pub fn wants(
    exposed: Option<&BTreeMap<String, Value>>,
    bindings: Option<&BTreeMap<String, Option<Vec<PortBinding>>>>,
    publish_all: bool,
) -> Result<Vec<Want>> {
    let mut out = Vec::new();
    let mut bound = std::collections::HashSet::new();
    for (key, list) in bindings.into_iter().flatten() {
        let (proto, container_port) = parse_key(key)?;
        for b in list.iter().flatten() {
            out.push(Want {
                proto,
                container_port,
                host_ip: parse_host_ip(&b.host_ip)?,
                host_ports: parse_host_port(&b.host_port)?,
            });
            bound.insert((proto, container_port));
        }
    }
    for key in exposed.into_iter().flatten().map(|(k, _)| k) {
        let (proto, container_port) = parse_key(key)?;
        if publish_all && bound.insert((proto, container_port)) {
            out.push(Want {
                proto,
                container_port,
                host_ip: None,
                host_ports: None,
            });
        }
    }
    out.sort_by_key(|w| (w.container_port, w.proto));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pb(ip: &str, port: &str) -> PortBinding {
        PortBinding {
            host_ip: ip.into(),
            host_port: port.into(),
        }
    }

    fn map(v: &[(&str, Vec<PortBinding>)]) -> BTreeMap<String, Option<Vec<PortBinding>>> {
        v.iter()
            .map(|(k, b)| (k.to_string(), Some(b.clone())))
            .collect()
    }

    fn want(proto: Proto, c: u16, ip: Option<&str>, ports: Option<(u16, u16)>) -> Want {
        Want {
            proto,
            container_port: c,
            host_ip: ip.map(|s| s.parse().unwrap()),
            host_ports: ports,
        }
    }

    #[test]
    fn keys() {
        assert_eq!(parse_key("80/tcp").unwrap(), (Proto::Tcp, 80));
        assert_eq!(parse_key("80").unwrap(), (Proto::Tcp, 80));
        assert_eq!(parse_key("53/UDP").unwrap(), (Proto::Udp, 53));
        assert_eq!(parse_key("9/sctp").unwrap(), (Proto::Sctp, 9));
        let msg = |k: &str| parse_key(k).unwrap_err().message;
        assert_eq!(msg("http/tcp"), "invalid port specification: \"http\"");
        assert_eq!(msg("70000/tcp"), "invalid port specification: \"70000\"");
        assert_eq!(msg("0/tcp"), "invalid port specification: \"0\"");
        assert_eq!(msg("80-81/tcp"), "invalid port specification: \"80-81\"");
        assert_eq!(msg("80/icmp"), "invalid proto: icmp");
        assert_eq!(
            parse_key("x").unwrap_err().kind,
            crate::ErrorKind::InvalidParameter
        );
    }

    #[test]
    fn host_ports_and_addresses() {
        assert_eq!(parse_host_port("").unwrap(), None);
        assert_eq!(parse_host_port("0").unwrap(), None);
        assert_eq!(parse_host_port("8080").unwrap(), Some((8080, 8080)));
        assert_eq!(parse_host_port("8080/udp").unwrap(), Some((8080, 8080)));
        assert_eq!(parse_host_port("8000-8010").unwrap(), Some((8000, 8010)));
        for bad in ["x", "8010-8000", "0-5", "65536", "1-2-3", "-1"] {
            assert_eq!(
                parse_host_port(bad).unwrap_err().message,
                format!("invalid port specification: {bad:?}")
            );
        }
        assert_eq!(parse_host_ip("").unwrap(), None);
        assert_eq!(parse_host_ip("::1").unwrap(), Some("::1".parse().unwrap()));
        assert_eq!(
            parse_host_ip("1.2.3").unwrap_err().message,
            "invalid IP address: 1.2.3"
        );
        assert!(parse_host_ip("[::1]").is_err());
    }

    #[test]
    fn bindings_and_publish_all() {
        let b = map(&[
            ("81/udp", vec![pb("127.0.0.1", "18081")]),
            ("80/tcp", vec![pb("", "18080"), pb("::1", "")]),
            ("90/tcp", vec![]),
        ]);
        let exposed: BTreeMap<String, Value> = ["80/tcp", "7000/tcp", "90/tcp", "81/udp"]
            .iter()
            .map(|k| (k.to_string(), Value::Object(Default::default())))
            .collect();
        let w = wants(Some(&exposed), Some(&b), false).unwrap();
        assert_eq!(
            w,
            vec![
                want(Proto::Tcp, 80, None, Some((18080, 18080))),
                want(Proto::Tcp, 80, Some("::1"), None),
                want(Proto::Udp, 81, Some("127.0.0.1"), Some((18081, 18081))),
            ]
        );
        // -P: every exposed port without a binding gets a random one (an empty list counts
        // as none, as in Docker)
        let w = wants(Some(&exposed), Some(&b), true).unwrap();
        assert_eq!(w.len(), 5);
        assert!(w.contains(&want(Proto::Tcp, 90, None, None)));
        assert!(w.contains(&want(Proto::Tcp, 7000, None, None)));
        assert_eq!(wants(None, None, true).unwrap(), vec![]);
        // a bad value anywhere refuses the whole configuration
        let bad = map(&[("80/tcp", vec![pb("", "x")])]);
        assert_eq!(
            wants(None, Some(&bad), false).unwrap_err().message,
            "invalid port specification: \"x\""
        );
        let bad: BTreeMap<String, Value> = [("80/bad".to_string(), Value::Null)].into();
        assert!(wants(Some(&bad), None, false).is_err());
    }
}
