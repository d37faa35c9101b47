//! This host as a member of the cluster: joining the store, applying every change the watch
//! reports (global networks, other hosts' endpoints as DNS names and VXLAN peers, address
//! claims), publishing its own endpoints again on a new lease, and adopting its overlay data
//! paths after a restart. Everything here converges toward the store's state; nothing depends
//! on seeing every event.

use super::overlay::take_ip;
use super::Controller;
use crate::cluster::config::Advertise;
use crate::cluster::records::{self as rec, EndpointRec, IpRec, Key, Value};
use crate::cluster::{Cluster, ClusterConfig, ClusterStore, Etcd, Event};
use crate::drivers::overlay as ov;
use crate::endpoint::{release, Phase};
use crate::error::{NetError, Result};
use crate::network::{new_id, Network};
use crate::resolver::names::EpNames;
use crate::store::META;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const HOST_ID: &str = "cluster_host_id";

/// What one batch of changes leaves to do: networks whose peers to reprogram, then names to
/// add (after the peers, so a name never answers before its address is reachable).
#[derive(Default)]
struct Batch {
    networks: BTreeSet<String>,
    names: Vec<EpNames>,
    /// The host records changed: plugins hear of it (plugin_cluster.rs).
    hosts: bool,
}

fn names_of(r: &EndpointRec, n: &Network) -> EpNames {
    EpNames {
        endpoint_id: r.id.clone(),
        container_id: r.container_id.clone(),
        network_id: r.network_id.clone(),
        network_name: n.name.clone(),
        internal: n.internal,
        names: std::iter::once(&r.container_name)
            .chain(&r.aliases)
            .filter(|n| !n.is_empty())
            .cloned()
            .collect(),
        // links are private to the linking container, answered on its own host
        links: vec![],
        v4: r.ipv4.and_then(|n| match n.addr() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }),
        v6: r.ipv6.and_then(|n| match n.addr() {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }),
    }
}

fn parse_claim(key: &str, v: Option<&[u8]>) -> Option<(String, IpAddr, Option<IpRec>)> {
    let (nid, ip) = key.strip_prefix("ipam/")?.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let owner = match v {
        Some(v) if v.len() <= rec::MAX_VALUE => Some(serde_json::from_slice(v).ok()?),
        Some(_) => return None,
        None => None,
    };
    Some((nid.to_string(), ip, owner))
}

impl Controller {
    pub(super) async fn join_cluster(self: &Arc<Self>, cfg: ClusterConfig) -> Result<()> {
        let vtep = match &cfg.advertise {
            Advertise::Addr(ip, _) => *ip,
            Advertise::Iface(name, _) => self.osl.interface_addr(name).await?.ok_or_else(|| {
                NetError::invalid(format!(
                    "--cluster-advertise {}: interface {name} has no IPv4 address",
                    cfg.advertise_str
                ))
            })?,
        };
        let host_id = match self.store.get::<String>(META, HOST_ID)? {
            Some(h) => h,
            None => {
                let h = new_id();
                self.store.put(META, HOST_ID, &h)?;
                h
            }
        };
        let etcd = Etcd::connect(&cfg).await?;
        let cluster = Arc::new(Cluster::new(cfg, etcd, host_id, vtep));
        let _ = self.cluster.set(cluster.clone());
        let (tx, rx) = unbounded_channel();
        self.start_discovery();
        cluster.spawn(tx);
        tokio::spawn(Arc::clone(self).cluster_events(rx));
        Ok(())
    }

    /// `(store URL, advertise)` for `info`.
    pub fn cluster_info(&self) -> Option<(String, String)> {
        self.cluster
            .get()
            .map(|c| (c.cfg.url.clone(), c.cfg.advertise_str.clone()))
    }

