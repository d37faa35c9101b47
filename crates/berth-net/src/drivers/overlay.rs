//! The overlay driver's options and constants: one VXLAN segment per network spanning every
//! host of the cluster store (see `controller/overlay.rs` for the flows and `osl/overlay.rs`
//! for the kernel objects).

use crate::error::{NetError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const OPT_VXLANID: &str = "com.docker.network.driver.overlay.vxlanid_list";
pub use super::bridge::OPT_MTU;

/// Docker's classic-mode range (its swarm mode starts at 4096).
pub const VNI_FIRST: u32 = 256;
pub const VNI_LAST: u32 = (1 << 24) - 1;
/// VXLAN's IANA port.
pub const VXLAN_PORT: u16 = 4789;
/// Inner Ethernet 14 + outer IP 20 + UDP 8 + VXLAN 8.
pub const OVERHEAD: u32 = 50;
pub const DEFAULT_MTU: u32 = 1500 - OVERHEAD;

/// What the cluster store keeps of an overlay network besides its IPAM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverlayConfig {
    pub vni: u32,
    /// The containers' interfaces and the VXLAN device.
    pub mtu: u32,
}

/// `-o` of an overlay create: the VNI the user wants (the first of the list: berth carries
/// every subnet of a network on one segment) and the MTU.
pub fn parse_options(opts: &BTreeMap<String, String>) -> Result<(Option<u32>, u32)> {
    let mtu = match opts.get(OPT_MTU) {
        None => DEFAULT_MTU,
        Some(v) => {
            let n: i64 = v.parse().map_err(|_| {
                NetError::internal(format!(
                    "failed to parse {OPT_MTU} value: {v} (strconv.Atoi: parsing {v:?}: invalid syntax)"
                ))
            })?;
            if !(68..=65535).contains(&n) {
                return Err(NetError::invalid(format!(
                    "invalid MTU number: {n} (must be between 68 and 65535)"
                )));
            }
            n as u32
        }
    };
    let vni = match opts.get(OPT_VXLANID) {
        None => None,
        Some(list) => {
            let first = list.split(',').next().unwrap_or_default().trim();
            let n: u32 = first.parse().map_err(|_| {
                NetError::invalid(format!("invalid vxlan id value {first:?} passed"))
            })?;
            if n == 0 || n > VNI_LAST {
                return Err(NetError::invalid(format!(
                    "vxlan id {n} is out of range (1-{VNI_LAST})"
                )));
            }
            Some(n)
        }
    };
    Ok((vni, mtu))
}

/// The namespace holding a network's bridge and VXLAN device on this host.
pub fn netns_name(network_id: &str) -> String {
    format!("ovl-{}", network_id.get(..12).unwrap_or(network_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options() {
        assert_eq!(parse_options(&o(&[])).unwrap(), (None, 1450));
        assert_eq!(
            parse_options(&o(&[(OPT_VXLANID, "4097,4098"), (OPT_MTU, "1400")])).unwrap(),
            (Some(4097), 1400)
        );
        assert!(parse_options(&o(&[(OPT_VXLANID, "x")])).is_err());
        assert!(parse_options(&o(&[(OPT_VXLANID, "16777216")])).is_err());
        assert!(parse_options(&o(&[(OPT_MTU, "20")])).is_err());
    }
}
