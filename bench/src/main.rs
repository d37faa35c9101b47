//! Benchmarks through the Engine API, against a berthd in a lab namespace and, when one
//! answers on /var/run/docker.sock, against Docker with the same calls (`overlay` and
//! `plugins` start their own Docker in a lab namespace instead: docker_host.rs).
//!
//! Build the daemon first (`cargo build --release`), then
//! `cargo run --release -p berth-bench [networks|containers|dns|compose|ports|overlay|diagnose|plugins|dockerpy|soak]`
//! (all but `dockerpy` and `soak` by default; `overlay-docker`: only Docker's side of the overlay
//! run; `soak`: the soak, BENCH_SOAK_*).
//! BERTHD_BIN overrides the daemon binary; BENCH_NETWORKS the scale run (default 4096);
//! BENCH_OVERLAY_* the overlay runs (see overlay.rs).

mod compose;
mod containers;
mod diagnose;
mod dns;
mod docker_host;
mod dockerpy;
mod networks;
mod overlay;
mod overlay_docker;
mod plugins;
mod plugins_docker;
mod ports;
mod soak;

use berth_e2e::http::request;
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// A numeric knob from the environment.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The q-quantile (0..=1) of `v` (sorted here).
pub fn pct(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}

/// One latency row: p50 and p99 of the samples.
pub fn report(what: &str, v: &mut [f64]) {
    if v.is_empty() {
        println!("{what:<44} no sample");
        return;
    }
    println!(
        "{what:<44} p50 {:>8.2} ms   p99 {:>8.2} ms   (n={})",
        pct(v, 0.5),
        pct(v, 0.99),
        v.len()
    );
}

/// One call, timed, with its JSON reply; panics on an unexpected status.
pub fn call(
    sock: &Path,
    method: &str,
    path: &str,
    body: Option<&Value>,
    want: u16,
) -> (f64, Value) {
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
    let t = Instant::now();
    let r = request(
        sock,
        method,
        path,
        &[("Content-Type", "application/json")],
        bytes.as_deref(),
    )
    .expect("request");
    let took = ms(t.elapsed());
    assert_eq!(r.status, want, "{method} {path}: {}", r.text());
    (took, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

/// One call, timed; panics on an unexpected status.
pub fn timed(sock: &Path, method: &str, path: &str, body: Option<&Value>, want: u16) -> f64 {
    call(sock, method, path, body, want).0
}

fn main() {
    if std::env::var_os("BERTHD_BIN").is_none() {
        let exe = std::env::current_exe().unwrap();
        let release = exe.parent().unwrap().join("berthd");
        std::env::set_var("BERTHD_BIN", release);
    }
    let what = std::env::args().nth(1).unwrap_or_default();
    if what.is_empty() || what == "containers" {
        containers::run();
    }
    if what.is_empty() || what == "networks" {
        networks::run();
    }
    if what.is_empty() || what == "dns" {
        dns::run();
    }
    if what.is_empty() || what == "compose" {
        compose::run();
    }
    if what.is_empty() || what == "ports" {
        ports::run();
    }
    if what.is_empty() || what == "plugins" {
        plugins::run();
    }
    if what.is_empty() || what == "diagnose" {
        diagnose::run();
    }
    if what.is_empty() || what == "overlay" {
        overlay::run();
    }
    if what == "dockerpy" {
        dockerpy::run();
    }
    if what == "soak" {
        soak::run();
    }
    if what == "overlay-docker" {
        overlay::run_docker_only();
    }
}
