//! The operating-system layer: every kernel side effect of the network library goes through the
//! `Osl` trait, so the controller's logic is unit-tested against `fake::FakeOsl` without root,
//! and `netlink::Netlink` is tested for real inside network namespaces.

pub mod endpoint;
pub mod netlink;
pub mod netns;
pub mod overlay;
pub mod sysctl;
pub mod unlink;

#[cfg(test)]
pub mod fake;

pub use endpoint::{AdoptSpec, EndpointSpec};
use futures::future::BoxFuture;
use ipnet::IpNet;
pub use overlay::{OverlaySpec, Peer};
use std::net::IpAddr;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum OslError {
    #[error("interface {0} already exists")]
    Exists(String),
    #[error("{op}: {msg}")]
    Kernel { op: String, msg: String },
}

/// A Linux bridge as the bridge driver wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct BridgeSpec {
    pub name: String,
    /// Marks the bridge as berth's (IFLA_IFALIAS), so a restart can find orphans.
    pub alias: String,
    pub mtu: Option<u32>,
    /// Gateway addresses with the subnet's prefix length.
    pub addrs: Vec<IpNet>,
}

pub trait Osl: Send + Sync {
    /// Creates the bridge with its addresses and brings it up; all or nothing.
    fn create_bridge<'a>(&'a self, spec: &'a BridgeSpec) -> BoxFuture<'a, Result<(), OslError>>;
    /// Deletes a link; a missing link is not an error.
    fn delete_link<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), OslError>>;
    fn link_exists<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, OslError>>;
    /// (name, alias) of links whose alias starts with `prefix`.
    fn links_with_alias<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, OslError>>;
    /// Destinations of the host's routes (default routes excluded) and its interface subnets:
    /// what an auto-allocated subnet must not overlap.
    fn host_networks(&self) -> BoxFuture<'_, Result<Vec<IpNet>, OslError>>;
    /// net.ipv4.ip_forward=1 in the daemon's namespace.
    fn enable_forwarding(&self) -> std::io::Result<()>;
    /// A new network namespace pinned at `path` (a sandbox), with `lo` up.
    fn create_sandbox<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<(), OslError>>;
    /// Unpins and removes the file; a missing one is not an error.
    fn delete_sandbox(&self, path: &Path) -> std::io::Result<()>;
    /// Whether `path` is (still) a pinned network namespace.
    fn sandbox_exists(&self, path: &Path) -> bool;
    /// A veth pair from the bridge into the sandbox, configured, and tagged with `spec.alias`
    /// as its last step (so a tagged veth is a complete one); all or nothing.
    fn create_endpoint<'a>(&'a self, spec: &'a EndpointSpec)
        -> BoxFuture<'a, Result<(), OslError>>;
    /// Makes `ifname` inside the sandbox carry the default routes via `gateways`, replacing
    /// the routes another interface had.
    fn set_default_routes<'a>(
        &'a self,
        netns: &'a Path,
        ifname: &'a str,
        gateways: &'a [IpAddr],
    ) -> BoxFuture<'a, Result<(), OslError>>;
    /// Hairpin mode on a bridge port: frames may leave through the port they came in by. A
    /// container reaching its own published port through the host's address needs it when
    /// br_netfilter bridges the translated packet back to it.
    fn set_hairpin<'a>(&'a self, host_if: &'a str) -> BoxFuture<'a, Result<(), OslError>> {
        let _ = host_if;
        Box::pin(async { Ok(()) })
    }

    // ------------------------------------------------------------ overlay networks
    // (The fake OS layer of the unit tests keeps the defaults: no overlay data path.)

    /// An overlay network's namespace, bridge and VXLAN device; a complete one is adopted.
    fn overlay_up<'a>(&'a self, spec: &'a OverlaySpec) -> BoxFuture<'a, Result<(), OslError>> {
        let _ = spec;
        Box::pin(async { Ok(()) })
    }
    /// Removes an overlay network's namespace and everything in it.
    fn overlay_down(&self, netns: &Path) {
        let _ = netns;
    }
    /// Reconciles the VXLAN device's static peer entries toward `peers`.
    fn overlay_peers<'a>(
        &'a self,
        netns: &'a Path,
        peers: &'a [Peer],
    ) -> BoxFuture<'a, Result<(), OslError>> {
        let _ = (netns, peers);
        Box::pin(async { Ok(()) })
    }
    /// `links_with_alias` inside another namespace.
    fn links_with_alias_in<'a>(
        &'a self,
        netns: &'a Path,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, OslError>> {
        let _ = (netns, prefix);
        Box::pin(async { Ok(vec![]) })
    }
    /// `delete_link` inside another namespace (a missing one is not an error).
    fn delete_link_in<'a>(
        &'a self,
        netns: &'a Path,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), OslError>> {
        let _ = (netns, name);
        Box::pin(async { Ok(()) })
    }
    /// Gives a plugin's link back at Leave, as Docker does: down, renamed to the plugin's
    /// name for it, moved from the sandbox into the daemon's namespace (a missing sandbox or
    /// link is not an error: the kernel took it).
    fn release_link<'a>(
        &'a self,
        netns: &'a Path,
        name: &'a str,
        src: &'a str,
    ) -> BoxFuture<'a, Result<(), OslError>> {
        let _ = (netns, name, src);
        Box::pin(async { Ok(()) })
    }
    /// Moves a link a plugin made in the daemon's namespace into a sandbox, renamed and
    /// configured (a remote driver's Join).
    fn adopt_link<'a>(&'a self, spec: &'a AdoptSpec) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(async move {
            Err(OslError::Kernel {
                op: format!("move {} into the sandbox", spec.src),
                msg: "not supported by this OS layer".into(),
            })
        })
    }
    /// The first IPv4 address of an interface (`--cluster-advertise IFACE:PORT`).
    fn interface_addr<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<IpAddr>, OslError>> {
        let _ = name;
        Box::pin(async { Ok(None) })
    }
}
