//! `Osl` over rtnetlink: one netlink socket for the daemon's lifetime, no child processes.

use super::{BridgeSpec, Osl, OslError};
use futures::future::BoxFuture;
use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, RouteMessageBuilder};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub struct Netlink {
    handle: Handle,
}

fn kerr(op: &str, e: rtnetlink::Error) -> OslError {
    OslError::Kernel {
        op: op.to_string(),
        msg: e.to_string(),
    }
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -errno)
}

const EEXIST: i32 = 17;
const ENODEV: i32 = 19;

impl Netlink {
    /// Opens the netlink socket; must be called inside a tokio runtime.
    pub fn new() -> std::io::Result<Netlink> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
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
        let mut b = LinkBridge::new(&spec.name);
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
        // The kernel ignores IFLA_IFALIAS in a create request; the tag needs its own set.
        self.handle
            .link()
            .set(
                LinkUnspec::new_with_index(index)
                    .alias(spec.alias.clone())
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| kerr(&format!("tag bridge {}", spec.name), e))?;
        for a in &spec.addrs {
            if a.addr().is_ipv6() {
                // A bridge without ports would otherwise hold its gateway address "tentative".
                let _ =
                    super::sysctl::write(&format!("net/ipv6/conf/{}/accept_dad", spec.name), "0");
            }
            self.handle
                .address()
                .add(index, a.addr(), a.prefix_len())
                .execute()
                .await
                .map_err(|e| kerr(&format!("add address {a} to {}", spec.name), e))?;
        }
        Ok(())
    }
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
        Box::pin(async move {
            let Some(index) = self.link_index(name).await? else {
                return Ok(());
            };
            match self.handle.link().del(index).execute().await {
                Ok(()) => Ok(()),
                Err(e) if is_errno(&e, ENODEV) => Ok(()),
                Err(e) => Err(kerr(&format!("delete link {name}"), e)),
            }
        })
    }

    fn link_exists<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, OslError>> {
        Box::pin(async move { Ok(self.link_index(name).await?.is_some()) })
    }

    fn links_with_alias<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, OslError>> {
        Box::pin(async move {
            let links: Vec<LinkMessage> = self
                .handle
                .link()
                .get()
                .execute()
                .try_collect()
                .await
                .map_err(|e| kerr("list links", e))?;
            Ok(links
                .iter()
                .filter_map(|m| {
                    let alias = alias_of(m)?;
                    alias
                        .starts_with(prefix)
                        .then(|| (name_of(m).unwrap_or("").to_string(), alias.to_string()))
                })
                .collect())
        })
    }

    fn host_networks(&self) -> BoxFuture<'_, Result<Vec<IpNet>, OslError>> {
        Box::pin(async move {
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
                out.extend(routes.iter().filter_map(route_dest));
            }
            let addrs: Vec<_> = self
                .handle
                .address()
                .get()
                .execute()
                .try_collect()
                .await
                .map_err(|e| kerr("list addresses", e))?;
            for a in addrs {
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
        })
    }

    fn enable_forwarding(&self) -> std::io::Result<()> {
        super::sysctl::write("net/ipv4/ip_forward", "1")
    }
}
