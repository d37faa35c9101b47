//! The plugin registry: look a name up (with Docker's retry window), activate it
//! (`Plugin.Activate`), register what it implements (GetCapabilities, and for IPAM
//! GetDefaultAddressSpaces), and cache that for the daemon's lifetime. A failed activation
//! is forgotten, so the next use tries again. A plugin that stops answering is activated
//! (and registered) again as soon as it answers again, before the call that found it back.

use super::api::{self, decode, encode, Fields, Reply};
use super::discovery::{locate, lookup, Dirs, Retry, Spec};
use super::error::PluginError;
use super::http::{Failure, Limits, Transport};
use crate::drivers::Scope;
use hyper::body::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub const NETWORK_DRIVER: &str = "NetworkDriver";
pub const IPAM_DRIVER: &str = "IpamDriver";
/// Raw non-200 bodies quoted in errors are cut to this many bytes.
const MAX_QUOTED: usize = 4096;

/// Where plugins are found and how calls are bounded.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub dirs: Dirs,
    pub retry: Retry,
    pub limits: Limits,
}

impl Default for Retry {
    fn default() -> Self {
        Retry::DOCKER
    }
}

/// A network driver's registration (its GetCapabilities reply, checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub scope: Scope,
    /// `ConnectivityScope`, or `scope` when the plugin left it empty.
    pub connectivity_scope: Scope,
    /// v28+: send GwAllocCheck before CreateNetwork.
    pub gw_alloc_checker: bool,
}

/// An IPAM driver's registration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpamInfo {
    pub requires_mac_address: bool,
    pub requires_request_replay: bool,
    pub local_address_space: String,
    pub global_address_space: String,
}

/// The registration of each interface a plugin implements; an `Err` holds why it failed
/// (Docker logs it and then answers "could not resolve driver" / "invalid ipam driver").
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub network: Option<Result<Capabilities, String>>,
    pub ipam: Option<Result<IpamInfo, String>>,
}

#[derive(Default, Deserialize, Serialize)]
struct Manifest {
    #[serde(rename = "Implements", default)]
    implements: Vec<String>,
    #[serde(rename = "Err", default)]
    err: String,
}

impl Fields for Manifest {
    const FIELDS: &'static [&'static str] = &["Implements", "Err"];
}
impl Reply for Manifest {
    fn error(&self) -> &str {
        &self.err
    }
}

struct State {
    spec: Spec,
    transport: Arc<Transport>,
    implements: Vec<String>,
    generation: u64,
    stale: bool,
    registration: Registration,
}

/// An activated plugin.
pub struct Plugin {
    name: String,
    cfg: Arc<Config>,
    state: Mutex<State>,
    reactivating: tokio::sync::Mutex<()>,
}

fn fail(error: PluginError) -> Failure {
    Failure {
        error,
        retry: false,
    }
}

/// Reads a reply as `pkg/plugins` does: non-200 → `<Method>: <Err or body>`; 200 → the
/// message, whose in-band error becomes `remote: <text>`.
pub(crate) fn interpret<T: Reply>(
    method: &str,
    status: u16,
    body: &[u8],
) -> Result<T, PluginError> {
    if status != 200 {
        #[derive(Default, Deserialize)]
        struct ErrOnly {
            #[serde(rename = "Err", default)]
            err: String,
        }
        impl Fields for ErrOnly {
            const FIELDS: &'static [&'static str] = &["Err"];
        }
        let msg = match decode::<ErrOnly>(body) {
            Ok(e) if !e.err.is_empty() => e.err,
            _ => String::from_utf8_lossy(&body[..body.len().min(MAX_QUOTED)]).into_owned(),
        };
        return Err(PluginError::Status {
            method: method.to_string(),
            status,
            msg,
        });
    }
    let reply: T = decode(body).map_err(|msg| PluginError::Reply {
        method: method.to_string(),
        msg,
    })?;
    if !reply.error().is_empty() {
        return Err(PluginError::Remote(reply.error().to_string()));
    }
    Ok(reply)
}

/// One call with Docker's retries on transport failures, on a fixed transport.
async fn call_on<T: Reply>(
    t: &Transport,
    retry: Retry,
    method: &str,
    body: Bytes,
) -> Result<T, Failure> {
    let start = Instant::now();
    let mut retries = 0;
    loop {
        match t.post(method, body.clone()).await {
            Ok((status, bytes)) => return interpret(method, status, &bytes).map_err(fail),
            Err(f) if f.retry => {
                let off = retry.backoff(retries);
                if retry.abort(start, off) {
                    return Err(f);
                }
                retries += 1;
                tracing::warn!(
                    "Unable to connect to plugin: {}: {}, retrying in {off:?}",
                    t.url(method),
                    f.error
                );
                tokio::time::sleep(off).await;
            }
            Err(f) => return Err(f),
        }
    }
}

