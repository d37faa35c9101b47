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
use std::time::Duration;

/// One request's budget: a cluster store that does not answer fails the call fast (the API
/// must never hang on it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

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

#[derive(Clone)]
pub struct Etcd {
    client: Client,
    prefix: String,
    url: String,
}

impl Etcd {
    /// Builds the client; no round trip is made, so a daemon starts while etcd is down.
    pub async fn connect(cfg: &ClusterConfig) -> Result<Etcd, ClusterError> {
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(REQUEST_TIMEOUT)
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
        let client = Client::connect(&cfg.endpoints, Some(opts))
            .await
            .map_err(|e| ClusterError::Unavailable(format!("{}: {e}", cfg.url)))?;
        Ok(Etcd {
            client,
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

    async fn call<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, ClusterError> {
        match tokio::time::timeout(REQUEST_TIMEOUT, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ClusterError::Unavailable(format!(
                "cluster store {}: {what}: {e}",
                self.url
            ))),
            Err(_) => Err(ClusterError::Unavailable(format!(
                "cluster store {}: {what}: no answer within {REQUEST_TIMEOUT:?}",
                self.url
            ))),
        }
    }

    pub async fn grant(&self, ttl: Duration) -> Result<i64, ClusterError> {
        let mut c = self.client.lease_client();
        let r = self
            .call("lease grant", c.grant(ttl.as_secs() as i64, None))
            .await?;
        Ok(r.id())
    }

    /// One keep-alive round trip; the lease's remaining TTL (0: it expired).
    pub async fn keep_alive(&self, lease: i64) -> Result<i64, ClusterError> {
        let mut c = self.client.lease_client();
        let (mut keeper, mut stream) = self.call("lease keep-alive", c.keep_alive(lease)).await?;
        self.call("lease keep-alive", keeper.keep_alive()).await?;
        match self.call("lease keep-alive", stream.message()).await? {
            Some(r) => Ok(r.ttl()),
            None => Err(ClusterError::Unavailable(format!(
                "cluster store {}: lease keep-alive stream ended",
                self.url
            ))),
        }
    }

    pub async fn put_host(&self, id: &str, h: &HostRec, lease: i64) -> Result<(), ClusterError> {
        let v = serde_json::to_vec(h).map_err(|e| ClusterError::Config(e.to_string()))?;
        let mut kv = self.client.kv_client();
        self.call(
            "register host",
            kv.put(
                self.k(&rec::host(id)),
                v,
                Some(PutOptions::new().with_lease(lease)),
            ),
        )
        .await?;
        Ok(())
    }

    /// Everything under the prefix and the revision it was read at.
    pub async fn snapshot(&self) -> Result<(i64, Vec<(String, Vec<u8>)>), ClusterError> {
        let mut kv = self.client.kv_client();
        let r = self
            .call(
                "read",
                kv.get(self.prefix.clone(), Some(GetOptions::new().with_prefix())),
            )
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

    pub async fn watch(&self, from: i64) -> Result<WatchStream, ClusterError> {
        let mut w = self.client.watch_client();
        self.call(
            "watch",
            w.watch(
                self.prefix.clone(),
                Some(WatchOptions::new().with_prefix().with_start_revision(from)),
            ),
        )
        .await
    }

    /// Endpoints and addresses this host holds according to the store, for its restart.
    pub async fn owned_ips(&self, host: &str) -> Result<Vec<(String, IpAddr)>, ClusterError> {
        let (_, kvs) = self.snapshot_of("ipam/").await?;
        Ok(kvs
            .into_iter()
            .filter_map(|(k, v)| {
                let r: IpRec = serde_json::from_slice(&v).ok()?;
                let (nid, ip) = k.strip_prefix("ipam/")?.split_once('/')?;
                (r.host == host).then_some((nid.to_string(), ip.parse().ok()?))
            })
            .collect())
    }

    async fn snapshot_of(&self, rel: &str) -> Result<(i64, Vec<(String, Vec<u8>)>), ClusterError> {
        let mut kv = self.client.kv_client();
        let r = self
            .call(
                "read",
                kv.get(self.k(rel), Some(GetOptions::new().with_prefix())),
            )
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

    fn absent(&self, rel: &str) -> Compare {
        Compare::create_revision(self.k(rel), CompareOp::Equal, 0)
    }
}

fn subnets_of(n: &Network) -> Vec<IpNet> {
    n.subnets.iter().map(|s| s.pool.subnet).collect()
}

impl ClusterStore for Etcd {
    fn create_network<'a>(
        &'a self,
        n: &'a Network,
    ) -> BoxFuture<'a, Result<Result<(), CreateConflict>, ClusterError>> {
        Box::pin(async move {
            let v = serde_json::to_vec(n).map_err(|e| ClusterError::Config(e.to_string()))?;
            let vni = n.overlay.as_ref().map_or(0, |o| o.vni);
            let subnets = subnets_of(n);
            let mut when = vec![
                self.absent(&rec::name(&n.name)),
                self.absent(&rec::vni(vni)),
                self.absent(&rec::network(&n.id)),
            ];
            let mut ops = vec![
                TxnOp::put(self.k(&rec::name(&n.name)), n.id.clone(), None),
                TxnOp::put(self.k(&rec::vni(vni)), n.id.clone(), None),
                TxnOp::put(self.k(&rec::network(&n.id)), v, None),
            ];
            for s in &subnets {
                when.push(self.absent(&rec::subnet(s)));
                ops.push(TxnOp::put(self.k(&rec::subnet(s)), n.id.clone(), None));
            }
            let mut kv = self.client.kv_client();
            let r = self
                .call(
                    "create network",
                    kv.txn(Txn::new().when(when).and_then(ops)),
                )
                .await?;
            if r.succeeded() {
                return Ok(Ok(()));
            }
            // which guard failed: read them back
            let exists = |rel: String| async move {
                let mut kv = self.client.kv_client();
                let r = self.call("read", kv.get(self.k(&rel), None)).await?;
                Ok::<bool, ClusterError>(!r.kvs().is_empty())
            };
            if exists(rec::name(&n.name)).await? {
                return Ok(Err(CreateConflict::Name));
            }
            for (i, s) in subnets.iter().enumerate() {
                if exists(rec::subnet(s)).await? {
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
            let vni = n.overlay.as_ref().map_or(0, |o| o.vni);
            let mut ops = vec![
                TxnOp::delete(self.k(&rec::network(&n.id)), None),
                TxnOp::delete(self.k(&rec::name(&n.name)), None),
                TxnOp::delete(self.k(&rec::vni(vni)), None),
                TxnOp::delete(
                    self.k(&rec::ips(&n.id)),
                    Some(DeleteOptions::new().with_prefix()),
                ),
            ];
            for s in subnets_of(n) {
                ops.push(TxnOp::delete(self.k(&rec::subnet(&s)), None));
            }
            let mut kv = self.client.kv_client();
            let r = self
                .call(
                    "remove network",
                    kv.txn(Txn::new().when(when).and_then(ops)),
                )
                .await?;
            Ok(r.succeeded())
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
            let mut kv = self.client.kv_client();
            let r = self
                .call(
                    "allocate address",
                    kv.txn(
                        Txn::new()
                            .when(when)
                            .and_then(vec![TxnOp::put(self.k(&key), v, None)]),
                    ),
                )
                .await?;
            Ok(r.succeeded())
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
            let mut kv = self.client.kv_client();
            self.call("release addresses", kv.txn(Txn::new().and_then(ops)))
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
            let v = serde_json::to_vec(e).map_err(|e| ClusterError::Config(e.to_string()))?;
            let mut kv = self.client.kv_client();
            self.call(
                "publish endpoint",
                kv.put(
                    self.k(&rec::endpoint(&e.network_id, &e.id)),
                    v,
                    Some(PutOptions::new().with_lease(lease)),
                ),
            )
            .await?;
            Ok(())
        })
    }

    fn delete_endpoint<'a>(
        &'a self,
        nid: &'a str,
        eid: &'a str,
    ) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(async move {
            let mut kv = self.client.kv_client();
            self.call(
                "remove endpoint",
                kv.delete(self.k(&rec::endpoint(nid, eid)), None),
            )
            .await?;
            Ok(())
        })
    }
}
