//! Overlay networks: created, removed and joined through the cluster store.
//!
//! A global network lives in etcd; every host keeps a copy in memory (and in its local store,
//! so a restart during an etcd outage keeps its containers). Its address pool on each host is
//! the host's view of which addresses the cluster holds: allocation picks the next free one
//! there and claims it with a transaction, so two hosts attaching at once never share one.
//! The data path (namespace, `br0`, `vxlan0`) exists on a host while it has endpoints there.

use super::endpoint::{Change, SbOp};
use super::{Controller, GLOBAL_NETWORKS};
use crate::cluster::ipam::GlobalIpam;
use crate::cluster::records::EndpointRec;
use crate::cluster::{Cluster, ClusterStore, CreateConflict};
use crate::drivers;
use crate::drivers::overlay::{self as ov, OverlayConfig};
use crate::endpoint::*;
use crate::error::{NetError, Result};
use crate::ipam::{prepare, AddressPool};
use crate::network::{new_id, now_rfc3339, Network, Subnet};
use crate::osl::OverlaySpec;
use crate::request::{CreatePlan, SubnetRequest};
use berth_api::{EndpointSettings, NetworkCreateRequest};
use ipnet::IpNet;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

const NO_CLUSTER: &str = "overlay networks need a cluster store: start berthd with --cluster-store=etcd://HOST:PORT and --cluster-advertise=IP:PORT (swarm mode is not supported)";
const NO_POOL: &str = "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network";
const OVERLAPS: &str = "Pool overlaps with other one on this address space";

/// How long an overlay's data path outlives its last endpoint on a host.
const PATH_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

pub(super) type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Docker's global default pool: 10.0.0.0/8 in /24s.
fn next_subnet(used: &[IpNet], skip: &HashSet<IpNet>) -> Option<IpNet> {
    (0u32..1 << 16).find_map(|i| {
        let net = IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i << 8))), 24).ok()?;
        let free = !skip.contains(&net) && !used.iter().any(|u| overlap(u, &net));
        free.then_some(net)
    })
}

