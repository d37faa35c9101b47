//! The cluster store on etcd v3: every write that must be unique across hosts is one
//! transaction guarded by `CreateRevision == 0`, so two hosts racing for a name, a subnet, a
//! VNI or an address never both win.

use super::config::ClusterConfig;
use super::records::{self as rec, EndpointRec, HostRec, IpRec};
use super::ClusterError;
use crate::network::Network;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, Identity,
    PutOptions, TlsOptions, Txn, TxnOp, WatchOptions, WatchStream,
};
use futures::future::BoxFuture;
use ipnet::IpNet;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One request's budget: a cluster store that does not answer fails the call fast (the API
/// must never hang on it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The least one member gets before the next is tried.
const MEMBER_TIMEOUT: Duration = Duration::from_millis(700);

/// Worth trying another member: the transport failed or the member has no leader.
fn retriable(e: &etcd_client::Error) -> bool {
    use etcd_client::Error as E;
    match e {
        E::GRpcStatus(s) => !matches!(
            s.code(),
            tonic::Code::InvalidArgument
                | tonic::Code::PermissionDenied
                | tonic::Code::Unauthenticated
                | tonic::Code::NotFound
                | tonic::Code::FailedPrecondition
                | tonic::Code::OutOfRange
        ),
        E::TransportError(_) | E::IoError(_) | E::WatchError(_) | E::LeaseKeepAliveError(_) => true,
        _ => false,
    }
}

/// Why a network could not be recorded.
#[derive(Debug, PartialEq)]
pub enum CreateConflict {
    Name,
    /// The index (in the order given) of a subnet another network holds.
    Subnet(usize),
    Vni,
}

/// The cluster store as the controller uses it; etcd v3 is the one implementation.
pub trait ClusterStore: Send + Sync {
    /// Records a network with its name, subnets and VNI, all or nothing.
    fn create_network<'a>(
        &'a self,
        n: &'a Network,
    ) -> BoxFuture<'a, Result<Result<(), CreateConflict>, ClusterError>>;
    /// Removes a network and its reservations unless some host has endpoints on it
    /// (`Ok(false)`).
    fn delete_network<'a>(&'a self, n: &'a Network) -> BoxFuture<'a, Result<bool, ClusterError>>;
    /// Takes one address of a network for an endpoint (`Ok(false)`: someone holds it).
    fn claim_ip<'a>(
        &'a self,
        nid: &'a str,
        ip: IpAddr,
        owner: &'a IpRec,
    ) -> BoxFuture<'a, Result<bool, ClusterError>>;
    fn release_ips<'a>(
        &'a self,
        nid: &'a str,
        ips: &'a [IpAddr],
    ) -> BoxFuture<'a, Result<(), ClusterError>>;
    /// Publishes an endpoint on `lease`: it vanishes with the host.
    fn put_endpoint<'a>(
        &'a self,
        e: &'a EndpointRec,
        lease: i64,
    ) -> BoxFuture<'a, Result<(), ClusterError>>;
    fn delete_endpoint<'a>(
        &'a self,
        nid: &'a str,
        eid: &'a str,
    ) -> BoxFuture<'a, Result<(), ClusterError>>;
}

/// One client per member, used in turn: a member that refuses or does not answer is skipped
/// and the next one tried, so one dead member of an etcd cluster costs nothing.
#[derive(Clone)]
pub struct Etcd {
    clients: Arc<Vec<Client>>,
    /// The member that answered last.
    current: Arc<AtomicUsize>,
    prefix: String,
    url: String,
}

