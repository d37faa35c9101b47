//! An overlay network's data path on one host: a namespace pinned under the exec root holding
//! `br0` (the subnets' gateway addresses) and `vxlan0` (learning off, ARP proxy on), and the
//! remote peers as static entries, reconciled toward a wanted set (never replayed from events):
//! `neigh replace IP lladdr MAC dev vxlan0 nud permanent` and
//! `bridge fdb replace MAC dev vxlan0 dst VTEP self permanent`.

use super::endpoint::handle_in;
use super::netlink::{is_errno, kerr, Netlink, EEXIST, ENODEV};
use super::{netns, OslError};
use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::AddressFamily;
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVxlan};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub const BRIDGE: &str = "br0";
pub const VXLAN: &str = "vxlan0";

#[derive(Debug, Clone, PartialEq)]
pub struct OverlaySpec {
    pub netns: PathBuf,
    pub vni: u32,
    pub port: u16,
    pub mtu: u32,
    /// This host's tunnel endpoint (the VXLAN socket's source address).
    pub vtep: IpAddr,
    /// Gateway addresses on `br0`.
    pub addrs: Vec<IpNet>,
}

/// A remote endpoint as the kernel needs it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    pub ip: IpAddr,
    pub mac: [u8; 6],
    pub vtep: IpAddr,
}

fn io_err(op: &str, e: std::io::Error) -> OslError {
    OslError::Kernel {
        op: op.to_string(),
        msg: e.to_string(),
    }
}

pub(super) async fn index_of(h: &Handle, name: &str) -> Result<Option<u32>, OslError> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(m)) => Ok(Some(m.header.index)),
        Ok(None) => Ok(None),
        Err(e) if is_errno(&e, ENODEV) => Ok(None),
        Err(e) => Err(kerr(&format!("find {name}"), e)),
    }
}

async fn must_index(h: &Handle, name: &str) -> Result<u32, OslError> {
    index_of(h, name).await?.ok_or_else(|| OslError::Kernel {
        op: format!("find {name}"),
        msg: "no such interface".into(),
    })
}

impl Netlink {
    /// A socket inside `netns`, made once per namespace and kept until `overlay_down`.
    pub(super) fn ns_handle(&self, netns: &Path) -> Result<Handle, OslError> {
        let mut map = self.ns_handles.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = map.get(netns) {
            return Ok(h.clone());
        }
        let h = handle_in(netns).map_err(|e| io_err("enter overlay namespace", e))?;
        map.insert(netns.to_path_buf(), h.clone());
        Ok(h)
    }

    pub(super) fn host_handle(&self, spec: &super::EndpointSpec) -> Result<Handle, OslError> {
        match &spec.host_netns {
            None => Ok(self.handle().clone()),
            Some(p) => self.ns_handle(p),
        }
    }

    /// Builds the namespace, bridge and VXLAN device; an existing complete one (a restart) is
    /// adopted as it is. On error nothing stays.
    pub async fn overlay_up(&self, spec: &OverlaySpec) -> Result<(), OslError> {
        if super::endpoint::is_netns(&spec.netns) {
            let h = self.ns_handle(&spec.netns)?;
            if index_of(&h, VXLAN).await?.is_some() && index_of(&h, BRIDGE).await?.is_some() {
                return Ok(());
            }
            self.overlay_down(&spec.netns);
        }
        netns::create(&spec.netns)
            .map_err(|e| io_err(&format!("create {}", spec.netns.display()), e))?;
        let r = self.overlay_build(spec).await;
        if r.is_err() {
            self.overlay_down(&spec.netns);
        }
        r
    }

