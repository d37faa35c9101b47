//! The `com.docker.compose.config-hash` label: docker-compose 1.29's `Service.config_dict()`
//! dumped as Python's `json.dumps(sort_keys=True, separators=(',', ':'))` and hashed with
//! SHA-256. Computing the same hash from the same file is what lets `up` of either tool see a
//! container the other made as up to date instead of recreating it.

use super::model::{Cmd, ExtraHosts, Published, Service, ServiceNet};
use super::yaml::Scalar;

/// A Python value, as `json.dumps` writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Py {
    Null,
    Bool(bool),
    Int(i64),
    Float(String),
    Str(String),
    List(Vec<Py>),
    Dict(Vec<(String, Py)>),
}

impl From<&Scalar> for Py {
    fn from(s: &Scalar) -> Py {
        match s {
            Scalar::Null => Py::Null,
            Scalar::Bool(b) => Py::Bool(*b),
            Scalar::Int(i) => Py::Int(*i),
            Scalar::Float(f) => Py::Float(
                f.parse::<f64>()
                    .map(|v| format!("{v:?}"))
                    .unwrap_or(f.clone()),
            ),
            Scalar::Str(s) => Py::Str(s.clone()),
        }
    }
}

pub(super) fn s(v: &str) -> Py {
    Py::Str(v.to_string())
}

fn opt(v: &Option<String>) -> Py {
    v.as_deref().map_or(Py::Null, s)
}

/// `json.dumps(..., sort_keys=True, separators=(',', ':'))`, `ensure_ascii` on.
pub fn dumps(v: &Py) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn write(v: &Py, out: &mut String) {
    match v {
        Py::Null => out.push_str("null"),
        Py::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Py::Int(i) => out.push_str(&i.to_string()),
        Py::Float(f) => out.push_str(f),
        Py::Str(t) => string(t, out),
        Py::List(items) => {
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(it, out);
            }
            out.push(']');
        }
        Py::Dict(entries) => {
            let mut sorted: Vec<&(String, Py)> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (k, it)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(k, out);
                out.push(':');
                write(it, out);
            }
            out.push('}');
        }
    }
}

