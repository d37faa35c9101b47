//! Plugin networks removed from berth whose plugin has not yet been told (libnetwork's
//! "in-delete" networks). A `network rm` stores the network here in the transaction that
//! forgets it, and forgets it here once DeleteNetwork was sent (its failure is logged, as
//! Docker logs it). If the plugin
//! cannot be found, the rm fails with Docker's error (`error while removing network: failed
//! deleting network: plugin "x" not found`) and the network stays here, hidden from every
//! listing, its name free. The next start tells the plugin, or drops the record when the
//! plugin does not come back within Docker's retry window, as Docker's start force-deletes
//! such networks. A berthd killed between the two steps is finished the same way.

use super::Controller;
use crate::network::Network;
use crate::store::Op;
use std::sync::Arc;

pub(super) const IN_DELETE: &str = "networks_in_delete";

impl Controller {
    pub(super) fn forget_in_delete(&self, id: &str) {
        if let Err(e) = self.store.commit(&[Op::Delete(IN_DELETE, id)]) {
            tracing::error!("forgetting network {id} in delete: {e}");
        }
    }

    pub(super) fn networks_in_delete(&self) -> Vec<Network> {
        match self.store.list::<Network>(IN_DELETE) {
            Ok(l) => l.into_iter().map(|(_, n)| n).collect(),
            Err(e) => {
                tracing::error!("reading the networks in delete: {e}");
                vec![]
            }
        }
    }

    /// At start, in the background (a missing plugin is waited for ~15 s): DeleteNetwork for
    /// every network left in delete, then the record goes, told or not.
    pub(super) async fn finish_in_delete(self: Arc<Self>, nets: Vec<Network>) {
        for n in nets {
            let deleted = match self.driver(&n.driver).await {
                Ok(d) => d.delete_network(&n).await,
                Err(e) => Err(e),
            };
            match deleted {
                Ok(()) => tracing::info!("network {} ({}): DeleteNetwork sent", n.name, n.id),
                Err(e) => tracing::warn!(
                    "network {} ({}) was left in delete; dropped without its plugin: {e}",
                    n.name,
                    n.id
                ),
            }
            self.forget_in_delete(&n.id);
        }
    }
}