    async fn overlay_build(&self, spec: &OverlaySpec) -> Result<(), OslError> {
        let ns = spec.netns.clone();
        // IPv6 off in the whole namespace unless a subnet needs it: no link-local addresses,
        // routes or DAD on the bridge ports.
        let v6 = spec.addrs.iter().any(|a| a.addr().is_ipv6());
        netns::run_in(&ns, move || {
            for key in ["all", "default"] {
                let _ = super::sysctl::write(
                    &format!("net/ipv6/conf/{key}/disable_ipv6"),
                    if v6 { "0" } else { "1" },
                );
            }
            Ok(())
        })
        .map_err(|e| io_err("configure overlay namespace", e))?;
        let h = self.ns_handle(&spec.netns)?;
        let lo = must_index(&h, "lo").await?;
        h.link()
            .set(LinkUnspec::new_with_index(lo).up().build())
            .execute()
            .await
            .map_err(|e| kerr("bring up lo", e))?;
        h.link()
            .add(
                LinkMessageBuilder::<LinkBridge>::new(BRIDGE)
                    .mtu(spec.mtu)
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| kerr("create br0", e))?;
        let br = must_index(&h, BRIDGE).await?;
        for a in &spec.addrs {
            h.address()
                .add(br, a.addr(), a.prefix_len())
                .execute()
                .await
                .map_err(|e| kerr(&format!("add address {a} to br0"), e))?;
        }
        // Made from the daemon's socket straight into the namespace: the device lives there,
        // its UDP socket stays in the daemon's namespace, where the underlay is.
        let fd = netns::open(&spec.netns).map_err(|e| io_err("open overlay namespace", e))?;
        let mut vx = LinkVxlan::new(VXLAN, spec.vni)
            .port(spec.port)
            .learning(false)
            .proxy(true)
            .mtu(spec.mtu);
        vx = match spec.vtep {
            IpAddr::V4(a) => vx.local(a),
            IpAddr::V6(a) => vx.local6(a),
        };
        let msg = vx.setns_by_fd(std::os::fd::AsRawFd::as_raw_fd(&fd)).build();
        // The kernel dismantles an unpinned namespace in the background: the VXLAN device of
        // a data path removed just before (its last endpoint left) may still hold the VNI
        // for a few milliseconds.
        let mut tries = 0;
        loop {
            match self.handle().link().add(msg.clone()).execute().await {
                Ok(()) => break,
                Err(e) if is_errno(&e, EEXIST) && tries < 80 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                }
                Err(e) if is_errno(&e, EEXIST) => {
                    return Err(OslError::Kernel {
                        op: format!("create vxlan (VNI {})", spec.vni),
                        msg: "a VXLAN device with this VNI and port already exists".into(),
                    })
                }
                Err(e) => return Err(kerr(&format!("create vxlan (VNI {})", spec.vni), e)),
            }
        }
        let vxi = must_index(&h, VXLAN).await?;
        h.link()
            .set(LinkUnspec::new_with_index(vxi).controller(br).up().build())
            .execute()
            .await
            .map_err(|e| kerr("attach vxlan0 to br0", e))?;
        h.link()
            .set(LinkUnspec::new_with_index(br).up().build())
            .execute()
            .await
            .map_err(|e| kerr("bring up br0", e))?;
        Ok(())
    }

    /// Unpins the namespace: the kernel removes the bridge, the VXLAN device and every
    /// container veth end still in it.
    pub fn overlay_down(&self, netns: &Path) {
        self.ns_handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(netns);
        let _ = netns::delete(netns);
    }

    /// Makes vxlan0's static neighbour and FDB entries exactly `peers`.
    pub async fn overlay_peers(&self, netns: &Path, peers: &[Peer]) -> Result<(), OslError> {
        let h = self.ns_handle(netns)?;
        let vx = must_index(&h, VXLAN).await?;
        let (neigh, fdb) = dump(&h, vx).await?;
        let want_neigh: BTreeMap<IpAddr, [u8; 6]> = peers.iter().map(|p| (p.ip, p.mac)).collect();
        // FDB entries are keyed by MAC (several addresses may share one)
        let want_fdb: BTreeMap<[u8; 6], IpAddr> = peers.iter().map(|p| (p.mac, p.vtep)).collect();
        for (ip, mac) in &want_neigh {
            if neigh.get(ip) != Some(mac) {
                h.neighbours()
                    .add(vx, *ip)
                    .link_layer_address(mac)
                    .state(NeighbourState::Permanent)
                    .replace()
                    .execute()
                    .await
                    .map_err(|e| kerr(&format!("neighbour {ip}"), e))?;
            }
        }
        for (mac, vtep) in &want_fdb {
            if fdb.get(mac) != Some(vtep) {
                h.neighbours()
                    .add_bridge(vx, mac)
                    .destination(*vtep)
                    .flags(NeighbourFlags::Own)
                    .state(NeighbourState::Permanent)
                    .replace()
                    .execute()
                    .await
                    .map_err(|e| kerr("fdb entry", e))?;
            }
        }
        for (ip, mac) in neigh.iter().filter(|(ip, _)| !want_neigh.contains_key(ip)) {
            let mut m = NeighbourMessage::default();
            m.header.family = match ip {
                IpAddr::V4(_) => AddressFamily::Inet,
                IpAddr::V6(_) => AddressFamily::Inet6,
            };
            m.header.ifindex = vx;
            m.attributes
                .push(NeighbourAttribute::Destination(addr_of(*ip)));
            m.attributes
                .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
            if let Err(e) = h.neighbours().del(m).execute().await {
                if !is_errno(&e, 2) {
                    return Err(kerr(&format!("delete neighbour {ip}"), e));
                }
            }
        }
        for (mac, vtep) in fdb.iter().filter(|(m, _)| !want_fdb.contains_key(*m)) {
            let mut m = NeighbourMessage::default();
            m.header.family = AddressFamily::Bridge;
            m.header.ifindex = vx;
            m.header.flags = NeighbourFlags::Own;
            m.attributes
                .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
            m.attributes
                .push(NeighbourAttribute::Destination(addr_of(*vtep)));
            if let Err(e) = h.neighbours().del(m).execute().await {
                if !is_errno(&e, 2) {
                    return Err(kerr("delete fdb entry", e));
                }
            }
        }
        Ok(())
    }

    /// Tagged links inside `netns` (overlay endpoints' host ends), as `links_with_alias`.
    pub async fn tagged_in(
        &self,
        netns: &Path,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, OslError> {
        let h = self.ns_handle(netns)?;
        let tagged = super::netlink::tagged_links(&h, prefix).await?;
        Ok(tagged.into_iter().map(|(_, n, a)| (n, a)).collect())
    }

    pub async fn delete_in(&self, netns: &Path, name: &str) -> Result<(), OslError> {
        if !super::endpoint::is_netns(netns) {
            return Ok(());
        }
        super::unlink::delete_link(Some(netns.to_path_buf()), name.to_string()).await
    }
}

