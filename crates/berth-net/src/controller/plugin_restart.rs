//! A restart with plugin networks (plugins.md §4.5). CreateNetwork is never sent again: the
//! plugins keep their own state. What a restart does tell them:
//! - endpoints dropped at start (their sandbox is gone, or a berthd killed mid-connect left
//!   them before their Join completed): DeleteEndpoint to the network's plugin, then
//!   ReleaseAddress to its IPAM plugin, for what they had granted;
//! - grants of IPAM plugins no record holds (a berthd killed between the plugin's answer and
//!   the record): ReleaseAddress, ReleasePool (controller/ipam_grants.rs);
//! - IPAM plugins with `RequiresRequestReplay`: each network's pool again (RequestPool with
//!   the stored pool), its gateway (marked as a gateway request), aux addresses, then one
//!   RequestAddress per endpoint, in Docker's order.
//!
//! It runs in the background after start: a missing plugin is waited for as long as Docker
//! waits (~15 s), which must not keep the API from serving.

use super::leave::Leaving;
use super::remote_ipam::pools_of;
use super::Controller;
use crate::endpoint::Endpoint;
use crate::network::Network;
use crate::plugins::api::ipam::RequestPoolRequest;
use crate::plugins::ipam::gateway_request;
use crate::plugins::RemoteDriver;
use crate::store::NETWORKS;
use std::net::IpAddr;
use std::sync::Arc;

impl Controller {
    /// The dropped endpoints the plugins must hear of, if there is anything for the plugins
    /// at all (`None`: no plugin is contacted, and no task holds the controller).
    /// Each counts as leaving its network until the plugins heard of it: a `network rm`
    /// meanwhile waits, as it waits for a disconnect's teardown (controller/leave.rs).
    pub(super) fn plugin_work(
        self: &Arc<Self>,
        dropped: Vec<Endpoint>,
    ) -> Option<Vec<(Endpoint, Leaving)>> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let concerns = |n: &Network| n.remote_ipam().is_some() || n.plugin().is_some();
        let dropped: Vec<Endpoint> = dropped
            .into_iter()
            .filter(|e| st.networks.get(&e.network_id).is_some_and(concerns))
            .collect();
        let dropped: Vec<(Endpoint, Leaving)> = dropped
            .into_iter()
            .map(|e| {
                let leaving = Leaving::start(self, st, &e.network_id);
                (e, leaving)
            })
            .collect();
        let replay = st.networks.values().any(|n| n.remote_ipam().is_some());
        drop(guard);
        let orphans = !self.journaled_grants().is_empty();
        (replay || orphans || !dropped.is_empty()).then_some(dropped)
    }

    pub(super) async fn settle_plugins(self: Arc<Self>, dropped: Vec<(Endpoint, Leaving)>) {
        for (ep, leaving) in dropped {
            self.tell_dropped(&ep).await;
            drop(leaving);
        }
        // grants a berthd killed mid-create or mid-connect never recorded
        self.release_orphan_grants().await;
        let nets: Vec<(Network, Vec<IpAddr>)> = {
            let st = self.lock();
            st.networks
                .values()
                .filter(|n| n.remote_ipam().is_some())
                .map(|n| {
                    let mut eps: Vec<&Endpoint> = st.eps.on_network(&n.id).map(|e| &e.ep).collect();
                    eps.sort_by_key(|e| e.seq);
                    let ips = eps.iter().flat_map(|e| e.addrs()).collect();
                    (n.clone(), ips)
                })
                .collect()
        };
        for (n, ips) in nets {
            self.replay_ipam(&n, &ips).await;
        }
    }

    /// DeleteEndpoint (plugin driver), then ReleaseAddress (remote IPAM), for an endpoint
    /// dropped at start. Failures are logged, as Docker logs them.
    async fn tell_dropped(&self, ep: &Endpoint) {
        let Some(n) = self.lock().networks.get(&ep.network_id).cloned() else {
            return;
        };
        if n.plugin().is_some() {
            tracing::info!(
                "endpoint {} of network {} was dropped at start: DeleteEndpoint",
                ep.id,
                n.name
            );
            let deleted = match RemoteDriver::resolve(&self.plugins, &n.driver).await {
                Ok(d) => d.delete_endpoint(&ep.network_id, &ep.id).await,
                Err(e) => Err(e),
            };
            if let Err(e) = deleted {
                tracing::warn!("DeleteEndpoint of dropped endpoint {}: {e}", ep.id);
            }
        }
        if let Some(name) = n.remote_ipam() {
            self.release_granted(name, pools_of(&n), &ep.addrs()).await;
        }
    }

    /// Activates the network's IPAM plugin (Docker resolves it at boot) and, if it asks for
    /// it, replays the network's pools and addresses. A pool id the plugin now answers
    /// differently is kept for the calls to come.
    async fn replay_ipam(&self, n: &Network, ips: &[IpAddr]) {
        let Some(name) = n.remote_ipam() else { return };
        let ipam = match self.remote_ipam(name).await {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!("IPAM driver {name} of network {}: {e}", n.name);
                return;
            }
        };
        if !ipam.info().is_ok_and(|i| i.requires_request_replay) {
            return;
        }
        let mut subnets = n.subnets.clone();
        let mut changed = false;
        for s in &mut subnets {
            let Some(p) = s.remote.as_mut() else { continue };
            let req = RequestPoolRequest {
                address_space: p.address_space.clone(),
                pool: s.pool.subnet.to_string(),
                sub_pool: s.pool.range.map(|r| r.to_string()).unwrap_or_default(),
                options: n.ipam_options.clone(),
                v6: s.pool.subnet.addr().is_ipv6(),
            };
            match ipam.request_pool(&req).await {
                Ok(pool) if pool.id != p.id => {
                    p.id = pool.id;
                    changed = true;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(
                        "replaying pool {} of network {}: {e}",
                        s.pool.subnet,
                        n.name
                    );
                    continue;
                }
            }
            if !p.gateway_from_data {
                let r = ipam
                    .request_address(&p.id, Some(s.gateway), Some(gateway_request()))
                    .await;
                if let Err(e) = r {
                    tracing::warn!("replaying gateway {} of network {}: {e}", s.gateway, n.name);
                }
            }
            let mine = s
                .aux
                .values()
                .chain(ips.iter().filter(|ip| s.pool.contains(**ip)));
            for ip in mine {
                if let Err(e) = ipam.request_address(&p.id, Some(*ip), None).await {
                    tracing::warn!("replaying address {ip} of network {}: {e}", n.name);
                }
            }
        }
        if changed {
            let mut st = self.lock();
            if let Some(live) = st.networks.get_mut(&n.id) {
                for (l, s) in live.subnets.iter_mut().zip(&subnets) {
                    l.remote = s.remote.clone();
                }
                let live = live.clone();
                drop(st);
                if let Err(e) = self.store.put(NETWORKS, &live.id, &live) {
                    tracing::error!("recording the replayed pools of {}: {e}", live.name);
                }
            }
        }
    }
}
