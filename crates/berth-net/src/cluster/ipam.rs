//! The `default` IPAM of global networks: an address is granted by creating its key
//! (`ipam/<nid>/<ip>`) in one etcd transaction, so two hosts never get the same one. The keys
//! are not on the host's lease: a host cut off from the store keeps its addresses.

use super::records::IpRec;
use super::{Cluster, ClusterStore};
use crate::error::Result;
use crate::ipam::Ipam;
use futures::future::BoxFuture;
use std::net::IpAddr;
use std::sync::Arc;

pub struct GlobalIpam(pub Arc<Cluster>);

impl Ipam for GlobalIpam {
    fn request_address<'a>(
        &'a self,
        nid: &'a str,
        ip: IpAddr,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let rec = IpRec {
                host: self.0.host_id.clone(),
                endpoint: owner.to_string(),
            };
            Ok(self.0.store.claim_ip(nid, ip, &rec).await?)
        })
    }
    fn release_addresses<'a>(
        &'a self,
        nid: &'a str,
        ips: &'a [IpAddr],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { Ok(self.0.store.release_ips(nid, ips).await?) })
    }
}
