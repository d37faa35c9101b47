//! What must hold after any berthd crash and restart (issue 12's crash campaign): checked by
//! the failpoint tests, the random kill -9 test and `berth-bench soak`'s end.
//!
//! - no address given twice on a network;
//! - exactly one veth per endpoint of a running container, none for anything else;
//! - a network's `Containers` are exactly the running containers the container list puts on it;
//! - one `br-*` bridge per user network and none for a removed one, and no nft element naming
//!   another bridge;
//! - the kernel's `ports4` map holds exactly the host ports of the running containers, and
//!   those of containers labelled `berth.test.http` answer HTTP;
//! - one namespace pin and one mounted root filesystem per running container, nothing else
//!   mounted under the lab;
//! - the embedded DNS answers `name.network` with exactly the container's address there, for
//!   every network the asker shares with it, and the bare name not at all without one (asked
//!   from up to four containers, for every running container).

use crate::dns::ask_udp;
use crate::net::{http_get, ns_path};
use crate::Lab;
use hickory_proto::rr::RecordType;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Label of containers whose published port 80 serves HTTP (busybox httpd).
pub const HTTP_LABEL: &str = "berth.test.http";

/// A container as the API lists it.
#[derive(Debug, Clone)]
pub struct Ctr {
    pub id: String,
    pub name: String,
    pub running: bool,
    /// network name → IPv4 address (running containers only)
    pub addrs: BTreeMap<String, String>,
    /// network id → IPv4 address: two networks may share a name (Docker lets two clients
    /// create one at once)
    pub by_net_id: BTreeMap<String, String>,
    pub host_ports: Vec<u16>,
    pub http: bool,
}

/// What [`check`] found, for the reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub containers: usize,
    pub running: usize,
    pub endpoints: usize,
    pub published: usize,
    pub names: usize,
}

