//! Multi-host state: the cluster store (etcd v3), this host's lease, and the watch that feeds
//! every change under berth's prefix to the controller, which reconciles toward it.
//!
//! Two background tasks, both retrying forever so the start order of etcd and berthd never
//! matters:
//! - the lease: granted with `discovery.ttl`, this host's record put on it, kept alive every
//!   TTL/3; when it is lost (an outage longer than the TTL) a new one is granted and the
//!   controller told to publish its endpoints again (`Event::Rejoined`);
//! - the watch: a snapshot (`Event::Reset`), then every change from the next revision on;
//!   after a disconnect the watch resumes from the last revision seen, after a compaction it
//!   starts over with a snapshot.

pub mod config;
pub mod etcd;
pub mod ipam;
pub mod records;

pub use config::ClusterConfig;
pub use etcd::{ClusterStore, CreateConflict, Etcd};

use records::HostRec;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The store did not answer or refused: the message names it.
    #[error("{0}")]
    Unavailable(String),
    #[error("cluster store configuration: {0}")]
    Config(String),
}

impl From<ClusterError> for crate::error::NetError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::Unavailable(m) => crate::error::NetError::unavailable(m),
            ClusterError::Config(m) => crate::error::NetError::internal(m),
        }
    }
}

/// What the watch and the lease tell the controller. Keys are relative to berth's prefix.
#[derive(Debug)]
pub enum Event {
    Reset(Vec<(String, Vec<u8>)>),
    Put(String, Vec<u8>),
    Delete(String),
    /// A new lease: this host's endpoints must be published again.
    Rejoined,
}

pub struct Cluster {
    pub cfg: ClusterConfig,
    pub store: Etcd,
    /// Stable across restarts (kept in the local store).
    pub host_id: String,
    pub vtep: IpAddr,
    lease: AtomicI64,
}

impl Cluster {
    pub fn new(cfg: ClusterConfig, store: Etcd, host_id: String, vtep: IpAddr) -> Cluster {
        Cluster {
            cfg,
            store,
            host_id,
            vtep,
            lease: AtomicI64::new(0),
        }
    }

    /// The lease this host's endpoints go on; an error naming the store while there is none.
    pub fn lease(&self) -> Result<i64, ClusterError> {
        match self.lease.load(Ordering::SeqCst) {
            0 => Err(ClusterError::Unavailable(format!(
                "cluster store {} is not reachable (no lease for this host yet)",
                self.cfg.url
            ))),
            l => Ok(l),
        }
    }

    pub fn spawn(self: &Arc<Self>, tx: UnboundedSender<Event>) {
        tokio::spawn(Arc::clone(self).keep_lease(tx.clone()));
        tokio::spawn(Arc::clone(self).watch(tx));
    }

    async fn keep_lease(self: Arc<Self>, tx: UnboundedSender<Event>) {
        let ttl = self.cfg.ttl;
        let host = HostRec {
            vtep: self.vtep,
            advertise: self.cfg.advertise_str.clone(),
        };
        let mut warned = false;
        loop {
            let lease = match self.store.grant(ttl).await {
                Ok(l) => l,
                Err(e) => {
                    if !warned {
                        tracing::warn!("{e}; retrying");
                        warned = true;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if let Err(e) = self.store.put_host(&self.host_id, &host, lease).await {
                tracing::warn!("{e}; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            warned = false;
            tracing::info!(
                "joined cluster store {} as host {} (vtep {}, lease TTL {:?})",
                self.cfg.url,
                &self.host_id[..12],
                self.vtep,
                ttl
            );
            self.lease.store(lease, Ordering::SeqCst);
            if tx.send(Event::Rejoined).is_err() {
                return;
            }
            let mut last_ok = Instant::now();
            loop {
                tokio::time::sleep(ttl / 3).await;
                match self.store.keep_alive(lease).await {
                    Ok(t) if t > 0 => last_ok = Instant::now(),
                    Ok(_) => {
                        tracing::warn!("the cluster store let this host's lease expire");
                        break;
                    }
                    Err(e) if last_ok.elapsed() > ttl => {
                        tracing::warn!("{e}: this host's lease has expired");
                        break;
                    }
                    Err(e) => tracing::debug!("lease keep-alive: {e}"),
                }
            }
            // keep publishing under the old lease until a new one exists: the keys are gone
            // either way and a write to an expired lease simply fails
            self.lease.store(0, Ordering::SeqCst);
        }
    }

    async fn watch(self: Arc<Self>, tx: UnboundedSender<Event>) {
        let prefix = self.store.prefix().to_string();
        let mut next: Option<i64> = None;
        loop {
            let from = match next {
                Some(r) => r,
                None => match self.store.snapshot().await {
                    Ok((rev, kvs)) => {
                        if tx.send(Event::Reset(kvs)).is_err() {
                            return;
                        }
                        rev + 1
                    }
                    Err(e) => {
                        tracing::debug!("{e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                },
            };
            next = Some(from);
            let mut stream = match self.store.watch(from).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!("{e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            while let Ok(Some(resp)) = stream.message().await {
                if resp.compact_revision() > 0 || resp.canceled() {
                    tracing::info!(
                        "cluster store watch compacted or cancelled: re-reading everything"
                    );
                    next = None;
                    break;
                }
                for ev in resp.events() {
                    let Some(kv) = ev.kv() else { continue };
                    next = Some(kv.mod_revision() + 1);
                    let Some(key) = kv
                        .key_str()
                        .ok()
                        .and_then(|k| k.strip_prefix(&prefix))
                        .map(str::to_string)
                    else {
                        continue;
                    };
                    let e = match ev.event_type() {
                        etcd_client::EventType::Put => Event::Put(key, kv.value().to_vec()),
                        etcd_client::EventType::Delete => Event::Delete(key),
                    };
                    if tx.send(e).is_err() {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
