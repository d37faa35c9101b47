//! Ports both ways: `-p`/`--expose` parsed as docker's go-connections `nat` package does
//! (client-side, ranges expanded to one key per port), and `docker ps`'s PORTS column.

use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One published binding: `{"HostIp": .., "HostPort": ..}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub host_ip: String,
    pub host_port: String,
}

/// `ExposedPorts` keys and `PortBindings`, keyed `port/proto`.
#[derive(Debug, Default, PartialEq)]
pub struct Published {
    pub exposed: BTreeMap<String, ()>,
    pub bindings: BTreeMap<String, Vec<Binding>>,
}

fn parse_port(s: &str) -> Result<u64, ()> {
    s.parse::<u16>().map(u64::from).map_err(|_| ())
}

/// `nat.ParsePortRange`: `80` or `8000-8010`.
pub fn parse_range(s: &str) -> Result<(u64, u64), String> {
    if s.is_empty() {
        return Err("empty string specified for ports".into());
    }
    let bad = || format!("invalid port range: {s}");
    match s.split_once('-') {
        None => parse_port(s).map(|p| (p, p)).map_err(|_| bad()),
        Some((a, b)) => {
            let (a, b) = (
                parse_port(a).map_err(|_| bad())?,
                parse_port(b).map_err(|_| bad())?,
            );
            if b < a {
                return Err(bad());
            }
            Ok((a, b))
        }
    }
}

/// `nat.SplitProtoPort`: `80/udp` → ("udp", "80"); no proto means tcp.
pub fn split_proto_port(raw: &str) -> (String, String) {
    let mut parts = raw.split('/');
    let port = parts.next().unwrap_or_default();
    if port.is_empty() {
        return (String::new(), String::new());
    }
    match parts.next() {
        None | Some("") => ("tcp".into(), port.into()),
        Some(proto) => (proto.into(), port.into()),
    }
}

/// `ip:hostPort:containerPort` split from the right; an IPv6 host address may be bare.
fn split_parts(raw: &str) -> (String, String, String) {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1].to_string();
    match n {
        1 => (String::new(), String::new(), container),
        2 => (String::new(), parts[0].into(), container),
        _ => (parts[..n - 2].join(":"), parts[n - 2].into(), container),
    }
}

/// One `-p` value, expanded into (port key, binding) pairs. Errors read like go-connections'.
pub fn parse_spec(raw: &str) -> Result<Vec<(String, Binding)>, String> {
    let (mut ip, host_port, container) = split_parts(raw);
    let (proto, container) = split_proto_port(&container);
    if ip.starts_with('[') {
        ip = ip
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .ok_or_else(|| format!("invalid IP address {ip}"))?
            .to_string();
    }
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) =
        parse_range(&container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let (hstart, hend) = if host_port.is_empty() {
        (0, 0)
    } else {
        parse_range(&host_port).map_err(|_| format!("invalid hostPort: {host_port}"))?
    };
    if !host_port.is_empty() && end - start != hend - hstart && end != start {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container} and {host_port}"
        ));
    }
    let proto = proto.to_lowercase();
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(format!("invalid proto: {proto}"));
    }
    let mut out = Vec::new();
    for i in 0..=(end - start) {
        let mut hp = if host_port.is_empty() {
            String::new()
        } else {
            (hstart + i).to_string()
        };
        // one container port with a host range: the daemon picks a free port in it
        if start == end && hstart != hend {
            hp = format!("{hp}-{hend}");
        }
        out.push((
            format!("{}/{proto}", start + i),
            Binding {
                host_ip: ip.clone(),
                host_port: hp,
            },
        ));
    }
    Ok(out)
}

/// `nat.ParsePortSpecs` over every `-p`, then `--expose` merged in.
pub fn parse_all(publish: &[String], expose: &[String]) -> Result<Published, String> {
    let mut p = Published::default();
    for raw in publish {
        for (key, b) in parse_spec(raw)? {
            p.exposed.insert(key.clone(), ());
            p.bindings.entry(key).or_default().push(b);
        }
    }
    for e in expose {
        if e.contains(':') {
            return Err(format!("invalid port format for --expose: {e}"));
        }
        let (proto, port) = split_proto_port(e);
        let (start, end) = parse_range(&port)
            .map_err(|err| format!("invalid range format for --expose: {e}, error: {err}"))?;
        for port in start..=end {
            p.exposed.insert(format!("{port}/{proto}"), ());
        }
    }
    Ok(p)
}

/// `docker ps`'s PORTS column (docker 28 `DisplayablePorts`): exposed ports and identity
/// mappings grouped into ranges, then the other mappings, IPv6 hosts in brackets.
pub fn displayable(ports: &[Value]) -> String {
    struct P {
        ip: Option<IpAddr>,
        ip_text: String,
        private: u64,
        public: u64,
        proto: String,
    }
    let mut ps: Vec<P> = ports
        .iter()
        .map(|p| {
            let ip_text = p["IP"].as_str().unwrap_or_default().to_string();
            P {
                ip: ip_text.parse().ok(),
                ip_text,
                private: p["PrivatePort"].as_u64().unwrap_or(0),
                public: p["PublicPort"].as_u64().unwrap_or(0),
                proto: p["Type"].as_str().unwrap_or_default().to_string(),
            }
        })
        .collect();
    ps.sort_by(|a, b| {
        (a.private, a.ip, a.public, &a.proto).cmp(&(b.private, b.ip, b.public, &b.proto))
    });
    let mut groups: Vec<(String, u64, u64)> = Vec::new(); // key, first, last, in creation order
    let mut result = Vec::new();
    let mut mappings = Vec::new();
    for p in &ps {
        let mut key = p.proto.clone();
        if !p.ip_text.is_empty() {
            if p.public != p.private {
                mappings.push(format!(
                    "{}->{}/{}",
                    join_host_port(&p.ip_text, &p.public.to_string()),
                    p.private,
                    p.proto
                ));
                continue;
            }
            key = format!("{}/{}", p.ip_text, p.proto);
        }
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, p.private, p.private)),
            Some(g) if p.private == g.2 + 1 => g.2 = p.private,
            Some(g) => {
                result.push(form_group(&g.0, g.1, g.2));
                g.1 = p.private;
                g.2 = p.private;
            }
        }
    }
    for (key, first, last) in &groups {
        result.push(form_group(key, *first, *last));
    }
    result.extend(mappings);
    result.join(", ")
}

fn form_group(key: &str, first: u64, last: u64) -> String {
    let (ip, proto) = match key.rsplit_once('/') {
        Some((ip, proto)) => (ip, proto),
        None => ("", key),
    };
    let mut group = first.to_string();
    if first != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{}->{group}", join_host_port(ip, &group));
    }
    format!("{group}/{proto}")
}

/// Go's `net.JoinHostPort`: brackets around hosts containing a colon.
pub fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `sortorder.NaturalLess`: digit runs compare as numbers, and come before other bytes.
pub fn natural_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return da;
        }
        if !da {
            if a[i] != b[j] {
                return a[i] < b[j];
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (nz_a, nz_b) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let (la, lb) = (i - nz_a, j - nz_b);
        if la != lb {
            return la < lb;
        }
        if a[nz_a..i] != b[nz_b..j] {
            return a[nz_a..i] < b[nz_b..j];
        }
        if nz_a != nz_b {
            return nz_a < nz_b;
        }
    }
    a.len() < b.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b(ip: &str, port: &str) -> Binding {
        Binding {
            host_ip: ip.into(),
            host_port: port.into(),
        }
    }

    #[test]
    fn publish_forms_of_the_reference() {
        let spec = |s: &str| parse_spec(s).unwrap();
        assert_eq!(spec("18080:80"), vec![("80/tcp".into(), b("", "18080"))]);
        assert_eq!(
            spec("127.0.0.1:18081:81/udp"),
            vec![("81/udp".into(), b("127.0.0.1", "18081"))]
        );
        assert_eq!(
            spec("18090-18091:90-91"),
            vec![
                ("90/tcp".into(), b("", "18090")),
                ("91/tcp".into(), b("", "18091"))
            ]
        );
        assert_eq!(
            spec("18100-18102:80"),
            vec![("80/tcp".into(), b("", "18100-18102"))]
        );
        assert_eq!(
            spec("127.0.0.1::81"),
            vec![("81/tcp".into(), b("127.0.0.1", ""))]
        );
        assert_eq!(spec("80"), vec![("80/tcp".into(), b("", ""))]);
        assert_eq!(spec("7000-7001/udp").len(), 2);
        assert_eq!(
            spec("[::1]:8080:80"),
            vec![("80/tcp".into(), b("::1", "8080"))]
        );
        assert_eq!(
            spec("::1:8080:80"),
            vec![("80/tcp".into(), b("::1", "8080"))]
        );
        assert_eq!(spec("80/SCTP"), vec![("80/sctp".into(), b("", ""))]);
    }

    #[test]
    fn publish_errors() {
        let err = |s: &str| parse_spec(s).unwrap_err();
        assert_eq!(err("1.2.3:80:80"), "invalid IP address: 1.2.3");
        assert_eq!(err("8080:"), "no port specified: 8080:<empty>");
        assert_eq!(err("8080:http"), "invalid containerPort: http");
        assert_eq!(err("x:80"), "invalid hostPort: x");
        assert_eq!(err("80/icmp"), "invalid proto: icmp");
        assert_eq!(err("70000"), "invalid containerPort: 70000");
        assert_eq!(
            err("1000-1002:80-81"),
            "invalid ranges specified for container and host Ports: 80-81 and 1000-1002"
        );
    }

    #[test]
    fn exposed_and_bindings_merged() {
        let p = parse_all(
            &["18080:80".into(), "127.0.0.1:18081:80".into()],
            &["8000-8001".into(), "7000/udp".into(), "80".into()],
        )
        .unwrap();
        assert_eq!(
            p.exposed.keys().collect::<Vec<_>>(),
            ["7000/udp", "80/tcp", "8000/tcp", "8001/tcp"]
        );
        assert_eq!(
            p.bindings["80/tcp"],
            vec![b("", "18080"), b("127.0.0.1", "18081")]
        );
        assert_eq!(
            parse_all(&[], &["1:2".into()]).unwrap_err(),
            "invalid port format for --expose: 1:2"
        );
        assert!(parse_all(&[], &["9-8".into()])
            .unwrap_err()
            .starts_with("invalid range format for --expose: 9-8, error: "));
    }

    #[test]
    fn ps_ports_column() {
        let ports = json!([
            {"IP":"0.0.0.0","PrivatePort":90,"PublicPort":18090,"Type":"tcp"},
            {"PrivatePort":7000,"Type":"tcp"},
            {"IP":"::","PrivatePort":80,"PublicPort":18080,"Type":"tcp"},
            {"IP":"0.0.0.0","PrivatePort":80,"PublicPort":18080,"Type":"tcp"},
            {"IP":"127.0.0.1","PrivatePort":81,"PublicPort":18081,"Type":"udp"},
            {"PrivatePort":7001,"Type":"tcp"},
            {"PrivatePort":7003,"Type":"tcp"},
            {"IP":"0.0.0.0","PrivatePort":9000,"PublicPort":9000,"Type":"tcp"},
            {"IP":"0.0.0.0","PrivatePort":9001,"PublicPort":9001,"Type":"tcp"},
            {"IP":"::","PrivatePort":9000,"PublicPort":9000,"Type":"tcp"},
        ]);
        assert_eq!(
            displayable(ports.as_array().unwrap()),
            "7000-7001/tcp, 7003/tcp, 0.0.0.0:9000-9001->9000-9001/tcp, [::]:9000->9000/tcp, \
             0.0.0.0:18080->80/tcp, [::]:18080->80/tcp, 127.0.0.1:18081->81/udp, 0.0.0.0:18090->90/tcp"
        );
        assert_eq!(displayable(&[]), "");
    }

    #[test]
    fn natural_order() {
        let mut v = vec![
            "80/tcp -> [::]:18080",
            "9000/tcp -> 0.0.0.0:9000",
            "80/tcp -> 0.0.0.0:18080",
            "81/udp -> 127.0.0.1:18081",
        ];
        v.sort_by(|a, b| {
            if natural_less(a, b) {
                std::cmp::Ordering::Less
            } else if natural_less(b, a) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
        assert_eq!(
            v,
            [
                "80/tcp -> 0.0.0.0:18080",
                "80/tcp -> [::]:18080",
                "81/udp -> 127.0.0.1:18081",
                "9000/tcp -> 0.0.0.0:9000"
            ]
        );
        assert!(natural_less("a2", "a10"));
        assert!(natural_less("a02", "a002"));
        assert!(natural_less("1x", "x"));
    }
}
