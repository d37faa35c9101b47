//! Container wire types: create requests, inspect and list replies, exec.
//!
//! `Config` and `HostConfig` keep every field a client sent (`extra`), so inspect shows back
//! what was asked for even where berth does not act on it.

use crate::network::EndpointSettings;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Docker's `strslice`: `Cmd` and `Entrypoint` are a list of strings, or one string taken as
/// a list of one (`"Cmd": "echo hi"` runs the program named `echo hi`, as Docker does).
fn strslice<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum S {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<S>::deserialize(d)? {
        None => None,
        Some(S::One(s)) => Some(vec![s]),
        Some(S::Many(v)) => Some(v),
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub domainname: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub attach_stdin: bool,
    #[serde(default)]
    pub attach_stdout: bool,
    #[serde(default)]
    pub attach_stderr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default, deserialize_with = "strslice")]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub volumes: Option<Value>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default, deserialize_with = "strslice")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub on_build: Option<Value>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    #[serde(default)]
    pub host_ip: String,
    #[serde(default)]
    pub host_port: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    #[serde(default)]
    pub network_mode: String,
    #[serde(default)]
    pub port_bindings: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
    #[serde(default)]
    pub auto_remove: bool,
    #[serde(default)]
    pub links: Option<Vec<String>>,
    #[serde(default)]
    pub dns: Option<Vec<String>>,
    #[serde(default)]
    pub dns_options: Option<Vec<String>>,
    #[serde(default)]
    pub dns_search: Option<Vec<String>>,
    #[serde(default)]
    pub extra_hosts: Option<Vec<String>>,
    #[serde(default)]
    pub publish_all_ports: bool,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub log_config: LogConfig,
    /// Everything else the client sent, echoed back by inspect.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `HostConfig.LogConfig`: the log driver and its options (`--log-driver`, `--log-opt`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(default)]
    pub r#type: String,
    #[serde(default)]
    pub config: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkingConfig {
    #[serde(default)]
    pub endpoints_config: Option<BTreeMap<String, Option<EndpointSettings>>>,
}

/// `POST /containers/create` body: the Config fields at the top level plus two sections.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreateRequest {
    #[serde(flatten)]
    pub config: Config,
    #[serde(default)]
    pub host_config: Option<HostConfig>,
    #[serde(default)]
    pub networking_config: Option<NetworkingConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreateResponse {
    pub id: String,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
}

/// `NetworkSettings` of container inspect (engine-api.md §2.2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct NetworkSettings {
    #[serde(rename = "Bridge")]
    pub bridge: String,
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "HairpinMode")]
    pub hairpin_mode: bool,
    #[serde(rename = "LinkLocalIPv6Address")]
    pub link_local_ipv6_address: String,
    #[serde(rename = "LinkLocalIPv6PrefixLen")]
    pub link_local_ipv6_prefix_len: u8,
    #[serde(rename = "Ports")]
    pub ports: BTreeMap<String, Option<Vec<PortBinding>>>,
    #[serde(rename = "SandboxKey")]
    pub sandbox_key: String,
    #[serde(rename = "SecondaryIPAddresses")]
    pub secondary_ip_addresses: Option<Value>,
    #[serde(rename = "SecondaryIPv6Addresses")]
    pub secondary_ipv6_addresses: Option<Value>,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Gateway")]
    pub gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    #[serde(rename = "Networks")]
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// `GET /containers/{id}/json`, fields in Docker's order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: ContainerState,
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    pub host_config: HostConfig,
    pub graph_driver: Value,
    pub mounts: Vec<Value>,
    pub config: Config,
    pub network_settings: NetworkSettings,
}

/// One element of `GET /containers/json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub ports: Vec<Value>,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub status: String,
    pub host_config: Value,
    pub network_settings: Value,
    pub mounts: Vec<Value>,
}

/// `POST /containers/{id}/exec` body.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ExecCreateRequest {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub attach_stdin: bool,
    #[serde(default)]
    pub attach_stdout: bool,
    #[serde(default)]
    pub attach_stderr: bool,
    /// docker-py sends `detachKeys` (Go's decoder ignores the case of field names).
    #[serde(default, alias = "detachKeys")]
    pub detach_keys: String,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
}

/// `POST /exec/{id}/start` body.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ExecStartRequest {
    #[serde(default)]
    pub detach: bool,
    #[serde(default)]
    pub tty: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmd_and_entrypoint_take_a_string_or_a_list() {
        let c: Config =
            serde_json::from_str(r#"{"Cmd":"echo hi","Entrypoint":["sh","-c"]}"#).unwrap();
        assert_eq!(c.cmd, Some(vec!["echo hi".to_string()]));
        assert_eq!(c.entrypoint, Some(vec!["sh".to_string(), "-c".to_string()]));
        let c: Config = serde_json::from_str(r#"{"Cmd":null}"#).unwrap();
        assert_eq!(c.cmd, None);
        assert!(serde_json::from_str::<Config>(r#"{"Cmd":7}"#).is_err());
        assert!(serde_json::from_str::<Config>(r#"{"Cmd":[1]}"#).is_err());
    }
}
