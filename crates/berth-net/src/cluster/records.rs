//! What berth keeps in the cluster store, under its prefix (`/berth/v1/`):
//!
//! | key | value | lifetime |
//! |---|---|---|
//! | `hosts/<host>` | `HostRec` | the host's lease |
//! | `networks/<nid>` | the `Network` | until removed |
//! | `names/<name>` | nid | with the network: cluster-wide name uniqueness |
//! | `subnets/<cidr>` | nid | with the network: no two global networks overlap |
//! | `vni/<vni>` | nid | with the network |
//! | `ipam/<nid>/<ip>` | `IpRec` | until its endpoint leaves (not on the lease: a partitioned host keeps its addresses) |
//! | `endpoints/<nid>/<eid>` | `EndpointRec` | the owning host's lease |
//!
//! Every value read back is hostile until checked: bounded, parsed, validated, skipped with a
//! warning when wrong, never a panic.

use crate::network::Network;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Larger values are not parsed (etcd's own limit is 1.5 MiB).
pub const MAX_VALUE: usize = 256 << 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRec {
    /// The VXLAN tunnel endpoint: where other hosts send this host's traffic.
    pub vtep: IpAddr,
    pub advertise: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpRec {
    pub host: String,
    pub endpoint: String,
}

/// One container's attachment to a global network, as every host sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointRec {
    pub id: String,
    pub network_id: String,
    pub host: String,
    pub vtep: IpAddr,
    pub container_id: String,
    pub container_name: String,
    pub mac: [u8; 6],
    pub ipv4: Option<IpNet>,
    pub ipv6: Option<IpNet>,
    /// Network-scoped aliases (`--network-alias`, short id): names other hosts answer too.
    pub aliases: Vec<String>,
}

/// A key under the prefix, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    Host(String),
    Network(String),
    Endpoint {
        network: String,
        id: String,
    },
    /// names/, subnets/, vni/, ipam/: read through transactions only.
    Other,
}

pub fn host(h: &str) -> String {
    format!("hosts/{h}")
}
pub fn network(nid: &str) -> String {
    format!("networks/{nid}")
}
pub fn name(n: &str) -> String {
    format!("names/{n}")
}
pub fn subnet(s: &IpNet) -> String {
    format!("subnets/{}", s.to_string().replace('/', "_"))
}
pub fn vni(v: u32) -> String {
    format!("vni/{v}")
}
pub fn ip(nid: &str, ip: IpAddr) -> String {
    format!("ipam/{nid}/{ip}")
}
pub fn ips(nid: &str) -> String {
    format!("ipam/{nid}/")
}
pub fn endpoint(nid: &str, eid: &str) -> String {
    format!("endpoints/{nid}/{eid}")
}
pub fn endpoints(nid: &str) -> String {
    format!("endpoints/{nid}/")
}

fn is_id(s: &str) -> bool {
    (12..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `rel` is the key with berth's prefix already removed.
pub fn parse_key(rel: &str) -> Key {
    let mut parts = rel.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("hosts"), Some(h), None, _) if is_id(h) => Key::Host(h.to_string()),
        (Some("networks"), Some(n), None, _) if is_id(n) => Key::Network(n.to_string()),
        (Some("endpoints"), Some(n), Some(e), None) if is_id(n) && is_id(e) => Key::Endpoint {
            network: n.to_string(),
            id: e.to_string(),
        },
        _ => Key::Other,
    }
}

/// A value read back from the store, checked against its key.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Host(String, HostRec),
    Network(Box<Network>),
    Endpoint(EndpointRec),
}