fn string(t: &str, out: &mut String) {
    out.push('"');
    for c in t.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A command as docker-compose keeps it: the shell string, or the exec list.
pub(super) fn cmd(c: &Cmd) -> Py {
    match c {
        Cmd::Shell(t) => s(t),
        Cmd::Exec(l) => Py::List(l.iter().map(|x| s(x)).collect()),
    }
}

/// The keys of the service's process, in the order both `config` and the hash list them.
pub(super) fn process_fields(svc: &Service, put: &mut impl FnMut(&str, Py)) {
    if let Some(i) = &svc.image {
        put("image", s(i));
    }
    if let Some(c) = &svc.command {
        put("command", cmd(c));
    }
    if let Some(c) = &svc.entrypoint {
        put("entrypoint", cmd(c));
    }
    if let Some(env) = &svc.environment {
        put(
            "environment",
            Py::Dict(env.iter().map(|(k, v)| (k.clone(), Py::from(v))).collect()),
        );
    }
    if let Some(l) = &svc.labels {
        put(
            "labels",
            Py::Dict(l.iter().map(|(k, v)| (k.clone(), s(v))).collect()),
        );
    }
    if let Some(b) = svc.tty {
        put("tty", Py::Bool(b));
    }
    if let Some(b) = svc.stdin_open {
        put("stdin_open", Py::Bool(b));
    }
}

/// The service's `options` as docker-compose keeps them after loading.
/// docker-compose's `VolumeSpec` namedtuple (short syntax; `json.dumps` writes a tuple as a
/// list: `[external, internal, mode]`) and `MountSpec.repr()` (long: the fields given, the
/// type's own options under its name).
fn volumes(svc: &Service) -> Py {
    let items = svc.volumes.iter().flatten().map(|v| {
        if !v.long {
            return Py::List(vec![
                v.daemon_source().map_or(Py::Null, s),
                s(&v.target),
                s(v.mode.as_deref().unwrap_or("rw")),
            ]);
        }
        let mut d = vec![
            ("type".to_string(), s(&v.kind)),
            ("target".into(), s(&v.target)),
        ];
        if let Some(src) = v.daemon_source() {
            d.push(("source".into(), s(src)));
        }
        if v.read_only {
            d.push(("read_only".into(), Py::Bool(true)));
        }
        if let Some(p) = &v.propagation {
            d.push(("bind".into(), Py::Dict(vec![("propagation".into(), s(p))])));
        }
        if v.nocopy {
            d.push((
                "volume".into(),
                Py::Dict(vec![("nocopy".into(), Py::Bool(true))]),
            ));
        }
        if let Some(n) = v.tmpfs_size {
            d.push(("tmpfs".into(), Py::Dict(vec![("size".into(), Py::Int(n))])));
        }
        Py::Dict(d)
    });
    Py::List(items.collect())
}

fn options(svc: &Service) -> Py {
    let mut o: Vec<(String, Py)> = vec![
        ("device_requests".into(), Py::Null),
        ("platform".into(), Py::Null),
        ("volumes".into(), volumes(svc)),
    ];
    let mut put = |k: &str, v: Py| o.push((k.to_string(), v));
    process_fields(svc, &mut put);
    for (k, v) in [
        ("hostname", &svc.hostname),
        ("container_name", &svc.container_name),
        ("mac_address", &svc.mac_address),
    ] {
        if v.is_some() {
            put(k, opt(v));
        }
    }
    // docker-compose keeps `restart` parsed (`parse_restart_spec`)
    if let Some(r) = svc.restart.as_deref().filter(|r| !r.is_empty()) {
        let (name, max) = r.split_once(':').unwrap_or((r, "0"));
        put(
            "restart",
            Py::Dict(vec![
                (
                    "MaximumRetryCount".into(),
                    Py::Int(max.parse().unwrap_or(0)),
                ),
                ("Name".into(), s(name)),
            ]),
        );
    }
    if let Some(d) = &svc.depends_on {
        let cond = || Py::Dict(vec![("condition".into(), s("service_started"))]);
        put(
            "depends_on",
            Py::Dict(d.iter().map(|n| (n.clone(), cond())).collect()),
        );
    }
    if let Some(ports) = &svc.ports {
        let list = ports
            .iter()
            .map(|p| {
                Py::List(vec![
                    Py::Int(p.target.into()),
                    match &p.published {
                        None => Py::Null,
                        Some(Published::Port(n)) => Py::Int((*n).into()),
                        Some(Published::Range(r)) => s(r),
                    },
                    opt(&p.protocol),
                    opt(&p.mode),
                    opt(&p.host_ip),
                ])
            })
            .collect();
        put("ports", Py::List(list));
    }
    if let Some(e) = &svc.expose {
        put("expose", Py::List(e.iter().map(Py::from).collect()));
    }
    if let Some(d) = &svc.dns {
        put("dns", Py::List(d.iter().map(|x| s(x)).collect()));
    }
    if let Some(h) = &svc.extra_hosts {
        put(
            "extra_hosts",
            match h {
                ExtraHosts::List(l) => Py::List(l.iter().map(|x| s(x)).collect()),
                ExtraHosts::Map(m) => Py::Dict(m.iter().map(|(k, v)| (k.clone(), s(v))).collect()),
            },
        );
    }
    Py::Dict(o)
}

fn netdef(n: &ServiceNet) -> Py {
    let mut d = Vec::new();
    if let Some(a) = &n.aliases {
        d.push((
            "aliases".to_string(),
            Py::List(a.iter().map(|x| s(x)).collect()),
        ));
    }
    if n.ipv4_address.is_some() {
        d.push(("ipv4_address".into(), opt(&n.ipv4_address)));
    }
    if n.ipv6_address.is_some() {
        d.push(("ipv6_address".into(), opt(&n.ipv6_address)));
    }
    if let Some(p) = n.priority {
        d.push(("priority".into(), Py::Int(p)));
    }
    Py::Dict(d)
}

/// What the hash covers besides the service itself, resolved against the daemon.
pub struct Context<'a> {
    pub image_id: Option<&'a str>,
    /// docker-compose's `network_mode.id`: the primary network's full name, the mode
    /// (`bridge`, `host`, ...), the service of `service:`, or the container id of `container:`.
    pub net: &'a str,
    /// `(full network name, settings)` of the service's networks.
    pub networks: &'a [(String, ServiceNet)],
}

pub fn config_dict(svc: &Service, cx: &Context) -> Py {
    let links = svc
        .links
        .iter()
        .flatten()
        .map(|l| Py::List(vec![s(&l.service), opt(&l.alias)]))
        .collect();
    Py::Dict(vec![
        ("options".into(), options(svc)),
        ("image_id".into(), cx.image_id.map_or(Py::Null, s)),
        ("links".into(), Py::List(links)),
        ("net".into(), s(cx.net)),
        ("ipc_mode".into(), Py::Null),
        (
            "networks".into(),
            Py::Dict(
                cx.networks
                    .iter()
                    .map(|(k, n)| (k.clone(), netdef(n)))
                    .collect(),
            ),
        ),
        ("secrets".into(), Py::List(Vec::new())),
        ("volumes_from".into(), Py::List(Vec::new())),
    ])
}

pub fn config_hash(svc: &Service, cx: &Context) -> String {
    sha256_hex(dumps(&config_dict(svc, cx)).as_bytes())
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
