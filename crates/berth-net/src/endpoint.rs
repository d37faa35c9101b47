//! Endpoints and sandboxes as berth stores them, the bookkeeping the controller keeps about
//! them in memory, and the address decisions of a connect (pure: no lock, no kernel).

use crate::error::{NetError, Result};
use crate::ipam::PoolError;
use crate::network::Network;
use berth_api::{EndpointIpamConfig, EndpointResource, EndpointSettings};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;

/// What the engine asks for when attaching a container to a network.
#[derive(Debug, Clone, Default)]
pub struct EndpointRequest {
    /// 64 hex.
    pub container_id: String,
    /// Without the leading '/'.
    pub container_name: String,
    /// Id, name or unique id prefix.
    pub network: String,
    /// User-requested addresses (`IPAMConfig`), unparsed.
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub aliases: Vec<String>,
    pub links: Vec<String>,
    /// `--mac-address`; otherwise 02:42 and the IPv4 address.
    pub mac: Option<String>,
    /// `IPAMConfig.LinkLocalIPs`, checked by the engine: extra addresses on the interface
    /// (/16 for IPv4, /64 for IPv6, as libnetwork puts them), outside any pool.
    pub link_local: Vec<IpAddr>,
    /// A namespace the engine pinned itself; `None`: the controller's own sandbox of the
    /// container (made by `sandbox_create`, or on this first connect).
    pub sandbox: Option<PathBuf>,
    /// Records of the caller's, (table, key, JSON), written in the same store transaction as
    /// the endpoint: the engine's container record then needs no commit (and fsync) of its own.
    pub with: Vec<(&'static str, String, Vec<u8>)>,
}

/// One container's attachment to one network, as stored (table `endpoints`, key `id`). It is
/// written before the kernel is touched, so it also names what a crashed connect left behind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    pub id: String,
    pub network_id: String,
    pub container_id: String,
    pub container_name: String,
    pub sandbox: PathBuf,
    /// `veth<7 hex>` on the host.
    pub host_if: String,
    /// `ethN` inside the sandbox.
    pub ifname: String,
    /// The namespace holding the host end when it is not the daemon's (overlay networks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_netns: Option<PathBuf>,
    pub mac: [u8; 6],
    pub ipv4: Option<IpNet>,
    pub ipv6: Option<IpNet>,
    pub gateway4: Option<IpAddr>,
    pub gateway6: Option<IpAddr>,
    /// A plugin's Join gave no gateway and did not refuse the gateway service: the
    /// container needs `docker_gwbridge` for its way out (as on an overlay).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gw_service: bool,
    /// A plugin's endpoint whose Join has not completed: a berthd killed meanwhile drops it
    /// at the next start and tells the plugin (DeleteEndpoint, ReleaseAddress).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// A plugin network's endpoint: the plugin's name for its interface (Join's `SrcName`),
    /// under which the interface goes back at Leave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_src: Option<String>,
    /// The addresses the user asked for, echoed in the settings.
    pub ipam_config: Option<EndpointIpamConfig>,
    pub aliases: Vec<String>,
    pub links: Vec<String>,
    /// Attach order across the daemon's life.
    pub seq: u64,
}

impl Endpoint {
    pub fn addrs(&self) -> Vec<IpAddr> {
        self.ipv4
            .iter()
            .chain(&self.ipv6)
            .map(IpNet::addr)
            .collect()
    }

    /// The gateways of the default routes this endpoint installs when it carries them.
    pub fn gateways(&self) -> Vec<IpAddr> {
        let v4 = self.ipv4.and(self.gateway4);
        let v6 = self.ipv6.and(self.gateway6);
        v4.into_iter().chain(v6).collect()
    }

