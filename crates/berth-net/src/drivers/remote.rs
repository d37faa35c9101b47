//! A network driver plugin behind the driver seam: every step of a network's and an
//! endpoint's life goes to the plugin over libnetwork's remote protocol (`plugins/`), and the
//! interface its Join names is moved into the sandbox. Addresses come from berth's own IPAM or
//! the network's IPAM plugin (controller/remote_ipam.rs).

use super::{Capabilities, JoinGateway, Joined, NetworkDriver, OnJoined};
use crate::controller::NetRef;
use crate::endpoint::{format_mac, Endpoint};
use crate::error::{NetError, Result};
use crate::network::Network;
use crate::osl::{AdoptSpec, EndpointSpec, Osl};
use crate::plugins::api::net::{
    keys, CreateEndpointRequest, CreateNetworkRequest, EndpointInterface, IpamData, JoinRequest,
    Options, ProgramExternalConnectivityRequest,
};
use crate::plugins::RemoteDriver;
use futures::future::BoxFuture;
use serde_json::Value;
use std::sync::Arc;

pub struct RemoteNetDriver {
    pub remote: RemoteDriver,
    pub osl: Arc<dyn Osl>,
    /// The driver's name (the plugin's), leaked once per plugin for the `&'static` name.
    pub name: &'static str,
}

fn ipam_data(n: &Network, v6: bool) -> Vec<IpamData> {
    n.subnets
        .iter()
        .filter(|s| Network::is_v6(s) == v6)
        .map(|s| IpamData {
            // Docker's default IPAM's local or global space, or the IPAM plugin's
            address_space: s.remote.as_ref().map_or_else(
                || match n.is_global() {
                    true => "GlobalDefault".into(),
                    false => "LocalDefault".into(),
                },
                |p| p.address_space.clone(),
            ),
            pool: s.pool.subnet.to_string(),
            gateway: Some(format!("{}/{}", s.gateway, s.pool.subnet.prefix_len())),
            aux_addresses: s
                .aux
                .iter()
                .map(|(k, ip)| (k.clone(), format!("{ip}/{}", s.pool.subnet.prefix_len())))
                .collect(),
        })
        .collect()
}

