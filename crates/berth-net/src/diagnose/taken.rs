//! Who holds the host ports a stopped container wants to publish: another container's
//! publication, or a process of the host (found from its socket's inode, as `ss -p` does).
//! Only read when the target is not running and publishes fixed host ports: the classic
//! "port is already allocated" start failure.

use crate::controller::inspect::Model;
use crate::controller::Controller;
use crate::portmap::diag::{self, Bound};
use crate::portmap::spec::{Proto, Want};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

/// At most this many wanted ports are looked up: a container publishing thousands is answered
/// by its first ones.
const MAX_WANTS: usize = 16;

#[derive(Debug, Clone, PartialEq)]
pub enum HeldBy {
    Container(String),
    Process {
        pid: u32,
        name: String,
    },
    /// A socket whose process is not visible here (another PID namespace).
    Socket,
}

/// A wanted host port someone else holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub proto: Proto,
    pub host_ip: IpAddr,
    pub port: u16,
    pub container_port: u16,
    pub by: HeldBy,
}

/// The holders of `wants`' fixed host ports (ranges and random ports are skipped: any free
/// port of them would do).
pub async fn holders(ctl: &Controller, m: &Model, cid: &str, wants: &[Want]) -> Vec<Holder> {
    let fixed: Vec<(Proto, IpAddr, u16, u16)> = wants
        .iter()
        .filter_map(|w| match w.host_ports {
            Some((a, b)) if a == b => Some((
                w.proto,
                w.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                a,
                w.container_port,
            )),
            _ => None,
        })
        .take(MAX_WANTS)
        .collect();
    if fixed.is_empty() {
        return vec![];
    }
    let others: BTreeSet<(&str, &str)> = m
        .endpoints
        .iter()
        .filter(|e| e.container_id != cid)
        .map(|e| (e.container_id.as_str(), e.container_name.as_str()))
        .collect();
    let mut out = Vec::new();
    let mut free = Vec::new();
    for (proto, ip, port, cport) in fixed {
        let by = others.iter().find_map(|(id, name)| {
            ctl.published(id)
                .iter()
                .any(|r| {
                    r.proto == proto
                        && (r.host_port..=r.host_last()).contains(&port)
                        && clash(r.host_ip, ip)
                })
                .then(|| HeldBy::Container(name.to_string()))
        });
        match by {
            Some(by) => out.push(Holder {
                proto,
                host_ip: ip,
                port,
                container_port: cport,
                by,
            }),
            None => free.push((proto, ip, port, cport)),
        }
    }
    if !free.is_empty() {
        let found = tokio::task::spawn_blocking(move || sockets(&free))
            .await
            .unwrap_or_default();
        out.extend(found);
    }
    out
}

fn clash(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4() && (a.is_unspecified() || b.is_unspecified() || a == b)
}

/// Host sockets on those ports, with their processes.
fn sockets(wants: &[(Proto, IpAddr, u16, u16)]) -> Vec<Holder> {
    let mut out = Vec::new();
    for &(proto, ip, port, cport) in wants {
        let mut bound: Vec<Bound> = Vec::new();
        for v6 in [false, true] {
            bound.extend(diag::bound(proto, v6, port, port).unwrap_or_default());
        }
        if let Some(b) = bound.iter().find(|b| b.clashes(ip, port)) {
            out.push(Holder {
                proto,
                host_ip: ip,
                port,
                container_port: cport,
                by: process_of(b.inode),
            });
        }
    }
    out
}

/// The process with an fd on socket `inode`: one walk of `/proc/*/fd`.
fn process_of(inode: u32) -> HeldBy {
    let want = format!("socket:[{inode}]");
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return HeldBy::Socket;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|f| std::fs::read_link(f.path()).is_ok_and(|l| l.as_os_str() == want.as_str()));
        if holds {
            let name = std::fs::read_to_string(p.path().join("comm"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            return HeldBy::Process { pid, name };
        }
    }
    HeldBy::Socket
}
