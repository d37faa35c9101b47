//! Network drivers. `bridge` is the one users create locally; `host` and `null` exist only as
//! the predefined `host` and `none` networks; `overlay` spans hosts through the cluster store.

pub mod bridge;
pub mod overlay;
pub mod remote;

pub const BRIDGE: &str = "bridge";
pub const HOST: &str = "host";
pub const NULL: &str = "null";
pub const OVERLAY: &str = "overlay";

/// Where a driver's networks live: one host, or every host of the cluster store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Local,
    Global,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Local => "local",
            Scope::Global => "global",
        }
    }
}

/// The built-in drivers, as a type: what a network's `driver` string means to the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bridge,
    Host,
    Null,
    Overlay,
}

impl Kind {
    pub fn of(driver: &str) -> Option<Kind> {
        Some(match driver {
            BRIDGE => Kind::Bridge,
            HOST => Kind::Host,
            NULL => Kind::Null,
            OVERLAY => Kind::Overlay,
            _ => return None,
        })
    }

    /// GetCapabilities in libnetwork's terms.
    pub fn scope(self) -> Scope {
        match self {
            Kind::Overlay => Scope::Global,
            _ => Scope::Local,
        }
    }

    /// Whether containers get interfaces on its networks.
    pub fn has_endpoints(self) -> bool {
        matches!(self, Kind::Bridge | Kind::Overlay)
    }
}

use crate::controller::NetRef;
use crate::endpoint::Endpoint;
use crate::error::{NetError, Result};
use crate::network::Network;
use crate::osl::{BridgeSpec, EndpointSpec, Osl, OslError};
use futures::future::BoxFuture;
use std::sync::Arc;

/// GetCapabilities in libnetwork's terms: where networks live and where they connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub scope: Scope,
    pub connectivity_scope: Scope,
}

impl Capabilities {
    pub const LOCAL: Capabilities = Capabilities {
        scope: Scope::Local,
        connectivity_scope: Scope::Local,
    };
    pub const GLOBAL: Capabilities = Capabilities {
        scope: Scope::Global,
        connectivity_scope: Scope::Global,
    };
}

/// What a join decided about the endpoint's way out. Built-in drivers leave it to the
/// network's gateway (`gateway: None`); a plugin's Join decides (plugins.md §2.7).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Joined {
    pub gateway: Option<JoinGateway>,
}

/// A plugin's Join: its gateways (plain IPs), whether its static routes hold a default route,
/// and `DisableGatewayService`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinGateway {
    pub v4: Option<std::net::IpAddr>,
    pub v6: Option<std::net::IpAddr>,
    pub default_route: bool,
    pub disable_gateway_service: bool,
    /// The plugin's name for its interface (Join's `SrcName`): it goes back under that name
    /// at Leave.
    pub src_name: Option<String>,
}

impl JoinGateway {
    /// libnetwork's `needDefaultGW` for this endpoint: no gateway of any kind, and the
    /// gateway service not refused.
    pub fn wants_gateway_service(&self) -> bool {
        self.v4.is_none()
            && self.v6.is_none()
            && !self.default_route
            && !self.disable_gateway_service
    }
}

/// See [`NetworkDriver::join_then`].
pub type OnJoined<'a> = &'a (dyn Fn(&Joined) -> BoxFuture<'static, ()> + Send + Sync);

/// A network driver's side of the Container Network Model: the kernel objects of a network
/// on this host and of each endpoint. The controller keeps what is common to every driver
/// (store, addresses, DNS, ports, firewall policy, rollback) and calls these in CNM order:
/// `create_network` after the network is recorded, `join` (CreateEndpoint + Join) once the
/// endpoint is recorded and its addresses taken, `leave` (Leave + DeleteEndpoint) after its
/// record is gone, `delete_network` last. Each call is all or nothing.
pub trait NetworkDriver: Send + Sync {
    fn name(&self) -> &'static str;
    fn capabilities(&self) -> Capabilities;
    fn create_network<'a>(&'a self, n: &'a Network) -> BoxFuture<'a, Result<()>>;
    fn delete_network<'a>(&'a self, n: &'a Network) -> BoxFuture<'a, Result<()>>;
    /// The endpoint's interface in the sandbox, configured.
    fn join<'a>(
        &'a self,
        n: &'a NetRef,
        ep: &'a Endpoint,
        spec: &'a EndpointSpec,
    ) -> BoxFuture<'a, Result<Joined>>;
    /// `join`, with `on_joined` run as soon as the driver knows the endpoint's way out,
    /// alongside the kernel work left (a plugin's Join, while its interface moves into the
    /// sandbox), and awaited before this returns. Built-in drivers run it at the end.
    fn join_then<'a>(
        &'a self,
        n: &'a NetRef,
        ep: &'a Endpoint,
        spec: &'a EndpointSpec,
        on_joined: OnJoined<'a>,
    ) -> BoxFuture<'a, Result<Joined>> {
        Box::pin(async move {
            let j = self.join(n, ep, spec).await?;
            on_joined(&j).await;
            Ok(j)
        })
    }
    fn leave<'a>(&'a self, ep: &'a Endpoint) -> BoxFuture<'a, Result<()>>;
    /// `leave`, with `between` run after the endpoint left the sandbox and before the driver
    /// forgets it (a plugin's Leave, then `between`, then DeleteEndpoint: libnetwork's
    /// sbLeave programs the next gateway endpoint there). Built-in drivers run it at the end.
    fn leave_then<'a>(
        &'a self,
        ep: &'a Endpoint,
        between: BoxFuture<'a, ()>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.leave(ep).await?;
            between.await;
            Ok(())
        })
    }
    /// The endpoint became the container's gateway endpoint (ProgramExternalConnectivity,
    /// with the sandbox's port map and exposed ports); built-in drivers publish ports
    /// themselves (controller/ports.rs).
    fn program_external<'a>(
        &'a self,
        _ep: &'a Endpoint,
        _options: &'a crate::plugins::api::net::Options,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// The endpoint stops being the gateway endpoint (RevokeExternalConnectivity).
    fn revoke_external<'a>(&'a self, _ep: &'a Endpoint) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// The built-in drivers by name.
