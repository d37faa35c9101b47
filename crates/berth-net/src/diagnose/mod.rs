//! `berth network diagnose A B` and `berth network graph`: why two containers can (not) talk,
//! computed from the controller's model *and* the kernel (links, addresses, routes,
//! neighbours, FDB, sysctls) and the nftables ruleset, with a fix for what is wrong.
//!
//! - [`spec`]: parsing a target (`name[:port[/proto]]`, `host`, an address).
//! - [`kernel`]: what one namespace holds, over netlink.
//! - [`nft`]: the ruleset and the forward hook's verdict for one packet.
//! - [`verdict`]: the pure evaluation (model + facts → report), unit-tested without root.
//! - [`probe`]: real traffic from inside the source's namespace.
//! - [`graph`]: the topology as text, dot or JSON.

pub mod graph;
pub mod kernel;
pub mod nft;
pub mod probe;
pub mod spec;
pub mod taken;
pub mod verdict;

use crate::controller::inspect::Model;
use crate::portmap::runs::Run;
use crate::resolver::names::Found;
use crate::Controller;
use serde::Serialize;
use std::collections::HashMap;
use std::net::IpAddr;

pub use spec::{parse_target, Spec};

/// A target, resolved by the caller (the engine knows containers that have no endpoint).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Subject {
    Container {
        id: String,
        name: String,
        running: bool,
        /// Docker's status word (running, exited, created...).
        status: String,
        /// `NetworkMode`: a network name, `host`, `none`, `container:<id>`.
        mode: String,
        /// Why its last start failed (`State.Error`), if it did.
        #[serde(skip_serializing_if = "String::is_empty")]
        error: String,
        /// The host ports it publishes once running.
        #[serde(skip)]
        wants: Vec<crate::portmap::spec::Want>,
    },
    Host,
    Addr {
        ip: IpAddr,
    },
    /// A name that is no container: answered by DNS (an alias, a link alias) or unknown.
    Name {
        name: String,
    },
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Target {
    pub subject: Subject,
    pub port: Option<u16>,
    pub proto: String,
}

impl Target {
    pub fn label(&self) -> String {
        match &self.subject {
            Subject::Container { name, .. } => name.clone(),
            Subject::Host => "host".into(),
            Subject::Addr { ip } => ip.to_string(),
            Subject::Name { name } => name.clone(),
        }
    }

    pub fn container_id(&self) -> Option<&str> {
        match &self.subject {
            Subject::Container { id, .. } => Some(id),
            _ => None,
        }
    }
}

/// One line of a report: `kind` is `name`, `path`, `firewall`, `kernel`, `fix`, `note`,
/// `probe`, or empty (a plain explanation).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Line {
    pub kind: String,
    pub text: String,
}

/// The largest packet a path carries, below what the source sends.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct PacketLimit {
    /// Bytes of IP packet that get through.
    pub max: u32,
    /// The source interface's MTU: what it sends at most.
    pub mtu: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProbeResult {
    /// `ping` or `tcp`.
    pub method: String,
    pub reached: bool,
    pub detail: String,
    /// Whether the probe agrees with the verdict (false: a bug to report).
    pub agrees: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// `web (172.18.0.2 on appnet) -> db (172.18.0.3 on appnet)`
    pub summary: String,
    /// Whether packets get through (small ones at least: see `packet_limit`).
    pub reachable: bool,
    /// `REACHABLE`, `PARTLY REACHABLE` (small packets only) or `NOT REACHABLE`.
    pub verdict: String,
    /// Set when packets up to the source's MTU do not all get through: an MTU mismatch on
    /// the path passes pings and handshakes but loses full-size segments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packet_limit: Option<PacketLimit>,
    pub lines: Vec<Line>,
    /// The address traffic would go to, when there is one.
    pub dest: Option<IpAddr>,
    pub probe: Option<ProbeResult>,
}

impl Report {
    /// The human form (what the CLI prints).
    pub fn text(&self) -> String {
        let mut s = format!("{}: {}\n", self.summary, self.verdict);
        for l in &self.lines {
            if l.kind.is_empty() {
                s.push_str(&format!("  {}\n", l.text));
            } else {
                s.push_str(&format!("  {}: {}\n", l.kind, l.text));
            }
        }
        if let Some(p) = &self.probe {
            let agree = if p.agrees {
                "agrees with the verdict"
            } else {
                "DISAGREES with the verdict (please report this as a bug)"
            };
            s.push_str(&format!(
                "  probe: {} {} ({}); {agree}\n",
                p.method,
                if p.reached { "answered" } else { "failed" },
                p.detail
            ));
        }
        s
    }
}

