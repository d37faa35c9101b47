//! How containers look from outside: inspect (`GET /containers/{id}/json`) and list
//! (`GET /containers/json`) in Docker's shapes.

use super::record::{Record, Status};
use super::{Ctr, Engine};
use berth_api::units::human_duration;
use berth_api::{ContainerInspect, ContainerState, ContainerSummary, NetworkSettings};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// Docker's state word: a paused or restarting container is still "running" underneath.
pub fn state_word(rec: &Record) -> &'static str {
    match rec.state.status {
        Status::Running if rec.state.paused => "paused",
        Status::Exited if rec.state.restarting => "restarting",
        s => s.as_str(),
    }
}

fn status_text(rec: &Record) -> String {
    let now = time::OffsetDateTime::now_utc();
    match rec.state.status {
        Status::Running => {
            let since = parse_time(&rec.state.started_at).unwrap_or(now);
            let paused = if rec.state.paused { " (Paused)" } else { "" };
            format!(
                "Up {}{paused}",
                human_duration((now - since).whole_seconds())
            )
        }
        Status::Exited if rec.state.restarting => {
            let since = parse_time(&rec.state.finished_at).unwrap_or(now);
            format!(
                "Restarting ({}) {} ago",
                rec.state.exit_code,
                human_duration((now - since).whole_seconds())
            )
        }
        Status::Exited => {
            let since = parse_time(&rec.state.finished_at).unwrap_or(now);
            format!(
                "Exited ({}) {} ago",
                rec.state.exit_code,
                human_duration((now - since).whole_seconds())
            )
        }
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

impl Engine {
    pub fn inspect_container(&self, c: &Ctr) -> ContainerInspect {
        let rec = c.snapshot();
        let paths = self.rt.paths(&rec.id);
        let running = rec.running();
        let networks: BTreeMap<_, _> = self.networks_of(&rec).into_iter().collect();
        let mut ns = NetworkSettings {
            ports: self.ports_map(&rec),
            networks,
            ..Default::default()
        };
        if running && rec.network_mode() != berth_api::NetworkMode::Host {
            ns.sandbox_id = rec.id.clone();
            ns.sandbox_key = self.sandbox_key(&rec).display().to_string();
        }
        // The deprecated top-level fields mirror the default bridge only (Docker's rule).
        if let Some(b) = ns.networks.get("bridge").cloned() {
            ns.endpoint_id = b.endpoint_id;
            ns.gateway = b.gateway;
            ns.ip_address = b.ip_address;
            ns.ip_prefix_len = b.ip_prefix_len;
            ns.ipv6_gateway = b.ipv6_gateway;
            ns.global_ipv6_address = b.global_ipv6_address;
            ns.global_ipv6_prefix_len = b.global_ipv6_prefix_len;
            ns.mac_address = b.mac_address;
        }
        let (mut config, mut host_config) = super::ports::shown(&rec);
        // records from before LogConfig was kept show the default driver
        host_config.log_config = super::logconf::shown(&host_config.log_config);
        // records from before restart policies were kept show Docker's defaults
        for (k, v) in [
            (
                "RestartPolicy",
                json!({"Name": "no", "MaximumRetryCount": 0}),
            ),
            ("Runtime", json!("runc")),
            // and the resource fields Docker always shows, at "no limit"
            ("GroupAdd", Value::Null),
            ("CpuShares", json!(0)),
            ("Memory", json!(0)),
            ("NanoCpus", json!(0)),
            ("BlkioWeight", json!(0)),
            ("CpuPeriod", json!(0)),
            ("CpuQuota", json!(0)),
            ("CpusetCpus", json!("")),
            ("CpusetMems", json!("")),
            ("MemoryReservation", json!(0)),
            ("MemorySwap", json!(0)),
            ("PidsLimit", Value::Null),
        ] {
            host_config.extra.entry(k).or_insert(v);
        }
        config.image = rec.image_ref.clone();
        ContainerInspect {
            id: rec.id.clone(),
            created: rec.created.clone(),
            path: rec.path.clone(),
            args: rec.args.clone(),
            state: ContainerState {
                status: state_word(&rec).into(),
                running: running || rec.state.restarting,
                paused: rec.state.paused,
                restarting: rec.state.restarting,
                oom_killed: false,
                dead: rec.state.status == Status::Dead,
                pid: rec.state.pid as i64,
                exit_code: rec.state.exit_code as i64,
                error: rec.state.error.clone(),
                started_at: rec.state.started_at.clone(),
                finished_at: rec.state.finished_at.clone(),
            },
            image: rec.image_id.clone(),
            resolv_conf_path: paths.resolv_conf().display().to_string(),
            hostname_path: paths.hostname().display().to_string(),
            hosts_path: paths.hosts().display().to_string(),
            log_path: String::new(),
            name: format!("/{}", rec.name),
            restart_count: rec.restart_count,
            driver: "overlay2".into(),
            platform: "linux".into(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            exec_ids: None,
            host_config,
            graph_driver: json!({"Data": null, "Name": "overlay2"}),
            mounts: self.mounts_shown(&rec.mounts),
            config,
            network_settings: ns,
        }
    }

    pub fn summary(&self, c: &Ctr) -> ContainerSummary {
        let rec = c.snapshot();
        let networks: BTreeMap<String, Value> = self
            .networks_of(&rec)
            .into_iter()
            .map(|(k, v)| (k, serde_json::to_value(v).unwrap_or(Value::Null)))
            .collect();
        let command = std::iter::once(rec.path.clone())
            .chain(rec.args.iter().map(|a| {
                if a.contains(' ') {
                    format!("'{a}'")
                } else {
                    a.clone()
                }
            }))
            .collect::<Vec<_>>()
            .join(" ");
        let created = parse_time(&rec.created)
            .map(|t| t.unix_timestamp())
            .unwrap_or(0);
        let ports = self.ports_list(&rec);
        ContainerSummary {
            id: rec.id.clone(),
            names: vec![format!("/{}", rec.name)],
            image: rec.image_ref.clone(),
            image_id: rec.image_id.clone(),
            command,
            created,
            ports,
            labels: rec.config.labels.clone().unwrap_or_default(),
            state: state_word(&rec).into(),
            status: status_text(&rec),
            host_config: json!({"NetworkMode": rec.host_config.network_mode}),
            network_settings: json!({ "Networks": networks }),
            mounts: self.mounts_shown(&rec.mounts),
        }
    }
}
