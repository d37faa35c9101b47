//! Issue 2: networks at scale.

use crate::{median, ms, timed};
use berth_e2e::http::request;
use berth_e2e::Lab;
use serde_json::json;
use std::path::Path;
use std::time::Instant;

struct CreateRm {
    create: f64,
    rm: f64,
}

/// Median create and rm over `n` networks with explicit subnets (as Docker's measurements did).
fn create_rm(sock: &Path, prefix: &str, n: usize) -> CreateRm {
    let (mut c, mut r) = (Vec::new(), Vec::new());
    for i in 0..n {
        let body = json!({"Name": format!("{prefix}{i}"), "CheckDuplicate": true,
            "IPAM": {"Config": [{"Subnet": format!("10.250.{i}.0/24")}]}});
        c.push(timed(
            sock,
            "POST",
            "/v1.41/networks/create",
            Some(&body),
            201,
        ));
    }
    for i in 0..n {
        r.push(timed(
            sock,
            "DELETE",
            &format!("/v1.41/networks/{prefix}{i}"),
            None,
            204,
        ));
    }
    CreateRm {
        create: median(&mut c),
        rm: median(&mut r),
    }
}

pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub fn docker_sock() -> Option<&'static Path> {
    let p = Path::new("/var/run/docker.sock");
    request(p, "GET", "/_ping", &[], None)
        .ok()
        .filter(|r| r.status == 200)
        .map(|_| p)
}

pub fn run() {
    let scale: usize = std::env::var("BENCH_NETWORKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4096);
    let mut lab = Lab::start();
    let sock = lab.sock();
    let pid = lab.pid().expect("daemon pid");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let idle_rss = rss_kb(pid);

    let berth = create_rm(&sock, "bench", 50);
    println!("network create (median of 50): {:.2} ms", berth.create);
    println!("network rm     (median of 50): {:.2} ms", berth.rm);
    println!("idle berthd RSS: {:.1} MB", idle_rss as f64 / 1024.0);

    // Scale: auto-allocated subnets, every creation timed.
    let mut lat = Vec::with_capacity(scale);
    for i in 0..scale {
        let body = json!({"Name": format!("scale{i}"), "CheckDuplicate": true});
        lat.push(timed(
            &sock,
            "POST",
            "/v1.41/networks/create",
            Some(&body),
            201,
        ));
    }
    // Medians of a window around the 10th and the 1000th, so one scheduler hiccup does not
    // decide the ratio.
    let around =
        |k: usize| median(&mut lat[k.saturating_sub(10)..(k + 10).min(lat.len())].to_vec());
    let (tenth, thousandth) = (around(10), around(1000.min(scale - 1)));
    let last = around(scale - 11);
    println!(
        "create around the 10th network: {tenth:.2} ms; around the 1000th: {thousandth:.2} ms (ratio {:.2}); around the {scale}th: {last:.2} ms",
        thousandth / tenth
    );
    println!(
        "{scale} networks auto-allocated without exhaustion; last subnet {}",
        lab.subnet_of(&format!("scale{}", scale - 1))
    );
    println!(
        "berthd RSS with {scale} networks: {:.1} MB",
        rss_kb(pid) as f64 / 1024.0
    );

    // Leave the machine quiet: a namespace holding thousands of bridges takes the kernel a
    // long time to destroy, and blocks new namespaces meanwhile.
    let t = Instant::now();
    let r = request(&sock, "POST", "/v1.41/networks/prune", &[], None).expect("prune");
    assert_eq!(r.status, 200, "{}", r.text());
    println!(
        "prune of {scale} networks answered in {:.0} ms (bridges are deleted in the background)",
        ms(t.elapsed())
    );

    match docker_sock() {
        Some(d) => {
            let docker = create_rm(d, "berthbench", 20);
            println!(
                "docker: network create {:.2} ms (berth is {:.1}x faster), rm {:.2} ms ({:.1}x)",
                docker.create,
                docker.create / berth.create,
                docker.rm,
                docker.rm / berth.rm
            );
        }
        None => println!(
            "docker: no daemon on /var/run/docker.sock; reference numbers from shared/reference/docker-facts.md: create 158 ms, rm 220 ms"
        ),
    }
    // The kernel deletes bridges one RCU grace period at a time; rather than wait for berthd
    // to finish, drop the whole namespace and wait until the kernel has destroyed it, so the
    // next run (or test) can create namespaces again.
    lab.kill9();
    drop(lab);
    let t = Instant::now();
    while std::process::Command::new("ip")
        .args(["netns", "add", "berthbench-probe"])
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", "berthbench-probe"])
        .status();
    println!(
        "kernel finished destroying the lab namespace after {:.1} s",
        t.elapsed().as_secs_f64()
    );
}
