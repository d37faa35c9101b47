//! The addresses of one subnet: gateway, aux reservations and the endpoints' addresses.
//!
//! Allocation walks forward from the last address handed out and wraps around at the end of the
//! range, so a released address is not reused until every other free one has been. Docker hands
//! out the lowest free address instead, which gives a removed container's address straight to the
//! next one while peers still hold it in their ARP and DNS caches.

use super::addr::{bounds, from_u128, to_u128};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("Address already in use")]
    InUse,
    #[error("Requested address is out of range")]
    OutOfRange,
    #[error("No available addresses on this pool")]
    Exhausted,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AddressPool {
    pub subnet: IpNet,
    /// Where dynamic allocation draws from: `--ip-range`, else the subnet.
    pub range: Option<IpNet>,
    /// Addresses taken (gateway, aux addresses, endpoints).
    allocated: BTreeSet<IpAddr>,
    /// The next candidate for dynamic allocation.
    cursor: u128,
}

impl AddressPool {
    pub fn new(subnet: IpNet, range: Option<IpNet>) -> Self {
        let subnet = subnet.trunc();
        let mut p = AddressPool {
            subnet,
            range,
            allocated: BTreeSet::new(),
            cursor: 0,
        };
        p.cursor = p.dynamic_bounds().0;
        p
    }

    fn v6(&self) -> bool {
        matches!(self.subnet, IpNet::V6(_))
    }

    /// The subnet's own reserved addresses: its network address, and for IPv4 its broadcast.
    fn usable_bounds(&self) -> (u128, u128) {
        let (lo, hi) = bounds(&self.subnet);
        if self.v6() {
            (lo + 1, hi)
        } else {
            (lo + 1, hi.saturating_sub(1))
        }
    }

