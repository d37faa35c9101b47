//! Published ports with real traffic: from another machine (an "outside" namespace), from the
//! host itself on localhost and on its own addresses, from other containers through the host
//! (hairpin), TCP (busybox httpd in the container) and UDP (a server in the container's
//! namespace), random ports, ranges, `-P`, IPv6; and how inspect, `port` and `ps` show them.

use berth_e2e::net::{http_get, ns_path, udp_ask, Outside, UdpEcho};
use berth_e2e::ok;
use berth_e2e::Lab;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// `docker run -d --name NAME <args> busybox httpd` serving "hello from NAME".
fn web(lab: &Lab, name: &str, args: &[&str]) {
    let script = format!(
        "mkdir -p /www && echo hello from {name} > /www/index.html && exec httpd -f -p 80 -h /www"
    );
    let mut v = vec!["run", "-d", "--name", name];
    v.extend_from_slice(args);
    v.extend_from_slice(&["busybox", "sh", "-c", &script]);
    ok(&lab.docker(&v), &format!("run {name}"));
}

/// The body of `GET /` once the server answers (it may still be starting), or the last error.
fn get(ns: &str, to: &str) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match http_get(ns, sa(to)) {
            Ok(b) => return Ok(b.trim().to_string()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A request that must fail (quickly: nothing answers, or the connection is refused).
fn refused(ns: &str, to: &str) -> bool {
    http_get(ns, sa(to)).is_err()
}

fn inspect(lab: &Lab, c: &str) -> Value {
    let (st, v) = lab.api("GET", &format!("/containers/{c}/json"), None);
    assert_eq!(st, 200, "{v}");
    v
}

fn sandbox(lab: &Lab, c: &str) -> String {
    inspect(lab, c)["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_string()
}

fn ip_of(lab: &Lab, c: &str, net: &str) -> String {
    inspect(lab, c)["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn tcp_and_udp_from_outside_from_the_host_and_on_localhost() {
    let lab = Lab::start();
    let out = Outside::new(&lab);
    let (o, host) = (out.path(), ns_path(&lab.ns));
    web(
        &lab,
        "web",
        &[
            "-p",
            "18080:80",
            "-p",
            "127.0.0.1:18081:80",
            "-p",
            "18053:5353/udp",
            "-p",
            "18132:132/sctp",
        ],
    );
    let _udp = UdpEcho::start(&sandbox(&lab, "web"), sa("0.0.0.0:5353"), "web");

    // from another machine, on the host's address
    assert_eq!(get(&o, "198.51.100.1:18080").unwrap(), "hello from web");
    // from the host itself: its own address, the bridge's, localhost
    assert_eq!(get(&host, "198.51.100.1:18080").unwrap(), "hello from web");
    assert_eq!(get(&host, "172.17.0.1:18080").unwrap(), "hello from web");
    assert_eq!(get(&host, "127.0.0.1:18080").unwrap(), "hello from web");
    assert_eq!(get(&host, "127.0.0.1:18081").unwrap(), "hello from web");
    // 127.0.0.1:18081 is only on loopback
    assert!(refused(&o, "198.51.100.1:18081"));
    assert!(refused(&host, "198.51.100.1:18081"));
    // nothing else is forwarded
    assert!(refused(&o, "198.51.100.1:80"));

    // UDP; the container sees the real client address from outside, the bridge's for
    // the host's loopback (which it could not answer)
    assert_eq!(
        udp_ask(&o, sa("198.51.100.1:18053"), "ping").as_deref(),
        Some("web got ping from 198.51.100.2")
    );
    assert_eq!(
        udp_ask(&host, sa("127.0.0.1:18053"), "ping").as_deref(),
        Some("web got ping from 172.17.0.1")
    );

    // how it is shown
    let v = inspect(&lab, "web");
    assert_eq!(
        v["NetworkSettings"]["Ports"],
        json!({
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "18080"}, {"HostIp": "127.0.0.1", "HostPort": "18081"}],
            "5353/udp": [{"HostIp": "0.0.0.0", "HostPort": "18053"}],
            "132/sctp": [{"HostIp": "0.0.0.0", "HostPort": "18132"}]
        })
    );
    assert_eq!(
        v["HostConfig"]["PortBindings"],
        json!({
            "80/tcp": [{"HostIp": "", "HostPort": "18080"}, {"HostIp": "127.0.0.1", "HostPort": "18081"}],
            "5353/udp": [{"HostIp": "", "HostPort": "18053"}],
            "132/sctp": [{"HostIp": "", "HostPort": "18132"}]
        })
    );
    let want = "80/tcp -> 0.0.0.0:18080\n80/tcp -> 127.0.0.1:18081\n\
                132/sctp -> 0.0.0.0:18132\n5353/udp -> 0.0.0.0:18053";
    assert_eq!(ok(&lab.cli(&["port", "web"]), "berth port"), want);
    assert_eq!(ok(&lab.docker(&["port", "web"]), "docker port"), want);
    assert_eq!(
        ok(&lab.docker(&["port", "web", "80"]), "docker port 80"),
        "0.0.0.0:18080\n127.0.0.1:18081"
    );
    let ps = ok(
        &lab.docker(&["ps", "--filter", "name=web", "--format", "{{.Ports}}"]),
        "ps",
    );
    for part in [
        "0.0.0.0:18080->80/tcp",
        "127.0.0.1:18081->80/tcp",
        "0.0.0.0:18053->5353/udp",
    ] {
        assert!(ps.contains(part), "{part} not in {ps:?}");
    }
    // the firewall: one element per binding, one per container for its own hairpin
    let mut el = lab.nft_set_elements("ports4");
    el.sort();
    assert_eq!(
        el,
        [
            "sctp . 18132 : 172.17.0.2 . 132",
            "tcp . 18080 : 172.17.0.2 . 80",
            "udp . 18053 : 172.17.0.2 . 5353"
        ]
    );
    assert_eq!(
        lab.nft_set_elements("ports4_ip"),
        ["127.0.0.1 . tcp . 18081 : 172.17.0.2 . 80"]
    );
}

#[test]
fn hairpin_from_containers_through_the_host() {
    let lab = Lab::start();
    let _out = Outside::new(&lab);
    for n in ["app", "other"] {
        ok(&lab.docker(&["network", "create", n]), "network create");
    }
    web(
        &lab,
        "web",
        &["--net", "app", "-p", "18080:80", "-p", "18053:53/udp"],
    );
    let _udp = UdpEcho::start(&sandbox(&lab, "web"), sa("0.0.0.0:53"), "web");
    for (c, n) in [("peer", "app"), ("stranger", "other")] {
        ok(
            &lab.docker(&[
                "run", "-d", "--name", c, "--net", n, "busybox", "sleep", "600",
            ]),
            "run",
        );
    }
    let gw = ip_of(&lab, "peer", "app")
        .rsplit_once('.')
        .map(|(a, _)| format!("{a}.1"))
        .unwrap();
    let web_ip = ip_of(&lab, "web", "app");
    for c in ["peer", "stranger", "web"] {
        let ns = sandbox(&lab, c);
        // through the host's outside address, and the bridge's gateway
        assert_eq!(
            get(&ns, "198.51.100.1:18080").unwrap(),
            "hello from web",
            "{c} via the host address"
        );
        assert_eq!(
            get(&ns, &format!("{gw}:18080")).unwrap(),
            "hello from web",
            "{c} via the gateway"
        );
        // the answer comes back from the host: the container saw the gateway of its network
        let got = udp_ask(&ns, sa("198.51.100.1:18053"), "ping").unwrap_or_default();
        assert!(got.starts_with("web got ping from "), "{c}: {got:?}");
    }
    // a published port is not a hole in the isolation of networks
    assert!(refused(&sandbox(&lab, "stranger"), &format!("{web_ip}:80")));
    // the peer on the same network still reaches web directly
    assert_eq!(
        get(&sandbox(&lab, "peer"), &format!("{web_ip}:80")).unwrap(),
        "hello from web"
    );
}

#[test]
fn random_ports_ranges_and_publish_all() {
    let lab = Lab::new_ns();
    // a small ephemeral range makes the random ports known
    lab.sh("echo '40000 40009' > /proc/sys/net/ipv4/ip_local_port_range");
    let mut lab = lab;
    lab.start_daemon(&[]);
    let host = ns_path(&lab.ns);
    web(&lab, "r1", &["-p", "80", "-p", "127.0.0.1::80"]);
    assert_eq!(
        ok(&lab.docker(&["port", "r1"]), "port"),
        "80/tcp -> 0.0.0.0:40000\n80/tcp -> 127.0.0.1:40001"
    );
    assert_eq!(get(&host, "127.0.0.1:40000").unwrap(), "hello from r1");
    assert_eq!(get(&host, "127.0.0.1:40001").unwrap(), "hello from r1");
    // -P: every exposed port, random ports going on after the last
    web(
        &lab,
        "r2",
        &["-P", "--expose", "80", "--expose", "7000-7001"],
    );
    assert_eq!(
        ok(&lab.docker(&["port", "r2"]), "port"),
        "80/tcp -> 0.0.0.0:40002\n7000/tcp -> 0.0.0.0:40003\n7001/tcp -> 0.0.0.0:40004"
    );
    assert_eq!(get(&host, "172.17.0.1:40002").unwrap(), "hello from r2");
    // a host range for one container port: the first free one
    web(&lab, "r3", &["-p", "18100-18102:80"]);
    web(&lab, "r4", &["-p", "18100-18102:80"]);
    assert_eq!(
        ok(&lab.docker(&["port", "r4", "80"]), "port"),
        "0.0.0.0:18101"
    );
    assert_eq!(get(&host, "127.0.0.1:18101").unwrap(), "hello from r4");

    // a range on both sides, same numbers: one element whatever its size
    ok(
        &lab.docker(&[
            "run",
            "-d",
            "--name",
            "range",
            "-p",
            "20000-20100:20000-20100/udp",
            "busybox",
            "sleep",
            "600",
        ]),
        "run range",
    );
    let sb = sandbox(&lab, "range");
    let servers: Vec<UdpEcho> = [20000, 20050, 20100]
        .iter()
        .map(|p| UdpEcho::start(&sb, sa(&format!("0.0.0.0:{p}")), &format!("port{p}")))
        .collect();
    let range_ip = ip_of(&lab, "range", "bridge");
    assert!(lab
        .nft_set_elements("ranges4")
        .contains(&format!("udp . 0.0.0.0/0 . 20000-20100 : {range_ip}")));
    for p in [20000, 20050, 20100] {
        assert_eq!(
            udp_ask(&host, sa(&format!("127.0.0.1:{p}")), "x"),
            Some(format!("port{p} got x from 172.17.0.1"))
        );
    }
    drop(servers);
    let v = inspect(&lab, "range");
    let ports = &v["NetworkSettings"]["Ports"];
    assert_eq!(ports.as_object().unwrap().len(), 101);
    // the create request comes back as it was sent (berth keeps it as runs inside)
    let pb = v["HostConfig"]["PortBindings"].as_object().unwrap();
    assert_eq!(pb.len(), 101);
    assert_eq!(
        pb["20100/udp"],
        json!([{"HostIp": "", "HostPort": "20100"}])
    );
    assert_eq!(v["Config"]["ExposedPorts"].as_object().unwrap().len(), 101);
    assert_eq!(
        ports["20042/udp"],
        json!([{"HostIp": "0.0.0.0", "HostPort": "20042"}])
    );

    // a shifted range: one element per port, each to its own container port
    web(&lab, "shift", &["-p", "30000-30002:78-80"]);
    assert_eq!(get(&host, "127.0.0.1:30002").unwrap(), "hello from shift");
    let shift_ip = ip_of(&lab, "shift", "bridge");
    let el: Vec<String> = lab
        .nft_set_elements("ports4")
        .into_iter()
        .filter(|e| e.contains(&shift_ip))
        .collect();
    assert_eq!(el.len(), 3, "{el:?}");
}

#[test]
fn ipv6_bindings() {
    let lab = Lab::start();
    let out = Outside::new(&lab);
    // the host forwards IPv6 (berth leaves that choice to the host, as it changes how the
    // host treats router advertisements)
    lab.sh("echo 1 > /proc/sys/net/ipv6/conf/all/forwarding");
    let (o, host) = (out.path(), ns_path(&lab.ns));
    ok(
        &lab.docker(&[
            "network",
            "create",
            "--ipv6",
            "--subnet",
            "fd00:55::/64",
            "--subnet",
            "10.55.0.0/24",
            "dual",
        ]),
        "network create",
    );
    web(
        &lab,
        "v6web",
        &["--net", "dual", "-p", "18080:80", "-p", "18053:53/udp"],
    );
    let _udp = UdpEcho::start(&sandbox(&lab, "v6web"), sa("[::]:53"), "v6web");
    assert_eq!(
        inspect(&lab, "v6web")["NetworkSettings"]["Ports"]["80/tcp"],
        json!([{"HostIp": "0.0.0.0", "HostPort": "18080"}, {"HostIp": "::", "HostPort": "18080"}])
    );
    assert_eq!(
        ok(&lab.cli(&["port", "v6web", "80"]), "port"),
        "0.0.0.0:18080\n[::]:18080"
    );
    // from outside over IPv6 (DNAT to the container's IPv6 address), and IPv4
    assert_eq!(
        get(&o, "[2001:db8:ff::1]:18080").unwrap(),
        "hello from v6web"
    );
    assert_eq!(get(&o, "198.51.100.1:18080").unwrap(), "hello from v6web");
    assert_eq!(
        udp_ask(&o, sa("[2001:db8:ff::1]:18053"), "ping").as_deref(),
        Some("v6web got ping from 2001:db8:ff::2")
    );
    // from the host: its IPv6 address (kernel) and ::1 (berthd's proxy, TCP and UDP)
    assert_eq!(
        get(&host, "[2001:db8:ff::1]:18080").unwrap(),
        "hello from v6web"
    );
    assert_eq!(get(&host, "[::1]:18080").unwrap(), "hello from v6web");
    let got = udp_ask(&host, sa("[::1]:18053"), "ping").unwrap_or_default();
    assert!(got.starts_with("v6web got ping from fd00:55::"), "{got:?}");
    // what the proxy relayed does not keep the ports from the next start
    ok(&lab.docker(&["restart", "-t", "0", "v6web"]), "restart");
    assert_eq!(get(&host, "[::1]:18080").unwrap(), "hello from v6web");
    assert_eq!(
        get(&o, "[2001:db8:ff::1]:18080").unwrap(),
        "hello from v6web"
    );

    // an IPv4-only container: only 0.0.0.0 unless asked; an IPv6 host address is served by
    // the proxy, to its IPv4 address
    web(&lab, "v4web", &["-p", "18090:80", "-p", "[::1]:18091:80"]);
    assert_eq!(
        ok(&lab.docker(&["port", "v4web"]), "port"),
        "80/tcp -> 0.0.0.0:18090\n80/tcp -> [::1]:18091"
    );
    assert_eq!(get(&host, "[::1]:18091").unwrap(), "hello from v4web");
    assert!(refused(&host, "[::1]:18090"));
}
