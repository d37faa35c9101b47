//! `NetworkDriver.*` messages (libnetwork `drivers/remote/api/api.go`). Every reply may carry
//! `Err`; a 200 reply with it set fails the call with `remote: <Err>`.

use super::{empty_reply, fold_at, Fields, Reply};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Options as Docker sends them: a Go `map[string]interface{}`, so keys sorted.
pub type Options = BTreeMap<String, Value>;

/// Option keys Docker puts in CreateNetwork / CreateEndpoint / Join options.
pub mod keys {
    pub const ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";
    pub const ENABLE_IPV4: &str = "com.docker.network.enable_ipv4";
    pub const GENERIC: &str = "com.docker.network.generic";
    pub const INTERNAL: &str = "com.docker.network.internal";
    pub const PORTMAP: &str = "com.docker.network.portmap";
    pub const EXPOSED_PORTS: &str = "com.docker.network.endpoint.exposedports";
    pub const DNS_SERVERS: &str = "com.docker.network.endpoint.dnsservers";
    pub const MAC_ADDRESS: &str = "com.docker.network.endpoint.macaddress";
}

/// `/NetworkDriver.GetCapabilities` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitiesResponse {
    #[serde(rename = "Scope", default)]
    pub scope: String,
    #[serde(rename = "ConnectivityScope", default)]
    pub connectivity_scope: String,
    /// v28+: GwAllocCheck is sent before CreateNetwork.
    #[serde(rename = "GwAllocChecker", default, skip_serializing_if = "is_false")]
    pub gw_alloc_checker: bool,
    #[serde(rename = "Err", default, skip_serializing_if = "String::is_empty")]
    pub err: String,
}

fn is_false(b: &bool) -> bool {
    !b
}

impl Fields for CapabilitiesResponse {
    const FIELDS: &'static [&'static str] =
        &["Scope", "ConnectivityScope", "GwAllocChecker", "Err"];
}
impl Reply for CapabilitiesResponse {
    fn error(&self) -> &str {
        &self.err
    }
}

/// One address family's IPAM result for a network (`driverapi.IPAMData`). Go marshals it
/// from a map, so the keys come sorted; `Gateway` and `AuxAddresses` are left out when
/// absent. Addresses are CIDR strings carrying the pool's mask.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamData {
    #[serde(rename = "AddressSpace", default)]
    pub address_space: String,
    #[serde(
        rename = "AuxAddresses",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub aux_addresses: BTreeMap<String, String>,
    #[serde(rename = "Gateway", default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(rename = "Pool", default)]
    pub pool: String,
}

impl Fields for IpamData {
    const FIELDS: &'static [&'static str] = &["AddressSpace", "AuxAddresses", "Gateway", "Pool"];
}

/// `/NetworkDriver.CreateNetwork` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateNetworkRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "Options", default)]
    pub options: Options,
    #[serde(rename = "IPv4Data", default)]
    pub ipv4_data: Vec<IpamData>,
    #[serde(rename = "IPv6Data", default)]
    pub ipv6_data: Vec<IpamData>,
}

impl Fields for CreateNetworkRequest {
    const FIELDS: &'static [&'static str] = &["NetworkID", "Options", "IPv4Data", "IPv6Data"];
    fn fold_nested(obj: &mut Map<String, Value>) {
        fold_at(obj, "IPv4Data", IpamData::FIELDS);
        fold_at(obj, "IPv6Data", IpamData::FIELDS);
    }
}

/// The request of DeleteNetwork and FreeNetwork.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
}

impl Fields for NetworkRequest {
    const FIELDS: &'static [&'static str] = &["NetworkID"];
}

/// The request of DeleteEndpoint, EndpointOperInfo, Leave and RevokeExternalConnectivity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "EndpointID", default)]
    pub endpoint_id: String,
}

impl Fields for EndpointRequest {
    const FIELDS: &'static [&'static str] = &["NetworkID", "EndpointID"];
}

/// An endpoint's interface in CreateEndpoint: CIDR addresses and a colon MAC, `""` = unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInterface {
    #[serde(rename = "Address", default)]
    pub address: String,
    #[serde(rename = "AddressIPv6", default)]
    pub address_ipv6: String,
    #[serde(rename = "MacAddress", default)]
    pub mac_address: String,
}