fn scope_of(s: &str) -> Option<Scope> {
    match s {
        "local" => Some(Scope::Local),
        "global" => Some(Scope::Global),
        _ => None,
    }
}

/// Docker's handshake callbacks, per implemented interface, in the manifest's order.
async fn register(name: &str, t: &Transport, retry: Retry, implements: &[String]) -> Registration {
    let mut reg = Registration::default();
    for iface in implements {
        match iface.as_str() {
            NETWORK_DRIVER if reg.network.is_none() => {
                let r = call_on::<api::net::CapabilitiesResponse>(
                    t,
                    retry,
                    "NetworkDriver.GetCapabilities",
                    Bytes::new(),
                )
                .await
                .map_err(|f| f.error.to_string())
                .and_then(|c| {
                    let scope = scope_of(&c.scope).ok_or_else(|| {
                        format!(
                            "invalid capability: expecting 'local' or 'global', got {}",
                            c.scope
                        )
                    })?;
                    let connectivity_scope = match c.connectivity_scope.as_str() {
                        "" => scope,
                        s => scope_of(s).ok_or_else(|| {
                            format!("invalid capability: expecting 'local' or 'global', got {s}")
                        })?,
                    };
                    Ok(Capabilities {
                        scope,
                        connectivity_scope,
                        gw_alloc_checker: c.gw_alloc_checker,
                    })
                });
                if let Err(e) = &r {
                    tracing::error!("error getting capability for {name} due to {e}");
                }
                reg.network = Some(r);
            }
            IPAM_DRIVER if reg.ipam.is_none() => {
                // capabilities are optional: any error registers the driver without them
                let caps = call_on::<api::ipam::CapabilitiesResponse>(
                    t,
                    retry,
                    "IpamDriver.GetCapabilities",
                    Bytes::new(),
                )
                .await
                .unwrap_or_default();
                let r = call_on::<api::ipam::AddressSpacesResponse>(
                    t,
                    retry,
                    "IpamDriver.GetDefaultAddressSpaces",
                    Bytes::new(),
                )
                .await
                .map(|s| IpamInfo {
                    requires_mac_address: caps.requires_mac_address,
                    requires_request_replay: caps.requires_request_replay,
                    local_address_space: s.local_default_address_space,
                    global_address_space: s.global_default_address_space,
                })
                .map_err(|f| {
                    let e = format!(
                        "ipam driver \"{name}\" failed to return default address spaces: {}",
                        f.error
                    );
                    tracing::error!("{e}");
                    e
                });
                reg.ipam = Some(r);
            }
            _ => {}
        }
    }
    reg
}

