//! Which subnet a network gets when the user names none.
//!
//! The candidates are the default pools split into equal subnets, visited round-robin from where
//! the last allocation stopped, so a just-freed subnet is not handed out next (as in Docker).
//! Taken subnets live in an ordered map, so checking a candidate costs O(log n) whatever the
//! number of networks.

use super::addr::{bounds, from_u128};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::str::FromStr;

/// `--default-address-pool base=CIDR,size=N`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSpec {
    pub base: IpNet,
    pub size: u8,
}

impl PoolSpec {
    fn count(&self) -> u128 {
        1u128 << (self.size - self.base.prefix_len()).min(127)
    }

    fn nth(&self, i: u128) -> IpNet {
        let (lo, _) = bounds(&self.base);
        let bits = if self.base.addr().is_ipv4() { 32 } else { 128 };
        let step = 1u128 << (bits - self.size as u32);
        let addr = from_u128(lo + i * step, self.base.addr().is_ipv6());
        IpNet::new(addr, self.size).expect("size checked at parse")
    }
}

impl FromStr for PoolSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (mut base, mut size) = (None, None);
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("base", v)) => {
                    base = Some(
                        v.parse::<IpNet>()
                            .map_err(|_| format!("invalid address pool base: {v}"))?
                            .trunc(),
                    )
                }
                Some(("size", v)) => {
                    size = Some(
                        v.parse::<u8>()
                            .map_err(|_| format!("invalid pools size: {v}"))?,
                    )
                }
                _ => return Err(format!("invalid field in address pool: {part}")),
            }
        }
        let base = base.ok_or("address pool needs base=CIDR")?;
        let size = size.ok_or("address pool needs size=N")?;
        if size < base.prefix_len() || size > base.max_prefix_len() {
            return Err(format!("invalid pools size: {size}"));
        }
        Ok(PoolSpec { base, size })
    }
}

/// Docker's local defaults first (172.17-31/16, then 192.168/20s), then /24s of 10.128.0.0/9 so
/// that thousands of networks fit.
pub fn default_local_pools() -> Vec<PoolSpec> {
    [
        ("172.17.0.0/16", 16),
        ("172.18.0.0/15", 16),
        ("172.20.0.0/14", 16),
        ("172.24.0.0/14", 16),
        ("172.28.0.0/14", 16),
        ("192.168.0.0/16", 20),
        ("10.128.0.0/9", 24),
    ]
    .iter()
    .map(|(b, s)| PoolSpec {
        base: b.parse().unwrap(),
        size: *s,
    })
    .collect()
}

#[derive(Debug, Clone)]
pub struct SubnetAllocator {
    pools: Vec<PoolSpec>,
    /// start → (end, owner) of every subnet in use, v4 and v6 in disjoint integer spaces
    /// (v6 values are offset so they never compare equal to v4 ones).
    taken: BTreeMap<u128, (u128, String)>,
    /// Index of the next candidate in the concatenated candidate list.
    pub cursor: u128,
}

fn key_bounds(net: &IpNet) -> (u128, u128) {
    let (lo, hi) = bounds(&net.trunc());
    // Keep the families apart: v4 occupies [0, 2^32), shift v6 by 2^32 is not enough to avoid
    // overlap with ::/96, so map v4 into the IPv4-mapped v6 block instead.
    if net.addr().is_ipv4() {
        (lo | 0xffff_0000_0000, hi | 0xffff_0000_0000)
    } else {
        (lo, hi)
    }
}

impl SubnetAllocator {
    pub fn new(pools: Vec<PoolSpec>) -> Self {
        SubnetAllocator {
            pools,
            taken: BTreeMap::new(),
            cursor: 0,
        }
    }

    fn total(&self) -> u128 {
        self.pools.iter().map(PoolSpec::count).sum()
    }

    fn candidate(&self, mut i: u128) -> IpNet {
        for p in &self.pools {
            if i < p.count() {
                return p.nth(i);
            }
            i -= p.count();
        }
        unreachable!("candidate index within total")
    }

    /// The owner of a taken subnet overlapping `net`, if any.
    pub fn overlapping(&self, net: &IpNet) -> Option<&str> {
        let (lo, hi) = key_bounds(net);
        // the taken subnet starting at or before `hi` with the greatest start; subnets never
        // overlap each other, so only that one can reach into [lo, hi]
        self.taken
            .range(..=hi)
            .next_back()
            .filter(|(_, (end, _))| *end >= lo)
            .map(|(_, (_, owner))| owner.as_str())
    }

    /// Marks `net` as used by `owner`. Fails (returning the other owner) on overlap.
    pub fn take(&mut self, net: &IpNet, owner: &str) -> Result<(), String> {
        if let Some(o) = self.overlapping(net) {
            return Err(o.to_string());
        }
        let (lo, hi) = key_bounds(net);
        self.taken.insert(lo, (hi, owner.to_string()));
        Ok(())
    }

    pub fn release(&mut self, net: &IpNet) {
        let (lo, _) = key_bounds(net);
        self.taken.remove(&lo);
    }

