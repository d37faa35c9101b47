//! `POST /containers/create`: validate, resolve the image, write the record. Nothing runs yet
//! and no network is touched: addresses are given at start, as Docker does.

use super::record::{Attachment, Record, State, Status, ZERO_TIME};
use super::{names, Ctr, Engine, Result};
use berth_api::NetworkMode;
use berth_api::{ContainerCreateRequest, EndpointSettings, HostConfig};
use berth_net::NetError;
use std::sync::Arc;

fn merge_env(image: &[String], user: &[String]) -> Vec<String> {
    let mut out: Vec<String> = image.to_vec();
    for e in user {
        let key = e.split('=').next().unwrap_or(e);
        out.retain(|x| x.split('=').next() != Some(key));
        out.push(e.clone());
    }
    out
}

/// Docker's create-time checks of the networking part (engine-api.md §2.4).
fn check_networking(req: &ContainerCreateRequest, hc: &HostConfig) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let eps = req
        .networking_config
        .as_ref()
        .and_then(|n| n.endpoints_config.clone())
        .unwrap_or_default();
    if eps.len() > 1 {
        let names: Vec<&str> = eps.keys().map(String::as_str).collect();
        return Err(NetError::invalid(format!(
            "Container cannot be connected to network endpoints: {}",
            names.join(", ")
        )));
    }
    for (net, ep) in &eps {
        let Some(ep) = ep else {
            return Err(NetError::invalid(format!("no EndpointSettings for {net}")));
        };
        super::epconf::check(ep)?;
        if let Some(ipam) = &ep.ipam_config {
            if !ipam.ipv4_address.is_empty()
                && ipam.ipv4_address.parse::<std::net::Ipv4Addr>().is_err()
            {
                return Err(NetError::invalid(format!(
                    "invalid IPv4 address: {}",
                    ipam.ipv4_address
                )));
            }
            if !ipam.ipv6_address.is_empty()
                && ipam.ipv6_address.parse::<std::net::Ipv6Addr>().is_err()
            {
                return Err(NetError::invalid(format!(
                    "invalid IPv6 address: {}",
                    ipam.ipv6_address
                )));
            }
        }
    }
    let mode = NetworkMode::parse(&hc.network_mode);
    let has_ports = hc.port_bindings.as_ref().is_some_and(|p| !p.is_empty());
    if let NetworkMode::Container(_) = mode {
        if has_ports || hc.publish_all_ports {
            return Err(NetError::invalid(
                "conflicting options: port publishing and the container type network mode",
            ));
        }
        if !req.config.hostname.is_empty() {
            return Err(NetError::invalid(
                "conflicting options: hostname and the network mode",
            ));
        }
        if hc.links.as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(NetError::invalid("conflicting options: container type network can't be used with links. This would result in undefined behavior"));
        }
    }
    if mode == NetworkMode::Host {
        if hc.links.as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(NetError::invalid("conflicting options: host type networking can't be used with links. This would result in undefined behavior"));
        }
        if has_ports {
            warnings.push("Published ports are discarded when using host network mode".into());
        }
    }
    Ok(warnings)
}

