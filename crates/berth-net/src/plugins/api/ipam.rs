//! `IpamDriver.*` messages (libnetwork `ipams/remote/api/api.go`). The in-band error field is
//! `Error`, not `Err`: an IPAM reply with 200 and `Err` counts as a success.

use super::{empty_reply, Fields, Reply};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// RequestAddress option marking the gateway request, and the RequestPool `Data` key by
/// which a plugin supplies the gateway itself.
pub const REQUEST_ADDRESS_TYPE: &str = "RequestAddressType";
pub const GATEWAY: &str = "com.docker.network.gateway";
pub const MAC_ADDRESS: &str = "com.docker.network.endpoint.macaddress";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitiesResponse {
    #[serde(rename = "RequiresMACAddress", default)]
    pub requires_mac_address: bool,
    #[serde(rename = "RequiresRequestReplay", default)]
    pub requires_request_replay: bool,
    #[serde(rename = "Error", default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

impl Fields for CapabilitiesResponse {
    const FIELDS: &'static [&'static str] =
        &["RequiresMACAddress", "RequiresRequestReplay", "Error"];
}
impl Reply for CapabilitiesResponse {
    fn error(&self) -> &str {
        &self.error
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressSpacesResponse {
    #[serde(rename = "LocalDefaultAddressSpace", default)]
    pub local_default_address_space: String,
    #[serde(rename = "GlobalDefaultAddressSpace", default)]
    pub global_default_address_space: String,
    #[serde(rename = "Error", default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

impl Fields for AddressSpacesResponse {
    const FIELDS: &'static [&'static str] = &[
        "LocalDefaultAddressSpace",
        "GlobalDefaultAddressSpace",
        "Error",
    ];
}
impl Reply for AddressSpacesResponse {
    fn error(&self) -> &str {
        &self.error
    }
}

/// `Pool` is `""` when the plugin should choose; `SubPool` from `--ip-range`; `Options` from
/// `--ipam-opt` (Go's nil map, `null`, when none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPoolRequest {
    #[serde(rename = "AddressSpace", default)]
    pub address_space: String,
    #[serde(rename = "Pool", default)]
    pub pool: String,
    #[serde(rename = "SubPool", default)]
    pub sub_pool: String,
    #[serde(rename = "Options", default)]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(rename = "V6", default)]
    pub v6: bool,
}

impl Fields for RequestPoolRequest {
    const FIELDS: &'static [&'static str] = &["AddressSpace", "Pool", "SubPool", "Options", "V6"];
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPoolResponse {
    #[serde(rename = "PoolID", default)]
    pub pool_id: String,
    #[serde(rename = "Pool", default)]
    pub pool: String,
    #[serde(rename = "Data", default)]
    pub data: BTreeMap<String, String>,
    #[serde(rename = "Error", default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

impl Fields for RequestPoolResponse {
    const FIELDS: &'static [&'static str] = &["PoolID", "Pool", "Data", "Error"];
}
impl Reply for RequestPoolResponse {
    fn error(&self) -> &str {
        &self.error
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasePoolRequest {
    #[serde(rename = "PoolID", default)]
    pub pool_id: String,
}

impl Fields for ReleasePoolRequest {
    const FIELDS: &'static [&'static str] = &["PoolID"];
}

/// `Address` is a plain IP or `""`; `Options` is `null` for endpoints (20.10),
/// `{"RequestAddressType":"com.docker.network.gateway"}` for the gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAddressRequest {
    #[serde(rename = "PoolID", default)]
    pub pool_id: String,
    #[serde(rename = "Address", default)]
    pub address: String,
    #[serde(rename = "Options", default)]
    pub options: Option<BTreeMap<String, String>>,
}

impl Fields for RequestAddressRequest {
    const FIELDS: &'static [&'static str] = &["PoolID", "Address", "Options"];
}

/// `Address` must be CIDR.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAddressResponse {
    #[serde(rename = "Address", default)]
    pub address: String,
    #[serde(rename = "Data", default)]
    pub data: BTreeMap<String, String>,
    #[serde(rename = "Error", default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

impl Fields for RequestAddressResponse {
    const FIELDS: &'static [&'static str] = &["Address", "Data", "Error"];
}
impl Reply for RequestAddressResponse {
    fn error(&self) -> &str {
        &self.error
    }
}

/// `Address` is a plain IP.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseAddressRequest {
    #[serde(rename = "PoolID", default)]
    pub pool_id: String,
    #[serde(rename = "Address", default)]
    pub address: String,
}

impl Fields for ReleaseAddressRequest {
    const FIELDS: &'static [&'static str] = &["PoolID", "Address"];
}

empty_reply!(Response, "Error");
