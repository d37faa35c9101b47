//! Embedded DNS throughput and latency: dnsperf (Debian `dnsperf`) from inside a container's
//! namespace against 127.0.0.11, 4 clients, 10 s, local names only; then aardvark-dns (when
//! installed: `cargo install aardvark-dns`) serving the same names in a namespace of its own,
//! measured the same way. Docker's 127.0.0.11 is measured the same way where Docker runs.
//!
//! dnsperf 2.10 prints no percentiles, so each run is made twice: once plain for the rate and
//! losses, once with `-v` (one line per query with its latency) for the distribution. The
//! second run's numbers include dnsperf's own printing, so they are an upper bound.

use berth_e2e::Lab;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

const SECONDS: &str = "10";
const CLIENTS: &str = "4";
/// Queries in flight across the clients (dnsperf's default is 100).
const OUTSTANDING: &str = "64";

struct Perf {
    /// CPU time of dnsperf per answer.
    client_us: f64,
    /// CPU time of the server per answer, when its pid is known.
    cpu_us: Option<f64>,
    qps: f64,
    lost: u64,
    sent: u64,
    mean_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn dnsperf(netns: &Path, server: &str, src: Option<&str>, data: &Path, verbose: bool) -> String {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", netns.display()))
        .args(["--", "dnsperf", "-s", server, "-d"])
        .arg(data)
        .args(["-c", CLIENTS, "-l", SECONDS, "-q", OUTSTANDING, "-t", "2"]);
    if let Some(a) = src {
        cmd.args(["-a", a]);
    }
    if verbose {
        cmd.arg("-v");
    }
    let out = cmd.output().expect("run dnsperf (apt-get install dnsperf)");
    assert!(
        out.status.success(),
        "dnsperf: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn field(out: &str, key: &str) -> f64 {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key:?} in dnsperf output:\n{out}"))
}

