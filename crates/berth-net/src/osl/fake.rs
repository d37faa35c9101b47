//! An in-memory `Osl` for unit tests: records links, sandboxes and routes, and can be told to
//! fail.

use super::{BridgeSpec, EndpointSpec, Osl, OslError};
use futures::future::BoxFuture;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Default)]
pub struct FakeOsl {
    pub links: Mutex<BTreeMap<String, BridgeSpec>>,
    pub host: Mutex<Vec<IpNet>>,
    /// The next create_bridge fails with this message.
    pub fail_create: Mutex<Option<String>>,
    /// Veths by host name.
    pub endpoints: Mutex<BTreeMap<String, EndpointSpec>>,
    /// The next create_endpoint fails with this message.
    pub fail_endpoint: Mutex<Option<String>>,
    pub sandboxes: Mutex<BTreeSet<PathBuf>>,
    /// Every set_default_routes call: (sandbox, interface, gateways).
    pub routes: Mutex<Vec<(PathBuf, String, Vec<IpAddr>)>>,
    /// Every link deletion, in order.
    pub deleted: Mutex<Vec<String>>,
    /// When set, each link deletion first waits for a permit (a kernel that takes its time).
    pub delete_gate: Mutex<Option<std::sync::Arc<tokio::sync::Semaphore>>>,
}

fn injected(op: &str, msg: String) -> OslError {
    OslError::Kernel { op: op.into(), msg }
}

impl Osl for FakeOsl {
    fn create_bridge<'a>(&'a self, spec: &'a BridgeSpec) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(async move {
            if let Some(msg) = self.fail_create.lock().unwrap().take() {
                return Err(injected("create bridge", msg));
            }
            let mut links = self.links.lock().unwrap();
            if links.contains_key(&spec.name) {
                return Err(OslError::Exists(spec.name.clone()));
            }
            links.insert(spec.name.clone(), spec.clone());
            Ok(())
        })
    }

    fn delete_link<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(async move {
            let gate = self.delete_gate.lock().unwrap().clone();
            if let Some(g) = gate {
                g.acquire().await.expect("open").forget();
            }
            self.links.lock().unwrap().remove(name);
            self.endpoints.lock().unwrap().remove(name);
            self.deleted.lock().unwrap().push(name.to_string());
            Ok(())
        })
    }

    fn link_exists<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, OslError>> {
        Box::pin(async move {
            Ok(self.links.lock().unwrap().contains_key(name)
                || self.endpoints.lock().unwrap().contains_key(name))
        })
    }

    fn links_with_alias<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, OslError>> {
        Box::pin(async move {
            let bridges = self
                .links
                .lock()
                .unwrap()
                .values()
                .map(|s| (s.name.clone(), s.alias.clone()))
                .collect::<Vec<_>>();
            let veths = self
                .endpoints
                .lock()
                .unwrap()
                .values()
                .map(|s| (s.host_if.clone(), s.alias.clone()))
                .collect::<Vec<_>>();
            Ok(bridges
                .into_iter()
                .chain(veths)
                .filter(|(_, a)| a.starts_with(prefix))
                .collect())
        })
    }

    fn host_networks(&self) -> BoxFuture<'_, Result<Vec<IpNet>, OslError>> {
        Box::pin(async move {
            let mut v = self.host.lock().unwrap().clone();
            for s in self.links.lock().unwrap().values() {
                v.extend(s.addrs.iter().map(|a| a.trunc()));
            }
            Ok(v)
        })
    }

    fn enable_forwarding(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn create_sandbox<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(async move {
            self.sandboxes.lock().unwrap().insert(path.to_path_buf());
            Ok(())
        })
    }

    fn delete_sandbox(&self, path: &Path) -> std::io::Result<()> {
        self.sandboxes.lock().unwrap().remove(path);
        Ok(())
    }

    fn sandbox_exists(&self, path: &Path) -> bool {
        self.sandboxes.lock().unwrap().contains(path)
    }

    fn create_endpoint<'a>(
        &'a self,
        spec: &'a EndpointSpec,
    ) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(async move {
            if let Some(msg) = self.fail_endpoint.lock().unwrap().take() {
                return Err(injected("create endpoint", msg));
            }
            if !self.sandboxes.lock().unwrap().contains(&spec.netns) {
                return Err(injected("open sandbox", "no such file".into()));
            }
            let mut eps = self.endpoints.lock().unwrap();
            if eps.contains_key(&spec.host_if) {
                return Err(OslError::Exists(spec.host_if.clone()));
            }
            eps.insert(spec.host_if.clone(), spec.clone());
            Ok(())
        })
    }

    fn set_default_routes<'a>(
        &'a self,
        netns: &'a Path,
        ifname: &'a str,
        gateways: &'a [IpAddr],
    ) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(async move {
            self.routes.lock().unwrap().push((
                netns.to_path_buf(),
                ifname.to_string(),
                gateways.to_vec(),
            ));
            Ok(())
        })
    }
}
