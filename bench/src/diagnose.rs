//! Issue 14: `diagnose` and `graph` latency on a populated host: 100 running containers on 10
//! user networks (and some on two), through `/berth/v1/diagnose` (no probe: the verdict from
//! the store, the kernel and the nft ruleset) and `/berth/v1/graph`, all three formats.
//! Docker has no such command: there is no peer to measure.

use crate::{call, env, report};
use berth_e2e::Lab;
use serde_json::json;
use std::time::Instant;

const NETS: usize = 10;
const CONTAINERS: usize = 100;

pub fn run() {
    let n = env("BENCH_DIAGNOSE_N", 40);
    let lab = Lab::start();
    let sock = lab.sock();
    for i in 0..NETS {
        let body = json!({"Name": format!("dnet{i}")});
        call(&sock, "POST", "/v1.41/networks/create", Some(&body), 201);
    }
    let t = Instant::now();
    for i in 0..CONTAINERS {
        let body = json!({"Image": "busybox", "Cmd": ["sleep", "3600"],
            "HostConfig": {"NetworkMode": format!("dnet{}", i % NETS)}});
        let path = format!("/v1.41/containers/create?name=d{i}");
        let (_, v) = call(&sock, "POST", &path, Some(&body), 201);
        let id = v["Id"].as_str().unwrap().to_string();
        call(
            &sock,
            "POST",
            &format!("/v1.41/containers/{id}/start"),
            None,
            204,
        );
        // every tenth is on a second network too
        if i % 10 == 0 {
            let body = json!({"Container": id});
            let path = format!("/v1.41/networks/dnet{}/connect", (i + 1) % NETS);
            call(&sock, "POST", &path, Some(&body), 200);
        }
    }
    println!(
        "diagnose: {CONTAINERS} running containers on {NETS} networks (set up in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    let mut same = Vec::new();
    let mut apart = Vec::new();
    let mut port = Vec::new();
    for k in 0..n {
        // same network, different networks, and a name:port target
        let a = (k * 7) % CONTAINERS;
        let b = (a + NETS) % CONTAINERS;
        let c = (a + 1) % CONTAINERS;
        for (to, out) in [
            (format!("d{b}"), &mut same),
            (format!("d{c}"), &mut apart),
            (format!("d{b}:80/tcp"), &mut port),
        ] {
            let path = format!("/berth/v1/diagnose?from=d{a}&to={to}");
            let (took, v) = call(&sock, "GET", &path, None, 200);
            assert!(v.is_object(), "{v}");
            out.push(took);
        }
    }
    report("diagnose A B (same network)", &mut same);
    report("diagnose A B (no shared network)", &mut apart);
    report("diagnose A B:80/tcp", &mut port);
    for format in ["json", "text", "dot"] {
        let mut g = Vec::new();
        for _ in 0..n {
            let path = format!("/berth/v1/graph?format={format}");
            g.push(call(&sock, "GET", &path, None, 200).0);
        }
        report(&format!("graph --format {format}"), &mut g);
    }
}
