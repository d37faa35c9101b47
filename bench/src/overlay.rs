//! Issue 11: multi-host overlays, on the multi-host lab (hosts in namespaces, an underlay
//! bridge, a real etcd 3.4 in its own namespace). Numbers only, no assertions.
//!
//! 1. p50/p99 of `network create -d overlay`, `run` (create + start) on an overlay,
//!    `network connect` / `disconnect` to an overlay, on 3 hosts, etcd local.
//! 2. The delay until a new container's name answers a real DNS query (UDP, 127.0.0.11) from a
//!    container on another host, counted from the moment `start` returns.
//! 3. iperf3 TCP container → container across two hosts over the overlay, vs the same two host
//!    namespaces over the underlay directly.
//! 4. Control-plane scale: H hosts, E endpoints created in a burst; time until every host's
//!    FDB, neighbour and DNS state has converged; etcd requests per endpoint; berthd RSS.
//!
//! Parts 1 to 3 are then measured the same way on Docker 20.10 in classic overlay mode, on the
//! same kind of lab (overlay_docker.rs), and both are printed side by side.
//!
//! Knobs: `BENCH_OVERLAY_DOCKER=0` (skip Docker), `BENCH_OVERLAY_N` (samples per latency, default 40), `BENCH_OVERLAY_HOSTS` and
//! `BENCH_OVERLAY_ENDPOINTS` (scale run, default 10 × 200: the 50 × 1,000 means 1,000
//! runc containers, which a 2-core machine runs but slowly; set them to 50 and 1000 for it),
//! `BENCH_OVERLAY_GAP_MS` (a pause before each connect of the connect/disconnect cycle; 0).

use crate::networks::rss_kb;
use crate::{call, env, ms, pct, report};
use berth_e2e::cluster::{a_query as query, kernel, Cluster, ClusterOpts};
use berth_e2e::dns::read_reply;
use berth_e2e::net::in_netns;
use serde_json::{json, Value};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One call, timed, with its JSON reply; the status and message when it is not `want`.
fn try_call(
    sock: &Path,
    method: &str,
    path: &str,
    body: Option<&Value>,
    want: u16,
) -> Result<(f64, Value), String> {
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
    let t = Instant::now();
    let r = berth_e2e::http::request(
        sock,
        method,
        path,
        &[("Content-Type", "application/json")],
        bytes.as_deref(),
    )
    .map_err(|e| format!("{method} {path}: {e}"))?;
    let took = ms(t.elapsed());
    if r.status != want {
        return Err(format!("{method} {path}: {} {}", r.status, r.text().trim()));
    }
    Ok((took, serde_json::from_slice(&r.body).unwrap_or(Value::Null)))
}

/// `POST /containers/create` + `/start` of `busybox sleep 1d` on `net`; (id, ms for both).
/// A container that was created but did not start is removed.
pub fn try_run_on(sock: &Path, name: &str, net: &str) -> Result<(String, f64), String> {
    let body = json!({"Image": "busybox", "Cmd": ["sleep", "1d"],
        "HostConfig": {"NetworkMode": net}});
    let (t1, v) = try_call(
        sock,
        "POST",
        &format!("/v1.41/containers/create?name={name}"),
        Some(&body),
        201,
    )?;
    let id = v["Id"].as_str().unwrap_or_default().to_string();
    match try_call(
        sock,
        "POST",
        &format!("/v1.41/containers/{id}/start"),
        None,
        204,
    ) {
        Ok((t2, _)) => Ok((id, t1 + t2)),
        Err(e) => {
            let _ = try_call(
                sock,
                "DELETE",
                &format!("/v1.41/containers/{id}?force=1"),
                None,
                204,
            );
            Err(e)
        }
    }
}

/// [`try_run_on`], panicking on a failure.
pub fn run_on(sock: &Path, name: &str, net: &str) -> (String, f64) {
    try_run_on(sock, name, net).unwrap_or_else(|e| panic!("{e}"))
}

