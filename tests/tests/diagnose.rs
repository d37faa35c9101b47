//! `berth network diagnose` and `graph` end to end: a lab broken on purpose, one way at a
//! time, and the diagnosis checked (verdict, the line naming the cause, the fix), with real
//! probes from inside the containers confirming the verdict. Traffic stays in the lab.

use berth_e2e::diag::{all, diag, lines};
use berth_e2e::{ok, Lab};
use serde_json::Value;

fn run(lab: &Lab, args: &[&str]) {
    let mut v = vec!["run", "-d"];
    v.extend_from_slice(args);
    v.extend_from_slice(&["busybox", "sleep", "1d"]);
    ok(&lab.cli(&v), "run -d");
}

fn reachable(v: &Value) -> bool {
    v["reachable"].as_bool().unwrap()
}

fn probe_agrees(v: &Value) {
    assert_eq!(v["probe"]["agrees"], true, "probe disagrees: {}", all(v));
}

#[test]
fn containers_names_ports_and_graph() {
    let lab = Lab::start();
    for n in ["appnet", "backnet"] {
        ok(&lab.cli(&["network", "create", n]), "network create");
    }
    run(&lab, &["--net=appnet", "--name=web"]);
    run(&lab, &["--net=appnet", "--name=db"]);
    run(
        &lab,
        &["--net=backnet", "--name=cache", "--network-alias=kv"],
    );
    run(&lab, &["--net=appnet", "--name=client", "--link=db:mydb"]);
    run(
        &lab,
        &["--net=appnet", "--name=pub", "-p", "127.0.0.1:8080:80"],
    );
    ok(
        &lab.cli(&[
            "create",
            "--net=appnet",
            "--name=stopped",
            "busybox",
            "sleep",
            "1d",
        ]),
        "create",
    );

    // same network: reachable, the DNS answer, the path and berth's rule; the probe agrees
    let v = diag(&lab, "web", "db", true);
    assert!(reachable(&v), "{}", all(&v));
    let db_ip = ok(
        &lab.cli(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.appnet.IPAddress}}",
            "db",
        ]),
        "inspect",
    );
    assert!(
        lines(&v, "name").contains(&format!("\"db\" resolves in web to {db_ip}")),
        "{}",
        all(&v)
    );
    assert!(lines(&v, "path").contains("br-"), "{}", all(&v));
    probe_agrees(&v);
    assert_eq!(v["probe"]["reached"], true, "{}", all(&v));
    // the CLI prints the same, and exits 0
    let out = ok(&lab.cli(&["network", "diagnose", "web", "db"]), "diagnose");
    assert!(
        out.contains("REACHABLE") && out.contains("path: web eth0 -> veth"),
        "{out}"
    );

    // different networks: not reachable, the isolation rule, connect as the fix
    let v = diag(&lab, "web", "cache:6379/tcp", true);
    assert!(!reachable(&v), "{}", all(&v));
    assert!(
        lines(&v, "").contains("they share no network"),
        "{}",
        all(&v)
    );
    assert!(
        lines(&v, "fix").contains("berth network connect backnet web"),
        "{}",
        all(&v)
    );
    assert!(lines(&v, "firewall").contains("isolated"), "{}", all(&v));
    probe_agrees(&v);
    let o = lab.cli(&["network", "diagnose", "web", "cache:6379/tcp", "--probe"]);
    eprintln!("{out}\n{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(o.status.code(), Some(1), "exit status 1 when not reachable");

    // container not running
    let v = diag(&lab, "web", "stopped", false);
    assert!(!reachable(&v));
    assert!(
        lines(&v, "").contains("stopped is not running"),
        "{}",
        all(&v)
    );
    assert_eq!(lines(&v, "fix"), "berth start stopped");

    // a network alias on another network
    let v = diag(&lab, "web", "kv", false);
    assert!(!reachable(&v));
    assert!(
        lines(&v, "name").contains("alias of cache on network backnet"),
        "{}",
        all(&v)
    );
    assert!(
        lines(&v, "fix").contains("berth network connect backnet web"),
        "{}",
        all(&v)
    );

    // a link alias is private to the linking container...
    let v = diag(&lab, "web", "mydb", false);
    assert!(!reachable(&v));
    assert!(
        lines(&v, "name").contains("--link alias private to client"),
        "{}",
        all(&v)
    );
    // ...and works for it
    let v = diag(&lab, "client", "mydb", true);
    assert!(reachable(&v), "{}", all(&v));
    probe_agrees(&v);

    // published on 127.0.0.1 only / not published
    let v = diag(&lab, "host", "pub:80", false);
    assert!(
        lines(&v, "ports").contains("127.0.0.1:8080 only"),
        "{}",
        all(&v)
    );
    let v = diag(&lab, "host", "web:80", false);
    assert!(lines(&v, "ports").contains("not published"), "{}", all(&v));

    // bad input: 400, never a panic
    for bad in ["web:0", "web:x/y", "", "a:b:c"] {
        let (code, _) = lab.api(
            "GET",
            &format!("/berth/v1/diagnose?from=web&to={bad}"),
            None,
        );
        assert_eq!(code, 400, "{bad}");
    }

    // graph: every network and container, in all three forms
    let g = ok(&lab.cli(&["network", "graph"]), "graph");
    eprintln!("{g}");
    for s in [
        "appnet",
        "backnet",
        "web",
        "db",
        "cache",
        "127.0.0.1:8080->80/tcp",
    ] {
        assert!(g.contains(s), "{s} in\n{g}");
    }
    let d = ok(
        &lab.cli(&["network", "graph", "--format", "dot"]),
        "graph dot",
    );
    assert!(
        d.starts_with("graph berth {") && d.contains("\"web\""),
        "{d}"
    );
    let (code, j) = lab.api("GET", "/berth/v1/graph", None);
    assert_eq!(code, 200);
    let app = j["networks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "appnet")
        .unwrap();
    assert_eq!(app["containers"].as_array().unwrap().len(), 4, "{app}");
}

/// icc=false: dropped when bridged traffic reaches the forward hook (br_netfilter), and
/// then the probe confirms it; otherwise the diagnosis says icc is not enforced.
#[test]
fn icc_false() {
    let lab = Lab::start();
    ok(
        &lab.cli(&[
            "network",
            "create",
            "-o",
            "com.docker.network.bridge.enable_icc=false",
            "quiet",
        ]),
        "create",
    );
    run(&lab, &["--net=quiet", "--name=alpha"]);
    run(&lab, &["--net=quiet", "--name=beta"]);
    let bnf = lab.sh("cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo absent");
    let v = diag(&lab, "alpha", "beta", true);
    if bnf.trim() == "1" {
        assert!(!reachable(&v), "{}", all(&v));
        assert!(lines(&v, "").contains("icc=false"), "{}", all(&v));
        assert!(lines(&v, "firewall").contains("noicc"), "{}", all(&v));
    } else {
        assert!(reachable(&v), "{}", all(&v));
        assert!(lines(&v, "note").contains("not enforced"), "{}", all(&v));
    }
    probe_agrees(&v);
}

/// Egress: ip_forward off, a foreign nft rule dropping forwarded traffic, an internal
/// network. The "outside" is a veth in the lab with an address on the far side.
#[test]
fn egress_forwarding_foreign_rule_internal() {
    let lab = Lab::start();
    lab.veth("out0", true);
    lab.ip(&["addr", "add", "10.250.0.1/24", "dev", "out0"]);
    ok(&lab.cli(&["network", "create", "appnet"]), "create");
    ok(
        &lab.cli(&["network", "create", "--internal", "backend"]),
        "create",
    );
    run(&lab, &["--net=appnet", "--name=web"]);
    run(&lab, &["--net=backend", "--name=secret"]);

    let v = diag(&lab, "web", "10.250.0.2", false);
    assert!(reachable(&v), "{}", all(&v));
    assert!(lines(&v, "path").contains("out0"), "{}", all(&v));
    assert!(lines(&v, "firewall").contains("masqueraded"), "{}", all(&v));

    lab.sh("echo 0 > /proc/sys/net/ipv4/ip_forward");
    let v = diag(&lab, "web", "10.250.0.2", false);
    assert!(!reachable(&v), "{}", all(&v));
    assert!(
        lines(&v, "kernel").contains("ip_forward is 0"),
        "{}",
        all(&v)
    );
    assert_eq!(lines(&v, "fix"), "sysctl -w net.ipv4.ip_forward=1");
    lab.sh("echo 1 > /proc/sys/net/ipv4/ip_forward");

    lab.sh("nft add table ip filter && nft add chain ip filter FORWARD '{ type filter hook forward priority 0; policy accept; }' && nft add rule ip filter FORWARD ip daddr 10.250.0.0/24 drop");
    let v = diag(&lab, "web", "10.250.0.2", false);
    assert!(!reachable(&v), "{}", all(&v));
    assert!(
        lines(&v, "firewall").contains("table ip filter, chain FORWARD"),
        "{}",
        all(&v)
    );
    assert!(
        lines(&v, "fix").contains("nft delete rule ip filter FORWARD handle"),
        "{}",
        all(&v)
    );
    lab.sh("nft delete table ip filter");
    assert!(reachable(&diag(&lab, "web", "10.250.0.2", false)));

    let v = diag(&lab, "secret", "10.250.0.2", false);
    assert!(!reachable(&v), "{}", all(&v));
    assert!(all(&v).contains("internal"), "{}", all(&v));
}

/// A host route more specific than the network's subnet sends the host's packets for a
/// container elsewhere: diagnosed as an address conflict with a host route, with its fix.
#[test]
fn address_conflict_with_a_host_route() {
    let lab = Lab::start();
    ok(&lab.cli(&["network", "create", "hr"]), "network create");
    run(&lab, &["--net=hr", "--name=tgt"]);
    let v = diag(&lab, "host", "tgt", false);
    assert!(reachable(&v), "{}", all(&v));
    let ip = lab.cli(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.hr.IPAddress}}",
        "tgt",
    ]);
    let ip = ok(&ip, "inspect").trim().to_string();
    lab.veth("hrx", true);
    lab.ip(&["route", "add", &format!("{ip}/32"), "dev", "hrx"]);
    let v = diag(&lab, "host", "tgt", false);
    assert!(!reachable(&v), "{}", all(&v));
    assert!(
        lines(&v, "kernel").contains("an address conflict with a host route"),
        "{}",
        all(&v)
    );
    assert!(
        lines(&v, "fix").contains(&format!("remove the host route {ip}/32")),
        "{}",
        all(&v)
    );
}

