//! A remote network driver: one method per `NetworkDriver.*` call, replies checked the way
//! libnetwork's `drivers/remote/driver.go` checks them.

use super::api::net::*;
use super::error::PluginError;
use super::registry::{Capabilities, Plugin, Plugins, NETWORK_DRIVER};
use ipnet::IpNet;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// An endpoint's interface after CreateEndpoint: what berth asked for, with the fields the
/// plugin filled in where berth had none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    pub address: Option<IpNet>,
    pub address_ipv6: Option<IpNet>,
    pub mac: Option<[u8; 6]>,
}

/// A static route from Join: `next_hop` `None` is a connected route on the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: IpNet,
    pub next_hop: Option<IpAddr>,
}

/// What Join asks berth to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinInfo {
    /// The link (in the daemon's namespace) to move into the sandbox; empty: none.
    pub src_name: String,
    /// It is renamed `<dst_prefix><N>` inside.
    pub dst_prefix: String,
    pub gateway: Option<IpAddr>,
    pub gateway_ipv6: Option<IpAddr>,
    pub routes: Vec<Route>,
    pub disable_gateway_service: bool,
}

/// Go's `types.ParseCIDR` (the address keeps its host bits).
pub(crate) fn parse_cidr(s: &str) -> Result<IpNet, PluginError> {
    s.parse()
        .map_err(|_| PluginError::Invalid(format!("invalid CIDR address: {s}")))
}

pub(crate) fn parse_mac(s: &str) -> Result<[u8; 6], PluginError> {
    crate::endpoint::parse_mac(s)
        .ok_or_else(|| PluginError::Invalid(format!("address {s}: invalid MAC address")))
}

pub use crate::endpoint::format_mac;

fn parse_request(i: &EndpointInterface) -> Result<Interface, PluginError> {
    let opt = |s: &str| (!s.is_empty()).then(|| parse_cidr(s)).transpose();
    Ok(Interface {
        address: opt(&i.address)?,
        address_ipv6: opt(&i.address_ipv6)?,
        mac: (!i.mac_address.is_empty())
            .then(|| parse_mac(&i.mac_address))
            .transpose()?,
    })
}

/// libnetwork's merge of a CreateEndpoint reply: each field the plugin set must have been
/// unset; an address goes to the slot of its family. `Err` is the message before rollback.
pub fn merge_interface(asked: &Interface, reply: &EndpointInterface) -> Result<Interface, String> {
    let got = parse_request(reply).map_err(|e| e.to_string())?;
    let mut out = asked.clone();
    if let Some(mac) = got.mac {
        if let Some(had) = out.mac {
            return Err(format!(
                "driver modified interface MAC address: endpoint interface MAC address present ({}). Cannot be modified with {}.",
                format_mac(&had),
                format_mac(&mac)
            ));
        }
        out.mac = Some(mac);
    }
    for a in [got.address, got.address_ipv6].into_iter().flatten() {
        let slot = match a {
            IpNet::V4(_) => &mut out.address,
            IpNet::V6(_) => &mut out.address_ipv6,
        };
        if let Some(had) = slot {
            return Err(format!(
                "driver modified interface address: endpoint interface IP present ({had}). Cannot be modified with ({a})."
            ));
        }
        *slot = Some(a);
    }
    Ok(out)
}

