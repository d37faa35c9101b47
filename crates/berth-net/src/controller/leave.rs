//! Endpoints leaving: once their records are gone from the store, each one's teardown runs
//! in the background (the kernel's veth deletion waits for an RCU grace period, a plugin's
//! Leave and DeleteEndpoint may take long). Its addresses and veth name stay taken until the
//! teardown ends, and a network rm that tells plugins waits for it (remove.rs).

use super::endpoint::claim_routes;
use super::Controller;
use crate::endpoint::*;
use std::os::fd::AsRawFd;
use std::sync::Arc;

impl Controller {
    /// After their records are gone from the store: drops the endpoints from memory, moves
    /// default routes on (`handover`), and deletes the veths in the background, freeing the
    /// addresses and names only once the kernel let go of them.
    pub(super) async fn forget(self: &Arc<Self>, eps: Vec<Endpoint>, handover: bool) {
        let mut work = Vec::new();
        {
            let mut st = self.lock();
            for ep in &eps {
                // gone from the DNS before its addresses are freed (below, in the background)
                self.dns.remove(&ep.id);
                st.eps.remove(&ep.id);
                // a network rm waits for this teardown (remove.rs)
                st.eps.leave_started(&ep.network_id);
            }
            if handover {
                for ep in &eps {
                    work.extend(claim_routes(&mut st, &ep.container_id));
                }
            }
        }
        // A plugin's link goes back to the daemon's namespace at Leave, but a stopping
        // container's sandbox is unmounted right after this returns: an open descriptor keeps
        // the namespace alive for the teardown, which enters it through /proc/self/fd.
        let eps: Vec<(Endpoint, Option<std::os::fd::OwnedFd>)> = eps
            .into_iter()
            .map(|ep| {
                let held = ep
                    .plugin_src
                    .as_ref()
                    .and_then(|_| crate::osl::netns::open(&ep.sandbox).ok());
                (ep, held)
            })
            .collect();
        self.apply_routes(work).await;
        let this = Arc::clone(self);
        let teardown = async move {
            let eps: Vec<Endpoint> = eps
                .iter()
                .map(|(ep, held)| match held {
                    Some(fd) => Endpoint {
                        sandbox: format!("/proc/self/fd/{}", fd.as_raw_fd()).into(),
                        ..ep.clone()
                    },
                    None => ep.clone(),
                })
                .collect();
            let global: Vec<Endpoint> = eps
                .iter()
                .filter(|e| e.host_netns.is_some())
                .cloned()
                .collect();
            // names leave every host before the addresses are freed
            this.unpublish_endpoints(&eps).await;
            for ep in &eps {
                this.tear_down(ep, handover).await;
                this.lock().eps.leave_done(&ep.network_id);
                this.left.notify_waiters();
            }
            let mut nets: Vec<&str> = global.iter().map(|e| e.network_id.as_str()).collect();
            nets.dedup();
            for nid in nets {
                this.drop_path_when_idle(nid);
            }
        };
        self.spawn_teardown(teardown);
    }

    /// One forgotten endpoint's teardown: Revoke, Leave (the link deleted or moved back),
    /// the next gateway programmed, DeleteEndpoint, ReleaseAddress, then its addresses and
    /// veth name freed.
    async fn tear_down(self: &Arc<Self>, ep: &Endpoint, handover: bool) {
        let (driver, remote) = self
            .lock()
            .networks
            .get(&ep.network_id)
            .map(|n| {
                let r = n
                    .remote_ipam()
                    .map(|name| (name.to_string(), super::remote_ipam::pools_of(n)));
                (Some(n.driver.clone()), r)
            })
            .unwrap_or_default();
        let driver = match driver {
            Some(d) => Some(self.driver(&d).await),
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
            tracing::error!("deleting veth {}: {e}", ep.host_if);
            return;
        }
        crate::fail::point("disconnect/veth");
        // ReleaseAddress after the driver's DeleteEndpoint (Docker's order)
        if let Some((name, pools)) = remote {
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
