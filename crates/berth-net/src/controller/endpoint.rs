//! Connecting containers to networks and disconnecting them.
//!
//! A connect takes its addresses under the state lock, records the endpoint together with the
//! network's pool in one transaction, and only then builds the veth; the lock is never held
//! across kernel work, so many containers connect at once. A disconnect forgets the endpoint
//! in the store at once but keeps its addresses taken in memory until the veth is gone (the
//! kernel's veth deletion waits for an RCU grace period, so it runs in the background).

use super::{Controller, State};
use crate::drivers;
use crate::endpoint::*;
use crate::error::{NetError, Result};
use crate::network::Network;
use crate::osl::EndpointSpec;
use crate::resolver::names::{parse_link, EpNames};
use crate::store::{Op, ENDPOINTS, NETWORKS, SANDBOXES};
use berth_api::{EndpointIpamConfig, EndpointSettings, NetworkResource};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Endpoints' veths are tagged `berth/<instance>/ep/<endpoint id>`.
pub(super) const ENDPOINT_TAG: &str = "ep/";

const HOST_CONFLICT: &str =
    "container cannot be disconnected from host network or connected to host network";

/// Network inspect's form, with the attached containers.
pub(super) fn resource_in(st: &State, n: &Network) -> NetworkResource {
    let mut r = n.to_resource();
    r.containers = st
        .eps
        .on_network(&n.id)
        .filter(|e| e.phase == Phase::Live)
        .map(|e| (e.ep.container_id.clone(), e.ep.resource()))
        .collect();
    r
}

pub(super) enum SbOp<'a> {
    /// Writes the sandbox record as it stands in memory (nothing if it is gone).
    Put(&'a str),
    Delete(&'a str),
}

/// One store transaction about endpoints. The networks' pools and the sandbox record are
/// snapshotted inside the transaction, so the file always ends with the newest of them.
#[derive(Default)]
pub(super) struct Change<'a> {
    pub put: Vec<&'a Endpoint>,
    pub delete: Vec<&'a str>,
    pub networks: Vec<&'a str>,
    pub sandbox: Option<SbOp<'a>>,
    pub with: &'a [(&'static str, String, Vec<u8>)],
    /// IPAM grants the endpoint's record now holds (controller/ipam_grants.rs).
    pub grants: Vec<String>,
}

impl Target {
    pub(super) fn net_ref(&self) -> super::NetRef {
        super::NetRef {
            id: self.id.clone(),
            name: self.name.clone(),
            driver: self.driver.clone(),
            predefined: !self.user,
        }
    }
}

/// The network of a connect, as far as the kernel step needs it.
pub(super) struct Target {
    pub id: String,
    pub driver: String,
    pub name: String,
    pub bridge: String,
    pub mtu: Option<u32>,
    /// A user-defined network: its containers get the embedded DNS.
    pub user: bool,
    pub internal: bool,
    pub overlay: bool,
    /// Kept in the cluster store: an overlay or a global plugin's network.
    pub global: bool,
    /// The network's remote IPAM driver, which grants its addresses.
    pub remote_ipam: Option<String>,
}

/// What the embedded DNS answers for an endpoint.
fn dns_names(ep: &Endpoint, network_name: &str, internal: bool) -> EpNames {
    EpNames {
        endpoint_id: ep.id.clone(),
        container_id: ep.container_id.clone(),
        network_id: ep.network_id.clone(),
        network_name: network_name.to_string(),
        internal,
        names: std::iter::once(&ep.container_name)
            .chain(&ep.aliases)
            .filter(|n| !n.is_empty())
            .cloned()
            .collect(),
        links: ep.links.iter().filter_map(|l| parse_link(l)).collect(),
        v4: ep.ipv4.and_then(|n| match n.addr() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }),
        v6: ep.ipv6.and_then(|n| match n.addr() {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }),
    }
}

/// Default routes to point at an interface once the state lock is released.
type RouteWork = (PathBuf, String, Vec<IpAddr>);

fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// Docker's checks of a connect request, in its order, and the parsed choices.
fn validate(net: &Network, req: &EndpointRequest) -> Result<Wanted> {
    let (ip4, ip6) = (given(&req.ipv4), given(&req.ipv6));
    if net.driver == drivers::HOST {
        return Err(NetError::invalid(HOST_CONFLICT));
    }
    if net.driver == drivers::NULL {
        return Err(NetError::invalid(
            "container cannot be connected to multiple networks with one of the networks in private (none) mode",
        ));
    }
    // bridge, host and none are the networks that are not "user defined"
    if net.predefined {
        if ip4.is_some() || ip6.is_some() {
            return Err(NetError::invalid(
                "user specified IP address is supported on user defined networks only",
            ));
        }
        if !req.aliases.is_empty() {
            return Err(NetError::invalid(
                "network-scoped alias is supported only for containers in user defined networks",
            ));
        }
    }
    for (ip, v6) in [(ip4, false), (ip6, true)] {
        let configured = net
            .user_ipam
            .iter()
            .any(|c| !c.subnet.is_empty() && c.subnet.contains(':') == v6);
        if ip.is_some() && !configured {
            return Err(NetError::invalid(
                "user specified IP address is supported only when connecting to networks with user configured subnets",
            ));
        }
    }
    let v4 = ip4
        .map(|s| {
            s.parse::<Ipv4Addr>()
                .map(IpAddr::V4)
                .map_err(|_| NetError::internal(format!("Invalid IPv4 address: {s})")))
        })
        .transpose()?;
    let v6 = ip6
        .map(|s| {
            s.parse::<Ipv6Addr>()
                .map(IpAddr::V6)
                .map_err(|_| NetError::internal(format!("Invalid IPv6 address: {s})")))
        })
        .transpose()?;
    let mac = given(&req.mac)
        .map(|m| {
            parse_mac(m)
                .ok_or_else(|| NetError::internal(format!("address {m}: invalid MAC address")))
        })
        .transpose()?;
    if matches!(drivers::Kind::of(&net.driver), Some(k) if !k.has_endpoints()) {
        return Err(NetError::not_implemented(format!(
            "driver {} does not support endpoints",
            net.driver
        )));
    }
    Ok(Wanted { v4, v6, mac })
}

/// User-defined networks get the embedded DNS; `docker_gwbridge` (a way out for overlay
/// containers, with ICC off) does not.
pub(super) fn serves_names(n: &Network) -> bool {
    !n.predefined && n.name != super::GWBRIDGE
}

/// A link-local address with libnetwork's masks (`linkLocalMask`, /16; IPv6 /64).
fn link_local_net(ip: IpAddr) -> ipnet::IpNet {
    let len = if ip.is_ipv4() { 16 } else { 64 };
    ipnet::IpNet::new(ip, len).expect("prefix length fits")
}

fn if_number(ifname: &str) -> Option<u32> {
    let digits = ifname.trim_start_matches(|c: char| !c.is_ascii_digit());
    digits.parse().ok()
}

impl Controller {
    /// Docker's checks of a connect, without connecting: for a stopped container, whose
    /// endpoint is made only when it starts.
    pub fn check_endpoint(&self, req: &EndpointRequest) -> Result<()> {
        self.target(req).map(|_| ())
    }

    /// The network a connect goes to, checked, and what of it the kernel step needs: read
    /// under the lock rather than copying the network (and its address pools) per connect.
    pub(super) fn target(&self, req: &EndpointRequest) -> Result<(Target, Wanted)> {
        let st = self.lock();
        let n = super::find(&st, &req.network, false)?;
        let want = validate(n, req)?;
        let (bridge, mtu) = match (&n.bridge, &n.overlay) {
            (Some(b), _) => (b.name.clone(), b.mtu),
            (None, Some(o)) => (crate::osl::overlay::BRIDGE.to_string(), Some(o.mtu)),
            // a plugin's network: the plugin makes the interface
            (None, None) => (String::new(), None),
        };
        let t = Target {
            id: n.id.clone(),
            driver: n.driver.clone(),
            name: n.name.clone(),
            bridge,
            mtu,
            user: serves_names(n),
            internal: n.internal,
            overlay: n.overlay.is_some(),
            global: n.is_global(),
            remote_ipam: n.remote_ipam().map(str::to_string),
        };
        Ok((t, want))
    }

