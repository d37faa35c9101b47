//! One compose file's tree → the model, checking every key: a key berth does not support, or
//! that is not in the compose format at all, is an error naming the key, the file and the
//! line. All problems of a file are reported together.

use super::model::*;
use super::yaml::{Node, Scalar, Value};
use std::collections::BTreeMap;

/// What one file says.
#[derive(Debug, Default)]
pub struct FileModel {
    pub name: Option<String>,
    pub services: Vec<Service>,
    pub networks: Vec<(String, Network)>,
    pub volumes: Vec<(String, VolumeDef)>,
}

mod vols;
#[cfg(test)]
pub use vols::short as short_volume;

const SERVICE_KEYS: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "labels",
    "tty",
    "stdin_open",
    "hostname",
    "container_name",
    "depends_on",
    "networks",
    "network_mode",
    "links",
    "ports",
    "expose",
    "dns",
    "extra_hosts",
    "mac_address",
    "restart",
    "volumes",
];

/// Keys of the compose format that berth does not act on: refused by name rather than
/// silently ignored.
const SERVICE_KEYS_UNSUPPORTED: &[&str] = &[
    "blkio_config",
    "build",
    "cap_add",
    "cap_drop",
    "cgroup_parent",
    "configs",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "credential_spec",
    "deploy",
    "device_cgroup_rules",
    "devices",
    "dns_opt",
    "dns_search",
    "domainname",
    "env_file",
    "extends",
    "external_links",
    "group_add",
    "healthcheck",
    "init",
    "ipc",
    "isolation",
    "logging",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "privileged",
    "profiles",
    "pull_policy",
    "read_only",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "ulimits",
    "user",
    "userns_mode",
    "volumes_from",
    "working_dir",
];

const NETWORK_KEYS: &[&str] = &[
    "driver",
    "driver_opts",
    "ipam",
    "internal",
    "external",
    "name",
    "labels",
    "enable_ipv6",
    "attachable",
];

struct Ctx {
    errors: Vec<String>,
}

impl Ctx {
    fn err(&mut self, n: &Node, path: &str, msg: impl std::fmt::Display) {
        self.errors.push(format!("{}: {path}: {msg}", n.at));
    }