fn overlap(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn gateway_error(e: (Option<IpAddr>, crate::ipam::PoolError)) -> NetError {
    let gw = e.0.map(|g| g.to_string()).unwrap_or_default();
    NetError::internal(format!("failed to allocate gateway ({gw}): {}", e.1))
}

fn has_active(n: &Network) -> NetError {
    NetError::forbidden(format!(
        "error while removing network: network {} id {} has active endpoints",
        n.name, n.id
    ))
}

impl Controller {
    pub(super) fn cluster(&self) -> Result<Arc<Cluster>> {
        self.cluster
            .get()
            .cloned()
            .ok_or_else(|| NetError::unavailable(NO_CLUSTER))
    }

    /// Records a global network in the cluster store: an overlay, or a global-scope plugin's
    /// network (plugin_cluster.rs). Name, subnets and VNI go in one transaction, retried with
    /// the next free subnet or VNI when another host raced for the same one. With a remote
    /// IPAM the pools come from the plugin's global address space (RequestPool, on this host),
    /// and are released again if the network is not made.
    pub(super) async fn create_overlay(
        &self,
        plan: CreatePlan,
        req: &NetworkCreateRequest,
    ) -> Result<String> {
        let plugin = drivers::Kind::of(&plan.driver).is_none();
        if !plugin {
            self.cluster()?;
        }
        // before any IPAM call, as libnetwork's NewNetwork checks (and again before storing)
        if self.find_by_name(&plan.name).is_some() {
            return Err(NetError::conflict(format!(
                "network with name {} already exists",
                plan.name
            )));
        }
        let remote = match &plan.ipam_driver {
            Some(name) => {
                let ipam = self.remote_ipam(name).await?;
                let opts = req.ipam.as_ref().and_then(|i| i.options.as_ref());
                let pools = self.request_pools(&ipam, &plan, opts, true).await?;
                Some((ipam, pools))
            }
            None => None,
        };
        let made = self
            .create_global(&plan, req, plugin, remote.as_ref().map(|r| &r.1))
            .await;
        if let (Err(_), Some((ipam, pools))) = (&made, &remote) {
            self.release_pools(ipam, pools).await;
        }
        made
    }

    async fn create_global(
        &self,
        plan: &CreatePlan,
        req: &NetworkCreateRequest,
        plugin: bool,
        pools: Option<&Vec<Subnet>>,
    ) -> Result<String> {
        let cluster = self.cluster.get().cloned();
        let mut options = req.options.clone().unwrap_or_default();
        let (want_vni, mtu) = match plugin {
            false => ov::parse_options(&options)?,
            true => (None, 0),
        };
        let explicit: Vec<SubnetRequest> = plan
            .v4
            .iter()
            .chain(plan.v6.iter())
            .chain(plan.more.iter())
            .cloned()
            .collect();
        for (i, a) in explicit.iter().enumerate() {
            if explicit[..i].iter().any(|b| overlap(&a.subnet, &b.subnet)) {
                return Err(NetError::forbidden(OVERLAPS));
            }
        }
        // The name is held on this host while the cluster store is asked, so that a local
        // create of the same name cannot slip in (the cluster store sees only global names).
        let _hold = NameHold::take(self, &plan.name)?;
        let id = new_id();
        let mut skip_subnets = HashSet::new();
        let mut skip_vnis = HashSet::new();
        for _ in 0..64 {
            let (reqs, vni) = {
                let st = self.lock();
                if st.networks.values().any(|n| n.name == plan.name) {
                    return Err(NetError::conflict(format!(
                        "network with name {} already exists",
                        plan.name
                    )));
                }
                let globals = || st.networks.values().filter(|n| n.is_global());
                // the global default address space: overlays and plugins' networks alike
                let used: Vec<IpNet> = globals()
                    .flat_map(|n| n.subnets.iter().filter(|s| s.remote.is_none()))
                    .map(|s| s.pool.subnet)
                    .collect();
                let mut reqs = explicit.clone();
                if pools.is_some() {
                    reqs.clear();
                } else if plan.v4.is_none() {
                    let subnet = next_subnet(&used, &skip_subnets)
                        .ok_or_else(|| NetError::not_found(NO_POOL))?;
                    reqs.insert(
                        0,
                        SubnetRequest {
                            subnet,
                            range: None,
                            gateway: None,
                            aux: BTreeMap::new(),
                        },
                    );
                } else if reqs
                    .iter()
                    .any(|r| used.iter().any(|u| overlap(u, &r.subnet)))
                {
                    return Err(NetError::forbidden(OVERLAPS));
                }
                let vnis: HashSet<u32> = globals()
                    .filter_map(|n| n.overlay.as_ref())
                    .map(|o| o.vni)
                    .collect();
                let vni = match want_vni {
                    _ if plugin => 0,
                    Some(v) if vnis.contains(&v) => {
                        return Err(NetError::forbidden(format!(
                            "vxlan id {v} is already in use"
                        )))
                    }
                    Some(v) => v,
                    None => (ov::VNI_FIRST..=ov::VNI_LAST)
                        .find(|v| !vnis.contains(v) && !skip_vnis.contains(v))
                        .ok_or_else(|| NetError::internal("no free VXLAN id"))?,
                };
                (reqs, vni)
            };
            let mut subnets = pools.cloned().unwrap_or_default();
            for r in &reqs {
                let mut pool = AddressPool::new(r.subnet, r.range);
                let gateway = prepare(&mut pool, r.gateway, &r.aux).map_err(gateway_error)?;
                subnets.push(Subnet {
                    pool,
                    gateway,
                    aux: r.aux.clone(),
                    remote: None,
                });
            }
            if !plugin {
                // shown by inspect, as Docker's classic overlay shows it
                options.insert(ov::OPT_VXLANID.into(), vni.to_string());
            }
            let net = Network {
                id: id.clone(),
                name: plan.name.clone(),
                driver: plan.driver.clone(),
                scope: drivers::Scope::Global.as_str().into(),
                created: now_rfc3339(),
                enable_ipv6: plan.enable_ipv6,
                internal: req.internal,
                attachable: req.attachable,
                ingress: req.ingress,
                ipam_driver: plan.ipam_driver.clone().unwrap_or_else(|| "default".into()),
                ipam_options: req.ipam.as_ref().and_then(|i| i.options.clone()),
                user_ipam: plan.user_ipam.clone(),
                subnets,
                options: options.clone(),
                labels: req.labels.clone().unwrap_or_default(),
                bridge: None,
                predefined: false,
                overlay: (!plugin).then_some(OverlayConfig { vni, mtu }),
            };
            // a plugin's CreateNetwork goes before the network is stored, on this host only
            // (libnetwork's NewNetwork: addNetwork, then updateToStore)
            let driver = match plugin {
                true => Some(self.create_on_plugin(&net, cluster.is_some()).await?),
                false => None,
            };
            let Some(cluster) = cluster.clone() else {
                return Err(NetError::unavailable(NO_CLUSTER));
            };
            let stored = cluster.store.create_network(&net).await;
            if !matches!(stored, Ok(Ok(()))) {
                if let Some(d) = &driver {
                    self.undo_plugin_network(&**d, &net).await;
                }
            }
            match stored? {
                Ok(()) => {
                    crate::fail::point("overlay-create/recorded");
                    self.adopt_global(net);
                    crate::fail::point("overlay-create/cached");
                    return Ok(id);
                }
                Err(CreateConflict::Name) => {
                    return Err(NetError::conflict(format!(
                        "network with name {} already exists",
                        plan.name
                    )))
                }
                Err(CreateConflict::Subnet(0)) if plan.v4.is_none() && pools.is_none() => {
                    skip_subnets.insert(reqs[0].subnet);
                }
                Err(CreateConflict::Subnet(_)) => return Err(NetError::forbidden(OVERLAPS)),
                Err(CreateConflict::Vni) if want_vni.is_some() => {
                    return Err(NetError::forbidden(format!(
                        "vxlan id {vni} is already in use"
                    )))
                }
                Err(CreateConflict::Vni) => {
                    skip_vnis.insert(vni);
                }
            }
        }
        Err(NetError::unavailable(
            "could not record the network: the cluster store kept changing under the request",
        ))
    }

    /// A global network this host learnt of (its own create, or the watch): kept in memory and
    /// in the local store. An existing copy is kept as it is (its pool is this host's view).
    pub(super) fn adopt_global(&self, net: Network) {
        let mut st = self.lock();
        if st.networks.contains_key(&net.id) {
            return;
        }
        if let Err(e) = self.store.put(GLOBAL_NETWORKS, &net.id, &net) {
            tracing::warn!("caching network {} locally: {e}", net.name);
        }
        st.networks.insert(net.id.clone(), net);
    }

    /// Removes the network cluster-wide unless some host has endpoints on it.
    pub(super) async fn delete_overlay(&self, net: &Network) -> Result<()> {
        if self.lock().eps.has_endpoints(&net.id) {
            return Err(has_active(net));
        }
        let cluster = self.cluster()?;
        if !cluster.store.delete_network(net).await? {
            return Err(has_active(net));
        }
        crate::fail::point("overlay-rm/recorded");
        self.forget_global(&net.id);
        crate::fail::point("overlay-rm/forgotten");
        // Docker's order once the network is gone from the store: the IPAM's pools, then
        // the plugin's DeleteNetwork, on the host that removed it
        self.release_network_pools(net).await;
        if net.plugin().is_some() {
            self.delete_on_plugin(net).await;
        }
        Ok(())
    }

    /// Drops a global network from this host (it was removed from the cluster store).
    pub(super) fn forget_global(&self, nid: &str) {
        let path = {
            let mut st = self.lock();
            if st.eps.has_endpoints(nid) {
                tracing::warn!("network {nid} was removed from the cluster store while this host has endpoints on it");
                return;
            }
            st.networks.remove(nid);
            st.remote.retain(|_, r| r.network_id != nid);
            st.claims.remove(nid);
            st.overlays.remove(nid)
        };
        self.path_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(nid);
        if let Err(e) = self.store.delete(GLOBAL_NETWORKS, nid) {
            tracing::warn!("forgetting network {nid} locally: {e}");
        }
        if let Some(p) = path {
            self.osl.overlay_down(&p);
        }
    }

    /// Attaches a container to an overlay network: an address claimed in the cluster store,
    /// the network's data path on this host, a veth from its `br0` into the sandbox, the
    /// endpoint published on this host's lease, and (unless the network is internal) an
    /// interface on `docker_gwbridge` for the way out. All or nothing.
    pub(super) fn connect_overlay(
        self: &Arc<Self>,
        req: EndpointRequest,
    ) -> Boxed<'_, Result<EndpointSettings>> {
        Box::pin(async move {
            let mut lap = crate::laps::Laps::start();
            let cluster = self.cluster()?;
            let lease = cluster.lease()?;
            let (net, want) = self.target(&req)?;
            let sandbox = match &req.sandbox {
                Some(p) => p.clone(),
                None => self.sandbox_create(&req.container_id).await?,
            };
            let ns = self.cfg.netns_dir.join(ov::netns_name(&net.id));
            // a remote IPAM's journaled grants stay until the next start finds them held
            let (ipam, want, _grants) = self.endpoint_ipam(&net, want).await?;
            let ep = self
                .claim(&*ipam, &net, &req, &want, &sandbox, Some(&ns))
                .await?;
            lap.mark("claim");
            crate::fail::point("overlay-connect/claimed");
            let change = Change {
                put: vec![&ep],
                sandbox: Some(SbOp::Put(&ep.container_id)),
                with: &req.with,
                ..Default::default()
            };
            if let Err(e) = self.commit_change(&change) {
                self.unclaim(&*ipam, &ep).await;
                return Err(e);
            }
            lap.mark("store");
            crate::fail::point("overlay-connect/stored");
            let built = async {
                self.overlay_path(&net.id).await?;
                lap.mark("data path");
                crate::fail::point("overlay-connect/data-path");
                self.dns.serve(&ep.container_id, &ep.sandbox).map_err(|e| {
                    NetError::internal(format!(
                        "starting the embedded DNS server in {}: {e}",
                        ep.sandbox.display()
                    ))
                })?;
                let spec = self.endpoint_spec(&net, &ep, &req, vec![]);
                self.driver(drivers::OVERLAY)
                    .await?
                    .join(&net.net_ref(), &ep, &spec)
                    .await?;
                lap.mark("join");
                crate::fail::point("overlay-connect/veth");
                let rec = self.record_of(&cluster, &ep);
                if let Err(e) = cluster.store.put_endpoint(&rec, lease).await {
                    let _ = self.osl.delete_link_in(&ns, &ep.host_if).await;
                    return Err(e.into());
                }
                lap.mark("publish");
                crate::fail::point("overlay-connect/published");
                Ok(())
            }
            .await;
            if let Err(e) = built {
                self.roll_back(&ep).await;
                self.unclaim(&*ipam, &ep).await;
                self.drop_path_if_unused(&net.id).await;
                return Err(e);
            }
            let work = {
                let mut st = self.lock();
                if let Some(e) = st.eps.eps.get_mut(&ep.id) {
                    e.phase = Phase::Live;
                }
                self.add_names(&st, &ep);
                super::endpoint::claim_routes(&mut st, &ep.container_id)
            };
            self.apply_routes(work).await;
            crate::fail::point("overlay-connect/live");
            if let Err(e) = self.settle_gwbridge(&ep.container_id, &sandbox).await {
                let _ = self.remove_endpoint(&ep, &*ipam).await;
                return Err(e);
            }
            lap.mark("gwbridge");
            tracing::debug!(
                "container {}: connected to overlay {}: {lap}",
                &ep.container_id[..12.min(ep.container_id.len())],
                net.name
            );
            Ok(ep.settings())
        })
    }

    /// The endpoint as other hosts see it.
    pub(super) fn record_of(&self, cluster: &Cluster, ep: &Endpoint) -> EndpointRec {
        EndpointRec {
            id: ep.id.clone(),
            network_id: ep.network_id.clone(),
            host: cluster.host_id.clone(),
            vtep: cluster.vtep,
            container_id: ep.container_id.clone(),
            container_name: ep.container_name.clone(),
            mac: ep.mac,
            ipv4: ep.ipv4,
            ipv6: ep.ipv6,
            aliases: ep.aliases.clone(),
        }
    }

    /// The network's namespace, bridge and VXLAN device on this host, made by the first
    /// endpoint; its peers are programmed before it is used.
    async fn overlay_path(&self, nid: &str) -> Result<PathBuf> {
        let lock = self.path_lock(nid);
        let _g = lock.lock().await;
        let (spec, known) = {
            let st = self.lock();
            let n = st
                .networks
                .get(nid)
                .ok_or_else(|| NetError::not_found(format!("network {nid} not found")))?;
            let o = n.overlay.as_ref().ok_or_else(|| {
                NetError::invalid(format!("network {} is not an overlay network", n.name))
            })?;
            let spec = OverlaySpec {
                netns: self.cfg.netns_dir.join(ov::netns_name(nid)),
                vni: o.vni,
                port: ov::VXLAN_PORT,
                mtu: o.mtu,
                vtep: self.cluster()?.vtep,
                addrs: n
                    .subnets
                    .iter()
                    .filter_map(|s| IpNet::new(s.gateway, s.pool.subnet.prefix_len()).ok())
                    .collect(),
            };
            (spec, st.overlays.contains_key(nid))
        };
        if known {
            return Ok(spec.netns);
        }
        self.osl.overlay_up(&spec).await?;
        let peers = self.lock().peers_of(nid);
        self.osl.overlay_peers(&spec.netns, &peers).await?;
        self.lock()
            .overlays
            .insert(nid.to_string(), spec.netns.clone());
        Ok(spec.netns)
    }

    /// After the last endpoint on this host left: the data path stays for [`PATH_IDLE`], so
    /// a container that comes back soon (a restart, a reconnect) neither waits for the kernel
    /// to dismantle the old namespace (it holds the locks a new one needs) nor pays for a new.
    pub(super) fn drop_path_when_idle(self: &Arc<Self>, nid: &str) {
        let this = Arc::clone(self);
        let nid = nid.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(PATH_IDLE).await;
            this.drop_path_if_unused(&nid).await;
        });
    }

    /// Removes the network's data path on this host once no endpoint uses it.
    pub(super) async fn drop_path_if_unused(&self, nid: &str) {
        let lock = self.path_lock(nid);
        let _g = lock.lock().await;
        let path = {
            let mut st = self.lock();
            if st.eps.has_endpoints(nid) {
                return;
            }
            st.overlays.remove(nid)
        };
        if let Some(p) = path {
            self.osl.overlay_down(&p);
        }
    }

    pub(super) fn path_lock(&self, nid: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.path_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(nid.to_string())
            .or_default()
            .clone()
    }

    /// Reprograms one network's peers from the current view.
    pub(super) async fn sync_peers(&self, nid: &str) {
        let lock = self.path_lock(nid);
        let _g = lock.lock().await;
        let (path, peers) = {
            let st = self.lock();
            let Some(p) = st.overlays.get(nid).cloned() else {
                return;
            };
            (p, st.peers_of(nid))
        };
        if let Err(e) = self.osl.overlay_peers(&path, &peers).await {
            tracing::warn!("programming the peers of network {nid}: {e}");
        }
    }

    /// Rolls back a live overlay endpoint (a later step of its connect failed).
    async fn remove_endpoint(&self, ep: &Endpoint, ipam: &dyn crate::ipam::Ipam) -> Result<()> {
        let cluster = self.cluster()?;
        {
            let mut st = self.lock();
            if let Some(e) = st.eps.eps.get_mut(&ep.id) {
                e.phase = Phase::Leaving;
            }
            self.dns.remove(&ep.id);
        }
        let _ = cluster.store.delete_endpoint(&ep.network_id, &ep.id).await;
        if let Some(ns) = &ep.host_netns {
            let _ = self.osl.delete_link_in(ns, &ep.host_if).await;
        }
        self.roll_back(ep).await;
        self.unclaim(ipam, ep).await;
        self.drop_path_if_unused(&ep.network_id).await;
        Ok(())
    }

    /// The cluster-store side of endpoints that left (called once their records are gone
    /// locally): unpublished first (names vanish on every host), then their addresses freed.
    /// Endpoints of local networks are skipped.
    pub(super) async fn unpublish_endpoints(&self, eps: &[Endpoint]) {
        let Ok(cluster) = self.cluster() else { return };
        let eps: Vec<&Endpoint> = {
            let st = self.lock();
            eps.iter()
                .filter(|e| {
                    e.host_netns.is_some()
                        || st
                            .networks
                            .get(&e.network_id)
                            .is_some_and(Network::is_global)
                })
                .collect()
        };
        for ep in eps {
            match cluster.store.delete_endpoint(&ep.network_id, &ep.id).await {
                Ok(_) => crate::fail::point("overlay-disconnect/unpublished"),
                Err(e) => tracing::warn!(
                    "unpublishing endpoint {}: {e} (reconciled when the store is back)",
                    ep.id
                ),
            }
            self.unclaim(&GlobalIpam(cluster.clone()), ep).await;
            crate::fail::point("overlay-disconnect/released");
        }
    }
}

