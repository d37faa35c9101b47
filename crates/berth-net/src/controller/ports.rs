//! Publishing a container's ports on its first non-internal network (Docker's rule: port
//! mappings belong to the sandbox, and internal networks get none), and taking them back.
//!
//! Order of a publish: host ports chosen and held (sockets), the record stored, then the
//! firewall elements (one transaction), then the proxy for what the kernel cannot translate.
//! Any failure undoes the steps before it. An unpublish removes the elements before it frees
//! the ports, so a port is never handed to another container while its old element is still
//! there.

use super::Controller;
use crate::error::{NetError, Result};
use crate::firewall::ports::{elements, self_element, Elem, FwPorts};
use crate::portmap::alloc::Allocator;
use crate::portmap::assign::{assign, hold, release, HOLD_INLINE};
use crate::portmap::host::{Held, HostPorts, Relay};
use crate::portmap::runs::{coalesce, Binding, Run};
use crate::portmap::Want;
use crate::store::PORTS;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A container's published ports, as stored (table `ports`, key: container id) before the
/// firewall is touched, so the next start knows every element a crash may have left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publication {
    pub container_id: String,
    /// The endpoint whose addresses the ports lead to.
    pub endpoint_id: String,
    pub bridge: String,
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
    pub runs: Vec<Run>,
}

impl Publication {
    /// The container address an IPv4 or IPv6 host binding leads to, if the kernel can take
    /// it there (same family).
    fn nat_target(&self, host_ip: IpAddr) -> Option<IpAddr> {
        if host_ip.is_ipv4() {
            self.ipv4
        } else {
            self.ipv6
        }
    }

    /// What the firewall holds for this publication.
    pub fn elements(&self) -> Vec<Elem> {
        let mut out = Vec::new();
        let mut selves = std::collections::BTreeSet::new();
        for r in &self.runs {
            let Some(to) = self.nat_target(r.host_ip) else {
                continue;
            };
            selves.insert(to);
            let p = FwPorts {
                proto: r.proto.as_str(),
                host_ip: r.host_ip,
                host_port: r.host_port,
                count: r.count,
                to,
                to_port: r.container_port,
            };
            match elements(&p) {
                Ok(e) => out.extend(e),
                Err(e) => tracing::error!("published run {r:?}: {e}"),
            }
        }
        out.extend(selves.into_iter().map(self_element));
        out
    }

    /// Where berthd's proxy relays a binding, when the kernel cannot: IPv6 loopback (`::1`,
    /// also reached through `::`), and any IPv6 binding of a container without IPv6.
    fn relay_target(&self, b: &Binding) -> Option<SocketAddr> {
        let IpAddr::V6(h) = b.host_ip else {
            return None;
        };
        if b.proto == crate::portmap::Proto::Sctp {
            return None; // the proxy speaks TCP and UDP
        }
        let via_loopback = h.is_unspecified() || h == Ipv6Addr::LOCALHOST;
        let to = match self.ipv6 {
            Some(v6) if via_loopback => v6,
            Some(_) => return None,
            None => self.ipv4?,
        };
        Some(SocketAddr::new(to, b.container_port))
    }
}

/// Published ports in memory: berth's allocations, and per container what it holds.
#[derive(Default)]
pub(crate) struct PortState {
    alloc: Allocator,
    live: HashMap<String, Live>,
}

struct Live {
    publication: Publication,
    /// The sockets holding the host ports (those the proxy serves are the proxy's).
    held: Arc<Mutex<Vec<Held>>>,
    /// Set to stop a background holder (`holder`) early.
    cancel: Arc<AtomicBool>,
    holder: Option<std::thread::JoinHandle<()>>,
}

impl Live {
    fn new(publication: Publication, held: Vec<Held>) -> Live {
        Live {
            publication,
            held: Arc::new(Mutex::new(held)),
            cancel: Arc::default(),
            holder: None,
        }
    }
}

/// The endpoint that carries a container's ports.
struct Carrier {
    endpoint_id: String,
    /// The endpoint's veth on the bridge.
    host_if: String,
    name: String,
    bridge: String,
    ipv4: Option<IpAddr>,
    ipv6: Option<IpAddr>,
    /// `com.docker.network.bridge.host_binding_ipv4`.
    host_binding: Option<IpAddr>,
}