/// The DNS answer the source would get for the target's name.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsAnswer {
    pub name: String,
    /// `None`: not a local name (forwarded upstream).
    pub addrs: Option<Vec<IpAddr>>,
    /// Whether the source's sandbox has the embedded DNS.
    pub served: bool,
}

/// Everything read from the kernel for one diagnosis.
#[derive(Debug, Default)]
pub struct Facts {
    pub host: kernel::Ns,
    pub sysctls: kernel::Sysctls,
    pub rules: nft::Ruleset,
    /// Why the ruleset could not be read, if it could not.
    pub rules_error: Option<String>,
    /// Container id → its sandbox's namespace (or why it could not be read).
    pub sandboxes: HashMap<String, Result<kernel::Ns, String>>,
    /// Overlay network id → its data path's namespace.
    pub overlays: HashMap<String, kernel::Ns>,
    pub dns: Option<DnsAnswer>,
    /// Container id → its published runs.
    pub published: HashMap<String, Vec<Run>>,
    /// The host ports a stopped target wants that others hold.
    pub port_holders: Vec<taken::Holder>,
}

fn involved(m: &Model, t: &Target) -> Vec<String> {
    let mut v: Vec<String> = t.container_id().into_iter().map(String::from).collect();
    if let Subject::Addr { ip } = &t.subject {
        v.extend(
            m.endpoints
                .iter()
                .filter(|e| e.addrs().contains(ip))
                .map(|e| e.container_id.clone()),
        );
    }
    v
}

/// Reads what the diagnosis of `from → to` needs from the kernel and the controller.
pub async fn gather(ctl: &Controller, m: &Model, from: &Target, to: &Target) -> Facts {
    let mut cids = involved(m, from);
    cids.extend(involved(m, to));
    let sandboxes: Vec<(String, std::path::PathBuf)> = cids
        .into_iter()
        .filter_map(|cid| {
            let ep = m.endpoints.iter().find(|e| e.container_id == cid)?;
            Some((cid, ep.sandbox.clone()))
        })
        .collect();
    // the reads are independent: the ruleset, the host and every namespace at once
    let (rules, host, sbs, ovls) = tokio::join!(
        tokio::task::spawn_blocking(nft::read),
        kernel::read(None),
        futures::future::join_all(sandboxes.iter().map(|(cid, sb)| async move {
            let ns = kernel::read(Some(sb))
                .await
                .map_err(|e| format!("reading {}: {e}", sb.display()));
            (cid.clone(), ns)
        })),
        futures::future::join_all(
            m.overlays
                .iter()
                .map(|(nid, path)| async move { (nid.clone(), kernel::read(Some(path)).await) })
        ),
    );
    let mut f = Facts {
        host: host.unwrap_or_default(),
        sysctls: kernel::sysctls(),
        ..Default::default()
    };
    match rules {
        Ok(Ok(rs)) => f.rules = rs,
        Ok(Err(e)) => f.rules_error = Some(e),
        Err(e) => f.rules_error = Some(e.to_string()),
    }
    for (cid, ns) in sbs {
        let runs = ctl.published(&cid);
        if !runs.is_empty() {
            f.published.insert(cid.clone(), runs);
        }
        f.sandboxes.insert(cid, ns);
    }
    for (nid, ns) in ovls {
        if let Ok(ns) = ns {
            f.overlays.insert(nid, ns);
        }
    }
    if let Subject::Container {
        id,
        running: false,
        wants,
        ..
    } = &to.subject
    {
        f.port_holders = taken::holders(ctl, m, id, wants).await;
    }
    if let Some(src) = from.container_id() {
        let name = match &to.subject {
            Subject::Container { name, .. } => Some(name.clone()),
            Subject::Name { name } => Some(name.clone()),
            _ => None,
        };
        if let Some(name) = name {
            let v6 = false;
            let addrs = match ctl.dns_lookup(src, &name, v6) {
                Found::Addrs(a) => Some(a),
                Found::Unknown => None,
            };
            f.dns = Some(DnsAnswer {
                name,
                addrs,
                served: ctl.dns_serves(src),
            });
        }
    }
    f
}

/// Diagnoses `from → to`; with `probe`, also sends real traffic from inside the source.
pub async fn diagnose(ctl: &Controller, from: &Target, to: &Target, probe: bool) -> Report {
    let m = ctl.model();
    let facts = gather(ctl, &m, from, to).await;
    let mut r = verdict::evaluate(&m, &facts, from, to);
    if probe {
        r.probe = probe::run(&m, from, to, r.dest, r.reachable, r.packet_limit).await;
    }
    r
}
