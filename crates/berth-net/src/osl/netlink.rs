//! `Osl` over rtnetlink: one netlink socket for the daemon's lifetime, no child processes.

use super::{BridgeSpec, Osl, OslError};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use ipnet::IpNet;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{AsyncSocket, SocketAddr};
use rtnetlink::constants::{
    RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE,
};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct Netlink {
    handle: Handle,
    host: Arc<HostView>,
    /// Sockets inside overlay networks' namespaces (osl/overlay.rs), kept while they live.
    pub(super) ns_handles: Mutex<std::collections::HashMap<std::path::PathBuf, Handle>>,
}

/// What `host_networks` answers, kept between calls. Dumping every route and address costs
/// tens of milliseconds once a thousand bridges exist, and almost all of those are berth's own;
/// so the dump is filtered of berth's bridges, cached, and only redone after a netlink event
/// about some other interface (or when the event monitor is gone).
#[derive(Default)]
struct HostView {
    /// Interface indexes of berth's bridges: their routes and addresses are not "the host's".
    own: Mutex<HashSet<u32>>,
    dirty: AtomicBool,
    monitor_alive: AtomicBool,
    cache: Mutex<Vec<IpNet>>,
}

impl HostView {
    fn is_own(&self, index: u32) -> bool {
        self.own
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&index)
    }

    fn note(&self, msg: &RouteNetlinkMessage) {
        let foreign = match msg {
            RouteNetlinkMessage::NewRoute(r) | RouteNetlinkMessage::DelRoute(r) => {
                route_oif(r).is_none_or(|i| !self.is_own(i))
            }
            RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a) => {
                !self.is_own(a.header.index)
            }
            _ => false,
        };
        if foreign {
            self.dirty.store(true, Ordering::SeqCst);
        }
    }
}

fn route_oif(r: &RouteMessage) -> Option<u32> {
    r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    })
}

/// Subscribes to route and address changes before the first dump, so no change is missed.
fn spawn_monitor(view: Arc<HostView>) -> std::io::Result<()> {
    let (mut conn, _handle, mut events) = rtnetlink::new_connection()?;
    let groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE;
    let sock = conn.socket_mut().socket_mut();
    // Bursts of network creation produce many events; a large buffer keeps them from being
    // dropped, and if the monitor dies anyway every call falls back to a fresh dump.
    let _ = sock.set_rx_buf_sz(4 << 20);
    sock.bind(&SocketAddr::new(0, groups))?;
    tokio::spawn(conn);
    view.monitor_alive.store(true, Ordering::SeqCst);
    tokio::spawn(async move {
        while let Some((msg, _)) = events.next().await {
            if let NetlinkPayload::InnerMessage(m) = &msg.payload {
                view.note(m);
            }
        }
        tracing::warn!("netlink event monitor stopped: host routes are re-read on every create");
        view.monitor_alive.store(false, Ordering::SeqCst);
    });
    Ok(())
}

pub(crate) fn kerr(op: &str, e: rtnetlink::Error) -> OslError {
    OslError::Kernel {
        op: op.to_string(),
        msg: e.to_string(),
    }
}

pub(crate) fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -errno)
}

pub(super) const EEXIST: i32 = 17;
pub(super) const ENODEV: i32 = 19;