pub fn parse_value(key: &Key, v: &[u8]) -> Result<Value, String> {
    if v.len() > MAX_VALUE {
        return Err(format!("value of {} bytes is too large", v.len()));
    }
    match key {
        Key::Host(h) => {
            let r: HostRec = serde_json::from_slice(v).map_err(|e| e.to_string())?;
            Ok(Value::Host(h.clone(), r))
        }
        Key::Network(nid) => {
            let n: Network = serde_json::from_slice(v).map_err(|e| e.to_string())?;
            check_network(nid, &n)?;
            Ok(Value::Network(Box::new(n)))
        }
        Key::Endpoint { network, id } => {
            let e: EndpointRec = serde_json::from_slice(v).map_err(|e| e.to_string())?;
            if &e.network_id != network || &e.id != id {
                return Err("endpoint record does not match its key".into());
            }
            if !is_id(&e.host) || !is_id(&e.container_id) {
                return Err("endpoint record with a bad host or container id".into());
            }
            if e.ipv4.is_some_and(|n| !n.addr().is_ipv4())
                || e.ipv6.is_some_and(|n| !n.addr().is_ipv6())
            {
                return Err("endpoint record with addresses of the wrong family".into());
            }
            if e.aliases.len() > 1024 || e.container_name.len() > 255 {
                return Err("endpoint record too large".into());
            }
            Ok(Value::Endpoint(e))
        }
        Key::Other => Err("not a record key".into()),
    }
}

/// What a host relies on when it builds a network's data path from a stored record.
fn check_network(nid: &str, n: &Network) -> Result<(), String> {
    if n.id != nid {
        return Err("network record does not match its key".into());
    }
    if n.driver != crate::drivers::OVERLAY || n.scope != "global" {
        return Err(format!(
            "unexpected driver {:?} or scope {:?}",
            n.driver, n.scope
        ));
    }
    let Some(o) = &n.overlay else {
        return Err("overlay network without its VXLAN config".into());
    };
    if o.vni == 0 || o.vni > crate::drivers::overlay::VNI_LAST || !(68..=65535).contains(&o.mtu) {
        return Err("overlay network with a bad VNI or MTU".into());
    }
    if n.name.is_empty() || n.name.len() > 255 || n.subnets.is_empty() || n.subnets.len() > 64 {
        return Err("network record with a bad name or subnets".into());
    }
    for s in &n.subnets {
        if !s.pool.subnet.contains(&s.gateway) {
            return Err(format!("gateway {} outside {}", s.gateway, s.pool.subnet));
        }
    }
    if n.bridge.is_some() || n.predefined {
        return Err("overlay network record with local fields".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn keys() {
        assert_eq!(parse_key(&host(ID)), Key::Host(ID.into()));
        assert_eq!(parse_key(&network(ID)), Key::Network(ID.into()));
        assert_eq!(
            parse_key(&endpoint(ID, ID)),
            Key::Endpoint {
                network: ID.into(),
                id: ID.into()
            }
        );
        for other in [
            "names/x",
            "hosts/../x",
            "networks/zz",
            "endpoints/a/b/c",
            "",
            "/",
        ] {
            assert_eq!(parse_key(other), Key::Other, "{other}");
        }
        assert_eq!(
            subnet(&"10.0.0.0/24".parse().unwrap()),
            "subnets/10.0.0.0_24"
        );
    }

    #[test]
    fn hostile_values_are_refused_not_panicked_on() {
        let k = Key::Network(ID.into());
        for v in [&b""[..], b"{", b"null", b"[]", b"{\"id\":1}", &[0xff; 10]] {
            assert!(parse_value(&k, v).is_err());
        }
        let big = vec![b' '; MAX_VALUE + 1];
        assert!(parse_value(&k, &big).is_err());
        let ek = Key::Endpoint {
            network: ID.into(),
            id: ID.into(),
        };
        let rec = EndpointRec {
            id: ID.into(),
            network_id: ID.into(),
            host: ID.into(),
            vtep: "10.0.9.1".parse().unwrap(),
            container_id: ID.into(),
            container_name: "c".into(),
            mac: [2, 0x42, 10, 0, 0, 2],
            ipv4: Some("10.0.0.2/24".parse().unwrap()),
            ipv6: None,
            aliases: vec![],
        };
        let ok = serde_json::to_vec(&rec).unwrap();
        assert!(parse_value(&ek, &ok).is_ok());
        let bad = EndpointRec {
            ipv4: Some("2001:db8::1/64".parse().unwrap()),
            ..rec.clone()
        };
        assert!(parse_value(&ek, &serde_json::to_vec(&bad).unwrap()).is_err());
        let other = Key::Endpoint {
            network: ID.into(),
            id: "fedcba9876543210".into(),
        };
        assert!(parse_value(&other, &ok).is_err());
    }
}
