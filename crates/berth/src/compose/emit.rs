//! `config`: the resolved model (files merged, variables substituted, short forms expanded)
//! printed back as a compose file.

use super::hash::{process_fields, s, Py};
use super::model::*;
use super::yaml::Scalar;

fn list(v: &[String]) -> Py {
    Py::List(v.iter().map(|x| s(x)).collect())
}

fn map(v: &std::collections::BTreeMap<String, String>) -> Py {
    Py::Dict(v.iter().map(|(k, x)| (k.clone(), s(x))).collect())
}

fn service(svc: &Service) -> Py {
    let mut d: Vec<(String, Py)> = Vec::new();
    let mut put = |k: &str, v: Py| d.push((k.into(), v));
    process_fields(svc, &mut put);
    for (k, v) in [
        ("hostname", &svc.hostname),
        ("container_name", &svc.container_name),
        ("mac_address", &svc.mac_address),
        ("network_mode", &svc.network_mode),
        ("restart", &svc.restart),
    ] {
        if let Some(v) = v {
            put(k, s(v));
        }
    }
    if let Some(d) = &svc.depends_on {
        let cond = || Py::Dict(vec![("condition".into(), s("service_started"))]);
        put(
            "depends_on",
            Py::Dict(d.iter().map(|n| (n.clone(), cond())).collect()),
        );
    }
    if let Some(n) = &svc.networks {
        let nets = n
            .iter()
            .map(|(k, c)| {
                let mut e = Vec::new();
                if let Some(a) = &c.aliases {
                    e.push(("aliases".to_string(), list(a)));
                }
                if let Some(ip) = &c.ipv4_address {
                    e.push(("ipv4_address".into(), s(ip)));
                }
                if let Some(ip) = &c.ipv6_address {
                    e.push(("ipv6_address".into(), s(ip)));
                }
                if let Some(p) = c.priority {
                    e.push(("priority".into(), Py::Int(p)));
                }
                (k.clone(), if e.is_empty() { Py::Null } else { Py::Dict(e) })
            })
            .collect();
        put("networks", Py::Dict(nets));
    }
    if let Some(l) = &svc.links {
        put(
            "links",
            Py::List(
                l.iter()
                    .map(|l| match &l.alias {
                        Some(a) => s(&format!("{}:{a}", l.service)),
                        None => s(&l.service),
                    })
                    .collect(),
            ),
        );
    }
    if let Some(ports) = &svc.ports {
        let items = ports
            .iter()
            .map(|p| {
                let mut e = vec![("target".to_string(), Py::Int(p.target.into()))];
                match &p.published {
                    Some(Published::Port(n)) => e.push(("published".into(), Py::Int((*n).into()))),
                    Some(Published::Range(r)) => e.push(("published".into(), s(r))),
                    None => {}
                }
                for (k, v) in [
                    ("protocol", &p.protocol),
                    ("mode", &p.mode),
                    ("host_ip", &p.host_ip),
                ] {
                    if let Some(v) = v {
                        e.push((k.into(), s(v)));
                    }
                }
                Py::Dict(e)
            })
            .collect();
        put("ports", Py::List(items));
    }
    if let Some(e) = &svc.expose {
        put(
            "expose",
            Py::List(e.iter().map(|x| s(&x.python_str())).collect()),
        );
    }
    if let Some(d) = &svc.dns {
        put("dns", list(d));
    }
    if let Some(h) = &svc.extra_hosts {
        put("extra_hosts", list(&h.entries()));
    }
    if let Some(v) = &svc.volumes {
        put("volumes", Py::List(v.iter().map(volume).collect()));
    }
    Py::Dict(d)
}

/// A service's volume in the syntax it was written in.
fn volume(v: &SvcVolume) -> Py {
    if !v.long {
        return s(&super::volumes::spec_text(v, false));
    }
    let mut e = vec![("type".to_string(), s(&v.kind))];
    if let Some(src) = &v.source {
        e.push(("source".into(), s(src)));
    }
    e.push(("target".into(), s(&v.target)));
    if v.read_only {
        e.push(("read_only".into(), Py::Bool(true)));
    }
    if let Some(p) = &v.propagation {
        e.push(("bind".into(), Py::Dict(vec![("propagation".into(), s(p))])));
    }
    if v.nocopy {
        e.push((
            "volume".into(),
            Py::Dict(vec![("nocopy".into(), Py::Bool(true))]),
        ));
    }
    if let Some(n) = v.tmpfs_size {
        e.push(("tmpfs".into(), Py::Dict(vec![("size".into(), Py::Int(n))])));
    }
    Py::Dict(e)
}

fn volume_def(d: &VolumeDef) -> Py {
    let mut e = Vec::new();
    if let Some(x) = &d.driver {
        e.push(("driver".to_string(), s(x)));
    }
    if let Some(m) = &d.driver_opts {
        e.push(("driver_opts".into(), map(m)));
    }
    if let Some(m) = &d.labels {
        e.push(("labels".into(), map(m)));
    }
    if d.external {
        e.push(("external".into(), Py::Bool(true)));
    }
    if let Some(n) = &d.name {
        e.push(("name".into(), s(n)));
    }
    Py::Dict(e)
}

