//! A remote IPAM driver: one method per `IpamDriver.*` call (libnetwork `ipams/remote`).

use super::api::ipam::*;
use super::driver::parse_cidr;
use super::error::PluginError;
use super::registry::{IpamInfo, Plugin, Plugins, IPAM_DRIVER};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Docker 20.10's `ipamapi.ErrNoIPReturned` (newer engines lowercase it).
pub const NO_ADDRESS: &str = "No address returned";

/// A pool granted by RequestPool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// Opaque; passed back in every later call.
    pub id: String,
    pub pool: IpNet,
    /// `com.docker.network.gateway` here supplies the gateway (no gateway RequestAddress).
    pub data: BTreeMap<String, String>,
}

impl Pool {
    /// The gateway the plugin supplied in `Data`, if it parses.
    pub fn gateway(&self) -> Option<IpNet> {
        self.data.get(GATEWAY).and_then(|g| g.parse().ok())
    }
}

/// RequestAddress options of a gateway request.
pub fn gateway_request() -> BTreeMap<String, String> {
    BTreeMap::from([(REQUEST_ADDRESS_TYPE.to_string(), GATEWAY.to_string())])
}

/// A plugin registered as an IPAM driver.
#[derive(Clone, Debug)]
pub struct RemoteIpam {
    plugin: Arc<Plugin>,
}

impl RemoteIpam {
    /// Resolves the IPAM driver `name` (lookup, activation, registration on first use); a
    /// plugin whose GetDefaultAddressSpaces failed gives `invalid ipam driver: "<name>"`.
    pub async fn resolve(plugins: &Plugins, name: &str) -> Result<RemoteIpam, PluginError> {
        let plugin = plugins.get(name, IPAM_DRIVER).await?;
        let d = RemoteIpam { plugin };
        d.info()?;
        Ok(d)
    }

    pub fn name(&self) -> &str {
        self.plugin.name()
    }

    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Capabilities and default address spaces from the registration.
    pub fn info(&self) -> Result<IpamInfo, PluginError> {
        match self.plugin.registration().ipam {
            Some(Ok(i)) => Ok(i),
            _ => Err(PluginError::InvalidIpam(self.name().to_string())),
        }
    }

    /// The default address space for a network of this scope.
    pub fn address_space(&self, global: bool) -> Result<String, PluginError> {
        let i = self.info()?;
        Ok(if global {
            i.global_address_space
        } else {
            i.local_address_space
        })
    }

    async fn call<R: serde::Serialize, T: super::api::Reply>(
        &self,
        method: &str,
        req: Option<&R>,
    ) -> Result<T, PluginError> {
        self.plugin.call(&format!("IpamDriver.{method}"), req).await
    }

    /// Optional: a 404 (no handler) gives no capabilities.
    pub async fn get_capabilities(&self) -> Result<CapabilitiesResponse, PluginError> {
        match self.call::<(), _>("GetCapabilities", None).await {
            Err(e) if e.is_not_implemented() => Ok(CapabilitiesResponse::default()),
            r => r,
        }
    }

    /// (local, global) default address spaces.
    pub async fn get_default_address_spaces(&self) -> Result<(String, String), PluginError> {
        let r: AddressSpacesResponse = self.call::<(), _>("GetDefaultAddressSpaces", None).await?;
        Ok((
            r.local_default_address_space,
            r.global_default_address_space,
        ))
    }

    pub async fn request_pool(&self, req: &RequestPoolRequest) -> Result<Pool, PluginError> {
        let r: RequestPoolResponse = self.call("RequestPool", Some(req)).await?;
        Ok(Pool {
            pool: parse_cidr(&r.pool)?,
            id: r.pool_id,
            data: r.data,
        })
    }

    pub async fn release_pool(&self, pool_id: &str) -> Result<(), PluginError> {
        let req = ReleasePoolRequest {
            pool_id: pool_id.to_string(),
        };
        self.call::<_, Response>("ReleasePool", Some(&req))
            .await
            .map(drop)
    }

    /// `address`: the preferred IP (`--ip`, a stored address), or any. `options`: `None`
    /// for endpoints (Docker's nil map), [`gateway_request`] for the gateway, the MAC for
    /// drivers with `RequiresMACAddress`. The reply must be CIDR.
    pub async fn request_address(
        &self,
        pool_id: &str,
        address: Option<IpAddr>,
        options: Option<BTreeMap<String, String>>,
    ) -> Result<(IpNet, BTreeMap<String, String>), PluginError> {
        let req = RequestAddressRequest {
            pool_id: pool_id.to_string(),
            address: address.map(|a| a.to_string()).unwrap_or_default(),
            options,
        };
        let r: RequestAddressResponse = self.call("RequestAddress", Some(&req)).await?;
        if r.address.is_empty() {
            return Err(PluginError::Invalid(NO_ADDRESS.into()));
        }
        Ok((parse_cidr(&r.address)?, r.data))
    }

    /// `address` goes as a plain IP.
    pub async fn release_address(&self, pool_id: &str, address: IpAddr) -> Result<(), PluginError> {
        let req = ReleaseAddressRequest {
            pool_id: pool_id.to_string(),
            address: address.to_string(),
        };
        self.call::<_, Response>("ReleaseAddress", Some(&req))
            .await
            .map(drop)
    }
}
