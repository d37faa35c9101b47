//! The embedded DNS server: what Docker runs at 127.0.0.11 inside every container on a
//! user-defined network. One resolver per daemon, with its own small runtime, serves every
//! sandbox through sockets made inside each sandbox's namespace.
//!
//! Names are added when an endpoint goes live (before the container's process starts) and
//! removed when it starts leaving (before its address can be handed out again).

mod batch;
pub mod names;
pub mod resolvconf;
pub mod server;
pub mod upstream;
pub mod wire;

use names::{EpNames, Names};
use resolvconf::{HostResolvConf, Upstream};
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub use server::RESOLVER_IP;

#[derive(Debug, Clone)]
pub struct ResolverConfig {
    /// Make listeners in sandboxes (false: keep only the name table, e.g. in unit tests
    /// without namespaces).
    pub serve: bool,
    /// The host's resolv.conf, the upstreams of last resort.
    pub resolv_conf: PathBuf,
    /// The daemon's `--dns`: upstreams for containers without their own.
    pub dns: Vec<IpAddr>,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            serve: false,
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            dns: vec![],
        }
    }
}

/// State the serving tasks share.
pub struct Shared {
    names: RwLock<Names>,
    fwd: upstream::Forwarder,
    host: HostResolvConf,
    daemon: Arc<Vec<Upstream>>,
    /// Containers' own `--dns`.
    own: RwLock<HashMap<String, Arc<Vec<Upstream>>>>,
    turn: AtomicUsize,
}

impl Shared {
    fn rotation(&self) -> usize {
        self.turn.fetch_add(1, Ordering::Relaxed)
    }

    /// The container's `--dns`, else the daemon's, else the host's.
    fn upstreams(&self, cid: &str) -> Arc<Vec<Upstream>> {
        if let Some(u) = self.own.read().unwrap_or_else(|p| p.into_inner()).get(cid) {
            return Arc::clone(u);
        }
        if !self.daemon.is_empty() {
            return Arc::clone(&self.daemon);
        }
        self.host.servers()
    }
}

struct Runtime {
    rt: tokio::runtime::Runtime,
    served: Mutex<HashMap<String, server::Served>>,
}

pub struct Resolver {
    shared: Arc<Shared>,
    serve: bool,
    rt: Option<Runtime>,
}

impl Resolver {
    pub fn new(cfg: ResolverConfig) -> io::Result<Resolver> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("berth-dns")
            .enable_all()
            .build()?;
        let host_sock = std::net::UdpSocket::bind("0.0.0.0:0")?;
        host_sock.set_nonblocking(true)?;
        let host_ch = {
            let _g = rt.enter();
            upstream::UdpChannel::new(host_sock)?
        };
        let daemon = cfg.dns.iter().map(|ip| Upstream::new(*ip, true)).collect();
        let shared = Arc::new(Shared {
            names: RwLock::new(Names::default()),
            fwd: upstream::Forwarder::new(host_ch),
            host: HostResolvConf::new(cfg.resolv_conf),
            daemon: Arc::new(daemon),
            own: RwLock::new(HashMap::new()),
            turn: AtomicUsize::new(0),
        });
        let rt = Some(Runtime {
            rt,
            served: Mutex::new(HashMap::new()),
        });
        Ok(Resolver {
            shared,
            serve: cfg.serve,
            rt,
        })
    }

    fn names(&self) -> std::sync::RwLockWriteGuard<'_, Names> {
        self.shared.names.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, ep: EpNames) {
        self.names().add(ep);
    }

    pub fn remove(&self, endpoint_id: &str) {
        self.names().remove(endpoint_id);
    }

    /// What `container_id` would get for `qname` (lower case, no trailing dot): the lookup
    /// queries go through, read-only (diagnostics).
    pub fn lookup(&self, container_id: &str, qname: &str, v6: bool) -> names::Found {
        self.shared
            .names
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .lookup(container_id, qname, v6)
    }

    /// Serves the container's sandbox at 127.0.0.11:53. Idempotent.
    pub fn serve(&self, container_id: &str, netns: &Path) -> io::Result<()> {
        self.serve_in(container_id, netns, false)
    }

    /// `serve` for a sandbox an earlier berthd served (at start): the listeners take that
    /// life's ports again, which conntrack may still send clients to.
    pub fn resume(&self, container_id: &str, netns: &Path) -> io::Result<()> {
        self.serve_in(container_id, netns, true)
    }

    fn serve_in(&self, container_id: &str, netns: &Path, resumed: bool) -> io::Result<()> {
        let Some(rt) = self.rt.as_ref().filter(|_| self.serve) else {
            return Ok(());
        };
        let mut served = rt.served.lock().unwrap_or_else(|p| p.into_inner());
        if served.contains_key(container_id) {
            return Ok(());
        }
        let sockets = server::Sockets::bind_in(netns, resumed)?;
        let _g = rt.rt.enter();
        let s = server::serve(
            Arc::clone(&self.shared),
            container_id.to_string(),
            netns.to_path_buf(),
            sockets,
        )?;
        served.insert(container_id.to_string(), s);
        Ok(())
    }

    /// Whether the container's sandbox is served.
    pub fn serving(&self, container_id: &str) -> bool {
        self.rt.as_ref().is_some_and(|rt| {
            rt.served
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(container_id)
        })
    }

    /// Stops serving the sandbox and forgets the container's servers.
    pub fn stop(&self, container_id: &str) {
        if let Some(rt) = &self.rt {
            let s = rt
                .served
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(container_id);
            drop(s);
        }
        self.shared
            .own
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(container_id);
    }

    /// The container's own `--dns` servers (empty: the daemon's or the host's).
    pub fn set_servers(&self, container_id: &str, servers: &[IpAddr]) {
        let mut own = self.shared.own.write().unwrap_or_else(|p| p.into_inner());
        if servers.is_empty() {
            own.remove(container_id);
        } else {
            let ups = servers.iter().map(|ip| Upstream::new(*ip, false)).collect();
            own.insert(container_id.to_string(), Arc::new(ups));
        }
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.served.lock().unwrap_or_else(|p| p.into_inner()).clear();
            // may be dropped inside another runtime, where a blocking shutdown panics
            rt.rt.shutdown_background();
        }
    }
}
