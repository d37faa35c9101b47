//! The diagnosis itself, pure: the controller's model and the facts read from the kernel in,
//! a report out. No lock, no kernel, no I/O: unit-tested without root.

use super::nft::{self, Packet, Verdict};
use super::{kernel, Facts, Line, Report, Subject, Target};
use crate::cluster::records::EndpointRec;
use crate::controller::inspect::Model;
use crate::endpoint::Endpoint;
use crate::network::Network;
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
    };
    let summary = format!("{} -> {}", from.label(), to.label());
    let reachable = run(&mut c, from, to);
    let summary = refine_summary(&c, from, to).unwrap_or(summary);
    Report {
        summary,
        reachable,
        verdict: if reachable {
            "REACHABLE"
        } else {
            "NOT REACHABLE"
        }
        .into(),
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

fn not_running(c: &mut Ctx, name: &str, status: &str) {
    c.say(
        "",
        format!("{name} is not running ({status}): it has no network endpoint"),
    );
    c.say("fix", format!("berth start {name}"));
}

fn source<'a>(c: &mut Ctx<'a>, t: &Target) -> Result<Src<'a>, ()> {
    match &t.subject {
        Subject::Host => Ok(Src::Host),
        Subject::Container {
            id,
            name,
            running,
            status,
            mode,
        } => {
            if !running {
                not_running(c, name, status);
                return Err(());
            }
            if mode == "host" {
                c.say(
                    "note",
                    format!("{name} uses the host's network stack (--net=host)"),
                );
                return Ok(Src::Host);
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
            Ok(Src::Container {
                name: name.clone(),
                eps,
            })
        }
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
        Subject::Container {
            id,
            name,
            running,
            status,
            mode,
        } => {
            if !running {
                not_running(c, name, status);
                return Err(());
            }
            if mode == "host" {
                c.say(
                    "note",
                    format!("{name} uses the host's network stack (--net=host)"),
                );
                return Ok(Dst::Host);
            }
            let eps = c.eps_of(id);
            if eps.is_empty() {
                c.say(
                    "",
                    format!("{name} has no endpoint on any network (network mode {mode})"),
                );
                return Err(());
            }
            name_line(c, &sname, eps.first().map(|e| e.network_id.as_str()));
            Ok(Dst::Local {
                name: name.clone(),
                eps,
            })
        }
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

/// The `name:` line: what the embedded DNS answers the source for the target's name.
fn name_line(c: &mut Ctx, sname: &str, dst_net: Option<&str>) {
    let Some(a) = c.f.dns.clone() else { return };
    match a.addrs {
        Some(addrs) if !addrs.is_empty() => {
            let net = c
                .m
                .endpoints
                .iter()
                .find(|e| e.addrs().contains(&addrs[0]))
                .map(|e| c.net_name(&e.network_id))
                .or_else(|| {
                    c.m.remote
                        .iter()
                        .find(|r| r.ipv4.map(|n| n.addr()) == Some(addrs[0]))
                        .map(|r| c.net_name(&r.network_id))
                })
                .unwrap_or_else(|| "?".into());
            let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
            c.say(
                "name",
                format!(
                    "\"{}\" resolves in {sname} to {} (embedded DNS, network {net})",
                    a.name,
                    list.join(", ")
                ),
            );
        }
        Some(_) => c.say("name", format!("\"{}\" has no IPv4 address for {sname}", a.name)),
        None if !a.served => c.say(
            "name",
            format!(
                "{sname} has no embedded DNS (default bridge network): \"{}\" does not resolve there; use a user-defined network or --link",
                a.name
            ),
        ),
        None => {
            let on = dst_net.map(|n| format!(" (it is on {})", c.net_name(n))).unwrap_or_default();
            c.say(
                "name",
                format!(
                    "\"{}\" does not resolve in {sname}: not a name on its networks{on}; the query goes to the upstream DNS",
                    a.name
                ),
            );
        }
    }
}

/// A name that is no container and does not resolve: an alias on a network the source is
/// not on, a link alias private to another container, or nothing.
fn unknown_name(c: &mut Ctx, sname: &str, src: &Src, name: &str) {
    let lname = name.to_ascii_lowercase();
    let mine: Vec<&str> = match src {
        Src::Container { eps, .. } => eps.iter().map(|e| e.network_id.as_str()).collect(),
        Src::Host => vec![],
    };
    if let Some(e) =
        c.m.endpoints
            .iter()
            .find(|e| e.aliases.iter().any(|a| a.eq_ignore_ascii_case(&lname)))
    {
        let net = c.net_name(&e.network_id);
        c.say(
            "name",
            format!(
                "\"{name}\" is an alias of {} on network {net}, which {sname} is not on",
                e.container_name
            ),
        );
        if !mine.contains(&e.network_id.as_str()) {
            c.say("fix", format!("berth network connect {net} {sname}"));
        }
        return;
    }
    for e in &c.m.endpoints {
        for l in &e.links {
            if let Some((alias, target)) = crate::resolver::names::parse_link(l) {
                if alias == lname {
                    c.say(
                        "name",
                        format!(
                            "\"{name}\" is a --link alias private to {} (for {target}): other containers cannot use it",
                            e.container_name
                        ),
                    );
                    c.say(
                        "fix",
                        format!("use the name \"{target}\", or give {sname} its own link: berth network connect --link {target}:{name} {} {sname}", c.net_name(&e.network_id)),
                    );
                    return;
                }
            }
        }
    }
    match src {
        Src::Container { .. } => c.say(
            "name",
            format!("\"{name}\" is no container and does not resolve in {sname} (the query goes upstream)"),
        ),
        Src::Host => c.say("", format!("no container named {name:?}")),
    }
}

fn ifindex(ns: Option<&kernel::Ns>, name: &str) -> Option<u32> {
    ns.and_then(|n| n.link(name)).map(|l| l.index)
}

/// Checks the kernel objects of one endpoint's attachment: interface in the sandbox, veth on
/// the host (or in the overlay namespace), its bridge. Says what is wrong; false if anything.
fn check_attachment(c: &mut Ctx, cname: &str, e: &Endpoint, bridge: &str) -> bool {
    let mut ok = true;
    match c.f.sandboxes.get(&e.container_id) {
        Some(Err(err)) => {
            c.say(
                "kernel",
                format!("{cname}'s namespace could not be read: {err}"),
            );
            ok = false;
        }
        Some(Ok(ns)) => {
            match ns.link(&e.ifname) {
                None => {
                    c.say(
                        "kernel",
                        format!(
                            "{cname} has no interface {} (the store says it should)",
                            e.ifname
                        ),
                    );
                    ok = false;
                }
                Some(l) if !l.up || !l.lower_up => {
                    c.say("kernel", format!("{cname} {} is down", e.ifname));
                    c.say("fix", format!("berth network disconnect {0} {cname} && berth network connect {0} {cname}", c.net_name(&e.network_id)));
                    ok = false;
                }
                Some(l) => {
                    if let Some(a) = e.ipv4 {
                        if !ns.addrs_of(l.index).any(|x| x.addr() == a.addr()) {
                            c.say(
                                "kernel",
                                format!("{cname} {} lacks its address {a}", e.ifname),
                            );
                            ok = false;
                        }
                    }
                }
            }
        }
        None => {}
    }
    let host = if e.host_netns.is_some() {
        c.f.overlays.get(&e.network_id)
    } else {
        Some(&c.f.host)
    };
    let Some(host) = host else { return ok };
    match host.link(&e.host_if) {
        None => {
            c.say(
                "kernel",
                format!("{cname}'s veth {} is missing on the host side", e.host_if),
            );
            c.say(
                "fix",
                format!(
                    "berth network disconnect {0} {cname} && berth network connect {0} {cname}",
                    c.net_name(&e.network_id)
                ),
            );
            ok = false;
        }
        Some(v) => {
            let Some(br) = host.link(bridge) else {
                c.say("kernel", format!("bridge {bridge} is missing"));
                c.say("fix", "restart berthd (it recreates missing bridges)");
                return false;
            };
            if v.master != Some(br.index) {
                c.say("kernel", format!("{} is not a port of {bridge}", e.host_if));
                ok = false;
            }
            if !v.up {
                c.say("kernel", format!("{} is down", e.host_if));
                ok = false;
            }
            if !br.up {
                c.say("kernel", format!("bridge {bridge} is down"));
                c.say("fix", format!("ip link set {bridge} up"));
                ok = false;
            }
        }
    }
    ok
}

fn local_pair(
    c: &mut Ctx,
    sname: &str,
    seps: &[&Endpoint],
    dname: &str,
    deps: &[&Endpoint],
    to: &Target,
) -> bool {
    let shared = seps.iter().find_map(|a| {
        deps.iter()
            .find(|b| b.network_id == a.network_id)
            .map(|b| (*a, *b))
    });
    let Some((a, b)) = shared else {
        return different_networks(c, sname, seps, dname, deps, to);
    };
    let Some(net) = c.net(&a.network_id) else {
        c.say("", "the shared network is not in the controller's model");
        return false;
    };
    let bridge = c.bridge_of(net);
    let dip = b.ipv4.map(|n| n.addr()).or(b.ipv6.map(|n| n.addr()));
    c.dest = dip;
    let overlay_ns = if net.overlay.is_some() {
        " (overlay namespace)"
    } else {
        ""
    };
    c.say(
        "path",
        format!(
            "{sname} {} -> {} -> {bridge}{overlay_ns} -> {} -> {dname} {}",
            a.ifname, a.host_if, b.host_if, b.ifname
        ),
    );
    let mut ok = check_attachment(c, sname, a, &bridge);
    ok &= check_attachment(c, dname, b, &bridge);
    // the source's route to the peer must leave through the shared interface
    if let (Some(ns), Some(ip)) = (c.sandbox(&a.container_id), dip) {
        let want = ifindex(Some(ns), &a.ifname);
        match ns.route_to(ip) {
            Some(r) if r.oif == want && r.gateway.is_none() => {}
            Some(r) => {
                c.say("kernel", format!("{sname}'s route to {ip} goes {} ({}), not straight out of {}: a conflicting route", route_dev(ns, r), r.dst, a.ifname));
                c.say(
                    "fix",
                    format!("remove the route to {} inside {sname}", r.dst),
                );
                ok = false;
            }
            None => {
                c.say("kernel", format!("{sname} has no route to {ip}"));
                ok = false;
            }
        }
        if let Some(n) = ns
            .neigh
            .iter()
            .find(|n| n.ip == ip && Some(n.ifindex) == want)
        {
            if let Some(mac) = n.mac {
                if mac != b.mac && !n.failed {
                    c.say(
                        "kernel",
                        format!(
                            "{sname}'s neighbour entry for {ip} is stale: {} but {dname} has {}",
                            mac_text(&mac),
                            mac_text(&b.mac)
                        ),
                    );
                    c.say("fix", format!("berth exec {sname} ip neigh flush {ip}"));
                    ok = false;
                }
            }
        }
    }
    if !ok {
        return false;
    }
    if net.overlay.is_some() {
        c.say(
            "firewall",
            "same overlay network on this host: bridged in its namespace, no filtering",
        );
        return true;
    }
    same_bridge_firewall(c, net, &bridge, a, dip, to)
}

fn same_bridge_firewall(
    c: &mut Ctx,
    net: &Network,
    bridge: &str,
    a: &Endpoint,
    dip: Option<IpAddr>,
    to: &Target,
) -> bool {
    if !c.fw_note() {
        return true;
    }
    let (Some(sip), Some(dip)) = (a.ipv4.map(|n| n.addr()), dip) else {
        return true;
    };
    let p = Packet {
        iif: bridge.into(),
        oif: bridge.into(),
        saddr: sip,
        daddr: dip,
        proto: if to.port.is_some() {
            proto_static(&to.proto)
        } else {
            "icmp"
        },
        dport: to.port,
        dnat: false,
    };
    let bnf = c.f.sysctls.bridge_nf == Some(true);
    let fw = nft::forward(&c.f.rules, c.table.as_deref(), &p, true, bnf);
    let icc = net.bridge.as_ref().is_none_or(|b| b.icc);
    if let Some(d) = &fw.foreign_drop {
        foreign(c, d, bridge);
        return false;
    }
    if !bnf {
        let why = if c.f.sysctls.bridge_nf.is_none() {
            "br_netfilter is not loaded"
        } else {
            "net.bridge.bridge-nf-call-iptables=0"
        };
        c.say("firewall", format!("same network, bridged inside {bridge}: the IP forward hook does not see it ({why})"));
        if !icc {
            c.say(
                "note",
                format!(
                    "{} has icc=false, which is not enforced while {why}",
                    net.name
                ),
            );
        }
        return true;
    }
    match fw.berth {
        Some(o) if o.verdict == Verdict::Drop => {
            let by = o.by.unwrap_or_default();
            if !icc {
                c.say(
                    "",
                    format!(
                        "{} has inter-container communication off (icc=false)",
                        net.name
                    ),
                );
                c.say("firewall", format!("dropped ({by}, set noicc)"));
                c.say("fix", format!("recreate {} without -o com.docker.network.bridge.enable_icc=false, or connect both containers to another network", net.name));
            } else {
                c.say("firewall", format!("dropped ({by})"));
            }
            false
        }
        Some(o) => {
            c.say(
                "firewall",
                format!(
                    "same network, accepted ({})",
                    o.by.unwrap_or_else(|| "no rule drops it".into())
                ),
            );
            true
        }
        None => {
            c.say(
                "firewall",
                "berth's table is missing from the ruleset: nothing filters this bridge",
            );
            c.say("fix", "restart berthd (it recreates its table)");
            true
        }
    }
}

fn proto_static(p: &str) -> &'static str {
    match p {
        "udp" => "udp",
        "sctp" => "sctp",
        _ => "tcp",
    }
}

fn foreign(c: &mut Ctx, d: &nft::Outcome, bridge: &str) {
    let by = d.by.clone().unwrap_or_default();
    let may = if d.sure {
        ""
    } else {
        " (a rule whose matches berth cannot fully evaluate: it may)"
    };
    c.say(
        "firewall",
        format!("dropped by a rule outside berth's table{may}: {by}"),
    );
    let fix = match by.split_once(", rule ") {
        Some((chain, rest)) => {
            let handle = rest
                .split(|ch: char| !ch.is_ascii_digit())
                .next()
                .unwrap_or("");
            let (t, ch) = chain
                .trim_start_matches("table ")
                .split_once(", chain ")
                .unwrap_or((chain, ""));
            format!("nft delete rule {t} {ch} handle {handle}   (or accept forwarding for {bridge} before it)")
        }
        None => format!(
            "accept forwarded traffic of {bridge} in that chain, or set its policy to accept"
        ),
    };
    c.say("fix", fix);
}

fn published_note(c: &mut Ctx, dname: &str, cid: &str, to: &Target, via: &str) {
    let Some(port) = to.port else { return };
    let runs = c.f.published.get(cid).cloned().unwrap_or_default();
    let hits: Vec<_> = runs
        .iter()
        .filter(|r| {
            r.proto.as_str() == to.proto
                && (r.container_port as u32..r.container_port as u32 + r.count)
                    .contains(&(port as u32))
        })
        .collect();
    if hits.is_empty() {
        return;
    }
    let open: Vec<String> = hits
        .iter()
        .filter(|r| !r.host_ip.is_loopback())
        .map(|r| {
            format!(
                "{}:{}",
                r.host_ip,
                r.host_port as u32 + (port - r.container_port) as u32
            )
        })
        .collect();
    if open.is_empty() {
        c.say("note", format!("{dname} publishes {port}/{} on the loopback address only: containers cannot use it", to.proto));
    } else {
        c.say(
            "note",
            format!(
                "{dname} publishes {port}/{} as {}: {via} can reach it through the host's address",
                to.proto,
                open.join(", ")
            ),
        );
    }
}

fn different_networks(
    c: &mut Ctx,
    sname: &str,
    seps: &[&Endpoint],
    dname: &str,
    deps: &[&Endpoint],
    to: &Target,
) -> bool {
    c.dest = deps[0].ipv4.map(|n| n.addr());
    c.say(
        "",
        format!(
            "{sname} is on {}, {dname} is on {}; they share no network.",
            c.nets_text(seps),
            c.nets_text(deps)
        ),
    );
    let (a, b) = (seps[0], deps[0]);
    let (na, nb) = (c.net(&a.network_id), c.net(&b.network_id));
    if let (Some(na), Some(nb), Some(s), Some(d)) = (na, nb, a.ipv4, b.ipv4) {
        if na.overlay.is_none() && nb.overlay.is_none() && c.fw_note() {
            let p = Packet {
                iif: c.bridge_of(na),
                oif: c.bridge_of(nb),
                saddr: s.addr(),
                daddr: d.addr(),
                proto: "tcp",
                dport: to.port,
                dnat: false,
            };
            let fw = nft::forward(&c.f.rules, c.table.as_deref(), &p, false, false);
            if let Some(o) = fw.berth.filter(|o| o.verdict == Verdict::Drop) {
                c.say(
                    "firewall",
                    format!("isolated: dropped ({})", o.by.unwrap_or_default()),
                );
            }
        }
    }
    published_note(c, dname, &b.container_id, to, sname);
    let (an, bn) = (c.net_name(&a.network_id), c.net_name(&b.network_id));
    let predefined = |n: Option<&Network>| n.is_some_and(|n| n.predefined);
    if predefined(nb) && !predefined(na) {
        c.say("fix", format!("berth network connect {an} {dname}"));
    } else {
        c.say(
            "fix",
            format!(
                "berth network connect {bn} {sname}     (or: berth network connect {an} {dname})"
            ),
        );
    }
    false
}

fn egress(c: &mut Ctx, sname: &str, eps: &[&Endpoint], ip: IpAddr) -> bool {
    let cid = eps[0].container_id.clone();
    let Some(ns) = c.sandbox(&cid) else {
        c.say("kernel", format!("{sname}'s namespace could not be read"));
        return false;
    };
    let internal: Vec<String> = eps
        .iter()
        .filter_map(|e| c.net(&e.network_id))
        .filter(|n| n.internal)
        .map(|n| n.name.clone())
        .collect();
    let route = ns.route_to(ip).filter(|r| r.kind == "unicast").cloned();
    let Some(route) = route else {
        c.say("", format!("{sname} has no route to {ip}"));
        if internal.len() == eps.len() {
            c.say("", format!("{sname} is only on internal network(s) {}: they reach nothing outside themselves", internal.join(", ")));
            c.say(
                "fix",
                format!("berth network connect NETWORK {sname}   (a non-internal network)"),
            );
        }
        return false;
    };
    let dev = route.oif.map(|i| ns.name_of(i)).unwrap_or_default();
    let Some(ep) = eps.iter().find(|e| e.ifname == dev) else {
        c.say(
            "kernel",
            format!("{sname}'s route to {ip} leaves through {dev}, which is no berth endpoint"),
        );
        return false;
    };
    let Some(net) = c.net(&ep.network_id) else {
        return false;
    };
    let bridge = c.bridge_of(net);
    if !check_attachment(c, sname, ep, &bridge) {
        return false;
    }
    if net.overlay.is_some() {
        c.say(
            "",
            format!(
                "{sname}'s route to {ip} goes through overlay network {}, which has no way out",
                net.name
            ),
        );
        return false;
    }
    if c.f.sysctls.ip_forward == Some(false) {
        c.say(
            "path",
            format!(
                "{sname} {} -> {} -> {bridge} -> host",
                ep.ifname, ep.host_if
            ),
        );
        c.say(
            "kernel",
            "net.ipv4.ip_forward is 0: the host does not route containers' traffic",
        );
        c.say("fix", "sysctl -w net.ipv4.ip_forward=1");
        return false;
    }
    let Some(hr) =
        c.f.host
            .route_to(ip)
            .filter(|r| r.kind == "unicast")
            .cloned()
    else {
        c.say(
            "path",
            format!(
                "{sname} {} -> {} -> {bridge} -> host",
                ep.ifname, ep.host_if
            ),
        );
        c.say("", format!("the host has no route to {ip}"));
        c.say(
            "fix",
            "give the host a route (e.g. a default route) to that address",
        );
        return false;
    };
    let out = hr.oif.map(|i| c.f.host.name_of(i)).unwrap_or_default();
    c.say(
        "path",
        format!(
            "{sname} {} -> {} -> {bridge} -> host -> {}",
            ep.ifname,
            ep.host_if,
            route_dev(&c.f.host, &hr)
        ),
    );
    if c.fw_note() {
        let p = Packet {
            iif: bridge.clone(),
            oif: out.clone(),
            saddr: ep.ipv4.map(|n| n.addr()).unwrap_or(ip),
            daddr: ip,
            proto: "tcp",
            dport: None,
            dnat: false,
        };
        let fw = nft::forward(&c.f.rules, c.table.as_deref(), &p, false, false);
        if let Some(o) = fw.berth.as_ref().filter(|o| o.verdict == Verdict::Drop) {
            c.say(
                "firewall",
                format!("dropped ({})", o.by.clone().unwrap_or_default()),
            );
            if net.internal {
                c.say(
                    "",
                    format!(
                        "{} is an internal network: it reaches nothing outside itself",
                        net.name
                    ),
                );
                c.say(
                    "fix",
                    format!("berth network connect NETWORK {sname}   (a non-internal network)"),
                );
            }
            return false;
        }
        if let Some(d) = &fw.foreign_drop {
            foreign(c, d, &bridge);
            return false;
        }
        let masq = c
            .table
            .as_deref()
            .is_some_and(|t| c.f.rules.set_has(t, "masq", &bridge));
        c.say(
            "firewall",
            if masq {
                format!(
                    "forwarded, masqueraded on the way out (table inet {}, set masq)",
                    c.table.clone().unwrap_or_default()
                )
            } else {
                format!(
                    "forwarded, not masqueraded: the far side needs a route back to {}",
                    ep.ipv4.map(|n| n.trunc().to_string()).unwrap_or_default()
                )
            },
        );
    }
    c.say(
        "note",
        format!("checked up to the host's interface {out}; beyond the host is not checked"),
    );
    true
}

fn to_host(c: &mut Ctx, sname: &str, eps: &[&Endpoint]) -> bool {
    let gw = eps.iter().find_map(|e| e.gateway4);
    match gw {
        Some(g) => {
            c.dest = Some(g);
            c.say("path", format!("{sname} -> its gateway {g} (the host)"));
            c.say("note", "the host's input firewall is not evaluated");
            true
        }
        None => {
            c.say("", format!("{sname} has no gateway to the host"));
            false
        }
    }
}

fn host_to(c: &mut Ctx, dname: &str, eps: &[&Endpoint], to: &Target) -> bool {
    let e = eps[0];
    let Some(net) = c.net(&e.network_id) else {
        return false;
    };
    let Some(ip) = e.ipv4.map(|n| n.addr()) else {
        return false;
    };
    c.dest = Some(ip);
    if net.overlay.is_some() {
        c.say(
            "",
            format!(
                "{dname} is on overlay network {}: the host itself cannot reach overlay addresses",
                net.name
            ),
        );
        c.say(
            "fix",
            format!(
                "publish the port (-p) or reach it from a container on {}",
                net.name
            ),
        );
        return false;
    }
    let bridge = c.bridge_of(net);
    c.say(
        "path",
        format!("host -> {bridge} -> {} -> {dname} {}", e.host_if, e.ifname),
    );
    if !check_attachment(c, dname, e, &bridge) {
        return false;
    }
    match c.f.host.route_to(ip) {
        Some(r) if r.oif.map(|i| c.f.host.name_of(i)) == Some(bridge.clone()) => {}
        Some(r) => {
            c.say("kernel", format!("the host routes {ip} through {} ({}), not {bridge}: an address conflict with a host route", route_dev(&c.f.host, r), r.dst));
            c.say(
                "fix",
                format!(
                    "remove the host route {} or recreate {} with another --subnet",
                    r.dst, net.name
                ),
            );
            return false;
        }
        None => {
            c.say("kernel", format!("the host has no route to {ip}"));
            return false;
        }
    }
    if let Some(port) = to.port {
        let runs =
            c.f.published
                .get(&e.container_id)
                .cloned()
                .unwrap_or_default();
        let hits: Vec<_> = runs
            .iter()
            .filter(|r| {
                r.proto.as_str() == to.proto
                    && (r.container_port as u32..r.container_port as u32 + r.count)
                        .contains(&(port as u32))
            })
            .collect();
        let binding = |r: &crate::portmap::runs::Run| {
            format!(
                "{}:{}",
                r.host_ip,
                r.host_port as u32 + (port - r.container_port) as u32
            )
        };
        if hits.is_empty() {
            c.say("ports", format!("{port}/{} is not published: this host reaches it at {ip}:{port}, other machines cannot", to.proto));
            c.say("fix", format!("recreate {dname} with -p {port}:{port}"));
        } else if hits.iter().all(|r| r.host_ip.is_loopback()) {
            let b: Vec<String> = hits.iter().map(|r| binding(r)).collect();
            c.say("ports", format!("published on {} only: this host reaches it, other machines and containers cannot", b.join(", ")));
            c.say(
                "fix",
                format!(
                    "recreate {dname} with -p {}:{port} (all addresses)",
                    hits[0].host_port
                ),
            );
        } else {
            let b: Vec<String> = hits.iter().map(|r| binding(r)).collect();
            let map = if ip.is_ipv4() { "ports4" } else { "ports6" };
            c.say(
                "ports",
                format!(
                    "published as {} (DNAT element in table inet {}, map {map} or ranges)",
                    b.join(", "),
                    c.table.clone().unwrap_or_default()
                ),
            );
        }
    }
    true
}

fn remote_peer(c: &mut Ctx, sname: &str, eps: &[&Endpoint], rec: &EndpointRec) -> bool {
    let Some(ep) = eps.iter().find(|e| e.network_id == rec.network_id) else {
        c.say(
            "",
            format!(
                "{sname} is on {}, {} is on overlay network {} (host {}); they share no network.",
                c.nets_text(eps),
                rec.container_name,
                c.net_name(&rec.network_id),
                rec.host
            ),
        );
        c.say(
            "fix",
            format!(
                "berth network connect {} {sname}",
                c.net_name(&rec.network_id)
            ),
        );
        return false;
    };
    let ip = rec.ipv4.map(|n| n.addr());
    c.dest = ip;
    let vni = c
        .net(&rec.network_id)
        .and_then(|n| n.overlay.as_ref())
        .map(|o| o.vni)
        .unwrap_or(0);
    c.say(
        "path",
        format!(
            "{sname} {} -> {} -> br0 -> vxlan0 (VNI {vni}) => VTEP {} (host {}) -> {} {}",
            ep.ifname, ep.host_if, rec.vtep, rec.host, rec.container_name, "eth0"
        ),
    );
    let Some(ons) = c.f.overlays.get(&rec.network_id) else {
        c.say(
            "kernel",
            format!(
                "the data path of {} is missing on this host",
                c.net_name(&rec.network_id)
            ),
        );
        c.say(
            "fix",
            "restart berthd on this host (it rebuilds overlay data paths)",
        );
        return false;
    };
    let Some(vx) = ons.link(crate::osl::overlay::VXLAN).cloned() else {
        c.say("kernel", "vxlan0 is missing in the overlay namespace");
        return false;
    };
    let mut ok = check_attachment(c, sname, ep, crate::osl::overlay::BRIDGE);
    let fdb: Vec<_> = ons
        .fdb
        .iter()
        .filter(|f| f.ifindex == vx.index && f.mac == rec.mac)
        .collect();
    match fdb.iter().find(|f| f.dst.is_some()) {
        None => {
            c.say("kernel", format!("no FDB entry for {} ({}) -> VTEP {} on vxlan0: frames to it are not sent to its host", mac_text(&rec.mac), rec.container_name, rec.vtep));
            c.say("fix", "berthd reprograms peers from the cluster store: check `berth info` (cluster store reachable) and restart berthd on this host");
            ok = false;
        }
        Some(f) if f.dst != Some(rec.vtep) => {
            c.say(
                "kernel",
                format!(
                    "the FDB entry for {} points at {} but {} is on VTEP {}",
                    mac_text(&rec.mac),
                    f.dst.map(|d| d.to_string()).unwrap_or_default(),
                    rec.container_name,
                    rec.vtep
                ),
            );
            c.say(
                "fix",
                "restart berthd on this host (it reconciles FDB entries from the cluster store)",
            );
            ok = false;
        }
        Some(_) => c.say(
            "kernel",
            format!(
                "FDB entry {} -> VTEP {} present on vxlan0",
                mac_text(&rec.mac),
                rec.vtep
            ),
        ),
    }
    if let Some(ip) = ip {
        if !ons
            .neigh
            .iter()
            .any(|n| n.ip == ip && n.ifindex == vx.index && n.mac == Some(rec.mac))
        {
            c.say(
                "kernel",
                format!(
                    "no neighbour entry {ip} -> {} on vxlan0 (ARP is answered locally from it)",
                    mac_text(&rec.mac)
                ),
            );
            ok = false;
        }
    }
    if c.f.host.route_to(rec.vtep).is_none() {
        c.say(
            "kernel",
            format!("the host has no underlay route to VTEP {}", rec.vtep),
        );
        ok = false;
    }
    if let Some(sl) = c
        .sandbox(&ep.container_id)
        .and_then(|ns| ns.link(&ep.ifname))
    {
        if sl.mtu > vx.mtu {
            c.say("kernel", format!("MTU mismatch: {sname} {} has MTU {} but vxlan0 has {}: large packets are dropped", ep.ifname, sl.mtu, vx.mtu));
            c.say(
                "fix",
                format!(
                    "recreate the network with -o com.docker.network.driver.mtu={}",
                    vx.mtu
                ),
            );
            ok = false;
        }
    }
    ok
}
