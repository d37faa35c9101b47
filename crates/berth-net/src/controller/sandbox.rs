//! Sandboxes (a container's pinned network namespace), and bringing endpoints back after a
//! restart: what the store remembers is checked against the kernel, and whatever a crash or a
//! dead container left half-done is dropped.

use super::endpoint::{Change, SbOp, ENDPOINT_TAG};
use super::Controller;
use crate::endpoint::*;
use crate::error::{NetError, Result};
use crate::ipam::{prepare, AddressPool};
use crate::network::Network;
use crate::store::{Op, ENDPOINTS, NETWORKS, SANDBOXES};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

fn check_id(id: &str) -> Result<()> {
    if id.len() < 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NetError::invalid(format!("invalid container id {id:?}")));
    }
    Ok(())
}

impl Controller {
    /// Where the container's sandbox is (or would be) pinned: `SandboxKey` of inspect.
    pub fn sandbox_path(&self, container_id: &str) -> PathBuf {
        if let Some(sb) = self.lock().eps.sandboxes.get(container_id) {
            return sb.rec.path.clone();
        }
        let short = container_id.get(..12).unwrap_or(container_id);
        self.cfg.netns_dir.join(short)
    }

    /// The container's sandbox: a network namespace pinned at `<netns_dir>/<id[:12]>` with `lo`
    /// up. Idempotent.
    pub async fn sandbox_create(&self, container_id: &str) -> Result<PathBuf> {
        check_id(container_id)?;
        let cid = container_id;
        let path = self.cfg.netns_dir.join(&cid[..12]);
        {
            let mut st = self.lock();
            if let Some(sb) = st.eps.sandboxes.get(cid) {
                if sb.busy {
                    return Err(NetError::conflict(format!(
                        "the sandbox of container {cid} is being created or deleted"
                    )));
                }
                return Ok(sb.rec.path.clone());
            }
            if st.eps.sandboxes.values().any(|s| s.rec.path == path) {
                return Err(NetError::conflict(format!(
                    "sandbox {} is in use by another container",
                    path.display()
                )));
            }
            st.eps.sandboxes.insert(
                cid.to_string(),
                SandboxEntry {
                    rec: Sandbox {
                        container_id: cid.to_string(),
                        path: path.clone(),
                        owned: true,
                        next_if: 0,
                    },
                    eps: vec![],
                    busy: true,
                },
            );
        }
        // Recorded first: a crash before the namespace exists is cleaned up at the next start.
        let put = Change {
            sandbox: Some(SbOp::Put(cid)),
            ..Default::default()
        };
        if let Err(e) = self.commit_change(&put) {
            self.lock().eps.sandboxes.remove(cid);
            return Err(e);
        }
        crate::fail::point("sandbox-create/stored");
        // A file left by an earlier life whose record is gone would otherwise be mounted over.
        let _ = self.osl.delete_sandbox(&path);
        if let Err(e) = self.osl.create_sandbox(&path).await {
            self.lock().eps.sandboxes.remove(cid);
            let del = Change {
                sandbox: Some(SbOp::Delete(cid)),
                ..Default::default()
            };
            if let Err(se) = self.commit_change(&del) {
                tracing::error!("undoing sandbox {cid}: {se}");
            }
            return Err(e.into());
        }
        crate::fail::point("sandbox-create/netns");
        if let Some(sb) = self.lock().eps.sandboxes.get_mut(cid) {
            sb.busy = false;
        }
        Ok(path)
    }