impl Etcd {
    /// Builds the client; no round trip is made, so a daemon starts while etcd is down.
    pub async fn connect(cfg: &ClusterConfig) -> Result<Etcd, ClusterError> {
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(MEMBER_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(2), REQUEST_TIMEOUT);
        if let Some((u, p)) = &cfg.user {
            opts = opts.with_user(u.clone(), p.clone());
        }
        if let Some(t) = &cfg.tls {
            let read = |p: &std::path::Path| {
                std::fs::read(p).map_err(|e| ClusterError::Config(format!("{}: {e}", p.display())))
            };
            let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(read(&t.ca)?));
            if let (Some(c), Some(k)) = (&t.cert, &t.key) {
                tls = tls.identity(Identity::from_pem(read(c)?, read(k)?));
            }
            opts = opts.with_tls(tls);
        }
        let mut clients = Vec::new();
        for ep in &cfg.endpoints {
            clients.push(
                Client::connect([ep], Some(opts.clone()))
                    .await
                    .map_err(|e| ClusterError::Unavailable(format!("{}: {e}", cfg.url)))?,
            );
        }
        Ok(Etcd {
            clients: Arc::new(clients),
            current: Arc::default(),
            prefix: cfg.prefix.clone(),
            url: cfg.url.clone(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn k(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }

    /// Runs `f` against the members in turn, from the one that answered last, within one
    /// request's budget.
    async fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T, ClusterError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let n = self.clients.len();
        let first = self.current.load(Ordering::Relaxed) % n;
        let mut last = String::from("no member answered");
        for i in 0..n {
            let idx = (first + i) % n;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            // later members must keep a share of the budget
            let share = if i + 1 < n {
                left.min(MEMBER_TIMEOUT.max(left / (n - i) as u32))
            } else {
                left
            };
            match tokio::time::timeout(share, f(self.clients[idx].clone())).await {
                Ok(Ok(v)) => {
                    self.current.store(idx, Ordering::Relaxed);
                    return Ok(v);
                }
                Ok(Err(e)) if retriable(&e) => last = e.to_string(),
                Ok(Err(e)) => {
                    return Err(ClusterError::Unavailable(format!(
                        "cluster store {}: {what}: {e}",
                        self.url
                    )))
                }
                Err(_) => last = format!("no answer within {share:?}"),
            }
        }
        Err(ClusterError::Unavailable(format!(
            "cluster store {}: {what}: {last}",
            self.url
        )))
    }

    pub async fn grant(&self, ttl: Duration) -> Result<i64, ClusterError> {
        let secs = ttl.as_secs() as i64;
        let r = self
            .call("lease grant", |c| async move {
                c.lease_client().grant(secs, None).await
            })
            .await?;
        Ok(r.id())
    }

    /// One keep-alive round trip; the lease's remaining TTL (0: it expired).
    pub async fn keep_alive(&self, lease: i64) -> Result<i64, ClusterError> {
        let r = self
            .call("lease keep-alive", |c| async move {
                let (mut keeper, mut stream) = c.lease_client().keep_alive(lease).await?;
                keeper.keep_alive().await?;
                stream.message().await
            })
            .await?;
        match r {
            Some(r) => Ok(r.ttl()),
            None => Err(ClusterError::Unavailable(format!(
                "cluster store {}: lease keep-alive stream ended",
                self.url
            ))),
        }
    }

    pub async fn put_host(&self, id: &str, h: &HostRec, lease: i64) -> Result<(), ClusterError> {
        self.put_on_lease("register host", &rec::host(id), h, lease)
            .await
    }

    /// A record that lives as long as the lease.
    async fn put_on_lease<T: serde::Serialize>(
        &self,
        what: &str,
        rel: &str,
        value: &T,
        lease: i64,
    ) -> Result<(), ClusterError> {
        let v = serde_json::to_vec(value).map_err(|e| ClusterError::Config(e.to_string()))?;
        let key = self.k(rel);
        self.call(what, |c| {
            let (key, v) = (key.clone(), v.clone());
            async move {
                c.kv_client()
                    .put(key, v, Some(PutOptions::new().with_lease(lease)))
                    .await
            }
        })
        .await?;
        Ok(())
    }

    /// Everything under the prefix and the revision it was read at.
    pub async fn snapshot(&self) -> Result<(i64, Vec<(String, Vec<u8>)>), ClusterError> {
        self.snapshot_of("").await
    }

    /// Watches the prefix from revision `from` on the member that answered last.
    pub async fn watch(&self, from: i64) -> Result<WatchStream, ClusterError> {
        let prefix = self.prefix.clone();
        self.call("watch", |c| {
            let prefix = prefix.clone();
            async move {
                c.watch_client()
                    .watch(
                        prefix,
                        Some(WatchOptions::new().with_prefix().with_start_revision(from)),
                    )
                    .await
            }
        })
        .await
    }

    async fn snapshot_of(&self, rel: &str) -> Result<(i64, Vec<(String, Vec<u8>)>), ClusterError> {
        let key = self.k(rel);
        let r = self
            .call("read", |c| {
                let key = key.clone();
                async move {
                    c.kv_client()
                        .get(key, Some(GetOptions::new().with_prefix()))
                        .await
                }
            })
            .await?;
        let rev = r.header().map_or(0, |h| h.revision());
        let kvs = r
            .kvs()
            .iter()
            .filter_map(|kv| {
                let k = kv.key_str().ok()?.strip_prefix(&self.prefix)?.to_string();
                Some((k, kv.value().to_vec()))
            })
            .collect();
        Ok((rev, kvs))
    }

    async fn txn(&self, what: &str, txn: Txn) -> Result<bool, ClusterError> {
        let r = self
            .call(what, |c| {
                let txn = txn.clone();
                async move { c.kv_client().txn(txn).await }
            })
            .await?;
        Ok(r.succeeded())
    }

    async fn exists(&self, rel: &str) -> Result<bool, ClusterError> {
        let key = self.k(rel);
        let r = self
            .call("read", |c| {
                let key = key.clone();
                async move { c.kv_client().get(key, None).await }
            })
            .await?;
        Ok(!r.kvs().is_empty())
    }

    fn absent(&self, rel: &str) -> Compare {
        Compare::create_revision(self.k(rel), CompareOp::Equal, 0)
    }
}

/// The subnets a network holds in the global default address space: a remote IPAM's pools
/// are in the plugin's own space, and unique there by the plugin's rules.
fn subnets_of(n: &Network) -> Vec<IpNet> {
    n.subnets
        .iter()
        .filter(|s| s.remote.is_none())
        .map(|s| s.pool.subnet)
        .collect()
}

/// The VNI key of an overlay (a plugin's global network has none).
fn vni_key(n: &Network) -> Option<String> {
    n.overlay.as_ref().map(|o| rec::vni(o.vni))
}

impl ClusterStore for Etcd {
    fn create_network<'a>(
        &'a self,
        n: &'a Network,
    ) -> BoxFuture<'a, Result<Result<(), CreateConflict>, ClusterError>> {
        Box::pin(async move {
            let v = serde_json::to_vec(n).map_err(|e| ClusterError::Config(e.to_string()))?;
            let subnets = subnets_of(n);
            let mut when = vec![
                self.absent(&rec::name(&n.name)),
                self.absent(&rec::network(&n.id)),
            ];
            let mut ops = vec![
                TxnOp::put(self.k(&rec::name(&n.name)), n.id.clone(), None),
                TxnOp::put(self.k(&rec::network(&n.id)), v, None),
            ];
            if let Some(vni) = vni_key(n) {
                when.push(self.absent(&vni));
                ops.push(TxnOp::put(self.k(&vni), n.id.clone(), None));
            }
            for s in &subnets {
                when.push(self.absent(&rec::subnet(s)));
                ops.push(TxnOp::put(self.k(&rec::subnet(s)), n.id.clone(), None));
            }
            if self
                .txn("create network", Txn::new().when(when).and_then(ops))
                .await?
            {
                return Ok(Ok(()));
            }
            // which guard failed: read them back
            if self.exists(&rec::name(&n.name)).await? {
                return Ok(Err(CreateConflict::Name));
            }
            for (i, s) in subnets.iter().enumerate() {
                if self.exists(&rec::subnet(s)).await? {
                    return Ok(Err(CreateConflict::Subnet(i)));
                }
            }
            Ok(Err(CreateConflict::Vni))
        })
    }

