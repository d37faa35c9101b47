//! Who grants a network's addresses. The controller always picks the candidate itself, from
//! its view of the network's pool (in order, so a released address is not reused at once),
//! then asks the network's IPAM to grant it: for a local network the pool in memory is the
//! whole truth, for a global one the cluster store decides between hosts (`cluster::ipam`).
//! A refused candidate is marked taken in the view and the next one tried.

use crate::error::Result;
use futures::future::BoxFuture;
use std::net::IpAddr;

pub trait Ipam: Send + Sync {
    /// Grants `ip` of network `nid` to endpoint `owner`; `Ok(false)`: someone else holds it.
    fn request_address<'a>(
        &'a self,
        nid: &'a str,
        ip: IpAddr,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<bool>>;
    fn release_addresses<'a>(
        &'a self,
        nid: &'a str,
        ips: &'a [IpAddr],
    ) -> BoxFuture<'a, Result<()>>;
}

/// Docker's `default` IPAM for local networks: this host's pools, held under the controller's
/// lock, are the only record, so a candidate taken there is granted.
pub struct LocalIpam;

impl Ipam for LocalIpam {
    fn request_address<'a>(
        &'a self,
        _: &'a str,
        _: IpAddr,
        _: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async { Ok(true) })
    }
    fn release_addresses<'a>(&'a self, _: &'a str, _: &'a [IpAddr]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}
