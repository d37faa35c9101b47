//! The diagnosis itself, pure: the controller's model and the facts read from the kernel in,
//! a report out. No lock, no kernel, no I/O: unit-tested without root.

mod apart;
mod attach;
mod egress;
mod host;
mod local;
mod names;
mod plugin;
mod remote;
mod stopped;

use super::{kernel, nft, Facts, Line, PacketLimit, Report, Subject, Target};
use crate::cluster::records::EndpointRec;
use crate::controller::inspect::Model;
use crate::endpoint::Endpoint;
use crate::network::Network;
use egress::{egress, to_host};
use host::host_to;
use local::local_pair;
use names::{name_line, unknown_name};
use remote::remote_peer;
use std::net::IpAddr;

/// Where traffic comes from.
enum Src<'a> {
    Host,
    Container {
        name: String,
        eps: Vec<&'a Endpoint>,
    },
}

/// Where it goes.
enum Dst<'a> {
    Host,
    Local {
        name: String,
        eps: Vec<&'a Endpoint>,
    },
    Remote(&'a EndpointRec),
    External(IpAddr),
}

struct Ctx<'a> {
    m: &'a Model,
    f: &'a Facts,
    lines: Vec<Line>,
    table: Option<String>,
    dest: Option<IpAddr>,
    limit: Option<PacketLimit>,
}

fn mac_text(m: &[u8; 6]) -> String {
    crate::endpoint::format_mac(m)
}

impl<'a> Ctx<'a> {
    fn say(&mut self, kind: &str, text: impl Into<String>) {
        self.lines.push(Line {
            kind: kind.into(),
            text: text.into(),
        });
    }

    fn net(&self, id: &str) -> Option<&'a Network> {
        self.m.networks.iter().find(|n| n.id == id)
    }

    fn net_name(&self, id: &str) -> String {
        self.net(id)
            .map(|n| n.name.clone())
            .unwrap_or_else(|| id.chars().take(12).collect())
    }

    fn bridge_of(&self, n: &Network) -> String {
        match (&n.bridge, &n.overlay) {
            (Some(b), _) => b.name.clone(),
            (None, Some(_)) => crate::osl::overlay::BRIDGE.into(),
            _ => String::new(),
        }
    }

    fn eps_of(&self, cid: &str) -> Vec<&'a Endpoint> {
        self.m
            .endpoints
            .iter()
            .filter(|e| e.container_id == cid)
            .collect()
    }

    fn nets_text(&self, eps: &[&Endpoint]) -> String {
        let v: Vec<String> = eps.iter().map(|e| self.net_name(&e.network_id)).collect();
        if v.is_empty() {
            "no network".into()
        } else {
            v.join(", ")
        }
    }

    fn sandbox(&self, cid: &str) -> Option<&'a kernel::Ns> {
        self.f.sandboxes.get(cid).and_then(|r| r.as_ref().ok())
    }

    fn fw_note(&mut self) -> bool {
        if let Some(e) = &self.f.rules_error {
            self.say(
                "note",
                format!("the nftables ruleset could not be read ({e}); firewall not evaluated"),
            );
            return false;
        }
        true
    }
}

/// Evaluates `from → to`.
pub fn evaluate(m: &Model, f: &Facts, from: &Target, to: &Target) -> Report {
    let mut c = Ctx {
        m,
        f,
        lines: vec![],
        table: f.rules.berth_table(None),
        dest: None,
        limit: None,
    };
    let summary = format!("{} -> {}", from.label(), to.label());
    let reachable = run(&mut c, from, to);
    let summary = refine_summary(&c, from, to).unwrap_or(summary);
    Report {
        summary,
        reachable,
        verdict: match (reachable, c.limit) {
            (false, _) => "NOT REACHABLE",
            (true, Some(_)) => "PARTLY REACHABLE",
            (true, None) => "REACHABLE",
        }
        .into(),
        packet_limit: if reachable { c.limit } else { None },
        lines: c.lines,
        dest: c.dest,
        probe: None,
    }
}

/// `web (172.18.0.2 on appnet) -> db (172.18.0.3 on appnet)` when both are containers that
/// share a network.
fn refine_summary(c: &Ctx, from: &Target, to: &Target) -> Option<String> {
    let (a, b) = (from.container_id()?, to.container_id()?);
    let (ea, eb) = (c.eps_of(a), c.eps_of(b));
    let (x, y) = ea.iter().find_map(|x| {
        eb.iter()
            .find(|y| y.network_id == x.network_id)
            .map(|y| (*x, *y))
    })?;
    let ip = |e: &Endpoint| e.ipv4.map(|n| n.addr().to_string()).unwrap_or_default();
    let port = to
        .port
        .map(|p| format!(":{p}/{}", to.proto))
        .unwrap_or_default();
    Some(format!(
        "{} ({} on {}) -> {}{port} ({} on {})",
        from.label(),
        ip(x),
        c.net_name(&x.network_id),
        to.label(),
        ip(y),
        c.net_name(&y.network_id)
    ))
}