fn addr_of(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(a) => NeighbourAddress::Inet(a),
        IpAddr::V6(a) => NeighbourAddress::Inet6(a),
    }
}

type NeighMap = BTreeMap<IpAddr, [u8; 6]>;
type FdbMap = BTreeMap<[u8; 6], IpAddr>;

/// vxlan0's permanent neighbour entries and its own (`self`) FDB entries with a destination.
async fn dump(h: &Handle, vx: u32) -> Result<(NeighMap, FdbMap), OslError> {
    let mut neigh = BTreeMap::new();
    let mut fdb = BTreeMap::new();
    let all: Vec<NeighbourMessage> = h
        .neighbours()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| kerr("list neighbours", e))?;
    let mut req = h.neighbours().get();
    req = req.set_address_family(AddressFamily::Bridge);
    let bridged: Vec<NeighbourMessage> = req
        .execute()
        .try_collect()
        .await
        .map_err(|e| kerr("list fdb", e))?;
    for m in all.iter().filter(|m| m.header.ifindex == vx) {
        if m.header.family == AddressFamily::Bridge {
            continue;
        }
        if let (Some(ip), Some(mac)) = (neigh_dst(m), lladdr(m)) {
            if m.header.state == NeighbourState::Permanent {
                neigh.insert(ip, mac);
            }
        }
    }
    for m in bridged.iter().filter(|m| m.header.ifindex == vx) {
        if let (Some(vtep), Some(mac)) = (neigh_dst(m), lladdr(m)) {
            if mac != [0; 6] {
                fdb.insert(mac, vtep);
            }
        }
    }
    Ok((neigh, fdb))
}

/// A neighbour or FDB entry's MAC.
pub fn lladdr(m: &NeighbourMessage) -> Option<[u8; 6]> {
    m.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(l) if l.len() == 6 => <[u8; 6]>::try_from(&l[..]).ok(),
        _ => None,
    })
}

/// A neighbour or FDB entry's destination. In AF_BRIDGE messages it comes unparsed: its
/// length tells the family.
pub fn neigh_dst(m: &NeighbourMessage) -> Option<IpAddr> {
    m.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
        NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
        NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => match b.len() {
            4 => <[u8; 4]>::try_from(&b[..]).ok().map(IpAddr::from),
            16 => <[u8; 16]>::try_from(&b[..]).ok().map(IpAddr::from),
            _ => None,
        },
        _ => None,
    })
}

/// The peers a wanted set holds, deduplicated (for logs and tests).
pub fn distinct_vteps(peers: &[Peer]) -> BTreeSet<IpAddr> {
    peers.iter().map(|p| p.vtep).collect()
}
