//! A plugin's Join decides the endpoint's gateway and whether the gwbridge is needed. That is
//! recorded, with the end of the endpoint's pending state, while the plugin's interface moves
//! into the sandbox (the move waits on the kernel's RCU barrier for most of a connect, so the
//! store's fsync goes alongside instead of after it). A berthd killed after that write but
//! before the move completed finds the interface untagged at the next start and drops the
//! endpoint (controller/sandbox.rs), telling the plugin (controller/plugin_restart.rs).

use super::endpoint::Change;
use super::Controller;
use crate::drivers::{JoinGateway, Joined};
use crate::endpoint::Endpoint;
use crate::error::NetError;
use futures::future::BoxFuture;
use std::sync::Arc;

/// What a plugin's Join decided, on its endpoint: the gateway and whether the gwbridge is
/// needed; the Join completed.
pub(super) fn apply_join_gateway(ep: &mut Endpoint, g: &JoinGateway, internal: bool) {
    ep.gateway4 = g.v4.filter(|_| ep.ipv4.is_some());
    ep.gateway6 = g.v6.filter(|_| ep.ipv6.is_some());
    ep.gw_service = g.wants_gateway_service() && !internal;
    ep.pending = false;
    ep.plugin_src = g.src_name.clone();
}

impl Controller {
    /// The `on_joined` of a connect (`NetworkDriver::join_then`): records what the Join
    /// decided, on a blocking thread. Built-in drivers decide nothing: no write.
    pub(super) fn gateway_recorder(
        self: &Arc<Self>,
        ep: &Endpoint,
        internal: bool,
    ) -> impl Fn(&Joined) -> BoxFuture<'static, ()> + Send + Sync {
        let this = Arc::clone(self);
        let ep = ep.clone();
        move |j: &Joined| {
            let mut e = ep.clone();
            let this = Arc::clone(&this);
            let decided = j
                .gateway
                .as_ref()
                .map(|g| apply_join_gateway(&mut e, g, internal));
            Box::pin(async move {
                if decided.is_none() {
                    return;
                }
                let id = e.id.clone();
                let stored = tokio::task::spawn_blocking(move || {
                    this.commit_change(&Change {
                        put: vec![&e],
                        ..Default::default()
                    })
                })
                .await
                .unwrap_or_else(|e| Err(NetError::internal(e.to_string())));
                if let Err(e) = stored {
                    tracing::error!("recording the gateway of endpoint {id}: {e}");
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_without_gateway_needs_the_gateway_service_unless_internal() {
        let mut ep: Endpoint = serde_json::from_value(serde_json::json!({
            "id": "e", "network_id": "n", "container_id": "c", "container_name": "x",
            "sandbox": "/s", "host_if": "veth0", "ifname": "eth0", "mac": [2, 0, 0, 0, 0, 1],
            "ipv4": "10.0.0.2/24", "ipv6": null, "gateway4": null, "gateway6": null,
            "pending": true, "ipam_config": null, "aliases": [], "links": [], "seq": 1
        }))
        .unwrap();
        let none = JoinGateway::default();
        apply_join_gateway(&mut ep, &none, false);
        assert!(ep.gw_service && !ep.pending && ep.gateway4.is_none());
        apply_join_gateway(&mut ep, &none, true);
        assert!(!ep.gw_service);
        let gw = JoinGateway {
            v4: Some("10.0.0.1".parse().unwrap()),
            v6: Some("fd00::1".parse().unwrap()),
            ..Default::default()
        };
        apply_join_gateway(&mut ep, &gw, false);
        // no IPv6 address: no IPv6 gateway
        assert_eq!(ep.gateway4, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(ep.gateway6, None);
        assert!(!ep.gw_service);
    }
}
