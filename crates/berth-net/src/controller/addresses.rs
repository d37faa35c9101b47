//! An endpoint's addresses: picked from this host's view of the network's pool, then granted
//! by the network's IPAM (`ipam::Ipam`): at once for local networks, by the cluster store for
//! global ones. A candidate another host took first is marked taken and the next one tried.

use super::endpoint::Target;
use super::overlay::take_ip;
use super::Controller;
use crate::cluster::ipam::GlobalIpam;
use crate::endpoint::{Endpoint, EndpointRequest, Wanted};
use crate::error::{NetError, Result};
use crate::ipam::{Ipam, LocalIpam};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

/// Candidates tried when other hosts keep taking them first.
const CLAIM_TRIES: u32 = 64;

impl Controller {
    /// The IPAM that grants an endpoint's addresses, what to ask it for, and the journal keys
    /// of what a remote IPAM granted already (controller/ipam_grants.rs). A remote IPAM picks
    /// the addresses (RequestAddress, on this host) before berth takes them; overlays and
    /// global plugins' networks are granted by the cluster store; the rest at once.
    pub(super) async fn endpoint_ipam(
        &self,
        net: &Target,
        want: Wanted,
    ) -> Result<(Arc<dyn Ipam>, Wanted, Vec<String>)> {
        if let Some(name) = &net.remote_ipam {
            let (w, granted) = self
                .request_endpoint_addresses(name, &net.id, &want)
                .await?;
            let ips: Vec<IpAddr> = w.v4.into_iter().chain(w.v6).collect();
            let grants = granted.keys(&ips);
            return Ok((Arc::new(granted), w, grants));
        }
        let ipam: Arc<dyn Ipam> = if net.global {
            Arc::new(GlobalIpam(self.cluster()?))
        } else {
            Arc::new(LocalIpam)
        };
        Ok((ipam, want, vec![]))
    }

    /// Takes the endpoint's addresses in memory (recording it as joining) and has each one
    /// granted; all or nothing: on failure a remote IPAM's grant of `want` is given back too.
    pub(super) async fn claim(
        &self,
        ipam: &dyn Ipam,
        net: &Target,
        req: &EndpointRequest,
        want: &Wanted,
        sandbox: &Path,
        overlay_ns: Option<&Path>,
    ) -> Result<Endpoint> {
        let r = self
            .claim_candidates(ipam, net, req, want, sandbox, overlay_ns)
            .await;
        if r.is_err() && net.remote_ipam.is_some() {
            let ips: Vec<IpAddr> = want.v4.into_iter().chain(want.v6).collect();
            let _ = ipam.release_addresses(&net.id, &ips).await;
        }
        r
    }

    async fn claim_candidates(
        &self,
        ipam: &dyn Ipam,
        net: &Target,
        req: &EndpointRequest,
        want: &Wanted,
        sandbox: &Path,
        overlay_ns: Option<&Path>,
    ) -> Result<Endpoint> {
        for tries in 0..CLAIM_TRIES {
            let ep = self.reserve_in(net, req, want, sandbox, overlay_ns)?;
            let mut granted = Vec::new();
            let mut lost = None;
            for ip in ep.addrs() {
                match ipam.request_address(&ep.network_id, ip, &ep.id).await {
                    Ok(true) => granted.push(ip),
                    Ok(false) => {
                        lost = Some(ip);
                        break;
                    }
                    Err(e) => {
                        let _ = ipam.release_addresses(&ep.network_id, &granted).await;
                        self.unreserve(&ep, true);
                        return Err(e);
                    }
                }
            }
            let Some(taken) = lost else {
                return Ok(ep);
            };
            let _ = ipam.release_addresses(&ep.network_id, &granted).await;
            self.unreserve(&ep, true);
            if want.v4 == Some(taken) || want.v6 == Some(taken) {
                return Err(NetError::forbidden("Address already in use"));
            }
            if let Some(n) = self.lock().networks.get_mut(&ep.network_id) {
                take_ip(n, taken);
                // Hosts in a burst share one view and walk the same candidates: after a loss
                // jump a random distance, wider with each loss, so they spread out.
                let width = 1u128 << tries.min(12);
                let jump = 1 + rand::random::<u64>() as u128 % (width * 4);
                for s in n.subnets.iter_mut().filter(|s| s.pool.contains(taken)) {
                    s.pool.skip_ahead(jump);
                }
            }
        }
        Err(NetError::unavailable(
            "could not allocate an address: other hosts kept taking the candidates",
        ))
    }

    /// Gives the endpoint's addresses back to the IPAM (the caller has undone them in memory).
    pub(super) async fn unclaim(&self, ipam: &dyn Ipam, ep: &Endpoint) {
        if let Err(e) = ipam.release_addresses(&ep.network_id, &ep.addrs()).await {
            tracing::warn!("releasing the addresses of endpoint {}: {e}", ep.id);
        }
    }
}
