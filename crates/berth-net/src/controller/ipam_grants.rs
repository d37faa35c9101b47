//! What an IPAM plugin granted before berth recorded its owner. RequestPool and RequestAddress
//! hand out a pool or an address that only the network's or the endpoint's record remembers;
//! a berthd killed between the plugin's answer and that record would leak the grant in the
//! plugin for good (Docker leaks it). So each grant is journaled (`ipam_grants`, keyed by
//! plugin, pool id and address) as soon as the answer arrives, and forgotten in the same
//! transaction as the endpoint's record (a connect), when berth gives it back (a failure, a
//! disconnect, a network rm), or at the next start when a network holds it. At the next start,
//! a journaled grant that no network or endpoint holds is released with the plugin:
//! ReleaseAddress first, then ReleasePool, as Docker releases.
//!
//! What stays open is the time the answer is on the wire: a grant the plugin made whose answer
//! berth never read cannot be named (the protocol has no request ids).

use super::remote_ipam::{pool_for, pools_of};
use super::Controller;
use crate::endpoint::Endpoint;
use crate::error::{NetError, Result};
use crate::network::Network;
use crate::plugins::RemoteIpam;
use crate::store::{Op, Store};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

pub(super) const IPAM_GRANTS: &str = "ipam_grants";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Grant {
    /// The IPAM driver that granted it.
    pub ipam: String,
    pub pool_id: String,
    /// An address of the pool; none: the pool itself.
    pub address: Option<IpAddr>,
}

/// The journal's key of a grant: the plugin, the pool id, and the address in it.
pub(super) fn grant_key(ipam: &str, pool_id: &str, address: Option<IpAddr>) -> String {
    match address {
        Some(ip) => format!("{ipam}|{pool_id}|{ip}"),
        None => format!("{ipam}|{pool_id}"),
    }
}

impl Grant {
    fn key(&self) -> String {
        grant_key(&self.ipam, &self.pool_id, self.address)
    }
}

/// What a remote IPAM granted a network (its pools, gateways not from the pool's data, aux
/// addresses) or one of its endpoints: journaled again in the transaction that deletes the
/// record holding them, so a berthd that dies before ReleaseAddress/ReleasePool leaves them
/// to the next one; the release forgets them.
pub(super) fn grants_of(n: &Network, ep: Option<&Endpoint>) -> Vec<Grant> {
    let Some(ipam) = n.remote_ipam() else {
        return vec![];
    };
    let grant = |pool_id: &str, address| Grant {
        ipam: ipam.to_string(),
        pool_id: pool_id.to_string(),
        address,
    };
    if let Some(ep) = ep {
        let pools = pools_of(n);
        return ep
            .addrs()
            .into_iter()
            .filter_map(|ip| Some(grant(&pool_for(&pools, ip)?.id, Some(ip))))
            .collect();
    }
    let mut out = Vec::new();
    for s in &n.subnets {
        let Some(p) = &s.remote else { continue };
        if !p.gateway_from_data {
            out.push(grant(&p.id, Some(s.gateway)));
        }
        out.extend(s.aux.values().map(|ip| grant(&p.id, Some(*ip))));
        out.push(grant(&p.id, None));
    }
    out
}

/// The journal's entries of `grants`, keyed, for a transaction's ops.
pub(super) fn entries(grants: &[Grant]) -> Vec<(String, &Grant)> {
    grants.iter().map(|g| (g.key(), g)).collect()
}

/// Forgets journaled grants (given back, or held by a record now); no write when there is
/// none, as on every disconnect.
pub(super) fn forget_grants(store: &Store, keys: &[String]) {
    let held: Vec<&String> = keys
        .iter()
        .filter(|k| matches!(store.get::<Grant>(IPAM_GRANTS, k), Ok(Some(_))))
        .collect();
    if held.is_empty() {
        return;
    }
    let ops: Vec<Op<'_>> = held.iter().map(|k| Op::Delete(IPAM_GRANTS, k)).collect();
    if let Err(e) = store.commit(&ops) {
        tracing::warn!("forgetting IPAM grants {held:?}: {e}");
    }
}

impl Controller {
    /// Journals a grant the plugin just made (a durable write, off the async threads).
    pub(super) async fn journal_grant(&self, g: Grant) -> Result<()> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.put(IPAM_GRANTS, &g.key(), &g))
            .await
            .map_err(|e| NetError::internal(e.to_string()))?
            .map_err(|e| NetError::internal(format!("recording an IPAM grant: {e}")))
    }

    pub(super) fn forget_grants(&self, keys: &[String]) {
        forget_grants(&self.store, keys)
    }

    pub(super) fn journaled_grants(&self) -> Vec<Grant> {
        match self.store.list::<Grant>(IPAM_GRANTS) {
            Ok(l) => l.into_iter().map(|(_, g)| g).collect(),
            Err(e) => {
                tracing::error!("reading the IPAM grants: {e}");
                vec![]
            }
        }
    }

    /// Whether a network of that IPAM driver, or an endpoint on one, holds the grant.
    fn grant_held(&self, g: &Grant) -> bool {
        let st = self.lock();
        st.networks
            .values()
            .filter(|n| n.remote_ipam() == Some(g.ipam.as_str()))
            .any(|n| {
                let mut pools = n
                    .subnets
                    .iter()
                    .filter(|s| s.remote.as_ref().is_some_and(|p| p.id == g.pool_id))
                    .peekable();
                let Some(ip) = g.address else {
                    return pools.peek().is_some();
                };
                pools.any(|s| {
                    let from_data = s.remote.as_ref().is_some_and(|p| p.gateway_from_data);
                    (!from_data && s.gateway == ip) || s.aux.values().any(|a| *a == ip)
                }) || st.eps.on_network(&n.id).any(|e| e.ep.addrs().contains(&ip))
            })
    }

    /// At start (after the records are restored): releases the journaled grants no record
    /// holds, addresses before pools, and forgets them all.
    pub(super) async fn release_orphan_grants(&self) {
        let mut orphans: Vec<Grant> = Vec::new();
        let mut held: Vec<String> = Vec::new();
        for g in self.journaled_grants() {
            if self.grant_held(&g) {
                held.push(g.key());
            } else {
                orphans.push(g);
            }
        }
        self.forget_grants(&held);
        orphans.sort_by_key(|g| g.address.is_none());
        for g in orphans {
            let key = g.key();
            tracing::info!(
                "IPAM grant {key} of {} was never recorded (berthd died after the plugin's answer): releasing it",
                g.ipam
            );
            let released = match RemoteIpam::resolve(&self.plugins, &g.ipam).await {
                Ok(ipam) => match g.address {
                    Some(ip) => ipam.release_address(&g.pool_id, ip).await,
                    None => ipam.release_pool(&g.pool_id).await,
                },
                Err(e) => Err(e),
            };
            match released {
                Ok(()) => self.forget_grants(&[key]),
                // kept for the next start: the plugin may be back then
                Err(e) => tracing::warn!("releasing IPAM grant {key}: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_pool_and_the_address() {
        assert_eq!(grant_key("i", "p/10.0.0.0/24", None), "i|p/10.0.0.0/24");
        assert_eq!(
            grant_key("i", "p/10.0.0.0/24", Some("10.0.0.2".parse().unwrap())),
            "i|p/10.0.0.0/24|10.0.0.2"
        );
        let g = Grant {
            ipam: "i".into(),
            pool_id: "p".into(),
            address: None,
        };
        let back: Grant = serde_json::from_slice(&serde_json::to_vec(&g).unwrap()).unwrap();
        assert_eq!(back, g);
        assert_eq!(back.key(), "i|p");
    }
}
