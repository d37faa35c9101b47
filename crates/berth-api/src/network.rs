use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `GET /networks/{id}` and the elements of `GET /networks`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NetworkResource {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Created")]
    pub created: String,
    #[serde(rename = "Scope")]
    pub scope: String,
    #[serde(rename = "Driver")]
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    #[serde(rename = "Internal")]
    pub internal: bool,
    #[serde(rename = "Attachable")]
    pub attachable: bool,
    #[serde(rename = "Ingress")]
    pub ingress: bool,
    #[serde(rename = "ConfigFrom")]
    pub config_from: ConfigReference,
    #[serde(rename = "ConfigOnly")]
    pub config_only: bool,
    #[serde(rename = "Containers")]
    pub containers: BTreeMap<String, EndpointResource>,
    #[serde(rename = "Options")]
    pub options: BTreeMap<String, String>,
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Ipam {
    #[serde(rename = "Driver", default)]
    pub driver: String,
    /// Echoed exactly as the creator sent it: `{}` from the CLI, `null` when omitted.
    #[serde(rename = "Options", default)]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(rename = "Config", default)]
    pub config: Option<Vec<IpamConfig>>,
}

/// One IPAM pool. docker-py (docker-compose) sends unset fields as `null`, which Go's decoder
/// reads as the zero value: so does `null_is_empty`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct IpamConfig {
    #[serde(
        rename = "Subnet",
        default,
        deserialize_with = "null_is_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub subnet: String,
    #[serde(
        rename = "IPRange",
        default,
        deserialize_with = "null_is_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub ip_range: String,
    #[serde(
        rename = "Gateway",
        default,
        deserialize_with = "null_is_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub gateway: String,
    #[serde(
        rename = "AuxiliaryAddresses",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub aux_addresses: Option<BTreeMap<String, String>>,
}

/// A string that may come as JSON `null` (Go's zero value).
fn null_is_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ConfigReference {
    #[serde(rename = "Network", default)]
    pub network: String,
}

/// One container's attachment as listed in network inspect.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct EndpointResource {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// `POST /networks/create` body. Unknown fields are ignored, as Go's decoder does.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct NetworkCreateRequest {
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "CheckDuplicate", default)]
    pub check_duplicate: bool,
    #[serde(rename = "Driver", default)]
    pub driver: String,
    #[serde(rename = "Scope", default)]
    pub scope: String,
    #[serde(rename = "EnableIPv6", default)]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM", default)]
    pub ipam: Option<Ipam>,
    #[serde(rename = "Internal", default)]
    pub internal: bool,
    #[serde(rename = "Attachable", default)]
    pub attachable: bool,
    #[serde(rename = "Ingress", default)]
    pub ingress: bool,
    #[serde(rename = "ConfigOnly", default)]
    pub config_only: bool,
    #[serde(rename = "ConfigFrom", default)]
    pub config_from: Option<ConfigReference>,
    #[serde(rename = "Options", default)]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(rename = "Labels", default)]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkCreateResponse {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Warning")]
    pub warning: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworksPruneReport {
    #[serde(rename = "NetworksDeleted")]
    pub networks_deleted: Option<Vec<String>>,
}

/// The `filters` query parameter: `{"key":{"value":true}}`, or the legacy `{"key":["value"]}`.
pub type Filters = BTreeMap<String, Vec<String>>;

/// Parses a `filters` query value. Errors carry Go's decoder text, as Docker returns it.
pub fn parse_filters(raw: &str) -> Result<Filters, String> {
    if raw.trim().is_empty() {
        return Ok(Filters::new());
    }
    let v: Map<String, Value> = serde_json::from_str(raw).map_err(|e| e.to_string())?;
    let mut out = Filters::new();
    for (k, vals) in v {
        let list = match vals {
            Value::Object(m) => m
                .into_iter()
                .filter(|(_, on)| on.as_bool().unwrap_or(false))
                .map(|(s, _)| s)
                .collect(),
            Value::Array(a) => a
                .into_iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
            _ => return Err(format!("invalid filter value for key {k}")),
        };
        out.insert(k, list);
    }
    Ok(out)
}

/// Encodes filters in the modern map form.
pub fn encode_filters(f: &Filters) -> String {
    let m: Map<String, Value> = f
        .iter()
        .map(|(k, vs)| {
            let inner: Map<String, Value> =
                vs.iter().map(|v| (v.clone(), Value::Bool(true))).collect();
            (k.clone(), Value::Object(inner))
        })
        .collect();
    Value::Object(m).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_both_forms() {
        let f = parse_filters(r#"{"name":{"a":true,"b":false},"driver":["bridge"]}"#).unwrap();
        assert_eq!(f["name"], vec!["a"]);
        assert_eq!(f["driver"], vec!["bridge"]);
        assert_eq!(parse_filters(&encode_filters(&f)).unwrap(), f);
        assert!(parse_filters("nope").is_err());
    }

    #[test]
    fn ipam_config_reads_null_as_empty() {
        let c: IpamConfig = serde_json::from_str(
            r#"{"Subnet":"172.68.0.0/16","IPRange":null,"Gateway":null,"AuxiliaryAddresses":null}"#,
        )
        .unwrap();
        assert_eq!(c.subnet, "172.68.0.0/16");
        assert_eq!((c.ip_range.as_str(), c.gateway.as_str()), ("", ""));
        assert_eq!(c.aux_addresses, None);
    }

    #[test]
    fn ipam_config_omits_empty_fields() {
        let c = IpamConfig {
            subnet: "10.0.0.0/24".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"Subnet":"10.0.0.0/24"}"#
        );
    }
}

/// A container's user-requested addresses on one network (`--ip`, `--ip6`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct EndpointIpamConfig {
    #[serde(
        rename = "IPv4Address",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_address: String,
    #[serde(
        rename = "IPv6Address",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6_address: String,
    #[serde(
        rename = "LinkLocalIPs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub link_local_ips: Option<Vec<String>>,
}

/// One network of a container: requested (create, connect) and operational (inspect).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct EndpointSettings {
    #[serde(rename = "IPAMConfig", default)]
    pub ipam_config: Option<EndpointIpamConfig>,
    #[serde(rename = "Links", default)]
    pub links: Option<Vec<String>>,
    #[serde(rename = "Aliases", default)]
    pub aliases: Option<Vec<String>>,
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "EndpointID", default)]
    pub endpoint_id: String,
    #[serde(rename = "Gateway", default)]
    pub gateway: String,
    #[serde(rename = "IPAddress", default)]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen", default)]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway", default)]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address", default)]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen", default)]
    pub global_ipv6_prefix_len: u8,
    #[serde(rename = "MacAddress", default)]
    pub mac_address: String,
    #[serde(rename = "DriverOpts", default)]
    pub driver_opts: Option<BTreeMap<String, String>>,
}

/// `POST /networks/{id}/connect` body.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct NetworkConnectRequest {
    #[serde(rename = "Container", default)]
    pub container: String,
    #[serde(rename = "EndpointConfig", default)]
    pub endpoint_config: Option<EndpointSettings>,
}

/// `POST /networks/{id}/disconnect` body.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct NetworkDisconnectRequest {
    #[serde(rename = "Container", default)]
    pub container: String,
    #[serde(rename = "Force", default)]
    pub force: bool,
}