impl Netlink {
    /// Opens the netlink socket; must be called inside a tokio runtime.
    pub fn new() -> std::io::Result<Netlink> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        let host = Arc::new(HostView {
            dirty: AtomicBool::new(true),
            ..Default::default()
        });
        spawn_monitor(host.clone())?;
        Ok(Netlink {
            handle,
            host,
            ns_handles: Mutex::default(),
        })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    pub async fn link_index(&self, name: &str) -> Result<Option<u32>, OslError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(m)) => Ok(Some(m.header.index)),
            Ok(None) => Ok(None),
            Err(e) if is_errno(&e, ENODEV) => Ok(None),
            Err(e) => Err(kerr("get link", e)),
        }
    }

    async fn bridge_up(&self, spec: &BridgeSpec) -> Result<(), OslError> {
        // Created down: it comes up (and the kernel adds its IPv6 link-local address and
        // routes) only once its index is registered as berth's, so those events do not look
        // like a change of the host's routes.
        let mut b = LinkMessageBuilder::<LinkBridge>::new(&spec.name);
        if let Some(mtu) = spec.mtu {
            b = b.mtu(mtu);
        }
        self.handle
            .link()
            .add(b.build())
            .execute()
            .await
            .map_err(|e| {
                if is_errno(&e, EEXIST) {
                    OslError::Exists(spec.name.clone())
                } else {
                    kerr(&format!("create bridge {}", spec.name), e)
                }
            })?;
        let index = self
            .link_index(&spec.name)
            .await?
            .ok_or_else(|| OslError::Kernel {
                op: format!("create bridge {}", spec.name),
                msg: "bridge vanished after creation".into(),
            })?;
        self.host
            .own
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(index);
        let v6 = spec.addrs.iter().any(|a| a.addr().is_ipv6());
        let conf = |key: &str, value: &str| {
            super::sysctl::write(&format!("net/ipv6/conf/{}/{key}", spec.name), value)
        };
        // Without IPv6 the bridge needs no link-local address and routes. Worse, the kernel keeps
        // the fe80::/64 routes of all devices in one list, so with thousands of bridges each
        // one coming up cost a millisecond more. Containers' link-local traffic is bridged at
        // L2 either way. (Errors ignored: a host may have IPv6 compiled out.)
        let _ = conf("disable_ipv6", if v6 { "0" } else { "1" });
        if v6 {
            // A bridge without ports would otherwise hold its gateway address "tentative".
            let _ = conf("accept_dad", "0");
        }
        for a in &spec.addrs {
            self.handle
                .address()
                .add(index, a.addr(), a.prefix_len())
                .execute()
                .await
                .map_err(|e| kerr(&format!("add address {a} to {}", spec.name), e))?;
        }
        // The kernel ignores IFLA_IFALIAS in a create request; the tag needs its own set.
        self.handle
            .link()
            .set(
                LinkUnspec::new_with_index(index)
                    .alias(spec.alias.clone())
                    .up()
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| kerr(&format!("bring up bridge {}", spec.name), e))?;
        Ok(())
    }
}

/// (index, name, alias) of the links whose alias starts with `prefix` (berth's tags).
pub(super) async fn tagged_links(
    h: &Handle,
    prefix: &str,
) -> Result<Vec<(u32, String, String)>, OslError> {
    let links: Vec<LinkMessage> = h
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| kerr("list links", e))?;
    Ok(links
        .iter()
        .filter_map(|m| {
            let a = alias_of(m).filter(|a| a.starts_with(prefix))?;
            Some((
                m.header.index,
                name_of(m).unwrap_or("").to_string(),
                a.to_string(),
            ))
        })
        .collect())
}

fn alias_of(m: &LinkMessage) -> Option<&str> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfAlias(s) => Some(s.as_str()),
        _ => None,
    })
}

fn name_of(m: &LinkMessage) -> Option<&str> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(s) => Some(s.as_str()),
        _ => None,
    })
}

fn route_dest(r: &RouteMessage) -> Option<IpNet> {
    let len = r.header.destination_prefix_length;
    if len == 0 {
        return None;
    }
    r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(v4)) => {
            IpNet::new(IpAddr::V4(*v4), len).ok()
        }
        RouteAttribute::Destination(RouteAddress::Inet6(v6)) => {
            IpNet::new(IpAddr::V6(*v6), len).ok()
        }
        _ => None,
    })
}

