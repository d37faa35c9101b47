//! What the kernel holds in one network namespace, read over netlink (links, addresses,
//! routes, neighbours, FDB), and the sysctls the verdict depends on. Read-only.

use crate::osl::endpoint::handle_in;
use crate::osl::overlay::{lladdr, neigh_dst};
use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo};
use netlink_packet_route::neighbour::NeighbourMessage;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteType};
use netlink_packet_route::AddressFamily;
use rtnetlink::{Handle, RouteMessageBuilder};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Carrier (IFF_LOWER_UP).
    pub lower_up: bool,
    pub master: Option<u32>,
    pub mtu: u32,
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Route {
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    /// unicast, blackhole, unreachable, prohibit, local, ...
    pub kind: String,
    pub table: u32,
    pub metric: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Neigh {
    pub ifindex: u32,
    pub ip: IpAddr,
    pub mac: Option<[u8; 6]>,
    pub permanent: bool,
    pub failed: bool,
}

/// A bridge FDB entry with a remote destination (VXLAN peers).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Fdb {
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub dst: Option<IpAddr>,
}

/// One namespace's view.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ns {
    pub links: Vec<Link>,
    /// (ifindex, address with prefix)
    pub addrs: Vec<(u32, IpNet)>,
    pub routes: Vec<Route>,
    pub neigh: Vec<Neigh>,
    pub fdb: Vec<Fdb>,
}

impl Ns {
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    pub fn link_by_index(&self, index: u32) -> Option<&Link> {
        self.links.iter().find(|l| l.index == index)
    }

    pub fn name_of(&self, index: u32) -> String {
        self.link_by_index(index)
            .map(|l| l.name.clone())
            .unwrap_or_else(|| format!("if{index}"))
    }

    pub fn addrs_of(&self, index: u32) -> impl Iterator<Item = &IpNet> {
        self.addrs
            .iter()
            .filter(move |(i, _)| *i == index)
            .map(|(_, a)| a)
    }

    /// Whether `ip` is one of this namespace's own addresses.
    pub fn owns(&self, ip: IpAddr) -> bool {
        self.addrs.iter().any(|(_, a)| a.addr() == ip)
    }

    /// The route the kernel would pick for `ip` in the main and local tables: longest prefix,
    /// then lowest metric (policy rules are not evaluated).
    pub fn route_to(&self, ip: IpAddr) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| (r.table == 254 || r.table == 255) && r.dst.contains(&ip))
            .max_by(|a, b| {
                (
                    a.dst.prefix_len(),
                    a.table == 255,
                    std::cmp::Reverse(a.metric),
                )
                    .cmp(&(
                        b.dst.prefix_len(),
                        b.table == 255,
                        std::cmp::Reverse(b.metric),
                    ))
            })
    }
}

/// Reads a namespace given by path, or the daemon's own when `None`.
pub async fn read(netns: Option<&Path>) -> std::io::Result<Ns> {
    let handle = match netns {
        Some(p) => handle_in(p)?,
        None => {
            let (conn, handle, _) = rtnetlink::new_connection()?;
            tokio::spawn(conn);
            handle
        }
    };
    read_with(&handle).await.map_err(std::io::Error::other)
}

