//! ProgramExternalConnectivity / RevokeExternalConnectivity (plugins.md §2.9, §4.2, §4.3):
//! a plugin network has no bridge of berth's to publish ports on, so when a container's
//! gateway endpoint (the one carrying its default routes) is a plugin's, the container's port
//! map and exposed ports go to the plugin instead. Docker sends Program once the sandbox's
//! ports are known (berth: when the engine publishes them, after the endpoints joined), Revoke
//! before the gateway endpoint's Leave, and Program to the endpoint that takes over.

use super::Controller;
use crate::drivers;
use crate::endpoint::{Endpoint, Phase};
use crate::error::Result;
use crate::plugins::api::net::{keys, Options};
use crate::portmap::spec::{Proto, Want};
use serde_json::{json, Value};

/// IANA protocol numbers, as Docker's `types.Protocol` marshals.
fn proto_number(p: Proto) -> u8 {
    match p {
        Proto::Tcp => 6,
        Proto::Udp => 17,
        Proto::Sctp => 132,
    }
}

/// The sandbox labels Docker sends: `com.docker.network.portmap` (one entry per binding asked
/// for, host port 0 when any) and `…exposedports` (one per container port).
pub(super) fn port_options(wants: &[Want]) -> Options {
    let portmap: Vec<Value> = wants
        .iter()
        .map(|w| {
            let (lo, hi) = w.host_ports.unwrap_or((0, 0));
            json!({
                "Proto": proto_number(w.proto),
                "IP": "",
                "Port": w.container_port,
                "HostIP": w.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                "HostPort": lo,
                "HostPortEnd": hi,
            })
        })
        .collect();
    let mut exposed: Vec<(u8, u16)> = wants
        .iter()
        .map(|w| (proto_number(w.proto), w.container_port))
        .collect();
    exposed.sort_unstable();
    exposed.dedup();
    let exposed: Vec<Value> = exposed
        .into_iter()
        .map(|(p, port)| json!({"Proto": p, "Port": port}))
        .collect();
    Options::from([
        (keys::EXPOSED_PORTS.to_string(), Value::Array(exposed)),
        (keys::PORTMAP.to_string(), Value::Array(portmap)),
    ])
}

impl Controller {
    /// The container's gateway endpoint when it is a plugin's on a network that is not
    /// internal, with its driver's name.
    fn plugin_gateway_endpoint(&self, cid: &str) -> Option<(Endpoint, String)> {
        let st = self.lock();
        let c = st.eps.route_carrier(cid)?;
        if c.phase != Phase::Live {
            return None;
        }
        let n = st.networks.get(&c.ep.network_id)?;
        if n.plugin().is_none() || n.internal {
            return None;
        }
        Some((c.ep.clone(), n.driver.clone()))
    }

    /// Sends ProgramExternalConnectivity with the container's ports when its gateway endpoint
    /// is a plugin's (and not already programmed). `None`: its ports are berth's to publish.
    pub(super) async fn program_plugin_gateway(
        &self,
        cid: &str,
        wants: &[Want],
    ) -> Option<Result<()>> {
        let (ep, driver) = self.plugin_gateway_endpoint(cid)?;
        if self
            .lock()
            .programmed
            .get(cid)
            .is_some_and(|(id, _)| *id == ep.id)
        {
            return Some(Ok(()));
        }
        Some(
            self.program_plugin(cid, &ep, &driver, port_options(wants))
                .await,
        )
    }

    async fn program_plugin(
        &self,
        cid: &str,
        ep: &Endpoint,
        driver: &str,
        options: Options,
    ) -> Result<()> {
        let d = self.driver(driver).await?;
        d.program_external(ep, &options).await?;
        self.lock()
            .programmed
            .insert(cid.to_string(), (ep.id.clone(), options));
        Ok(())
    }

    /// Before a leaving endpoint's Leave: RevokeExternalConnectivity if it was programmed.
    /// Returns the options it had, for the endpoint that takes over.
    pub(super) async fn revoke_if_programmed(
        &self,
        ep: &Endpoint,
        driver: &dyn drivers::NetworkDriver,
    ) -> Option<Options> {
        let options = {
            let mut st = self.lock();
            match st.programmed.get(&ep.container_id) {
                Some((id, _)) if *id == ep.id => st.programmed.remove(&ep.container_id),
                _ => None,
            }
        }
        .map(|(_, o)| o)?;
        if let Err(e) = driver.revoke_external(ep).await {
            tracing::warn!("RevokeExternalConnectivity of endpoint {}: {e}", ep.id);
        }
        Some(options)
    }

    /// After the gateway endpoint left a running container: the next one, if a plugin's,
    /// is programmed with the same ports. A failure is logged (the disconnect is done).
    pub(super) async fn program_next(&self, cid: &str, options: Options) {
        let Some((ep, driver)) = self.plugin_gateway_endpoint(cid) else {
            return;
        };
        if let Err(e) = self.program_plugin(cid, &ep, &driver, options).await {
            tracing::warn!("container {cid}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_dockers_sandbox_labels() {
        let w = |proto, port, host: Option<(u16, u16)>| Want {
            proto,
            container_port: port,
            host_ip: None,
            host_ports: host,
        };
        let o = port_options(&[
            w(Proto::Tcp, 80, Some((8080, 8080))),
            w(Proto::Tcp, 80, Some((8081, 8081))),
            w(Proto::Udp, 53, None),
        ]);
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            json!({
                "com.docker.network.endpoint.exposedports": [
                    {"Proto": 6, "Port": 80}, {"Proto": 17, "Port": 53}
                ],
                "com.docker.network.portmap": [
                    {"Proto": 6, "IP": "", "Port": 80, "HostIP": "", "HostPort": 8080, "HostPortEnd": 8080},
                    {"Proto": 6, "IP": "", "Port": 80, "HostIP": "", "HostPort": 8081, "HostPortEnd": 8081},
                    {"Proto": 17, "IP": "", "Port": 53, "HostIP": "", "HostPort": 0, "HostPortEnd": 0}
                ]
            })
        );
        let empty = serde_json::to_value(port_options(&[])).unwrap();
        assert_eq!(
            empty,
            json!({"com.docker.network.endpoint.exposedports": [], "com.docker.network.portmap": []})
        );
    }
}