fn network(n: &Network) -> Py {
    let mut d: Vec<(String, Py)> = Vec::new();
    if let Some(v) = &n.driver {
        d.push(("driver".into(), s(v)));
    }
    if let Some(v) = &n.driver_opts {
        d.push(("driver_opts".into(), map(v)));
    }
    if let Some(i) = &n.ipam {
        let mut e = Vec::new();
        if let Some(v) = &i.driver {
            e.push(("driver".to_string(), s(v)));
        }
        let pools = i
            .config
            .iter()
            .map(|c| {
                let mut p = Vec::new();
                for (k, v) in [
                    ("subnet", &c.subnet),
                    ("ip_range", &c.ip_range),
                    ("gateway", &c.gateway),
                ] {
                    if let Some(v) = v {
                        p.push((k.to_string(), s(v)));
                    }
                }
                if let Some(a) = &c.aux_addresses {
                    p.push(("aux_addresses".into(), map(a)));
                }
                Py::Dict(p)
            })
            .collect();
        if !i.config.is_empty() {
            e.push(("config".into(), Py::List(pools)));
        }
        if let Some(o) = &i.options {
            e.push(("options".into(), map(o)));
        }
        d.push(("ipam".into(), Py::Dict(e)));
    }
    for (k, v) in [
        ("internal", n.internal),
        ("enable_ipv6", n.enable_ipv6),
        ("attachable", n.attachable),
    ] {
        if let Some(b) = v {
            d.push((k.into(), Py::Bool(b)));
        }
    }
    if n.external {
        d.push(("external".into(), Py::Bool(true)));
    }
    if let Some(v) = &n.name {
        d.push(("name".into(), s(v)));
    }
    if let Some(v) = &n.labels {
        d.push(("labels".into(), map(v)));
    }
    Py::Dict(d)
}

/// The whole project as YAML.
pub fn project(p: &Project) -> String {
    let mut top = vec![("name".to_string(), s(&p.name))];
    top.push((
        "services".into(),
        Py::Dict(
            p.services
                .iter()
                .map(|x| (x.name.clone(), service(x)))
                .collect(),
        ),
    ));
    if !p.networks.is_empty() {
        top.push((
            "networks".into(),
            Py::Dict(
                p.networks
                    .iter()
                    .map(|(k, n)| (k.clone(), network(n)))
                    .collect(),
            ),
        ));
    }
    if !p.volumes.is_empty() {
        top.push((
            "volumes".into(),
            Py::Dict(
                p.volumes
                    .iter()
                    .map(|(k, d)| (k.clone(), volume_def(d)))
                    .collect(),
            ),
        ));
    }
    let mut out = String::new();
    block(&Py::Dict(top), 0, &mut out);
    out
}

/// A string as a YAML scalar: plain when it reads back as the same string, quoted otherwise.
pub fn scalar_text(t: &str) -> String {
    let special = t.is_empty()
        || Scalar::resolve(t, true) != Scalar::Str(t.to_string())
        || t.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@`".contains(c) || c == ' ')
        || t.ends_with([' ', ':'])
        || t.contains(": ")
        || t.contains(" #");
    if t.chars().any(|c| c.is_control()) {
        let mut out = String::new();
        for c in t.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        return format!("\"{out}\"");
    }
    if special {
        format!("'{}'", t.replace('\'', "''"))
    } else {
        t.to_string()
    }
}

fn inline(v: &Py) -> Option<String> {
    Some(match v {
        Py::Null => "null".into(),
        Py::Bool(b) => b.to_string(),
        Py::Int(i) => i.to_string(),
        Py::Float(f) => f.clone(),
        Py::Str(t) => scalar_text(t),
        Py::List(l) if l.is_empty() => "[]".into(),
        Py::Dict(d) if d.is_empty() => "{}".into(),
        _ => return None,
    })
}

fn block(v: &Py, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Py::Dict(d) => {
            let mut d: Vec<&(String, Py)> = d.iter().collect();
            d.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, x) in d {
                match inline(x) {
                    Some(t) => out.push_str(&format!("{pad}{}: {t}\n", scalar_text(k))),
                    None => {
                        out.push_str(&format!("{pad}{}:\n", scalar_text(k)));
                        // sequences sit at their key's indentation, as PyYAML writes them
                        let inner = if matches!(x, Py::List(_)) {
                            indent
                        } else {
                            indent + 2
                        };
                        block(x, inner, out);
                    }
                }
            }
        }
        Py::List(l) => {
            for x in l {
                match inline(x) {
                    Some(t) => out.push_str(&format!("{pad}- {t}\n")),
                    None => {
                        let mut sub = String::new();
                        block(x, indent + 2, &mut sub);
                        // the first line of the item goes after the dash
                        let sub = sub.replacen(&" ".repeat(indent + 2), "", 1);
                        out.push_str(&format!("{pad}- {sub}"));
                    }
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", inline(other).unwrap_or_default())),
    }
}
