//! Global-scope driver plugins with the cluster store, as libnetwork runs them in classic
//! (external key-value store) mode:
//!
//! - **Networks** live in the cluster store like overlays (controller/overlay.rs makes and
//!   removes them). CreateNetwork goes to the plugin on the creating host only, before the
//!   network is stored (libnetwork `NewNetwork`: `addNetwork`, then `updateToStore`; with no
//!   store, `datastore for scope "global" is not initialized` and the network is rolled back
//!   with DeleteNetwork). Other hosts never get CreateNetwork: libnetwork only reads the
//!   network from the store there, and its own global drivers (overlay, macvlan) load a
//!   network they were never told of from the store in `d.network(nid)`. DeleteNetwork goes
//!   to the plugin on the host that runs `network rm`, after the IPAM's pools are released.
//! - **Endpoints**: CreateEndpoint/Join/Leave/DeleteEndpoint go to the plugin on the host
//!   where the container runs (the ordinary connect path); the endpoint is published on this
//!   host's lease, so `network rm` anywhere is refused while it exists and its names resolve
//!   on every host. Addresses of the default IPAM are claimed in the cluster store.
//! - **Discovery** (libnetwork `hostdiscovery` and `pushNodeDiscovery`): every host in the
//!   cluster (berth's host records) is sent as DiscoverNew `{"DiscoveryType":1,
//!   "DiscoveryData":{"Address":<IP>,"BindAddress":"","Self":<IP is this host's>}}` to every
//!   activated plugin whose ConnectivityScope is global; a host that leaves (its record
//!   deleted or expired with its lease) as DiscoverDelete; a plugin activated later gets
//!   DiscoverNew for every host known then (libnetwork `RegisterDriver`). Errors are only
//!   logged, as Docker logs them.

use super::endpoint::Target;
use super::Controller;
use crate::cluster::ClusterStore;
use crate::drivers::{self, NetworkDriver};
use crate::endpoint::Endpoint;
use crate::error::{NetError, Result};
use crate::ipam::Ipam;
use crate::network::Network;
use crate::plugins::api::net::DiscoveryNotification;
use crate::plugins::RemoteDriver;
use serde_json::json;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// libnetwork's `ErrDataStoreNotInitialized` for the global scope.
pub(super) const NO_GLOBAL_STORE: &str = "datastore for scope \"global\" is not initialized";

/// libnetwork's `discoverapi.NodeDiscovery`.
const NODE_DISCOVERY: i64 = 1;

/// What the discovery worker is told, in order.
pub(super) enum Disc {
    /// The cluster's hosts now (their advertised IPs).
    Hosts(BTreeSet<IpAddr>),
    /// A plugin just activated.
    Driver(RemoteDriver),
}

/// The notification for one host.
pub(super) fn notification(host: IpAddr, me: IpAddr) -> DiscoveryNotification {
    DiscoveryNotification {
        discovery_type: NODE_DISCOVERY,
        discovery_data: json!({"Address": host.to_string(), "BindAddress": "", "Self": host == me}),
    }
}

/// Hosts that joined and left between two sets (libnetwork `hostdiscovery.diff`).
pub(super) fn diff(old: &BTreeSet<IpAddr>, new: &BTreeSet<IpAddr>) -> (Vec<IpAddr>, Vec<IpAddr>) {
    (
        new.difference(old).copied().collect(),
        old.difference(new).copied().collect(),
    )
}

fn global_connectivity(d: &RemoteDriver) -> bool {
    d.capabilities()
        .is_ok_and(|c| c.connectivity_scope == drivers::Scope::Global)
}

impl Controller {
    /// CreateNetwork on this host's plugin; without a cluster store it is undone and the
    /// create fails as Docker's does.
    pub(super) async fn create_on_plugin(
        &self,
        net: &Network,
        have_store: bool,
    ) -> Result<Arc<dyn NetworkDriver>> {
        let d = self.driver(&net.driver).await?;
        d.create_network(net).await?;
        if !have_store {
            self.undo_plugin_network(&*d, net).await;
            return Err(NetError::internal(NO_GLOBAL_STORE));
        }
        Ok(d)
    }

    pub(super) async fn undo_plugin_network(&self, d: &dyn NetworkDriver, net: &Network) {
        if let Err(e) = d.delete_network(net).await {
            tracing::warn!("couldn't roll back driver network {}: {e}", net.name);
        }
    }

    /// DeleteNetwork on this host's plugin; errors are logged (the network is gone).
    pub(super) async fn delete_on_plugin(&self, net: &Network) {
        match self.driver(&net.driver).await {
            Ok(d) => self.undo_plugin_network(&*d, net).await,
            Err(e) => tracing::warn!("failed deleting network {}: {e}", net.name),
        }
    }

