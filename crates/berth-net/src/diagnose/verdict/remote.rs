//! To a container on another host over an overlay: VXLAN, FDB, neighbour and MTU.

use super::attach::check_attachment;
use super::{mac_text, Ctx, PacketLimit};
use crate::cluster::records::EndpointRec;
use crate::endpoint::Endpoint;

pub(super) fn remote_peer(c: &mut Ctx, sname: &str, eps: &[&Endpoint], rec: &EndpointRec) -> bool {
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
        // VXLAN adds 50 bytes and the bridge drops what exceeds vxlan0's MTU without a word
        // (bridging sends no ICMP "fragmentation needed"): pings and handshakes pass,
        // full-size segments vanish. Reachable, but only partly.
        if sl.mtu > vx.mtu {
            c.say("kernel", format!("MTU mismatch: {sname} {} has MTU {} but vxlan0 has {}: packets over {} bytes are dropped in the tunnel, smaller ones pass", ep.ifname, sl.mtu, vx.mtu, vx.mtu));
            c.say(
                "fix",
                format!(
                    "recreate the network with -o com.docker.network.driver.mtu={}",
                    vx.mtu
                ),
            );
            c.limit = Some(PacketLimit {
                max: vx.mtu,
                mtu: sl.mtu,
            });
        }
    }
    ok
}