/// A process of the lab host listening on a port, killed when dropped.
struct Listener(std::process::Child);

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn port_taken_by_a_process_or_a_container() {
    let lab = Lab::start();
    ok(&lab.cli(&["network", "create", "appnet"]), "network create");

    // a host process holds 18080: the start fails, and diagnose names the process
    let mut l = std::process::Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", lab.ns()))
        .args([
            "python3",
            "-c",
            "import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0',18080))\ns.listen()\nprint('up',flush=True)\ntime.sleep(600)",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let mut up = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(l.stdout.take().unwrap()),
        &mut up,
    )
    .unwrap();
    assert_eq!(up.trim(), "up");
    let listener = Listener(l);
    let o = lab.cli(&[
        "run",
        "-d",
        "--net=appnet",
        "--name=web",
        "-p",
        "18080:80",
        "busybox",
        "sleep",
        "1d",
    ]);
    assert!(!o.status.success(), "the port is taken: run must fail");
    let v = diag(&lab, "host", "web:80", false);
    assert!(!reachable(&v), "{}", all(&v));
    assert!(
        lines(&v, "").contains("its last start failed") && lines(&v, "").contains("18080"),
        "{}",
        all(&v)
    );
    let pid = listener.0.id();
    let p = lines(&v, "ports");
    assert!(
        p.contains("host port 0.0.0.0:18080/tcp (for 80/tcp) is taken")
            && p.contains(&format!("by process python3 (pid {pid})")),
        "{}",
        all(&v)
    );
    assert!(
        lines(&v, "fix").starts_with(&format!("stop process {pid}")),
        "{}",
        all(&v)
    );
    // the fix works
    drop(listener);
    ok(&lab.cli(&["start", "web"]), "start once the port is free");
    assert!(reachable(&diag(&lab, "host", "web:80", false)));

    // another container publishes 18081
    run(&lab, &["--net=appnet", "--name=first", "-p", "18081:80"]);
    ok(
        &lab.cli(&[
            "create",
            "--net=appnet",
            "--name=second",
            "-p",
            "18081:80",
            "busybox",
            "sleep",
            "1d",
        ]),
        "create",
    );
    assert!(!lab.cli(&["start", "second"]).status.success());
    let v = diag(&lab, "web", "second:80", false);
    assert!(!reachable(&v), "{}", all(&v));
    assert!(
        lines(&v, "ports").contains("18081/tcp (for 80/tcp) is taken by container first"),
        "{}",
        all(&v)
    );
    assert!(
        lines(&v, "fix").starts_with("berth stop first"),
        "{}",
        all(&v)
    );
    // a stopped container that never failed: no port lines, the plain fix
    ok(&lab.cli(&["stop", "-t", "0", "first"]), "stop");
    let v = diag(&lab, "web", "first:80", false);
    assert_eq!(lines(&v, "ports"), "", "{}", all(&v));
    assert_eq!(lines(&v, "fix"), "berth start first", "{}", all(&v));
    ok(
        &lab.cli(&["start", "second"]),
        "start once first is stopped",
    );
}

#[test]
fn plugin_network_says_what_it_cannot_see() {
    let (lab, _plug, _) = berth_e2e::plug::lab_with_plugin(&[]);
    ok(
        &lab.cli(&[
            "network",
            "create",
            "-d",
            "testplug",
            "--subnet",
            "10.77.0.0/24",
            "pnet",
        ]),
        "network create",
    );
    run(&lab, &["--net=pnet", "--name=pa"]);
    run(&lab, &["--net=pnet", "--name=pb"]);

    let v = diag(&lab, "pa", "pb", true);
    assert!(reachable(&v), "{}", all(&v));
    assert_eq!(
        lines(&v, "path"),
        "pa eth0 -> (plugin testplug, network pnet) -> pb eth0",
        "{}",
        all(&v)
    );
    assert!(
        lines(&v, "note")
            .contains("run by the plugin \"testplug\": berth cannot see its data path"),
        "{}",
        all(&v)
    );
    // no bridge or veth of berth's is expected, so none is reported missing
    assert_eq!(lines(&v, "kernel"), "", "{}", all(&v));
    probe_agrees(&v);
    let g = ok(&lab.cli(&["network", "graph"]), "graph");
    assert!(
        g.contains("pnet (testplug, 10.77.0.0/24)") && g.contains("eth0 (host side: the plugin's)"),
        "{g}"
    );

    // what berth does see is still checked: pb's interface taken down inside it
    let pid = ok(
        &lab.cli(&["inspect", "-f", "{{.State.Pid}}", "pb"]),
        "inspect",
    );
    let down = std::process::Command::new("nsenter")
        .args(["-t", pid.trim(), "-n", "ip", "link", "set", "eth0", "down"])
        .status()
        .unwrap();
    assert!(down.success());
    let v = diag(&lab, "pa", "pb", true);
    assert!(!reachable(&v), "{}", all(&v));
    assert!(
        lines(&v, "kernel").contains("pb eth0 is down"),
        "{}",
        all(&v)
    );
    probe_agrees(&v);
}