/// CPU seconds used by the children that were waited for (dnsperf).
fn children_cpu() -> f64 {
    // SAFETY: rusage is plain data, for which all zeroes is a valid value.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// utime + stime of a process, in clock ticks (100 per second).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = s.rsplit(')').next()?.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn measure(netns: &Path, server: &str, src: Option<&str>, data: &Path, pid: Option<u32>) -> Perf {
    let before = pid.and_then(cpu_ticks);
    let client0 = children_cpu();
    let plain = dnsperf(netns, server, src, data, false);
    let client_s = children_cpu() - client0;
    let after = pid.and_then(cpu_ticks);
    let verbose = dnsperf(netns, server, src, data, true);
    // per-query lines: "> NOERROR name A 0.000123"
    let mut lat: Vec<f64> = verbose
        .lines()
        .filter(|l| l.starts_with("> "))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .collect();
    assert!(!lat.is_empty(), "dnsperf -v printed no per-query lines");
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] * 1000.0;
    let answered = field(&plain, "Queries completed:");
    Perf {
        client_us: client_s * 1e6 / answered,
        cpu_us: before
            .zip(after)
            .map(|(b, a)| (a - b) as f64 * 10_000.0 / answered),
        qps: field(&plain, "Queries per second:"),
        sent: field(&plain, "Queries sent:") as u64,
        lost: field(&plain, "Queries lost:") as u64,
        mean_ms: field(&plain, "Average Latency (s):") * 1000.0,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

fn print(label: &str, p: &Perf) {
    let cpu = p
        .cpu_us
        .map(|c| {
            format!(
                "  CPU/answer: server {c:.2} µs, dnsperf {:.2} µs",
                p.client_us
            )
        })
        .unwrap_or_default();
    println!(
        "{label:<20} {:>7.0} answers/s  mean {:.3} ms  p50 {:.3} ms  p99 {:.3} ms  lost {}/{}{cpu}",
        p.qps, p.mean_ms, p.p50_ms, p.p99_ms, p.lost, p.sent
    );
}

/// aardvark-dns serving `names` (name → address) for network `appnet` at 10.250.0.1 in a
/// namespace of its own; dnsperf asks from 10.250.0.9, a "container" of that network.
fn aardvark(bin: &Path, names: &[(String, String)], data: &Path) -> Option<Perf> {
    let ns = format!("berthbench-aard-{}", std::process::id());
    let sh = |s: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(s)
            .status()
            .unwrap()
            .success()
    };
    assert!(sh(&format!(
        "ip netns add {ns} && ip -n {ns} link set lo up && ip -n {ns} link add br0 type bridge && \
         ip -n {ns} addr add 10.250.0.1/24 dev br0 && ip -n {ns} addr add 10.250.0.9/24 dev br0 && \
         ip -n {ns} link set br0 up"
    )));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("aardvark-dns");
    std::fs::create_dir_all(&cfg).unwrap();
    let mut file = String::from("10.250.0.1\n");
    for (k, (name, ip)) in names.iter().enumerate() {
        file += &format!("{:064x} {ip}  {name}\n", k + 1);
    }
    file += &format!("{:064x} 10.250.0.9  client\n", names.len() + 1);
    std::fs::write(cfg.join("appnet"), file).unwrap();
    let netns = PathBuf::from(format!("/run/netns/{ns}"));
    let started = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .arg("--")
        .arg(bin)
        .arg("--config")
        .arg(&cfg)
        .args(["-p", "53", "run"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let pid = std::fs::read_to_string(cfg.join("aardvark.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok());
    let perf = started.then(|| measure(&netns, "10.250.0.1", Some("10.250.0.9"), data, pid));
    if let Some(pid) = pid {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    sh(&format!("ip netns del {ns}"));
    perf
}

pub fn run() {
    let lab = Lab::start();
    let sock = lab.sock();
    let api = |m: &str, p: &str, b: serde_json::Value, want: u16| {
        crate::call(&sock, m, p, Some(&b), want).1
    };
    api("POST", "/networks/create", json!({"Name": "appnet"}), 201);
    let mut names = Vec::new();
    let mut client = PathBuf::new();
    for name in ["db", "web1", "web2", "cache", "client"] {
        let body = json!({
            "Image": "busybox", "Cmd": ["sleep", "1d"],
            "HostConfig": {"NetworkMode": "appnet"},
        });
        let id = api(
            "POST",
            &format!("/containers/create?name={name}"),
            body,
            201,
        )["Id"]
            .as_str()
            .unwrap()
            .to_string();
        api("POST", &format!("/containers/{id}/start"), json!({}), 204);
        let v = lab.api("GET", &format!("/containers/{id}/json"), None).1;
        let ip = v["NetworkSettings"]["Networks"]["appnet"]["IPAddress"]
            .as_str()
            .unwrap()
            .to_string();
        if name == "client" {
            client = PathBuf::from(v["NetworkSettings"]["SandboxKey"].as_str().unwrap());
        } else {
            names.push((name.to_string(), ip));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("queries");
    let lines: String = names.iter().map(|(n, _)| format!("{n} A\n")).collect();
    std::fs::write(&data, lines).unwrap();

    println!("== embedded DNS: dnsperf -c {CLIENTS} -l {SECONDS} -q {OUTSTANDING}, local names ==");
    let ours = measure(&client, "127.0.0.11", None, &data, lab.pid());
    print("berth 127.0.0.11", &ours);
    let rss = lab
        .pid()
        .and_then(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .unwrap_or_default();
    println!("berthd RSS after the run: {rss} kB");
    let aard_bin = std::env::var_os("AARDVARK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/aardvark/bin/aardvark-dns"));
    if aard_bin.exists() {
        match aardvark(&aard_bin, &names, &data) {
            Some(a) => {
                print("aardvark-dns", &a);
                println!(
                    "berth / aardvark-dns: {:.2}x answers/s, {:.2}x mean latency",
                    ours.qps / a.qps,
                    ours.mean_ms / a.mean_ms
                );
            }
            None => println!("aardvark-dns did not start"),
        }
    } else {
        println!(
            "aardvark-dns not installed ({}): skipped",
            aard_bin.display()
        );
    }
    if Path::new("/var/run/docker.sock").exists() {
        println!("Docker is running: measure its 127.0.0.11 with the same dnsperf line");
    } else {
        println!(
            "Docker not installed; reference (docker-facts.md): 45.6k answers/s, 1.75 ms mean \
             → berth {:.2}x",
            ours.qps / 45_600.0
        );
    }
}
