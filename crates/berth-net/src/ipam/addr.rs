//! Addresses as integers, so v4 and v6 share one arithmetic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// `v6` picks the family; v4 values are truncated to 32 bits by construction of the callers.
pub fn from_u128(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(v))
    } else {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    }
}

/// First and last address of a subnet, as integers.
pub fn bounds(net: &ipnet::IpNet) -> (u128, u128) {
    (to_u128(net.network()), to_u128(net.broadcast()))
}