impl Carrier {
    /// Host addresses of a binding without `HostIp`: the network's default binding address
    /// (`0.0.0.0`), and `::` when the container has IPv6 (Docker 28 lists both; for an
    /// IPv4-only container it adds `::` only through its userland proxy, which berth does not
    /// run for every port).
    fn defaults(&self) -> Vec<IpAddr> {
        let v4 = self
            .host_binding
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let mut out = vec![v4];
        if self.ipv6.is_some() && v4 == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
            out.push(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        }
        out
    }

    fn error(&self, e: impl std::fmt::Display) -> NetError {
        NetError::internal(format!(
            "driver failed programming external connectivity on endpoint {} ({}): {e}",
            self.name, self.endpoint_id
        ))
    }
}

impl Controller {
    fn ports_lock(&self) -> std::sync::MutexGuard<'_, PortState> {
        self.ports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The container's first live endpoint (attach order) on a network that is not internal.
    fn carrier(&self, container_id: &str) -> Option<Carrier> {
        let st = self.lock();
        st.eps
            .of_container(container_id)
            .into_iter()
            .filter(|e| e.phase == crate::endpoint::Phase::Live)
            .find_map(|e| {
                let n = st.networks.get(&e.ep.network_id)?;
                let b = n.bridge.as_ref()?;
                (!n.internal).then(|| Carrier {
                    endpoint_id: e.ep.id.clone(),
                    host_if: e.ep.host_if.clone(),
                    name: e.ep.container_name.clone(),
                    bridge: b.name.clone(),
                    ipv4: e.ep.ipv4.map(|n| n.addr()),
                    ipv6: e.ep.ipv6.map(|n| n.addr()),
                    host_binding: b.host_binding_ipv4,
                })
            })
    }

    /// Publishes the container's ports; the runs made (none when it has no network that
    /// can carry them). All or nothing.
    pub async fn publish(&self, container_id: &str, wants: &[Want]) -> Result<Vec<Run>> {
        // a plugin's gateway endpoint: the ports go to the plugin (controller/external.rs)
        if let Some(r) = self.program_plugin_gateway(container_id, wants).await {
            return r.map(|()| vec![]);
        }
        if wants.is_empty() {
            return Ok(vec![]);
        }
        let Some(c) = self.carrier(container_id) else {
            return Ok(vec![]);
        };
        if let Some(l) = self.ports_lock().live.get(container_id) {
            return Ok(l.publication.runs.clone());
        }
        let defaults: Vec<IpAddr> = c
            .defaults()
            .into_iter()
            .filter(|ip| c.ipv4.is_some() || ip.is_ipv6())
            .collect();
        let ephemeral = self.host.ephemeral();
        let t0 = std::time::Instant::now();
        // Choosing among thousands of ports, and holding them: off the async threads.
        let (ports, host) = (self.ports.clone(), self.host.clone());
        let wants = wants.to_vec();
        let (bindings, known) = tokio::task::spawn_blocking(move || {
            let mut st = ports.lock().unwrap_or_else(|p| p.into_inner());
            assign(&mut st.alloc, &*host, &wants, &defaults, ephemeral)
        })
        .await
        .map_err(|e| NetError::internal(e.to_string()))?
        .map_err(|e| c.error(e))?;
        let t_assigned = t0.elapsed();
        // Held now: everything, or (background holding) one port per host address, so that
        // an address the host does not have fails the start.
        let inline = !known || bindings.len() <= HOLD_INLINE;
        let (now, later): (Vec<Binding>, Vec<Binding>) = if inline {
            (bindings.clone(), vec![])
        } else {
            let mut seen = std::collections::HashSet::new();
            bindings.iter().partition(|b| seen.insert(b.host_ip))
        };
        let host = self.host.clone();
        let held = tokio::task::spawn_blocking(move || hold(&*host, &now))
            .await
            .map_err(|e| NetError::internal(e.to_string()))?;
        let held = match held {
            Ok(h) => h,
            Err(e) => {
                release(&mut self.ports_lock().alloc, &bindings);
                return Err(c.error(e));
            }
        };
        let t_held = t0.elapsed();
        let publication = Publication {
            container_id: container_id.to_string(),
            endpoint_id: c.endpoint_id.clone(),
            bridge: c.bridge.clone(),
            ipv4: c.ipv4,
            ipv6: c.ipv6,
            runs: coalesce(&bindings),
        };
        let (relays, kept) = split_relays(&publication, held);
        let live = Live::new(publication.clone(), kept);
        let shared = (live.held.clone(), live.cancel.clone());
        self.ports_lock()
            .live
            .insert(container_id.to_string(), live);
        if let Err(e) = self.program(&publication, relays).await {
            self.forget_ports(container_id).await;
            return Err(c.error(e));
        }
        if !later.is_empty() {
            let h = hold_later(self.host.clone(), publication.clone(), later, shared);
            if let Some(l) = self.ports_lock().live.get_mut(container_id) {
                l.holder = Some(h);
            }
        }
        if let Err(e) = self.osl.set_hairpin(&c.host_if).await {
            tracing::warn!("container {container_id}: {e}");
        }
        tracing::debug!(
            "container {}: {} host ports published in {:?} (chosen in {t_assigned:?}, {} held in {t_held:?})",
            &container_id[..12.min(container_id.len())],
            bindings.len(),
            t0.elapsed(),
            if inline { "all" } else { "one per address" },
        );
        Ok(publication.runs)
    }

