//! Issue 6: `compose up -d` of 20 services on 3 networks, then `down`, through `berth compose`
//! and through the real docker-compose 1.29.2 against berthd (and against Docker when one
//! answers on /var/run/docker.sock). Wall-clock time of the whole command, median of 3.

use crate::median;
use crate::networks::docker_sock;
use berth_e2e::compose::{docker_compose_bin, Project, Tool};
use berth_e2e::{Lab, OutputExt};
use std::process::Command;
use std::time::Instant;

const SERVICES: usize = 20;
const RUNS: usize = 3;

/// 20 services on `front`, `back` and `data`: each on one network, every other one on a
/// second; each depends on the one before it in its group of five (so there are waves).
pub fn file() -> String {
    let nets = ["front", "back", "data"];
    let mut s = String::from("version: \"3.8\"\nservices:\n");
    for i in 0..SERVICES {
        s += &format!("  s{i}:\n    image: busybox\n");
        // exits at once on SIGTERM, so `down` measures the work, not a stop timeout
        s += "    command: sh -c 'trap \"exit 0\" TERM; sleep 3600 & wait'\n";
        s += &format!("    networks: [{}", nets[i % 3]);
        if i % 2 == 1 {
            s += &format!(", {}", nets[(i + 1) % 3]);
        }
        s += "]\n";
        if i % 5 != 0 {
            s += &format!("    depends_on: [s{}]\n", i - 1);
        }
    }
    s += "networks:\n  front: {}\n  back: {}\n  data: {}\n";
    s
}

fn timed(p: &Project, args: &[&str]) -> f64 {
    let t = Instant::now();
    let o = p.run(args);
    let took = t.elapsed().as_secs_f64();
    o.ok();
    took
}

fn running(lab: &Lab) -> usize {
    let out = lab.cli(&["ps", "-q"]).ok();
    out.lines().count()
}

/// Median up and down times of `tool` against the lab's daemon.
fn measure(lab: &Lab, tool: Tool) -> (f64, f64) {
    let p = Project::new(lab, tool, "bench", &[("docker-compose.yml", &file())]);
    let (mut ups, mut downs) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        ups.push(timed(&p, &["up", "-d"]));
        assert_eq!(running(lab), SERVICES, "{tool:?}: all services up");
        downs.push(timed(&p, &["down"]));
        assert_eq!(running(lab), 0, "{tool:?}: all gone");
    }
    (median(&mut ups), median(&mut downs))
}

/// The same file through docker-compose against Docker itself.
fn docker_reference() -> Option<(f64, f64)> {
    docker_sock()?;
    let dir = tempfile_dir();
    std::fs::write(dir.join("docker-compose.yml"), file()).ok()?;
    let run = |args: &[&str]| {
        let t = Instant::now();
        let o = Command::new(docker_compose_bin())
            .args(args)
            .current_dir(&dir)
            .env("DOCKER_HOST", "unix:///var/run/docker.sock")
            .output()
            .ok()?;
        o.status.success().then(|| t.elapsed().as_secs_f64())
    };
    let (mut ups, mut downs) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        ups.push(run(&["up", "-d"])?);
        downs.push(run(&["down"])?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Some((median(&mut ups), median(&mut downs)))
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn run() {
    let lab = Lab::start();
    let (bu, bd) = measure(&lab, Tool::Berth);
    let (du, dd) = measure(&lab, Tool::DockerCompose);
    println!(
        "compose: {SERVICES} services on 3 networks, median of {RUNS} (wall clock of the command)"
    );
    println!("  berth compose  → berthd: up -d {bu:.2} s, down {bd:.2} s");
    println!("  docker-compose → berthd: up -d {du:.2} s, down {dd:.2} s");
    match docker_reference() {
        Some((u, d)) => println!("  docker-compose → Docker: up -d {u:.2} s, down {d:.2} s"),
        None => println!("  docker-compose → Docker: no Docker daemon answering, not measured"),
    }
}
