//! Published ports over a container's and the daemon's life: conflicts refused with Docker's
//! message and nothing half-applied, bad input refused at create, bindings that follow stop
//! and start, survive daemon restarts and crashes, and ports on internal networks.

use berth_e2e::net::{http_get, ns_path, tcp_bind};
use berth_e2e::ok;
use berth_e2e::Lab;
use serde_json::{json, Value};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::process::Output;
use std::time::{Duration, Instant};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn web(lab: &Lab, name: &str, args: &[&str]) -> Output {
    let script = format!(
        "mkdir -p /www && echo hello from {name} > /www/index.html && exec httpd -f -p 80 -h /www"
    );
    let mut v = vec!["run", "-d", "--name", name];
    v.extend_from_slice(args);
    v.extend_from_slice(&["busybox", "sh", "-c", &script]);
    lab.docker(&v)
}

fn get(lab: &Lab, to: &str) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match http_get(&ns_path(&lab.ns), sa(to)) {
            Ok(b) => return Ok(b.trim().to_string()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn inspect(lab: &Lab, c: &str) -> Value {
    let (st, v) = lab.api("GET", &format!("/containers/{c}/json"), None);
    assert_eq!(st, 200, "{v}");
    v
}

fn create(lab: &Lab, name: &str, host_config: Value) -> (u16, Value) {
    lab.api(
        "POST",
        &format!("/containers/create?name={name}"),
        Some(json!({"Image": "busybox", "Cmd": ["sleep", "600"], "HostConfig": host_config})),
    )
}

#[test]
fn conflicts_are_refused_with_dockers_message_and_change_nothing() {
    let lab = Lab::start();
    ok(&web(&lab, "first", &["-p", "18080:80"]), "run first");
    let before = lab.snapshot();

    // another container
    let o = web(&lab, "second", &["-p", "18081:81", "-p", "18080:80"]);
    assert_eq!(o.status.code(), Some(125));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        endpoint_error(
            &err,
            "docker: Error response from daemon: ",
            "second",
            "Bind for 0.0.0.0:18080 failed: port is already allocated\n"
        ),
        "{err}"
    );
    lab.assert_unchanged(&before, "a start refused for a taken port");
    let v = inspect(&lab, "second");
    assert_eq!(v["State"]["Status"], "created");
    assert!(v["State"]["Error"]
        .as_str()
        .unwrap()
        .ends_with("Bind for 0.0.0.0:18080 failed: port is already allocated"));
    // what the failed start held is free again: 18081 can be published
    ok(&web(&lab, "third", &["-p", "18081:80"]), "run third");
    assert_eq!(get(&lab, "127.0.0.1:18081").unwrap(), "hello from third");
    // the same through the API: 500, and the same message
    let (st, v) = lab.api("POST", "/containers/second/start", None);
    assert_eq!(st, 500);
    assert!(endpoint_error(
        v["message"].as_str().unwrap(),
        "",
        "second",
        "Bind for 0.0.0.0:18080 failed: port is already allocated"
    ));

    // a plain process holding a port
    let snap = lab.snapshot();
    let held = berth_e2e::net::in_netns(ns_path(&lab.ns), || {
        std::net::TcpListener::bind("127.0.0.1:18090").unwrap()
    });
    let o = web(&lab, "fourth", &["-p", "18090:80"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("Bind for 0.0.0.0:18090 failed: port is already allocated"));
    lab.assert_unchanged(&snap, "a start refused for a port another process holds");
    drop(held);
    ok(
        &lab.docker(&["start", "fourth"]),
        "start once the port is free",
    );
    assert_eq!(get(&lab, "127.0.0.1:18090").unwrap(), "hello from fourth");

    // and the other way round: nothing else can take a published port
    assert_eq!(
        tcp_bind(&ns_path(&lab.ns), sa("0.0.0.0:18080")),
        Err(ErrorKind::AddrInUse)
    );
    assert_eq!(
        tcp_bind(&ns_path(&lab.ns), sa("127.0.0.1:18090")),
        Err(ErrorKind::AddrInUse)
    );
}

/// `<prefix>driver failed programming external connectivity on endpoint <name> (<64 hex>): <tail>`
fn endpoint_error(s: &str, prefix: &str, name: &str, tail: &str) -> bool {
    let head =
        format!("{prefix}driver failed programming external connectivity on endpoint {name} (");
    s.strip_prefix(head.as_str())
        .filter(|rest| rest.len() > 64 && rest[..64].bytes().all(|c| c.is_ascii_hexdigit()))
        .is_some_and(|rest| rest[64..].starts_with(&format!("): {tail}")))
}

#[test]
fn bad_bindings_are_refused_at_create() {
    let lab = Lab::start();
    let before = lab.snapshot();
    for (pb, msg) in [
        (
            json!({"80/tcp": [{"HostIp": "", "HostPort": "http"}]}),
            "invalid port specification: \"http\"",
        ),
        (
            json!({"80/tcp": [{"HostIp": "", "HostPort": "9-8"}]}),
            "invalid port specification: \"9-8\"",
        ),
        (
            json!({"http/tcp": [{"HostIp": "", "HostPort": "80"}]}),
            "invalid port specification: \"http\"",
        ),
        (
            json!({"0/tcp": [{"HostIp": "", "HostPort": "80"}]}),
            "invalid port specification: \"0\"",
        ),
        (
            json!({"80/icmp": [{"HostIp": "", "HostPort": "80"}]}),
            "invalid proto: icmp",
        ),
        (
            json!({"80/tcp": [{"HostIp": "1.2.3", "HostPort": "80"}]}),
            "invalid IP address: 1.2.3",
        ),
    ] {
        let (st, v) = create(&lab, "bad", json!({"PortBindings": pb}));
        assert_eq!((st, v["message"].as_str().unwrap()), (400, msg), "{pb}");
    }
    let (st, v) = lab.api("GET", "/containers/json?all=1", None);
    assert_eq!((st, v), (200, json!([])));
    lab.assert_unchanged(&before, "refused creates");
    // the docker CLI checks -p itself
    let o = lab.docker(&["run", "-d", "-p", "1.2.3:80:80", "busybox"]);
    assert!(!o.status.success());
    // bindings with a host network are discarded, with Docker's warning
    let (st, v) = create(
        &lab,
        "hostnet",
        json!({"NetworkMode": "host", "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}),
    );
    assert_eq!(st, 201);
    assert_eq!(
        v["Warnings"],
        json!(["Published ports are discarded when using host network mode"])
    );
}

#[test]
fn bindings_follow_stop_start_and_daemon_restarts() {
    let mut lab = Lab::start();
    let host = ns_path(&lab.ns);
    ok(
        &web(
            &lab,
            "web",
            &["-p", "18080:80", "-p", "18000-18009:18000-18009"],
        ),
        "run",
    );
    assert_eq!(get(&lab, "127.0.0.1:18080").unwrap(), "hello from web");
    let elements = |lab: &Lab| {
        let mut v = lab.nft_mentions(" : 172.17.0.2");
        v.sort();
        v
    };
    let published = elements(&lab);
    assert_eq!(published.len(), 2, "{published:?}");

    // stop: the elements go, the ports are free, inspect shows none
    ok(&lab.docker(&["stop", "-t", "1", "web"]), "stop");
    assert!(elements(&lab).is_empty());
    assert_eq!(tcp_bind(&host, sa("0.0.0.0:18080")), Ok(()));
    assert_eq!(tcp_bind(&host, sa("0.0.0.0:18005")), Ok(()));
    assert_eq!(inspect(&lab, "web")["NetworkSettings"]["Ports"], json!({}));
    assert_eq!(ok(&lab.docker(&["port", "web"]), "port"), "");
    // start: back
    ok(&lab.docker(&["start", "web"]), "start");
    assert_eq!(get(&lab, "127.0.0.1:18080").unwrap(), "hello from web");
    let ip = inspect(&lab, "web")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let published = lab.nft_mentions(&format!(" : {ip}"));
    assert_eq!(published.len(), 2, "{published:?}");

    // a graceful restart, then a crash: traffic goes on, the ports are held again
    for crash in [false, true] {
        if crash {
            lab.kill9();
        } else {
            lab.stop();
        }
        // the kernel keeps forwarding while no daemon runs
        assert_eq!(get(&lab, "127.0.0.1:18080").unwrap(), "hello from web");
        lab.start_again();
        assert_eq!(get(&lab, "127.0.0.1:18080").unwrap(), "hello from web");
        assert_eq!(
            tcp_bind(&host, sa("0.0.0.0:18080")),
            Err(ErrorKind::AddrInUse),
            "held again after the restart (crash: {crash})"
        );
        assert_eq!(
            tcp_bind(&host, sa("0.0.0.0:18009")),
            Err(ErrorKind::AddrInUse)
        );
        assert_eq!(lab.nft_mentions(&format!(" : {ip}")).len(), 2);
        assert_eq!(
            ok(&lab.docker(&["port", "web", "80"]), "port"),
            "0.0.0.0:18080"
        );
        // and another container still cannot take them
        let o = web(&lab, &format!("late{crash}"), &["-p", "18080:80"]);
        assert_eq!(o.status.code(), Some(125));
    }

    // the container dies while the daemon is down: nothing is left after the restart
    let pid = inspect(&lab, "web")["State"]["Pid"].as_i64().unwrap() as i32;
    assert!(pid > 0);
    lab.kill9();
    // SAFETY: kill takes no pointers.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    lab.start_again();
    let deadline = Instant::now() + Duration::from_secs(5);
    while inspect(&lab, "web")["State"]["Running"] == json!(true) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(lab.nft_mentions(&format!(" : {ip}")).is_empty());
    assert_eq!(tcp_bind(&host, sa("0.0.0.0:18080")), Ok(()));
}

#[test]
fn ports_on_internal_networks_are_inert() {
    let lab = Lab::start();
    ok(
        &lab.docker(&["network", "create", "--internal", "back"]),
        "network create",
    );
    let before = lab.nft_state().sets;
    ok(
        &web(&lab, "hidden", &["--net", "back", "-p", "18080:80"]),
        "run",
    );
    let v = inspect(&lab, "hidden");
    assert_eq!(v["State"]["Running"], true);
    assert_eq!(v["NetworkSettings"]["Ports"], json!({"80/tcp": null}));
    assert_eq!(ok(&lab.docker(&["port", "hidden"]), "port"), "");
    assert_eq!(
        lab.nft_state().sets,
        before,
        "no element for an internal network"
    );
    assert!(http_get(&ns_path(&lab.ns), sa("127.0.0.1:18080")).is_err());
    assert_eq!(tcp_bind(&ns_path(&lab.ns), sa("0.0.0.0:18080")), Ok(()));
    // once also on a network that is not internal, the ports go there at once (Docker's
    // rule), and leave with it
    ok(
        &lab.docker(&["network", "create", "front"]),
        "network create",
    );
    ok(
        &lab.docker(&["network", "connect", "front", "hidden"]),
        "connect",
    );
    assert_eq!(get(&lab, "127.0.0.1:18080").unwrap(), "hello from hidden");
    assert_eq!(
        ok(&lab.docker(&["port", "hidden"]), "port"),
        "80/tcp -> 0.0.0.0:18080"
    );
    ok(
        &lab.docker(&["network", "disconnect", "front", "hidden"]),
        "disconnect",
    );
    let port_sets = |lab: &Lab| {
        let mut s = lab.nft_state().sets;
        s.retain(|k, _| k.starts_with("ports") || k.starts_with("ranges") || k.starts_with("self"));
        s
    };
    assert!(
        port_sets(&lab).values().all(|v| v.is_empty()),
        "the elements left with the network: {:?}",
        port_sets(&lab)
    );
    assert_eq!(tcp_bind(&ns_path(&lab.ns), sa("0.0.0.0:18080")), Ok(()));
    assert_eq!(ok(&lab.docker(&["port", "hidden"]), "port"), "");
    // and come back at the next start, the internal network still carrying none
    ok(
        &lab.docker(&["network", "connect", "front", "hidden"]),
        "connect",
    );
    ok(&lab.docker(&["restart", "-t", "1", "hidden"]), "restart");
    assert_eq!(get(&lab, "127.0.0.1:18080").unwrap(), "hello from hidden");
}
