//! Networks run by a driver plugin: berth sees the containers' side (interfaces, addresses,
//! routes) but not the plugin's data path (its host side, bridges, tunnels, its own filtering).
//! The report checks what it can and says plainly what it could not; `--probe` settles the rest.

use super::attach::check_attachment;
use super::{route_dev, Ctx};
use crate::endpoint::Endpoint;
use crate::network::Network;
use std::net::IpAddr;

fn unseen(c: &mut Ctx, net: &Network, driver: &str) {
    c.say(
        "note",
        format!(
            "{} is run by the plugin \"{driver}\": berth cannot see its data path (host side, bridges, tunnels) or the plugin's own filtering; checked only the containers' side. --probe sends real traffic",
            net.name
        ),
    );
}

/// The route `cname` would use to `ip`: fine when it leaves through the endpoint's interface
/// (plugins may route through a gateway on it, as routed plugins do).
fn route_out(c: &mut Ctx, cname: &str, e: &Endpoint, ip: IpAddr) -> bool {
    let Some(ns) = c.sandbox(&e.container_id) else {
        return true;
    };
    let want = ns.link(&e.ifname).map(|l| l.index);
    match ns.route_to(ip) {
        Some(r) if r.oif == want => true,
        Some(r) => {
            c.say(
                "kernel",
                format!(
                    "{cname}'s route to {ip} goes {} ({}), not out of {}: a conflicting route",
                    route_dev(ns, r),
                    r.dst,
                    e.ifname
                ),
            );
            c.say(
                "fix",
                format!("remove the route to {} inside {cname}", r.dst),
            );
            false
        }
        None => {
            c.say("kernel", format!("{cname} has no route to {ip}"));
            false
        }
    }
}

/// Two containers on the same plugin network.
pub(super) fn pair(
    c: &mut Ctx,
    (sname, a): (&str, &Endpoint),
    (dname, b): (&str, &Endpoint),
    net: &Network,
    driver: &str,
) -> bool {
    let dip = b.ipv4.map(|n| n.addr()).or(b.ipv6.map(|n| n.addr()));
    c.dest = dip;
    c.say(
        "path",
        format!(
            "{sname} {} -> (plugin {driver}, network {}) -> {dname} {}",
            a.ifname, net.name, b.ifname
        ),
    );
    let mut ok = check_attachment(c, sname, a, "");
    ok &= check_attachment(c, dname, b, "");
    if let Some(ip) = dip {
        ok &= route_out(c, sname, a, ip);
    }
    unseen(c, net, driver);
    ok
}

/// From a container whose route out leaves through a plugin network's interface.
pub(super) fn egress(
    c: &mut Ctx,
    sname: &str,
    e: &Endpoint,
    ip: IpAddr,
    net: &Network,
    driver: &str,
) -> bool {
    c.say(
        "path",
        format!(
            "{sname} {} -> (plugin {driver}, network {}) -> {ip}",
            e.ifname, net.name
        ),
    );
    let ok = check_attachment(c, sname, e, "");
    unseen(c, net, driver);
    ok
}

/// From the host to a container on a plugin network: the host's route decides.
pub(super) fn host_to(
    c: &mut Ctx,
    dname: &str,
    e: &Endpoint,
    ip: IpAddr,
    net: &Network,
    driver: &str,
) -> bool {
    let mut ok = check_attachment(c, dname, e, "");
    match c.f.host.route_to(ip) {
        Some(r) if r.kind == "unicast" => c.say(
            "path",
            format!(
                "host -> {} ({}) -> (plugin {driver}, network {}) -> {dname} {}",
                route_dev(&c.f.host, r),
                r.dst,
                net.name,
                e.ifname
            ),
        ),
        _ => {
            c.say(
                "",
                format!("the host has no route to {ip}: the plugin {driver} gives the host no way into {}", net.name),
            );
            ok = false;
        }
    }
    unseen(c, net, driver);
    ok
}
