//! `diagnose` and `graph`: the engine resolves targets (it knows containers that have no
//! endpoint: stopped ones, `--net=host`, `--net=none`) and hands them to berth-net.

use super::{Engine, Result};
use berth_api::NetworkMode;
use berth_net::diagnose::{self, graph, Report, Spec, Subject, Target};
use std::collections::HashMap;

impl Engine {
    /// A target as the user wrote it, resolved.
    pub fn diag_target(&self, s: &str) -> Result<Target> {
        let (spec, port, proto) = diagnose::parse_target(s)?;
        let subject = match spec {
            Spec::Host => Subject::Host,
            Spec::Addr(ip) => Subject::Addr { ip },
            Spec::Name(n) => match self.find(&n) {
                Ok(c) => {
                    let rec = c.snapshot();
                    let (id, mode) = match rec.network_mode() {
                        NetworkMode::Host => (rec.id.clone(), "host".to_string()),
                        NetworkMode::None => (rec.id.clone(), "none".to_string()),
                        // the other container's stack is this one's
                        NetworkMode::Container(other) => match self.find(other) {
                            Ok(o) => (o.id.clone(), format!("container:{other}")),
                            Err(_) => (rec.id.clone(), format!("container:{other}")),
                        },
                        NetworkMode::Bridge => (rec.id.clone(), "bridge".to_string()),
                        NetworkMode::Network(net) => (rec.id.clone(), net.to_string()),
                    };
                    Subject::Container {
                        id,
                        name: rec.name.clone(),
                        running: rec.running(),
                        status: rec.state.status.as_str().to_string(),
                        mode,
                        error: rec.state.error.clone(),
                        // only a stopped container's are looked at (who holds them)
                        wants: if rec.running() {
                            vec![]
                        } else {
                            super::ports::wants_of(&rec).unwrap_or_default()
                        },
                    }
                }
                Err(_) => Subject::Name { name: n },
            },
        };
        Ok(Target {
            subject,
            port,
            proto,
        })
    }

    pub async fn diagnose(&self, from: &str, to: &str, probe: bool) -> Result<Report> {
        let (from, to) = (self.diag_target(from)?, self.diag_target(to)?);
        Ok(diagnose::diagnose(&self.net, &from, &to, probe).await)
    }

    pub fn graph(&self) -> graph::Graph {
        let m = self.net.model();
        let mut ports = HashMap::new();
        for e in &m.endpoints {
            if !ports.contains_key(&e.container_id) {
                let runs = self.net.published(&e.container_id);
                if !runs.is_empty() {
                    ports.insert(e.container_id.clone(), runs);
                }
            }
        }
        graph::build(&m, &ports)
    }
}