/// The containers, as `GET /containers/json?all=1` lists them.
pub fn containers(lab: &Lab) -> Vec<Ctr> {
    let (st, list) = lab.api("GET", "/containers/json?all=1", None);
    assert_eq!(st, 200, "{list}");
    let mut out = Vec::new();
    for c in list.as_array().unwrap() {
        let running = c["State"] == "running";
        let (mut addrs, mut by_net_id) = (BTreeMap::new(), BTreeMap::new());
        for (net, ep) in c["NetworkSettings"]["Networks"].as_object().unwrap() {
            let ip = ep["IPAddress"].as_str().unwrap_or("");
            if running && !ip.is_empty() {
                addrs.insert(net.clone(), ip.to_string());
                let id = ep["NetworkID"].as_str().unwrap_or(net);
                by_net_id.insert(id.to_string(), ip.to_string());
            }
        }
        let host_ports = c["Ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| running && p["IP"] == "0.0.0.0")
            .filter_map(|p| p["PublicPort"].as_u64().map(|p| p as u16))
            .collect();
        out.push(Ctr {
            id: c["Id"].as_str().unwrap().to_string(),
            name: c["Names"][0]
                .as_str()
                .unwrap_or("")
                .trim_start_matches('/')
                .to_string(),
            running,
            addrs,
            by_net_id,
            host_ports,
            http: c["Labels"][HTTP_LABEL].is_string(),
        });
    }
    out
}

/// Host ports of the `ports4` map (`proto . host port : address . port`).
pub fn published_in_nft(lab: &Lab) -> BTreeSet<u16> {
    let st = lab.nft_state();
    st.sets
        .get("ports4")
        .into_iter()
        .flatten()
        .filter_map(|e| e.split(" : ").next()?.rsplit(" . ").next()?.parse().ok())
        .collect()
}

fn veths(lab: &Lab) -> Vec<String> {
    lab.links()
        .into_iter()
        .filter(|l| l.starts_with("veth"))
        .collect()
}

/// Mount points under the lab's dir: (namespace pins, root filesystems, others).
fn lab_mounts(lab: &Lab) -> (usize, usize, Vec<String>) {
    let root = lab.root().to_string_lossy().into_owned();
    let netns = lab.exec_root().join("netns").to_string_lossy().into_owned();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let (mut pins, mut roots, mut other) = (0, 0, Vec::new());
    for m in info.lines().filter_map(|l| l.split(' ').nth(4)) {
        if !m.starts_with(&root) {
            continue;
        }
        if m.starts_with(&format!("{netns}/")) {
            pins += 1;
        } else if m.ends_with("/rootfs") {
            roots += 1;
        } else if m != netns {
            other.push(m.to_string());
        }
    }
    (pins, roots, other)
}

/// Retries `f` for up to 5 s while it returns an error (repairs after a restart, and bridges
/// and veths deleted in the background, take a moment); then panics with the last error.
fn eventually(what: &str, mut f: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match f() {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Checks every invariant of the module; `what` names the moment in a failure.
pub fn check(lab: &Lab, what: &str) -> Counts {
    let ctrs = containers(lab);
    let running: Vec<&Ctr> = ctrs.iter().filter(|c| c.running).collect();
    let mut counts = Counts {
        containers: ctrs.len(),
        running: running.len(),
        ..Counts::default()
    };

    // addresses once per network
    let mut seen = BTreeSet::new();
    for c in &running {
        for (net, ip) in &c.by_net_id {
            assert!(
                seen.insert((net.clone(), ip.clone())),
                "{what}: {ip} given twice on {net}"
            );
        }
    }
    counts.endpoints = seen.len();

    // one veth per endpoint
    eventually(&format!("{what}: veths"), || {
        let v = veths(lab);
        (v.len() == counts.endpoints)
            .then_some(())
            .ok_or_else(|| format!("{v:?} for {} endpoints", counts.endpoints))
    });

    // the networks' view of their containers, and their bridges
    let (st, nets) = lab.api("GET", "/networks", None);
    assert_eq!(st, 200, "{nets}");
    let mut bridges = BTreeSet::new();
    // berth gives a network name once (Docker's CheckDuplicate, which berth always applies),
    // also across a crash in the middle of a create or a removal
    let mut names_seen = BTreeSet::new();
    for n in nets.as_array().unwrap() {
        let name = n["Name"].as_str().unwrap();
        assert!(
            names_seen.insert(name.to_string()),
            "{what}: two networks named {name}: {nets}"
        );
    }
    for n in nets.as_array().unwrap() {
        let name = n["Name"].as_str().unwrap();
        if n["Driver"] != "bridge" {
            continue;
        }
        let id = n["Id"].as_str().unwrap();
        let br = n["Options"]["com.docker.network.bridge.name"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| crate::bridge_name(id));
        bridges.insert(br);
        let inspected = lab.inspect(id);
        let listed: BTreeSet<&str> = inspected["Containers"]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let want: BTreeSet<&str> = running
            .iter()
            .filter(|c| c.by_net_id.contains_key(id))
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(listed, want, "{what}: containers of network {name}");
    }
    eventually(&format!("{what}: bridges"), || {
        let have: BTreeSet<String> = lab
            .links()
            .into_iter()
            .filter(|l| l.starts_with("br-") || l == "berth0")
            .collect();
        let want: BTreeSet<String> = bridges.iter().cloned().collect();
        (have == want)
            .then_some(())
            .ok_or_else(|| format!("bridges {have:?}, networks' {want:?}"))
    });
    eventually(&format!("{what}: nft elements"), || {
        for (set, elems) in lab.nft_state().sets {
            for e in elems {
                let stray = e
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                    .filter(|w| w.starts_with("br-") || *w == "berth0")
                    .find(|w| !bridges.contains(*w));
                if let Some(b) = stray {
                    return Err(format!(
                        "{set} holds {e:?}, of a bridge ({b}) of no network"
                    ));
                }
            }
        }
        Ok(())
    });

    // published ports: exactly the running containers', and they answer
    let mut published = BTreeSet::new();
    for c in &running {
        for p in &c.host_ports {
            assert!(published.insert(*p), "{what}: host port {p} twice");
        }
    }
    counts.published = published.len();
    eventually(&format!("{what}: ports4"), || {
        let have = published_in_nft(lab);
        (have == published)
            .then_some(())
            .ok_or_else(|| format!("nft {have:?}, containers {published:?}"))
    });
    for c in running.iter().filter(|c| c.http) {
        for p in &c.host_ports {
            let to = format!("127.0.0.1:{p}").parse().unwrap();
            eventually(&format!("{what}: {}'s port {p}", c.name), || {
                http_get(&ns_path(&lab.ns), to).map(|_| ())
            });
        }
    }

    // one namespace pin and one root filesystem per running container
    eventually(&format!("{what}: mounts"), || {
        let (pins, roots, other) = lab_mounts(lab);
        let n = running.len();
        (pins == n && roots == n && other.is_empty())
            .then_some(())
            .ok_or_else(|| {
                format!(
                    "{pins} namespace pins, {roots} root filesystems for {n} running \
                     containers; other mounts: {other:?}"
                )
            })
    });

    // names: up to four running containers (every pair would be quadratic in a large state)
    // ask for every other one on the networks they share
    let askers = running
        .iter()
        .filter(|c| c.addrs.keys().any(|n| n != "bridge"));
    for asker in askers.take(4) {
        let sandbox = sandbox_of(lab, &asker.id);
        for c in &running {
            if c.id == asker.id {
                continue;
            }
            let shared: Vec<(&String, &String)> = c
                .addrs
                .iter()
                .filter(|(n, _)| *n != "bridge" && asker.addrs.contains_key(*n))
                .collect();
            for (net, ip) in &shared {
                let q = format!("{}.{net}", c.name);
                let got = resolve(&sandbox, &q);
                assert_eq!(got, [ip.as_str()], "{what}: {} asked for {q}", asker.name);
                counts.names += 1;
            }
            let unshared = c.addrs.keys().all(|n| !asker.addrs.contains_key(n));
            if unshared {
                let got = resolve(&sandbox, &c.name);
                assert!(
                    got.is_empty(),
                    "{what}: {} asked for {}: {got:?}",
                    asker.name,
                    c.name
                );
            }
        }
    }
    counts
}

/// The container's namespace path (its `SandboxKey`).
pub fn sandbox_of(lab: &Lab, id: &str) -> PathBuf {
    let (st, v) = lab.api("GET", &format!("/containers/{id}/json"), None);
    assert_eq!(st, 200, "{v}");
    PathBuf::from(v["NetworkSettings"]["SandboxKey"].as_str().unwrap())
}

/// The embedded DNS's A answers for `name`, asked from `sandbox`; panics without a reply.
pub fn resolve(sandbox: &std::path::Path, name: &str) -> Vec<String> {
    let server = "127.0.0.11:53".parse().unwrap();
    match ask_udp(sandbox, server, name, RecordType::A) {
        Some(r) => r.answers,
        None => panic!(
            "the embedded DNS in {} did not answer {name} within 6 s",
            sandbox.display()
        ),
    }
}

/// Value of `c`'s address on `net`, from inspect.
pub fn ip_on(lab: &Lab, c: &str, net: &str) -> Option<String> {
    let (st, v): (u16, Value) = lab.api("GET", &format!("/containers/{c}/json"), None);
    assert_eq!(st, 200, "{v}");
    v["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from)
}
