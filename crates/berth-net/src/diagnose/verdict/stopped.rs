//! A target that is not running: why its last start failed, and when that was a host port
//! held by someone else ("port is already allocated"), who holds it and how to free it.

use super::super::taken::{HeldBy, Holder};
use super::Ctx;

pub(super) fn not_running(c: &mut Ctx, name: &str, status: &str, error: &str) {
    c.say(
        "",
        format!("{name} is not running ({status}): it has no network endpoint"),
    );
    if !error.is_empty() {
        c.say("", format!("its last start failed: {error}"));
    }
    let holders = c.f.port_holders.clone();
    for h in &holders {
        c.say("ports", format!("{} {}", binding(h), held_by(&h.by)));
    }
    match holders.first() {
        None => c.say("fix", format!("berth start {name}")),
        Some(h) => {
            let free = match &h.by {
                HeldBy::Container(other) => format!("berth stop {other}"),
                HeldBy::Process { pid, .. } => format!("stop process {pid}"),
                HeldBy::Socket => format!("free port {}", h.port),
            };
            c.say(
                "fix",
                format!(
                    "{free}, or recreate {name} with another host port (-p PORT:{}), then: berth start {name}",
                    h.container_port
                ),
            );
        }
    }
}

fn binding(h: &Holder) -> String {
    let ip = match h.host_ip {
        std::net::IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    };
    let p = h.proto.as_str();
    format!(
        "host port {ip}:{}/{p} (for {}/{p}) is taken",
        h.port, h.container_port
    )
}

fn held_by(by: &HeldBy) -> String {
    match by {
        HeldBy::Container(other) => format!("by container {other}, which publishes it"),
        HeldBy::Process { pid, name } => format!("by process {name} (pid {pid}) on this host"),
        HeldBy::Socket => "by a socket of a process not visible here".into(),
    }
}