    /// Applies the store's changes in batches: a burst of endpoints costs one peer
    /// reconciliation per network.
    async fn cluster_events(self: Arc<Self>, mut rx: UnboundedReceiver<Event>) {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while let Ok(e) = rx.try_recv() {
                batch.push(e);
            }
            let mut dirty = Batch::default();
            let mut rejoined = false;
            let mut reset = false;
            for e in batch {
                match e {
                    Event::Reset(kvs) => {
                        self.apply_reset(kvs, &mut dirty);
                        reset = true;
                    }
                    Event::Put(k, v) => self.apply_put(&k, &v, &mut dirty),
                    Event::Delete(k) => self.apply_delete(&k, &mut dirty),
                    Event::Rejoined => rejoined = true,
                }
            }
            if rejoined {
                self.republish().await;
            }
            if reset {
                self.tidy().await;
            }
            // peers first: a name must never answer before its address is reachable
            for nid in &dirty.networks {
                self.sync_peers(nid).await;
            }
            for n in dirty.names {
                self.dns.add(n);
            }
            if dirty.hosts {
                let hosts = self.lock().hosts.values().copied().collect();
                self.hosts_changed(hosts);
            }
        }
    }

    fn me(&self) -> String {
        self.cluster
            .get()
            .map(|c| c.host_id.clone())
            .unwrap_or_default()
    }

    fn apply_put(&self, key: &str, v: &[u8], dirty: &mut Batch) {
        let k = rec::parse_key(key);
        if k == Key::Other {
            if let Some((nid, ip, Some(owner))) = parse_claim(key, Some(v)) {
                let mut st = self.lock();
                if let Some(n) = st.networks.get_mut(&nid) {
                    take_ip(n, ip);
                }
                st.claims.entry(nid).or_default().insert(ip, owner);
            }
            return;
        }
        match rec::parse_value(&k, v) {
            Ok(Value::Network(n)) => self.adopt_global(*n),
            Ok(Value::Endpoint(r)) => self.add_remote(r, dirty),
            Ok(Value::Host(h, r)) => {
                self.lock().hosts.insert(h, r.vtep);
                dirty.hosts = true;
            }
            Err(e) => tracing::warn!("ignoring cluster store value {key}: {e}"),
        }
    }

    fn add_remote(&self, r: EndpointRec, dirty: &mut Batch) {
        let me = self.me();
        let mut st = self.lock();
        if r.host == me {
            st.published.insert((r.network_id.clone(), r.id.clone()));
            return;
        }
        let Some(n) = st.networks.get(&r.network_id) else {
            return;
        };
        if st.remote.get(&r.id) == Some(&r) {
            return;
        }
        self.dns.remove(&r.id);
        dirty.names.push(names_of(&r, n));
        dirty.networks.insert(r.network_id.clone());
        st.remote.insert(r.id.clone(), r);
    }

    fn apply_delete(&self, key: &str, dirty: &mut Batch) {
        match rec::parse_key(key) {
            Key::Network(nid) => self.forget_global(&nid),
            Key::Endpoint { network, id } => {
                let mut st = self.lock();
                st.published.remove(&(network.clone(), id.clone()));
                if st.remote.remove(&id).is_some() {
                    self.dns.remove(&id);
                    dirty.networks.insert(network);
                }
            }
            Key::Host(h) => {
                // gone with its lease (expired or revoked) or removed
                self.lock().hosts.remove(&h);
                dirty.hosts = true;
            }
            Key::Other => {
                if let Some((nid, ip, _)) = parse_claim(key, None) {
                    let mut st = self.lock();
                    if let Some(c) = st.claims.get_mut(&nid) {
                        c.remove(&ip);
                    }
                    self.free_in_view(&mut st, &nid, ip);
                }
            }
        }
    }

    /// An address the cluster no longer holds becomes free in this host's view, unless one of
    /// this host's endpoints still has it.
    fn free_in_view(&self, st: &mut super::State, nid: &str, ip: IpAddr) {
        let held = st.eps.on_network(nid).any(|e| e.ep.addrs().contains(&ip))
            || st.eps.draining.get(nid).is_some_and(|d| d.contains(&ip));
        if held {
            return;
        }
        if let Some(n) = st.networks.get_mut(nid) {
            release(n, ip);
        }
    }

    /// A full snapshot: the view is replaced by it, whatever was missed before.
    fn apply_reset(&self, kvs: Vec<(String, Vec<u8>)>, dirty: &mut Batch) {
        let me = self.me();
        let mut nets = Vec::new();
        let mut eps = Vec::new();
        let mut hosts = BTreeMap::new();
        let mut claims: HashMap<String, BTreeMap<IpAddr, IpRec>> = HashMap::new();
        for (k, v) in &kvs {
            let key = rec::parse_key(k);
            if key == Key::Other {
                if let Some((nid, ip, Some(owner))) = parse_claim(k, Some(v)) {
                    claims.entry(nid).or_default().insert(ip, owner);
                }
                continue;
            }
            match rec::parse_value(&key, v) {
                Ok(Value::Network(n)) => nets.push(*n),
                Ok(Value::Endpoint(r)) => eps.push(r),
                Ok(Value::Host(h, r)) => {
                    hosts.insert(h, r.vtep);
                }
                Err(e) => tracing::warn!("ignoring cluster store value {k}: {e}"),
            }
        }
        let ids: HashSet<String> = nets.iter().map(|n| n.id.clone()).collect();
        let gone: Vec<String> = self
            .lock()
            .networks
            .values()
            .filter(|n| n.is_global() && !ids.contains(&n.id))
            .map(|n| n.id.clone())
            .collect();
        for nid in gone {
            self.forget_global(&nid);
        }
        for n in nets {
            self.adopt_global(n);
        }
        let mut st = self.lock();
        st.hosts = hosts;
        dirty.hosts = true;
        // claims: the view's pools follow the store's
        let old = std::mem::replace(&mut st.claims, claims.clone());
        for (nid, ips) in &old {
            for ip in ips.keys() {
                if !claims.get(nid).is_some_and(|c| c.contains_key(ip)) {
                    self.free_in_view(&mut st, nid, *ip);
                }
            }
        }
        for (nid, ips) in &claims {
            if let Some(n) = st.networks.get_mut(nid) {
                for ip in ips.keys() {
                    take_ip(n, *ip);
                }
            }
        }
        st.published = eps
            .iter()
            .filter(|r| r.host == me)
            .map(|r| (r.network_id.clone(), r.id.clone()))
            .collect();
        let fresh: HashMap<String, EndpointRec> = eps
            .into_iter()
            .filter(|r| r.host != me && st.networks.contains_key(&r.network_id))
            .map(|r| (r.id.clone(), r))
            .collect();
        let stale: Vec<(String, String)> = st
            .remote
            .iter()
            .filter(|(id, r)| fresh.get(*id) != Some(r))
            .map(|(id, r)| (id.clone(), r.network_id.clone()))
            .collect();
        for (id, nid) in stale {
            st.remote.remove(&id);
            self.dns.remove(&id);
            dirty.networks.insert(nid);
        }
        for (id, r) in fresh {
            if st.remote.contains_key(&id) {
                continue;
            }
            if let Some(n) = st.networks.get(&r.network_id) {
                dirty.names.push(names_of(&r, n));
            }
            dirty.networks.insert(r.network_id.clone());
            st.remote.insert(id, r);
        }
        // a path built while the view was empty gets its peers now
        dirty.networks.extend(st.overlays.keys().cloned());
    }

    /// This host's endpoints, published again on its (new) lease.
    async fn republish(&self) {
        let Some(cluster) = self.cluster.get().cloned() else {
            return;
        };
        let Ok(lease) = cluster.lease() else { return };
        let recs: Vec<EndpointRec> = {
            let st = self.lock();
            st.eps
                .eps
                .values()
                .filter(|e| {
                    e.phase == Phase::Live
                        && st
                            .networks
                            .get(&e.ep.network_id)
                            .is_some_and(Network::is_global)
                })
                .map(|e| self.record_of(&cluster, &e.ep))
                .collect()
        };
        for r in &recs {
            if let Err(e) = cluster.store.put_endpoint(r, lease).await {
                tracing::warn!("publishing endpoint {}: {e}", r.id);
            }
        }
        if !recs.is_empty() {
            tracing::info!("published {} endpoints on the new lease", recs.len());
        }
    }

    /// Removes what the store holds for this host but the host no longer has (an endpoint
    /// that left while the store was unreachable, or before a crash).
    async fn tidy(&self) {
        let Some(cluster) = self.cluster.get().cloned() else {
            return;
        };
        let (eps, ips) = {
            let st = self.lock();
            let local: HashSet<&str> = st.eps.eps.keys().map(String::as_str).collect();
            let eps: Vec<(String, String)> = st
                .published
                .iter()
                .filter(|(_, id)| !local.contains(id.as_str()))
                .cloned()
                .collect();
            let ips: Vec<(String, IpAddr)> = st
                .claims
                .iter()
                .flat_map(|(nid, c)| c.iter().map(move |(ip, o)| (nid, ip, o)))
                .filter(|(_, _, o)| {
                    o.host == cluster.host_id && !local.contains(o.endpoint.as_str())
                })
                .map(|(nid, ip, _)| (nid.clone(), *ip))
                .collect();
            (eps, ips)
        };
        for (nid, id) in eps {
            tracing::info!("removing stale endpoint {id} of this host from the cluster store");
            let _ = cluster.store.delete_endpoint(&nid, &id).await;
        }
        for (nid, ip) in ips {
            tracing::info!("releasing stale address {ip} of this host in network {nid}");
            let _ = cluster.store.release_ips(&nid, &[ip]).await;
        }
    }

    /// After a restart: overlay namespaces with endpoints are adopted as they are (traffic
    /// never stopped); the others, and any berth did not make, are removed.
    pub(super) async fn restore_overlays(&self) {
        let mut keep = HashSet::new();
        {
            let mut st = self.lock();
            let nids: Vec<String> = st
                .networks
                .values()
                .filter(|n| n.overlay.is_some())
                .map(|n| n.id.clone())
                .collect();
            for nid in nids {
                let p = self.cfg.netns_dir.join(ov::netns_name(&nid));
                if st.eps.has_endpoints(&nid) && self.osl.sandbox_exists(&p) {
                    keep.insert(p.clone());
                    st.overlays.insert(nid, p);
                }
            }
        }
        let Ok(dir) = std::fs::read_dir(&self.cfg.netns_dir) else {
            return;
        };
        for e in dir.flatten() {
            let p = e.path();
            let is_ovl = e.file_name().to_string_lossy().starts_with("ovl-");
            if is_ovl && !keep.contains(&p) {
                tracing::info!("removing unused overlay namespace {}", p.display());
                self.osl.overlay_down(&p);
            }
        }
    }
}