    /// Attaches a container to a network: addresses (requested or next free), MAC, a host veth
    /// `veth<7 hex>` on the bridge and `ethN` inside the sandbox, and the default routes if no
    /// earlier endpoint of the sandbox carries them. All or nothing.
    pub async fn connect(self: &Arc<Self>, req: EndpointRequest) -> Result<EndpointSettings> {
        let mut lap = crate::laps::Laps::start();
        let (net, want) = self.target(&req)?;
        if net.overlay {
            return self.connect_overlay(req).await;
        }
        let sandbox = match &req.sandbox {
            Some(p) => p.clone(),
            None => self.sandbox_create(&req.container_id).await?,
        };
        let (ipam, want, grants) = self.endpoint_ipam(&net, want).await?;
        lap.mark("ipam");
        let ep = self
            .claim(&*ipam, &net, &req, &want, &sandbox, None)
            .await?;
        lap.mark("claim");
        let routed = self.lock().eps.eps.get(&ep.id).is_some_and(|e| e.routed);
        let change = Change {
            put: vec![&ep],
            networks: vec![&ep.network_id],
            sandbox: Some(SbOp::Put(&ep.container_id)),
            with: &req.with,
            grants,
            ..Default::default()
        };
        if let Err(e) = self.commit_change(&change) {
            self.unreserve(&ep, true);
            self.unclaim(&*ipam, &ep).await;
            return Err(e);
        }
        crate::fail::point("connect/stored");
        lap.mark("store");
        let gateways = if routed { ep.gateways() } else { vec![] };
        let spec = self.endpoint_spec(&net, &ep, &req, gateways);
        // Listening before the endpoint exists: nothing to undo in the kernel if it fails.
        if net.user {
            if let Err(e) = self.dns.serve(&ep.container_id, &ep.sandbox) {
                self.roll_back(&ep).await;
                self.unclaim(&*ipam, &ep).await;
                return Err(NetError::internal(format!(
                    "starting the embedded DNS server in {}: {e}",
                    ep.sandbox.display()
                )));
            }
            crate::fail::point("connect/dns-listener");
            lap.mark("dns");
        }
        let record_gateway = self.gateway_recorder(&ep, net.internal);
        let joined = match self.driver(&net.driver).await {
            Ok(d) => {
                d.join_then(&net.net_ref(), &ep, &spec, &record_gateway)
                    .await
            }
            Err(e) => Err(e),
        };
        let joined = match joined {
            Ok(j) => j,
            Err(e) => {
                self.roll_back(&ep).await;
                // after the driver's DeleteEndpoint, as Docker releases
                self.unclaim(&*ipam, &ep).await;
                return Err(e);
            }
        };
        lap.mark("join");
        let mut ep = ep;
        if let Some(g) = &joined.gateway {
            super::plugin_join::apply_join_gateway(&mut ep, g, net.internal);
        }
        // a global plugin's network: every host sees the endpoint (plugin_cluster.rs); its
        // undo gives the plugin's link back under the name the Join gave (plugin_src)
        self.publish_plugin_endpoint(&net, &ep, &*ipam).await?;
        crate::fail::point("connect/veth");
        let work = {
            let mut st = self.lock();
            if let Some(e) = st.eps.eps.get_mut(&ep.id) {
                e.phase = Phase::Live;
                e.ep.gateway4 = ep.gateway4;
                e.ep.gateway6 = ep.gateway6;
                e.ep.gw_service = ep.gw_service;
                e.ep.pending = false;
                e.ep.plugin_src = ep.plugin_src.clone();
            }
            // answerable before the container's process starts
            if net.user {
                self.dns.add(dns_names(&ep, &net.name, net.internal));
            }
            // an earlier endpoint carrying the routes may have left while this one joined
            claim_routes(&mut st, &ep.container_id)
        };
        self.apply_routes(work).await;
        crate::fail::point("connect/live");
        lap.mark("routes");
        // a gateway of its own: an overlay container's gwbridge interface is not needed now
        if net.name != super::GWBRIDGE && !net.internal {
            if let Err(e) = self.settle_gwbridge(&ep.container_id, &ep.sandbox).await {
                tracing::warn!("container {}: {e}", ep.container_id);
            }
            lap.mark("gwbridge");
        }
        tracing::debug!(
            "container {}: connected to {} ({}): {lap}",
            ep.container_id,
            net.name,
            net.driver
        );
        Ok(ep.settings())
    }

