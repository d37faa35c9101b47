//! Containers across daemon restarts and crashes: running containers keep running and are
//! picked up again; a `kill -9` in the middle of parallel connects leaks no veth and hands out
//! no address twice.

use berth_e2e::Lab;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn run(lab: &Lab, name: &str, net: &str) -> String {
    let (st, v) = lab.api(
        "POST",
        &format!("/containers/create?name={name}"),
        Some(json!({"Image": "busybox", "Cmd": ["sleep", "600"], "HostConfig": {"NetworkMode": net}})),
    );
    assert_eq!(st, 201, "{v}");
    let id = v["Id"].as_str().unwrap().to_string();
    let (st, v) = lab.api("POST", &format!("/containers/{id}/start"), None);
    assert_eq!(st, 204, "{v}");
    id
}

fn inspect(lab: &Lab, c: &str) -> Value {
    let (st, v) = lab.api("GET", &format!("/containers/{c}/json"), None);
    assert_eq!(st, 200, "{v}");
    v
}

fn veths(lab: &Lab) -> Vec<String> {
    lab.links()
        .into_iter()
        .filter(|l| l.starts_with("veth"))
        .collect()
}

/// Every address of every running container: (network, ip), asserting none is given twice.
fn addresses(lab: &Lab) -> BTreeSet<(String, String)> {
    let (_, list) = lab.api("GET", "/containers/json", None);
    let mut seen = BTreeSet::new();
    for c in list.as_array().unwrap() {
        for (net, ep) in c["NetworkSettings"]["Networks"].as_object().unwrap() {
            let ip = ep["IPAddress"].as_str().unwrap().to_string();
            if ip.is_empty() {
                continue;
            }
            assert!(
                seen.insert((net.clone(), ip.clone())),
                "{ip} given twice on {net}"
            );
        }
    }
    seen
}

