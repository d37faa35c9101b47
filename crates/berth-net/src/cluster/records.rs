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
            if !usable_vtep(r.vtep) || r.advertise.len() > 255 {
                return Err("host record with an unusable VTEP or advertise address".into());
            }
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
            if e.aliases.len() > 1024
                || e.container_name.len() > 255
                || e.aliases.iter().any(|a| a.len() > 255)
            {
                return Err("endpoint record too large".into());
            }
            // what becomes a static FDB and neighbour entry must be one the kernel can use
            if !usable_vtep(e.vtep) || !unicast_mac(e.mac) {
                return Err("endpoint record with an unusable VTEP or MAC address".into());
            }
            Ok(Value::Endpoint(e))
        }
        Key::Other => Err("not a record key".into()),
    }
}

/// A tunnel endpoint another host can send to: not unspecified, loopback or multicast.
fn usable_vtep(ip: IpAddr) -> bool {
    !(ip.is_unspecified() || ip.is_loopback() || ip.is_multicast())
        && ip != IpAddr::V4(std::net::Ipv4Addr::BROADCAST)
}

/// An interface address: not all zeros, not multicast or broadcast (the group bit).
fn unicast_mac(mac: [u8; 6]) -> bool {
    mac != [0; 6] && mac[0] & 1 == 0
}