    pub fn settings(&self) -> EndpointSettings {
        let opt = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        let s = |ip: Option<IpAddr>| ip.map(|i| i.to_string()).unwrap_or_default();
        EndpointSettings {
            ipam_config: self.ipam_config.clone(),
            links: opt(&self.links),
            aliases: opt(&self.aliases),
            network_id: self.network_id.clone(),
            endpoint_id: self.id.clone(),
            gateway: s(self.ipv4.and(self.gateway4)),
            ip_address: s(self.ipv4.map(|n| n.addr())),
            ip_prefix_len: self.ipv4.map_or(0, |n| n.prefix_len()),
            ipv6_gateway: s(self.ipv6.and(self.gateway6)),
            global_ipv6_address: s(self.ipv6.map(|n| n.addr())),
            global_ipv6_prefix_len: self.ipv6.map_or(0, |n| n.prefix_len()),
            mac_address: format_mac(&self.mac),
            driver_opts: None,
        }
    }

    /// The entry of network inspect's `Containers`.
    pub fn resource(&self) -> EndpointResource {
        let s = |n: Option<IpNet>| n.map(|n| n.to_string()).unwrap_or_default();
        EndpointResource {
            name: self.container_name.clone(),
            endpoint_id: self.id.clone(),
            mac_address: format_mac(&self.mac),
            ipv4_address: s(self.ipv4),
            ipv6_address: s(self.ipv6),
        }
    }
}

/// A container's network namespace (table `sandboxes`, key `container_id`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sandbox {
    pub container_id: String,
    pub path: PathBuf,
    /// Made by `sandbox_create`, so `sandbox_delete` unpins it; otherwise the engine's.
    pub owned: bool,
    /// The N of the next `ethN`: only grows while the sandbox lives, as in Docker.
    pub next_if: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Recorded, addresses taken, kernel work running: blocks network removal but is not shown.
    Joining,
    Live,
    /// Being forgotten; its addresses are already out of the stored pool.
    Leaving,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub ep: Endpoint,
    pub phase: Phase,
    /// Whether this endpoint's default routes are installed.
    pub routed: bool,
}

#[derive(Debug, Clone)]
pub struct SandboxEntry {
    pub rec: Sandbox,
    /// Endpoint ids in attach order, every phase.
    pub eps: Vec<String>,
    /// The namespace is still being made (or unmade).
    pub busy: bool,
}

/// The controller's in-memory view of endpoints and sandboxes (part of its state, under the
/// same mutex as the networks whose pools they draw from).
#[derive(Debug, Default)]
pub struct Registry {
    pub eps: HashMap<String, Entry>,
    pub sandboxes: HashMap<String, SandboxEntry>,
    /// Network id → its endpoint ids, every phase.
    pub by_net: HashMap<String, BTreeSet<String>>,
    /// Host veth names taken: by endpoints, and by deleted ones until the kernel let go.
    pub veths: HashSet<String>,
    /// Network id → addresses already released in the store whose veth still exists: they
    /// stay taken in memory until it is gone, and out of every pool snapshot written.
    pub draining: HashMap<String, Vec<IpAddr>>,
    /// Network id → endpoints forgotten whose teardown (Leave, DeleteEndpoint, ReleaseAddress)
    /// still runs in the background.
    pub leaving: HashMap<String, usize>,
    pub seq: u64,
}

impl Registry {
    pub fn insert(&mut self, ep: Endpoint, phase: Phase, routed: bool) {
        self.by_net
            .entry(ep.network_id.clone())
            .or_default()
            .insert(ep.id.clone());
        self.veths.insert(ep.host_if.clone());
        if let Some(sb) = self.sandboxes.get_mut(&ep.container_id) {
            sb.eps.push(ep.id.clone());
        }
        self.seq = self.seq.max(ep.seq);
        self.eps.insert(ep.id.clone(), Entry { ep, phase, routed });
    }

