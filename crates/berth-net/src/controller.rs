//! The network controller: owns the networks, decides what to allocate and in what order, and
//! undoes it all when a step fails. Kernel work goes through `Osl` and `Firewall`.
//!
//! Locking: `state` is a plain mutex held only for bookkeeping, never across kernel calls, so a
//! slow netlink or nftables call never blocks list/inspect. A network being created is
//! "reserved" (its name, subnets and bridge name are taken) before the kernel is touched, and only
//! becomes visible once it is complete.

use crate::drivers::{self, bridge::*};
use crate::error::{NetError, Result};
use crate::filter::{ListFilter, PruneFilter};
use crate::firewall::{Firewall, FwNetwork};
use crate::ipam::{prepare, AddressPool, PoolError, PoolSpec, SubnetAllocator};
use crate::network::{new_id, now_rfc3339, Network, Subnet};
use crate::osl::Osl;
use crate::portmap::{HostPorts, Kernel};
use crate::request::{plan, CreatePlan, SubnetRequest};
use crate::resolver::{Resolver, ResolverConfig};
use crate::store::{Op, Store, GLOBAL_NETWORKS, META, NETWORKS};
use berth_api::{Filters, NetworkCreateRequest, NetworkResource};
use ipnet::IpNet;
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

const CURSOR_KEY: &str = "subnet_cursor";

#[derive(Debug, Clone)]
pub struct Config {
    /// Names this daemon's kernel objects: the nftables table and the bridges' alias tag, so
    /// several daemons can share a host.
    pub instance: String,
    /// The default network's bridge (`--bridge`).
    pub default_bridge: String,
    /// The default bridge's address and prefix (`--bip`).
    pub bip: Option<IpNet>,
    /// `--default-address-pool`s (Docker's defaults when empty).
    pub pools: Vec<PoolSpec>,
    /// Where sandboxes' namespaces are pinned (`<exec-root>/netns`).
    pub netns_dir: std::path::PathBuf,
    /// The embedded DNS server.
    pub dns: ResolverConfig,
    /// `--cluster-store` and friends: global (overlay) networks.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// `--plugins-dir`s (Docker's when empty).
    pub plugin_dirs: Vec<std::path::PathBuf>,
    /// How long a missing plugin is waited for (Docker's window when `None`).
    pub plugin_retry: Option<crate::plugins::Retry>,
}

struct State {
    networks: BTreeMap<String, Network>,
    /// Names of networks being created (not yet in `networks`).
    pending_names: HashSet<String>,
    /// Bridge names in use or being created/removed.
    bridges: HashSet<String>,
    subnets: SubnetAllocator,
    /// Endpoints and sandboxes (controller/endpoint.rs, controller/sandbox.rs).
    eps: crate::endpoint::Registry,
    /// Other hosts' endpoints on global networks, by endpoint id (controller/cluster.rs).
    remote: std::collections::HashMap<String, crate::cluster::records::EndpointRec>,
    /// This host's endpoints as the cluster store holds them: (network id, endpoint id).
    published: HashSet<(String, String)>,
    /// Addresses held in the cluster store: network id → address → owner.
    claims: std::collections::HashMap<String, BTreeMap<IpAddr, crate::cluster::records::IpRec>>,
    /// Overlay networks' data paths on this host: network id → namespace.
    overlays: BTreeMap<String, std::path::PathBuf>,
    /// The cluster's hosts (their records in the store): host id → advertised address.
    hosts: BTreeMap<String, IpAddr>,
    /// Containers whose gateway endpoint is a plugin's and was programmed
    /// (ProgramExternalConnectivity): container id → (endpoint id, the options sent).
    programmed: std::collections::HashMap<String, (String, crate::plugins::api::net::Options)>,
}

impl State {
    /// The remote endpoints of a network as VXLAN peers.
    fn peers_of(&self, nid: &str) -> Vec<crate::osl::Peer> {
        self.remote
            .values()
            .filter(|r| r.network_id == nid)
            .flat_map(|r| {
                r.ipv4.iter().chain(&r.ipv6).map(|n| crate::osl::Peer {
                    ip: n.addr(),
                    mac: r.mac,
                    vtep: r.vtep,
                })
            })
            .collect()
    }
}