    /// The range's own network/broadcast addresses are valid hosts of the subnet (as in Docker).
    fn dynamic_bounds(&self) -> (u128, u128) {
        let (ulo, uhi) = self.usable_bounds();
        match &self.range {
            Some(r) => {
                let (rlo, rhi) = bounds(r);
                (rlo.max(ulo), rhi.min(uhi))
            }
            None => (ulo, uhi),
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.subnet.contains(&ip)
    }

    /// Takes a specific address (gateway, aux, `--ip`). It may lie outside `--ip-range`.
    pub fn reserve(&mut self, ip: IpAddr) -> Result<(), PoolError> {
        let v = to_u128(ip);
        let (lo, hi) = bounds(&self.subnet);
        if !self.subnet.contains(&ip) {
            return Err(PoolError::OutOfRange);
        }
        let reserved_edge = v == lo || (!self.v6() && v == hi);
        if reserved_edge || self.allocated.contains(&ip) {
            return Err(PoolError::InUse);
        }
        self.allocated.insert(ip);
        Ok(())
    }

    /// Hands out the next free address after the last one handed out, wrapping around.
    pub fn allocate(&mut self) -> Result<IpAddr, PoolError> {
        let (lo, hi) = self.dynamic_bounds();
        if lo > hi {
            return Err(PoolError::Exhausted);
        }
        let start = if self.cursor < lo || self.cursor > hi {
            lo
        } else {
            self.cursor
        };
        let v6 = self.v6();
        let found = self
            .first_free(start, hi, v6)
            .or_else(|| self.first_free(lo, start.saturating_sub(1).max(lo), v6))
            .ok_or(PoolError::Exhausted)?;
        let ip = from_u128(found, v6);
        self.allocated.insert(ip);
        self.cursor = found.wrapping_add(1);
        Ok(ip)
    }

    /// The first address in [from, to] not taken. Walks only the taken run that starts at
    /// `from`, so the cost is the length of that run, not of the range.
    fn first_free(&self, from: u128, to: u128, v6: bool) -> Option<u128> {
        if from > to {
            return None;
        }
        let mut candidate = from;
        for taken in self.allocated.range(from_u128(from, v6)..) {
            let t = to_u128(*taken);
            if t != candidate {
                break;
            }
            candidate = candidate.checked_add(1)?;
        }
        (candidate <= to).then_some(candidate)
    }

    pub fn release(&mut self, ip: IpAddr) {
        self.allocated.remove(&ip);
    }

    /// Moves the next candidate `n` addresses further (wrapping in the range): a host that
    /// lost a candidate to another host stops walking the same sequence as the others.
    pub fn skip_ahead(&mut self, n: u128) {
        let (lo, hi) = self.dynamic_bounds();
        if lo > hi {
            return;
        }
        let span = hi - lo + 1;
        let at = self.cursor.clamp(lo, hi) - lo;
        self.cursor = lo + (at + n % span) % span;
    }

    pub fn is_allocated(&self, ip: IpAddr) -> bool {
        self.allocated.contains(&ip)
    }

    pub fn allocated_count(&self) -> usize {
        self.allocated.len()
    }
}

/// Reserves the gateway and aux addresses of a new pool; the gateway defaults to the first
/// dynamic address (the first of `--ip-range` when one is given).
pub fn prepare(
    pool: &mut AddressPool,
    gateway: Option<IpAddr>,
    aux: &BTreeMap<String, IpAddr>,
) -> Result<IpAddr, (Option<IpAddr>, PoolError)> {
    let gw = match gateway {
        Some(g) => pool.reserve(g).map(|_| g).map_err(|e| (Some(g), e))?,
        None => pool.allocate().map_err(|e| (None, e))?,
    };
    for ip in aux.values() {
        // Docker lets aux addresses collide with the gateway; only keep them off the free list.
        let _ = pool.reserve(*ip);
    }
    Ok(gw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn hands_out_in_order_after_gateway() {
        let mut p = AddressPool::new(net("10.0.0.0/24"), None);
        let gw = prepare(&mut p, None, &BTreeMap::new()).unwrap();
        assert_eq!(gw, ip("10.0.0.1"));
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.2"));
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.3"));
    }

    #[test]
    fn released_address_is_not_reused_until_wrap() {
        let mut p = AddressPool::new(net("10.0.0.0/29"), None); // hosts .1-.6
        prepare(&mut p, None, &BTreeMap::new()).unwrap(); // .1
        let a = p.allocate().unwrap(); // .2
        p.allocate().unwrap(); // .3
        p.release(a);
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.4"));
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.5"));
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.6"));
        // wraps around: .2 is the only free one
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.2"));
        assert_eq!(p.allocate(), Err(PoolError::Exhausted));
    }

    #[test]
    fn ip_range_and_explicit_gateway() {
        let mut p = AddressPool::new(net("10.0.1.0/24"), Some(net("10.0.1.128/25")));
        let mut aux = BTreeMap::new();
        aux.insert("a".to_string(), ip("10.0.1.130"));
        let gw = prepare(&mut p, Some(ip("10.0.1.254")), &aux).unwrap();
        assert_eq!(gw, ip("10.0.1.254"));
        assert_eq!(p.allocate().unwrap(), ip("10.0.1.128"));
        assert_eq!(p.allocate().unwrap(), ip("10.0.1.129"));
        assert_eq!(
            p.allocate().unwrap(),
            ip("10.0.1.131"),
            "aux address skipped"
        );
        // a requested address may lie outside the range
        p.reserve(ip("10.0.1.5")).unwrap();
        assert_eq!(p.reserve(ip("10.0.1.5")), Err(PoolError::InUse));
        assert_eq!(p.reserve(ip("10.0.2.5")), Err(PoolError::OutOfRange));
    }

    #[test]
    fn gateway_defaults_to_first_of_range() {
        let mut p = AddressPool::new(net("10.220.0.0/24"), Some(net("10.220.0.128/25")));
        assert_eq!(
            prepare(&mut p, None, &BTreeMap::new()).unwrap(),
            ip("10.220.0.128")
        );
        assert_eq!(p.allocate().unwrap(), ip("10.220.0.129"));
    }

    #[test]
    fn network_and_broadcast_are_reserved() {
        let mut p = AddressPool::new(net("10.0.0.0/24"), None);
        assert_eq!(p.reserve(ip("10.0.0.0")), Err(PoolError::InUse));
        assert_eq!(p.reserve(ip("10.0.0.255")), Err(PoolError::InUse));
        let mut p6 = AddressPool::new(net("2001:db8::/64"), None);
        assert_eq!(p6.reserve(ip("2001:db8::")), Err(PoolError::InUse));
    }

    #[test]
    fn tiny_subnets() {
        let mut p = AddressPool::new(net("10.0.0.0/30"), None);
        assert_eq!(
            prepare(&mut p, None, &BTreeMap::new()).unwrap(),
            ip("10.0.0.1")
        );
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.2"));
        assert_eq!(p.allocate(), Err(PoolError::Exhausted));
        for s in ["10.0.0.0/31", "10.0.0.0/32"] {
            let mut p = AddressPool::new(net(s), None);
            assert_eq!(
                prepare(&mut p, None, &BTreeMap::new()),
                Err((None, PoolError::Exhausted))
            );
        }
    }

    #[test]
    fn gateway_errors() {
        let mut p = AddressPool::new(net("10.0.0.0/24"), None);
        assert_eq!(
            prepare(&mut p, Some(ip("10.0.1.1")), &BTreeMap::new()),
            Err((Some(ip("10.0.1.1")), PoolError::OutOfRange))
        );
        assert_eq!(
            prepare(&mut p, Some(ip("10.0.0.0")), &BTreeMap::new()),
            Err((Some(ip("10.0.0.0")), PoolError::InUse))
        );
    }

    #[test]
    fn ipv6_allocation() {
        let mut p = AddressPool::new(net("2001:db8:1::/64"), None);
        assert_eq!(
            prepare(&mut p, None, &BTreeMap::new()).unwrap(),
            ip("2001:db8:1::1")
        );
        assert_eq!(p.allocate().unwrap(), ip("2001:db8:1::2"));
        // the last address of a v6 subnet is usable (no broadcast)
        p.reserve(ip("2001:db8:1::ffff:ffff:ffff:ffff")).unwrap();
    }

    #[test]
    fn survives_serialization() {
        let mut p = AddressPool::new(net("10.0.0.0/24"), None);
        prepare(&mut p, None, &BTreeMap::new()).unwrap();
        p.allocate().unwrap();
        let mut q: AddressPool = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(q, p);
        assert_eq!(q.allocate().unwrap(), ip("10.0.0.3"));
    }

    #[test]
    fn exhaustion_of_a_large_pool_is_linear_not_quadratic() {
        let mut p = AddressPool::new(net("10.0.0.0/20"), None);
        let mut n = 0;
        while p.allocate().is_ok() {
            n += 1;
        }
        assert_eq!(n, 4094);
    }

    #[test]
    fn skip_ahead_wraps_in_the_range() {
        let mut p = AddressPool::new("10.0.0.0/29".parse().unwrap(), None);
        assert_eq!(p.allocate().unwrap().to_string(), "10.0.0.1");
        p.skip_ahead(3);
        assert_eq!(p.allocate().unwrap().to_string(), "10.0.0.5");
        // six usable addresses: a jump of 6 lands where it started
        p.skip_ahead(6);
        assert_eq!(p.allocate().unwrap().to_string(), "10.0.0.6");
        p.skip_ahead(100);
        assert!(p.allocate().is_ok());
    }
}
