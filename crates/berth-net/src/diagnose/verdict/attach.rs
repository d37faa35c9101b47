//! One endpoint's kernel objects, checked against the model: interface, veth, bridge.

use super::{kernel, Ctx};
use crate::endpoint::Endpoint;

pub(super) fn ifindex(ns: Option<&kernel::Ns>, name: &str) -> Option<u32> {
    ns.and_then(|n| n.link(name)).map(|l| l.index)
}

/// Checks the kernel objects of one endpoint's attachment: interface in the sandbox, veth on
/// the host (or in the overlay namespace), its bridge. Says what is wrong; false if anything.
pub(super) fn check_attachment(c: &mut Ctx, cname: &str, e: &Endpoint, bridge: &str) -> bool {
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
    // a plugin's host side is the plugin's own: not berth's to check
    if c.net(&e.network_id).is_some_and(|n| n.plugin().is_some()) {
        return ok;
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