/// What a host relies on when it builds a network's data path from a stored record.
fn check_network(nid: &str, n: &Network) -> Result<(), String> {
    if n.id != nid {
        return Err("network record does not match its key".into());
    }
    if n.scope != "global" {
        return Err(format!("unexpected scope {:?}", n.scope));
    }
    // an overlay, or a global-scope plugin's network (no VXLAN config: the plugin's data path)
    match (n.driver == crate::drivers::OVERLAY, &n.overlay) {
        (true, Some(o)) => {
            if o.vni == 0
                || o.vni > crate::drivers::overlay::VNI_LAST
                || !(68..=65535).contains(&o.mtu)
            {
                return Err("overlay network with a bad VNI or MTU".into());
            }
        }
        (true, None) => return Err("overlay network without its VXLAN config".into()),
        (false, None) if n.plugin().is_some() && n.driver.len() <= 255 => {}
        (false, _) => return Err(format!("unexpected driver {:?}", n.driver)),
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
        for (vtep, mac) in [
            ("0.0.0.0", rec.mac),
            ("127.0.0.1", rec.mac),
            ("224.0.0.1", rec.mac),
            ("10.0.9.1", [0; 6]),
            ("10.0.9.1", [0xff; 6]),
            ("10.0.9.1", [1, 0, 0x5e, 0, 0, 1]),
        ] {
            let bad = EndpointRec {
                vtep: vtep.parse().unwrap(),
                mac,
                ..rec.clone()
            };
            let v = serde_json::to_vec(&bad).unwrap();
            assert!(parse_value(&ek, &v).is_err(), "{vtep} {mac:?}");
        }
        let hk = Key::Host(ID.into());
        let host = |vtep: &str| format!(r#"{{"vtep":"{vtep}","advertise":"x:2376"}}"#);
        assert!(parse_value(&hk, host("10.0.9.1").as_bytes()).is_ok());
        assert!(parse_value(&hk, host("::").as_bytes()).is_err());
    }

    #[test]
    fn global_plugin_networks_are_records_too() {
        let n = Network {
            id: ID.into(),
            name: "gp".into(),
            driver: "weave".into(),
            scope: "global".into(),
            created: String::new(),
            enable_ipv6: false,
            internal: false,
            attachable: false,
            ingress: false,
            ipam_driver: "default".into(),
            ipam_options: None,
            user_ipam: vec![],
            subnets: vec![crate::network::Subnet {
                pool: crate::ipam::AddressPool::new("10.0.3.0/24".parse().unwrap(), None),
                gateway: "10.0.3.1".parse().unwrap(),
                aux: Default::default(),
                remote: None,
            }],
            options: Default::default(),
            labels: Default::default(),
            bridge: None,
            predefined: false,
            overlay: None,
        };
        let k = Key::Network(ID.into());
        let v = |n: &Network| serde_json::to_vec(n).unwrap();
        assert!(parse_value(&k, &v(&n)).is_ok());
        // an overlay without its VXLAN config, a built-in local driver, a local scope: refused
        for bad in [
            Network {
                driver: crate::drivers::OVERLAY.into(),
                ..n.clone()
            },
            Network {
                driver: crate::drivers::BRIDGE.into(),
                ..n.clone()
            },
            Network {
                scope: "local".into(),
                ..n.clone()
            },
            Network {
                overlay: Some(crate::drivers::overlay::OverlayConfig {
                    vni: 4097,
                    mtu: 1450,
                }),
                ..n.clone()
            },
        ] {
            assert!(parse_value(&k, &v(&bad)).is_err(), "{bad:?}");
        }
    }

    fn ids() -> impl Strategy<Value = String> {
        prop_oneof![Just(ID.to_string()), "[0-9a-f]{10,66}", ".{0,16}"]
    }

    fn net(fam6: bool) -> impl Strategy<Value = Option<IpNet>> {
        let ip: BoxedStrategy<IpAddr> = if fam6 {
            prop_oneof![
                any::<std::net::Ipv6Addr>().prop_map(IpAddr::V6),
                any::<IpAddr>()
            ]
            .boxed()
        } else {
            prop_oneof![
                any::<std::net::Ipv4Addr>().prop_map(IpAddr::V4),
                any::<IpAddr>()
            ]
            .boxed()
        };
        proptest::option::of(
            (ip, 0u8..=130).prop_filter_map("prefix", |(a, p)| IpNet::new(a, p).ok()),
        )
    }

    fn endpoint_recs() -> impl Strategy<Value = EndpointRec> {
        (
            (ids(), ids(), ids(), ids()),
            any::<IpAddr>(),
            ".{0,40}",
            any::<[u8; 6]>(),
            net(false),
            net(true),
            proptest::collection::vec(".{0,12}", 0..4),
        )
            .prop_map(|((id, nid, host, cid), vtep, name, mac, v4, v6, aliases)| {
                EndpointRec {
                    id,
                    network_id: nid,
                    host,
                    vtep,
                    container_id: cid,
                    container_name: name,
                    mac,
                    ipv4: v4,
                    ipv6: v6,
                    aliases,
                }
            })
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any key from the store parses to a record key only when it is one berth writes.
        #[test]
        fn any_key(k in ".{0,160}") {
            match parse_key(&k) {
                Key::Host(h) => prop_assert_eq!(host(&h), k),
                Key::Network(n) => prop_assert_eq!(network(&n), k),
                Key::Endpoint { network, id } => prop_assert_eq!(endpoint(&network, &id), k),
                Key::Other => {}
            }
        }

        /// Arbitrary bytes under every kind of key: refused or parsed, never a panic.
        #[test]
        fn any_bytes(v in proptest::collection::vec(any::<u8>(), 0..600)) {
            for k in [
                Key::Host(ID.into()),
                Key::Network(ID.into()),
                Key::Endpoint { network: ID.into(), id: ID.into() },
                Key::Other,
            ] {
                let _ = parse_value(&k, &v);
            }
        }

        /// Well-formed JSON with hostile fields: what is accepted holds every invariant the
        /// peers and names programmed from it rely on.
        #[test]
        fn hostile_endpoint_records(rec in endpoint_recs(), flip in any::<Option<(usize, u8)>>()) {
            let mut v = serde_json::to_vec(&rec).unwrap();
            if let Some((at, b)) = flip {
                let i = at % v.len();
                v[i] = b;
            }
            let k = Key::Endpoint { network: ID.into(), id: ID.into() };
            if let Ok(Value::Endpoint(e)) = parse_value(&k, &v) {
                prop_assert_eq!(e.id.as_str(), ID);
                prop_assert_eq!(e.network_id.as_str(), ID);
                prop_assert!(is_id(&e.host) && is_id(&e.container_id));
                prop_assert!(e.ipv4.is_none_or(|n| n.addr().is_ipv4()));
                prop_assert!(e.ipv6.is_none_or(|n| n.addr().is_ipv6()));
                prop_assert!(usable_vtep(e.vtep) && unicast_mac(e.mac));
            }
        }
    }
}
