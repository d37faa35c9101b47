//! Port publishing (`-p`, `-P`): what a container asks for, which host ports it gets, and the
//! host-side reservations that keep them.
//!
//! How a published port works (no process per port):
//! - The kernel forwards: each binding is an element of one of berth's nftables maps (see
//!   `firewall::ports`), and a run of ports whose host and container numbers are equal is a
//!   single interval element, whatever its length. DNAT happens in prerouting (traffic from
//!   outside and from containers, hairpin included) and in output (the host itself, also on
//!   `127.0.0.1` thanks to `route_localnet` on the bridge and a masquerade of loopback sources).
//! - berthd holds one bound socket per host port and protocol ([`host::HostPorts`]), as
//!   Podman's conmon does, so no other process can take a published port, and a port another
//!   process holds is refused with Docker's message.
//! - Where the kernel cannot translate (IPv6 `::1`, or an IPv6 host address for a container that
//!   only has IPv4), the held TCP socket listens and berthd's one proxy ([`proxy`]) relays.
//!
//! The parts: [`spec`] parses the container's configuration (pure), [`alloc`] decides host
//! ports (pure), [`runs`] groups bindings into runs (pure), [`host`] touches the kernel.

pub mod alloc;
pub mod assign;
pub mod diag;
pub mod host;
pub mod proxy;
pub mod runs;
pub mod spec;

pub use alloc::Allocator;
pub use host::{HostPorts, Kernel};
pub use runs::Run;
pub use spec::{Proto, Want};

/// Go's `net.JoinHostPort`: `1.2.3.4:80`, `[::1]:80`.
pub fn join_host_port(ip: std::net::IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(ip, port).to_string()
}