    /// A mapping's entries (null counts as empty); anything else is reported.
    fn map<'a>(&mut self, n: &'a Node, path: &str) -> Option<&'a [(Node, Node)]> {
        match &n.v {
            Value::Map(e) => Some(e),
            _ if n.is_null() => Some(&[]),
            _ => {
                self.err(n, path, format!("expected a mapping, got {}", n.kind()));
                None
            }
        }
    }

    /// Reports keys outside `allowed` (`x-` extension keys are the user's own and pass).
    fn check_keys(
        &mut self,
        entries: &[(Node, Node)],
        path: &str,
        allowed: &[&str],
        unsupported: &[&str],
    ) {
        for (k, _) in entries {
            let key = k.text().unwrap_or_default();
            if allowed.contains(&key) || key.starts_with("x-") {
                continue;
            }
            let why = if unsupported.contains(&key) {
                "is a compose key berth compose does not support"
            } else {
                "is not a key of the compose format here"
            };
            self.err(k, &format!("{path}.{key}"), why);
        }
    }

    fn string(&mut self, n: &Node, path: &str) -> Option<String> {
        match n.scalar() {
            Some(Scalar::Null) | None => {
                self.err(n, path, format!("expected a string, got {}", n.kind()));
                None
            }
            Some(s) => Some(match s {
                Scalar::Str(t) => t,
                _ => n.text().unwrap_or_default().to_string(),
            }),
        }
    }

    fn boolean(&mut self, n: &Node, path: &str) -> Option<bool> {
        match n.scalar() {
            Some(Scalar::Bool(b)) => Some(b),
            _ => {
                self.err(n, path, format!("expected true or false, got {}", n.kind()));
                None
            }
        }
    }

    fn strings(&mut self, n: &Node, path: &str) -> Option<Vec<String>> {
        match &n.v {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, it)| self.string(it, &format!("{path}[{i}]")))
                .collect(),
            _ => {
                self.err(
                    n,
                    path,
                    format!("expected a list of strings, got {}", n.kind()),
                );
                None
            }
        }
    }

    fn string_or_list(&mut self, n: &Node, path: &str) -> Option<Vec<String>> {
        match &n.v {
            Value::Seq(_) => self.strings(n, path),
            _ => self.string(n, path).map(|s| vec![s]),
        }
    }

    /// `KEY: value` pairs, from a mapping or a list of `KEY=value` (`KEY` alone: no value).
    fn pairs(&mut self, n: &Node, path: &str, types: bool) -> Option<Vec<(String, Scalar)>> {
        match &n.v {
            Value::Seq(items) => {
                let mut out = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    let s = self.string(it, &format!("{path}[{i}]"))?;
                    out.push(match s.split_once('=') {
                        Some((k, v)) => (k.to_string(), Scalar::Str(v.to_string())),
                        None => (s, Scalar::Null),
                    });
                }
                Some(out)
            }
            Value::Map(entries) => {
                let mut out = Vec::new();
                for (k, v) in entries {
                    let key = k.text().unwrap_or_default().to_string();
                    let s = match v.scalar() {
                        Some(s) => s,
                        None => {
                            self.err(
                                v,
                                &format!("{path}.{key}"),
                                format!("expected a string, number or null, got {}", v.kind()),
                            );
                            continue;
                        }
                    };
                    if types && matches!(s, Scalar::Bool(_)) {
                        self.err(v, &format!("{path}.{key}"), format!("contains {}, which is an invalid type: quote it, a string, number or null is expected", v.text().unwrap_or_default()));
                        continue;
                    }
                    out.push((key, s));
                }
                Some(out)
            }
            _ => {
                self.err(
                    n,
                    path,
                    format!("expected a mapping or a list, got {}", n.kind()),
                );
                None
            }
        }
    }

    fn string_map(&mut self, n: &Node, path: &str) -> Option<BTreeMap<String, String>> {
        let pairs = self.pairs(n, path, false)?;
        Some(
            pairs
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Scalar::Null => String::new(),
                        s => s.python_str(),
                    };
                    (k, v)
                })
                .collect(),
        )
    }
}

