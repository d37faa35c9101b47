//! The crash campaign's first part (issue 12): berthd killed with SIGKILL at random moments
//! while API clients run, connect, disconnect and remove containers and create and remove
//! networks; after each restart the invariants are checked. The seed is printed:
//! `BERTH_CRASH_SEED=N` replays a run, `BERTH_CRASH_ROUNDS=N` makes it longer.

use berth_e2e::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// xorshift64: the tests crate has no random number crate, and a seed must replay.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One API call that may meet a dying daemon: no answer is `None`.
fn call(sock: &Path, method: &str, path: &str, body: Option<Value>) -> Option<(u16, Value)> {
    let body = body.map(|b| serde_json::to_vec(&b).unwrap());
    let r = http::request(
        sock,
        method,
        path,
        &[("Content-Type", "application/json")],
        body.as_deref(),
    )
    .ok()?;
    Some((
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    ))
}

const NETS: [&str; 3] = ["bridge", "crash0", "crash1"];

/// A client's share of the load: `ops` random operations on its own containers.
fn client(sock: PathBuf, who: u64, seed: u64, ops: u64) {
    let mut rng = Rng(seed | 1);
    let mut mine: Vec<String> = Vec::new();
    for i in 0..ops {
        let net = NETS[rng.below(3) as usize];
        match rng.below(6) {
            0 | 1 => {
                let name = format!("c{who}-{seed:x}-{i}");
                // half of them publish a port (an ephemeral host port on every address)
                let ports = match rng.below(2) {
                    0 => json!({"80/tcp": [{"HostIp": "", "HostPort": ""}]}),
                    _ => json!({}),
                };
                let body = json!({
                    "Image": "busybox",
                    "Cmd": ["sleep", "600"],
                    "ExposedPorts": {"80/tcp": {}},
                    "HostConfig": {"NetworkMode": net, "PortBindings": ports},
                });
                let path = format!("/containers/create?name={name}");
                if let Some((201, _)) = call(&sock, "POST", &path, Some(body)) {
                    mine.push(name.clone());
                    let _ = call(&sock, "POST", &format!("/containers/{name}/start"), None);
                }
            }
            2 if !mine.is_empty() => {
                let c = &mine[rng.below(mine.len() as u64) as usize];
                let body = json!({"Container": c});
                let _ = call(
                    &sock,
                    "POST",
                    &format!("/networks/{net}/connect"),
                    Some(body),
                );
            }
            3 if !mine.is_empty() => {
                let c = &mine[rng.below(mine.len() as u64) as usize];
                let body = json!({"Container": c, "Force": true});
                let _ = call(
                    &sock,
                    "POST",
                    &format!("/networks/{net}/disconnect"),
                    Some(body),
                );
            }
            4 if !mine.is_empty() => {
                let c = mine.swap_remove(rng.below(mine.len() as u64) as usize);
                let _ = call(&sock, "DELETE", &format!("/containers/{c}?force=1"), None);
            }
            _ => {
                // user networks come and go (a removal is refused while one is in use)
                let n = NETS[1 + rng.below(2) as usize];
                if rng.below(2) == 0 {
                    let _ = call(&sock, "POST", "/networks/create", Some(json!({"Name": n})));
                } else {
                    let _ = call(&sock, "DELETE", &format!("/networks/{n}"), None);
                }
            }
        }
    }
}

fn veths(lab: &Lab) -> Vec<String> {
    lab.links()
        .into_iter()
        .filter(|l| l.starts_with("veth"))
        .collect()
}

/// Host ports of the `ports4` map (`proto . host port : address . port`).
fn published_in_nft(lab: &Lab) -> BTreeSet<u64> {
    let st = lab.nft_state();
    st.sets
        .get("ports4")
        .into_iter()
        .flatten()
        .filter_map(|e| e.split(" : ").next()?.rsplit(" . ").next()?.parse().ok())
        .collect()
}

/// After a restart: every address is given once per network, running containers have one veth
/// per endpoint and nothing else has one, and the kernel publishes exactly the ports of the
/// running containers.
fn check(lab: &Lab, round: u64) {
    let (st, list) = lab.api("GET", "/containers/json?all=1", None);
    assert_eq!(st, 200, "{list}");
    let mut seen = BTreeSet::new();
    let mut endpoints = 0;
    let mut published = BTreeSet::new();
    for c in list.as_array().unwrap() {
        let running = c["State"] == "running";
        for p in c["Ports"].as_array().into_iter().flatten() {
            if running && p["IP"] == "0.0.0.0" {
                if let Some(h) = p["PublicPort"].as_u64() {
                    assert!(published.insert(h), "round {round}: host port {h} twice");
                }
            }
        }
        for (net, ep) in c["NetworkSettings"]["Networks"].as_object().unwrap() {
            let ip = ep["IPAddress"].as_str().unwrap_or("");
            if running && !ip.is_empty() {
                assert!(
                    seen.insert((net.clone(), ip.to_string())),
                    "round {round}: {ip} given twice on {net}"
                );
                endpoints += 1;
            }
        }
    }
    // the daemon's repairs after a restart may take a moment to reach the kernel
    let deadline = Instant::now() + Duration::from_secs(5);
    while veths(lab).len() != endpoints && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        veths(lab).len(),
        endpoints,
        "round {round}: veths {:?} for {endpoints} endpoints",
        veths(lab)
    );
    assert_eq!(
        published_in_nft(lab),
        published,
        "round {round}: published ports"
    );
    eprintln!(
        "round {round}: {} containers, {endpoints} live endpoints, {} published ports",
        list.as_array().unwrap().len(),
        published.len()
    );
}

#[test]
fn kill9_under_mixed_load_keeps_the_invariants() {
    let seed: u64 = std::env::var("BERTH_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let rounds: u64 = std::env::var("BERTH_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    eprintln!("BERTH_CRASH_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let mut lab = Lab::start();
    for n in &NETS[1..] {
        lab.create_network(json!({"Name": n}));
    }
    for round in 0..rounds {
        let clients: Vec<_> = (0..4)
            .map(|who| {
                let (sock, s) = (lab.sock(), rng.below(u64::MAX));
                std::thread::spawn(move || client(sock, who, s, 8))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100 + rng.below(900)));
        lab.kill9();
        for c in clients {
            c.join().unwrap();
        }
        lab.start_again();
        check(&lab, round);
    }
    // everything can still be removed, and then nothing is left
    let (_, list) = lab.api("GET", "/containers/json?all=1", None);
    for c in list.as_array().unwrap() {
        let id = c["Id"].as_str().unwrap();
        let (st, v) = lab.api("DELETE", &format!("/containers/{id}?force=1"), None);
        assert_eq!(st, 204, "{v}");
    }
    let left = lab.veths_left();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(published_in_nft(&lab), BTreeSet::new());
    // by id: Docker's API lets two clients create the same name at once
    let (_, nets) = lab.api("GET", "/networks", None);
    for n in nets.as_array().unwrap() {
        if ["bridge", "host", "none"].contains(&n["Name"].as_str().unwrap()) {
            continue;
        }
        let id = n["Id"].as_str().unwrap();
        let (st, v) = lab.api("DELETE", &format!("/networks/{id}"), None);
        assert_eq!(st, 204, "{v}");
    }
    let bridges = || -> Vec<String> {
        lab.links()
            .into_iter()
            .filter(|l| l.starts_with("br-"))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !bridges().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, nets) = lab.api("GET", "/networks", None);
    assert!(
        bridges().is_empty(),
        "{:?} left; networks: {nets}",
        bridges()
    );
}
