//! Bindings grouped into runs: consecutive host ports to consecutive container ports. The CLI
//! expands `-p 8000-9000:8000-9000` into one key per port; grouping them again is what lets a
//! range be one firewall element and one small record, whatever its size. Pure.

use super::spec::Proto;
use berth_api::PortBinding;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One binding made: `host_ip:host_port` → the container's `container_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Binding {
    pub proto: Proto,
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
}

/// `count` consecutive host ports from `host_port` to as many container ports from
/// `container_port`, on one host address (`0.0.0.0`/`::`: all of the host's addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub proto: Proto,
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub count: u32,
}

impl Run {
    pub fn host_last(&self) -> u16 {
        (self.host_port as u32 + self.count - 1) as u16
    }

    /// Host and container ports are the same numbers: the kernel can keep the port.
    pub fn same_ports(&self) -> bool {
        self.host_port == self.container_port
    }

    /// (host port, container port) of every binding of the run.
    pub fn pairs(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        (0..self.count).map(|i| {
            (
                (self.host_port as u32 + i) as u16,
                (self.container_port as u32 + i) as u16,
            )
        })
    }
}

/// Groups bindings into the fewest runs. Order of the result: protocol, host address,
/// container port.
pub fn coalesce(bindings: &[Binding]) -> Vec<Run> {
    let mut sorted = bindings.to_vec();
    sorted.sort_by_key(|b| (b.proto, b.host_ip, b.container_port, b.host_port));
    sorted.dedup();
    let mut out: Vec<Run> = Vec::new();
    for b in sorted {
        if let Some(r) = out.last_mut() {
            let next = r.count + 1;
            if r.proto == b.proto
                && r.host_ip == b.host_ip
                && r.container_port as u32 + r.count == b.container_port as u32
                && r.host_port as u32 + r.count == b.host_port as u32
            {
                r.count = next;
                continue;
            }
        }
        out.push(Run {
            proto: b.proto,
            host_ip: b.host_ip,
            host_port: b.host_port,
            container_port: b.container_port,
            count: 1,
        });
    }
    out
}

/// Inspect's `NetworkSettings.Ports` bindings, keyed `port/proto`: IPv4 addresses before
/// IPv6 ones (Docker lists `0.0.0.0` before `::`).
pub fn port_map(runs: &[Run]) -> BTreeMap<String, Vec<PortBinding>> {
    let mut m: BTreeMap<String, Vec<(bool, IpAddr, u16)>> = BTreeMap::new();
    for r in runs {
        for (h, c) in r.pairs() {
            m.entry(format!("{c}/{}", r.proto.as_str()))
                .or_default()
                .push((r.host_ip.is_ipv6(), r.host_ip, h));
        }
    }
    m.into_iter()
        .map(|(k, mut v)| {
            v.sort();
            let list = v
                .into_iter()
                .map(|(_, ip, port)| PortBinding {
                    host_ip: ip.to_string(),
                    host_port: port.to_string(),
                })
                .collect();
            (k, list)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(proto: Proto, ip: &str, h: u16, c: u16) -> Binding {
        Binding {
            proto,
            host_ip: ip.parse().unwrap(),
            host_port: h,
            container_port: c,
        }
    }

    #[test]
    fn ranges_become_one_run() {
        let mut v: Vec<Binding> = (0..=10000)
            .map(|i| b(Proto::Tcp, "0.0.0.0", 10000 + i, 10000 + i))
            .collect();
        v.reverse();
        let runs = coalesce(&v);
        assert_eq!(
            runs,
            vec![Run {
                proto: Proto::Tcp,
                host_ip: "0.0.0.0".parse().unwrap(),
                host_port: 10000,
                container_port: 10000,
                count: 10001
            }]
        );
        assert_eq!(runs[0].host_last(), 20000);
        assert!(runs[0].same_ports());
    }

    #[test]
    fn runs_split_on_gaps_shifts_protocols_and_addresses() {
        let v = vec![
            b(Proto::Tcp, "0.0.0.0", 8080, 80),
            b(Proto::Tcp, "0.0.0.0", 8081, 81),
            b(Proto::Tcp, "0.0.0.0", 9000, 82), // shift changes
            b(Proto::Udp, "0.0.0.0", 8080, 80), // other protocol
            b(Proto::Tcp, "::", 8080, 80),      // other address
            b(Proto::Tcp, "0.0.0.0", 8083, 83), // gap in the host ports
            b(Proto::Tcp, "0.0.0.0", 8080, 80), // duplicate
        ];
        let runs = coalesce(&v);
        let short: Vec<(Proto, String, u16, u16, u32)> = runs
            .iter()
            .map(|r| {
                (
                    r.proto,
                    r.host_ip.to_string(),
                    r.host_port,
                    r.container_port,
                    r.count,
                )
            })
            .collect();
        assert_eq!(
            short,
            vec![
                (Proto::Tcp, "0.0.0.0".into(), 8080, 80, 2),
                (Proto::Tcp, "0.0.0.0".into(), 9000, 82, 1),
                (Proto::Tcp, "0.0.0.0".into(), 8083, 83, 1),
                (Proto::Tcp, "::".into(), 8080, 80, 1),
                (Proto::Udp, "0.0.0.0".into(), 8080, 80, 1),
            ]
        );
        assert_eq!(
            runs[0].pairs().collect::<Vec<_>>(),
            vec![(8080, 80), (8081, 81)]
        );
        assert!(!runs[0].same_ports());
    }

    #[test]
    fn inspect_shape() {
        let runs = coalesce(&[
            b(Proto::Tcp, "::", 18080, 80),
            b(Proto::Tcp, "0.0.0.0", 18080, 80),
            b(Proto::Udp, "127.0.0.1", 18081, 81),
        ]);
        let m = port_map(&runs);
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "18080"}, {"HostIp": "::", "HostPort": "18080"}],
                "81/udp": [{"HostIp": "127.0.0.1", "HostPort": "18081"}]
            })
        );
    }
}