/// Parses a whole file.
pub fn file(root: &Node) -> Result<FileModel, String> {
    let mut cx = Ctx { errors: Vec::new() };
    let mut out = FileModel::default();
    if let Some(top) = cx.map(root, "(top level)") {
        cx.check_keys(
            top,
            "",
            &["version", "name", "services", "networks", "volumes"],
            &["secrets", "configs"],
        );
        for (k, v) in top {
            match k.text().unwrap_or_default() {
                "name" => out.name = cx.string(v, "name"),
                "services" => {
                    for (sk, sv) in cx.map(v, "services").unwrap_or_default() {
                        let name = sk.text().unwrap_or_default();
                        if let Some(s) = service(&mut cx, name, sv) {
                            out.services.push(s);
                        }
                    }
                }
                "volumes" => {
                    for (vk, vv) in cx.map(v, "volumes").unwrap_or_default() {
                        let name = vk.text().unwrap_or_default().to_string();
                        if let Some(d) = vols::top(&mut cx, &name, vv) {
                            out.volumes.push((name, d));
                        }
                    }
                }
                "networks" => {
                    for (nk, nv) in cx.map(v, "networks").unwrap_or_default() {
                        let name = nk.text().unwrap_or_default().to_string();
                        if let Some(n) = network(&mut cx, &name, nv) {
                            out.networks.push((name, n));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if cx.errors.is_empty() {
        Ok(out)
    } else {
        Err(cx.errors.join("\n"))
    }
}

fn cmd(cx: &mut Ctx, n: &Node, path: &str) -> Option<Cmd> {
    match &n.v {
        Value::Seq(_) => cx.strings(n, path).map(Cmd::Exec),
        _ => cx.string(n, path).map(Cmd::Shell),
    }
}

fn service(cx: &mut Ctx, name: &str, n: &Node) -> Option<Service> {
    let path = format!("services.{name}");
    let entries = cx.map(n, &path)?;
    cx.check_keys(entries, &path, SERVICE_KEYS, SERVICE_KEYS_UNSUPPORTED);
    let mut s = Service::empty(name, n.at.clone());
    for (k, v) in entries {
        let key = k.text().unwrap_or_default();
        let p = format!("{path}.{key}");
        match key {
            "image" => s.image = cx.string(v, &p),
            "command" => s.command = cmd(cx, v, &p),
            "entrypoint" => s.entrypoint = cmd(cx, v, &p),
            "environment" => s.environment = cx.pairs(v, &p, true),
            "labels" => {
                s.labels = cx.pairs(v, &p, false).map(|l| {
                    l.into_iter()
                        .map(|(k, v)| {
                            (
                                k,
                                if v == Scalar::Null {
                                    String::new()
                                } else {
                                    v.python_str()
                                },
                            )
                        })
                        .collect()
                })
            }
            "tty" => s.tty = cx.boolean(v, &p),
            "stdin_open" => s.stdin_open = cx.boolean(v, &p),
            "hostname" => s.hostname = cx.string(v, &p),
            "container_name" => s.container_name = cx.string(v, &p),
            "mac_address" => s.mac_address = cx.string(v, &p),
            "restart" => s.restart = cx.string(v, &p),
            "network_mode" => s.network_mode = cx.string(v, &p),
            "dns" => s.dns = cx.string_or_list(v, &p),
            "depends_on" => s.depends_on = depends_on(cx, v, &p),
            "networks" => s.networks = service_networks(cx, v, &p),
            "links" => {
                s.links = cx.strings(v, &p).map(|l| {
                    l.into_iter()
                        .map(|l| match l.split_once(':') {
                            Some((t, a)) => Link {
                                service: t.into(),
                                alias: Some(a.into()),
                            },
                            None => Link {
                                service: l,
                                alias: None,
                            },
                        })
                        .collect()
                })
            }
            "ports" => s.ports = ports(cx, v, &p),
            "expose" => s.expose = expose(cx, v, &p),
            "volumes" => s.volumes = vols::service(cx, v, &p),
            "extra_hosts" => {
                s.extra_hosts = match &v.v {
                    Value::Map(_) => cx
                        .string_map(v, &p)
                        .map(|m| ExtraHosts::Map(m.into_iter().collect())),
                    _ => cx.strings(v, &p).map(ExtraHosts::List),
                }
            }
            _ => {}
        }
    }
    if s.network_mode.is_some() && s.networks.is_some() {
        cx.err(n, &path, "network_mode and networks cannot be combined");
    }
    Some(s)
}

fn depends_on(cx: &mut Ctx, n: &Node, path: &str) -> Option<Vec<String>> {
    match &n.v {
        Value::Map(entries) => {
            let mut out = Vec::new();
            for (k, v) in entries {
                let name = k.text().unwrap_or_default();
                let p = format!("{path}.{name}");
                for (ck, cv) in cx.map(v, &p).unwrap_or_default() {
                    let ckey = ck.text().unwrap_or_default();
                    if ckey != "condition" {
                        cx.err(ck, &format!("{p}.{ckey}"), "is not a key of depends_on");
                    } else if cv.text() != Some("service_started") {
                        cx.err(
                            cv,
                            &format!("{p}.condition"),
                            "berth compose supports only service_started",
                        );
                    }
                }
                out.push(name.to_string());
            }
            Some(out)
        }
        _ => cx.strings(n, path),
    }
}

fn service_networks(cx: &mut Ctx, n: &Node, path: &str) -> Option<Vec<(String, ServiceNet)>> {
    if let Value::Seq(_) = n.v {
        return cx.strings(n, path).map(|l| {
            l.into_iter()
                .map(|name| (name, ServiceNet::default()))
                .collect()
        });
    }
    let mut out = Vec::new();
    for (k, v) in cx.map(n, path)? {
        let name = k.text().unwrap_or_default().to_string();
        let p = format!("{path}.{name}");
        let mut sn = ServiceNet::default();
        let entries = cx.map(v, &p).unwrap_or_default();
        cx.check_keys(
            entries,
            &p,
            &["aliases", "ipv4_address", "ipv6_address", "priority"],
            &["link_local_ips"],
        );
        for (ek, ev) in entries {
            let key = ek.text().unwrap_or_default();
            let ep = format!("{p}.{key}");
            match key {
                "aliases" => sn.aliases = cx.strings(ev, &ep),
                "ipv4_address" => sn.ipv4_address = cx.string(ev, &ep),
                "ipv6_address" => sn.ipv6_address = cx.string(ev, &ep),
                "priority" => match ev.scalar() {
                    Some(Scalar::Int(i)) => sn.priority = Some(i),
                    _ => cx.err(ev, &ep, "expected a number"),
                },
                _ => {}
            }
        }
        out.push((name, sn));
    }
    Some(out)
}

fn port_number(s: &str) -> Option<u16> {
    s.parse::<u16>().ok().filter(|&p| p > 0)
}

/// Short syntax (`"1234:80"`, `"127.0.0.1:5000-5001:6000-6001/udp"`, `80`) expanded one
/// entry per port, as docker-compose's `ServicePort.parse` does; or the long syntax.
fn ports(cx: &mut Ctx, n: &Node, path: &str) -> Option<Vec<Port>> {
    let Value::Seq(items) = &n.v else {
        cx.err(n, path, format!("expected a list, got {}", n.kind()));
        return None;
    };
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if let Value::Map(entries) = &it.v {
            cx.check_keys(
                entries,
                &p,
                &["target", "published", "protocol", "mode", "host_ip"],
                &[],
            );
            let mut port = Port {
                target: 0,
                published: None,
                protocol: None,
                mode: None,
                host_ip: None,
            };
            for (k, v) in entries {
                let key = k.text().unwrap_or_default();
                let kp = format!("{p}.{key}");
                let text = cx.string(v, &kp).unwrap_or_default();
                match key {
                    "target" => match port_number(&text) {
                        Some(t) => port.target = t,
                        None => cx.err(v, &kp, format!("invalid target port: {text}")),
                    },
                    "published" => match port_number(&text) {
                        Some(p) => port.published = Some(Published::Port(p)),
                        None if text.contains('-') => port.published = Some(Published::Range(text)),
                        None => cx.err(v, &kp, format!("invalid published port: {text}")),
                    },
                    "protocol" => port.protocol = Some(text),
                    "mode" => port.mode = Some(text),
                    "host_ip" => port.host_ip = Some(text),
                    _ => {}
                }
            }
            if port.target == 0 {
                cx.err(it, &p, "a port needs a target");
            }
            out.push(port);
            continue;
        }
        let Some(spec) = cx.string(it, &p) else {
            continue;
        };
        match crate::cmd::container::ports::parse_spec(&spec) {
            Err(e) => cx.err(it, &p, e),
            Ok(bindings) => {
                let explicit_proto = spec.rsplit(':').next().is_some_and(|c| c.contains('/'));
                for (key, b) in bindings {
                    let (port, proto) = key.split_once('/').unwrap_or((&key, "tcp"));
                    out.push(Port {
                        target: port.parse().unwrap_or(0),
                        published: match b.host_port.as_str() {
                            "" => None,
                            h => Some(match h.parse() {
                                Ok(p) => Published::Port(p),
                                Err(_) => Published::Range(h.to_string()),
                            }),
                        },
                        protocol: explicit_proto.then(|| proto.to_string()),
                        mode: None,
                        host_ip: (!b.host_ip.is_empty()).then_some(b.host_ip),
                    });
                }
            }
        }
    }
    Some(out)
}

fn expose(cx: &mut Ctx, n: &Node, path: &str) -> Option<Vec<Scalar>> {
    let Value::Seq(items) = &n.v else {
        cx.err(n, path, format!("expected a list, got {}", n.kind()));
        return None;
    };
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        match it.scalar() {
            Some(s @ (Scalar::Int(_) | Scalar::Str(_))) => {
                let text = s.python_str();
                let (_, port) = crate::cmd::container::ports::split_proto_port(&text);
                if crate::cmd::container::ports::parse_range(&port).is_err() {
                    cx.err(it, &p, format!("invalid port {text}"));
                }
                out.push(s);
            }
            _ => cx.err(it, &p, format!("expected a port, got {}", it.kind())),
        }
    }
    Some(out)
}

/// `external: true|false`, or the 1.x form `external: {name: x}`: whether it is external, and
/// the name that form gives.
fn external(cx: &mut Ctx, v: &Node, p: &str) -> (bool, Option<String>) {
    match &v.v {
        Value::Map(e) => {
            cx.check_keys(e, p, &["name"], &[]);
            let mut name = None;
            for (_, ev) in e {
                name = cx.string(ev, &format!("{p}.name"));
            }
            (true, name)
        }
        _ => (cx.boolean(v, p).unwrap_or(false), None),
    }
}

fn network(cx: &mut Ctx, name: &str, n: &Node) -> Option<Network> {
    let path = format!("networks.{name}");
    let entries = cx.map(n, &path)?;
    cx.check_keys(entries, &path, NETWORK_KEYS, &[]);
    let mut net = Network::default();
    for (k, v) in entries {
        let key = k.text().unwrap_or_default();
        let p = format!("{path}.{key}");
        match key {
            "driver" => net.driver = cx.string(v, &p),
            "driver_opts" => net.driver_opts = cx.string_map(v, &p),
            "internal" => net.internal = cx.boolean(v, &p),
            "enable_ipv6" => net.enable_ipv6 = cx.boolean(v, &p),
            "attachable" => net.attachable = cx.boolean(v, &p),
            "name" => net.name = cx.string(v, &p),
            "labels" => net.labels = cx.string_map(v, &p),
            "external" => {
                let (ext, name) = external(cx, v, &p);
                net.external = ext;
                if name.is_some() {
                    net.name = name;
                }
            }
            "ipam" => net.ipam = ipam(cx, v, &p),
            _ => {}
        }
    }
    if net.external {
        for (k, _) in entries {
            let key = k.text().unwrap_or_default();
            if !["external", "name"].contains(&key) {
                cx.err(k, &format!("{path}.{key}"), "an external network is configured where it was created: only `name` goes with `external`");
            }
        }
    }
    Some(net)
}

fn ipam(cx: &mut Ctx, n: &Node, path: &str) -> Option<Ipam> {
    let entries = cx.map(n, path)?;
    cx.check_keys(entries, path, &["driver", "config", "options"], &[]);
    let mut out = Ipam::default();
    for (k, v) in entries {
        let key = k.text().unwrap_or_default();
        let p = format!("{path}.{key}");
        match key {
            "driver" => out.driver = cx.string(v, &p),
            "options" => out.options = cx.string_map(v, &p),
            "config" => {
                let Value::Seq(items) = &v.v else {
                    cx.err(v, &p, format!("expected a list, got {}", v.kind()));
                    continue;
                };
                for (i, it) in items.iter().enumerate() {
                    let ip = format!("{p}[{i}]");
                    let e = cx.map(it, &ip).unwrap_or_default();
                    cx.check_keys(
                        e,
                        &ip,
                        &["subnet", "ip_range", "gateway", "aux_addresses"],
                        &[],
                    );
                    let mut pool = IpamPool::default();
                    for (ck, cv) in e {
                        let ckey = ck.text().unwrap_or_default();
                        let cp = format!("{ip}.{ckey}");
                        match ckey {
                            "subnet" => pool.subnet = cx.string(cv, &cp),
                            "ip_range" => pool.ip_range = cx.string(cv, &cp),
                            "gateway" => pool.gateway = cx.string(cv, &cp),
                            "aux_addresses" => pool.aux_addresses = cx.string_map(cv, &cp),
                            _ => {}
                        }
                    }
                    out.config.push(pool);
                }
            }
            _ => {}
        }
    }
    Some(out)
}
