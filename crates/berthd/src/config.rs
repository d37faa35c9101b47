//! Daemon flags, named like dockerd's.

use anyhow::{bail, Context};
use berth_net::ipam::PoolSpec;
use clap::{Parser, ValueEnum};
use ipnet::IpNet;
use std::path::PathBuf;

pub const DEFAULT_EXEC_ROOT: &str = "/run/berth";

#[derive(Parser, Debug, Clone)]
#[command(
    name = "berthd",
    version,
    about = "berth daemon: Docker-compatible container networking"
)]
pub struct Args {
    /// Root directory of persistent state
    #[arg(long, default_value = "/var/lib/berth")]
    pub data_root: PathBuf,
    /// Root directory of runtime state (sockets, namespaces)
    #[arg(long, default_value = DEFAULT_EXEC_ROOT)]
    pub exec_root: PathBuf,
    /// Daemon socket to listen on (unix://PATH); default <exec-root>/berth.sock
    #[arg(short = 'H', long = "host")]
    pub host: Option<String>,
    /// Bridge of the default network
    #[arg(short = 'b', long, default_value = "berth0")]
    pub bridge: String,
    /// Address and prefix of the default bridge, e.g. 10.99.0.1/24
    #[arg(long)]
    pub bip: Option<String>,
    /// Default address pools for networks, e.g. base=10.10.0.0/16,size=24 (repeatable)
    #[arg(long = "default-address-pool")]
    pub default_address_pool: Vec<String>,
    /// The OCI runtime binary that runs containers
    #[arg(long = "runtime", env = "BERTH_RUNTIME", default_value = "runc")]
    pub runtime: std::path::PathBuf,
    /// DNS server the embedded DNS forwards to, for containers without --dns (repeatable)
    #[arg(long = "dns")]
    pub dns: Vec<std::net::IpAddr>,
    /// The host's resolver configuration: upstream servers of last resort, search domains
    #[arg(long = "resolv-conf", default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
    /// Logging level
    #[arg(short = 'l', long, value_enum, default_value = "info")]
    pub log_level: LogLevel,
    /// Cluster store for global (overlay) networks: etcd://HOST:PORT[,HOST:PORT...][/PREFIX]
    #[arg(long = "cluster-store")]
    pub cluster_store: Option<String>,
    /// This host's address for the other hosts: IP:PORT or IFACE:PORT
    #[arg(long = "cluster-advertise")]
    pub cluster_advertise: Option<String>,
    /// Cluster store options: kv.cacertfile, kv.certfile, kv.keyfile, kv.username,
    /// kv.password, discovery.ttl (seconds; default 10) (repeatable)
    #[arg(long = "cluster-store-opt")]
    pub cluster_store_opt: Vec<String>,
    /// Where network and IPAM driver plugins are looked up (repeatable; default: Docker's
    /// /run/docker/plugins, /etc/docker/plugins, /usr/lib/docker/plugins)
    #[arg(long = "plugins-dir")]
    pub plugins_dir: Vec<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl LogLevel {
    pub fn as_filter(self) -> &'static str {
        match self {
            // the etcd client's transport logs every frame at debug
            LogLevel::Debug => "debug,h2=info,tonic=info,tower=info,hyper=info,hyper_util=info",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error | LogLevel::Fatal => "error",
        }
    }
}

impl Args {
    pub fn socket_path(&self) -> anyhow::Result<PathBuf> {
        match &self.host {
            None => Ok(self.exec_root.join("berth.sock")),
            Some(h) => match h.strip_prefix("unix://") {
                Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
                _ => bail!("invalid -H {h:?}: berthd listens on unix://PATH only"),
            },
        }
    }

    /// The default daemon owns table `inet berth`; others (other exec roots) get a table of
    /// their own, so several daemons can share one network namespace.
    pub fn instance(&self) -> String {
        if self.exec_root == std::path::Path::new(DEFAULT_EXEC_ROOT) {
            return "berth".into();
        }
        // FNV-1a: stable across builds, unlike std's hasher.
        let mut h: u32 = 0x811c9dc5;
        for b in self.exec_root.as_os_str().as_encoded_bytes() {
            h = (h ^ *b as u32).wrapping_mul(0x01000193);
        }
        format!("berth_{h:08x}")
    }

    pub fn net_config(&self, instance: &str) -> anyhow::Result<berth_net::Config> {
        let bip = match &self.bip {
            None => None,
            Some(b) => Some(
                b.parse::<IpNet>()
                    .with_context(|| format!("invalid --bip {b:?}: want ADDRESS/PREFIX"))?,
            ),
        };
        if let Some(b) = bip {
            if !b.addr().is_ipv4() {
                bail!("invalid --bip {b}: an IPv4 address is needed");
            }
        }
        let pools = self
            .default_address_pool
            .iter()
            .map(|s| s.parse::<PoolSpec>().map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if !berth_net::drivers::bridge::valid_ifname(&self.bridge) {
            bail!(
                "invalid --bridge {:?}: not a Linux interface name",
                self.bridge
            );
        }
        let cluster = match &self.cluster_store {
            Some(store) => Some(
                berth_net::cluster::ClusterConfig::parse(
                    store,
                    self.cluster_advertise.as_deref(),
                    &self.cluster_store_opt,
                )
                .map_err(anyhow::Error::msg)?,
            ),
            None if self.cluster_advertise.is_some() || !self.cluster_store_opt.is_empty() => {
                bail!("--cluster-advertise and --cluster-store-opt need --cluster-store")
            }
            None => None,
        };
        Ok(berth_net::Config {
            cluster,
            plugin_dirs: self.plugins_dir.clone(),
            plugin_retry: None,
            instance: instance.to_string(),
            default_bridge: self.bridge.clone(),
            bip,
            pools,
            netns_dir: self.exec_root.join("netns"),
            dns: berth_net::resolver::ResolverConfig {
                serve: true,
                resolv_conf: self.resolv_conf.clone(),
                dns: self.dns.clone(),
            },
        })
    }
}