    /// The next free IPv4 candidate that overlaps neither a taken subnet nor any of `host`
    /// (the host's routes and interface addresses), taken for `owner`.
    pub fn allocate(&mut self, owner: &str, host: &[IpNet]) -> Option<IpNet> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let host_alloc = {
            let mut h = SubnetAllocator::new(Vec::new());
            for n in host {
                // host routes may overlap each other; keep the widest per start
                let (lo, hi) = key_bounds(n);
                let e = h.taken.entry(lo).or_insert((hi, String::new()));
                e.0 = e.0.max(hi);
            }
            h
        };
        for step in 0..total {
            let i = (self.cursor + step) % total;
            let net = self.candidate(i);
            if self.overlapping(&net).is_some() || host_alloc.overlaps_any(&net) {
                continue;
            }
            self.take(&net, owner).ok()?;
            self.cursor = (i + 1) % total;
            return Some(net);
        }
        None
    }

    /// Whether exactly this subnet is taken (as opposed to something overlapping it).
    pub fn is_taken_exact(&self, net: &IpNet) -> bool {
        let (lo, hi) = key_bounds(net);
        self.taken.get(&lo).is_some_and(|(end, _)| *end == hi)
    }

    /// Like `overlapping`, but for sets whose members may overlap each other.
    fn overlaps_any(&self, net: &IpNet) -> bool {
        let (lo, hi) = key_bounds(net);
        self.taken.range(..=hi).any(|(_, (end, _))| *end >= lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn docker_order_then_tens() {
        let mut a = SubnetAllocator::new(default_local_pools());
        let got: Vec<String> = (0..34)
            .map(|i| a.allocate(&i.to_string(), &[]).unwrap().to_string())
            .collect();
        assert_eq!(got[0], "172.17.0.0/16");
        assert_eq!(got[1], "172.18.0.0/16");
        assert_eq!(got[14], "172.31.0.0/16");
        assert_eq!(got[15], "192.168.0.0/20");
        assert_eq!(got[16], "192.168.16.0/20");
        assert_eq!(got[30], "192.168.240.0/20");
        assert_eq!(got[31], "10.128.0.0/24");
        assert_eq!(got[33], "10.128.2.0/24");
    }

    #[test]
    fn thousands_fit_and_never_overlap() {
        let mut a = SubnetAllocator::new(default_local_pools());
        let mut all = Vec::new();
        for i in 0..5000 {
            all.push(a.allocate(&i.to_string(), &[]).expect("pool exhausted"));
        }
        let mut fresh = SubnetAllocator::new(vec![]);
        for (i, n) in all.iter().enumerate() {
            fresh.take(n, &i.to_string()).expect("overlap");
        }
    }

    #[test]
    fn round_robin_skips_just_freed() {
        let mut a = SubnetAllocator::new(default_local_pools());
        a.allocate("bridge", &[]).unwrap();
        let n1 = a.allocate("n1", &[]).unwrap();
        a.release(&n1);
        assert_eq!(a.allocate("n2", &[]).unwrap(), net("172.19.0.0/16"));
    }

    #[test]
    fn host_routes_are_skipped() {
        let mut a = SubnetAllocator::new(default_local_pools());
        let host = [net("172.17.5.0/24"), net("172.16.0.0/12")];
        // everything in 172.16/12 is held by the host, so the first choice is 192.168.0.0/20
        assert_eq!(a.allocate("x", &host).unwrap(), net("192.168.0.0/20"));
        let mut b = SubnetAllocator::new(default_local_pools());
        assert_eq!(
            b.allocate("x", &[net("172.17.5.0/24")]).unwrap(),
            net("172.18.0.0/16")
        );
    }

    #[test]
    fn overlap_detection_both_directions() {
        let mut a = SubnetAllocator::new(vec![]);
        a.take(&net("10.1.0.0/16"), "a").unwrap();
        assert_eq!(a.overlapping(&net("10.1.2.0/24")), Some("a"));
        assert_eq!(a.overlapping(&net("10.0.0.0/8")), Some("a"));
        assert_eq!(a.overlapping(&net("10.2.0.0/16")), None);
        a.take(&net("2001:db8::/64"), "v6").unwrap();
        assert_eq!(a.overlapping(&net("2001:db8::/48")), Some("v6"));
        assert_eq!(a.overlapping(&net("::/0")), Some("v6"));
        // v4 and v6 never collide
        assert_eq!(a.overlapping(&net("0.0.0.0/0")), Some("a"));
        a.release(&net("10.1.0.0/16"));
        assert_eq!(a.overlapping(&net("10.0.0.0/8")), None);
    }

    #[test]
    fn custom_pools_and_exhaustion() {
        let spec: PoolSpec = "base=10.10.0.0/23,size=24".parse().unwrap();
        let mut a = SubnetAllocator::new(vec![spec]);
        assert_eq!(a.allocate("a", &[]).unwrap(), net("10.10.0.0/24"));
        assert_eq!(a.allocate("b", &[]).unwrap(), net("10.10.1.0/24"));
        assert_eq!(a.allocate("c", &[]), None);
        assert!("base=10.0.0.0/16,size=8".parse::<PoolSpec>().is_err());
        assert!("base=nope,size=24".parse::<PoolSpec>().is_err());
    }
}