    /// Store, `route_localnet`, firewall, proxy; each failure undoes the steps before.
    async fn program(&self, p: &Publication, relays: Vec<Relay>) -> Result<()> {
        self.store.put(PORTS, &p.container_id, p)?;
        crate::fail::point("publish/stored");
        if let Err(e) = self.host.route_localnet(&p.bridge) {
            tracing::warn!("route_localnet on {}: {e}", p.bridge);
        }
        let elems = p.elements();
        let fw = self.fw.clone();
        let add = elems.clone();
        let r = tokio::task::spawn_blocking(move || fw.publish(&add))
            .await
            .map_err(|e| NetError::internal(e.to_string()))?;
        if let Err(e) = r {
            let _ = self.store.delete(PORTS, &p.container_id);
            return Err(e.into());
        }
        crate::fail::point("publish/nft");
        if relays.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.host.proxy(&p.container_id, relays) {
            let _ = self.fw.unpublish(&elems);
            let _ = self.store.delete(PORTS, &p.container_id);
            return Err(NetError::internal(format!("proxy: {e}")));
        }
        Ok(())
    }

    /// Closes the container's host ports (stopping a background holder first), then frees
    /// them in memory: in that order, a port is never free in berth's books while its socket
    /// is still open.
    async fn forget_ports(&self, container_id: &str) {
        let live = self.ports_lock().live.remove(container_id);
        self.host.unproxy(container_id);
        let Some(mut live) = live else { return };
        live.cancel.store(true, Ordering::SeqCst);
        let runs = live.publication.runs.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(h) = live.holder.take() {
                let _ = h.join();
            }
            drop(live);
        })
        .await;
        let mut st = self.ports_lock();
        for r in &runs {
            st.alloc.release_run(r);
        }
    }

    /// Takes the container's published ports back: elements, proxy, record, host ports.
    /// Nothing published is fine.
    pub async fn unpublish(&self, container_id: &str) {
        let Some(p) = self
            .ports_lock()
            .live
            .get(container_id)
            .map(|l| l.publication.clone())
        else {
            return;
        };
        let fw = self.fw.clone();
        let elems = p.elements();
        match tokio::task::spawn_blocking(move || fw.unpublish(&elems)).await {
            Ok(Ok(())) => {}
            // the next start resets the maps from the records
            Ok(Err(e)) => tracing::error!("unpublishing {}: {e}", p.container_id),
            Err(e) => tracing::error!("unpublishing {}: {e}", p.container_id),
        }
        crate::fail::point("unpublish/nft");
        if let Err(e) = self.store.delete(PORTS, container_id) {
            tracing::error!("forgetting the ports of {container_id}: {e}");
        }
        crate::fail::point("unpublish/stored");
        self.forget_ports(container_id).await;
    }

    /// Before the container leaves network `network_id`: its ports go with the endpoint that
    /// carries them (Docker's rule; they are not moved to another network).
    pub async fn unpublish_on(&self, container_id: &str, network_id: &str) {
        let carried = {
            let endpoint = self
                .ports_lock()
                .live
                .get(container_id)
                .map(|l| l.publication.endpoint_id.clone());
            let st = self.lock();
            endpoint
                .and_then(|id| st.eps.eps.get(&id).map(|e| e.ep.network_id == network_id))
                .unwrap_or(false)
        };
        if carried {
            self.unpublish(container_id).await;
        }
    }

    /// The container's published runs (empty when it publishes nothing or is stopped).
    pub fn published(&self, container_id: &str) -> Vec<Run> {
        self.ports_lock()
            .live
            .get(container_id)
            .map(|l| l.publication.runs.clone())
            .unwrap_or_default()
    }

    /// At start, after the endpoints: publications whose endpoint lives on are held again
    /// and their elements kept; the others are dropped; the maps end up holding exactly the
    /// kept ones (one transaction, whatever a crash left).
    pub(super) fn restore_ports(&self) -> Result<()> {
        let records: Vec<(String, Publication)> = self.store.list(PORTS)?;
        let (keep, drop): (Vec<Publication>, Vec<Publication>) = {
            let st = self.lock();
            records.into_iter().map(|(_, p)| p).partition(|p| {
                st.eps.eps.get(&p.endpoint_id).is_some_and(|e| {
                    e.phase == crate::endpoint::Phase::Live && e.ep.container_id == p.container_id
                })
            })
        };
        let mut elems = Vec::new();
        for p in &keep {
            elems.extend(p.elements());
            let mut held = Vec::new();
            {
                let mut st = self.ports_lock();
                for r in &p.runs {
                    st.alloc.take_run(r);
                    for (h, c) in r.pairs() {
                        let b = Binding {
                            proto: r.proto,
                            host_ip: r.host_ip,
                            host_port: h,
                            container_port: c,
                        };
                        match self.host.hold(r.proto, r.host_ip, h) {
                            Ok(x) => held.push((b, x)),
                            // The element still sends the traffic to the container; only
                            // the reservation is lost.
                            Err(e) => tracing::warn!(
                                "container {}: cannot hold {}/{} again: {e}",
                                p.container_id,
                                crate::portmap::join_host_port(r.host_ip, h),
                                r.proto.as_str()
                            ),
                        }
                    }
                }
            }
            let (relays, kept) = split_relays(p, held);
            if let Err(e) = self.host.proxy(&p.container_id, relays) {
                tracing::warn!("container {}: proxy: {e}", p.container_id);
            }
            if let Err(e) = self.host.route_localnet(&p.bridge) {
                tracing::warn!("route_localnet on {}: {e}", p.bridge);
            }
            self.ports_lock()
                .live
                .insert(p.container_id.clone(), Live::new(p.clone(), kept));
        }
        self.fw.reset_ports(&elems)?;
        crate::fail::point("repair/ports");
        for p in &drop {
            tracing::info!(
                "dropping the published ports of gone container {}",
                p.container_id
            );
            self.store.delete(PORTS, &p.container_id)?;
        }
        Ok(())
    }
}

