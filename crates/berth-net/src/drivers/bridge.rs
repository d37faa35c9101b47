//! The bridge driver's options (`-o com.docker.network.bridge.*`), parsed with Go's rules so bad
//! values get Docker's messages.

use crate::error::{NetError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

pub const OPT_NAME: &str = "com.docker.network.bridge.name";
pub const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
pub const OPT_MASQ: &str = "com.docker.network.bridge.enable_ip_masquerade";
pub const OPT_HOST_BINDING: &str = "com.docker.network.bridge.host_binding_ipv4";
pub const OPT_DEFAULT_BRIDGE: &str = "com.docker.network.bridge.default_bridge";
pub const OPT_INHIBIT_IPV4: &str = "com.docker.network.bridge.inhibit_ipv4";
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";
pub const OPT_IFACE_PREFIX: &str = "com.docker.network.container_iface_prefix";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BridgeConfig {
    pub name: String,
    pub mtu: Option<u32>,
    pub icc: bool,
    pub masquerade: bool,
    pub host_binding_ipv4: Option<IpAddr>,
    pub iface_prefix: String,
    pub inhibit_ipv4: bool,
}

/// Go's strconv.ParseBool.
fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(parse_err(
            key,
            v,
            &format!("strconv.ParseBool: parsing {v:?}: invalid syntax"),
        )),
    }
}

fn parse_err(key: &str, v: &str, why: &str) -> NetError {
    NetError::internal(format!("failed to parse {key} value: {v} ({why})"))
}

/// Linux accepts 1-15 bytes without '/', ':' or whitespace.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':' && b != b'"' && b != b'\'')
}

impl BridgeConfig {
    /// `default_name` is `br-<12 hex of the id>` for user networks.
    pub fn from_options(opts: &BTreeMap<String, String>, default_name: &str) -> Result<Self> {
        let name = opts
            .get(OPT_NAME)
            .cloned()
            .unwrap_or_else(|| default_name.to_string());
        if !valid_ifname(&name) {
            return Err(NetError::invalid(format!(
                "invalid bridge name {name:?}: a Linux interface name has 1 to 15 characters without '/', ':' or spaces"
            )));
        }
        let mtu = match opts.get(OPT_MTU) {
            None => None,
            Some(v) => {
                let n: i64 = v.parse().map_err(|_| {
                    parse_err(
                        OPT_MTU,
                        v,
                        &format!("strconv.Atoi: parsing {v:?}: invalid syntax"),
                    )
                })?;
                if !(68..=65535).contains(&n) {
                    return Err(NetError::invalid(format!(
                        "invalid MTU number: {n} (must be between 68 and 65535)"
                    )));
                }
                Some(n as u32)
            }
        };
        let flag = |k: &str, default: bool| match opts.get(k) {
            Some(v) => parse_bool(k, v),
            None => Ok(default),
        };
        let host_binding_ipv4 = match opts.get(OPT_HOST_BINDING) {
            None => None,
            Some(v) => Some(
                v.parse::<IpAddr>()
                    .map_err(|_| parse_err(OPT_HOST_BINDING, v, "invalid IP address"))?,
            ),
        };
        Ok(BridgeConfig {
            name,
            mtu,
            icc: flag(OPT_ICC, true)?,
            masquerade: flag(OPT_MASQ, true)?,
            host_binding_ipv4,
            iface_prefix: opts
                .get(OPT_IFACE_PREFIX)
                .cloned()
                .unwrap_or_else(|| "eth".into()),
            inhibit_ipv4: flag(OPT_INHIBIT_IPV4, false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let c = BridgeConfig::from_options(&opts(&[]), "br-0123456789ab").unwrap();
        assert_eq!(c.name, "br-0123456789ab");
        assert!(c.icc && c.masquerade && c.mtu.is_none());
    }

    #[test]
    fn docker_parse_errors() {
        let e = BridgeConfig::from_options(&opts(&[(OPT_MTU, "abc")]), "b").unwrap_err();
        assert_eq!(e.message, "failed to parse com.docker.network.driver.mtu value: abc (strconv.Atoi: parsing \"abc\": invalid syntax)");
        let e = BridgeConfig::from_options(&opts(&[(OPT_ICC, "maybe")]), "b").unwrap_err();
        assert_eq!(e.message, "failed to parse com.docker.network.bridge.enable_icc value: maybe (strconv.ParseBool: parsing \"maybe\": invalid syntax)");
        assert!(
            BridgeConfig::from_options(&opts(&[(OPT_NAME, "a-very-long-bridge-name")]), "b")
                .is_err()
        );
        assert!(BridgeConfig::from_options(&opts(&[(OPT_NAME, "bad name")]), "b").is_err());
    }

    #[test]
    fn flags() {
        let c = BridgeConfig::from_options(
            &opts(&[(OPT_ICC, "false"), (OPT_MASQ, "0"), (OPT_MTU, "1400")]),
            "b",
        )
        .unwrap();
        assert!(!c.icc && !c.masquerade);
        assert_eq!(c.mtu, Some(1400));
    }
}