impl Fields for EndpointInterface {
    const FIELDS: &'static [&'static str] = &["Address", "AddressIPv6", "MacAddress"];
}

/// `/NetworkDriver.CreateEndpoint` request (`Interface` is always an object).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateEndpointRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "EndpointID", default)]
    pub endpoint_id: String,
    #[serde(rename = "Interface", default)]
    pub interface: EndpointInterface,
    #[serde(rename = "Options", default)]
    pub options: Options,
}

impl Fields for CreateEndpointRequest {
    const FIELDS: &'static [&'static str] = &["NetworkID", "EndpointID", "Interface", "Options"];
    fn fold_nested(obj: &mut Map<String, Value>) {
        fold_at(obj, "Interface", EndpointInterface::FIELDS);
    }
}

/// `/NetworkDriver.CreateEndpoint` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateEndpointResponse {
    #[serde(rename = "Interface", default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<EndpointInterface>,
    #[serde(rename = "Err", default, skip_serializing_if = "String::is_empty")]
    pub err: String,
}

impl Fields for CreateEndpointResponse {
    const FIELDS: &'static [&'static str] = &["Interface", "Err"];
    fn fold_nested(obj: &mut Map<String, Value>) {
        fold_at(obj, "Interface", EndpointInterface::FIELDS);
    }
}
impl Reply for CreateEndpointResponse {
    fn error(&self) -> &str {
        &self.err
    }
}

/// `/NetworkDriver.EndpointOperInfo` reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointOperInfoResponse {
    #[serde(rename = "Value", default)]
    pub value: Map<String, Value>,
    #[serde(rename = "Err", default, skip_serializing_if = "String::is_empty")]
    pub err: String,
}

impl Fields for EndpointOperInfoResponse {
    const FIELDS: &'static [&'static str] = &["Value", "Err"];
}
impl Reply for EndpointOperInfoResponse {
    fn error(&self) -> &str {
        &self.err
    }
}

/// `/NetworkDriver.Join` request: `SandboxKey` is the sandbox's netns path; `Options` the
/// sandbox labels (port map, exposed ports, legacy-link data).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JoinRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "EndpointID", default)]
    pub endpoint_id: String,
    #[serde(rename = "SandboxKey", default)]
    pub sandbox_key: String,
    #[serde(rename = "Options", default)]
    pub options: Options,
}

impl Fields for JoinRequest {
    const FIELDS: &'static [&'static str] = &["NetworkID", "EndpointID", "SandboxKey", "Options"];
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceName {
    #[serde(rename = "SrcName", default)]
    pub src_name: String,
    /// In Docker's struct, ignored by its remote driver.
    #[serde(rename = "DstName", default, skip_serializing_if = "String::is_empty")]
    pub dst_name: String,
    #[serde(rename = "DstPrefix", default)]
    pub dst_prefix: String,
}

impl Fields for InterfaceName {
    const FIELDS: &'static [&'static str] = &["SrcName", "DstName", "DstPrefix"];
}

/// RouteType 0: via `NextHop`; 1: connected (on the endpoint's interface).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticRoute {
    #[serde(rename = "Destination", default)]
    pub destination: String,
    #[serde(rename = "RouteType", default)]
    pub route_type: i64,
    #[serde(rename = "NextHop", default)]
    pub next_hop: String,
}

impl Fields for StaticRoute {
    const FIELDS: &'static [&'static str] = &["Destination", "RouteType", "NextHop"];
}

pub const ROUTE_NEXTHOP: i64 = 0;
pub const ROUTE_CONNECTED: i64 = 1;

/// `/NetworkDriver.Join` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    #[serde(
        rename = "InterfaceName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub interface_name: Option<InterfaceName>,
    #[serde(rename = "Gateway", default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(
        rename = "GatewayIPv6",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub gateway_ipv6: String,
    #[serde(
        rename = "StaticRoutes",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub static_routes: Vec<StaticRoute>,
    #[serde(rename = "DisableGatewayService", default)]
    pub disable_gateway_service: bool,
    #[serde(rename = "Err", default, skip_serializing_if = "String::is_empty")]
    pub err: String,
}

