//! Big port configurations kept small in the container's record.
//!
//! The docker CLI sends `-p 10000-20000:10000-20000` as 10,001 `PortBindings` keys and as many
//! `ExposedPorts`. Kept as such, the record is ~600 KB of JSON that every state change
//! rewrites and every snapshot copies (~50 ms per start). Above [`THRESHOLD`] entries, the
//! regular ones (`N/proto` → one binding `{HostIp: A, HostPort: "M"}`, or `{}` for an exposed
//! port) are moved into runs of consecutive ports, and put back, exactly as given, wherever
//! the record is shown. Anything irregular stays where it was.

use berth_api::{Config, HostConfig, PortBinding};
use berth_net::portmap::Proto;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Configurations with fewer entries than this are kept as given.
pub const THRESHOLD: usize = 64;

/// `count` exposed ports from `first`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExposedRun {
    pub proto: Proto,
    pub first: u16,
    pub count: u32,
}

/// `count` container ports from `first`, each bound to `host_ip` and the next host port from
/// `host_first`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindingRun {
    pub proto: Proto,
    pub first: u16,
    pub count: u32,
    pub host_ip: String,
    pub host_first: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PortRuns {
    pub exposed: Vec<ExposedRun>,
    pub bound: Vec<BindingRun>,
}

impl PortRuns {
    pub fn len(&self) -> usize {
        let e: u32 = self.exposed.iter().map(|r| r.count).sum();
        let b: u32 = self.bound.iter().map(|r| r.count).sum();
        (e + b) as usize
    }
}

/// `80/tcp` as berth writes it: nothing else may be compacted, or it would come back changed.
fn canonical_key(k: &str) -> Option<(Proto, u16)> {
    let (n, p) = k.split_once('/')?;
    let proto = match p {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "sctp" => Proto::Sctp,
        _ => return None,
    };
    canonical_port(n).map(|n| (proto, n))
}

fn canonical_port(s: &str) -> Option<u16> {
    let n: u16 = s.parse().ok()?;
    (n > 0 && n.to_string() == s).then_some(n)
}

/// Moves the regular entries of a big configuration out of `config` and `hc` into runs.
/// `None` (and nothing moved) for configurations below [`THRESHOLD`].
pub fn compact(config: &mut Config, hc: &mut HostConfig) -> Option<PortRuns> {
    let n = config.exposed_ports.as_ref().map_or(0, |m| m.len())
        + hc.port_bindings.as_ref().map_or(0, |m| m.len());
    if n < THRESHOLD {
        return None;
    }
    let mut runs = PortRuns::default();
    if let Some(m) = config.exposed_ports.as_mut() {
        let mut regular: Vec<(Proto, u16)> = m
            .iter()
            .filter(|(_, v)| v.as_object().is_some_and(|o| o.is_empty()))
            .filter_map(|(k, _)| canonical_key(k))
            .collect();
        regular.sort();
        for (proto, n) in regular {
            m.remove(&format!("{n}/{}", proto.as_str()));
            match runs.exposed.last_mut() {
                Some(r) if r.proto == proto && r.first as u32 + r.count == n as u32 => r.count += 1,
                _ => runs.exposed.push(ExposedRun {
                    proto,
                    first: n,
                    count: 1,
                }),
            }
        }
    }
    if let Some(m) = hc.port_bindings.as_mut() {
        let mut regular: Vec<(Proto, String, u16, u16)> = m
            .iter()
            .filter_map(|(k, v)| {
                let (proto, n) = canonical_key(k)?;
                match v.as_deref() {
                    Some([b]) => Some((proto, b.host_ip.clone(), n, canonical_port(&b.host_port)?)),
                    _ => None,
                }
            })
            .collect();
        regular.sort();
        for (proto, ip, n, h) in regular {
            m.remove(&format!("{n}/{}", proto.as_str()));
            match runs.bound.last_mut() {
                Some(r)
                    if r.proto == proto
                        && r.host_ip == ip
                        && r.first as u32 + r.count == n as u32
                        && r.host_first as u32 + r.count == h as u32 =>
                {
                    r.count += 1
                }
                _ => runs.bound.push(BindingRun {
                    proto,
                    first: n,
                    count: 1,
                    host_ip: ip,
                    host_first: h,
                }),
            }
        }
    }
    Some(runs)
}

/// Puts the runs back into `config` and `hc`, as they were given.
pub fn expand(runs: &PortRuns, config: &mut Config, hc: &mut HostConfig) {
    if !runs.exposed.is_empty() {
        let m = config.exposed_ports.get_or_insert_with(BTreeMap::new);
        for r in &runs.exposed {
            for i in 0..r.count {
                let n = r.first as u32 + i;
                m.insert(format!("{n}/{}", r.proto.as_str()), json!({}));
            }
        }
    }
    if !runs.bound.is_empty() {
        let m = hc.port_bindings.get_or_insert_with(BTreeMap::new);
        for r in &runs.bound {
            for i in 0..r.count {
                let (n, h) = (r.first as u32 + i, r.host_first as u32 + i);
                m.insert(
                    format!("{n}/{}", r.proto.as_str()),
                    Some(vec![PortBinding {
                        host_ip: r.host_ip.clone(),
                        host_port: h.to_string(),
                    }]),
                );
            }
        }
    }
}

