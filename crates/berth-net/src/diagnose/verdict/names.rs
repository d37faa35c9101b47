//! The name lines: what the embedded DNS answers the source, and why a name does not resolve.

use super::{Ctx, Src};

/// The `name:` line: what the embedded DNS answers the source for the target's name.
pub(super) fn name_line(c: &mut Ctx, sname: &str, dst_net: Option<&str>) {
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
pub(super) fn unknown_name(c: &mut Ctx, sname: &str, src: &Src, name: &str) {
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
