//! `pause`/`unpause`: every process of the container frozen through the freezer cgroup
//! (`runc pause`/`runc resume`). A paused container still runs (`State.Running`), shown as
//! "paused"; exec refuses it, kill and stop thaw it after their signal (as Docker does).

use super::{blocking, Ctr, Engine, Result};
use berth_net::NetError;

impl Engine {
    pub async fn pause_container(&self, key: &str) -> Result<()> {
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        if !rec.running() {
            return Err(super::not_running(&rec.id));
        }
        if rec.state.paused {
            return Err(NetError::conflict(format!(
                "Container {} is already paused",
                rec.id
            )));
        }
        let (rt, id) = (self.rt.clone(), c.id.clone());
        blocking(move || rt.pause(&id)).await.map_err(|e| {
            NetError::internal(format!("Cannot pause container {}: {}", c.id, e.message))
        })?;
        self.update(&c, |r| r.state.paused = true)?;
        Ok(())
    }

    pub async fn unpause_container(&self, key: &str) -> Result<()> {
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        if !rec.running() || !rec.state.paused {
            // Docker answers 500 here
            return Err(NetError::internal(format!(
                "Container {} is not paused",
                rec.id
            )));
        }
        self.thaw(&c).await
    }

    /// Resumes a paused container; nothing to do for one that is not.
    pub(super) async fn thaw(&self, c: &Ctr) -> Result<()> {
        if !c.rec.lock().unwrap().state.paused {
            return Ok(());
        }
        let (rt, id) = (self.rt.clone(), c.id.clone());
        blocking(move || rt.resume(&id)).await.map_err(|e| {
            NetError::internal(format!("Cannot unpause container {}: {}", c.id, e.message))
        })?;
        self.update(c, |r| r.state.paused = false)?;
        Ok(())
    }
}
