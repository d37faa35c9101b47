//! Issue 3: containers and endpoints. Median latencies of connect, disconnect and
//! create+start through the API, parallel vs sequential starts, and RSS with 100 containers.

use crate::networks::{docker_sock, rss_kb};
use crate::{median, ms, timed};
use berth_e2e::Lab;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn create(sock: &Path, name: &str, net: &str) -> (String, f64) {
    let body = json!({"Image": "busybox", "Cmd": ["sleep", "3600"],
        "HostConfig": {"NetworkMode": net}});
    let t = Instant::now();
    let r = berth_e2e::http::request(
        sock,
        "POST",
        &format!("/v1.41/containers/create?name={name}"),
        &[("Content-Type", "application/json")],
        Some(&serde_json::to_vec(&body).unwrap()),
    )
    .expect("create");
    assert_eq!(r.status, 201, "{}", r.text());
    let took = ms(t.elapsed());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    (v["Id"].as_str().unwrap().to_string(), took)
}

fn create_start(sock: &Path, name: &str) -> (String, f64) {
    let (id, c) = create(sock, name, "bridge");
    let s = timed(
        sock,
        "POST",
        &format!("/v1.41/containers/{id}/start"),
        None,
        204,
    );
    (id, c + s)
}

struct Numbers {
    create_start: f64,
    connect: f64,
    disconnect: f64,
}

fn latencies(sock: &Path, prefix: &str, n: usize) -> (Numbers, Vec<String>) {
    let mut cs = Vec::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let (id, t) = create_start(sock, &format!("{prefix}{i}"));
        cs.push(t);
        ids.push(id);
    }
    let net = format!("{prefix}net");
    timed(
        sock,
        "POST",
        "/v1.41/networks/create",
        Some(&json!({"Name": net})),
        201,
    );
    let (mut con, mut dis) = (Vec::new(), Vec::new());
    for id in &ids {
        con.push(timed(
            sock,
            "POST",
            &format!("/v1.41/networks/{net}/connect"),
            Some(&json!({"Container": id})),
            200,
        ));
    }
    for id in &ids {
        dis.push(timed(
            sock,
            "POST",
            &format!("/v1.41/networks/{net}/disconnect"),
            Some(&json!({"Container": id})),
            200,
        ));
    }
    (
        Numbers {
            create_start: median(&mut cs),
            connect: median(&mut con),
            disconnect: median(&mut dis),
        },
        ids,
    )
}

fn remove_all(sock: &Path, ids: &[String]) {
    for id in ids {
        timed(
            sock,
            "DELETE",
            &format!("/v1.41/containers/{id}?force=1"),
            None,
            204,
        );
    }
}

/// Wall time of starting `n` containers one after another, then all at once.
fn parallel(sock: &Path, n: usize) -> (f64, f64) {
    let t = Instant::now();
    let seq: Vec<String> = (0..n)
        .map(|i| create_start(sock, &format!("seq{i}")).0)
        .collect();
    let sequential = ms(t.elapsed());
    remove_all(sock, &seq);
    let t = Instant::now();
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let sock: PathBuf = sock.to_path_buf();
            std::thread::spawn(move || create_start(&sock, &format!("par{i}")).0)
        })
        .collect();
    let par: Vec<String> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    let parallel = ms(t.elapsed());
    remove_all(sock, &par);
    (sequential, parallel)
}

pub fn run() {
    let lab = Lab::start();
    let sock = lab.sock();
    let pid = lab.pid().expect("daemon pid");
    // The built-in busybox image is made on first use: not part of what is measured.
    let (warm, _) = create_start(&sock, "warmup");
    remove_all(&sock, &[warm]);

    let (b, ids) = latencies(&sock, "lat", 25);
    println!(
        "container create+start (median of 25): {:.2} ms",
        b.create_start
    );
    println!("network connect (median of 25): {:.2} ms", b.connect);
    println!("network disconnect (median of 25): {:.2} ms", b.disconnect);
    remove_all(&sock, &ids);

    let (seq, par) = parallel(&sock, 32);
    println!(
        "32 containers: one after another {seq:.0} ms, all at once {par:.0} ms (ratio {:.2})",
        par / seq
    );

    let ids: Vec<String> = (0..100)
        .map(|i| create_start(&sock, &format!("rss{i}")).0)
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    println!(
        "berthd RSS with 100 running containers: {:.1} MB",
        rss_kb(pid) as f64 / 1024.0
    );
    remove_all(&sock, &ids);

    match docker_sock() {
        Some(d) => {
            let (dk, ids) = latencies(d, "berthbench", 20);
            remove_all(d, &ids);
            println!(
                "docker: create+start {:.1} ms ({:.1}x berth), connect {:.1} ms ({:.1}x), disconnect {:.1} ms ({:.1}x)",
                dk.create_start,
                dk.create_start / b.create_start,
                dk.connect,
                dk.connect / b.connect,
                dk.disconnect,
                dk.disconnect / b.disconnect
            );
        }
        None => println!(
            "docker: no daemon on /var/run/docker.sock; reference (docker-facts.md): create+start 528 ms, connect 39 ms, disconnect 57 ms"
        ),
    }
}