/// `ExposedPorts` and `PortBindings` as the API has them.
pub type Exposed = Option<BTreeMap<String, Value>>;
pub type Bindings = Option<BTreeMap<String, Option<Vec<PortBinding>>>>;

/// The exposed ports and bindings of a record, whole.
pub fn whole(runs: Option<&PortRuns>, config: &Config, hc: &HostConfig) -> (Exposed, Bindings) {
    match runs {
        None => (config.exposed_ports.clone(), hc.port_bindings.clone()),
        Some(r) => {
            let (mut c, mut h) = (
                Config {
                    exposed_ports: config.exposed_ports.clone(),
                    ..Default::default()
                },
                HostConfig {
                    port_bindings: hc.port_bindings.clone(),
                    ..Default::default()
                },
            );
            expand(r, &mut c, &mut h);
            (c.exposed_ports, h.port_bindings)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli_range(h: u16, c: u16, n: u16, proto: &str) -> (Config, HostConfig) {
        let mut exposed = BTreeMap::new();
        let mut bindings = BTreeMap::new();
        for i in 0..n {
            exposed.insert(format!("{}/{proto}", c + i), json!({}));
            bindings.insert(
                format!("{}/{proto}", c + i),
                Some(vec![PortBinding {
                    host_ip: "".into(),
                    host_port: (h + i).to_string(),
                }]),
            );
        }
        (
            Config {
                exposed_ports: Some(exposed),
                ..Default::default()
            },
            HostConfig {
                port_bindings: Some(bindings),
                ..Default::default()
            },
        )
    }

    #[test]
    fn a_big_range_becomes_two_runs_and_comes_back_whole() {
        let (mut c, mut h) = cli_range(10000, 10000, 10001, "tcp");
        let (c0, h0) = (c.clone(), h.clone());
        let runs = compact(&mut c, &mut h).unwrap();
        assert_eq!(runs.exposed.len(), 1);
        assert_eq!(runs.bound.len(), 1);
        assert_eq!(runs.len(), 20002);
        assert!(c.exposed_ports.as_ref().unwrap().is_empty());
        assert!(h.port_bindings.as_ref().unwrap().is_empty());
        assert!(serde_json::to_vec(&runs).unwrap().len() < 200);
        let (e, b) = whole(Some(&runs), &c, &h);
        assert_eq!(e, c0.exposed_ports);
        assert_eq!(b, h0.port_bindings);
    }

    #[test]
    fn irregular_entries_stay_and_small_configurations_are_untouched() {
        let (mut c, mut h) = cli_range(30000, 1, 100, "udp");
        let pb = h.port_bindings.as_mut().unwrap();
        // two bindings, a host range, an address, a non-canonical key, an empty list
        pb.insert(
            "80/tcp".into(),
            Some(vec![
                PortBinding {
                    host_ip: "".into(),
                    host_port: "8080".into(),
                },
                PortBinding {
                    host_ip: "::1".into(),
                    host_port: "8080".into(),
                },
            ]),
        );
        pb.insert(
            "81/tcp".into(),
            Some(vec![PortBinding {
                host_ip: "".into(),
                host_port: "9000-9010".into(),
            }]),
        );
        pb.insert(
            "82".into(),
            Some(vec![PortBinding {
                host_ip: "127.0.0.1".into(),
                host_port: "0082".into(),
            }]),
        );
        pb.insert("83/tcp".into(), Some(vec![]));
        pb.insert("84/tcp".into(), None);
        c.exposed_ports
            .as_mut()
            .unwrap()
            .insert("85/tcp".into(), json!({"x": 1}));
        let (c0, h0) = (c.clone(), h.clone());
        let runs = compact(&mut c, &mut h).unwrap();
        assert_eq!(
            h.port_bindings.as_ref().unwrap().len(),
            5,
            "irregular ones stay"
        );
        assert_eq!(c.exposed_ports.as_ref().unwrap().len(), 1);
        assert_eq!(runs.bound.len(), 1);
        let (e, b) = whole(Some(&runs), &c, &h);
        assert_eq!(e, c0.exposed_ports);
        assert_eq!(b, h0.port_bindings);

        let (mut c, mut h) = cli_range(8000, 80, 10, "tcp");
        let before = (c.clone(), h.clone());
        assert!(compact(&mut c, &mut h).is_none());
        assert_eq!((c, h), before);
    }
}
