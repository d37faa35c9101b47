//! Issue 13: a network driver plugin against the built-in bridge. Container start
//! (create + start) and `network connect` on a plugin network (the project's `berth-testplug`,
//! which really makes a veth per endpoint) vs a user bridge network, p50; and berth's own time
//! per plugin connect: the API call's time minus the time the plugin spent inside its calls
//! (CreateEndpoint + Join, as the plugin measures them). BENCH_PLUGIN_N samples (default 40).
//!
//! Part of berth's own time is the kernel's: a plugin makes its interface in the host's
//! namespace and the daemon moves it into the container's (Docker does the same), and that
//! move waits for an RCU barrier in `__dev_change_net_namespace`. berthd logs each move's time
//! at debug level (`link … moved into … in …`); the bench reads it back per connect and
//! reports berth's own time without it, and the move measured alone (`ip link set X netns
//! Y`, less the same `ip` call that moves nothing).
//!
//! Then the peer, in the same run: Docker with the same plugin and the same calls
//! ([`measure`]), see plugins_docker.rs.

use crate::{env, report, timed};
use berth_e2e::plug::{calls, start_plugin};
use berth_e2e::Lab;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// A Debug-printed Duration (`20.27ms`, `892.1µs`, `1.2s`) in milliseconds.
fn millis(d: &str) -> Option<f64> {
    let split = d.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (n, unit) = d.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "ns" => n / 1e6,
        "µs" => n / 1e3,
        "ms" => n,
        "s" => n * 1e3,
        _ => return None,
    })
}

/// The kernel moves berthd logged, in order (milliseconds).
fn logged_moves(log: &Path) -> Vec<f64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" moved into ") && l.contains("berth_net::osl"))
        .filter_map(|l| millis(l.rsplit(" in ").next()?.trim()))
        .collect()
}

/// berthd's per-step timings of its last `n` lines containing `marker` (`step 1.2ms, step
/// 3µs, …` after the marker), as (step, milliseconds per line), in the order logged.
fn logged_steps(log: &Path, marker: &str, n: usize) -> Vec<(String, Vec<f64>)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(marker)).collect();
    let mut steps: Vec<(String, Vec<f64>)> = Vec::new();
    for l in &lines[lines.len().saturating_sub(n)..] {
        let Some((_, rest)) = l.split_once(marker) else {
            continue;
        };
        for part in rest.split(", ") {
            let Some((name, d)) = part.trim().rsplit_once(' ') else {
                continue;
            };
            // the remote driver's line starts with the endpoint's id
            let name = name.rsplit(": ").next().unwrap_or(name);
            let Some(ms) = millis(d) else { continue };
            match steps.iter_mut().find(|(s, _)| s == name) {
                Some((_, v)) => v.push(ms),
                None => steps.push((name.to_string(), vec![ms])),
            }
        }
    }
    steps
}

/// Where berth's time per plugin connect went, p50 per step, from berthd's debug log: the
/// engine's connect (checks, network, files, ports), inside it the network controller's
/// (ipam, claim, store, dns, join, …), inside its join the remote driver's (CreateEndpoint,
/// Join, interface moved in), and after the move the link's configuration in the sandbox.
fn report_steps(log: &Path, n: usize) {
    for (what, marker) in [
        ("engine", "connect to pnet: "),
        ("controller", "connected to pnet (testplug): "),
        ("remote driver", "berth_net::drivers::remote: endpoint "),
        ("after the move", " configured in the sandbox: "),
    ] {
        let parts: Vec<String> = logged_steps(log, marker, n)
            .into_iter()
            .map(|(s, mut v)| format!("{s} {:.2}", crate::pct(&mut v, 0.5)))
            .collect();
        println!("  {what} steps, p50 ms: {}", parts.join(", "));
    }
}

/// Milliseconds the kernel takes to move a fresh veth end from the lab's namespace into
/// another one: `ip link set X netns Y` less `ip link set X mtu 1500` (same process, same
/// netlink round trip, nothing moved).
fn kernel_moves(lab: &Lab, n: usize) -> Vec<f64> {
    let target = format!("{}-mv", lab.ns());
    let ip = |args: &[&str]| {
        let t = Instant::now();
        let ok = Command::new("ip")
            .args(args)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip {args:?}");
        t.elapsed().as_secs_f64() * 1000.0
    };
    ip(&["netns", "add", &target]);
    let mut out = Vec::new();
    for i in 0..n {
        let (a, b) = (format!("bmv{i}"), format!("bmv{i}p"));
        let ns = lab.ns();
        ip(&[
            "-n", ns, "link", "add", &a, "type", "veth", "peer", "name", &b,
        ]);
        let same = ip(&["-n", ns, "link", "set", &a, "mtu", "1500"]);
        let moved = ip(&["-n", ns, "link", "set", &a, "netns", &target]);
        out.push(moved - same);
    }
    ip(&["netns", "del", &target]);
    out
}

