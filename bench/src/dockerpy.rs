//! Issue 15: the wall time of docker-py's own integration suites (tag 7.2.0, unchanged) against
//! berthd in a lab namespace and against Docker on /var/run/docker.sock, file by file, with how
//! many tests passed on each. Docker gets the same images (busybox tagged `alpine:3.10` and
//! `alpine:latest`); with no registry reachable, its pull-needing tests fail as berth's do.
//!
//! Docker's side runs the suite's prune tests: it removes the Docker daemon's stopped
//! containers and unused networks. `BENCH_DOCKERPY_DOCKER=0` skips it;
//! `BENCH_DOCKERPY_FILES` picks the files (comma-separated).

use crate::env;
use crate::networks::docker_sock;
use berth_e2e::dockerpy::{run_file, run_file_on, tag_images, Outcome};
use berth_e2e::Lab;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

const FILES: &[&str] = &[
    "api_network_test.py",
    "models_networks_test.py",
    "api_container_test.py",
];

fn counts(o: &BTreeMap<String, Outcome>) -> (usize, usize) {
    let passed = o.values().filter(|x| **x == Outcome::Passed).count();
    (passed, o.len())
}

/// busybox tagged as the suite's images in Docker, imported from the host's busybox as
/// `docker-facts.md` says when Docker has none.
fn docker_images() {
    let has = |r: &str| {
        Command::new("docker")
            .args(["image", "inspect", r])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    // a busybox whose binary is a link to itself (the applet list names `busybox` too) is
    // replaced
    let works = Command::new("docker")
        .args(["run", "--rm", "busybox:latest", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        for t in ["busybox:latest", "alpine:3.10", "alpine:latest"] {
            let _ = Command::new("docker").args(["rmi", "-f", t]).output();
        }
    }
    if !has("busybox:latest") {
        let script = "set -e; bb=$(mktemp -d); mkdir -p $bb/bin; cp /bin/busybox $bb/bin/; \
            for a in $(/bin/busybox --list); do [ $a = busybox ] || ln -sf busybox $bb/bin/$a; done; \
            tar -C $bb -c . | docker import --change 'CMD [\"sh\"]' - busybox:latest; rm -rf $bb";
        let ok = Command::new("sh").args(["-c", script]).status();
        assert!(ok.is_ok_and(|s| s.success()), "docker import of busybox");
    }
    for t in ["alpine:3.10", "alpine:latest"] {
        if !has(t) {
            let ok = Command::new("docker")
                .args(["tag", "busybox:latest", t])
                .status();
            assert!(ok.is_ok_and(|s| s.success()), "docker tag {t}");
        }
    }
}

pub fn run() {
    let files: Vec<String> = match std::env::var("BENCH_DOCKERPY_FILES") {
        Ok(v) => v.split(',').map(str::to_string).collect(),
        Err(_) => FILES.iter().map(|s| s.to_string()).collect(),
    };
    let timeout = Duration::from_secs(1800);
    let lab = Lab::start();
    tag_images(&lab);
    let wanted = env("BENCH_DOCKERPY_DOCKER", 1) == 1;
    let docker = wanted.then(docker_sock).flatten();
    let absent = if wanted {
        "docker: no daemon on /var/run/docker.sock"
    } else {
        "docker: skipped (BENCH_DOCKERPY_DOCKER=0)"
    };
    if docker.is_some() {
        docker_images();
    }
    let work = tempfile::tempdir().unwrap();
    println!("docker-py 7.2.0 integration suites: wall time and tests passed");
    for f in &files {
        let t = Instant::now();
        let b = run_file(&lab, f, timeout);
        let bt = t.elapsed().as_secs_f64();
        let (bp, bn) = counts(&b);
        let theirs = docker.map(|sock| {
            let t = Instant::now();
            let d = run_file_on(
                &format!("unix://{}", sock.display()),
                work.path(),
                f,
                timeout,
            );
            (t.elapsed().as_secs_f64(), counts(&d))
        });
        match theirs {
            Some((dt, (dp, dn))) => println!(
                "{f:<28} berth {bt:>7.1} s ({bp}/{bn} passed)   docker {dt:>7.1} s ({dp}/{dn} passed)"
            ),
            None => println!("{f:<28} berth {bt:>7.1} s ({bp}/{bn} passed)   {absent}"),
        }
    }
}
