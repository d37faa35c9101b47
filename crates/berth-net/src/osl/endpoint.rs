//! Endpoints: a veth pair whose host end joins a network's bridge and whose other end becomes
//! `ethN` inside a sandbox's namespace, with its MAC, addresses and routes.

use super::netlink::{is_errno, kerr, Netlink, EEXIST};
use super::{netns, OslError};
use futures::future::BoxFuture;
use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{
    Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteAddRequest, RouteMessageBuilder,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct EndpointSpec {
    /// `veth<7 hex>`, the end that stays on the host.
    pub host_if: String,
    /// IFLA_IFALIAS of the host end (`berth/<instance>/ep/<endpoint id>`), set last: a restart
    /// keeps only endpoints whose veth carries it, and deletes tagged veths nobody knows.
    pub alias: String,
    pub bridge: String,
    /// Where the host end and the bridge live: the daemon's namespace (`None`), or an overlay
    /// network's.
    pub host_netns: Option<PathBuf>,
    /// The sandbox's pinned namespace.
    pub netns: PathBuf,
    /// `ethN` inside the sandbox.
    pub ifname: String,
    pub mac: [u8; 6],
    pub mtu: Option<u32>,
    pub addrs: Vec<IpNet>,
    /// Default routes to install through this endpoint (empty unless it is the sandbox's
    /// gateway endpoint).
    pub gateways: Vec<IpAddr>,
}

/// A link made by someone else (a plugin) in the daemon's namespace, to become `ifname` in a
/// sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct AdoptSpec {
    pub src: String,
    pub netns: PathBuf,
    pub ifname: String,
    pub mac: Option<[u8; 6]>,
    pub addrs: Vec<IpNet>,
    pub gateways: Vec<IpAddr>,
    /// Static routes: (destination, next hop; none = connected through the link).
    pub routes: Vec<(IpNet, Option<IpAddr>)>,
    /// IFLA_IFALIAS set last, inside the sandbox (`berth/<instance>/ep/<endpoint id>`): a
    /// restart keeps a plugin's endpoint only if its interface carries it (a complete one).
    pub alias: String,
}

/// A netlink handle whose socket lives in the namespace at `path`.
pub fn handle_in(path: &Path) -> std::io::Result<Handle> {
    let rt = tokio::runtime::Handle::current();
    netns::run_in(path, move || {
        // the socket registers with the runtime's reactor when it is made
        let _entered = rt.enter();
        let (conn, handle, _) = rtnetlink::new_connection()?;
        rt.spawn(conn);
        Ok(handle)
    })
}

fn io_err(op: &str, e: std::io::Error) -> OslError {
    OslError::Kernel {
        op: op.to_string(),
        msg: e.to_string(),
    }
}

async fn index_in(h: &Handle, name: &str) -> Result<u32, OslError> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(m)) => Ok(m.header.index),
        Ok(None) => Err(OslError::Kernel {
            op: format!("find {name}"),
            msg: "no such interface".into(),
        }),
        Err(e) => Err(kerr(&format!("find {name}"), e)),
    }
}