/// Holds `bindings` on a thread of its own, at a lower priority, adding the sockets to the publication's as they
/// come (see [`HOLD_INLINE`]); stops early when the publication is taken back.
fn hold_later(
    host: Arc<dyn HostPorts>,
    p: Publication,
    bindings: Vec<Binding>,
    (held, cancel): (Arc<Mutex<Vec<Held>>>, Arc<AtomicBool>),
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        // Behind the container's own start (runc), which has no time to lose.
        // SAFETY: plain syscalls on the calling thread.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
        }
        let t0 = std::time::Instant::now();
        let mut got = Vec::with_capacity(bindings.len());
        for b in &bindings {
            if cancel.load(Ordering::SeqCst) {
                return;
            }
            match host.hold(b.proto, b.host_ip, b.host_port) {
                Ok(h) => got.push((*b, h)),
                Err(e) => tracing::warn!(
                    "container {}: {}/{} taken by another socket since it was found free: {e}",
                    p.container_id,
                    crate::portmap::join_host_port(b.host_ip, b.host_port),
                    b.proto.as_str()
                ),
            }
        }
        let (relays, kept) = split_relays(&p, got);
        if !relays.is_empty() {
            if let Err(e) = host.proxy(&p.container_id, relays) {
                tracing::warn!("container {}: proxy: {e}", p.container_id);
            }
        }
        held.lock().unwrap_or_else(|p| p.into_inner()).extend(kept);
        tracing::debug!(
            "container {}: {} more host ports held in {:?}",
            p.container_id,
            bindings.len(),
            t0.elapsed()
        );
        drop(bindings);
        crate::firewall::give_back_memory();
    })
}

/// Splits held sockets into those the proxy serves and those that only hold their port.
fn split_relays(p: &Publication, held: Vec<(Binding, Held)>) -> (Vec<Relay>, Vec<Held>) {
    let mut relays = Vec::new();
    let mut kept = Vec::new();
    for (b, h) in held {
        match p.relay_target(&b) {
            Some(to) => relays.push(Relay {
                held: h,
                proto: b.proto,
                to,
            }),
            None => kept.push(h),
        }
    }
    (relays, kept)
}