pub fn inspect(sock: &Path, id: &str) -> Value {
    call(
        sock,
        "GET",
        &format!("/v1.41/containers/{id}/json"),
        None,
        200,
    )
    .1
}

fn sandbox_of(sock: &Path, id: &str) -> PathBuf {
    PathBuf::from(
        inspect(sock, id)["NetworkSettings"]["SandboxKey"]
            .as_str()
            .unwrap(),
    )
}

fn ip_on(sock: &Path, id: &str, net: &str) -> String {
    inspect(sock, id)["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

pub fn remove(sock: &Path, id: &str) {
    call(
        sock,
        "DELETE",
        &format!("/v1.41/containers/{id}?force=1"),
        None,
        204,
    );
}

/// Asks 127.0.0.11 for `name` from inside `netns` until an A answer comes (≤ 10 s); the
/// answer, or None.
fn first_answer(netns: &Path, name: &str) -> Option<Vec<String>> {
    let name = name.to_string();
    in_netns(netns, move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            let q = query(&name);
            s.send_to(&q, "127.0.0.11:53").unwrap();
            if let Ok((n, _)) = s.recv_from(&mut buf) {
                if buf[..2] != q[..2] {
                    continue;
                }
                let r = read_reply(&buf[..n]);
                if !r.answers.is_empty() {
                    return Some(r.answers);
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    })
}

/// Background process killed when dropped.
struct Bg(std::process::Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn iperf_server(netns: &Path) -> Bg {
    let c = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["--", "iperf3", "-s", "-p", "5201"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 server");
    std::thread::sleep(Duration::from_millis(400));
    Bg(c)
}

fn iperf_gbps(netns: &Path, to: &str) -> Result<f64, String> {
    let o = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args([
            "--", "iperf3", "-c", to, "-p", "5201", "-t", "4", "-O", "1", "-J",
        ])
        .output()
        .expect("iperf3 (apt-get install iperf3)");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .map(|b| b / 1e9)
        .ok_or_else(|| {
            format!(
                "iperf3 to {to:?}: {}{}",
                v["error"]
                    .as_str()
                    .unwrap_or(&String::from_utf8_lossy(&o.stdout)),
                String::from_utf8_lossy(&o.stderr)
            )
        })
}

/// The median of three iperf3 runs from `netns` to `to`.
fn iperf3x(netns: &Path, to: &str) -> Result<f64, String> {
    let v = (0..3)
        .map(|_| iperf_gbps(netns, to))
        .collect::<Result<Vec<f64>, String>>()?;
    Ok(median3(v))
}

fn median3(mut v: Vec<f64>) -> f64 {
    pct(&mut v, 0.5)
}

/// What one side's latency part measured (samples in ms), for the side-by-side table.
#[derive(Default)]
pub struct Numbers {
    pub create: Vec<f64>,
    pub rm: Vec<f64>,
    pub run: Vec<f64>,
    /// Delays until the name answered on another host; `name_missed` runs never answered (10 s).
    pub name: Vec<f64>,
    pub name_missed: usize,
    pub connect: Vec<f64>,
    pub disconnect: Vec<f64>,
    /// iperf3 (overlay, underlay) in Gbit/s.
    pub iperf: Option<(f64, f64)>,
    /// Calls that failed, by operation: (how many, the first error, the last one). A failed
    /// call is counted and the run goes on (Docker 20.10 in classic mode fails some, see
    /// overlay_docker.rs).
    pub failed: std::collections::BTreeMap<&'static str, (usize, String, String)>,
}

impl Numbers {
    fn fail(&mut self, what: &'static str, e: String) {
        let f = self
            .failed
            .entry(what)
            .or_insert((0, String::new(), String::new()));
        if f.0 == 0 {
            println!("  {what} failed: {e}");
            f.1 = e.clone();
        }
        f.0 += 1;
        f.2 = e;
    }
}

/// A 3-host lab as the measuring code sees it: the Engine API socket of every host, the host
/// namespaces (for the underlay iperf3) and their underlay addresses, and how to enter a
/// container's network namespace.
pub struct Target<'a> {
    pub socks: Vec<PathBuf>,
    pub host_ns: Vec<PathBuf>,
    pub host_ip: Vec<String>,
    pub netns_of: &'a dyn Fn(&Path, &str) -> PathBuf,
}

/// Parts 1 to 3 on `t` (the busybox image already there on every host), `n` samples each;
/// prints as it goes and returns the samples.
pub fn measure(t: &Target, n: usize) -> Numbers {
    let socks = &t.socks;
    let mut out = Numbers::default();

    // 1a. network create -d overlay (and rm), round robin over the hosts
    for i in 0..n {
        let s = &socks[i % 3];
        let body = json!({"Name": format!("ovb{i}"), "CheckDuplicate": true, "Driver": "overlay"});
        let id = match try_call(s, "POST", "/v1.41/networks/create", Some(&body), 201) {
            Ok((t, v)) => {
                out.create.push(t);
                v["Id"].as_str().unwrap_or_default().to_string()
            }
            Err(e) => {
                out.fail("network create", e);
                continue;
            }
        };
        let s2 = &socks[(i + 1) % 3];
        // rm from another host, once it knows the network
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match try_call(s2, "DELETE", &format!("/v1.41/networks/{id}"), None, 204) {
                Ok((t, _)) => {
                    out.rm.push(t);
                    break;
                }
                Err(e) if Instant::now() > deadline => {
                    out.fail("network rm", e);
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
    report("network create -d overlay", &mut out.create);
    report("network rm (overlay, from another host)", &mut out.rm);

    // 1b. run on an overlay; 2. name delay on another host
    let body = json!({"Name": "bench", "CheckDuplicate": true, "Driver": "overlay"});
    if let Err(e) = try_call(
        &socks[0],
        "POST",
        "/v1.41/networks/create",
        Some(&body),
        201,
    ) {
        out.fail("network create", e);
        return out;
    }
    std::thread::sleep(Duration::from_millis(500));
    let prober = match try_run_on(&socks[0], "prober", "bench") {
        Ok((id, _)) => id,
        Err(e) => {
            out.fail("run", e);
            return out;
        }
    };
    let probe_ns = (t.netns_of)(&socks[0], &prober);
    let mut started = Vec::new();
    for i in 0..n {
        let name = format!("r{i}");
        let (id, took) = match try_run_on(&socks[1], &name, "bench") {
            Ok(x) => x,
            Err(e) => {
                out.fail("run", e);
                continue;
            }
        };
        let t0 = Instant::now();
        let ans = first_answer(&probe_ns, &name);
        let d = ms(t0.elapsed());
        out.run.push(took);
        match ans {
            Some(a) => {
                let ip = ip_on(&socks[1], &id, "bench");
                assert_eq!(a, [ip], "{name}");
                out.name.push(d);
            }
            None => {
                println!("  {name}: no answer on host 0 within 10 s");
                out.name_missed += 1;
            }
        }
        started.push(id);
    }
    report("run on an overlay (create + start)", &mut out.run);
    if !out.name.is_empty() {
        report("name answers on another host after start", &mut out.name);
    }
    for id in &started {
        let path = format!("/v1.41/containers/{id}?force=1");
        if let Err(e) = try_call(&socks[1], "DELETE", &path, None, 204) {
            out.fail("container rm", e);
        }
    }

    // 1c. connect / disconnect a running container (bridge) to the overlay, on host 2
    let target = match try_run_on(&socks[2], "target", "bridge") {
        Ok((id, _)) => id,
        Err(e) => {
            out.fail("run", e);
            return out;
        }
    };
    let gap = Duration::from_millis(env("BENCH_OVERLAY_GAP_MS", 0) as u64);
    for _ in 0..n {
        std::thread::sleep(gap);
        let body = json!({"Container": target});
        match try_call(
            &socks[2],
            "POST",
            "/v1.41/networks/bench/connect",
            Some(&body),
            200,
        ) {
            Ok((t, _)) => out.connect.push(t),
            Err(e) => out.fail("network connect", e),
        }
        match try_call(
            &socks[2],
            "POST",
            "/v1.41/networks/bench/disconnect",
            Some(&body),
            200,
        ) {
            Ok((t, _)) => out.disconnect.push(t),
            Err(e) => out.fail("network disconnect", e),
        }
    }
    report("network connect (overlay)", &mut out.connect);
    report("network disconnect (overlay)", &mut out.disconnect);

    // 3. iperf3: overlay vs underlay, hosts 1 → 2
    if Command::new("iperf3").arg("--version").output().is_err() {
        println!("iperf3 not installed: throughput not measured");
        return out;
    }
    let pair = try_run_on(&socks[2], "iperf-srv", "bench")
        .and_then(|(srv, _)| Ok((srv, try_run_on(&socks[1], "iperf-cli", "bench")?.0)));
    let (srv, cli) = match pair {
        Ok(p) => p,
        Err(e) => {
            println!("iperf3 not measured:");
            out.fail("run", e);
            return out;
        }
    };
    let srv_ip = ip_on(&socks[2], &srv, "bench");
    let (srv_ns, cli_ns) = ((t.netns_of)(&socks[2], &srv), (t.netns_of)(&socks[1], &cli));
    let overlay = {
        let _s = iperf_server(&srv_ns);
        iperf3x(&cli_ns, &srv_ip)
    };
    let underlay = {
        let _s = iperf_server(&t.host_ns[2]);
        iperf3x(&t.host_ns[1], &t.host_ip[2])
    };
    let (overlay, underlay) = match (overlay, underlay) {
        (Ok(o), Ok(u)) => (o, u),
        (Err(e), _) | (_, Err(e)) => {
            println!("iperf3 not measured:");
            out.fail("iperf3", e);
            return out;
        }
    };
    println!(
        "iperf3 TCP host 1 → host 2: overlay {overlay:.2} Gbit/s, underlay {underlay:.2} Gbit/s, ratio {:.2}",
        overlay / underlay
    );
    out.iperf = Some((overlay, underlay));
    out
}

pub fn run() {
    let n = env("BENCH_OVERLAY_N", 40);
    let c = Cluster::with(ClusterOpts {
        hosts: 3,
        ttl: 10,
        ..ClusterOpts::default()
    });
    let socks: Vec<PathBuf> = c.hosts.iter().map(|h| h.sock()).collect();
    println!(
        "overlay: 3 hosts, etcd {} in the lab, lease TTL 10 s",
        c.etcd_get("/version").map(|(_, b)| b).unwrap_or_else(|e| e)
    );
    // the busybox image is made on first use on each host: not measured
    for s in &socks {
        let (id, _) = run_on(s, "warmup", "bridge");
        remove(s, &id);
    }
    let berth = measure(
        &Target {
            socks: socks.clone(),
            host_ns: (0..3)
                .map(|i| PathBuf::from(format!("/run/netns/{}", c.host(i).ns)))
                .collect(),
            host_ip: (0..3).map(|i| c.host_ip(i)).collect(),
            netns_of: &sandbox_of,
        },
        n,
    );
    for (i, h) in c.hosts.iter().enumerate() {
        if let Some(pid) = h.pid() {
            println!(
                "berthd RSS on host {i}: {:.1} MB",
                rss_kb(pid) as f64 / 1024.0
            );
        }
    }
    drop(c);

    // the peer, same run, same machine, same kind of lab
    let docker = crate::overlay_docker::run(n);
    side_by_side(berth, docker);

    scale();
}

/// `berth-bench overlay-docker`: only Docker's side of parts 1 to 3.
pub fn run_docker_only() {
    if let Err(why) = crate::overlay_docker::run(env("BENCH_OVERLAY_N", 40)) {
        println!("Docker not measured: {why}");
    }
}

/// The berth and Docker numbers of parts 1 to 3 next to each other.
fn side_by_side(mut b: Numbers, d: Result<Numbers, String>) {
    println!("overlay, berth vs Docker 20.10 classic mode (same run, same machine, same lab):");
    let mut d = match d {
        Ok(d) => d,
        Err(why) => {
            println!("  Docker not measured: {why}");
            return;
        }
    };
    let cell = |v: &mut Vec<f64>| {
        if v.is_empty() {
            "—".to_string()
        } else {
            format!("{:.1} / {:.1}", pct(v, 0.5), pct(v, 0.99))
        }
    };
    println!("  {:<42} {:>20} {:>20}", "p50 / p99 ms", "berth", "Docker");
    let rows: [(&str, &mut Vec<f64>, &mut Vec<f64>); 6] = [
        ("network create -d overlay", &mut b.create, &mut d.create),
        ("network rm (from another host)", &mut b.rm, &mut d.rm),
        ("run on an overlay (create + start)", &mut b.run, &mut d.run),
        ("name answers on another host", &mut b.name, &mut d.name),
        ("network connect (overlay)", &mut b.connect, &mut d.connect),
        (
            "network disconnect (overlay)",
            &mut b.disconnect,
            &mut d.disconnect,
        ),
    ];
    for (what, x, y) in rows {
        println!("  {what:<42} {:>20} {:>20}", cell(x), cell(y));
    }
    if b.name_missed + d.name_missed > 0 {
        println!(
            "  names never answered within 10 s: berth {}, Docker {}",
            b.name_missed, d.name_missed
        );
    }
    for (who, x) in [("berth", &b), ("Docker", &d)] {
        let f: Vec<String> = x
            .failed
            .iter()
            .map(|(what, (k, first, last))| {
                if k > &1 && first != last {
                    format!("{what} ×{k} (first: {first}; last: {last})")
                } else {
                    format!("{what} ×{k} ({first})")
                }
            })
            .collect();
        if !f.is_empty() {
            println!("  failed calls, {who}: {}", f.join("; "));
        }
    }
    let ratio = |i: Option<(f64, f64)>| {
        i.map(|(o, u)| format!("{o:.2}/{u:.2} = {:.2}", o / u))
            .unwrap_or_else(|| "—".into())
    };
    println!(
        "  {:<42} {:>20} {:>20}",
        "iperf3 overlay/underlay Gbit/s",
        ratio(b.iperf),
        ratio(d.iperf)
    );
}

/// Control-plane scale: hosts × endpoints in a burst, time to convergence.
fn scale() {
    let hosts = env("BENCH_OVERLAY_HOSTS", 10).max(2);
    let endpoints = env("BENCH_OVERLAY_ENDPOINTS", 200).max(hosts);
    if hosts < 50 || endpoints < 1000 {
        println!(
            "scale run: {hosts} hosts × {endpoints} endpoints (smaller than the issue's 50 × 1,000, \
             which means 1,000 runc containers on this machine; BENCH_OVERLAY_HOSTS=50 \
             BENCH_OVERLAY_ENDPOINTS=1000 for it)"
        );
    } else {
        println!("scale run: {hosts} hosts × {endpoints} endpoints");
    }
    let t = Instant::now();
    let c = Cluster::with(ClusterOpts {
        hosts,
        ttl: 10,
        ..ClusterOpts::default()
    });
    println!("  {hosts} hosts up in {:.1} s", t.elapsed().as_secs_f64());
    let socks: Vec<PathBuf> = c.hosts.iter().map(|h| h.sock()).collect();
    // room for every endpoint and probe (the default /24 holds 253)
    let prefix = 32
        - (endpoints + hosts + 8)
            .next_power_of_two()
            .trailing_zeros()
            .max(8);
    let body = json!({"Name": "scale", "CheckDuplicate": true, "Driver": "overlay",
        "IPAM": {"Config": [{"Subnet": format!("10.200.0.0/{prefix}")}]}});
    let (_, v) = call(
        &socks[0],
        "POST",
        "/v1.41/networks/create",
        Some(&body),
        201,
    );
    let net_id = v["Id"].as_str().unwrap().to_string();
    // one resident container per host (its DNS view is checked), image warm-up included
    let mut probes = Vec::new();
    for (i, s) in socks.iter().enumerate() {
        let (id, _) = run_on(s, &format!("probe{i}"), "scale");
        probes.push(sandbox_of(s, &id));
    }
    let rss0: Vec<u64> = c.hosts.iter().filter_map(|h| h.pid()).map(rss_kb).collect();
    let req0 = c.etcd_requests();

    // the burst: one thread per host, its share of the endpoints as fast as it goes
    let per: Vec<usize> = (0..hosts)
        .map(|i| endpoints / hosts + usize::from(i < endpoints % hosts))
        .collect();
    let t0 = Instant::now();
    let names: Vec<Vec<String>> = std::thread::scope(|s| {
        let hs: Vec<_> = socks
            .iter()
            .enumerate()
            .map(|(i, sock)| {
                let k = per[i];
                s.spawn(move || {
                    (0..k)
                        .map(|j| {
                            let name = format!("e{i}x{j}");
                            run_on(sock, &name, "scale");
                            name
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let burst = t0.elapsed();
    println!(
        "  {endpoints} endpoints started in {:.1} s ({:.0} per second)",
        burst.as_secs_f64(),
        endpoints as f64 / burst.as_secs_f64()
    );

    // converged: on every host, FDB and neighbour entries for every remote endpoint (including
    // the other hosts' probes), and every name answering from the host's probe
    let total_remote = |i: usize| (endpoints - per[i]) + (hosts - 1);
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut done = vec![false; hosts];
    while done.iter().any(|d| !d) && Instant::now() < deadline {
        for i in 0..hosts {
            if done[i] {
                continue;
            }
            let Some(ns) = kernel::overlay_ns(c.host(i), &net_id) else {
                continue;
            };
            if kernel::vxlan_fdb(&ns).len() < total_remote(i)
                || kernel::vxlan_neigh(&ns).len() < total_remote(i)
            {
                continue;
            }
            let all: Vec<String> = names.iter().flatten().cloned().collect();
            let probe = probes[i].clone();
            done[i] = in_netns(&probe, move || {
                let s = UdpSocket::bind("0.0.0.0:0").unwrap();
                s.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                let mut buf = [0u8; 1500];
                all.iter().all(|name| {
                    let q = query(name);
                    s.send_to(&q, "127.0.0.11:53").unwrap();
                    matches!(s.recv_from(&mut buf), Ok((n, _)) if !read_reply(&buf[..n]).answers.is_empty())
                })
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let conv = t0.elapsed();
    let converged = done.iter().filter(|d| **d).count();
    println!(
        "  converged (FDB + neighbours + DNS) on {converged}/{hosts} hosts {:.1} s after the burst began ({:.1} s after it ended)",
        conv.as_secs_f64(),
        conv.saturating_sub(burst).as_secs_f64()
    );
    if let (Some(a), Some(b)) = (req0, c.etcd_requests()) {
        println!(
            "  etcd gRPC requests handled during the burst: {} ({:.1} per endpoint; includes keepalives and reads)",
            b - a,
            (b - a) as f64 / endpoints as f64
        );
    }
    let rss: Vec<u64> = c.hosts.iter().filter_map(|h| h.pid()).map(rss_kb).collect();
    let avg = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64 / 1024.0;
    println!(
        "  berthd RSS per host: before {:.1} MB, after {:.1} MB (max {:.1} MB)",
        avg(&rss0),
        avg(&rss),
        rss.iter().max().copied().unwrap_or(0) as f64 / 1024.0
    );
}
