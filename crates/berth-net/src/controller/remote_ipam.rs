//! Remote IPAM drivers (`--ipam-driver NAME`, plugins.md §3 and §4): the plugin chooses each
//! pool and grants every address in it, under any network driver. Berth keeps a mirror of
//! what the plugin granted in the network's `AddressPool`s (the same bookkeeping as its own
//! IPAM), so the rest of the controller (endpoints, DNS, restore) works unchanged; the
//! plugin's answer always wins.
//!
//! Calls in Docker's order: network create `RequestPool` → gateway `RequestAddress` (marked
//! `RequestAddressType: com.docker.network.gateway`, skipped when the pool's `Data` supplied
//! one) → aux `RequestAddress`es, per IPv4 then IPv6 pool; connect `RequestAddress` (v4, then
//! v6) before the driver's CreateEndpoint; disconnect `ReleaseAddress` after the driver's
//! DeleteEndpoint; network rm `ReleaseAddress` (gateway, aux) → `ReleasePool` before the
//! driver's DeleteNetwork. A failure at any step releases what was granted so far.

use super::ipam_grants::{forget_grants, grant_key, Grant};
use super::Controller;
use crate::endpoint::Wanted;
use crate::error::{NetError, Result};
use crate::ipam::{AddressPool, Ipam};
use crate::network::{Network, RemotePool, Subnet};
use crate::plugins::api::ipam::{RequestPoolRequest, MAC_ADDRESS};
use crate::plugins::ipam::gateway_request;
use crate::plugins::RemoteIpam;
use crate::request::{CreatePlan, SubnetRequest};
use crate::store::Store;
use futures::future::BoxFuture;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A network's remote pools: (subnet, pool) per family, in the network's order.
pub(super) type Pools = Vec<(IpNet, RemotePool)>;

/// The pools of a network with a remote IPAM.
pub(super) fn pools_of(n: &Network) -> Pools {
    n.subnets
        .iter()
        .filter_map(|s| Some((s.pool.subnet, s.remote.clone()?)))
        .collect()
}

pub(super) fn pool_for(pools: &Pools, ip: IpAddr) -> Option<&RemotePool> {
    pools
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, p)| p)
}

/// A random locally administered unicast MAC (Docker's `netutils.GenerateRandomMAC`), for an
/// IPAM with `RequiresMACAddress` when the user gave none.
fn random_mac() -> [u8; 6] {
    let mut m: [u8; 6] = rand::random();
    m[0] = (m[0] & 0xfe) | 0x02;
    m
}

/// The addresses of an endpoint were granted by the plugin before berth took them in its
/// mirror: granting is done, releasing goes to the plugin.
pub(super) struct Granted {
    pub ipam: RemoteIpam,
    pub pools: Pools,
    /// Where the grants are journaled until a record holds them (controller/ipam_grants.rs).
    pub store: Store,
}

impl Granted {
    /// The journal's keys of these addresses, for the transaction that records their endpoint.
    pub fn keys(&self, ips: &[IpAddr]) -> Vec<String> {
        ips.iter()
            .filter_map(|ip| {
                Some(grant_key(
                    self.ipam.name(),
                    &pool_for(&self.pools, *ip)?.id,
                    Some(*ip),
                ))
            })
            .collect()
    }
}

impl Ipam for Granted {
    fn request_address<'a>(
        &'a self,
        _: &'a str,
        _: IpAddr,
        _: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async { Ok(true) })
    }
    fn release_addresses<'a>(&'a self, _: &'a str, ips: &'a [IpAddr]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            release_all(&self.ipam, &self.pools, &self.store, ips).await;
            Ok(())
        })
    }
}

/// ReleaseAddress for each address, v4 before v6 as Docker sends them; errors are logged
/// (Docker only logs them too).
async fn release_all(ipam: &RemoteIpam, pools: &Pools, store: &Store, ips: &[IpAddr]) {
    let mut ips = ips.to_vec();
    ips.sort_by_key(|ip| ip.is_ipv6());
    for ip in ips {
        let Some(p) = pool_for(pools, ip) else {
            continue;
        };
        if let Err(e) = ipam.release_address(&p.id, ip).await {
            tracing::warn!("IpamDriver.ReleaseAddress of {ip}: {e}");
        }
        forget_grants(store, &[grant_key(ipam.name(), &p.id, Some(ip))]);
    }
}

