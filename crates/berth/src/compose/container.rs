//! A service's container: its name, labels and create request (built by the same code as
//! `berth create`'s, from the flags the service amounts to), and its networks joined as
//! docker-compose 1.29 joins them: the primary network in the create request with the service
//! name as alias, then every network (re)connected with the aliases `[service, short id,
//! aliases...]`, the links and the fixed addresses.

use super::api::{self, *};
use super::model::{Cmd, Project, Published, Service, ServiceNet};
use super::shlex;
use crate::client::Client;
use crate::cmd::container::create_args::{self, CreateFlags, Host, Spec};
use serde_json::{json, Map, Value};

/// `<project>_<service>_<n>`, docker-compose 1.29's container name.
pub fn name(project: &str, service: &str, number: u32) -> String {
    format!(
        "{}_{service}_{number}",
        project.trim_start_matches(['-', '_'])
    )
}

/// A one-off (`run`) container's name: `<project>_<service>_run_<12 hex>`.
pub fn oneoff_name(project: &str, service: &str, slug: &str) -> String {
    format!(
        "{}_{service}_run_{}",
        project.trim_start_matches(['-', '_']),
        &slug[..12]
    )
}

/// The service's networks by full name, primary first: by `priority` (highest first) when any
/// is set, else by name, as docker-compose orders them.
pub fn prioritized(p: &Project, s: &Service) -> Vec<(String, ServiceNet)> {
    let mut nets: Vec<(String, ServiceNet)> = s
        .attachments()
        .into_iter()
        .map(|(k, n)| {
            let full = match p.networks.get(&k) {
                Some(def) => def.full_name(&p.name, &k),
                None => format!("{}_{k}", p.name),
            };
            (full, n)
        })
        .collect();
    if nets.iter().any(|(_, n)| n.priority.is_some()) {
        nets.sort_by_key(|(_, n)| std::cmp::Reverse(n.priority.unwrap_or(0)));
    } else {
        nets.sort_by(|a, b| a.0.cmp(&b.0));
    }
    nets
}

/// What a container is made from, besides the service: resolved against the daemon.
pub struct Wiring {
    pub networks: Vec<(String, ServiceNet)>,
    /// `HostConfig.NetworkMode`: the primary network, or the mode (`container:<id>` for a
    /// `service:` mode).
    pub mode: String,
    /// `container_name:alias` of the linked services' running containers.
    pub links: Vec<String>,
}

/// How `run` changes a service's container.
#[derive(Default)]
pub struct OneOff {
    pub command: Option<Vec<String>>,
    pub tty: bool,
    pub rm: bool,
}

fn cmd_words(c: &Cmd) -> Result<Vec<String>, String> {
    match c {
        Cmd::Exec(v) => Ok(v.clone()),
        Cmd::Shell(s) => shlex::split(s),
    }
}

/// A port as a `-p` value.
fn publish_flag(p: &super::model::Port) -> String {
    let proto = p.protocol.as_deref().unwrap_or("tcp");
    let host = match &p.published {
        None => String::new(),
        Some(Published::Port(n)) => n.to_string(),
        Some(Published::Range(r)) => r.clone(),
    };
    match &p.host_ip {
        Some(ip) if ip.contains(':') => format!("[{ip}]:{host}:{}/{proto}", p.target),
        Some(ip) => format!("{ip}:{host}:{}/{proto}", p.target),
        None if host.is_empty() => format!("{}/{proto}", p.target),
        None => format!("{host}:{}/{proto}", p.target),
    }
}

