//! A network as berth stores it, and its Docker inspect form.

use crate::drivers::bridge::BridgeConfig;
use crate::ipam::AddressPool;
use berth_api::{ConfigReference, Ipam, IpamConfig, NetworkResource};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Names the CLI and API reserve for the predefined networks.
pub const PREDEFINED: [&str; 4] = ["bridge", "host", "none", "default"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Subnet {
    pub pool: AddressPool,
    pub gateway: IpAddr,
    pub aux: BTreeMap<String, IpAddr>,
    /// A remote IPAM driver's pool (`--ipam-driver NAME`): the plugin chose the subnet and
    /// grants every address in it; `pool` mirrors what it granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemotePool>,
}

/// What RequestPool answered, kept for every later call about the pool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RemotePool {
    /// Opaque PoolID, passed back in RequestAddress/ReleaseAddress/ReleasePool.
    pub id: String,
    /// The address space it was requested in (CreateNetwork's `IPAMData.AddressSpace`).
    pub address_space: String,
    /// The gateway came from the pool's `Data` (`com.docker.network.gateway`): it was never
    /// requested, so it is not released.
    #[serde(default)]
    pub gateway_from_data: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub scope: String,
    pub created: String,
    pub enable_ipv6: bool,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub ipam_driver: String,
    pub ipam_options: Option<BTreeMap<String, String>>,
    /// The IPAM config as the creator gave it, echoed by inspect.
    pub user_ipam: Vec<IpamConfig>,
    pub subnets: Vec<Subnet>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub bridge: Option<BridgeConfig>,
    pub predefined: bool,
    /// Overlay networks: the segment every host joins (the network lives in the cluster store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<crate::drivers::overlay::OverlayConfig>,
}

impl Network {
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// The driver plugin running this network, or `None` for berth's own drivers. Its data
    /// path (host side, bridges, tunnels) is the plugin's, not berth's to see.
    pub fn plugin(&self) -> Option<&str> {
        crate::drivers::Kind::of(&self.driver)
            .is_none()
            .then_some(self.driver.as_str())
    }

    /// Kept in the cluster store and seen by every host: overlays and the networks of
    /// global-scope driver plugins.
    pub fn is_global(&self) -> bool {
        self.scope == crate::drivers::Scope::Global.as_str()
    }

    /// The remote IPAM driver granting this network's addresses (`None`: berth's own).
    pub fn remote_ipam(&self) -> Option<&str> {
        match self.ipam_driver.as_str() {
            "" | "default" => None,
            d => Some(d),
        }
    }

    pub fn is_v6(s: &Subnet) -> bool {
        s.pool.subnet.addr().is_ipv6()
    }

    /// Docker echoes the user's config for a family the user configured, and the allocation
    /// result (subnet and gateway) for one it chose itself.
    pub fn ipam_config(&self) -> Vec<IpamConfig> {
        let mut out = Vec::new();
        for v6 in [false, true] {
            let user: Vec<&IpamConfig> = self
                .user_ipam
                .iter()
                .filter(|c| c.subnet.contains(':') == v6)
                .collect();
            if !user.is_empty() {
                out.extend(user.into_iter().cloned());
                continue;
            }
            for s in self.subnets.iter().filter(|s| Network::is_v6(s) == v6) {
                out.push(IpamConfig {
                    subnet: s.pool.subnet.to_string(),
                    gateway: s.gateway.to_string(),
                    ..Default::default()
                });
            }
        }
        out
    }

    pub fn to_resource(&self) -> NetworkResource {
        NetworkResource {
            name: self.name.clone(),
            id: self.id.clone(),
            created: self.created.clone(),
            scope: self.scope.clone(),
            driver: self.driver.clone(),
            enable_ipv6: self.enable_ipv6,
            ipam: Ipam {
                driver: self.ipam_driver.clone(),
                options: self.ipam_options.clone(),
                config: Some(self.ipam_config()),
            },
            internal: self.internal,
            attachable: self.attachable,
            ingress: self.ingress,
            config_from: ConfigReference::default(),
            config_only: false,
            containers: BTreeMap::new(),
            options: self.options.clone(),
            labels: self.labels.clone(),
        }
    }
}

/// A random 64-hex id whose 12-character short form is never all digits: a container's
/// hostname is that short form, and glibc takes an all-digit name for a (bad) numeric address
/// and fails the lookup without asking DNS or /etc/hosts (`hostname -i`: "Unknown host", one
/// container in ~280). Docker redraws such ids for the same reason (moby#3869).
pub fn new_id() -> String {
    use rand::Rng;
    loop {
        let bytes: [u8; 32] = rand::rng().random();
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if !id[..12].bytes().all(|c| c.is_ascii_digit()) {
            return id;
        }
    }
}

/// RFC 3339 with nanoseconds and trailing zeros trimmed, like Go's RFC3339Nano.
pub fn now_rfc3339() -> String {
    let t = time::OffsetDateTime::now_utc();
    let frac = format!("{:09}", t.nanosecond());
    let frac = frac.trim_end_matches('0');
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        if frac.is_empty() { "" } else { "." },
        frac
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_and_never_start_with_twelve_digits() {
        // ~1 draw in 280 has an all-digit short form: 20,000 draws meet ~70 of them
        for _ in 0..20_000 {
            let id = new_id();
            assert_eq!(id.len(), 64);
            assert!(id
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
            assert!(!id[..12].bytes().all(|c| c.is_ascii_digit()), "{id}");
        }
    }

    #[test]
    fn ids_and_times() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        let t = now_rfc3339();
        assert!(t.ends_with('Z') && t.len() >= 20, "{t}");
    }
}
