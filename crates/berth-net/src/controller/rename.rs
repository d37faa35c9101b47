//! A running container's new name (`docker rename`): its endpoints answer to it in the
//! embedded DNS from now on, and no longer to the old one (aliases, the short id and the
//! hostname stay), as libnetwork's `Sandbox.Rename`.

use super::endpoint::Change;
use super::Controller;
use crate::endpoint::{Endpoint, Phase};
use crate::error::Result;

impl Controller {
    /// Renames the container's endpoints, persisted in one store transaction with `with`
    /// (the caller's container record), then swaps the names the embedded DNS serves.
    /// Endpoints of global networks keep the old name in the cluster store (their peers on
    /// other hosts resolve it until they reconnect).
    pub fn rename_container(
        &self,
        container_id: &str,
        new_name: &str,
        with: &[(&'static str, String, Vec<u8>)],
    ) -> Result<()> {
        let renamed: Vec<Endpoint> = {
            let st = self.lock();
            st.eps
                .of_container(container_id)
                .into_iter()
                .map(|e| {
                    let mut ep = e.ep.clone();
                    ep.container_name = new_name.to_string();
                    ep
                })
                .collect()
        };
        let ch = Change {
            put: renamed.iter().collect(),
            delete: Vec::new(),
            networks: Vec::new(),
            sandbox: None,
            with,
            grants: Vec::new(),
        };
        self.commit_change(&ch)?;
        let mut st = self.lock();
        for ep in renamed {
            let Some(e) = st.eps.eps.get_mut(&ep.id) else {
                continue;
            };
            e.ep.container_name = ep.container_name.clone();
            if e.phase == Phase::Live {
                self.dns.remove(&ep.id);
                self.add_names(&st, &ep);
            }
        }
        Ok(())
    }
}