/// The labels docker-compose 1.29 puts on a container (the service's own first).
pub fn labels(
    p: &Project,
    s: &Service,
    number: Option<u32>,
    hash: Option<&str>,
    slug: Option<&str>,
) -> Vec<String> {
    let mut l: Vec<(String, String)> = s.labels.clone().unwrap_or_default();
    let mut set = |k: &str, v: String| {
        l.retain(|(x, _)| x != k);
        l.push((k.to_string(), v));
    };
    set(PROJECT, p.name.clone());
    set(SERVICE, s.name.clone());
    set(ONEOFF, if slug.is_some() { "True" } else { "False" }.into());
    set(WORKING_DIR, p.working_dir.display().to_string());
    set(CONFIG_FILES, p.config_files.join(","));
    if let Some(n) = number {
        set(NUMBER, n.to_string());
    }
    if let Some(sl) = slug {
        set(SLUG, sl.to_string());
    }
    set(VERSION, COMPOSE_VERSION.into());
    if let Some(h) = hash {
        set(CONFIG_HASH, h.to_string());
    }
    l.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The `POST /containers/create` body of the service's container.
pub fn spec(
    s: &Service,
    w: &Wiring,
    labels: Vec<String>,
    one_off: Option<&OneOff>,
) -> Result<Spec, String> {
    let bad = |e: String| format!("service \"{}\": {e}", s.name);
    let mut f = CreateFlags {
        tty: s.tty.unwrap_or(false),
        interactive: s.stdin_open.unwrap_or(false),
        hostname: s.hostname.clone(),
        mac_address: s.mac_address.clone(),
        resources: crate::cmd::container::resource_args::ResourceFlags {
            // a one-off container is not restarted (docker-compose drops the policy)
            restart: s.restart.clone().filter(|_| one_off.is_none()),
            ..Default::default()
        },
        label: labels,
        network: vec![w.mode.clone()],
        link: w.links.clone(),
        dns: s.dns.clone().unwrap_or_default(),
        add_host: s
            .extra_hosts
            .as_ref()
            .map(|h| h.entries())
            .unwrap_or_default(),
        publish: s.ports.iter().flatten().map(publish_flag).collect(),
        expose: s.expose.iter().flatten().map(|e| e.python_str()).collect(),
        env: s
            .environment
            .iter()
            .flatten()
            .map(|(k, v)| match v {
                super::yaml::Scalar::Null => k.clone(),
                v => format!("{k}={}", v.python_str()),
            })
            .collect(),
        ..Default::default()
    };
    if let Some((_, primary)) = w.networks.first() {
        let mut aliases = vec![s.name.clone()];
        for a in primary.aliases.iter().flatten() {
            if !aliases.contains(a) {
                aliases.push(a.clone());
            }
        }
        f.network_alias = aliases;
        f.ip = primary.ipv4_address.clone();
        f.ip6 = primary.ipv6_address.clone();
    }
    let mut cmd = s.command.as_ref().map(cmd_words).transpose().map_err(bad)?;
    let mut detach = true;
    if let Some(o) = one_off {
        if o.command.is_some() {
            cmd = o.command.clone();
        }
        f.tty = o.tty;
        f.interactive = true;
        f.rm = o.rm;
        f.network_alias.clear();
        detach = false;
    }
    f.args = std::iter::once(s.image.clone().unwrap_or_default())
        .chain(cmd.into_iter().flatten())
        .collect();
    let host = Host {
        env: &|_| None,
        console: if f.tty {
            crate::hijack::term::size(1).unwrap_or((0, 0))
        } else {
            (0, 0)
        },
    };
    let mut spec = create_args::build(&f, &host, detach).map_err(bad)?;
    if let Some(e) = &s.entrypoint {
        spec.body["Entrypoint"] = json!(cmd_words(e).map_err(bad)?);
    }
    let (binds, mounts) = super::volumes::host_config(s);
    spec.body["HostConfig"]["Binds"] = binds;
    spec.body["HostConfig"]["Mounts"] = mounts;
    Ok(spec)
}

/// `EndpointConfig` of a connect, with only what is set (as docker-py sends it).
fn endpoint(aliases: Vec<String>, n: &ServiceNet, links: &[String]) -> Value {
    let mut ep = Map::new();
    if !aliases.is_empty() {
        ep.insert("Aliases".into(), json!(aliases));
    }
    if !links.is_empty() {
        ep.insert("Links".into(), json!(links));
    }
    let mut ipam = Map::new();
    if let Some(ip) = &n.ipv4_address {
        ipam.insert("IPv4Address".into(), json!(ip));
    }
    if let Some(ip) = &n.ipv6_address {
        ipam.insert("IPv6Address".into(), json!(ip));
    }
    if !ipam.is_empty() {
        ep.insert("IPAMConfig".into(), Value::Object(ipam));
    }
    Value::Object(ep)
}

/// docker-compose's `connect_container_to_networks`: every network the container is not on
/// with its short id as an alias is (re)joined with the service's aliases, the short id,
/// the links and the fixed addresses. Done before every start, as docker-compose does.
pub async fn join_networks(
    c: &Client,
    id: &str,
    s: &Service,
    w: &Wiring,
    aliases: bool,
) -> anyhow::Result<()> {
    if w.networks.is_empty() {
        return Ok(());
    }
    let v = api::inspect_container(c, id).await?;
    let short = &id[..id.len().min(12)];
    let connected = &v["NetworkSettings"]["Networks"];
    for (net, cfg) in &w.networks {
        if let Some(ep) = connected.get(net) {
            let has_short = ep["Aliases"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == short));
            if has_short {
                continue;
            }
            api::disconnect(c, net, id).await?;
        }
        let mut names = Vec::new();
        if aliases {
            names.push(s.name.clone());
            names.push(short.to_string());
            for a in cfg.aliases.iter().flatten() {
                if !names.contains(a) {
                    names.push(a.clone());
                }
            }
        }
        let body = json!({"Container": id, "EndpointConfig": endpoint(names, cfg, &w.links)});
        api::connect(c, net, &body).await?;
    }
    Ok(())
}

/// 32 random bytes in hex, docker-compose's one-off slug.
pub fn slug() -> String {
    let mut b = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