/// Marks an address another host holds as taken in this host's view of the pool.
pub(super) fn take_ip(n: &mut Network, ip: IpAddr) {
    if let Some(s) = n.subnets.iter_mut().find(|s| s.pool.contains(ip)) {
        let _ = s.pool.reserve(ip);
    }
}

/// A network name reserved on this host while a create runs; let go when dropped, also when
/// the request's future is dropped half-way.
struct NameHold<'a> {
    c: &'a Controller,
    name: String,
}

impl<'a> NameHold<'a> {
    fn take(c: &'a Controller, name: &str) -> Result<NameHold<'a>> {
        let mut st = c.lock();
        if st.networks.values().any(|n| n.name == name) || !st.pending_names.insert(name.into()) {
            return Err(NetError::conflict(format!(
                "network with name {name} already exists"
            )));
        }
        Ok(NameHold {
            c,
            name: name.into(),
        })
    }
}

impl Drop for NameHold<'_> {
    fn drop(&mut self) {
        self.c.lock().pending_names.remove(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_pool_is_docker_s() {
        let none = HashSet::new();
        assert_eq!(next_subnet(&[], &none).unwrap().to_string(), "10.0.0.0/24");
        let used = vec!["10.0.0.0/24".parse().unwrap()];
        assert_eq!(
            next_subnet(&used, &none).unwrap().to_string(),
            "10.0.1.0/24"
        );
        let skip: HashSet<IpNet> = ["10.0.1.0/24".parse().unwrap()].into();
        assert_eq!(
            next_subnet(&used, &skip).unwrap().to_string(),
            "10.0.2.0/24"
        );
        let wide = vec!["10.0.0.0/16".parse().unwrap()];
        assert_eq!(
            next_subnet(&wide, &none).unwrap().to_string(),
            "10.1.0.0/24"
        );
    }
}