    fn delete_network<'a>(&'a self, n: &'a Network) -> BoxFuture<'a, Result<bool, ClusterError>> {
        Box::pin(async move {
            // a range compare holds for an empty range: no endpoint key of the network exists
            let when = vec![self.absent(&rec::endpoints(&n.id)).with_prefix()];
            let mut ops = vec![
                TxnOp::delete(self.k(&rec::network(&n.id)), None),
                TxnOp::delete(self.k(&rec::name(&n.name)), None),
                TxnOp::delete(
                    self.k(&rec::ips(&n.id)),
                    Some(DeleteOptions::new().with_prefix()),
                ),
            ];
            for s in subnets_of(n) {
                ops.push(TxnOp::delete(self.k(&rec::subnet(&s)), None));
            }
            if let Some(vni) = vni_key(n) {
                ops.push(TxnOp::delete(self.k(&vni), None));
            }
            self.txn("remove network", Txn::new().when(when).and_then(ops))
                .await
        })
    }

    fn claim_ip<'a>(
        &'a self,
        nid: &'a str,
        ip: IpAddr,
        owner: &'a IpRec,
    ) -> BoxFuture<'a, Result<bool, ClusterError>> {
        Box::pin(async move {
            let v = serde_json::to_vec(owner).map_err(|e| ClusterError::Config(e.to_string()))?;
            let key = rec::ip(nid, ip);
            // the network must still exist when the address is taken
            let when = vec![
                self.absent(&key),
                Compare::create_revision(self.k(&rec::network(nid)), CompareOp::Greater, 0),
            ];
            let put = vec![TxnOp::put(self.k(&key), v, None)];
            self.txn("allocate address", Txn::new().when(when).and_then(put))
                .await
        })
    }

    fn release_ips<'a>(
        &'a self,
        nid: &'a str,
        ips: &'a [IpAddr],
    ) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            if ips.is_empty() {
                return Ok(());
            }
            let ops: Vec<TxnOp> = ips
                .iter()
                .map(|ip| TxnOp::delete(self.k(&rec::ip(nid, *ip)), None))
                .collect();
            self.txn("release addresses", Txn::new().and_then(ops))
                .await?;
            Ok(())
        })
    }

    fn put_endpoint<'a>(
        &'a self,
        e: &'a EndpointRec,
        lease: i64,
    ) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            let key = rec::endpoint(&e.network_id, &e.id);
            self.put_on_lease("publish endpoint", &key, e, lease).await
        })
    }

    fn delete_endpoint<'a>(
        &'a self,
        nid: &'a str,
        eid: &'a str,
    ) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            let key = self.k(&rec::endpoint(nid, eid));
            self.call("remove endpoint", |c| {
                let key = key.clone();
                async move { c.kv_client().delete(key, None).await }
            })
            .await?;
            Ok(())
        })
    }
}