impl NetworkDriver for RemoteNetDriver {
    fn name(&self) -> &'static str {
        self.name
    }

    fn capabilities(&self) -> Capabilities {
        self.remote
            .capabilities()
            .map_or(Capabilities::LOCAL, |c| Capabilities {
                scope: c.scope,
                connectivity_scope: c.connectivity_scope,
            })
    }

    fn create_network<'a>(&'a self, n: &'a Network) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut options = crate::plugins::api::net::Options::new();
            options.insert(keys::ENABLE_IPV6.into(), Value::Bool(n.enable_ipv6));
            options.insert(
                keys::GENERIC.into(),
                serde_json::to_value(&n.options).unwrap_or_default(),
            );
            if n.internal {
                options.insert(keys::INTERNAL.into(), Value::Bool(true));
            }
            let req = CreateNetworkRequest {
                network_id: n.id.clone(),
                options,
                ipv4_data: ipam_data(n, false),
                ipv6_data: ipam_data(n, true),
            };
            Ok(self.remote.create_network(&req).await?)
        })
    }

    fn delete_network<'a>(&'a self, n: &'a Network) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { Ok(self.remote.delete_network(&n.id).await?) })
    }

    fn join<'a>(
        &'a self,
        n: &'a NetRef,
        ep: &'a Endpoint,
        spec: &'a EndpointSpec,
    ) -> BoxFuture<'a, Result<Joined>> {
        Box::pin(async move { self.join_then(n, ep, spec, &|_| Box::pin(async {})).await })
    }

    /// CreateEndpoint, Join, then the plugin's interface moved in as the endpoint's `ethN`
    /// while `on_joined` runs (the move waits on the kernel's RCU barrier for most of a
    /// connect: the controller's store write goes alongside); a failure undoes the earlier
    /// calls (Leave, DeleteEndpoint).
    fn join_then<'a>(
        &'a self,
        n: &'a NetRef,
        ep: &'a Endpoint,
        spec: &'a EndpointSpec,
        on_joined: OnJoined<'a>,
    ) -> BoxFuture<'a, Result<Joined>> {
        Box::pin(async move {
            let t0 = std::time::Instant::now();
            let cidr = |x: Option<ipnet::IpNet>| x.map(|n| n.to_string()).unwrap_or_default();
            let req = CreateEndpointRequest {
                network_id: n.id.clone(),
                endpoint_id: ep.id.clone(),
                interface: EndpointInterface {
                    address: cidr(ep.ipv4),
                    address_ipv6: cidr(ep.ipv6),
                    mac_address: format_mac(&ep.mac),
                },
                options: Default::default(),
            };
            let iface = self.remote.create_endpoint(&req).await.map_err(|e| {
                NetError::internal(format!(
                    "failed to create endpoint {} on network {}: {e}",
                    ep.container_name, n.name
                ))
            })?;
            let undo = |leave: bool| async move {
                if leave {
                    if let Err(e) = self.remote.leave(&n.id, &ep.id).await {
                        tracing::warn!("Leave of endpoint {}: {e}", ep.id);
                    }
                }
                if let Err(e) = self.remote.delete_endpoint(&n.id, &ep.id).await {
                    tracing::warn!("DeleteEndpoint of endpoint {}: {e}", ep.id);
                }
            };
            let t_create = t0.elapsed();
            let join = JoinRequest {
                network_id: n.id.clone(),
                endpoint_id: ep.id.clone(),
                sandbox_key: spec.netns.display().to_string(),
                options: Default::default(),
            };
            let info = match self.remote.join(&join).await {
                Ok(i) => i,
                Err(e) => {
                    undo(false).await;
                    return Err(e.into());
                }
            };
            let t_join = t0.elapsed() - t_create;
            let adopt = AdoptSpec {
                src: info.src_name.clone(),
                netns: spec.netns.clone(),
                ifname: spec.ifname.clone(),
                mac: iface.mac.or(Some(ep.mac)),
                addrs: spec.addrs.clone(),
                gateways: spec.gateways.clone(),
                routes: info
                    .routes
                    .iter()
                    .map(|r| (r.destination, r.next_hop))
                    .collect(),
                alias: spec.alias.clone(),
            };
            let joined = Joined {
                gateway: Some(JoinGateway {
                    v4: info.gateway,
                    v6: info.gateway_ipv6,
                    default_route: info.routes.iter().any(|r| r.destination.prefix_len() == 0),
                    disable_gateway_service: info.disable_gateway_service,
                    src_name: Some(info.src_name.clone()),
                }),
            };
            let (adopted, ()) = futures::join!(self.osl.adopt_link(&adopt), on_joined(&joined));
            if let Err(e) = adopted {
                undo(true).await;
                return Err(e.into());
            }
            tracing::debug!(
                "endpoint {}: CreateEndpoint {t_create:?}, Join {t_join:?}, interface moved in {:?}",
                ep.id,
                t0.elapsed() - t_create - t_join
            );
            Ok(joined)
        })
    }

    fn program_external<'a>(
        &'a self,
        ep: &'a Endpoint,
        options: &'a Options,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let req = ProgramExternalConnectivityRequest {
                network_id: ep.network_id.clone(),
                endpoint_id: ep.id.clone(),
                options: options.clone(),
            };
            self.remote
                .program_external_connectivity(&req)
                .await
                .map_err(|e| {
                    NetError::internal(format!(
                        "driver failed programming external connectivity on endpoint {} ({}): {e}",
                        ep.container_name, ep.id
                    ))
                })
        })
    }

    fn revoke_external<'a>(&'a self, ep: &'a Endpoint) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            Ok(self
                .remote
                .revoke_external_connectivity(&ep.network_id, &ep.id)
                .await?)
        })
    }

    fn leave<'a>(&'a self, ep: &'a Endpoint) -> BoxFuture<'a, Result<()>> {
        self.leave_then(ep, Box::pin(async {}))
    }

    /// Leave, the interface given back to the daemon's namespace under the plugin's name,
    /// `between`, DeleteEndpoint; the plugin's errors are logged only, as Docker does.
    fn leave_then<'a>(
        &'a self,
        ep: &'a Endpoint,
        between: BoxFuture<'a, ()>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if let Err(e) = self.remote.leave(&ep.network_id, &ep.id).await {
                tracing::warn!("Leave of endpoint {}: {e}", ep.id);
            }
            let out = match &ep.plugin_src {
                Some(src) => match self.osl.release_link(&ep.sandbox, &ep.ifname, src).await {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        tracing::warn!("giving {} back as {src}: {e}", ep.ifname);
                        self.osl.delete_link_in(&ep.sandbox, &ep.ifname).await
                    }
                },
                // recorded before berth kept the plugin's name
                None => self.osl.delete_link_in(&ep.sandbox, &ep.ifname).await,
            };
            // the plugin gets DeleteEndpoint whatever became of its link; a link still in the
            // sandbox is returned as an error, so its addresses stay taken
            between.await;
            if let Err(e) = self.remote.delete_endpoint(&ep.network_id, &ep.id).await {
                tracing::warn!("DeleteEndpoint of endpoint {}: {e}", ep.id);
            }
            Ok(out?)
        })
    }
}