fn run(c: &mut Ctx, from: &Target, to: &Target) -> bool {
    let src = match source(c, from) {
        Ok(s) => s,
        Err(()) => return false,
    };
    let dst = match destination(c, &src, to) {
        Ok(d) => d,
        Err(()) => return false,
    };
    match (&src, &dst) {
        (
            Src::Container { name, eps },
            Dst::Local {
                name: dn,
                eps: deps,
            },
        ) => local_pair(c, name, eps, dn, deps, to),
        (Src::Container { name, eps }, Dst::Remote(rec)) => remote_peer(c, name, eps, rec),
        (Src::Container { name, eps }, Dst::External(ip)) => egress(c, name, eps, *ip),
        (Src::Container { name, eps }, Dst::Host) => to_host(c, name, eps),
        (Src::Host, Dst::Local { name, eps }) => host_to(c, name, eps, to),
        (Src::Host, Dst::Remote(rec)) => {
            c.say(
                "",
                format!(
                    "{} is on overlay network {} (host {}): the host itself cannot reach overlay addresses",
                    rec.container_name,
                    c.net_name(&rec.network_id),
                    rec.host
                ),
            );
            c.say(
                "fix",
                "reach it from a container on the same overlay network, or publish a port (-p)",
            );
            false
        }
        (Src::Host, Dst::External(ip)) => match c.f.host.route_to(*ip) {
            Some(r) if r.kind == "unicast" || r.kind == "local" => {
                c.say(
                    "path",
                    format!("host -> {} (route {})", route_dev(&c.f.host, r), r.dst),
                );
                true
            }
            _ => {
                c.say("", format!("the host has no route to {ip}"));
                false
            }
        },
        (Src::Host, Dst::Host) => {
            c.say("", "the host reaches itself (loopback)");
            true
        }
    }
}

fn route_dev(ns: &kernel::Ns, r: &kernel::Route) -> String {
    let dev = r.oif.map(|i| ns.name_of(i)).unwrap_or_else(|| "?".into());
    match r.gateway {
        Some(g) => format!("{dev} via {g}"),
        None => dev,
    }
}

type Attached<'a> = Option<(String, Vec<&'a Endpoint>)>;

/// A container target's attachments: `None` when it uses the host's network stack, its name
/// and endpoints otherwise; `Err` once it has said why there is no path (not running,
/// `--net=none`, no endpoint).
fn attached<'a>(c: &mut Ctx<'a>, s: &Subject) -> Result<Attached<'a>, ()> {
    let Subject::Container {
        id,
        name,
        running,
        status,
        mode,
        error,
        ..
    } = s
    else {
        return Err(());
    };
    if !running {
        stopped::not_running(c, name, status, error);
        return Err(());
    }
    if mode == "host" {
        c.say(
            "note",
            format!("{name} uses the host's network stack (--net=host)"),
        );
        return Ok(None);
    }
    if mode == "none" {
        c.say("", format!("{name} has no network (--net=none)"));
        c.say("fix", format!("berth network connect NETWORK {name}"));
        return Err(());
    }
    let eps = c.eps_of(id);
    if eps.is_empty() {
        c.say(
            "",
            format!("{name} has no endpoint on any network (network mode {mode})"),
        );
        return Err(());
    }
    Ok(Some((name.clone(), eps)))
}

fn source<'a>(c: &mut Ctx<'a>, t: &Target) -> Result<Src<'a>, ()> {
    match &t.subject {
        Subject::Host => Ok(Src::Host),
        Subject::Container { .. } => Ok(match attached(c, &t.subject)? {
            None => Src::Host,
            Some((name, eps)) => Src::Container { name, eps },
        }),
        Subject::Addr { ip } => match c.m.endpoints.iter().find(|e| e.addrs().contains(ip)) {
            Some(e) => Ok(Src::Container {
                name: e.container_name.clone(),
                eps: c.eps_of(&e.container_id),
            }),
            None if c.f.host.owns(*ip) => Ok(Src::Host),
            None => {
                c.say(
                    "",
                    format!("{ip} is not the address of a container or of this host"),
                );
                Err(())
            }
        },
        Subject::Name { name } => {
            c.say("", format!("no container named {name:?}"));
            Err(())
        }
    }
}

fn destination<'a>(c: &mut Ctx<'a>, src: &Src, t: &Target) -> Result<Dst<'a>, ()> {
    let sname = match src {
        Src::Host => "the host".to_string(),
        Src::Container { name, .. } => name.clone(),
    };
    match &t.subject {
        Subject::Host => Ok(Dst::Host),
        Subject::Container { .. } => Ok(match attached(c, &t.subject)? {
            None => Dst::Host,
            Some((name, eps)) => {
                name_line(c, &sname, eps.first().map(|e| e.network_id.as_str()));
                Dst::Local { name, eps }
            }
        }),
        Subject::Addr { ip } => Ok(by_addr(c, *ip)),
        Subject::Name { name } => {
            let answer = c.f.dns.clone();
            match answer
                .and_then(|a| a.addrs)
                .and_then(|a| a.first().copied())
            {
                Some(ip) => {
                    name_line(c, &sname, None);
                    Ok(by_addr(c, ip))
                }
                None => {
                    unknown_name(c, &sname, src, name);
                    Err(())
                }
            }
        }
    }
}

fn by_addr<'a>(c: &mut Ctx<'a>, ip: IpAddr) -> Dst<'a> {
    c.dest = Some(ip);
    if let Some(e) = c.m.endpoints.iter().find(|e| e.addrs().contains(&ip)) {
        return Dst::Local {
            name: e.container_name.clone(),
            eps: vec![e],
        };
    }
    if let Some(r) =
        c.m.remote
            .iter()
            .find(|r| r.ipv4.map(|n| n.addr()) == Some(ip) || r.ipv6.map(|n| n.addr()) == Some(ip))
    {
        return Dst::Remote(r);
    }
    if c.f.host.owns(ip) {
        return Dst::Host;
    }
    Dst::External(ip)
}