    /// Forgets the endpoint; its veth name stays taken (the caller frees it once the veth is
    /// gone).
    pub fn remove(&mut self, id: &str) -> Option<Endpoint> {
        let e = self.eps.remove(id)?;
        if let Some(set) = self.by_net.get_mut(&e.ep.network_id) {
            set.remove(id);
            if set.is_empty() {
                self.by_net.remove(&e.ep.network_id);
            }
        }
        if let Some(sb) = self.sandboxes.get_mut(&e.ep.container_id) {
            sb.eps.retain(|x| x != id);
        }
        Some(e.ep)
    }

    pub fn on_network(&self, net: &str) -> impl Iterator<Item = &Entry> {
        self.by_net
            .get(net)
            .into_iter()
            .flatten()
            .filter_map(|id| self.eps.get(id))
    }

    pub fn has_endpoints(&self, net: &str) -> bool {
        self.by_net.get(net).is_some_and(|s| !s.is_empty())
    }

    /// The container's endpoints in attach order.
    pub fn of_container(&self, cid: &str) -> Vec<&Entry> {
        self.sandboxes
            .get(cid)
            .map(|sb| sb.eps.iter().filter_map(|id| self.eps.get(id)).collect())
            .unwrap_or_default()
    }

    /// The endpoint that carries (or is about to carry) the sandbox's default routes: the
    /// first, in attach order, that has a gateway. Routes move down this order as endpoints
    /// leave, so the rule also holds after a restart without being stored.
    pub fn route_carrier(&self, cid: &str) -> Option<&Entry> {
        self.of_container(cid)
            .into_iter()
            .find(|e| e.phase != Phase::Leaving && !e.ep.gateways().is_empty())
    }

    pub fn drain(&mut self, net: &str, addrs: &[IpAddr]) {
        self.draining
            .entry(net.to_string())
            .or_default()
            .extend_from_slice(addrs);
    }

    pub fn leave_started(&mut self, net: &str) {
        *self.leaving.entry(net.to_string()).or_default() += 1;
    }

    pub fn leave_done(&mut self, net: &str) {
        if let Some(n) = self.leaving.get_mut(net) {
            *n -= 1;
            if *n == 0 {
                self.leaving.remove(net);
            }
        }
    }

    pub fn undrain(&mut self, net: &str, addrs: &[IpAddr]) {
        if let Some(v) = self.draining.get_mut(net) {
            for a in addrs {
                if let Some(i) = v.iter().position(|x| x == a) {
                    v.swap_remove(i);
                }
            }
            if v.is_empty() {
                self.draining.remove(net);
            }
        }
    }
}

/// The network as it goes to the store: addresses still draining are already free there, so
/// a crash before their veths are gone loses nothing (the next start deletes the veths first).
pub fn persisted(net: &Network, draining: &[IpAddr]) -> Network {
    let mut n = net.clone();
    for ip in draining {
        release(&mut n, *ip);
    }
    n
}

pub fn release(net: &mut Network, ip: IpAddr) {
    if let Some(s) = net.subnets.iter_mut().find(|s| s.pool.contains(ip)) {
        s.pool.release(ip);
    }
}

/// Parsed user choices of a connect.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    pub v4: Option<IpAddr>,
    pub v6: Option<IpAddr>,
    pub mac: Option<[u8; 6]>,
}

/// Addresses taken for one endpoint, with their subnets' prefix and gateway.
#[derive(Debug, Clone, Default)]
pub struct Allocated {
    pub v4: Option<(IpNet, IpAddr)>,
    pub v6: Option<(IpNet, IpAddr)>,
}

impl Allocated {
    pub fn addrs(&self) -> Vec<IpAddr> {
        self.v4
            .iter()
            .chain(&self.v6)
            .map(|(n, _)| n.addr())
            .collect()
    }
}