    /// Leaves every network (addresses released, veths deleted) and unpins the namespace if
    /// `sandbox_create` made it. Idempotent; also for containers that died while the daemon
    /// was down.
    pub async fn sandbox_delete(self: &Arc<Self>, container_id: &str) -> Result<()> {
        let cid = container_id;
        let (rec, eps) = {
            let mut guard = self.lock();
            let reg = &mut guard.eps;
            let Some(sb) = reg.sandboxes.get_mut(cid) else {
                drop(guard);
                // nothing recorded; a stale pin of an earlier life may still be there
                if check_id(cid).is_ok() {
                    let _ = self
                        .osl
                        .delete_sandbox(&self.cfg.netns_dir.join(&cid[..12]));
                }
                return Ok(());
            };
            if sb.busy {
                return Err(NetError::conflict(format!(
                    "the sandbox of container {cid} is being created or deleted"
                )));
            }
            let ids = sb.eps.clone();
            let rec = sb.rec.clone();
            if ids.iter().any(|id| reg.eps[id].phase == Phase::Joining) {
                return Err(NetError::conflict(format!(
                    "container {cid} is being connected to a network"
                )));
            }
            reg.sandboxes.get_mut(cid).expect("present").busy = true;
            let mut eps = Vec::new();
            for id in ids {
                let e = reg.eps.get_mut(&id).expect("indexed");
                if e.phase == Phase::Live {
                    e.phase = Phase::Leaving;
                    eps.push(e.ep.clone());
                }
            }
            for ep in &eps {
                reg.drain(&ep.network_id, &ep.addrs());
            }
            (rec, eps)
        };
        let mut nets: Vec<&str> = eps.iter().map(|e| e.network_id.as_str()).collect();
        nets.sort();
        nets.dedup();
        let change = Change {
            delete: eps.iter().map(|e| e.id.as_str()).collect(),
            networks: nets,
            sandbox: Some(SbOp::Delete(cid)),
            ..Default::default()
        };
        if let Err(e) = self.commit_change(&change) {
            let mut st = self.lock();
            for ep in &eps {
                if let Some(x) = st.eps.eps.get_mut(&ep.id) {
                    x.phase = Phase::Live;
                }
                st.eps.undrain(&ep.network_id, &ep.addrs());
            }
            if let Some(sb) = st.eps.sandboxes.get_mut(cid) {
                sb.busy = false;
            }
            return Err(e);
        }
        crate::fail::point("sandbox-delete/stored");
        self.forget(eps, false).await;
        self.dns.stop(cid);
        crate::fail::point("sandbox-delete/dns-listener");
        self.lock().eps.sandboxes.remove(cid);
        if rec.owned {
            self.osl.delete_sandbox(&rec.path).map_err(|e| {
                NetError::internal(format!("deleting sandbox {}: {e}", rec.path.display()))
            })?;
        }
        crate::fail::point("sandbox-delete/netns");
        Ok(())
    }