async fn activate(t: &Transport, retry: Retry) -> Result<Vec<String>, Failure> {
    call_on::<Manifest>(t, retry, "Plugin.Activate", Bytes::new())
        .await
        .map(|m| m.implements)
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("addr", &self.addr())
            .finish()
    }
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The manifest's `Implements`.
    pub fn implements(&self) -> Vec<String> {
        self.state().implements.clone()
    }

    /// Bumped by every (re-)activation: 1 after the first.
    pub fn activations(&self) -> u64 {
        self.state().generation
    }

    pub fn registration(&self) -> Registration {
        self.state().registration.clone()
    }

    /// The address it was found at.
    pub fn addr(&self) -> String {
        self.state().spec.addr.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `POST /<method>` with `req` as Go's encoder writes it (`None`: empty body), retried on
    /// transport failures within Docker's window; a plugin found back after a failure is
    /// activated again first.
    pub async fn call<R: Serialize, T: Reply>(
        &self,
        method: &str,
        req: Option<&R>,
    ) -> Result<T, PluginError> {
        let body = req.map(|r| Bytes::from(encode(r))).unwrap_or_default();
        let retry = self.cfg.retry;
        let start = Instant::now();
        let mut retries = 0;
        loop {
            let (t, generation, stale) = {
                let s = self.state();
                (s.transport.clone(), s.generation, s.stale)
            };
            let attempt = async {
                let t = if stale {
                    self.reactivate(generation).await?
                } else {
                    t
                };
                let (status, bytes) = t.post(method, body.clone()).await?;
                interpret(method, status, &bytes).map_err(fail)
            };
            match attempt.await {
                Ok(r) => return Ok(r),
                Err(f) if f.retry => {
                    self.mark_stale(generation);
                    let off = retry.backoff(retries);
                    if retry.abort(start, off) {
                        return Err(f.error);
                    }
                    retries += 1;
                    tracing::warn!(
                        "Unable to connect to plugin: {}: {}, retrying in {off:?}",
                        self.name,
                        f.error
                    );
                    tokio::time::sleep(off).await;
                }
                Err(f) => return Err(f.error),
            }
        }
    }

    fn mark_stale(&self, generation: u64) {
        let mut s = self.state();
        if s.generation == generation {
            s.stale = true;
        }
    }

    /// Looks the plugin up again (keeping the old address if nothing names it now),
    /// activates and registers it; one attempt, the caller retries.
    async fn reactivate(&self, generation: u64) -> Result<Arc<Transport>, Failure> {
        let _one = self.reactivating.lock().await;
        let old = {
            let s = self.state();
            if s.generation != generation || !s.stale {
                return Ok(s.transport.clone());
            }
            s.spec.clone()
        };
        let spec = match locate(&self.cfg.dirs, &self.name) {
            Ok(Some(s)) => s,
            _ => old,
        };
        let t = Arc::new(Transport::new(&spec, self.cfg.limits).map_err(fail)?);
        let implements = activate(&t, Retry::NONE).await?;
        let registration = register(&self.name, &t, Retry::NONE, &implements).await;
        tracing::info!("plugin {} activated again ({})", self.name, spec.addr);
        let mut s = self.state();
        s.spec = spec;
        s.transport = t.clone();
        s.implements = implements;
        s.registration = registration;
        s.generation += 1;
        s.stale = false;
        Ok(t)
    }
}

/// Every plugin berth has activated, by name.
pub struct Plugins {
    cfg: Arc<Config>,
    active: Mutex<BTreeMap<String, Arc<Plugin>>>,
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Plugins {
    pub fn new(cfg: Config) -> Plugins {
        Plugins {
            cfg: Arc::new(cfg),
            active: Mutex::default(),
            loading: Mutex::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn active(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Plugin>>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An already activated plugin, without lookup or activation (Docker's crash cleanup
    /// sends Leave/DeleteEndpoint only to plugins that are registered already).
    pub fn registered(&self, name: &str) -> Option<Arc<Plugin>> {
        self.active().get(name).cloned()
    }

    /// Names of the activated plugins implementing `interface` (`docker info`'s Plugins).
    pub fn names(&self, interface: &str) -> Vec<String> {
        self.active()
            .values()
            .filter(|p| p.implements().iter().any(|i| i == interface))
            .map(|p| p.name.clone())
            .collect()
    }

    /// The plugin `name` implementing `interface`: looked up (within Docker's retry window)
    /// and activated on first use, cached afterwards.
    pub async fn get(&self, name: &str, interface: &str) -> Result<Arc<Plugin>, PluginError> {
        let p = match self.registered(name) {
            Some(p) => p,
            None => self.load(name).await?,
        };
        if !p.implements().iter().any(|i| i == interface) {
            return Err(PluginError::NotImplements {
                name: name.to_string(),
                interface: interface.to_string(),
            });
        }
        Ok(p)
    }

    async fn load(&self, name: &str) -> Result<Arc<Plugin>, PluginError> {
        let lock = {
            let mut l = self.loading.lock().unwrap_or_else(|p| p.into_inner());
            l.entry(name.to_string()).or_default().clone()
        };
        let _one = lock.lock().await;
        let r = match self.registered(name) {
            Some(p) => Ok(p),
            None => self.activate_new(name).await,
        };
        self.loading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        r
    }

    async fn activate_new(&self, name: &str) -> Result<Arc<Plugin>, PluginError> {
        let spec = lookup(&self.cfg.dirs, self.cfg.retry, name).await?;
        let t = Transport::new(&spec, self.cfg.limits)?;
        let implements = activate(&t, self.cfg.retry)
            .await
            .map_err(|f| PluginError::Activation(Box::new(f.error)))?;
        tracing::debug!("{name} implements: {implements:?}");
        let registration = register(name, &t, self.cfg.retry, &implements).await;
        let p = Arc::new(Plugin {
            name: name.to_string(),
            cfg: self.cfg.clone(),
            state: Mutex::new(State {
                spec,
                transport: Arc::new(t),
                implements,
                generation: 1,
                stale: false,
                registration,
            }),
            reactivating: tokio::sync::Mutex::new(()),
        });
        self.active().insert(name.to_string(), p.clone());
        Ok(p)
    }
}