    /// After a plugin's Join on a global network: the endpoint published on this host's
    /// lease. If that fails the connect is undone (Leave, DeleteEndpoint, addresses).
    pub(super) async fn publish_plugin_endpoint(
        &self,
        net: &Target,
        ep: &Endpoint,
        ipam: &dyn Ipam,
    ) -> Result<()> {
        if !net.global {
            return Ok(());
        }
        let published = async {
            let cluster = self.cluster()?;
            let lease = cluster.lease()?;
            let rec = self.record_of(&cluster, ep);
            cluster.store.put_endpoint(&rec, lease).await?;
            Ok::<_, NetError>(())
        }
        .await;
        let Err(e) = published else { return Ok(()) };
        match self.driver(&net.driver).await {
            Ok(d) => {
                if let Err(e) = d.leave(ep).await {
                    tracing::warn!("undoing endpoint {}: {e}", ep.id);
                }
            }
            Err(e) => tracing::warn!("undoing endpoint {}: {e}", ep.id),
        }
        self.roll_back(ep).await;
        self.unclaim(ipam, ep).await;
        Err(e)
    }

    /// Starts the worker that sends DiscoverNew/DiscoverDelete, one at a time in order.
    pub(super) fn start_discovery(self: &Arc<Self>) {
        let (tx, rx) = unbounded_channel();
        if self.discovery.set(tx).is_ok() {
            tokio::spawn(Arc::clone(self).discovery_worker(rx));
        }
    }

    fn discover(&self, d: Disc) {
        if let Some(tx) = self.discovery.get() {
            let _ = tx.send(d);
        }
    }

    /// A plugin just activated: it hears of every host known (global connectivity only).
    pub(super) fn announce_hosts(&self, d: &RemoteDriver) {
        if global_connectivity(d) {
            self.discover(Disc::Driver(d.clone()));
        }
    }

    /// The cluster's host set after a batch of store changes.
    pub(super) fn hosts_changed(&self, hosts: BTreeSet<IpAddr>) {
        self.discover(Disc::Hosts(hosts));
    }

    async fn discovery_worker(self: Arc<Self>, mut rx: UnboundedReceiver<Disc>) {
        let mut known = BTreeSet::new();
        // the plugins with global connectivity activated so far, in activation order
        let mut plugins: Vec<RemoteDriver> = Vec::new();
        while let Some(d) = rx.recv().await {
            let Some(me) = self.cluster.get().map(|c| c.vtep) else {
                continue;
            };
            match d {
                Disc::Hosts(now) => {
                    let (added, removed) = diff(&known, &now);
                    known = now;
                    if added.is_empty() && removed.is_empty() {
                        continue;
                    }
                    for p in &plugins {
                        send(p, &added, me, true).await;
                        send(p, &removed, me, false).await;
                    }
                }
                Disc::Driver(p) => {
                    let all: Vec<IpAddr> = known.iter().copied().collect();
                    send(&p, &all, me, true).await;
                    plugins.retain(|q| q.name() != p.name());
                    plugins.push(p);
                }
            }
        }
    }
}

async fn send(p: &RemoteDriver, hosts: &[IpAddr], me: IpAddr, add: bool) {
    for h in hosts {
        let n = notification(*h, me);
        let r = match add {
            true => p.discover_new(&n).await,
            false => p.discover_delete(&n).await,
        };
        if let Err(e) = r {
            tracing::debug!("discovery notification error: {e}");
        }
    }
}

/// Unused senders are fine: a daemon without a cluster store never starts the worker.
pub(super) type DiscoverySender = UnboundedSender<Disc>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_is_libnetworks() {
        let me: IpAddr = "10.0.9.1".parse().unwrap();
        let n = notification("10.0.9.2".parse().unwrap(), me);
        assert_eq!(
            serde_json::to_value(&n).unwrap(),
            json!({"DiscoveryType": 1, "DiscoveryData": {"Address": "10.0.9.2", "BindAddress": "", "Self": false}})
        );
        let n = notification(me, me);
        assert_eq!(n.discovery_data["Self"], json!(true));
    }

    #[test]
    fn hosts_diff() {
        let set =
            |v: &[&str]| -> BTreeSet<IpAddr> { v.iter().map(|s| s.parse().unwrap()).collect() };
        let (a, r) = diff(
            &set(&["10.0.0.1", "10.0.0.2"]),
            &set(&["10.0.0.2", "10.0.0.3"]),
        );
        assert_eq!(a, vec!["10.0.0.3".parse::<IpAddr>().unwrap()]);
        assert_eq!(r, vec!["10.0.0.1".parse::<IpAddr>().unwrap()]);
        let (a, r) = diff(&set(&["10.0.0.1"]), &set(&["10.0.0.1"]));
        assert!(a.is_empty() && r.is_empty());
    }
}
