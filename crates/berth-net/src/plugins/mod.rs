//! Network and IPAM driver plugins: Docker's legacy (v1) remote protocol, JSON over HTTP on a
//! unix socket or TCP (`../shared/reference/plugins.md`).
//!
//! - [`discovery`]: finding a plugin by name (sockets, `.spec`, `.json`), Docker's retry window.
//! - [`registry`]: [`Plugins`], activation (`Plugin.Activate`, `Implements`), registration
//!   (GetCapabilities, GetDefaultAddressSpaces), re-activation of a plugin that came back.
//! - [`http`]: one call on the wire (headers, timeouts, bounded replies); [`tls`] for `https`.
//! - [`api`]: every message, field names as libnetwork's, decoded as Go decodes them.
//! - [`driver::RemoteDriver`], [`ipam::RemoteIpam`]: one async method per call.
//!
//! Every error is a [`PluginError`] worded as Docker words it; `NetError::from` keeps the
//! text (`plugin "x" not found` is a 404, the rest 500).
//!
//! # Notes for the controller (who calls what, and in which order)
//!
//! One `Plugins` per daemon: `Plugins::new(Config { dirs: Dirs::from_dirs(&plugins_dirs) or
//! Dirs::default(), retry: Retry::DOCKER, limits: Limits::default() })`. Resolve lazily, at
//! the operation that needs the plugin, never at start (except for remote IPAM of stored
//! networks with `RequiresRequestReplay`, below): `RemoteDriver::resolve(&plugins, driver)`,
//! `RemoteIpam::resolve(&plugins, ipam_driver)`. Both are cheap after the first use.
//! Plugin calls may take long (retry window ~15 s, call timeout) and may re-enter the Engine
//! API (Weave, Calico): never hold a controller lock across one.
//!
//! **network create** `-d P --ipam-driver I` (plugins.md §4.1):
//! 1. `RemoteDriver::resolve` → `capabilities()` gives the network's `Scope` (global needs the
//!    cluster store: else `datastore for scope "global" is not initialized`, after the
//!    rollback of step 5) and the ConnectivityScope.
//! 2. v28+ only: `gw_alloc_check` when `gw_alloc_checker`.
//! 3. IPAM: `RemoteIpam::resolve`, `address_space(global)`. Per IPv4 config (one empty one if
//!    none), then per IPv6 config: `request_pool` (Pool `""` = plugin chooses; `SubPool` from
//!    `--ip-range`; Options from `--ipam-opt`, `None` when none), then unless the user gave
//!    no `--gateway` and `Pool::gateway()` supplied one: `request_address(pool, gw, Some(
//!    gateway_request()))` (error text `failed to allocate gateway (<ip>): <e>`), then one
//!    `request_address(pool, Some(aux), None)` per aux address. Local networks without
//!    `--subnet`: a pool overlapping host routes is kept while asking again, then released.
//! 4. `create_network` with `IpamData { address_space, pool, gateway: Some(gw CIDR) | None,
//!    aux_addresses }` per pool, Options `{enable_ipv6, generic: {-o map}, internal?}`.
//! 5. On any failure undo in reverse: (DeleteNetwork if step 4 succeeded), ReleaseAddress
//!    aux and gateway, ReleasePool.
//!    A builtin driver with remote IPAM makes only the IPAM calls, and vice versa.
//!
//! **container start / network connect** (§4.2):
//! 1. `request_address(pool, --ip, None)` (with `RequiresMACAddress`: options
//!    `{com.docker.network.endpoint.macaddress: <mac>}`, same MAC in CreateEndpoint), IPv6 after.
//! 2. `create_endpoint` with Interface {Address CIDR, AddressIPv6, MacAddress} and Options
//!    (portmap, exposedports, dnsservers; see `api::net::keys`). It returns the merged
//!    interface (a MAC the plugin chose is adopted); it already rolled back with
//!    DeleteEndpoint when the reply was refused. Failure text:
//!    `failed to create endpoint <ep> on network <net>: <e>`. Undo: release addresses.
//! 3. `join` with SandboxKey (the sandbox netns path) and the sandbox labels as Options.
//!    Then move `src_name` from the daemon's namespace into the sandbox, rename it
//!    `<dst_prefix><N>` (N per sandbox and prefix from 0), set MAC, addresses, up, routes
//!    (`next_hop: None` = connected route on it), gateway(s) when this endpoint is the
//!    sandbox's gateway endpoint. No gateway, no default route, not `--internal` and not
//!    `disable_gateway_service`: attach to the gwbridge network (as for overlay).
//!    Undo of a failure after Join: `leave`, move the link back (renamed `src_name`, down),
//!    `delete_endpoint`, release addresses.
//! 4. If it became the gateway endpoint: `revoke_external_connectivity` on the previous one,
//!    then `program_external_connectivity` (not on `--internal`; not when the gwbridge gives
//!    the gateway). Failure: `driver failed programming external connectivity on endpoint
//!    <ep> (<id>): <e>` and undo as above. `endpoint_oper_info` is optional (errors ignored).
//!
//! **disconnect / stop / rm -f** (§4.3): `revoke_external_connectivity` (if gateway
//! endpoint), `leave`, move the link back to the host named `src_name` and down, program the
//! next gateway endpoint or the gwbridge, `delete_endpoint`, `release_address` v4 then v6.
//! Errors of Leave and DeleteEndpoint are logged only.
//!
//! **network rm** (§4.4): refused with endpoints; IPAM first (`release_address` gateway,
//! aux, `release_pool`, v4 then v6), then `delete_network` (errors logged, network removed).
//! If the driver cannot be resolved rm fails with `error while removing network: failed
//! deleting network: plugin "x" not found` and the network stays hidden in-delete.
//!
//! **restart** (§4.5): never re-send CreateNetwork; resolve the IPAM of every stored local
//! network with a remote IPAM at start, and with `requires_request_replay` replay
//! RequestPool (stored pool), gateway RequestAddress, aux, then endpoint addresses. Stale
//! endpoints after a crash: Leave/DeleteEndpoint only if `Plugins::registered(p)` is
//! already `Some` (never load a plugin to clean up); always release addresses. Record
//! intent (endpoint id, pool id, addresses) in the store before each plugin call, so a
//! crash mid-call is repaired with DeleteEndpoint / ReleaseAddress at the next start.
//!
//! `docker info` Plugins.Network: builtins plus `Plugins::names(NETWORK_DRIVER)`.

pub mod api;
pub mod discovery;
pub mod driver;
pub mod error;
pub mod http;
pub mod ipam;
pub mod registry;
pub mod tls;

#[cfg(test)]
mod tests;

pub use discovery::{Dirs, Retry, Spec};
pub use driver::{Interface, JoinInfo, RemoteDriver, Route};
pub use error::PluginError;
pub use http::Limits;
pub use ipam::{Pool, RemoteIpam};
pub use registry::{
    Capabilities, Config, IpamInfo, Plugin, Plugins, Registration, IPAM_DRIVER, NETWORK_DRIVER,
};
