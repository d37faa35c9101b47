//! Targets as users write them: `web`, `web:80`, `cache:6379/tcp`, `host`, `8.8.8.8`,
//! `10.0.0.5:53/udp`, `[2001:db8::1]:443`.

use crate::error::{NetError, Result};
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    Host,
    Addr(IpAddr),
    /// A container name or id, or a DNS name.
    Name(String),
}

/// (what, port, protocol); the protocol defaults to tcp.
pub fn parse_target(s: &str) -> Result<(Spec, Option<u16>, String)> {
    let s = s.trim();
    if s.is_empty() || s.len() > 512 {
        return Err(NetError::invalid(
            "a diagnose target must be 1 to 512 characters",
        ));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((Spec::Addr(ip), None, "tcp".into()));
    }
    let (head, port, proto) = split_port(s)?;
    let head = head.trim_start_matches('/');
    if head.is_empty() {
        return Err(NetError::invalid(format!("invalid target {s:?}: no name")));
    }
    let spec = if head == "host" {
        Spec::Host
    } else if let Ok(ip) = head
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
    {
        Spec::Addr(ip)
    } else {
        Spec::Name(head.to_string())
    };
    Ok((spec, port, proto))
}

fn split_port(s: &str) -> Result<(&str, Option<u16>, String)> {
    let bad = || NetError::invalid(format!("invalid target {s:?}: want NAME[:PORT[/PROTO]]"));
    let Some((head, tail)) = s.rsplit_once(':') else {
        return Ok((s, None, "tcp".into()));
    };
    if head.contains(':') && !head.ends_with(']') {
        return Err(bad());
    }
    let (port, proto) = tail.split_once('/').unwrap_or((tail, "tcp"));
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 {
        return Err(bad());
    }
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(NetError::invalid(format!(
            "invalid protocol {proto:?} in {s:?}: tcp, udp or sctp"
        )));
    }
    Ok((head, Some(port), proto))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(
            parse_target("web").unwrap(),
            (Spec::Name("web".into()), None, "tcp".into())
        );
        assert_eq!(
            parse_target("cache:6379/udp").unwrap(),
            (Spec::Name("cache".into()), Some(6379), "udp".into())
        );
        assert_eq!(parse_target("host:80").unwrap().0, Spec::Host);
        assert_eq!(
            parse_target("8.8.8.8").unwrap().0,
            Spec::Addr("8.8.8.8".parse().unwrap())
        );
        assert_eq!(
            parse_target("::1").unwrap().0,
            Spec::Addr("::1".parse().unwrap())
        );
        assert_eq!(parse_target("[::1]:443").unwrap().1, Some(443));
        for bad in [
            "",
            "web:",
            "web:0",
            "web:99999",
            "web:80/icmp",
            "a:b:c",
            ":80",
            "web:x",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}