    /// At start, after the networks: keeps the endpoints whose network exists, whose sandbox is
    /// still a namespace and whose veth carries its tag (set as the last step of a connect);
    /// drops the rest, deletes berth's veths nobody knows, and rebuilds the address pools from
    /// the endpoints kept, so nothing is handed out twice whatever a crash interrupted.
    /// Returns the endpoints dropped, for the plugins to hear of (`settle_plugins`).
    pub(super) async fn restore_endpoints(&self) -> Result<Vec<Endpoint>> {
        let sandboxes: Vec<(String, Sandbox)> = self.store.list(SANDBOXES)?;
        let records: Vec<(String, Endpoint)> = self.store.list(ENDPOINTS)?;
        let prefix = format!("{}{ENDPOINT_TAG}", self.alias_tag());
        let tagged: HashMap<String, String> = self
            .osl
            .links_with_alias(&prefix)
            .await?
            .into_iter()
            .map(|(name, alias)| (alias[prefix.len()..].to_string(), name))
            .collect();
        // overlay endpoints' host ends live in their network's namespace
        let mut tagged = tagged;
        let mut in_overlay: HashMap<String, (PathBuf, String)> = HashMap::new();
        let overlay_paths: Vec<PathBuf> = {
            let st = self.lock();
            st.networks
                .values()
                .filter(|n| n.overlay.is_some())
                .map(|n| {
                    self.cfg
                        .netns_dir
                        .join(crate::drivers::overlay::netns_name(&n.id))
                })
                .filter(|p| self.osl.sandbox_exists(p))
                .collect()
        };
        for p in overlay_paths {
            for (name, alias) in self.osl.links_with_alias_in(&p, &prefix).await? {
                let id = alias[prefix.len()..].to_string();
                tagged.insert(id.clone(), name.clone());
                in_overlay.insert(id, (p.clone(), name));
            }
        }
        let (alive, gone): (Vec<Sandbox>, Vec<Sandbox>) = sandboxes
            .into_iter()
            .map(|(_, s)| s)
            .partition(|s| self.osl.sandbox_exists(&s.path));
        let alive_ids: HashSet<&str> = alive.iter().map(|s| s.container_id.as_str()).collect();
        // a plugin's interface is tagged inside its sandbox, as the last step of its join
        let plugin_sandboxes: HashSet<PathBuf> = {
            let st = self.lock();
            records
                .iter()
                .filter(|(_, e)| alive_ids.contains(e.container_id.as_str()))
                .filter(|(_, e)| {
                    st.networks
                        .get(&e.network_id)
                        .is_some_and(|n| n.plugin().is_some())
                })
                .map(|(_, e)| e.sandbox.clone())
                .collect()
        };
        let mut adopted: HashSet<String> = HashSet::new();
        for p in &plugin_sandboxes {
            for (_, alias) in self.osl.links_with_alias_in(p, &prefix).await? {
                adopted.insert(alias[prefix.len()..].to_string());
            }
        }
        let (mut keep, dropped): (Vec<Endpoint>, Vec<Endpoint>) = {
            let st = self.lock();
            records.into_iter().map(|(_, e)| e).partition(|e| {
                // a plugin's interface carries no tag of berth's: its sandbox must be alive
                let plugin = st
                    .networks
                    .get(&e.network_id)
                    .is_some_and(|n| n.plugin().is_some());
                st.networks.contains_key(&e.network_id)
                    && alive_ids.contains(e.container_id.as_str())
                    && ((plugin && !e.pending && adopted.contains(&e.id))
                        || tagged.get(&e.id) == Some(&e.host_if))
            })
        };
        keep.sort_by_key(|e| e.seq);
        for e in &dropped {
            tracing::info!(
                "dropping endpoint {} of container {}: its sandbox, network or veth is gone",
                e.id,
                e.container_id
            );
        }

        let changed: Vec<Network> = {
            let mut st = self.lock();
            let mut by_net: HashMap<&str, Vec<IpAddr>> = HashMap::new();
            for e in &keep {
                by_net.entry(&e.network_id).or_default().extend(e.addrs());
            }
            st.networks
                .values_mut()
                .filter_map(|n| {
                    let addrs = by_net.get(n.id.as_str()).map_or(&[][..], |v| &v[..]);
                    // global networks' pools are not stored locally
                    (rederive(n, addrs) && n.overlay.is_none()).then(|| n.clone())
                })
                .collect()
        };
        let mut ops = Vec::new();
        for e in &dropped {
            ops.push(Op::Delete(ENDPOINTS, &e.id));
        }
        for s in &gone {
            ops.push(Op::Delete(SANDBOXES, &s.container_id));
        }
        for n in &changed {
            ops.push(Op::put(NETWORKS, &n.id, n)?);
        }
        if !ops.is_empty() {
            self.store.commit(&ops)?;
            crate::fail::point("repair/endpoints-stored");
        }

        // A veth that cannot be deleted now is retried at the next start (it stays tagged or
        // named by no record); not worth refusing to start over.
        let known: HashSet<&str> = keep.iter().map(|e| e.id.as_str()).collect();
        for (id, (ns, name)) in &in_overlay {
            if !known.contains(id.as_str()) {
                if let Err(e) = self.osl.delete_link_in(ns, name).await {
                    tracing::warn!("removing orphan veth {name}: {e}");
                }
            }
        }
        let orphans = tagged
            .iter()
            .filter(|(id, _)| !known.contains(id.as_str()) && !in_overlay.contains_key(*id));
        // dropped endpoints' veths include untagged ones of a connect that crashed half-way
        let names = dropped
            .iter()
            .filter(|e| e.host_netns.is_none())
            .map(|e| &e.host_if)
            .chain(orphans.map(|(_, n)| n));
        for name in names {
            match self.osl.delete_link(name).await {
                Ok(()) => crate::fail::point("repair/orphan-veth"),
                Err(e) => tracing::warn!("removing orphan veth {name}: {e}"),
            }
        }
        // a plugin's interface moved in by a join that did not complete
        let half_joined = dropped.iter().filter(|e| {
            plugin_sandboxes.contains(&e.sandbox)
                && !keep
                    .iter()
                    .any(|k| k.sandbox == e.sandbox && k.ifname == e.ifname)
        });
        for e in half_joined {
            if let Err(err) = self.osl.delete_link_in(&e.sandbox, &e.ifname).await {
                tracing::warn!("removing {} from {}: {err}", e.ifname, e.sandbox.display());
            }
        }
        for s in gone.iter().filter(|s| s.owned) {
            if let Err(e) = self.osl.delete_sandbox(&s.path) {
                tracing::warn!("removing stale sandbox file {}: {e}", s.path.display());
            }
        }

        let mut st = self.lock();
        for s in alive {
            st.eps.sandboxes.insert(
                s.container_id.clone(),
                SandboxEntry {
                    rec: s,
                    eps: vec![],
                    busy: false,
                },
            );
        }
        let mut serve = Vec::new();
        for e in keep {
            self.add_names(&st, &e);
            if st
                .networks
                .get(&e.network_id)
                .is_some_and(|n| !n.predefined)
            {
                serve.push((e.container_id.clone(), e.sandbox.clone()));
            }
            st.eps.insert(e, Phase::Live, false);
        }
        let cids: Vec<String> = st.eps.sandboxes.keys().cloned().collect();
        for cid in cids {
            if let Some(id) = st.eps.route_carrier(&cid).map(|e| e.ep.id.clone()) {
                st.eps.eps.get_mut(&id).expect("present").routed = true;
            }
        }
        drop(st);
        for (cid, netns) in serve {
            if let Err(e) = self.dns.resume(&cid, &netns) {
                tracing::error!("embedded DNS for container {cid}: {e}");
            }
        }
        Ok(dropped)
    }
}

