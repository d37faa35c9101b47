//! Network removal: the record forgotten and the rules removed at once, the bridge deleted in
//! the background (its teardown waits for RCU grace periods), prune.

use super::in_delete::IN_DELETE;
use super::*;

impl Controller {
    pub async fn delete(self: &Arc<Self>, term: &str) -> Result<()> {
        let n = self.resolve(term, true)?;
        if n.predefined {
            return Err(NetError::forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        self.remove(&n.id, false).await
    }

    /// Forgets the network in the store and removes its rules, then deletes the bridge in the
    /// background: the kernel's bridge teardown waits for RCU grace periods (tens of ms) and
    /// nobody needs to wait for it. The subnets and bridge name stay taken until the bridge is
    /// gone, so nothing new can collide with it meanwhile. A network that tells plugins is
    /// first let alone by its endpoints' teardowns (at most `LEAVING_WAIT`), and its plugin
    /// found before DeleteNetwork: a missing one fails the rm (in_delete.rs).
    pub(super) async fn remove(self: &Arc<Self>, id: &str, predefined_ok: bool) -> Result<()> {
        let global = self
            .lock()
            .networks
            .get(id)
            .filter(|n| n.is_global())
            .cloned();
        if let Some(n) = global {
            self.wait_left(&n).await?;
            return self.delete_overlay(&n).await;
        }
        let deadline = tokio::time::Instant::now() + LEAVING_WAIT;
        let net = loop {
            let left = self.left.notified();
            tokio::pin!(left);
            left.as_mut().enable();
            let taken = {
                let mut st = self.lock();
                match st.networks.get(id) {
                    Some(n) if n.predefined && !predefined_ok => {
                        return Err(NetError::forbidden(format!(
                            "{} is a pre-defined network and cannot be removed",
                            n.name
                        )))
                    }
                    Some(n) if tells_plugins(n) && st.eps.leaving.contains_key(id) => {
                        Err(active_endpoints(n))
                    }
                    Some(n) if st.eps.has_endpoints(id) => return Err(active_endpoints(n)),
                    Some(_) => {
                        let net = st.networks.remove(id).expect("present");
                        // The name stays taken until the store has forgotten the network:
                        // a create of the same name committed before this delete would
                        // leave two records of one name for the next start if berthd died
                        // between the two commits.
                        st.pending_names.insert(net.name.clone());
                        Ok(net)
                    }
                    None => return Err(NetError::not_found(format!("network {id} not found"))),
                }
            };
            match taken {
                Ok(net) => break net,
                // a plugin still hearing of an endpoint's leave after LEAVING_WAIT: as if
                // the disconnect had not ended (Docker's disconnect waits for the plugin)
                Err(busy) => {
                    if tokio::time::timeout_at(deadline, left).await.is_err() {
                        return Err(busy);
                    }
                }
            }
        };
        // with a remote IPAM, its grants are journaled as the record goes (ipam_grants.rs)
        let released = super::ipam_grants::grants_of(&net, None);
        let entries = super::ipam_grants::entries(&released);
        let deleted = entries
            .iter()
            .map(|(key, g)| Op::put(super::ipam_grants::IPAM_GRANTS, key, *g))
            .collect::<std::result::Result<Vec<_>, _>>()
            .and_then(|mut ops| {
                ops.insert(0, Op::Delete(NETWORKS, id));
                if net.plugin().is_some() {
                    // kept until the plugin got DeleteNetwork (in_delete.rs)
                    ops.push(Op::put(IN_DELETE, id, &net)?);
                }
                self.store.commit(&ops)
            });
        {
            let mut st = self.lock();
            st.pending_names.remove(&net.name);
            if let Err(e) = deleted {
                st.networks.insert(id.to_string(), net);
                return Err(e.into());
            }
        }
        crate::fail::point("network-rm/stored");
        // From here the store no longer knows the network: a failure below leaves an orphan
        // that the next start removes, so it is logged rather than returned; the one error
        // returned is a plugin that cannot be found (the network stays in delete).
        if let Some(f) = fw_network(&net) {
            if let Err(e) = self.fw.remove_network(&f) {
                tracing::error!("removing firewall elements of {}: {e}", net.name);
            }
        }
        crate::fail::point("network-rm/firewall");
        // Docker releases the IPAM's pools before the driver deletes the network
        self.release_network_pools(&net).await;
        let driver = match self.driver(&net.driver).await {
            Ok(d) => d,
            Err(e) => {
                // a plugin that is gone: Docker's answer, and the network stays hidden in
                // the store until a start finds the plugin again or gives up (in_delete.rs)
                self.release(&mut self.lock(), &net);
                return Err(NetError::internal(format!(
                    "error while removing network: failed deleting network: {e}"
                )));
            }
        };
        let this = Arc::clone(self);
        let teardown = async move {
            if let Err(e) = driver.delete_network(&net).await {
                tracing::error!("removing the kernel objects of network {}: {e}", net.name);
            }
            crate::fail::point("network-rm/bridge");
            if net.plugin().is_some() {
                this.forget_in_delete(&net.id);
            }
            let mut st = this.lock();
            this.release(&mut st, &net);
        };
        if predefined_ok {
            // rebuilding the default bridge reuses its name right away
            teardown.await;
        } else {
            self.spawn_teardown(teardown);
        }
        Ok(())
    }

    /// Waits while endpoints of a network that tells plugins are still being torn down: a
    /// disconnect answers before its Leave, DeleteEndpoint and ReleaseAddress ran in the
    /// background, and the plugins must get those before the network's DeleteNetwork and
    /// ReleasePool (Docker's disconnect returns only after them).
    async fn wait_left(&self, n: &Network) -> Result<()> {
        if !tells_plugins(n) {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + LEAVING_WAIT;
        loop {
            let left = self.left.notified();
            tokio::pin!(left);
            left.as_mut().enable();
            if !self.lock().eps.leaving.contains_key(&n.id) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, left).await.is_err() {
                return Err(active_endpoints(n));
            }
        }
    }

    pub async fn prune(self: &Arc<Self>, filters: Filters) -> Result<Vec<String>> {
        let f = PruneFilter::new(filters)?;
        let victims: Vec<Network> = {
            let st = self.lock();
            st.networks
                .values()
                .filter(|n| !n.predefined && !st.eps.has_endpoints(&n.id) && f.matches(n))
                .cloned()
                .collect()
        };
        let mut deleted = Vec::new();
        for n in victims {
            match self.remove(&n.id, false).await {
                Ok(()) => deleted.push(n.name),
                Err(e) => tracing::warn!("prune {}: {e}", n.name),
            }
        }
        Ok(deleted)
    }

    /// Runs kernel teardown in the background. A `JoinSet` keeps every finished task until it
    /// is joined, so the ones that ended are reaped here: else each network rm and sandbox
    /// delete left a task behind for the daemon's life (found by the soak's heap profile).
    pub(crate) fn spawn_teardown(
        &self,
        teardown: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let mut set = self.teardowns.lock().unwrap_or_else(|p| p.into_inner());
        while set.try_join_next().is_some() {}
        set.spawn(teardown);
    }

    /// Waits for background bridge deletions (at shutdown, and in tests).
    pub async fn settle(&self) {
        let mut set =
            std::mem::take(&mut *self.teardowns.lock().unwrap_or_else(|p| p.into_inner()));
        while set.join_next().await.is_some() {}
    }
}

/// How long a `network rm` waits for the plugins to hear of its endpoints' leaving.
const LEAVING_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

fn active_endpoints(n: &Network) -> NetError {
    NetError::forbidden(format!(
        "error while removing network: network {} id {} has active endpoints",
        n.name, n.id
    ))
}

/// A driver or IPAM plugin hears of this network's endpoints and removal, in Docker's order.
fn tells_plugins(n: &Network) -> bool {
    n.plugin().is_some() || n.remote_ipam().is_some()
}