async fn read_with(h: &Handle) -> Result<Ns, rtnetlink::Error> {
    let mut ns = Ns::default();
    let links: Vec<_> = h.link().get().execute().try_collect().await?;
    for m in links {
        let mut l = Link {
            index: m.header.index,
            up: m.header.flags.contains(LinkFlags::Up),
            lower_up: m.header.flags.contains(LinkFlags::LowerUp),
            ..Default::default()
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => l.name = n.clone(),
                LinkAttribute::Mtu(v) => l.mtu = *v,
                LinkAttribute::Controller(v) => l.master = Some(*v),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let LinkInfo::Kind(k) = i {
                            l.kind = Some(kind_name(k));
                        }
                    }
                }
                _ => {}
            }
        }
        ns.links.push(l);
    }
    let addrs: Vec<_> = h.address().get().execute().try_collect().await?;
    for m in addrs {
        let ip = m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        });
        let ip = ip.or_else(|| {
            m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            })
        });
        if let Some(net) = ip.and_then(|ip| IpNet::new(ip, m.header.prefix_len).ok()) {
            ns.addrs.push((m.header.index, net));
        }
    }
    for msg in [
        RouteMessageBuilder::<Ipv4Addr>::new().build(),
        RouteMessageBuilder::<Ipv6Addr>::new().build(),
    ] {
        let v6 = msg.header.address_family == AddressFamily::Inet6;
        let routes: Vec<_> = h.route().get(msg).execute().try_collect().await?;
        for r in routes {
            let mut dst = None;
            let mut route = Route {
                dst: unspecified(v6),
                gateway: None,
                oif: None,
                kind: route_kind(r.header.kind),
                table: r.header.table as u32,
                metric: 0,
            };
            for a in &r.attributes {
                match a {
                    RouteAttribute::Destination(d) => dst = route_addr(d),
                    RouteAttribute::Gateway(g) => route.gateway = route_addr(g),
                    RouteAttribute::Oif(i) => route.oif = Some(*i),
                    RouteAttribute::Table(t) => route.table = *t,
                    RouteAttribute::Priority(p) => route.metric = *p,
                    _ => {}
                }
            }
            if let Some(d) = dst {
                match IpNet::new(d, r.header.destination_prefix_length) {
                    Ok(n) => route.dst = n.trunc(),
                    Err(_) => continue,
                }
            }
            ns.routes.push(route);
        }
    }
    let neigh: Vec<NeighbourMessage> = h.neighbours().get().execute().try_collect().await?;
    for m in neigh
        .iter()
        .filter(|m| m.header.family != AddressFamily::Bridge)
    {
        if let Some(ip) = neigh_dst(m) {
            let state = m.header.state;
            ns.neigh.push(Neigh {
                ifindex: m.header.ifindex,
                ip,
                mac: lladdr(m),
                permanent: state == netlink_packet_route::neighbour::NeighbourState::Permanent,
                failed: state == netlink_packet_route::neighbour::NeighbourState::Failed,
            });
        }
    }
    let fdb: Vec<NeighbourMessage> = h
        .neighbours()
        .get()
        .set_address_family(AddressFamily::Bridge)
        .execute()
        .try_collect()
        .await?;
    for m in &fdb {
        if let Some(mac) = lladdr(m) {
            ns.fdb.push(Fdb {
                ifindex: m.header.ifindex,
                mac,
                dst: neigh_dst(m),
            });
        }
    }
    Ok(ns)
}

fn unspecified(v6: bool) -> IpNet {
    let ip: IpAddr = if v6 {
        Ipv6Addr::UNSPECIFIED.into()
    } else {
        Ipv4Addr::UNSPECIFIED.into()
    };
    IpNet::new(ip, 0).expect("prefix 0 fits")
}

fn kind_name(k: &InfoKind) -> String {
    match k {
        InfoKind::Bridge => "bridge".into(),
        InfoKind::Veth => "veth".into(),
        InfoKind::Vxlan => "vxlan".into(),
        InfoKind::Dummy => "dummy".into(),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

fn route_kind(k: RouteType) -> String {
    match k {
        RouteType::Unicast => "unicast".into(),
        RouteType::Local => "local".into(),
        RouteType::BlackHole => "blackhole".into(),
        RouteType::Unreachable => "unreachable".into(),
        RouteType::Prohibit => "prohibit".into(),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// Host sysctls of the daemon's namespace: `Some(true)` when set to 1, `None` when absent
/// (bridge-nf without `br_netfilter`).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sysctls {
    pub ip_forward: Option<bool>,
    pub bridge_nf: Option<bool>,
}

pub fn sysctls() -> Sysctls {
    let one = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim() == "1");
    Sysctls {
        ip_forward: one("/proc/sys/net/ipv4/ip_forward"),
        bridge_nf: one("/proc/sys/net/bridge/bridge-nf-call-iptables"),
    }
}
