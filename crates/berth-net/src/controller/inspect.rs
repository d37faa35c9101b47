//! Read-only views of the controller's state for diagnostics (`crate::diagnose`): copies taken
//! under the state lock, nothing held across kernel work, nothing changed.

use super::Controller;
use crate::cluster::records::EndpointRec;
use crate::endpoint::{Endpoint, Phase};
use crate::network::Network;
use crate::resolver::names::Found;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What the controller knows, as one consistent copy.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub networks: Vec<Network>,
    /// Live endpoints of this host, in attach order.
    pub endpoints: Vec<Endpoint>,
    /// Other hosts' endpoints on global networks.
    pub remote: Vec<EndpointRec>,
    /// Overlay networks' data paths on this host: network id → namespace.
    pub overlays: BTreeMap<String, PathBuf>,
    /// This host's VXLAN tunnel endpoint, when it is in a cluster.
    pub advertise: Option<String>,
}

impl Controller {
    /// A copy of the networks, live endpoints, remote endpoints and overlay data paths.
    pub fn model(&self) -> Model {
        let st = self.lock();
        let mut endpoints: Vec<Endpoint> = st
            .eps
            .eps
            .values()
            .filter(|e| e.phase == Phase::Live)
            .map(|e| e.ep.clone())
            .collect();
        endpoints.sort_by_key(|e| e.seq);
        let mut remote: Vec<EndpointRec> = st.remote.values().cloned().collect();
        remote.sort_by(|a, b| a.id.cmp(&b.id));
        Model {
            networks: st.networks.values().cloned().collect(),
            endpoints,
            remote,
            overlays: st.overlays.clone(),
            advertise: self.cluster_info().map(|(_, adv)| adv),
        }
    }

    /// What the embedded DNS would answer `container_id` for `name` (A records, or AAAA when
    /// `v6`), with the resolver's own lookup.
    pub fn dns_lookup(&self, container_id: &str, name: &str, v6: bool) -> Found {
        let q = name.trim_end_matches('.').to_ascii_lowercase();
        self.dns.lookup(container_id, &q, v6)
    }

    /// Whether the container's sandbox is served by the embedded DNS.
    pub fn dns_serves(&self, container_id: &str) -> bool {
        self.dns.serving(container_id)
    }
}