fn parse_join(r: JoinResponse) -> Result<JoinInfo, PluginError> {
    let ip = |field: &str, s: &str| -> Result<Option<IpAddr>, PluginError> {
        if s.is_empty() {
            return Ok(None);
        }
        s.parse()
            .map(Some)
            .map_err(|_| PluginError::Invalid(format!("unable to parse {field} \"{s}\"")))
    };
    let mut routes = Vec::with_capacity(r.static_routes.len());
    for sr in &r.static_routes {
        let destination = parse_cidr(&sr.destination)?;
        let next_hop = match sr.next_hop.as_str() {
            "" => None,
            h => Some(
                h.parse()
                    .map_err(|_| PluginError::Invalid(format!("failed to parse nexthop IP {h}")))?,
            ),
        };
        // RouteType 1 is connected whatever NextHop says; 0 without a next hop is too
        let next_hop = if sr.route_type == ROUTE_CONNECTED {
            None
        } else {
            next_hop
        };
        routes.push(Route {
            destination,
            next_hop,
        });
    }
    let names = r.interface_name.unwrap_or_default();
    Ok(JoinInfo {
        src_name: names.src_name,
        dst_prefix: names.dst_prefix,
        gateway: ip("Gateway", &r.gateway)?,
        gateway_ipv6: ip("GatewayIPv6", &r.gateway_ipv6)?,
        routes,
        disable_gateway_service: r.disable_gateway_service,
    })
}

fn endpoint(network_id: &str, endpoint_id: &str) -> EndpointRequest {
    EndpointRequest {
        network_id: network_id.to_string(),
        endpoint_id: endpoint_id.to_string(),
    }
}

/// A plugin registered as a network driver.
#[derive(Clone, Debug)]
pub struct RemoteDriver {
    plugin: Arc<Plugin>,
}

impl RemoteDriver {
    /// Resolves the driver `name`: lookup, activation and registration on first use. A
    /// plugin whose GetCapabilities failed (or named a bad scope) gives Docker's
    /// `could not resolve driver <name> in registry`.
    pub async fn resolve(plugins: &Plugins, name: &str) -> Result<RemoteDriver, PluginError> {
        let plugin = plugins.get(name, NETWORK_DRIVER).await?;
        let d = RemoteDriver { plugin };
        d.capabilities()?;
        Ok(d)
    }

    pub fn name(&self) -> &str {
        self.plugin.name()
    }

    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// The registered capabilities (refreshed when the plugin is activated again).
    pub fn capabilities(&self) -> Result<Capabilities, PluginError> {
        match self.plugin.registration().network {
            Some(Ok(c)) => Ok(c),
            _ => Err(PluginError::NotRegistered(self.name().to_string())),
        }
    }

    async fn call<R: serde::Serialize, T: super::api::Reply>(
        &self,
        method: &str,
        req: &R,
    ) -> Result<T, PluginError> {
        self.plugin
            .call(&format!("NetworkDriver.{method}"), Some(req))
            .await
    }

    /// Must succeed; on failure the caller releases the IPAM allocations.
    pub async fn create_network(&self, req: &CreateNetworkRequest) -> Result<(), PluginError> {
        self.call::<_, Response>("CreateNetwork", req)
            .await
            .map(drop)
    }

    /// Docker only logs a failure and removes the network anyway.
    pub async fn delete_network(&self, network_id: &str) -> Result<(), PluginError> {
        let req = NetworkRequest {
            network_id: network_id.to_string(),
        };
        self.call::<_, Response>("DeleteNetwork", &req)
            .await
            .map(drop)
    }

    /// Sends CreateEndpoint and merges the reply into `req.interface`. A reply that changes
    /// a field berth had set, or does not parse, is rolled back with DeleteEndpoint before
    /// the error returns (`…; rolled back`).
    pub async fn create_endpoint(
        &self,
        req: &CreateEndpointRequest,
    ) -> Result<Interface, PluginError> {
        let asked = parse_request(&req.interface)?;
        let reply: CreateEndpointResponse = self.call("CreateEndpoint", req).await?;
        let Some(got) = reply.interface else {
            return Ok(asked);
        };
        match merge_interface(&asked, &got) {
            Ok(i) => Ok(i),
            Err(msg) => {
                let rollback = match self
                    .delete_endpoint(&req.network_id, &req.endpoint_id)
                    .await
                {
                    Ok(()) => "rolled back".to_string(),
                    Err(e) => format!("failed to roll back: {e}"),
                };
                Err(PluginError::Invalid(format!("{msg}; {rollback}")))
            }
        }
    }