/// Microseconds the plugin spent per answered call, in order.
fn plugin_micros(timings: &Path) -> Vec<u64> {
    std::fs::read_to_string(timings)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["Micros"].as_u64())
        .collect()
}

/// The network interfaces of a running container (from its init's /proc/<pid>/net/dev).
fn links_of(sock: &Path, id: &str) -> Vec<String> {
    let (_, v) = crate::call(
        sock,
        "GET",
        &format!("/v1.41/containers/{id}/json"),
        None,
        200,
    );
    let pid = v["State"]["Pid"].as_u64().unwrap_or(0);
    assert!(pid > 0, "no State.Pid for {id}: {}", v["State"]);
    std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
        .unwrap_or_default()
        .lines()
        .skip(2)
        .filter_map(|l| Some(l.split_once(':')?.0.trim().to_string()))
        .collect()
}

fn create_start(sock: &Path, name: &str, net: &str) -> (String, f64) {
    let body = json!({"Image": "busybox", "Cmd": ["sleep", "3600"],
        "HostConfig": {"NetworkMode": net}});
    let (c, v) = crate::call(
        sock,
        "POST",
        &format!("/v1.41/containers/create?name={name}"),
        Some(&body),
        201,
    );
    let id = v["Id"].as_str().unwrap().to_string();
    let s = timed(
        sock,
        "POST",
        &format!("/v1.41/containers/{id}/start"),
        None,
        204,
    );
    (id, c + s)
}

/// One daemon under measurement, with `berth-testplug` serving it.
pub struct Side<'a> {
    /// "berth", "Docker": the own-time rows are named after it.
    pub who: &'a str,
    pub sock: &'a Path,
    /// The namespace the daemon and the plugin run in (the kernel's move alone is measured
    /// there).
    pub lab: &'a Lab,
    /// The plugin's `--timings` and `--record` files.
    pub timings: &'a Path,
    pub record: &'a Path,
    /// The kernel moves the daemon logged so far (ms, in order), when it logs them.
    pub moves: Option<&'a dyn Fn() -> Vec<f64>>,
}

/// The measurement, the same calls for berth and Docker: networks `pnet` (testplug) and
/// `bnet` (bridge), n container starts on each; n running containers on the default bridge
/// connected to and disconnected from each; one request per connection. Prints the rows;
/// removes the containers and the two networks.
pub fn measure(s: &Side, n: usize) {
    let sock = s.sock;
    for (name, driver, subnet) in [
        ("pnet", "testplug", "10.90.0.0/16"),
        ("bnet", "bridge", "10.91.0.0/16"),
    ] {
        let body = json!({"Name": name, "Driver": driver,
            "IPAM": {"Config": [{"Subnet": subnet}]}});
        timed(sock, "POST", "/v1.41/networks/create", Some(&body), 201);
    }
    let moves = || s.moves.map(|f| f()).unwrap_or_default();
    let mut ids = Vec::new();
    for (net, what) in [("bnet", "bridge"), ("pnet", "plugin")] {
        let mut starts = Vec::new();
        for i in 0..n {
            let (id, t) = create_start(sock, &format!("s{net}{i}"), net);
            starts.push(t);
            ids.push(id);
        }
        report(&format!("container start on a {what} network"), &mut starts);
    }
    // connect/disconnect running containers (on the default bridge) to each network
    let mut base = Vec::new();
    for i in 0..n {
        base.push(create_start(sock, &format!("c{i}"), "bridge").0);
    }
    for (net, what) in [("bnet", "bridge"), ("pnet", "plugin")] {
        let (mut con, mut own, mut bare) = (Vec::new(), Vec::new(), Vec::new());
        let mut one_connect = Vec::new();
        for (i, id) in base.iter().enumerate() {
            // the first plugin connect really moves the plugin's link into the container
            let links_before = (i == 0 && net == "pnet").then(|| links_of(sock, id));
            let before = plugin_micros(s.timings).len();
            let calls_before = calls(s.record).len();
            let moves_before = moves().len();
            let t = timed(
                sock,
                "POST",
                &format!("/v1.41/networks/{net}/connect"),
                Some(&json!({"Container": id})),
                200,
            );
            let inside: u64 = plugin_micros(s.timings)[before..].iter().sum();
            con.push(t);
            if let Some(links_before) = links_before {
                let links = links_of(sock, id);
                assert_eq!(
                    links.len(),
                    links_before.len() + 1,
                    "{}: the container's links before and after a plugin connect: \
                     {links_before:?} {links:?}",
                    s.who
                );
            }
            if net == "pnet" {
                let mine = t - inside as f64 / 1000.0;
                own.push(mine);
                if s.moves.is_some() {
                    let moved: f64 = moves()[moves_before..].iter().sum();
                    bare.push(mine - moved);
                }
                if one_connect.is_empty() {
                    one_connect = calls(s.record).split_off(calls_before);
                }
            }
        }
        report(&format!("network connect to a {what} network"), &mut con);
        if !own.is_empty() {
            report(
                &format!("  {}'s own time per plugin connect", s.who),
                &mut own,
            );
            if s.moves.is_some() {
                report("  the same less the kernel's move (per connect)", &mut bare);
            }
            let mut alone = kernel_moves(s.lab, n);
            report("  the kernel's move alone (ip link set netns)", &mut alone);
            let one: Vec<&str> = one_connect
                .iter()
                .map(|m| m.trim_start_matches("NetworkDriver."))
                .collect();
            println!("  the plugin's calls in one connect: {}", one.join(", "));
        }
        for id in &base {
            timed(
                sock,
                "POST",
                &format!("/v1.41/networks/{net}/disconnect"),
                Some(&json!({"Container": id})),
                200,
            );
        }
    }
    for id in ids.iter().chain(&base) {
        timed(
            sock,
            "DELETE",
            &format!("/v1.41/containers/{id}?force=1"),
            None,
            204,
        );
    }
    for net in ["pnet", "bnet"] {
        timed(sock, "DELETE", &format!("/v1.41/networks/{net}"), None, 204);
    }
}