/// The requested subnets per family: the user's, or one the plugin chooses (IPv6 only with
/// `--ipv6`).
fn requests(plan: &CreatePlan) -> Vec<(Option<SubnetRequest>, bool)> {
    let all: Vec<&SubnetRequest> = plan.v4.iter().chain(&plan.v6).chain(&plan.more).collect();
    let mut out = Vec::new();
    for v6 in [false, true] {
        if v6 && !plan.enable_ipv6 {
            continue;
        }
        let mine: Vec<_> = all
            .iter()
            .filter(|r| r.subnet.addr().is_ipv6() == v6)
            .map(|r| (Some((*r).clone()), v6))
            .collect();
        if mine.is_empty() {
            out.push((None, v6));
        } else {
            out.extend(mine);
        }
    }
    out
}

impl Controller {
    pub(super) async fn remote_ipam(&self, name: &str) -> Result<RemoteIpam> {
        Ok(RemoteIpam::resolve(&self.plugins, name).await?)
    }

    /// The pools of a new network from its remote IPAM: RequestPool, then the gateway and aux
    /// addresses, per subnet in Docker's order. All or nothing.
    pub(super) async fn request_pools(
        &self,
        ipam: &RemoteIpam,
        plan: &CreatePlan,
        options: Option<&BTreeMap<String, String>>,
        global: bool,
    ) -> Result<Vec<Subnet>> {
        let space = ipam.address_space(global)?;
        let mut out: Vec<Subnet> = Vec::new();
        for (r, v6) in requests(plan) {
            match self
                .request_one(ipam, &space, r.as_ref(), v6, options)
                .await
            {
                Ok(s) => out.push(s),
                Err(e) => {
                    self.release_pools(ipam, &out).await;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    async fn request_one(
        &self,
        ipam: &RemoteIpam,
        space: &str,
        r: Option<&SubnetRequest>,
        v6: bool,
        options: Option<&BTreeMap<String, String>>,
    ) -> Result<Subnet> {
        let req = RequestPoolRequest {
            address_space: space.to_string(),
            pool: r.map(|r| r.subnet.to_string()).unwrap_or_default(),
            sub_pool: r
                .and_then(|r| r.range)
                .map(|n| n.to_string())
                .unwrap_or_default(),
            options: options.cloned(),
            v6,
        };
        let pool = ipam.request_pool(&req).await?;
        let grant = |address| Grant {
            ipam: ipam.name().to_string(),
            pool_id: pool.id.clone(),
            address,
        };
        if let Err(e) = self.journal_grant(grant(None)).await {
            if let Err(e) = ipam.release_pool(&pool.id).await {
                tracing::warn!("IpamDriver.ReleasePool of {}: {e}", pool.id);
            }
            return Err(e);
        }
        crate::fail::point("plugin-ipam/pool");
        let remote = RemotePool {
            id: pool.id.clone(),
            address_space: space.to_string(),
            gateway_from_data: false,
        };
        let mut subnet = Subnet {
            pool: AddressPool::new(pool.pool, r.and_then(|r| r.range)),
            // set below
            gateway: pool.pool.network(),
            aux: BTreeMap::new(),
            remote: Some(remote),
        };
        let undo = |s: Subnet| async move { self.release_pools(ipam, &[s]).await };
        if pool.pool.addr().is_ipv6() != v6 {
            let e = NetError::internal(format!(
                "IpamDriver.RequestPool: the plugin answered pool {} for an IPv{} request",
                pool.pool,
                if v6 { 6 } else { 4 }
            ));
            undo(subnet).await;
            return Err(e);
        }
        let user_gw = r.and_then(|r| r.gateway);
        match (user_gw, pool.gateway()) {
            (None, Some(g)) => {
                subnet.gateway = g.addr();
                subnet.remote.as_mut().expect("set").gateway_from_data = true;
            }
            _ => match ipam
                .request_address(&pool.id, user_gw, Some(gateway_request()))
                .await
            {
                Ok((g, _)) => {
                    subnet.gateway = g.addr();
                    if let Err(e) = self.journal_grant(grant(Some(g.addr()))).await {
                        undo(subnet).await;
                        return Err(e);
                    }
                    crate::fail::point("plugin-ipam/gateway");
                }
                Err(e) => {
                    let gw = user_gw.map(|g| g.to_string()).unwrap_or_default();
                    // nothing but the pool to release: the gateway was not granted
                    subnet.remote.as_mut().expect("set").gateway_from_data = true;
                    undo(subnet).await;
                    return Err(NetError::internal(format!(
                        "failed to allocate gateway ({gw}): {e}"
                    )));
                }
            },
        }
        let _ = subnet.pool.reserve(subnet.gateway);
        for (k, ip) in r.map(|r| r.aux.clone()).unwrap_or_default() {
            if let Err(e) = ipam.request_address(&pool.id, Some(ip), None).await {
                undo(subnet).await;
                return Err(e.into());
            }
            let _ = subnet.pool.reserve(ip);
            subnet.aux.insert(k, ip);
            if let Err(e) = self.journal_grant(grant(Some(ip))).await {
                undo(subnet).await;
                return Err(e);
            }
        }
        Ok(subnet)
    }

    /// A network's pools back to the plugin: gateway, aux addresses, then the pool, for each
    /// pool in order (Docker's `ipamRelease`). Errors are logged only.
    pub(super) async fn release_pools(&self, ipam: &RemoteIpam, subnets: &[Subnet]) {
        for s in subnets {
            let Some(p) = &s.remote else { continue };
            let mut keys = Vec::new();
            if !p.gateway_from_data {
                if let Err(e) = ipam.release_address(&p.id, s.gateway).await {
                    tracing::warn!("IpamDriver.ReleaseAddress of gateway {}: {e}", s.gateway);
                }
                keys.push(grant_key(ipam.name(), &p.id, Some(s.gateway)));
            }
            for ip in s.aux.values() {
                if let Err(e) = ipam.release_address(&p.id, *ip).await {
                    tracing::warn!("IpamDriver.ReleaseAddress of {ip}: {e}");
                }
                keys.push(grant_key(ipam.name(), &p.id, Some(*ip)));
            }
            if let Err(e) = ipam.release_pool(&p.id).await {
                tracing::warn!("IpamDriver.ReleasePool of {}: {e}", p.id);
            }
            keys.push(grant_key(ipam.name(), &p.id, None));
            self.forget_grants(&keys);
        }
    }

    /// Releases a removed network's pools with its IPAM plugin, if it has one.
    pub(super) async fn release_network_pools(&self, n: &Network) {
        let Some(name) = n.remote_ipam() else { return };
        match self.remote_ipam(name).await {
            Ok(ipam) => self.release_pools(&ipam, &n.subnets).await,
            Err(e) => tracing::warn!("releasing the pools of network {}: {e}", n.name),
        }
    }

    /// Gives an endpoint's addresses back to the network's IPAM plugin.
    pub(super) async fn release_granted(&self, name: &str, pools: Pools, ips: &[IpAddr]) {
        match self.remote_ipam(name).await {
            Ok(ipam) => release_all(&ipam, &pools, &self.store, ips).await,
            Err(e) => tracing::warn!("releasing {ips:?} with IPAM driver {name}: {e}"),
        }
    }

    /// The addresses of a new endpoint from the network's IPAM plugin (the user's `--ip`
    /// preferred; with `RequiresMACAddress` the MAC goes along, and is the endpoint's), v4 then
    /// v6. Returns what berth then takes in its mirror, and who releases it.
    pub(super) async fn request_endpoint_addresses(
        &self,
        name: &str,
        nid: &str,
        want: &Wanted,
    ) -> Result<(Wanted, Granted)> {
        let ipam = self.remote_ipam(name).await?;
        let pools = {
            let st = self.lock();
            let n = st
                .networks
                .get(nid)
                .ok_or_else(|| NetError::not_found(format!("network {nid} not found")))?;
            pools_of(n)
        };
        let granted = Granted {
            ipam,
            pools,
            store: self.store.clone(),
        };
        let mut out = Wanted {
            v4: None,
            v6: None,
            mac: want.mac,
        };
        let options = match granted.ipam.info()?.requires_mac_address {
            true => {
                let mac = *out.mac.get_or_insert_with(random_mac);
                Some(BTreeMap::from([(
                    MAC_ADDRESS.to_string(),
                    crate::endpoint::format_mac(&mac),
                )]))
            }
            false => None,
        };
        for v6 in [false, true] {
            let preferred = if v6 { want.v6 } else { want.v4 };
            // the first pool of the family, or the one holding the requested address
            let Some((_, pool)) = granted.pools.iter().find(|(net, _)| {
                net.addr().is_ipv6() == v6 && preferred.is_none_or(|ip| net.contains(&ip))
            }) else {
                continue;
            };
            let got = granted
                .ipam
                .request_address(&pool.id, preferred, options.clone())
                .await;
            let ip = match got {
                Ok((a, _)) if granted.pools.iter().any(|(n, _)| n.contains(&a.addr())) => a.addr(),
                Ok((a, _)) => {
                    let _ = granted.ipam.release_address(&pool.id, a.addr()).await;
                    let done: Vec<IpAddr> = out.v4.into_iter().collect();
                    release_all(&granted.ipam, &granted.pools, &self.store, &done).await;
                    return Err(NetError::internal(format!(
                        "IpamDriver.RequestAddress: the plugin answered {a}, outside its pools"
                    )));
                }
                Err(e) => {
                    let done: Vec<IpAddr> = out.v4.into_iter().collect();
                    release_all(&granted.ipam, &granted.pools, &self.store, &done).await;
                    return Err(e.into());
                }
            };
            let journaled = self
                .journal_grant(Grant {
                    ipam: granted.ipam.name().to_string(),
                    pool_id: pool.id.clone(),
                    address: Some(ip),
                })
                .await;
            if let Err(e) = journaled {
                let done: Vec<IpAddr> = out.v4.into_iter().chain([ip]).collect();
                release_all(&granted.ipam, &granted.pools, &self.store, &done).await;
                return Err(e);
            }
            if v6 {
                out.v6 = Some(ip);
            } else {
                out.v4 = Some(ip);
            }
        }
        crate::fail::point("plugin-ipam/address");
        Ok((out, granted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(v4: &[&str], v6: &[&str], ipv6: bool) -> CreatePlan {
        let r = |s: &&str| SubnetRequest {
            subnet: s.parse().unwrap(),
            range: None,
            gateway: None,
            aux: BTreeMap::new(),
        };
        let mut all: Vec<SubnetRequest> = v4.iter().chain(v6).map(r).collect();
        let first = all.remove(0);
        CreatePlan {
            name: "n".into(),
            driver: "bridge".into(),
            enable_ipv6: ipv6,
            v4: Some(first),
            v6: None,
            more: all,
            user_ipam: vec![],
            ipam_driver: Some("p".into()),
        }
    }

    #[test]
    fn requests_follow_dockers_order() {
        let empty = CreatePlan {
            v4: None,
            more: vec![],
            ..plan(&["10.0.0.0/24"], &[], false)
        };
        // no config: one IPv4 pool the plugin chooses
        let r = requests(&empty);
        assert_eq!(r.len(), 1);
        assert!(r[0].0.is_none() && !r[0].1);
        // --ipv6 without a v6 subnet: the plugin chooses that one too
        let r = requests(&CreatePlan {
            enable_ipv6: true,
            ..empty.clone()
        });
        assert_eq!(r.iter().map(|x| x.1).collect::<Vec<_>>(), [false, true]);
        // v4 pools first, then v6, each in the given order
        let r = requests(&plan(
            &["10.0.0.0/24", "10.0.1.0/24"],
            &["2001:db8::/64"],
            true,
        ));
        let nets: Vec<String> = r
            .iter()
            .map(|(x, _)| x.as_ref().unwrap().subnet.to_string())
            .collect();
        assert_eq!(nets, ["10.0.0.0/24", "10.0.1.0/24", "2001:db8::/64"]);
    }

    #[test]
    fn random_macs_are_local_unicast() {
        for _ in 0..64 {
            let m = random_mac();
            assert_eq!(m[0] & 0x01, 0, "{m:?}");
            assert_eq!(m[0] & 0x02, 0x02, "{m:?}");
        }
    }
}
