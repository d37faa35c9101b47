//! Two containers that share no network: what isolates them, what publishes, the fix.

use super::nft::{self, Packet, Verdict};
use super::{Ctx, Target};
use crate::endpoint::Endpoint;
use crate::network::Network;

pub(super) fn published_note(c: &mut Ctx, dname: &str, cid: &str, to: &Target, via: &str) {
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

pub(super) fn different_networks(
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
        let bridged = |n: &Network| n.bridge.is_some();
        if bridged(na) && bridged(nb) && c.fw_note() {
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
