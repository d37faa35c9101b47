//! The compose model berth understands: the networking part of the compose format. Values
//! keep the shape docker-compose 1.29 keeps after loading (a number written as a number stays
//! one), because its config hash, which tells whether a container is up to date, is computed
//! from that shape.

use super::yaml::{Mark, Scalar};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    /// The directory relative paths and the project name come from.
    pub working_dir: PathBuf,
    /// The files as docker-compose lists them in its `config_files` label.
    pub config_files: Vec<String>,
    /// In the order of the files (first appearance).
    pub services: Vec<Service>,
    /// Keyed by the name used in the file.
    pub networks: BTreeMap<String, Network>,
    /// Top-level volumes, keyed by their name in the file.
    pub volumes: BTreeMap<String, VolumeDef>,
}

impl Project {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
}

/// `command` and `entrypoint`: a string (split like a shell would) or a list.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Shell(String),
    Exec(Vec<String>),
}

/// `extra_hosts`: the list form `host:ip`, or a mapping (what merging files turns it into).
#[derive(Debug, Clone, PartialEq)]
pub enum ExtraHosts {
    List(Vec<String>),
    Map(Vec<(String, String)>),
}

impl ExtraHosts {
    /// As `host:ip` strings, the form the Engine API takes.
    pub fn entries(&self) -> Vec<String> {
        match self {
            ExtraHosts::List(l) => l.iter().map(|e| e.replacen('=', ":", 1)).collect(),
            ExtraHosts::Map(m) => m.iter().map(|(h, ip)| format!("{h}:{ip}")).collect(),
        }
    }
}

/// One service's attachment to a network (`networks: {net: {...}}`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceNet {
    pub aliases: Option<Vec<String>>,
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
    pub priority: Option<i64>,
}

/// A published or exposed port, docker-compose's `ServicePort`.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub target: u16,
    /// A port, a `start-end` range of host ports, or none (the daemon picks one).
    pub published: Option<Published>,
    pub protocol: Option<String>,
    pub mode: Option<String>,
    pub host_ip: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Published {
    Port(u16),
    Range(String),
}

/// `links: ["service:alias"]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub service: String,
    pub alias: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    /// Where the service is defined (the first file that has it).
    pub at: Mark,
    pub image: Option<String>,
    pub command: Option<Cmd>,
    pub entrypoint: Option<Cmd>,
    /// In file order; `Null` for a variable named without a value and not set around us.
    pub environment: Option<Vec<(String, Scalar)>>,
    pub labels: Option<Vec<(String, String)>>,
    pub tty: Option<bool>,
    pub stdin_open: Option<bool>,
    pub hostname: Option<String>,
    pub container_name: Option<String>,
    pub depends_on: Option<Vec<String>>,
    /// Keyed by the network's name in the file.
    pub networks: Option<Vec<(String, ServiceNet)>>,
    pub network_mode: Option<String>,
    pub links: Option<Vec<Link>>,
    pub ports: Option<Vec<Port>>,
    pub expose: Option<Vec<Scalar>>,
    pub dns: Option<Vec<String>>,
    pub extra_hosts: Option<ExtraHosts>,
    pub mac_address: Option<String>,
    /// `restart:` (`no`, `always`, `unless-stopped`, `on-failure[:N]`).
    pub restart: Option<String>,
    pub volumes: Option<Vec<SvcVolume>>,
}

/// A top-level volume.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VolumeDef {
    pub driver: Option<String>,
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub external: bool,
    /// `name:`: used as is, not prefixed with the project.
    pub name: Option<String>,
}

impl VolumeDef {
    /// The volume's name on the daemon: `name:`, else `<project>_<key>` (external: the key).
    pub fn full_name(&self, project: &str, key: &str) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None if self.external => key.to_string(),
            None => format!("{project}_{key}"),
        }
    }
}

/// One entry of a service's `volumes:`, short (`src:dst:mode`) or long syntax.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SvcVolume {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    /// A host path (bind) or a volume's key in the file; none for an anonymous volume.
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    /// The short syntax's mode text (`ro`, `rw,z`, ...).
    pub mode: Option<String>,
    /// Written in the long syntax (goes to `HostConfig.Mounts`).
    pub long: bool,
    pub nocopy: bool,
    pub propagation: Option<String>,
    pub tmpfs_size: Option<i64>,
    /// `source` as the daemon names it (set at load): a named volume's full name, a bind's
    /// absolute path.
    pub resolved: Option<String>,
}

impl SvcVolume {
    /// The source the daemon gets.
    pub fn daemon_source(&self) -> Option<&str> {
        self.resolved.as_deref().or(self.source.as_deref())
    }
}

impl Service {
    pub fn empty(name: &str, at: Mark) -> Service {
        Service {
            name: name.to_string(),
            at,
            image: None,
            command: None,
            entrypoint: None,
            environment: None,
            labels: None,
            tty: None,
            stdin_open: None,
            hostname: None,
            container_name: None,
            depends_on: None,
            networks: None,
            network_mode: None,
            links: None,
            ports: None,
            expose: None,
            dns: None,
            extra_hosts: None,
            mac_address: None,
            restart: None,
            volumes: None,
        }
    }

    /// The networks the service joins (the project's `default` when it names none), with
    /// their settings; empty under `network_mode`.
    pub fn attachments(&self) -> Vec<(String, ServiceNet)> {
        if self.network_mode.is_some() {
            return Vec::new();
        }
        match &self.networks {
            Some(n) => n.clone(),
            None => vec![("default".to_string(), ServiceNet::default())],
        }
    }

    /// Services this one needs started first: `depends_on`, `links`, `network_mode: service:`.
    pub fn dependencies(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |s: &str| {
            if !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        };
        for l in self.links.iter().flatten() {
            add(&l.service);
        }
        if let Some(s) = self
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("service:"))
        {
            add(s);
        }
        for d in self.depends_on.iter().flatten() {
            add(d);
        }
        out
    }
}

/// A top-level network.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Network {
    pub driver: Option<String>,
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub ipam: Option<Ipam>,
    pub internal: Option<bool>,
    pub external: bool,
    /// `name:` (or the legacy `external: {name: ...}`): used as is, not prefixed.
    pub name: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub enable_ipv6: Option<bool>,
    pub attachable: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ipam {
    pub driver: Option<String>,
    pub config: Vec<IpamPool>,
    pub options: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct IpamPool {
    pub subnet: Option<String>,
    pub ip_range: Option<String>,
    pub gateway: Option<String>,
    pub aux_addresses: Option<BTreeMap<String, String>>,
}

impl Network {
    /// The daemon-side name: `name:` as given, else the key itself for an external network,
    /// else `<project>_<key>`.
    pub fn full_name(&self, project: &str, key: &str) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None if self.external => key.to_string(),
            None => format!("{project}_{key}"),
        }
    }
}
