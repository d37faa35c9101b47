//! The crash campaign's random half (issue 12): berthd killed with SIGKILL every few seconds
//! while API clients run (half of them publishing an HTTP port), connect, disconnect and remove
//! containers and create and remove networks; after each restart the invariants of
//! `berth_e2e::invariants` are checked. The seed is printed: `BERTH_CRASH_SEED=N` replays the
//! kill times and the clients' choices; `BERTH_CRASH_SECS` (default 60), `BERTH_CRASH_CLIENTS`
//! (default 16) make it longer or wider.

use berth_e2e::http::call;
use berth_e2e::invariants::{self, HTTP_LABEL};
use berth_e2e::*;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
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

const NETS: [&str; 3] = ["bridge", "crash0", "crash1"];

/// A client's share of the load: random operations on its own containers until `stop`;
/// `ops` counts the calls that got an answer.
fn client(sock: PathBuf, who: u64, seed: u64, stop: Arc<AtomicBool>, ops: Arc<AtomicU64>) {
    let mut rng = Rng(seed | 1);
    let mut mine: Vec<String> = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let net = NETS[rng.below(3) as usize];
        let answered = match rng.below(6) {
            0 | 1 => {
                let name = format!("c{who}-{seed:x}-{i}");
                // half of them publish port 80 (an ephemeral host port) and serve HTTP there
                let (ports, labels, cmd) = match rng.below(2) {
                    0 => (
                        json!({"80/tcp": [{"HostIp": "", "HostPort": ""}]}),
                        json!({HTTP_LABEL: "1"}),
                        json!(["sh", "-c", "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 80 -h /www"]),
                    ),
                    _ => (json!({}), json!({}), json!(["sleep", "3600"])),
                };
                let body = json!({
                    "Image": "busybox",
                    "Cmd": cmd,
                    "Labels": labels,
                    "ExposedPorts": {"80/tcp": {}},
                    "HostConfig": {"NetworkMode": net, "PortBindings": ports},
                });
                let path = format!("/containers/create?name={name}");
                let r = call(&sock, "POST", &path, Some(body));
                if let Some((201, _)) = r {
                    mine.push(name.clone());
                    call(&sock, "POST", &format!("/containers/{name}/start"), None)
                } else {
                    r
                }
            }
            2 if !mine.is_empty() => {
                let c = &mine[rng.below(mine.len() as u64) as usize];
                let body = json!({"Container": c});
                call(
                    &sock,
                    "POST",
                    &format!("/networks/{net}/connect"),
                    Some(body),
                )
            }
            3 if !mine.is_empty() => {
                let c = &mine[rng.below(mine.len() as u64) as usize];
                let body = json!({"Container": c, "Force": true});
                call(
                    &sock,
                    "POST",
                    &format!("/networks/{net}/disconnect"),
                    Some(body),
                )
            }
            4 if !mine.is_empty() => {
                let c = mine.swap_remove(rng.below(mine.len() as u64) as usize);
                call(&sock, "DELETE", &format!("/containers/{c}?force=1"), None)
            }
            _ => {
                // user networks come and go (a removal is refused while one is in use)
                let n = NETS[1 + rng.below(2) as usize];
                if rng.below(2) == 0 {
                    call(
                        &sock,
                        "POST",
                        "/networks/create",
                        Some(json!({"Name": n, "CheckDuplicate": true})),
                    )
                } else {
                    call(&sock, "DELETE", &format!("/networks/{n}"), None)
                }
            }
        };
        match answered {
            Some(_) => {
                ops.fetch_add(1, Ordering::Relaxed);
            }
            // the daemon is down: no busy loop against a dead socket
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn kill9_under_mixed_load_keeps_the_invariants() {
    let seed = env_u64(
        "BERTH_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    let secs = env_u64("BERTH_CRASH_SECS", 60);
    let clients = env_u64("BERTH_CRASH_CLIENTS", 16);
    eprintln!("BERTH_CRASH_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let mut lab = Lab::start();
    for n in &NETS[1..] {
        lab.create_network(json!({"Name": n}));
    }
    let t0 = Instant::now();
    let ops = Arc::new(AtomicU64::new(0));
    let mut round = 0;
    let mut most = invariants::Counts::default();
    while t0.elapsed() < Duration::from_secs(secs) {
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..clients)
            .map(|who| {
                let (sock, s) = (lab.sock(), rng.below(u64::MAX));
                let (stop, ops) = (stop.clone(), ops.clone());
                std::thread::spawn(move || client(sock, who, s, stop, ops))
            })
            .collect();
        // a kill every few seconds
        std::thread::sleep(Duration::from_millis(1000 + rng.below(3000)));
        lab.kill9();
        stop.store(true, Ordering::SeqCst);
        for c in threads {
            c.join().unwrap();
        }
        lab.start_again();
        let n = invariants::check(&lab, &format!("after kill {round}"));
        eprintln!("kill {round}: {n:?}");
        if n.endpoints >= most.endpoints {
            most = n;
        }
        round += 1;
    }
    eprintln!(
        "{round} kills in {:?}, {clients} clients, {} answered calls; largest state checked: {most:?}",
        t0.elapsed(),
        ops.load(Ordering::Relaxed)
    );
    // everything can still be removed, and then nothing is left
    let (_, list) = lab.api("GET", "/containers/json?all=1", None);
    for c in list.as_array().unwrap() {
        let id = c["Id"].as_str().unwrap();
        let (st, v) = lab.api("DELETE", &format!("/containers/{id}?force=1"), None);
        assert_eq!(st, 204, "{v}");
    }
    let left = lab.veths_left();
    assert!(left.is_empty(), "{left:?}");
    assert!(invariants::published_in_nft(&lab).is_empty());
    // by id (names are checked unique by the invariants)
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
    invariants::check(&lab, "after removing everything");
}