impl Engine {
    pub async fn create(
        self: &Arc<Self>,
        name: Option<String>,
        req: ContainerCreateRequest,
    ) -> Result<(String, Vec<String>)> {
        if req.config.image.is_empty() {
            return Err(NetError::invalid(
                "Config cannot be empty in order to create a container",
            ));
        }
        if let Some(n) = name.as_deref().filter(|n| !n.is_empty()) {
            if !names::valid(n) {
                return Err(NetError::invalid(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
        }
        let mut hc = req.host_config.clone().unwrap_or_default();
        if hc.network_mode.is_empty() {
            hc.network_mode = "default".into();
        }
        let warnings = check_networking(&req, &hc)?;
        super::logconf::check(&hc.log_config)?;
        super::resources::check_create(&mut hc)?;
        hc.log_config = super::logconf::shown(&hc.log_config);
        self.check_links(&hc)?;
        let images = self.images.clone();
        let image_ref = req.config.image.clone();
        let image = super::blocking(move || images.resolve(&image_ref)).await?;

        let mut config = req.config.clone();
        let entrypoint = config
            .entrypoint
            .clone()
            .filter(|e| !e.is_empty())
            .or_else(|| image.config.entrypoint.clone());
        // A user entrypoint drops the image's Cmd (Docker's rule).
        let cmd = config.cmd.clone().filter(|c| !c.is_empty()).or_else(|| {
            if config.entrypoint.as_ref().is_some_and(|e| !e.is_empty()) {
                None
            } else {
                image.config.cmd.clone()
            }
        });
        let mut argv: Vec<String> = entrypoint.clone().unwrap_or_default();
        argv.extend(cmd.clone().unwrap_or_default());
        if argv.is_empty() {
            return Err(NetError::invalid("No command specified"));
        }
        config.cmd = cmd;
        config.entrypoint = entrypoint;
        config.env = Some(merge_env(
            &image.config.env,
            config.env.as_deref().unwrap_or_default(),
        ));
        if config.working_dir.is_empty() {
            config.working_dir = image.config.working_dir.clone();
        }
        if config.user.is_empty() {
            config.user = image.config.user.clone();
        }
        if config.labels.is_none() {
            config.labels = Some(image.config.labels.clone());
        }
        if !image.config.exposed_ports.is_empty() {
            let ports = config.exposed_ports.get_or_insert_with(Default::default);
            for (k, v) in &image.config.exposed_ports {
                ports.entry(k.clone()).or_insert(v.clone());
            }
        }
        super::ports::check_and_expose(&mut config, &hc)?;
        let image_volumes: Vec<String> = image.config.volumes.keys().cloned().collect();
        let mut mounts = super::mounts::parse(&hc, config.volumes.as_ref(), &image_volumes)?;
        self.volumes_from(&hc, &mut mounts)?;
        if !image_volumes.is_empty() {
            // inspect's Config.Volumes holds the image's too, as Docker's does
            let v = config.volumes.get_or_insert_with(|| serde_json::json!({}));
            if let Some(o) = v.as_object_mut() {
                for d in &image_volumes {
                    o.entry(d.clone()).or_insert(serde_json::json!({}));
                }
            }
        }

        let id = berth_net::network::new_id();
        if config.hostname.is_empty() {
            config.hostname = id[..12].to_string();
        }
        let parsed = NetworkMode::parse(&hc.network_mode);
        let mode = parsed.network().unwrap_or_default().to_string();
        let networks = if !parsed.has_endpoints() {
            Vec::new()
        } else {
            let eps = req
                .networking_config
                .as_ref()
                .and_then(|n| n.endpoints_config.clone())
                .unwrap_or_default();
            let mut requested: EndpointSettings = eps
                .into_iter()
                .next()
                .and_then(|(_, e)| e)
                .unwrap_or_default();
            // Links given for a user network live on its endpoint (Docker moves them there).
            if parsed != NetworkMode::Bridge {
                if let Some(l) = hc.links.take().filter(|l| !l.is_empty()) {
                    requested.links.get_or_insert_with(Vec::new).extend(l);
                }
            }
            vec![Attachment {
                network: mode.clone(),
                requested,
            }]
        };

        // the name is checked again under the registry lock below; this early look keeps a
        // taken name from leaving volumes behind in the common case
        if let Some(n) = name.as_deref().filter(|n| !n.is_empty()) {
            if let Ok(other) = self.find(n.trim_start_matches('/')) {
                if other.rec.lock().unwrap().name == n.trim_start_matches('/') {
                    return Err(NetError::conflict(format!(
                        "Conflict. The container name \"/{}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                        n.trim_start_matches('/'),
                        other.id
                    )));
                }
            }
        }
        self.make_volumes(&mut mounts)?;
        let port_runs = super::port_runs::compact(&mut config, &mut hc);
        let c = {
            let mut ctrs = self.ctrs.lock().unwrap();
            let taken = |n: &str| ctrs.values().any(|c| c.rec.lock().unwrap().name == n);
            let name = match name.filter(|n| !n.is_empty()) {
                Some(n) => {
                    let n = n.trim_start_matches('/').to_string();
                    if let Some(other) = ctrs.values().find(|c| c.rec.lock().unwrap().name == n) {
                        return Err(NetError::conflict(format!(
                            "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                            other.id
                        )));
                    }
                    n
                }
                None => names::generate(taken),
            };
            let path = argv[0].clone();
            let rec = Record {
                id: id.clone(),
                name,
                created: super::record::now(),
                image_ref: req.config.image.clone(),
                image_id: image.id.clone(),
                path,
                args: argv[1..].to_vec(),
                config,
                host_config: hc,
                networks,
                state: State {
                    status: Status::Created,
                    pid: 0,
                    exit_code: 0,
                    error: String::new(),
                    started_at: ZERO_TIME.into(),
                    finished_at: ZERO_TIME.into(),
                    paused: false,
                    restarting: false,
                    stopped_by_user: false,
                },
                restart_count: 0,
                port_runs,
                mounts: mounts.points.clone(),
            };
            let c = Ctr::new(rec);
            ctrs.insert(id.clone(), c.clone());
            c
        };
        let rec = c.snapshot();
        let prepared = self
            .rt
            .prepare(&id)
            .and_then(|p| {
                std::fs::write(p.hostname(), format!("{}\n", rec.config.hostname))
                    .map_err(|e| NetError::internal(e.to_string()))
            })
            .and_then(|_| self.persist(&rec));
        if let Err(e) = prepared {
            self.ctrs.lock().unwrap().remove(&id);
            self.rt.remove(&id);
            self.remove_anonymous_volumes(&rec.mounts);
            return Err(e);
        }
        berth_net::fail::point("create/stored");
        super::ports::give_back_memory_if_big(&rec);
        Ok((id, warnings))
    }
}