pub fn run() {
    let n = env("BENCH_PLUGIN_N", 40);
    {
        let mut lab = Lab::new_ns();
        let dir = lab.root().join("plugins");
        std::fs::create_dir_all(&dir).unwrap();
        let record = lab.root().join("calls.jsonl");
        let timings = lab.root().join("timings.jsonl");
        let _plug = start_plugin(
            &lab,
            &dir,
            &record,
            &["--timings", timings.to_str().unwrap()],
        );
        // debug: the kernel's move into the sandbox is logged there (a few lines per call)
        if std::env::var_os("BERTH_E2E_LOG_LEVEL").is_none() {
            std::env::set_var("BERTH_E2E_LOG_LEVEL", "debug");
        }
        let log = lab.root().join("berthd.log");
        lab.start_daemon(&["--plugins-dir", dir.to_str().unwrap()]);
        println!("== plugins (n={n}, berth-testplug: a veth pair per endpoint) ==");
        let sock = lab.sock();
        let moves = || logged_moves(&log);
        measure(
            &Side {
                who: "berth",
                sock: &sock,
                lab: &lab,
                timings: &timings,
                record: &record,
                moves: Some(&moves),
            },
            n,
        );
        report_steps(&log, n);
    }
    // the peer: same calls, same plugin, same run, same machine
    crate::plugins_docker::run(n);
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_as_tracing_prints_them() {
        assert_eq!(super::millis("20.5ms"), Some(20.5));
        assert_eq!(super::millis("892µs"), Some(0.892));
        assert_eq!(super::millis("1.5s"), Some(1500.0));
        assert_eq!(super::millis("7ns"), Some(7e-6));
        assert_eq!(super::millis("12 parsecs"), None);
    }

    #[test]
    fn steps_are_read_per_name_from_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("berthd.log");
        let line = |id: &str, c: &str| {
            format!("2026 DEBUG berth_net::drivers::remote: endpoint {id}: CreateEndpoint {c}, Join 1ms, interface moved in 20.5ms\n")
        };
        let text = [
            line("e1", "9ms"),
            "other\n".into(),
            line("e2", "2ms"),
            line("e3", "4ms"),
        ];
        std::fs::write(&log, text.concat()).unwrap();
        let steps = super::logged_steps(&log, "berth_net::drivers::remote: endpoint ", 2);
        let names: Vec<&str> = steps.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, ["CreateEndpoint", "Join", "interface moved in"]);
        assert_eq!(steps[0].1, [2.0, 4.0]);
        assert_eq!(steps[2].1, [20.5, 20.5]);
    }
}