/// Takes the endpoint's addresses from the network's pools: the requested ones exactly, else
/// the next free (IPv6 only when the network has IPv6 subnets). All or nothing.
pub fn allocate(net: &mut Network, want: &Wanted) -> Result<Allocated> {
    let mut out = Allocated::default();
    for v6 in [false, true] {
        let requested = if v6 { want.v6 } else { want.v4 };
        match take(net, v6, requested) {
            Ok(Some(a)) if v6 => out.v6 = Some(a),
            Ok(Some(a)) => out.v4 = Some(a),
            Ok(None) => {}
            Err(e) => {
                for ip in out.addrs() {
                    release(net, ip);
                }
                return Err(e);
            }
        }
    }
    Ok(out)
}

fn take(net: &mut Network, v6: bool, requested: Option<IpAddr>) -> Result<Option<(IpNet, IpAddr)>> {
    let (name, id) = (net.name.clone(), net.id.clone());
    let mut subnets = net
        .subnets
        .iter_mut()
        .filter(|s| Network::is_v6(s) == v6)
        .peekable();
    if subnets.peek().is_none() {
        return match requested {
            Some(ip) => Err(not_in_subnets(ip)),
            None => Ok(None),
        };
    }
    for s in subnets {
        // Docker's bridge driver: aux address DefaultGatewayIPv4/6 replaces the bridge address
        // as the containers' gateway.
        let key = if v6 {
            "DefaultGatewayIPv6"
        } else {
            "DefaultGatewayIPv4"
        };
        let gw = s.aux.get(key).copied().unwrap_or(s.gateway);
        let prefix = s.pool.subnet.prefix_len();
        let ip = match requested {
            Some(ip) if !s.pool.contains(ip) => continue,
            Some(ip) => match s.pool.reserve(ip) {
                Ok(()) => ip,
                Err(PoolError::InUse) => return Err(NetError::forbidden("Address already in use")),
                Err(e) => return Err(NetError::internal(e.to_string())),
            },
            None => match s.pool.allocate() {
                Ok(ip) => ip,
                Err(_) => continue,
            },
        };
        let n = IpNet::new(ip, prefix).map_err(|e| NetError::internal(e.to_string()))?;
        return Ok(Some((n, gw)));
    }
    Err(match requested {
        Some(ip) => not_in_subnets(ip),
        None => NetError::internal(format!(
            "no available IPv{} addresses on this network's address pools: {name} ({id})",
            if v6 { 6 } else { 4 }
        )),
    })
}

fn not_in_subnets(ip: IpAddr) -> NetError {
    NetError::internal(format!(
        "Invalid address {ip}: It does not belong to any of this network's subnets"
    ))
}

/// Docker's container MAC: 02:42 and the four bytes of the IPv4 address (random without one).
pub fn mac_for(v4: Option<IpAddr>) -> [u8; 6] {
    let b: [u8; 4] = match v4 {
        Some(IpAddr::V4(a)) => a.octets(),
        _ => rand::random(),
    };
    [0x02, 0x42, b[0], b[1], b[2], b[3]]
}

/// Go's net.ParseMAC for 6-byte addresses, ':' or '-' separated.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let sep = if s.contains('-') { '-' } else { ':' };
    let parts: Vec<&str> = s.split(sep).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *o = u8::from_str_radix(p, 16).ok()?;
    }
    Some(out)
}

pub fn format_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `veth` and 7 random hex digits, as Docker names the host end.
pub fn random_veth() -> String {
    let v: u32 = rand::random();
    format!("veth{:07x}", v & 0x0fff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(
            format_mac(&mac_for(Some("10.201.0.129".parse().unwrap()))),
            "02:42:0a:c9:00:81"
        );
        assert_eq!(
            parse_mac("02:42:AC:11:00:04"),
            Some([2, 0x42, 0xac, 0x11, 0, 4])
        );
        assert_eq!(
            parse_mac("02-42-ac-11-00-04"),
            Some([2, 0x42, 0xac, 0x11, 0, 4])
        );
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:4",
            "zz:42:ac:11:00:04",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
        let v = random_veth();
        assert!(v.len() == 11 && v.starts_with("veth"), "{v}");
    }
}
