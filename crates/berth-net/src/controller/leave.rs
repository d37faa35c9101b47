//! Endpoints leaving: once their records are gone from the store, their teardowns run in the
//! background (the kernel's veth deletion waits for an RCU grace period, a plugin's Leave
//! and DeleteEndpoint may take long). Addresses and veth names stay taken until a teardown
//! ends, and a network rm that tells plugins waits for the teardowns of its endpoints
//! (remove.rs), counted per network by a [`Leaving`] that each teardown holds.

use super::endpoint::claim_routes;
use super::remote_ipam::{pools_of, Pools};
use super::{Controller, State};
use crate::endpoint::*;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

/// One endpoint of a network counted as leaving (`Registry::leaving`) for as long as this
/// lives: dropped when its teardown ends, also when the teardown is cut short (a panic, the
/// request's future dropped before the teardown was spawned).
pub(super) struct Leaving {
    c: Arc<Controller>,
    net: String,
}

impl Leaving {
    pub(super) fn start(c: &Arc<Controller>, st: &mut State, net: &str) -> Leaving {
        st.eps.leave_started(net);
        Leaving {
            c: Arc::clone(c),
            net: net.to_string(),
        }
    }
}

impl Drop for Leaving {
    fn drop(&mut self) {
        self.c.lock().eps.leave_done(&self.net);
        self.c.left.notify_waiters();
    }
}

/// What a teardown needs of its endpoint's network, taken when the endpoint is forgotten:
/// the network may be gone by the time the teardown runs (removed by another host).
struct Departure {
    ep: Endpoint,
    /// The network's driver (`None`: the network was already gone).
    driver: Option<String>,
    /// A remote IPAM's name and the network's pools, for ReleaseAddress.
    remote: Option<(String, Pools)>,
    /// The sandbox held open while a plugin's link has to come out of it (below).
    held: Option<OwnedFd>,
    _leaving: Leaving,
}

impl Controller {
    /// After their records are gone from the store: drops the endpoints from memory, moves
    /// default routes on (`handover`), and tears them down in the background (Leave, links
    /// deleted or given back, DeleteEndpoint, ReleaseAddress), freeing the addresses and names
    /// only once the kernel let go of them.
    pub(super) async fn forget(self: &Arc<Self>, eps: Vec<Endpoint>, handover: bool) {
        let mut work = Vec::new();
        let departures: Vec<Departure> = {
            let mut guard = self.lock();
            let st = &mut *guard;
            let departures: Vec<Departure> = eps
                .into_iter()
                .map(|ep| {
                    // gone from the DNS before its addresses are freed (in the background)
                    self.dns.remove(&ep.id);
                    st.eps.remove(&ep.id);
                    let n = st.networks.get(&ep.network_id);
                    let driver = n.map(|n| n.driver.clone());
                    let remote = n.and_then(|n| Some((n.remote_ipam()?.to_string(), pools_of(n))));
                    // A plugin's link goes back to the daemon's namespace at Leave, but a
                    // stopping container's sandbox is unmounted right after this returns: an
                    // open descriptor keeps the namespace alive for the teardown.
                    let held = ep
                        .plugin_src
                        .as_ref()
                        .and_then(|_| crate::osl::netns::open(&ep.sandbox).ok());
                    let leaving = Leaving::start(self, st, &ep.network_id);
                    Departure {
                        ep,
                        driver,
                        remote,
                        held,
                        _leaving: leaving,
                    }
                })
                .collect();
            if handover {
                for d in &departures {
                    work.extend(claim_routes(st, &d.ep.container_id));
                }
            }
            departures
        };
        self.apply_routes(work).await;
        let this = Arc::clone(self);
        let teardown = async move {
            let eps: Vec<Endpoint> = departures.iter().map(|d| d.ep.clone()).collect();
            // names leave every host before the addresses are freed
            this.unpublish_endpoints(&eps).await;
            // each on its own: one plugin that hangs holds up only its own endpoints
            futures::future::join_all(departures.into_iter().map(|d| {
                let this = Arc::clone(&this);
                async move { this.tear_down(d, handover).await }
            }))
            .await;
            let mut nets: Vec<&str> = eps
                .iter()
                .filter(|e| e.host_netns.is_some())
                .map(|e| e.network_id.as_str())
                .collect();
            nets.dedup();
            for nid in nets {
                this.drop_path_when_idle(nid);
            }
        };
        self.spawn_teardown(teardown);
    }

    /// One forgotten endpoint's teardown: Revoke, Leave (the link deleted, or a plugin's given
    /// back), the next gateway programmed, DeleteEndpoint, ReleaseAddress, then its addresses
    /// and veth name freed.
    async fn tear_down(self: &Arc<Self>, d: Departure, handover: bool) {
        let ep = match &d.held {
            // the sandbox entered through the descriptor that keeps it alive
            Some(fd) => &Endpoint {
                sandbox: format!("/proc/self/fd/{}", fd.as_raw_fd()).into(),
                ..d.ep.clone()
            },
            None => &d.ep,
        };
        let driver = match &d.driver {
            Some(name) => Some(self.driver(name).await),
            None => None,
        };
        // Revoke before Leave, if it was the programmed gateway endpoint
        let next = match &driver {
            Some(Ok(d)) => self.revoke_if_programmed(ep, &**d).await,
            _ => None,
        };
        // ProgramExternalConnectivity to the endpoint taking over, after Leave and
        // before DeleteEndpoint (libnetwork's sbLeave, then endpoint Delete)
        let program = next.filter(|_| handover).map(|options| {
            let this = Arc::clone(self);
            let cid = ep.container_id.clone();
            Box::pin(async move { this.program_next(&cid, options).await })
                as futures::future::BoxFuture<'_, ()>
        });
        let deleted = match driver {
            Some(Ok(d)) => {
                d.leave_then(ep, program.unwrap_or_else(|| Box::pin(async {})))
                    .await
            }
            // the network is gone: its kind is told by where the host end lives
            _ => match &ep.host_netns {
                Some(ns) => self
                    .osl
                    .delete_link_in(ns, &ep.host_if)
                    .await
                    .map_err(Into::into),
                None => self.osl.delete_link(&ep.host_if).await.map_err(Into::into),
            },
        };
        if let Err(e) = deleted {
            // addresses stay taken: the container side may still hold them
            tracing::error!("removing the link of endpoint {}: {e}", ep.id);
            return;
        }
        crate::fail::point("disconnect/veth");
        // ReleaseAddress after the driver's DeleteEndpoint (Docker's order)
        if let Some((name, pools)) = d.remote {
            self.release_granted(&name, pools, &ep.addrs()).await;
        }
        let mut guard = self.lock();
        let st = &mut *guard;
        st.eps.veths.remove(&ep.host_if);
        st.eps.undrain(&ep.network_id, &ep.addrs());
        if let Some(n) = st.networks.get_mut(&ep.network_id) {
            for ip in ep.addrs() {
                release(n, ip);
            }
        }
    }
}