impl Netlink {
    /// Creates the pair, attaches and configures both ends; on error the pair is deleted (one
    /// end takes the other with it).
    ///
    /// The inner end is created inside the sandbox, already named and with its MAC:
    /// moving a link between namespaces waits for an RCU grace period (~20 ms here), which
    /// creating it there does not.
    pub async fn endpoint_up(&self, spec: &EndpointSpec) -> Result<(), OslError> {
        // The sandbox's netlink socket is opened (on a thread that enters the namespace)
        // while the kernel creates the pair.
        let ns = spec.netns.clone();
        let opening = tokio::task::spawn_blocking(move || handle_in(&ns));
        let h = &self.host_handle(spec)?;
        let bridge = index_in(h, &spec.bridge).await?;
        let fd = netns::open(&spec.netns).map_err(|e| io_err("open sandbox", e))?;
        let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(spec.ifname.clone())
            .address(spec.mac.to_vec())
            .setns_by_fd(fd.as_raw_fd());
        // Host end created down, joined to the bridge: it comes up once IPv6 is off on it.
        let mut host = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(spec.host_if.clone())
            .controller(bridge);
        if let Some(m) = spec.mtu {
            peer = peer.mtu(m);
            host = host.mtu(m);
        }
        let msg = host
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .build();
        h.link().add(msg).execute().await.map_err(|e| {
            if is_errno(&e, EEXIST) {
                OslError::Exists(spec.host_if.clone())
            } else {
                kerr(&format!("create veth {}", spec.host_if), e)
            }
        })?;
        let inner = match opening.await {
            Ok(Ok(h)) => Ok(h),
            Ok(Err(e)) => Err(io_err("enter sandbox", e)),
            Err(e) => Err(io_err("enter sandbox", std::io::Error::other(e))),
        };
        let r = match inner {
            Ok(inner) => self.endpoint_configure(spec, h, &inner).await,
            Err(e) => Err(e),
        };
        if r.is_err() {
            if let Ok(Some(i)) = super::overlay::index_of(h, &spec.host_if).await {
                let _ = h.link().del(i).execute().await;
            }
        }
        r
    }