pub struct Controller {
    cfg: Config,
    store: Store,
    osl: Arc<dyn Osl>,
    fw: Arc<dyn Firewall>,
    /// Embedded DNS: names of live endpoints on user networks, listeners in sandboxes.
    dns: Resolver,
    state: Mutex<State>,
    /// Bridge deletions still running in the background.
    teardowns: Mutex<tokio::task::JoinSet<()>>,
    /// Woken each time an endpoint's background teardown ends (`Registry::leaving`).
    left: tokio::sync::Notify,
    /// Published ports (controller/ports.rs), under a lock of their own: holding thousands of
    /// host ports takes as many syscalls, which must not stall the network state.
    ports: Arc<Mutex<ports::PortState>>,
    host: Arc<dyn HostPorts>,
    /// The network drivers by name (drivers/mod.rs): the built-in ones, and plugins once
    /// resolved.
    drivers: Mutex<BTreeMap<String, Arc<dyn drivers::NetworkDriver>>>,
    /// Network and IPAM driver plugins (plugins/).
    plugins: crate::plugins::Plugins,
    /// The cluster store, once configured (controller/cluster.rs).
    cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
    /// Serializes building, reprogramming and removing each overlay network's data path.
    path_locks: Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// DiscoverNew/DiscoverDelete to global plugins, once in a cluster (plugin_cluster.rs).
    discovery: std::sync::OnceLock<plugin_cluster::DiscoverySender>,
}

fn fw_network(n: &Network) -> Option<FwNetwork> {
    n.bridge.as_ref().map(|b| FwNetwork {
        bridge: b.name.clone(),
        internal: n.internal,
        masquerade: b.masquerade && !n.internal,
        icc: b.icc,
    })
}

fn gateway_error(gw: Option<IpAddr>, e: PoolError) -> NetError {
    let gw = gw.map(|g| g.to_string()).unwrap_or_default();
    NetError::internal(format!("failed to allocate gateway ({gw}): {e}"))
}

/// A network's identity (see `Controller::network_ref`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRef {
    pub id: String,
    pub name: String,
    pub driver: String,
    /// bridge, host, none: not "user defined" networks.
    pub predefined: bool,
}

fn find<'a>(st: &'a State, term: &str, delete_wording: bool) -> Result<&'a Network> {
    if let Some(n) = st.networks.get(term) {
        return Ok(n);
    }
    if let Some(n) = st.networks.values().find(|n| n.name == term) {
        return Ok(n);
    }
    let by_prefix: Vec<&Network> = if term.is_empty() {
        vec![]
    } else {
        st.networks
            .values()
            .filter(|n| n.id.starts_with(term))
            .collect()
    };
    match by_prefix.len() {
        1 => Ok(by_prefix[0]),
        0 => Err(NetError::not_found(format!("network {term} not found"))),
        k if delete_wording => Err(NetError::invalid(format!(
            "network {term} is ambiguous ({k} matches found based on ID prefix)"
        ))),
        k => Err(NetError::invalid(format!(
            "{k} matches found based on ID prefix: network {term} is ambiguous"
        ))),
    }
}

impl Controller {
    /// Loads the store, makes the predefined networks and brings the kernel in line with the
    /// store: missing bridges and rules are recreated, berth-owned leftovers removed.
    pub async fn start(
        cfg: Config,
        store: Store,
        osl: Arc<dyn Osl>,
        fw: Arc<dyn Firewall>,
    ) -> Result<Arc<Controller>> {
        Self::start_with(cfg, store, osl, fw, Arc::new(Kernel::default())).await
    }