    /// Errors are ignored by Docker; the reply's `Value`.
    pub async fn endpoint_oper_info(
        &self,
        network_id: &str,
        endpoint_id: &str,
    ) -> Result<Map<String, Value>, PluginError> {
        let r: EndpointOperInfoResponse = self
            .call("EndpointOperInfo", &endpoint(network_id, endpoint_id))
            .await?;
        Ok(r.value)
    }

    /// Docker only logs a failure.
    pub async fn delete_endpoint(
        &self,
        network_id: &str,
        endpoint_id: &str,
    ) -> Result<(), PluginError> {
        self.call::<_, Response>("DeleteEndpoint", &endpoint(network_id, endpoint_id))
            .await
            .map(drop)
    }

    /// Sends Join and parses the reply; a reply that does not parse is undone with Leave.
    pub async fn join(&self, req: &JoinRequest) -> Result<JoinInfo, PluginError> {
        let reply: JoinResponse = self.call("Join", req).await?;
        match parse_join(reply) {
            Ok(j) => Ok(j),
            Err(e) => {
                if let Err(le) = self.leave(&req.network_id, &req.endpoint_id).await {
                    tracing::warn!("Leave after a bad Join reply: {le}");
                }
                Err(e)
            }
        }
    }

    /// Docker only logs a failure.
    pub async fn leave(&self, network_id: &str, endpoint_id: &str) -> Result<(), PluginError> {
        self.call::<_, Response>("Leave", &endpoint(network_id, endpoint_id))
            .await
            .map(drop)
    }

    /// A 404 (not implemented) counts as success.
    pub async fn program_external_connectivity(
        &self,
        req: &ProgramExternalConnectivityRequest,
    ) -> Result<(), PluginError> {
        match self
            .call::<_, Response>("ProgramExternalConnectivity", req)
            .await
        {
            Err(e) if e.is_not_implemented() => Ok(()),
            r => r.map(drop),
        }
    }

    /// A 404 (not implemented) counts as success.
    pub async fn revoke_external_connectivity(
        &self,
        network_id: &str,
        endpoint_id: &str,
    ) -> Result<(), PluginError> {
        let req = endpoint(network_id, endpoint_id);
        match self
            .call::<_, Response>("RevokeExternalConnectivity", &req)
            .await
        {
            Err(e) if e.is_not_implemented() => Ok(()),
            r => r.map(drop),
        }
    }

    /// Only for ConnectivityScope global; Docker logs failures at debug level.
    pub async fn discover_new(&self, n: &DiscoveryNotification) -> Result<(), PluginError> {
        self.call::<_, Response>("DiscoverNew", n).await.map(drop)
    }

    pub async fn discover_delete(&self, n: &DiscoveryNotification) -> Result<(), PluginError> {
        self.call::<_, Response>("DiscoverDelete", n)
            .await
            .map(drop)
    }

    /// Swarm-manager call; the reply's options go on to CreateNetwork.
    pub async fn allocate_network(
        &self,
        req: &AllocateNetworkRequest,
    ) -> Result<BTreeMap<String, String>, PluginError> {
        let r: AllocateNetworkResponse = self.call("AllocateNetwork", req).await?;
        Ok(r.options)
    }

    pub async fn free_network(&self, network_id: &str) -> Result<(), PluginError> {
        let req = NetworkRequest {
            network_id: network_id.to_string(),
        };
        self.call::<_, Response>("FreeNetwork", &req)
            .await
            .map(drop)
    }

    /// v28+, only when the capabilities had `GwAllocChecker`.
    pub async fn gw_alloc_check(
        &self,
        req: &GwAllocCheckRequest,
    ) -> Result<GwAllocCheckResponse, PluginError> {
        self.call("GwAllocCheck", req).await
    }
}