    async fn endpoint_configure(
        &self,
        spec: &EndpointSpec,
        host: &Handle,
        inner: &Handle,
    ) -> Result<(), OslError> {
        // A bridge port needs no IPv6 of its own; without this every veth would get a link-local
        // address and route (host route events, and a kernel list that grows per device).
        // (Overlay namespaces have IPv6 off as a whole.)
        if spec.host_netns.is_none() {
            let _ =
                super::sysctl::write(&format!("net/ipv6/conf/{}/disable_ipv6", spec.host_if), "1");
        }
        let idx = index_in(inner, &spec.ifname).await?;
        // One socket's requests are handled in the order sent, so the link comes up and gets
        // its addresses before the routes through them, without waiting for each answer.
        // (Creating the peer up is refused by the kernel: ENOTCONN.)
        let ifname = &spec.ifname;
        let mut steps: Vec<BoxFuture<'_, Result<(), OslError>>> = Vec::new();
        let up = inner
            .link()
            .set(LinkUnspec::new_with_index(idx).up().build());
        steps.push(Box::pin(async move {
            up.execute()
                .await
                .map_err(|e| kerr(&format!("bring up {ifname}"), e))
        }));
        for a in &spec.addrs {
            let mut req = inner.address().add(idx, a.addr(), a.prefix_len());
            if a.addr().is_ipv6() {
                // assigned by IPAM, unique by construction: no ~1 s of "tentative" DAD
                req.message_mut()
                    .attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
            steps.push(Box::pin(async move {
                req.execute()
                    .await
                    .map_err(|e| kerr(&format!("add address {a} to {ifname}"), e))
            }));
        }
        for gw in &spec.gateways {
            // replace: the interface that carried the routes before may still be on its way
            // out (its veth is deleted in the background), its routes with it
            let req = default_route(inner, idx, *gw, true)?;
            steps.push(Box::pin(async move {
                req.execute()
                    .await
                    .map_err(|e| kerr(&format!("default route via {gw}"), e))
            }));
        }
        futures::future::try_join_all(steps).await?;
        // up and tagged last: a tagged veth is a complete one
        host.link()
            .set(
                LinkUnspec::new_with_name(&spec.host_if)
                    .alias(spec.alias.clone())
                    .up()
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| kerr(&format!("bring up {}", spec.host_if), e))?;
        Ok(())
    }

    /// Moves `spec.src` into the sandbox (down, renamed, in one request), then sets its MAC,
    /// addresses, routes and brings it up. On error the link is given back to the daemon's
    /// namespace under the plugin's name, as at Leave (deleted if even that fails), for the
    /// plugin's DeleteEndpoint to find.
    pub async fn adopt(&self, spec: &AdoptSpec) -> Result<(), OslError> {
        let ns = spec.netns.clone();
        let opening = tokio::task::spawn_blocking(move || handle_in(&ns));
        let h = self.handle();
        let idx = index_in(h, &spec.src).await?;
        let fd = netns::open(&spec.netns).map_err(|e| io_err("open sandbox", e))?;
        let t0 = std::time::Instant::now();
        h.link()
            .set(
                LinkUnspec::new_with_index(idx)
                    .down()
                    .name(spec.ifname.clone())
                    .setns_by_fd(fd.as_raw_fd())
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| kerr(&format!("move {} into the sandbox", spec.src), e))?;
        // the kernel's share of a plugin's connect (an RCU barrier), for berth-bench
        tracing::debug!(
            "link {} moved into {} as {} in {:?}",
            spec.src,
            spec.netns.display(),
            spec.ifname,
            t0.elapsed()
        );
        let mut lap = crate::laps::Laps::start();
        let inner = match opening.await {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => return Err(io_err("enter sandbox", e)),
            Err(e) => return Err(io_err("enter sandbox", std::io::Error::other(e))),
        };
        lap.mark("sandbox socket");
        let r = async {
            let i = index_in(&inner, &spec.ifname).await?;
            lap.mark("find");
            // the MAC is set before the flags in one request (the kernel's order)
            let mut up = LinkUnspec::new_with_index(i);
            if let Some(mac) = spec.mac {
                up = up.address(mac.to_vec());
            }
            inner
                .link()
                .set(up.up().build())
                .execute()
                .await
                .map_err(|e| {
                    kerr(
                        &format!("set the MAC of {} and bring it up", spec.ifname),
                        e,
                    )
                })?;
            lap.mark("up");
            for a in &spec.addrs {
                inner
                    .address()
                    .add(i, a.addr(), a.prefix_len())
                    .execute()
                    .await
                    .map_err(|e| kerr(&format!("add address {a} to {}", spec.ifname), e))?;
            }
            lap.mark("addresses");
            for (dst, via) in &spec.routes {
                let b = RouteMessageBuilder::<IpAddr>::new()
                    .destination_prefix(dst.addr(), dst.prefix_len())
                    .map_err(|e| OslError::Kernel {
                        op: format!("route to {dst}"),
                        msg: e.to_string(),
                    })?;
                let b = match via {
                    Some(gw) => b.gateway(*gw).map_err(|e| OslError::Kernel {
                        op: format!("route to {dst}"),
                        msg: e.to_string(),
                    })?,
                    None => b,
                };
                inner
                    .route()
                    .add(b.output_interface(i).build())
                    .replace()
                    .execute()
                    .await
                    .map_err(|e| kerr(&format!("route to {dst}"), e))?;
            }
            add_default_routes(&inner, i, &spec.gateways, true).await?;
            lap.mark("routes");
            inner
                .link()
                .set(
                    LinkUnspec::new_with_index(i)
                        .alias(spec.alias.clone())
                        .build(),
                )
                .execute()
                .await
                .map_err(|e| kerr(&format!("tag {}", spec.ifname), e))?;
            lap.mark("tag");
            tracing::debug!("link {} configured in the sandbox: {lap}", spec.ifname);
            Ok(())
        }
        .await;
        if r.is_err()
            && self
                .release(&spec.netns, &spec.ifname, &spec.src)
                .await
                .is_err()
        {
            if let Ok(i) = index_in(&inner, &spec.ifname).await {
                let _ = inner.link().del(i).execute().await;
            }
        }
        r
    }

    /// `adopt` undone at Leave (libnetwork's `Interface.Remove`): the link goes back to the
    /// daemon's namespace down and under the plugin's name, in one request, for the plugin's
    /// DeleteEndpoint to find.
    pub async fn release(&self, netns: &Path, name: &str, src: &str) -> Result<(), OslError> {
        if !is_netns(netns) {
            return Ok(());
        }
        let ns = netns.to_path_buf();
        let inner = tokio::task::spawn_blocking(move || handle_in(&ns))
            .await
            .map_err(|e| io_err("enter sandbox", std::io::Error::other(e)))?
            .map_err(|e| io_err("enter sandbox", e))?;
        let Ok(i) = index_in(&inner, name).await else {
            return Ok(());
        };
        // this thread is in the daemon's namespace (only `run_in`'s threads leave it)
        let home = netns::open(Path::new("/proc/thread-self/ns/net"))
            .map_err(|e| io_err("open the daemon's namespace", e))?;
        inner
            .link()
            .set(
                LinkUnspec::new_with_index(i)
                    .down()
                    .name(src.to_string())
                    .setns_by_fd(home.as_raw_fd())
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| kerr(&format!("move {name} back as {src}"), e))
    }

    /// `ip link set HOST_IF type bridge_slave hairpin on`.
    pub async fn hairpin_on(&self, host_if: &str) -> Result<(), OslError> {
        let h = self.handle();
        let idx = index_in(h, host_if).await?;
        let msg = rtnetlink::LinkBridgePort::new(idx)
            .append_info_data(netlink_packet_route::link::InfoBridgePort::HairpinMode(
                true,
            ))
            .build();
        // bridge port settings go in RTM_NEWLINK; RTM_SETLINK ignores them
        h.link()
            .set_port(msg)
            .execute()
            .await
            .map_err(|e| kerr(&format!("hairpin on {host_if}"), e))
    }

    /// Points the sandbox's default routes at `ifname`.
    pub async fn routes_via(
        &self,
        netns: &Path,
        ifname: &str,
        gateways: &[IpAddr],
    ) -> Result<(), OslError> {
        let inner = handle_in(netns).map_err(|e| io_err("enter sandbox", e))?;
        let idx = index_in(&inner, ifname).await?;
        add_default_routes(&inner, idx, gateways, true).await
    }

    /// Pins a new namespace and brings its loopback up; on error nothing stays pinned.
    pub async fn sandbox_up(&self, path: &Path) -> Result<(), OslError> {
        netns::create(path).map_err(|e| io_err(&format!("create {}", path.display()), e))?;
        let r = async {
            let inner = handle_in(path).map_err(|e| io_err("enter sandbox", e))?;
            let lo = index_in(&inner, "lo").await?;
            inner
                .link()
                .set(LinkUnspec::new_with_index(lo).up().build())
                .execute()
                .await
                .map_err(|e| kerr("bring up lo", e))
        }
        .await;
        if r.is_err() {
            let _ = netns::delete(path);
        }
        r
    }
}

/// `replace`: the sandbox may already have default routes through another interface.
async fn add_default_routes(
    h: &Handle,
    idx: u32,
    gateways: &[IpAddr],
    replace: bool,
) -> Result<(), OslError> {
    for gw in gateways {
        default_route(h, idx, *gw, replace)?
            .execute()
            .await
            .map_err(|e| kerr(&format!("default route via {gw}"), e))?;
    }
    Ok(())
}

fn default_route(
    h: &Handle,
    idx: u32,
    gw: IpAddr,
    replace: bool,
) -> Result<RouteAddRequest, OslError> {
    let any = match gw {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let route = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(any, 0)
        .and_then(|b| b.gateway(gw))
        .map_err(|e| OslError::Kernel {
            op: format!("default route via {gw}"),
            msg: e.to_string(),
        })?
        .output_interface(idx)
        .build();
    let req = h.route().add(route);
    Ok(if replace { req.replace() } else { req })
}

/// A pinned namespace is an nsfs file; after a reboot or an unmount only a plain file (or
/// nothing) is left.
pub fn is_netns(path: &Path) -> bool {
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs is plain data, for which all zeroes is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and statfs fills the struct we own.
    unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == NSFS_MAGIC }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osl::{BridgeSpec, Osl};
    use crate::testing::run;

    /// Unpins the sandbox even when an assertion fails, so no mount is left behind.
    struct Pinned(PathBuf);
    impl Drop for Pinned {
        fn drop(&mut self) {
            let _ = netns::delete(&self.0);
        }
    }

    /// The whole test runs on a thread that left the machine's namespace: the bridge, the
    /// sandbox and the traffic exist only there.
    #[test]
    fn veth_into_sandbox_with_address_route_and_traffic() {
        let dir = tempfile::tempdir().unwrap();
        let sb = dir.path().join("netns/sb1");
        crate::testing::block_on_in_new_netns(move || async move {
            let nl = Netlink::new().unwrap();
            nl.create_bridge(&BridgeSpec {
                name: "br-t".into(),
                alias: "test".into(),
                mtu: None,
                addrs: vec!["10.9.0.1/24".parse().unwrap()],
            })
            .await
            .unwrap();
            nl.create_sandbox(&sb).await.unwrap();
            assert!(nl.sandbox_exists(&sb));
            let _pin = Pinned(sb.clone());
            let spec = EndpointSpec {
                host_if: "vethabc1234".into(),
                alias: "berth/test/ep/1".into(),
                bridge: "br-t".into(),
                host_netns: None,
                netns: sb.clone(),
                ifname: "eth0".into(),
                mac: [0x02, 0x42, 10, 9, 0, 2],
                mtu: Some(1400),
                addrs: vec!["10.9.0.2/24".parse().unwrap()],
                gateways: vec!["10.9.0.1".parse().unwrap()],
            };
            nl.create_endpoint(&spec).await.unwrap();

            let net = format!("--net={}", sb.display());
            let addr = run(&["nsenter", &net, "ip", "-j", "addr", "show", "eth0"]);
            assert!(addr.contains("\"10.9.0.2\""), "{addr}");
            assert!(addr.contains("02:42:0a:09:00:02"), "{addr}");
            assert!(addr.contains("\"mtu\":1400"), "{addr}");
            let routes = run(&["nsenter", &net, "ip", "-j", "route"]);
            assert!(
                routes.contains("\"dst\":\"default\",\"gateway\":\"10.9.0.1\""),
                "{routes}"
            );
            let host = run(&["ip", "-j", "link", "show", "vethabc1234"]);
            assert!(host.contains("\"master\":\"br-t\""), "{host}");
            assert!(host.contains("\"ifalias\":\"berth/test/ep/1\""), "{host}");
            let lo = run(&["nsenter", &net, "ip", "-j", "link", "show", "lo"]);
            assert!(lo.contains("LOWER_UP"), "{lo}");
            // real packets: the sandbox reaches its gateway through the bridge
            run(&[
                "nsenter", &net, "busybox", "ping", "-c", "1", "-W", "2", "10.9.0.1",
            ]);

            // all or nothing: a step failing after the pair exists (a gateway the
            // interface cannot reach) leaves no veth behind, on either side
            let bad = EndpointSpec {
                host_if: "vethdef5678".into(),
                ifname: "eth1".into(),
                addrs: vec!["10.9.0.3/24".parse().unwrap()],
                gateways: vec!["192.0.2.1".parse().unwrap()],
                ..spec.clone()
            };
            assert!(nl.create_endpoint(&bad).await.is_err());
            assert!(!nl.link_exists("vethdef5678").await.unwrap());
            assert!(!run(&["nsenter", &net, "ip", "link"]).contains("eth1"));
            let nosuch = EndpointSpec {
                bridge: "br-nosuch".into(),
                ..bad.clone()
            };
            assert!(nl.create_endpoint(&nosuch).await.is_err());
            assert!(!nl.link_exists("vethdef5678").await.unwrap());

            nl.delete_link("vethabc1234").await.unwrap();
            assert!(!run(&["nsenter", &net, "ip", "link"]).contains("eth0"));
        });
    }
}