/// Makes the network's pools hold exactly its gateway, aux addresses and `addrs`. The stored
/// pool (with its next-after-last cursor) is kept when it only lacks some of them; one that
/// holds an address nobody owns (a crash between allocation and record) is rebuilt.
fn rederive(n: &mut Network, addrs: &[IpAddr]) -> bool {
    let mut changed = false;
    for s in &mut n.subnets {
        let mut fresh = AddressPool::new(s.pool.subnet, s.pool.range);
        let _ = prepare(&mut fresh, Some(s.gateway), &s.aux);
        let mine: Vec<IpAddr> = addrs
            .iter()
            .copied()
            .filter(|ip| s.pool.contains(*ip))
            .collect();
        for ip in &mine {
            let _ = fresh.reserve(*ip);
        }
        let wanted = mine
            .iter()
            .copied()
            .chain(std::iter::once(s.gateway))
            .chain(s.aux.values().copied());
        for ip in wanted {
            if fresh.is_allocated(ip) && !s.pool.is_allocated(ip) {
                let _ = s.pool.reserve(ip);
                changed = true;
            }
        }
        if s.pool.allocated_count() != fresh.allocated_count() {
            tracing::info!(
                "network {}: rebuilding the address pool of {}",
                n.name,
                s.pool.subnet
            );
            s.pool = fresh;
            changed = true;
        }
    }
    changed
}
