//! Issue 5: published ports. Added start time of a 10,001-port range, start time with 1 port
//! before and after 1,000 single ports are published on other containers, TCP throughput
//! through a published port vs the container's own address (iperf3 from an "outside"
//! namespace), and berthd's RSS holding 10,000 published ports.

use crate::networks::{docker_sock, rss_kb};
use crate::{call, median};
use berth_e2e::net::Outside;
use berth_e2e::Lab;
use serde_json::{json, Map, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What `docker run -p H1-H2:C1-C2/proto` sends: one key per port.
fn publish(pairs: &[(u16, u16)], proto: &str) -> (Value, Value) {
    let mut exposed = Map::new();
    let mut bindings = Map::new();
    for (h, c) in pairs {
        let key = format!("{c}/{proto}");
        exposed.insert(key.clone(), json!({}));
        bindings.insert(key, json!([{"HostIp": "", "HostPort": h.to_string()}]));
    }
    (Value::Object(exposed), Value::Object(bindings))
}

fn range(h: u16, c: u16, n: u16) -> Vec<(u16, u16)> {
    (0..n).map(|i| (h + i, c + i)).collect()
}

/// Creates a container (`sleep`) publishing `pairs`; its id and the create time.
fn create(sock: &Path, name: &str, pairs: &[(u16, u16)], cmd: &[&str]) -> (String, f64) {
    let (exposed, bindings) = publish(pairs, "tcp");
    let body = json!({"Image": "busybox", "Cmd": cmd, "ExposedPorts": exposed,
        "HostConfig": {"PortBindings": bindings}});
    let (t, v) = call(
        sock,
        "POST",
        &format!("/v1.41/containers/create?name={name}"),
        Some(&body),
        201,
    );
    (v["Id"].as_str().unwrap().to_string(), t)
}

fn start(sock: &Path, id: &str) -> f64 {
    call(
        sock,
        "POST",
        &format!("/v1.41/containers/{id}/start"),
        None,
        204,
    )
    .0
}

fn remove(sock: &Path, id: &str) {
    call(
        sock,
        "DELETE",
        &format!("/v1.41/containers/{id}?force=1"),
        None,
        204,
    );
}

fn iperf_gbps(out_ns: &str, to: &str, port: u16) -> f64 {
    let o = Command::new("ip")
        .args(["netns", "exec", out_ns, "iperf3", "-c", to, "-p"])
        .arg(port.to_string())
        .args(["-t", "4", "-O", "1", "-J"])
        .output()
        .expect("iperf3 (apt-get install iperf3)");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "iperf3 output ({e}): {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("iperf3: {v}"))
        / 1e9
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// iperf3 TCP through `-p 15201:5201` vs to the container's address, from outside.
fn throughput(lab: &Lab, sock: &Path) -> Option<(f64, f64)> {
    if Command::new("iperf3").arg("--version").output().is_err() {
        println!("iperf3 not installed: throughput not measured");
        return None;
    }
    let out = Outside::new(lab);
    let (id, _) = create(sock, "iperf", &[(15201, 5201)], &["sleep", "600"]);
    start(sock, &id);
    let (_, v) = call(
        sock,
        "GET",
        &format!("/v1.41/containers/{id}/json"),
        None,
        200,
    );
    let sandbox = v["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_string();
    let ip = v["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    // the server runs in the container's network namespace (the busybox image has no iperf3)
    let _server = Server(
        Command::new("nsenter")
            .arg(format!("--net={sandbox}"))
            .args(["iperf3", "-s", "-p", "5201"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("iperf3 server"),
    );
    std::thread::sleep(Duration::from_millis(500));
    // Direct access from outside needs a route to the container, and a rule letting it in:
    // berth, like Docker, forwards only published ports into a network.
    Command::new("ip")
        .args([
            "-n",
            &out.name,
            "route",
            "add",
            "172.16.0.0/12",
            "via",
            "198.51.100.1",
        ])
        .status()
        .unwrap();
    let table = lab.nft_state().tables[0].clone();
    lab.sh(&format!(
        "nft insert rule inet {table} forward ip daddr {ip} tcp dport 5201 accept"
    ));
    let (mut published, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        published.push(iperf_gbps(&out.name, "198.51.100.1", 15201));
        direct.push(iperf_gbps(&out.name, &ip, 5201));
    }
    remove(sock, &id);
    Some((median(&mut published), median(&mut direct)))
}

pub fn run() {
    let lab = Lab::start();
    let sock = lab.sock();
    let pid = lab.pid().expect("daemon pid");
    // The built-in busybox image is made on first use: not part of what is measured.
    let (warm, _) = create(&sock, "warmup", &[], &["true"]);
    remove(&sock, &warm);

    // 1. a 10,001-port range: added start time
    let n = 11;
    let (mut none, mut big) = (Vec::new(), Vec::new());
    let wide = range(10000, 10000, 10001);
    let mut create_wide = Vec::new();
    for i in 0..n {
        let (id, _) = create(&sock, &format!("plain{i}"), &[], &["sleep", "600"]);
        none.push(start(&sock, &id));
        remove(&sock, &id);
        let (id, c) = create(&sock, &format!("wide{i}"), &wide, &["sleep", "600"]);
        create_wide.push(c);
        big.push(start(&sock, &id));
        remove(&sock, &id);
    }
    let (none, big) = (median(&mut none), median(&mut big));
    println!(
        "start, no ports: {none:.1} ms; with a 10,001-port range: {big:.1} ms; added {:.1} ms (create with 10,001 keys: {:.1} ms)",
        big - none,
        median(&mut create_wide)
    );

    // 2. one port, with 1,000 single ports published on other containers vs with the same
    // containers publishing none (running containers slow runc down by themselves)
    let holders: usize = std::env::var("BENCH_PORT_CONTAINERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let per = 1000 / holders;
    // three rounds of each, alternating, so that the machine's load drifts evenly
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..3 {
        for with_ports in [false, true] {
            let mut ids = Vec::new();
            for i in 0..holders {
                // shifted ports: one element each
                let pairs: Vec<(u16, u16)> = (0..per as u16)
                    .map(|k| (40000 + (i * per) as u16 + k, 1 + k))
                    .collect();
                let pairs = if with_ports { pairs } else { vec![] };
                let name = format!("holder{with_ports}{round}_{i}");
                let (id, _) = create(&sock, &name, &pairs, &["sleep", "600"]);
                start(&sock, &id);
                ids.push(id);
            }
            for i in 0..7 {
                let (id, _) = create(
                    &sock,
                    &format!("one{with_ports}{round}_{i}"),
                    &[(9000, 80)],
                    &["sleep", "600"],
                );
                let t = start(&sock, &id);
                remove(&sock, &id);
                if with_ports {
                    with.push(t)
                } else {
                    without.push(t)
                }
            }
            for id in &ids {
                remove(&sock, id);
            }
        }
    }
    let times = [median(&mut without), median(&mut with)];
    println!(
        "start with 1 port, {holders} other containers running: publishing nothing {:.1} ms, publishing 1,000 single ports {:.1} ms ({:.2}x)",
        times[0],
        times[1],
        times[1] / times[0]
    );

    // 3. throughput
    if let Some((p, d)) = throughput(&lab, &sock) {
        println!(
            "iperf3 TCP from outside: published port {p:.2} Gbit/s, container address {d:.2} Gbit/s ({:.2}x)",
            p / d
        );
    }

    // 4. RSS with 10,000 published ports: one range, then 10,000 shifted (single) ports;
    // from before the container is created (its record, as the CLI sends it: 10,000
    // PortBindings keys) to once it runs with its ports published. Median of 3.
    for (what, pairs) in [
        ("a 10,000-port range", range(20000, 20000, 10000)),
        ("10,000 single ports", range(30000, 1, 10000)),
    ] {
        let mut deltas = Vec::new();
        let mut last = 0;
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(1000));
            let base = rss_kb(pid);
            let (id, _) = create(&sock, "rss", &pairs, &["sleep", "600"]);
            start(&sock, &id);
            std::thread::sleep(Duration::from_millis(1000));
            last = rss_kb(pid);
            deltas.push((last as f64 - base as f64) / 1024.0);
            remove(&sock, &id);
        }
        println!(
            "berthd RSS with {what} published: {:.1} MB, {:+.2} MB from before the container was created (median of 3: {:?})",
            last as f64 / 1024.0,
            median(&mut deltas.clone()),
            deltas.iter().map(|d| format!("{d:+.2}")).collect::<Vec<_>>()
        );
    }

    match docker_sock() {
        Some(_) => println!("docker: a daemon answers, but its port numbers are not measured here (its userland proxy needs the host's namespace)"),
        None => println!(
            "docker: not installed; reference: about 85 ms and 1.2 MB per port of a range (one docker-proxy process each)"
        ),
    }
}
