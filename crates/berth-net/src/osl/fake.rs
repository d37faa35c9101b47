//! An in-memory `Osl` for unit tests: records links and can be told to fail.

use super::{BridgeSpec, Osl, OslError};
use futures::future::BoxFuture;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct FakeOsl {
    pub links: Mutex<BTreeMap<String, BridgeSpec>>,
    pub host: Mutex<Vec<IpNet>>,
    /// The next create_bridge fails with this message.
    pub fail_create: Mutex<Option<String>>,
    pub endpoints: Mutex<BTreeMap<String, super::EndpointSpec>>,
}

impl Osl for FakeOsl {
    fn create_bridge<'a>(&'a self, spec: &'a BridgeSpec) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(async move {
            if let Some(msg) = self.fail_create.lock().unwrap().take() {
                return Err(OslError::Kernel {
                    op: "create bridge".into(),
                    msg,
                });
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
            self.links.lock().unwrap().remove(name);
            Ok(())
        })
    }

    fn link_exists<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, OslError>> {
        Box::pin(async move { Ok(self.links.lock().unwrap().contains_key(name)) })
    }

    fn links_with_alias<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, OslError>> {
        Box::pin(async move {
            Ok(self
                .links
                .lock()
                .unwrap()
                .values()
                .filter(|s| s.alias.starts_with(prefix))
                .map(|s| (s.name.clone(), s.alias.clone()))
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

    fn create_sandbox(&self, _: &std::path::Path) -> std::io::Result<()> {
        Ok(())
    }

    fn delete_sandbox(&self, _: &std::path::Path) -> std::io::Result<()> {
        Ok(())
    }

    fn create_endpoint<'a>(
        &'a self,
        spec: &'a super::EndpointSpec,
    ) -> BoxFuture<'a, Result<(), OslError>> {
        Box::pin(async move {
            self.endpoints
                .lock()
                .unwrap()
                .insert(spec.host_if.clone(), spec.clone());
            Ok(())
        })
    }
}