pub fn builtin(osl: Arc<dyn Osl>, alias_tag: String) -> Vec<Arc<dyn NetworkDriver>> {
    vec![
        Arc::new(BridgeDriver {
            osl: osl.clone(),
            alias_tag,
        }),
        Arc::new(OverlayDriver { osl }),
        Arc::new(NoEndpoints(Kind::Host)),
        Arc::new(NoEndpoints(Kind::Null)),
    ]
}

/// A Linux bridge per network on this host; endpoints are veth pairs into it.
pub struct BridgeDriver {
    osl: Arc<dyn Osl>,
    /// Tags berth's bridges (IFLA_IFALIAS), so a restart finds its orphans.
    alias_tag: String,
}

/// A bridge network's Linux bridge: its gateway addresses, tagged `<alias_tag><network id>`.
pub fn bridge_spec(n: &Network, alias_tag: &str) -> Option<BridgeSpec> {
    let b = n.bridge.as_ref()?;
    let addrs = n
        .subnets
        .iter()
        .filter(|s| !(s.gateway.is_ipv4() && b.inhibit_ipv4))
        .filter_map(|s| ipnet::IpNet::new(s.gateway, s.pool.subnet.prefix_len()).ok())
        .collect();
    Some(BridgeSpec {
        name: b.name.clone(),
        alias: format!("{alias_tag}{}", n.id),
        mtu: b.mtu,
        addrs,
    })
}

impl NetworkDriver for BridgeDriver {
    fn name(&self) -> &'static str {
        BRIDGE
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::LOCAL
    }
    fn create_network<'a>(&'a self, n: &'a Network) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let spec = bridge_spec(n, &self.alias_tag)
                .ok_or_else(|| NetError::internal("bridge network without its bridge"))?;
            match self.osl.create_bridge(&spec).await {
                Err(OslError::Exists(name)) => Err(NetError::forbidden(format!(
                    "cannot create network {} ({name}): an interface named {name} already exists on the host",
                    n.name
                ))),
                r => Ok(r?),
            }
        })
    }
    fn delete_network<'a>(&'a self, n: &'a Network) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if let Some(b) = &n.bridge {
                self.osl.delete_link(&b.name).await?;
            }
            Ok(())
        })
    }
    fn join<'a>(
        &'a self,
        _: &'a NetRef,
        _: &'a Endpoint,
        spec: &'a EndpointSpec,
    ) -> BoxFuture<'a, Result<Joined>> {
        Box::pin(async move {
            self.osl.create_endpoint(spec).await?;
            Ok(Joined::default())
        })
    }
    fn leave<'a>(&'a self, ep: &'a Endpoint) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { Ok(self.osl.delete_link(&ep.host_if).await?) })
    }
}

/// One VXLAN segment per network across the cluster. Its per-host data path (namespace,
/// `br0`, `vxlan0`, peers) is made by the first endpoint and follows the cluster store
/// (controller/overlay.rs); endpoints are veth pairs from that `br0` into the sandbox.
pub struct OverlayDriver {
    osl: Arc<dyn Osl>,
}

impl NetworkDriver for OverlayDriver {
    fn name(&self) -> &'static str {
        OVERLAY
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::GLOBAL
    }
    fn create_network<'a>(&'a self, _: &'a Network) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
    fn delete_network<'a>(&'a self, _: &'a Network) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
    fn join<'a>(
        &'a self,
        _: &'a NetRef,
        _: &'a Endpoint,
        spec: &'a EndpointSpec,
    ) -> BoxFuture<'a, Result<Joined>> {
        Box::pin(async move {
            self.osl.create_endpoint(spec).await?;
            Ok(Joined::default())
        })
    }
    fn leave<'a>(&'a self, ep: &'a Endpoint) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match &ep.host_netns {
                Some(ns) => Ok(self.osl.delete_link_in(ns, &ep.host_if).await?),
                None => Ok(self.osl.delete_link(&ep.host_if).await?),
            }
        })
    }
}

/// `host` and `null`: the predefined networks, without interfaces of their own.
pub struct NoEndpoints(pub Kind);

impl NetworkDriver for NoEndpoints {
    fn name(&self) -> &'static str {
        match self.0 {
            Kind::Host => HOST,
            _ => NULL,
        }
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::LOCAL
    }
    fn create_network<'a>(&'a self, _: &'a Network) -> BoxFuture<'a, Result<()>> {
        let name = self.name();
        Box::pin(async move {
            Err(NetError::forbidden(format!(
                "only one instance of \"{name}\" network is allowed"
            )))
        })
    }
    fn delete_network<'a>(&'a self, _: &'a Network) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
    fn join<'a>(
        &'a self,
        _: &'a NetRef,
        _: &'a Endpoint,
        _: &'a EndpointSpec,
    ) -> BoxFuture<'a, Result<Joined>> {
        let name = self.name();
        Box::pin(async move {
            Err(NetError::not_implemented(format!(
                "driver {name} does not support endpoints"
            )))
        })
    }
    fn leave<'a>(&'a self, _: &'a Endpoint) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}
