//! `docker_gwbridge`: the way out for containers whose only networks are overlays, or plugin
//! networks whose Join gave no gateway (and did not set `DisableGatewayService`).
//!
//! Docker's rule (libnetwork's `needDefaultGW`): a container has an interface on it while it is
//! on a non-internal overlay and none of its other endpoints (internal ones and the gwbridge
//! one aside) has a gateway. A container that already has a default route from a bridge
//! network gets no second one, and one that joins such a network later leaves the gwbridge.

use super::overlay::Boxed;
use super::{Controller, State};
use crate::drivers::bridge;
use crate::endpoint::{EndpointRequest, Phase};
use crate::error::Result;
use berth_api::{EndpointSettings, NetworkCreateRequest};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The local bridge network that gives overlay containers their way out, as Docker names it.
pub const GWBRIDGE: &str = "docker_gwbridge";
/// Its kernel bridge: not Docker's name, so a Docker on the same host keeps its own.
pub const GWBRIDGE_IF: &str = "berth_gwbridge";

/// Whether the container's endpoints (those not leaving) call for a gwbridge interface.
fn needs_gwbridge(st: &State, cid: &str) -> bool {
    let mut need = false;
    for e in st.eps.of_container(cid) {
        if e.phase == Phase::Leaving {
            continue;
        }
        let Some(n) = st.networks.get(&e.ep.network_id) else {
            continue;
        };
        if n.name == GWBRIDGE || n.internal {
            continue;
        }
        if n.overlay.is_some() || e.ep.gw_service {
            need = true;
        } else if !e.ep.gateways().is_empty() {
            return false;
        }
    }
    need
}

/// The id of `docker_gwbridge` if the container has (or is getting) an interface on it.
fn joined(st: &State, cid: &str) -> Option<String> {
    // the container's few endpoints, not every network of the host
    st.eps
        .of_container(cid)
        .iter()
        .filter(|e| e.phase != Phase::Leaving)
        .find(|e| {
            st.networks
                .get(&e.ep.network_id)
                .is_some_and(|n| n.name == GWBRIDGE)
        })
        .map(|e| e.ep.network_id.clone())
}

impl Controller {
    /// Joins or leaves `docker_gwbridge` as the container's endpoints now call for. A join
    /// that fails is an error (the caller's connect is undone); a leave that fails is logged.
    /// Boxed: connect and disconnect settle, and settling connects or disconnects.
    pub(super) fn settle_gwbridge<'a>(
        self: &'a Arc<Self>,
        cid: &'a str,
        sandbox: &'a Path,
    ) -> Boxed<'a, Result<()>> {
        Box::pin(async move {
            let (need, gw) = {
                let st = self.lock();
                (needs_gwbridge(&st, cid), joined(&st, cid))
            };
            match (need, gw) {
                (true, None) => self.join_gwbridge(cid, sandbox).await,
                (false, Some(gw)) => {
                    if let Err(e) = self.disconnect(cid, &gw).await {
                        tracing::warn!("leaving {GWBRIDGE}: {e}");
                    }
                    Ok(())
                }
                _ => Ok(()),
            }
        })
    }

    async fn join_gwbridge(self: &Arc<Self>, cid: &str, sandbox: &Path) -> Result<()> {
        let gw = self.gwbridge().await?;
        let r = EndpointRequest {
            container_id: cid.to_string(),
            container_name: format!("gateway_{}", &cid[..cid.len().min(12)]),
            network: gw,
            sandbox: Some(sandbox.to_path_buf()),
            ..Default::default()
        };
        let connect: Boxed<'_, Result<EndpointSettings>> = Box::pin(self.connect(r));
        connect.await.map(|_| ())
    }

    /// `docker_gwbridge`'s id; the network is made on first use.
    async fn gwbridge(&self) -> Result<String> {
        if let Ok(r) = self.network_ref(GWBRIDGE) {
            return Ok(r.id);
        }
        // one create at a time: concurrent connects wait for the first one's bridge
        let lock = self.path_lock(GWBRIDGE);
        let _g = lock.lock().await;
        if let Ok(r) = self.network_ref(GWBRIDGE) {
            return Ok(r.id);
        }
        let opts: BTreeMap<String, String> = [
            (bridge::OPT_NAME, GWBRIDGE_IF),
            (bridge::OPT_ICC, "false"),
            (bridge::OPT_MASQ, "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let req = NetworkCreateRequest {
            name: GWBRIDGE.into(),
            options: Some(opts),
            ..Default::default()
        };
        let create: Boxed<'_, Result<String>> = Box::pin(self.create(&req));
        create.await
    }
}