impl Fields for JoinResponse {
    const FIELDS: &'static [&'static str] = &[
        "InterfaceName",
        "Gateway",
        "GatewayIPv6",
        "StaticRoutes",
        "DisableGatewayService",
        "Err",
    ];
    fn fold_nested(obj: &mut Map<String, Value>) {
        fold_at(obj, "InterfaceName", InterfaceName::FIELDS);
        fold_at(obj, "StaticRoutes", StaticRoute::FIELDS);
    }
}
impl Reply for JoinResponse {
    fn error(&self) -> &str {
        &self.err
    }
}

/// `/NetworkDriver.ProgramExternalConnectivity` request (Options: the sandbox labels).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgramExternalConnectivityRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "EndpointID", default)]
    pub endpoint_id: String,
    #[serde(rename = "Options", default)]
    pub options: Options,
}

impl Fields for ProgramExternalConnectivityRequest {
    const FIELDS: &'static [&'static str] = &["NetworkID", "EndpointID", "Options"];
}

/// Node discovery, the only kind Docker forwards.
pub const DISCOVERY_NODE: i64 = 1;

/// `DiscoveryData` of node discovery (`Self` in Go; the docs' `self` folds to it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDiscoveryData {
    #[serde(rename = "Address", default)]
    pub address: String,
    #[serde(rename = "BindAddress", default)]
    pub bind_address: String,
    #[serde(rename = "Self", default)]
    pub is_self: bool,
}

/// `/NetworkDriver.DiscoverNew` and `/NetworkDriver.DiscoverDelete` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryNotification {
    #[serde(rename = "DiscoveryType", default)]
    pub discovery_type: i64,
    #[serde(rename = "DiscoveryData", default)]
    pub discovery_data: Value,
}

impl Fields for DiscoveryNotification {
    const FIELDS: &'static [&'static str] = &["DiscoveryType", "DiscoveryData"];
}

/// `/NetworkDriver.AllocateNetwork` request (swarm managers, global drivers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateNetworkRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "Options", default)]
    pub options: BTreeMap<String, String>,
    #[serde(rename = "IPv4Data", default)]
    pub ipv4_data: Vec<IpamData>,
    #[serde(rename = "IPv6Data", default)]
    pub ipv6_data: Vec<IpamData>,
}

impl Fields for AllocateNetworkRequest {
    const FIELDS: &'static [&'static str] = &["NetworkID", "Options", "IPv4Data", "IPv6Data"];
}

/// `/NetworkDriver.AllocateNetwork` reply: options passed on to CreateNetwork.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateNetworkResponse {
    #[serde(rename = "Options", default)]
    pub options: BTreeMap<String, String>,
    #[serde(rename = "Err", default, skip_serializing_if = "String::is_empty")]
    pub err: String,
}

impl Fields for AllocateNetworkResponse {
    const FIELDS: &'static [&'static str] = &["Options", "Err"];
}
impl Reply for AllocateNetworkResponse {
    fn error(&self) -> &str {
        &self.err
    }
}

/// v28+ `/NetworkDriver.GwAllocCheck` request (Options as CreateNetwork's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GwAllocCheckRequest {
    #[serde(rename = "Options", default)]
    pub options: Options,
}

impl Fields for GwAllocCheckRequest {
    const FIELDS: &'static [&'static str] = &["Options"];
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GwAllocCheckResponse {
    #[serde(rename = "SkipIPv4", default)]
    pub skip_ipv4: bool,
    #[serde(rename = "SkipIPv6", default)]
    pub skip_ipv6: bool,
    #[serde(rename = "Err", default, skip_serializing_if = "String::is_empty")]
    pub err: String,
}

impl Fields for GwAllocCheckResponse {
    const FIELDS: &'static [&'static str] = &["SkipIPv4", "SkipIPv6", "Err"];
}
impl Reply for GwAllocCheckResponse {
    fn error(&self) -> &str {
        &self.err
    }
}

empty_reply!(Response, "Err");