impl Osl for Netlink {
    fn adopt_link<'a>(&'a self, spec: &'a super::AdoptSpec) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(self.adopt(spec))
    }
    fn overlay_up<'a>(
        &'a self,
        spec: &'a super::OverlaySpec,
    ) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(Netlink::overlay_up(self, spec))
    }
    fn overlay_down(&self, netns: &std::path::Path) {
        Netlink::overlay_down(self, netns)
    }
    fn overlay_peers<'a>(
        &'a self,
        netns: &'a std::path::Path,
        peers: &'a [super::Peer],
    ) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(Netlink::overlay_peers(self, netns, peers))
    }
    fn links_with_alias_in<'a>(
        &'a self,
        netns: &'a std::path::Path,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, OslError>> {
        Box::pin(self.tagged_in(netns, prefix))
    }
    fn delete_link_in<'a>(
        &'a self,
        netns: &'a std::path::Path,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(self.delete_in(netns, name))
    }
    fn release_link<'a>(
        &'a self,
        netns: &'a std::path::Path,
        name: &'a str,
        src: &'a str,
    ) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(self.release(netns, name, src))
    }
    fn interface_addr<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<IpAddr>, OslError>> {
        Box::pin(async move {
            let Some(idx) = self.link_index(name).await? else {
                return Ok(None);
            };
            let addrs: Vec<_> = self
                .handle
                .address()
                .get()
                .set_link_index_filter(idx)
                .execute()
                .try_collect()
                .await
                .map_err(|e| kerr("list addresses", e))?;
            Ok(addrs.iter().find_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip @ IpAddr::V4(_)) => Some(*ip),
                    _ => None,
                })
            }))
        })
    }

    fn create_bridge<'a>(&'a self, spec: &'a BridgeSpec) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(async move {
            let r = self.bridge_up(spec).await;
            if r.is_err() && !matches!(r, Err(OslError::Exists(_))) {
                let _ = self.delete_link(&spec.name).await;
            }
            r
        })
    }

    fn delete_link<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(super::unlink::delete_link(None, name.to_string()))
    }

    fn link_exists<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, OslError>> {
        Box::pin(async move { Ok(self.link_index(name).await?.is_some()) })
    }

    fn links_with_alias<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, OslError>> {
        Box::pin(async move {
            let mine = tagged_links(&self.handle, prefix).await?;
            self.host
                .own
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(mine.iter().map(|(i, _, _)| *i));
            Ok(mine.into_iter().map(|(_, n, a)| (n, a)).collect())
        })
    }

    fn host_networks(&self) -> BoxFuture<'_, Result<Vec<IpNet>, OslError>> {
        Box::pin(async move {
            let alive = self.host.monitor_alive.load(Ordering::SeqCst);
            // cleared before the dump: a change during the dump marks it dirty again
            if alive && !self.host.dirty.swap(false, Ordering::SeqCst) {
                return Ok(self
                    .host
                    .cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone());
            }
            let fresh = self.dump_host_networks().await;
            match &fresh {
                Ok(v) => *self.host.cache.lock().unwrap_or_else(|p| p.into_inner()) = v.clone(),
                Err(_) => self.host.dirty.store(true, Ordering::SeqCst),
            }
            fresh
        })
    }

    fn enable_forwarding(&self) -> std::io::Result<()> {
        super::sysctl::write("net/ipv4/ip_forward", "1")?;
        // Traffic between two ports of one bridge is switched, not routed: only with
        // br_netfilter's hooks does it meet the forward chain, where icc=false drops it
        // (Docker enables the same). Absent on kernels without br_netfilter: icc is then moot.
        for key in [
            "net/bridge/bridge-nf-call-iptables",
            "net/bridge/bridge-nf-call-ip6tables",
        ] {
            if let Err(e) = super::sysctl::write(key, "1") {
                tracing::warn!("cannot set {key}: {e} (enable_icc=false will not be enforced)");
            }
        }
        Ok(())
    }

    fn create_sandbox<'a>(
        &'a self,
        path: &'a std::path::Path,
    ) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(self.sandbox_up(path))
    }

    fn delete_sandbox(&self, path: &std::path::Path) -> std::io::Result<()> {
        super::netns::delete(path)
    }

    fn sandbox_exists(&self, path: &std::path::Path) -> bool {
        super::endpoint::is_netns(path)
    }

    fn create_endpoint<'a>(
        &'a self,
        spec: &'a super::EndpointSpec,
    ) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(self.endpoint_up(spec))
    }

    fn set_default_routes<'a>(
        &'a self,
        netns: &'a std::path::Path,
        ifname: &'a str,
        gateways: &'a [IpAddr],
    ) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(self.routes_via(netns, ifname, gateways))
    }

    fn set_hairpin<'a>(&'a self, host_if: &'a str) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(self.hairpin_on(host_if))
    }
}

impl Netlink {
    /// Every route destination and interface subnet, except those of berth's own bridges.
    async fn dump_host_networks(&self) -> Result<Vec<IpNet>, OslError> {
        {
            let mut out = Vec::new();
            for msg in [
                RouteMessageBuilder::<Ipv4Addr>::new().build(),
                RouteMessageBuilder::<Ipv6Addr>::new().build(),
            ] {
                let routes: Vec<RouteMessage> = self
                    .handle
                    .route()
                    .get(msg)
                    .execute()
                    .try_collect()
                    .await
                    .map_err(|e| kerr("list routes", e))?;
                out.extend(
                    routes
                        .iter()
                        .filter(|r| route_oif(r).is_none_or(|i| !self.host.is_own(i)))
                        .filter_map(route_dest),
                );
            }
            let addrs: Vec<_> = self
                .handle
                .address()
                .get()
                .execute()
                .try_collect()
                .await
                .map_err(|e| kerr("list addresses", e))?;
            for a in addrs.iter().filter(|a| !self.host.is_own(a.header.index)) {
                let len = a.header.prefix_len;
                for attr in &a.attributes {
                    if let AddressAttribute::Address(ip) = attr {
                        if let Ok(n) = IpNet::new(*ip, len) {
                            // loopback is not a network anything routes to
                            if !ip.is_loopback() {
                                out.push(n.trunc());
                            }
                        }
                    }
                }
            }
            Ok(out)
        }
    }
}