#[test]
fn running_containers_survive_a_daemon_restart() {
    let mut lab = Lab::start();
    lab.create_network(json!({"Name": "app"}));
    let a = run(&lab, "ca", "bridge");
    let b = run(&lab, "cb", "app");
    let pid_a = inspect(&lab, &a)["State"]["Pid"].as_i64().unwrap();
    let ip_b = inspect(&lab, &b)["NetworkSettings"]["Networks"]["app"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    for crash in [false, true] {
        if crash {
            lab.kill9();
            lab.start_again();
        } else {
            lab.restart();
        }
        let ia = inspect(&lab, &a);
        assert_eq!(ia["State"]["Status"], "running", "crash={crash}: {ia}");
        assert_eq!(ia["State"]["Pid"].as_i64().unwrap(), pid_a);
        let ib = inspect(&lab, &b);
        assert_eq!(
            ib["NetworkSettings"]["Networks"]["app"]["IPAddress"], ip_b,
            "address kept: {ib}"
        );
        let net = lab.inspect("app");
        assert!(net["Containers"].get(&b).is_some(), "{net}");
        let out = lab.docker(&["exec", "cb", "ping", "-c1", "-W2", &ip_b]);
        assert!(out.status.success(), "exec after restart: {out:?}");
        assert_eq!(veths(&lab).len(), 2, "{:?}", veths(&lab));
    }
    // A new container after the restart gets a fresh address, not b's.
    let c = run(&lab, "cc", "app");
    let ip_c = inspect(&lab, &c)["NetworkSettings"]["Networks"]["app"]["IPAddress"].clone();
    assert_ne!(ip_c, json!(ip_b));
    // Stopping a container started by the previous daemon works and releases its endpoint.
    let (st, _) = lab.api("POST", &format!("/containers/{b}/stop?t=0"), None);
    assert_eq!(st, 204);
    assert_eq!(inspect(&lab, &b)["State"]["Status"], "exited");
    assert!(lab.inspect("app")["Containers"].get(&b).is_none());
    for id in [&a, &b, &c] {
        let (st, v) = lab.api("DELETE", &format!("/containers/{id}?force=1"), None);
        assert_eq!(st, 204, "{v}");
    }
    let left = lab.veths_left();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn kill9_during_parallel_connects_leaks_nothing() {
    let mut lab = Lab::start();
    lab.create_network(json!({"Name": "burst", "IPAM": {"Config": [{"Subnet": "10.77.0.0/24"}]}}));
    let ids: Vec<String> = (0..12)
        .map(|i| run(&lab, &format!("k{i}"), "bridge"))
        .collect();
    let sock = lab.sock();
    let handles: Vec<_> = ids
        .iter()
        .cloned()
        .map(|id| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let body = serde_json::to_vec(&json!({"Container": id})).unwrap();
                let _ = berth_e2e::http::request(
                    &sock,
                    "POST",
                    "/networks/burst/connect",
                    &[("Content-Type", "application/json")],
                    Some(&body),
                );
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(30));
    lab.kill9();
    for h in handles {
        let _ = h.join();
    }
    lab.start_again();
    // Every container is still running; each is on `burst` at most once, with its own address
    // and exactly one veth per live endpoint.
    let addrs = addresses(&lab);
    let endpoints: usize = ids
        .iter()
        .map(|id| {
            let v = inspect(&lab, id);
            assert_eq!(v["State"]["Status"], "running");
            v["NetworkSettings"]["Networks"].as_object().unwrap().len()
        })
        .sum();
    assert_eq!(addrs.len(), endpoints);
    assert_eq!(veths(&lab).len(), endpoints, "{:?}", veths(&lab));
    // The survivors can connect again (no stale "already exists" and no address clash).
    for id in &ids {
        let on_burst = inspect(&lab, id)["NetworkSettings"]["Networks"]
            .get("burst")
            .is_some();
        if !on_burst {
            let (st, v) = lab.api(
                "POST",
                "/networks/burst/connect",
                Some(json!({"Container": id})),
            );
            assert_eq!(st, 200, "{v}");
        }
    }
    assert_eq!(addresses(&lab).len(), 24);
    assert_eq!(veths(&lab).len(), 24);
}

/// `-t` containers keep their terminal across a crash: the fd keeper holds the pty master,
/// so the shell is not hung up, and exec/logs work with the new daemon.
#[test]
fn tty_containers_survive_a_daemon_crash() {
    let mut lab = Lab::start();
    let out = lab.docker(&["run", "-itd", "--name", "tty1", "busybox"]);
    assert!(out.status.success(), "{out:?}");
    let pid = inspect(&lab, "tty1")["State"]["Pid"].as_i64().unwrap();
    lab.kill9();
    std::thread::sleep(std::time::Duration::from_millis(300));
    lab.start_again();
    let v = inspect(&lab, "tty1");
    assert_eq!(v["State"]["Status"], "running", "{v}");
    assert_eq!(v["State"]["Pid"].as_i64().unwrap(), pid);
    let out = lab.docker(&["exec", "tty1", "echo", "still-here"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("still-here"),
        "{out:?}"
    );
    let (st, _) = lab.api("POST", "/containers/tty1/stop?t=1", None);
    assert_eq!(st, 204);
    assert_eq!(inspect(&lab, "tty1")["State"]["Status"], "exited");
}

/// A container that ends after berthd crashed and came back still reports its own exit code:
/// the fd keeper, not berthd, is the parent that reaps it. `exec -d` keeps running too.
#[test]
fn exit_code_known_after_a_crash() {
    let mut lab = Lab::start();
    let out = lab.docker(&[
        "run",
        "-d",
        "--name",
        "ec",
        "busybox",
        "sh",
        "-c",
        "sleep 2; exit 42",
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = lab.docker(&["run", "-d", "--name", "bg", "busybox", "sleep", "600"]);
    assert!(out.status.success(), "{out:?}");
    let out = lab.docker(&["exec", "-d", "bg", "sh", "-c", "echo x; sleep 600"]);
    assert!(out.status.success(), "{out:?}");
    // `-i` without a terminal: the stdin pipe must not reach end-of-file with berthd.
    let out = lab.docker(&["run", "-di", "--name", "catter", "busybox", "cat"]);
    assert!(out.status.success(), "{out:?}");
    lab.kill9();
    lab.start_again();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(inspect(&lab, "catter")["State"]["Status"], "running");
    let out = lab.docker(&["wait", "ec"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42", "{out:?}");
    let ps = lab.docker(&["exec", "bg", "ps"]);
    let ps = String::from_utf8_lossy(&ps.stdout).to_string();
    assert_eq!(
        ps.matches("sleep 600").count(),
        2,
        "the detached exec still runs: {ps}"
    );
}