    /// The kernel's view of an endpoint: its veth from the network's bridge (in the overlay
    /// namespace for overlay endpoints) into the sandbox.
    pub(super) fn endpoint_spec(
        &self,
        net: &Target,
        ep: &Endpoint,
        req: &EndpointRequest,
        gateways: Vec<IpAddr>,
    ) -> EndpointSpec {
        EndpointSpec {
            host_if: ep.host_if.clone(),
            alias: format!("{}{ENDPOINT_TAG}{}", self.alias_tag(), ep.id),
            bridge: net.bridge.clone(),
            host_netns: ep.host_netns.clone(),
            netns: ep.sandbox.clone(),
            ifname: ep.ifname.clone(),
            mac: ep.mac,
            mtu: net.mtu,
            addrs: ep
                .ipv4
                .iter()
                .chain(&ep.ipv6)
                .copied()
                .chain(req.link_local.iter().map(|ip| link_local_net(*ip)))
                .collect(),
            gateways,
        }
    }

    /// Takes everything the endpoint needs, under the state lock; the endpoint is recorded as
    /// joining, which keeps its network from being removed. `overlay_ns`: the overlay
    /// network's namespace, where the host end goes (overlay endpoints carry no gateway: the
    /// way out is `docker_gwbridge`).
    pub(super) fn reserve_in(
        &self,
        net: &Target,
        req: &EndpointRequest,
        want: &Wanted,
        sandbox: &Path,
        overlay_ns: Option<&Path>,
    ) -> Result<Endpoint> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let not_found = || NetError::not_found(format!("network {} not found", req.network));
        let n = st.networks.get_mut(&net.id).ok_or_else(not_found)?;
        if st.eps.on_network(&net.id).any(|e| {
            e.ep.container_name == req.container_name || e.ep.container_id == req.container_id
        }) {
            return Err(NetError::forbidden(format!(
                "endpoint with name {} already exists in network {}",
                req.container_name, n.name
            )));
        }
        let new_sandbox = !st.eps.sandboxes.contains_key(&req.container_id);
        let sb = st
            .eps
            .sandboxes
            .entry(req.container_id.clone())
            .or_insert_with(|| SandboxEntry {
                rec: Sandbox {
                    container_id: req.container_id.clone(),
                    path: sandbox.to_path_buf(),
                    owned: false,
                    next_if: 0,
                },
                eps: vec![],
                busy: false,
            });
        if sb.rec.path != sandbox {
            return Err(NetError::invalid(format!(
                "container {} already has its sandbox at {}",
                req.container_id,
                sb.rec.path.display()
            )));
        }
        if sb.busy {
            return Err(NetError::conflict(format!(
                "the sandbox of container {} is being created or deleted",
                req.container_id
            )));
        }
        let alloc = match allocate(n, want) {
            Ok(a) => a,
            Err(e) => {
                if new_sandbox {
                    st.eps.sandboxes.remove(&req.container_id);
                }
                return Err(e);
            }
        };
        let prefix = n.bridge.as_ref().map_or("eth", |b| b.iface_prefix.as_str());
        let ifname = format!("{prefix}{}", sb.rec.next_if);
        sb.rec.next_if += 1;
        let host_if = loop {
            let v = random_veth();
            if !st.eps.veths.contains(&v) {
                break v;
            }
        };
        let v4 = alloc.v4.map(|(n, _)| n.addr());
        let plugin = drivers::Kind::of(&net.driver).is_none();
        let ep = Endpoint {
            id: crate::network::new_id(),
            network_id: net.id.clone(),
            container_id: req.container_id.clone(),
            container_name: req.container_name.clone(),
            sandbox: sandbox.to_path_buf(),
            host_if,
            ifname,
            mac: want.mac.unwrap_or_else(|| mac_for(v4)),
            ipv4: alloc.v4.map(|(n, _)| n),
            ipv6: alloc.v6.map(|(n, _)| n),
            // a plugin's endpoint has the gateway its Join gives (set in `connect`)
            gateway4: alloc
                .v4
                .map(|(_, g)| g)
                .filter(|_| overlay_ns.is_none() && !plugin),
            gateway6: alloc
                .v6
                .map(|(_, g)| g)
                .filter(|_| overlay_ns.is_none() && !plugin),
            gw_service: false,
            plugin_src: None,
            pending: plugin,
            host_netns: overlay_ns.map(Path::to_path_buf),
            ipam_config: (given(&req.ipv4).is_some() || given(&req.ipv6).is_some()).then(|| {
                EndpointIpamConfig {
                    ipv4_address: given(&req.ipv4).unwrap_or_default().to_string(),
                    ipv6_address: given(&req.ipv6).unwrap_or_default().to_string(),
                    link_local_ips: None,
                }
            }),
            aliases: req.aliases.clone(),
            links: req.links.clone(),
            seq: st.eps.seq + 1,
        };
        let routed = st.eps.route_carrier(&ep.container_id).is_none() && !ep.gateways().is_empty();
        st.eps.insert(ep.clone(), Phase::Joining, routed);
        Ok(ep)
    }

    /// Undoes `reserve` in memory. `reuse_if`: hand the interface number back (nothing used it).
    pub(super) fn unreserve(&self, ep: &Endpoint, reuse_if: bool) {
        let mut guard = self.lock();
        let st = &mut *guard;
        st.eps.remove(&ep.id);
        st.eps.veths.remove(&ep.host_if);
        st.eps.undrain(&ep.network_id, &ep.addrs());
        if let Some(n) = st.networks.get_mut(&ep.network_id) {
            for ip in ep.addrs() {
                release(n, ip);
            }
        }
        if let (true, Some(sb)) = (reuse_if, st.eps.sandboxes.get_mut(&ep.container_id)) {
            if if_number(&ep.ifname).is_some_and(|k| sb.rec.next_if == k + 1) {
                sb.rec.next_if -= 1;
            }
        }
    }

    /// A kernel step failed (and `create_endpoint` left nothing behind): forget the record,
    /// then free the addresses.
    pub(super) async fn roll_back(&self, ep: &Endpoint) {
        {
            let mut guard = self.lock();
            let st = &mut *guard;
            if let Some(e) = st.eps.eps.get_mut(&ep.id) {
                e.phase = Phase::Leaving;
            }
            st.eps.drain(&ep.network_id, &ep.addrs());
            if let Some(sb) = st.eps.sandboxes.get_mut(&ep.container_id) {
                if if_number(&ep.ifname).is_some_and(|k| sb.rec.next_if == k + 1) {
                    sb.rec.next_if -= 1;
                }
            }
        }
        let change = Change {
            delete: vec![&ep.id],
            networks: vec![&ep.network_id],
            sandbox: Some(SbOp::Put(&ep.container_id)),
            ..Default::default()
        };
        if let Err(e) = self.commit_change(&change) {
            // the record stays; the next start drops it, as its veth does not exist
            tracing::error!("undoing endpoint {}: {e}", ep.id);
        }
        let work = {
            self.unreserve(ep, false);
            claim_routes(&mut self.lock(), &ep.container_id)
        };
        self.apply_routes(work).await;
    }

    /// Detaches the container from one network. If that endpoint carried the default routes,
    /// the next endpoint with a gateway (attach order) takes them over.
    pub async fn disconnect(self: &Arc<Self>, container_id: &str, network: &str) -> Result<()> {
        let net = self.network_ref(network)?;
        if net.driver == drivers::HOST {
            return Err(NetError::invalid(HOST_CONFLICT));
        }
        let ep = {
            let mut guard = self.lock();
            let st = &mut *guard;
            let found = st
                .eps
                .on_network(&net.id)
                .find(|e| e.ep.container_id == container_id && e.phase == Phase::Live)
                .map(|e| e.ep.clone());
            let Some(ep) = found else {
                return Err(NetError::internal(format!(
                    "container {container_id} is not connected to network {}",
                    net.name
                )));
            };
            st.eps.eps.get_mut(&ep.id).expect("found").phase = Phase::Leaving;
            st.eps.drain(&ep.network_id, &ep.addrs());
            ep
        };
        let change = Change {
            delete: vec![&ep.id],
            networks: vec![&ep.network_id],
            ..Default::default()
        };
        if let Err(e) = self.commit_change(&change) {
            let mut st = self.lock();
            if let Some(x) = st.eps.eps.get_mut(&ep.id) {
                x.phase = Phase::Live;
            }
            st.eps.undrain(&ep.network_id, &ep.addrs());
            return Err(e);
        }
        crate::fail::point("disconnect/stored");
        let sandbox = ep.sandbox.clone();
        self.forget(vec![ep], true).await;
        if net.name != super::GWBRIDGE {
            // left its last overlay (gwbridge no longer needed), or the network that gave it
            // a gateway (an overlay container needs gwbridge again)
            if let Err(e) = self.settle_gwbridge(container_id, &sandbox).await {
                tracing::warn!("container {container_id}: {e}");
            }
        }
        Ok(())
    }

    /// Puts a live endpoint's names in the embedded DNS, if its network is a user network.
    pub(super) fn add_names(&self, st: &State, ep: &Endpoint) {
        if let Some(n) = st.networks.get(&ep.network_id).filter(|n| serves_names(n)) {
            self.dns.add(dns_names(ep, &n.name, n.internal));
        }
    }

    /// The container's own `--dns` servers for the embedded DNS (empty: the daemon's, else
    /// the host's).
    pub fn set_dns_servers(&self, container_id: &str, servers: &[IpAddr]) {
        self.dns.set_servers(container_id, servers);
    }

    /// The host's resolv.conf (upstreams of last resort, search domains).
    pub fn host_resolv_conf(&self) -> &Path {
        &self.cfg.dns.resolv_conf
    }

    /// Whether the container's sandbox has the embedded DNS listening.
    pub fn dns_serving(&self, container_id: &str) -> bool {
        self.dns.serving(container_id)
    }

    pub(super) async fn apply_routes(&self, work: impl IntoIterator<Item = RouteWork>) {
        for (netns, ifname, gws) in work {
            if let Err(e) = self.osl.set_default_routes(&netns, &ifname, &gws).await {
                tracing::error!("default route via {ifname} in {}: {e}", netns.display());
            }
        }
    }

    /// The container's live endpoints, (network name, settings), in attach order.
    pub fn endpoints_of(&self, container_id: &str) -> Vec<(String, EndpointSettings)> {
        let st = self.lock();
        st.eps
            .of_container(container_id)
            .into_iter()
            .filter(|e| e.phase == Phase::Live)
            .filter_map(|e| {
                let n = st
                    .networks
                    .get(&e.ep.network_id)
                    .filter(|n| n.name != super::GWBRIDGE)?;
                Some((n.name.clone(), e.ep.settings()))
            })
            .collect()
    }

    /// Must not be called with the state lock held: the lock is taken inside the store's
    /// write transaction.
    pub(super) fn commit_change(&self, ch: &Change<'_>) -> Result<()> {
        use super::ipam_grants::{entries, grants_of, IPAM_GRANTS};
        // a remote IPAM's grants of the endpoints deleted here (ipam_grants.rs)
        let released: Vec<_> = {
            let st = self.lock();
            ch.delete
                .iter()
                .filter_map(|id| st.eps.eps.get(*id))
                .filter_map(|e| Some(grants_of(st.networks.get(&e.ep.network_id)?, Some(&e.ep))))
                .flatten()
                .collect()
        };
        let released = entries(&released);
        self.store.commit_with(|| {
            let st = self.lock();
            let mut ops = Vec::new();
            for ep in &ch.put {
                ops.push(Op::put(ENDPOINTS, &ep.id, *ep)?);
            }
            for id in &ch.delete {
                ops.push(Op::Delete(ENDPOINTS, id));
            }
            for (key, g) in &released {
                ops.push(Op::put(IPAM_GRANTS, key, *g)?);
            }
            for id in &ch.networks {
                // a removed network is not brought back
                // global networks' pools are kept by the cluster store
                let Some(n) = st.networks.get(*id).filter(|n| !n.is_global()) else {
                    continue;
                };
                ops.push(match st.eps.draining.get(*id) {
                    None => Op::put(NETWORKS, id, n)?,
                    Some(d) => Op::put(NETWORKS, id, &persisted(n, d))?,
                });
            }
            match ch.sandbox {
                Some(SbOp::Put(cid)) => {
                    if let Some(sb) = st.eps.sandboxes.get(cid) {
                        ops.push(Op::put(SANDBOXES, cid, &sb.rec)?);
                    }
                }
                Some(SbOp::Delete(cid)) => ops.push(Op::Delete(SANDBOXES, cid)),
                None => {}
            }
            for (table, key, value) in ch.with {
                ops.push(Op::Put(table, key, value.clone()));
            }
            for key in &ch.grants {
                ops.push(Op::Delete(super::ipam_grants::IPAM_GRANTS, key));
            }
            Ok(ops)
        })?;
        Ok(())
    }
}

/// If the sandbox's route carrier is live but has no routes yet, marks it and returns the work.
pub(super) fn claim_routes(st: &mut State, cid: &str) -> Option<RouteWork> {
    let id = st.eps.route_carrier(cid)?.ep.id.clone();
    let e = st.eps.eps.get_mut(&id)?;
    if e.phase != Phase::Live || e.routed {
        return None;
    }
    e.routed = true;
    Some((e.ep.sandbox.clone(), e.ep.ifname.clone(), e.ep.gateways()))
}
