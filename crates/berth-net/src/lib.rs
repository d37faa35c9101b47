//! berth's network library: the equivalent of Docker's libnetwork.

pub mod cluster;
pub mod controller;
pub mod diagnose;
pub mod drivers;
pub mod endpoint;
pub mod error;
pub mod fail;
pub mod filter;
pub mod firewall;
pub mod ipam;
mod laps;
pub mod network;
pub mod osl;
pub mod plugins;
pub mod portmap;
pub mod request;
pub mod resolver;
pub mod store;
#[cfg(test)]
mod testing;

pub use controller::{Config, Controller, NetRef};
pub use endpoint::EndpointRequest;
pub use error::{ErrorKind, NetError};