    /// `start`, with the host side of port publishing given (tests).
    pub async fn start_with(
        cfg: Config,
        store: Store,
        osl: Arc<dyn Osl>,
        fw: Arc<dyn Firewall>,
        host: Arc<dyn HostPorts>,
    ) -> Result<Arc<Controller>> {
        let pools = if cfg.pools.is_empty() {
            crate::ipam::default_local_pools()
        } else {
            cfg.pools.clone()
        };
        let mut subnets = SubnetAllocator::new(pools);
        subnets.cursor = store.get::<u128>(META, CURSOR_KEY)?.unwrap_or(0);
        let mut networks = BTreeMap::new();
        let mut bridges = HashSet::new();
        for (id, n) in store.list::<Network>(NETWORKS)? {
            // a remote IPAM's pools are in its own address space
            for s in n.subnets.iter().filter(|s| s.remote.is_none()) {
                subnets.take(&s.pool.subnet, &id).map_err(|other| {
                    NetError::internal(format!("store: network {id} overlaps network {other}"))
                })?;
            }
            if let Some(b) = &n.bridge {
                bridges.insert(b.name.clone());
            }
            networks.insert(id, n);
        }
        // global networks: not in the local subnet allocator (another address space)
        for (id, n) in store.list::<Network>(GLOBAL_NETWORKS)? {
            networks.insert(id, n);
        }
        let dns = Resolver::new(cfg.dns.clone())
            .map_err(|e| NetError::internal(format!("starting the embedded DNS server: {e}")))?;
        let drivers = Mutex::new(
            drivers::builtin(osl.clone(), format!("berth/{}/", cfg.instance))
                .into_iter()
                .map(|d| (d.name().to_string(), d))
                .collect(),
        );
        let plugins = crate::plugins::Plugins::new(crate::plugins::Config {
            dirs: if cfg.plugin_dirs.is_empty() {
                crate::plugins::Dirs::default()
            } else {
                crate::plugins::Dirs::from_dirs(&cfg.plugin_dirs)
            },
            retry: cfg.plugin_retry.unwrap_or(crate::plugins::Retry::DOCKER),
            limits: Default::default(),
        });
        let c = Arc::new(Controller {
            cfg,
            store,
            osl,
            fw,
            dns,
            state: Mutex::new(State {
                networks,
                pending_names: HashSet::new(),
                bridges,
                subnets,
                eps: Default::default(),
                remote: Default::default(),
                published: Default::default(),
                claims: Default::default(),
                overlays: Default::default(),
                hosts: Default::default(),
                programmed: Default::default(),
            }),
            teardowns: Mutex::new(tokio::task::JoinSet::new()),
            left: tokio::sync::Notify::new(),
            ports: Arc::default(),
            host,
            drivers,
            plugins,
            cluster: Default::default(),
            path_locks: Default::default(),
            discovery: Default::default(),
        });
        c.fw.init()?;
        // Containers reach beyond their bridge only if the host forwards. Failing to set it is
        // worth a warning, not a refusal to start (e.g. a read-only /proc/sys).
        if let Err(e) = c.osl.enable_forwarding() {
            tracing::warn!("cannot enable net.ipv4.ip_forward: {e}");
        }
        c.ensure_predefined().await?;
        c.reconcile().await?;
        let dropped = c.restore_endpoints().await?;
        c.restore_ports()?;
        c.restore_overlays().await;
        if let Some(cc) = c.cfg.cluster.clone() {
            c.join_cluster(cc).await?;
        }
        // plugin lookups may wait out Docker's retry window: not before the API serves
        let plugin_work = c.plugin_work(dropped);
        let in_delete = c.networks_in_delete();
        if plugin_work.is_some() || !in_delete.is_empty() {
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                if let Some(dropped) = plugin_work {
                    Arc::clone(&c).settle_plugins(dropped).await;
                }
                // after the IPAM's releases (Docker releases pools before DeleteNetwork)
                c.finish_in_delete(in_delete).await;
            });
        }
        Ok(c)
    }

    /// The driver of a network, by its name: built in, or a plugin found, activated and
    /// kept on first use (Docker's lookup and retry window).
    async fn driver(&self, name: &str) -> Result<Arc<dyn drivers::NetworkDriver>> {
        if let Some(d) = self
            .drivers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return Ok(d.clone());
        }
        let remote = crate::plugins::RemoteDriver::resolve(&self.plugins, name).await?;
        let mut map = self.drivers.lock().unwrap_or_else(|p| p.into_inner());
        let d = map
            .entry(name.to_string())
            .or_insert_with(|| {
                // registered: it hears of the cluster's hosts (libnetwork RegisterDriver)
                self.announce_hosts(&remote);
                Arc::new(drivers::remote::RemoteNetDriver {
                    remote,
                    osl: self.osl.clone(),
                    // one per plugin name for the daemon's life
                    name: Box::leak(name.to_string().into_boxed_str()),
                })
            })
            .clone();
        Ok(d)
    }

    /// Network driver plugins activated so far (`info`'s Plugins.Network).
    pub fn plugin_drivers(&self) -> Vec<String> {
        self.plugins.names(crate::plugins::NETWORK_DRIVER)
    }

    fn alias_tag(&self) -> String {
        format!("berth/{}/", self.cfg.instance)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn ensure_predefined(self: &Arc<Self>) -> Result<()> {
        for (name, driver) in [("host", drivers::HOST), ("none", drivers::NULL)] {
            if self.find_by_name(name).is_some() {
                continue;
            }
            let n = Network {
                id: new_id(),
                name: name.into(),
                driver: driver.into(),
                scope: "local".into(),
                created: now_rfc3339(),
                enable_ipv6: false,
                internal: false,
                attachable: false,
                ingress: false,
                ipam_driver: "default".into(),
                ipam_options: None,
                user_ipam: vec![],
                subnets: vec![],
                options: BTreeMap::new(),
                labels: BTreeMap::new(),
                bridge: None,
                predefined: true,
                overlay: None,
            };
            self.store.put(NETWORKS, &n.id, &n)?;
            self.lock().networks.insert(n.id.clone(), n);
        }
        self.ensure_default_bridge().await
    }

    /// The default `bridge` network is kept across restarts (same id) unless `--bridge` or
    /// `--bip` changed, in which case it is rebuilt.
    async fn ensure_default_bridge(self: &Arc<Self>) -> Result<()> {
        if let Some(old) = self.find_by_name("bridge") {
            let same_bridge = old.bridge.as_ref().map(|b| b.name.as_str())
                == Some(self.cfg.default_bridge.as_str());
            let same_bip = match self.cfg.bip {
                None => true,
                Some(bip) => old
                    .subnets
                    .first()
                    .is_some_and(|s| s.gateway == bip.addr() && s.pool.subnet == bip.trunc()),
            };
            if same_bridge && same_bip {
                return Ok(());
            }
            self.remove(&old.id, true).await?;
        }
        let opts: BTreeMap<String, String> = [
            (OPT_DEFAULT_BRIDGE, "true"),
            (OPT_ICC, "true"),
            (OPT_MASQ, "true"),
            (OPT_HOST_BINDING, "0.0.0.0"),
            (OPT_NAME, &self.cfg.default_bridge),
            (OPT_MTU, "1500"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let v4 = self.cfg.bip.map(|bip| SubnetRequest {
            subnet: bip.trunc(),
            range: None,
            gateway: Some(bip.addr()),
            aux: BTreeMap::new(),
        });
        let plan = CreatePlan {
            name: "bridge".into(),
            driver: drivers::BRIDGE.into(),
            enable_ipv6: false,
            v4,
            v6: None,
            more: vec![],
            user_ipam: vec![],
            ipam_driver: None,
        };
        let req = NetworkCreateRequest {
            options: Some(opts),
            ..Default::default()
        };
        self.create_planned(plan, &req, true).await.map(|_| ())
    }

    async fn reconcile(&self) -> Result<()> {
        let nets: Vec<Network> = self.lock().networks.values().cloned().collect();
        let tag = self.alias_tag();
        let mut known = HashSet::new();
        for n in &nets {
            let Some(spec) = drivers::bridge_spec(n, &tag) else {
                continue;
            };
            known.insert(spec.name.clone());
            if !self.osl.link_exists(&spec.name).await? {
                tracing::info!(
                    "recreating missing bridge {} of network {}",
                    spec.name,
                    n.name
                );
                self.osl.create_bridge(&spec).await?;
                crate::fail::point("repair/bridge");
            }
            if let Some(f) = fw_network(n) {
                self.fw.add_network(&f)?;
                crate::fail::point("repair/firewall");
            }
        }
        for (link, alias) in self.osl.links_with_alias(&tag).await? {
            let id = &alias[tag.len()..];
            // endpoints' veths share the tag; restore_endpoints sorts those out
            if id.starts_with(ENDPOINT_TAG) {
                continue;
            }
            if !nets.iter().any(|n| n.id == id) {
                tracing::info!("removing orphan bridge {link}");
                self.osl.delete_link(&link).await?;
                crate::fail::point("repair/orphan-bridge");
            }
        }
        for b in self.fw.bridges()? {
            if !known.contains(&b) {
                tracing::info!("removing orphan firewall elements of {b}");
                self.fw.remove_network(&FwNetwork {
                    bridge: b,
                    internal: true,
                    masquerade: true,
                    icc: false,
                })?;
            }
        }
        Ok(())
    }

    fn find_by_name(&self, name: &str) -> Option<Network> {
        self.lock()
            .networks
            .values()
            .find(|n| n.name == name)
            .cloned()
    }

    /// Full id, then exact name, then unique id prefix, as Docker resolves.
    fn resolve(&self, term: &str, delete_wording: bool) -> Result<Network> {
        find(&self.lock(), term, delete_wording).cloned()
    }

    /// Who a network is, without copying its address pools: what the engine asks on every
    /// connect, inspect and list.
    pub fn network_ref(&self, term: &str) -> Result<NetRef> {
        let st = self.lock();
        let n = find(&st, term, false)?;
        Ok(NetRef {
            id: n.id.clone(),
            name: n.name.clone(),
            driver: n.driver.clone(),
            predefined: n.predefined,
        })
    }

    pub fn inspect(&self, term: &str) -> Result<NetworkResource> {
        let n = self.resolve(term, false)?;
        Ok(resource_in(&self.lock(), &n))
    }

    pub fn list(&self, filters: Filters) -> Result<Vec<NetworkResource>> {
        let f = ListFilter::new(filters)?;
        let st = self.lock();
        Ok(st
            .networks
            .values()
            .filter(|n| f.matches(n, st.eps.has_endpoints(&n.id)))
            .map(|n| resource_in(&st, n))
            .collect())
    }

    pub fn count(&self) -> usize {
        self.lock().networks.len()
    }
}

mod addresses;
mod cluster;
mod create;
mod endpoint;
mod external;
mod gwbridge;
mod in_delete;
pub mod inspect;
mod ipam_grants;
mod leave;
mod overlay;
mod plugin_cluster;
mod plugin_join;
mod plugin_restart;
pub mod ports;
mod remote_ipam;
mod remove;
mod rename;
mod sandbox;

pub use gwbridge::{GWBRIDGE, GWBRIDGE_IF};

use endpoint::{resource_in, ENDPOINT_TAG};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_endpoint;
#[cfg(test)]
mod tests_ports;
