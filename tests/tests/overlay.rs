//! Multi-host overlay networks (issue 11), end to end on the multi-host lab: three berthd
//! "hosts" in namespaces joined by an underlay bridge, a real etcd, real VXLAN, real traffic and
//! DNS. Packets only go between the lab's own namespaces.

use berth_e2e::cluster::{
    container, exec, kernel, ns_pings, pings, resolve, run_sleeper, sandbox, wait_for,
    wait_resolves, wait_state, wait_until, Cluster,
};
use berth_e2e::net::{http_get, udp_ask, Outside, UdpEcho};
use berth_e2e::{fails, ok, Lab};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

fn ip_of(lab: &Lab, c: &str, net: &str) -> String {
    berth_e2e::cluster::ip_of(lab, c, net)
}

/// busybox httpd on port `port` serving `hello from NAME`.
fn web_cmd(name: &str, port: u16) -> String {
    format!("mkdir -p /www && echo hello from {name} > /www/index.html && exec httpd -f -p {port} -h /www")
}

fn run_web(lab: &Lab, name: &str, port: u16, args: &[&str]) {
    let script = web_cmd(name, port);
    let mut v = vec!["run", "-d", "--name", name];
    v.extend_from_slice(args);
    v.extend_from_slice(&["busybox", "sh", "-c", &script]);
    ok(&lab.cli(&v), &format!("run {name}"));
}

/// `berth run --rm ARGS…` on `lab`; its output. Retried (≤ 3 s) only while the command inside
/// fails the way a name not there yet, or a server still starting, makes it fail (names of
/// containers on other hosts appear "within the watch delay"); any other failure (the daemon
/// refusing the run) fails the test at once.
fn run_rm_ok(lab: &Lab, args: &[&str]) -> String {
    let mut v = vec!["run", "--rm"];
    v.extend_from_slice(args);
    wait_for(3 * SEC, &format!("run {args:?}"), || {
        let o = lab.cli(&v);
        if o.status.success() {
            return Some(String::from_utf8_lossy(&o.stdout).trim().to_string());
        }
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let transient = [
            "bad address",
            "Connection refused",
            "can't connect",
            "packets received",
        ];
        assert!(
            !text.contains("Error response from daemon")
                && transient.iter().any(|t| text.contains(t)),
            "run {args:?}: {text}"
        );
        eprintln!("retrying {args:?}: {text}");
        None
    })
}

fn link_json(ns: &std::path::Path, dev: &str) -> Value {
    let o = berth_e2e::cluster::nsexec(ns, &["ip", "-d", "-j", "link", "show", "dev", dev]);
    let s = ok(&o, &format!("ip link show {dev}"));
    let v: Value = serde_json::from_str(&s).unwrap();
    v[0].clone()
}

/// The sandbox's interfaces but `lo`, sorted.
fn ifnames(ns: &std::path::Path) -> Vec<String> {
    let o = berth_e2e::cluster::nsexec(ns, &["ip", "-j", "link", "show"]);
    let v: Value = serde_json::from_str(&ok(&o, "ip link show")).unwrap();
    let mut names: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .filter(|n| *n != "lo")
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// The sandbox's interface that holds `ip`.
fn dev_with(ns: &std::path::Path, ip: &str) -> String {
    let o = berth_e2e::cluster::nsexec(ns, &["ip", "-j", "addr", "show"]);
    let v: Value = serde_json::from_str(&ok(&o, "ip addr show")).unwrap();
    let found = v.as_array().unwrap().iter().find(|l| {
        l["addr_info"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["local"] == ip))
    });
    found.expect("an interface with the address")["ifname"]
        .as_str()
        .unwrap()
        .to_string()
}

fn default_routes(ns: &std::path::Path) -> Vec<Value> {
    let o = berth_e2e::cluster::nsexec(ns, &["ip", "-j", "route", "show", "default"]);
    let s = ok(&o, "ip route show default");
    if s.is_empty() {
        return Vec::new();
    }
    serde_json::from_str::<Value>(&s)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn host_reaches(lab: &Lab, ip: &str) -> bool {
    ns_pings(std::path::Path::new(&format!("/run/netns/{}", lab.ns)), ip)
}

/// The walkthrough on three hosts: create on A, listed on B and C; a container on A
/// reached from B and C by address, name, `name.network`, `--link` alias; shared aliases in
/// round robin; the container's interfaces; the VXLAN data path; the host cannot reach it.
#[test]
fn walkthrough_three_hosts() {
    let c = Cluster::new(3);
    let (a, b, cc) = (c.host(0), c.host(1), c.host(2));

    // /info on every host
    for (i, h) in c.hosts.iter().enumerate() {
        let (st, info) = h.api("GET", "/info", None);
        assert_eq!(st, 200);
        assert_eq!(info["ClusterStore"], c.store_url().as_str(), "{info}");
        assert_eq!(info["ClusterAdvertise"], c.advertise(i).as_str(), "{info}");
        let plugins: Vec<&str> = info["Plugins"]["Network"]
            .as_array()
            .unwrap_or_else(|| panic!("no Plugins.Network: {info}"))
            .iter()
            .filter_map(|p| p.as_str())
            .collect();
        assert!(plugins.contains(&"overlay"), "{plugins:?}");
    }

    // create on A with the CLI; everyone lists it
    let id = ok(
        &a.cli(&["network", "create", "-d", "overlay", "testnet02"]),
        "network create -d overlay",
    );
    assert!(berth_e2e::is_hex(&id, 64), "{id:?}");
    let took = c.wait_network_everywhere("testnet02", &id);
    eprintln!("testnet02 visible everywhere after {took:?}");
    for h in &c.hosts {
        let n = h.inspect("testnet02");
        assert_eq!(n["Driver"], "overlay");
        assert_eq!(n["Scope"], "global");
        assert_eq!(n["IPAM"]["Config"][0]["Subnet"], "10.0.0.0/24", "{n}");
        assert_eq!(n["IPAM"]["Config"][0]["Gateway"], "10.0.0.1", "{n}");
        let ls = ok(&h.cli(&["network", "ls"]), "network ls");
        assert!(
            ls.lines().any(|l| l.starts_with(&id[..12])
                && l.contains("testnet02")
                && l.contains("overlay")
                && l.contains("global")),
            "{ls}"
        );
        assert_eq!(
            h.network_names(Some(json!({"scope": ["global"]}))),
            ["testnet02"]
        );
        assert_eq!(
            h.network_names(Some(json!({"driver": ["overlay"]}))),
            ["testnet02"]
        );
        // local networks are not global
        assert!(!h
            .network_names(Some(json!({"scope": ["local"]})))
            .contains(&"testnet02".to_string()));
    }
    // the next overlay gets the next /24, whoever creates it
    let id2 = c.create_overlay(1, "testnet04");
    c.wait_network_everywhere("testnet04", &id2);
    assert_eq!(cc.subnet_of("testnet04"), "10.0.1.0/24");

    // a server on A
    run_web(a, "mysql01", 3306, &["--net=testnet02"]);
    let db = ip_of(a, "mysql01", "testnet02");
    assert_eq!(db, "10.0.0.2", "the first address of a fresh overlay");
    // its interfaces: eth0 on the overlay (MTU 1450, MAC 02:42:<ip>), eth1 on docker_gwbridge
    // with the default route
    let sb = sandbox(a, "mysql01");
    let eth0 = link_json(&sb, "eth0");
    assert_eq!(eth0["mtu"], 1450, "{eth0}");
    assert_eq!(eth0["address"], kernel::mac_for(&db).as_str(), "{eth0}");
    let eth1 = link_json(&sb, "eth1");
    assert_eq!(eth1["operstate"], "UP", "{eth1}");
    let routes = default_routes(&sb);
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert_eq!(routes[0]["dev"], "eth1", "{routes:?}");
    // as in Docker, the gwbridge endpoint is not one of the container's Networks
    let nets = &container(a, "mysql01")["NetworkSettings"]["Networks"];
    assert_eq!(nets.as_object().map(|o| o.len()), Some(1), "{nets}");
    a.assert_bridge_up(kernel::GWBRIDGE);
    let gw = a.inspect(kernel::GWBRIDGE_NET);
    assert_eq!(
        (gw["Driver"].clone(), gw["Scope"].clone()),
        (json!("bridge"), json!("local"))
    );

    // from B: by name, with wget (the example)
    let page = run_rm_ok(
        b,
        &["--net=testnet02", "busybox", "wget", "-qO-", "mysql01:3306"],
    );
    assert_eq!(page, "hello from mysql01");
    // by --link alias, by name.network, by address
    run_rm_ok(
        b,
        &[
            "--net=testnet02",
            "--link=mysql01:db",
            "busybox",
            "ping",
            "-c1",
            "-W2",
            "db",
        ],
    );
    run_rm_ok(
        cc,
        &[
            "--net=testnet02",
            "busybox",
            "ping",
            "-c1",
            "-W2",
            "mysql01.testnet02",
        ],
    );
    run_rm_ok(
        cc,
        &["--net=testnet02", "busybox", "ping", "-c1", "-W2", &db],
    );

    // shared alias across B and C: both addresses, in rotating order, seen from A
    run_sleeper(b, "web1", &["--net=testnet02", "--network-alias=web"]);
    run_sleeper(cc, "web2", &["--net=testnet02", "--network-alias=web"]);
    let (w1, w2) = (
        ip_of(b, "web1", "testnet02"),
        ip_of(cc, "web2", "testnet02"),
    );
    let both = HashSet::from([w1.clone(), w2.clone()]);
    wait_until(3 * SEC, "web resolving to web1 and web2 on A", || {
        resolve(a, "mysql01", "web")
            .into_iter()
            .collect::<HashSet<_>>()
            == both
    });
    let firsts: HashSet<String> = (0..6)
        .map(|_| {
            let v = resolve(a, "mysql01", "web");
            assert_eq!(v.iter().cloned().collect::<HashSet<_>>(), both);
            v[0].clone()
        })
        .collect();
    assert_eq!(firsts.len(), 2, "round robin: {firsts:?}");
    assert_eq!(resolve(a, "mysql01", "web1"), [w1.as_str()]);
    assert_eq!(resolve(a, "mysql01", "WEB2.testnet02"), [w2.as_str()]);
    // PTR of a remote container
    let rev = w1.split('.').rev().collect::<Vec<_>>().join(".") + ".in-addr.arpa";
    let r = berth_e2e::dns::ask_udp(
        &sb,
        "127.0.0.11:53".parse().unwrap(),
        &rev,
        hickory_proto::rr::RecordType::PTR,
    )
    .expect("a PTR reply");
    assert_eq!(r.answers, ["web1.testnet02."]);
    assert!(pings(b, "web1", "web2"), "B → C by name");
    assert!(pings(cc, "web2", "mysql01"), "C → A by name");

    // the data path on A: the overlay's namespace, br0 with the gateway, vxlan0 on 4789, the
    // remote containers as permanent FDB (→ their host's advertise address) and neighbours
    let ons = kernel::overlay_ns(a, &id).unwrap_or_else(|| {
        panic!(
            "no overlay namespace for {} under {}/netns",
            &id[..12],
            a.exec_root().display()
        )
    });
    let vx = kernel::vxlan_link(&ons).expect("vxlan0");
    assert_eq!(vx["linkinfo"]["info_kind"], "vxlan", "{vx}");
    assert_eq!(
        vx["linkinfo"]["info_data"]["port"],
        kernel::VXLAN_PORT,
        "{vx}"
    );
    assert!(
        vx["linkinfo"]["info_data"]["id"].as_u64().unwrap_or(0) > 0,
        "{vx}"
    );
    let br0 =
        berth_e2e::cluster::nsexec(&ons, &["ip", "-j", "addr", "show", "dev", kernel::BRIDGE]);
    assert!(ok(&br0, "br0 addr").contains("\"10.0.0.1\""));
    let fdb = kernel::vxlan_fdb(&ons);
    assert!(
        fdb.contains(&(kernel::mac_for(&w1), c.host_ip(1))),
        "{fdb:?}"
    );
    assert!(
        fdb.contains(&(kernel::mac_for(&w2), c.host_ip(2))),
        "{fdb:?}"
    );
    let neigh = kernel::vxlan_neigh(&ons);
    assert!(
        neigh.contains(&(w1.clone(), kernel::mac_for(&w1))),
        "{neigh:?}"
    );
    // no entry for A's own container
    assert!(
        !fdb.iter().any(|(m, _)| *m == kernel::mac_for(&db)),
        "{fdb:?}"
    );

    // the hosts themselves cannot reach overlay addresses
    assert!(!host_reaches(a, &db), "host A reached {db}");
    assert!(!host_reaches(b, &db), "host B reached {db}");
    assert!(!host_reaches(a, &w1), "host A reached {w1}");

    // a container that leaves leaves everywhere: name and peer entries
    ok(&b.cli(&["rm", "-f", "web1"]), "rm -f web1");
    wait_state(3 * SEC, "web1 gone from A's DNS and FDB", || {
        let dns = resolve(a, "mysql01", "web1");
        let fdb = kernel::vxlan_fdb(&ons);
        let neigh = kernel::vxlan_neigh(&ons);
        let done = dns.is_empty()
            && !fdb.iter().any(|(m, _)| *m == kernel::mac_for(&w1))
            && !neigh.iter().any(|(ip, _)| *ip == w1);
        (
            done,
            format!(
                "dns {dns:?} fdb {fdb:?} neigh {neigh:?}; bridge fdb: {}",
                kernel::vxlan_fdb_raw(&ons)
            ),
        )
    });
    assert_eq!(resolve(a, "mysql01", "web"), [w2.as_str()]);
}

/// docker_gwbridge: egress from an overlay container to an outside namespace (masqueraded to
/// the host's address), `-p` on an overlay container from outside; internal overlays have no
/// way out; overlays are isolated from each other and from bridge networks.
#[test]
fn gwbridge_ports_internal_and_isolation() {
    let c = Cluster::new(2);
    let (a, b) = (c.host(0), c.host(1));
    let out = Outside::new(a);
    let _echo = UdpEcho::start(&out.path(), "198.51.100.2:7777".parse().unwrap(), "outside");

    let front = c.create_overlay(0, "front");
    c.wait_network_everywhere("front", &front);
    run_sleeper(a, "egress", &["--net=front"]);
    // egress through docker_gwbridge, masqueraded to the host's address
    let reply = udp_ask(
        &sandbox(a, "egress").display().to_string(),
        "198.51.100.2:7777".parse().unwrap(),
        "hi",
    );
    assert_eq!(reply.as_deref(), Some("outside got hi from 198.51.100.1"));
    assert!(pings(a, "egress", Outside::ADDR4), "ping outside");

    // -p through docker_gwbridge, from outside, on A's address
    run_web(a, "pweb", 80, &["--net=front", "-p", "18080:80"]);
    let body = wait_for(5 * SEC, "GET 198.51.100.1:18080 from outside", || {
        http_get(&out.path(), "198.51.100.1:18080".parse().unwrap()).ok()
    });
    assert_eq!(body.trim(), "hello from pweb");
    // and pweb is reachable across hosts on the overlay
    run_sleeper(b, "bfront", &["--net=front"]);
    let pweb = ip_of(a, "pweb", "front");
    assert!(pings(b, "bfront", &pweb));

    // internal overlay: cross-host traffic yes, no route out at all
    let mut body = berth_e2e::cluster::overlay_body("back");
    body["Internal"] = json!(true);
    let back = a.create_network(body);
    c.wait_network_everywhere("back", &back);
    assert_eq!(b.inspect("back")["Internal"], true);
    run_sleeper(a, "int1", &["--net=back"]);
    run_sleeper(b, "int2", &["--net=back"]);
    let sb = sandbox(a, "int1");
    assert!(default_routes(&sb).is_empty(), "{:?}", default_routes(&sb));
    let links = berth_e2e::cluster::nsexec(&sb, &["ip", "-j", "link", "show"]);
    assert!(
        !ok(&links, "ip link").contains("\"eth1\""),
        "no gwbridge leg"
    );
    let e = fails(&exec(a, "int1", &["ping", "-c1", "-W1", Outside::ADDR4]));
    assert!(e.contains("Network is unreachable"), "{e}");
    wait_until(3 * SEC, "int1 → int2 by name", || {
        pings(a, "int1", "int2")
    });

    // overlays are isolated from each other, same host or not, and from bridge networks
    let iso = c.create_overlay(1, "iso");
    c.wait_network_everywhere("iso", &iso);
    run_sleeper(b, "iso1", &["--net=iso"]);
    run_sleeper(a, "iso2", &["--net=iso"]);
    let iso1 = ip_of(b, "iso1", "iso");
    let egress = ip_of(a, "egress", "front");
    assert!(pings(a, "iso2", &iso1), "iso2 → iso1 (same overlay)");
    assert!(!pings(a, "egress", &iso1), "front → iso, across hosts");
    assert!(!pings(b, "iso1", &egress), "iso → front, across hosts");
    assert!(!pings(a, "iso2", &egress), "iso → front, same host");
    let int2 = ip_of(b, "int2", "back");
    assert!(!pings(a, "egress", &int2), "front → back");
    a.net("plain");
    run_sleeper(a, "bridged", &["--net=plain"]);
    assert!(!pings(a, "bridged", &egress), "bridge → overlay");
    assert!(
        resolve(a, "egress", "iso1").is_empty(),
        "names do not cross overlays"
    );
    // the host cannot reach overlay addresses, its own containers' or others'
    assert!(!host_reaches(a, &egress));
    assert!(!host_reaches(a, &iso1));
    assert!(!host_reaches(b, &egress));
}

/// Several subnets and static addresses on an overlay, connect/disconnect of a running
/// container, rm refused while another host has endpoints and working from any host after.
#[test]
fn subnets_static_ip_connect_and_rm() {
    let c = Cluster::new(2);
    let (a, b) = (c.host(0), c.host(1));

    ok(
        &a.cli(&[
            "network",
            "create",
            "-d",
            "overlay",
            "--subnet",
            "10.1.0.0/24",
            "--subnet",
            "10.2.0.0/24",
            "--gateway",
            "10.1.0.254",
            "multi",
        ]),
        "create multi",
    );
    let multi = a.inspect("multi")["Id"].as_str().unwrap().to_string();
    c.wait_network_everywhere("multi", &multi);
    let cfg = b.inspect("multi")["IPAM"]["Config"].clone();
    let subnets: Vec<&str> = cfg
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Subnet"].as_str().unwrap())
        .collect();
    assert_eq!(subnets, ["10.1.0.0/24", "10.2.0.0/24"], "{cfg}");
    assert_eq!(cfg[0]["Gateway"], "10.1.0.254", "{cfg}");

    run_sleeper(b, "s1", &["--net=multi", "--ip", "10.1.0.50"]);
    assert_eq!(ip_of(b, "s1", "multi"), "10.1.0.50");
    run_sleeper(b, "s2", &["--net=multi", "--ip", "10.2.0.50"]);
    assert_eq!(ip_of(b, "s2", "multi"), "10.2.0.50");
    run_sleeper(a, "m1", &["--net=multi"]);
    let m1 = ip_of(a, "m1", "multi");
    assert!(
        m1.starts_with("10.1.0.") && m1 != "10.1.0.254" && m1 != "10.1.0.50",
        "{m1}"
    );
    run_sleeper(a, "m2", &["--net=multi", "--ip", "10.2.0.60"]);
    wait_until(3 * SEC, "m1 → s1 by name", || pings(a, "m1", "s1"));
    assert!(pings(a, "m1", "10.1.0.50"));
    assert!(pings(a, "m2", "10.2.0.50"), "second subnet across hosts");
    // a static address taken on another host is refused here
    let e = fails(&a.cli(&[
        "run",
        "-d",
        "--name",
        "dup",
        "--net=multi",
        "--ip",
        "10.1.0.50",
        "busybox",
        "sleep",
        "1d",
    ]));
    assert!(e.to_lowercase().contains("in use"), "{e}");
    berth_e2e::cluster::assert_no_duplicate_addresses(&c, "multi");

    // connect and disconnect a running container (on B, started on a bridge network)
    let cnet = c.create_overlay(0, "cnet");
    c.wait_network_everywhere("cnet", &cnet);
    run_sleeper(a, "peer", &["--net=cnet"]);
    run_sleeper(b, "loner", &[]);
    ok(&b.cli(&["network", "connect", "cnet", "loner"]), "connect");
    let loner = ip_of(b, "loner", "cnet");
    assert!(loner.starts_with("10.0."), "{loner}");
    // the default bridge gives it a way out: no docker_gwbridge leg (Docker's needDefaultGW)
    let lsb = sandbox(b, "loner");
    assert_eq!(ifnames(&lsb), ["eth0", "eth1"]);
    let routes = default_routes(&lsb);
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert_eq!(routes[0]["dev"], "eth0", "{routes:?}");
    wait_resolves(a, "peer", "loner", &loner, 3 * SEC);
    assert!(pings(a, "peer", "loner"), "peer → loner after connect");
    // (by address: loner started on the default bridge, so its resolv.conf is the host's)
    let peer = ip_of(a, "peer", "cnet");
    assert!(pings(b, "loner", &peer), "loner → peer after connect");
    ok(
        &b.cli(&["network", "disconnect", "cnet", "loner"]),
        "disconnect",
    );
    wait_until(3 * SEC, "loner gone from A's DNS", || {
        resolve(a, "peer", "loner").is_empty()
    });
    assert!(!pings(a, "peer", &loner), "peer → loner after disconnect");
    // connect again: a working address again
    ok(
        &b.cli(&["network", "connect", "cnet", "loner"]),
        "connect again",
    );
    let loner2 = ip_of(b, "loner", "cnet");
    wait_resolves(a, "peer", "loner", &loner2, 3 * SEC);
    assert!(pings(a, "peer", &loner2));
    // off the bridge, only the overlay is left: it gets the gwbridge leg and its default route
    ok(
        &b.cli(&["network", "disconnect", "bridge", "loner"]),
        "disconnect bridge",
    );
    let ifs = ifnames(&lsb);
    assert_eq!(ifs.len(), 2, "{ifs:?}");
    let overlay_if = dev_with(&lsb, &loner2);
    assert!(ifs.contains(&overlay_if), "{ifs:?}");
    let routes = default_routes(&lsb);
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert_ne!(routes[0]["dev"], overlay_if.as_str(), "{routes:?}");
    let loner_id = container(b, "loner")["Id"].as_str().unwrap().to_string();
    let on_gwbridge = || !b.inspect(kernel::GWBRIDGE_NET)["Containers"][&loner_id].is_null();
    assert!(on_gwbridge(), "loner has a gwbridge endpoint");
    // back on a bridge network: the gwbridge leg goes again, the route is the bridge's
    ok(
        &b.cli(&["network", "connect", "bridge", "loner"]),
        "connect bridge",
    );
    assert_eq!(ifnames(&lsb).len(), 2, "{:?}", ifnames(&lsb));
    let bridge_if = ip_of(b, "loner", "bridge");
    let routes = default_routes(&lsb);
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert_eq!(routes[0]["dev"], dev_with(&lsb, &bridge_if).as_str());
    assert!(!on_gwbridge(), "loner left docker_gwbridge");

    // rm refused while another host has endpoints (A asks; only B has any)
    let rmnet = c.create_overlay(0, "rmnet");
    c.wait_network_everywhere("rmnet", &rmnet);
    run_sleeper(b, "holder", &["--net=rmnet"]);
    for h in [a, b] {
        let (st, v) = h.api("DELETE", "/networks/rmnet", None);
        assert_eq!(
            (st, berth_e2e::msg(&v)),
            (
                403,
                format!(
                    "error while removing network: network rmnet id {rmnet} has active endpoints"
                )
            )
        );
    }
    let e = fails(&a.cli(&["network", "rm", "rmnet"]));
    assert!(e.contains("has active endpoints"), "{e}");
    c.wait_network_everywhere("rmnet", &rmnet);
    // once the endpoints are gone, rm works from the other host and it is gone everywhere
    ok(&b.cli(&["rm", "-f", "holder"]), "rm holder");
    wait_until(3 * SEC, "rm rmnet from A", || {
        a.api("DELETE", "/networks/rmnet", None).0 == 204
    });
    c.wait_network_gone_everywhere("rmnet");
}

/// The cluster store over TLS with client certificates (`kv.cacertfile`, `kv.certfile`,
/// `kv.keyfile`): the same flow works.
#[test]
fn tls_cluster_store() {
    let c = Cluster::with(berth_e2e::cluster::ClusterOpts {
        hosts: 2,
        tls: true,
        ..Default::default()
    });
    let (a, b) = (c.host(0), c.host(1));
    let id = c.create_overlay(0, "tlsnet");
    c.wait_network_everywhere("tlsnet", &id);
    run_sleeper(a, "t0", &["--net=tlsnet"]);
    run_sleeper(b, "t1", &["--net=tlsnet"]);
    let t0 = ip_of(a, "t0", "tlsnet");
    wait_resolves(b, "t1", "t0", &t0, 3 * SEC);
    assert!(pings(b, "t1", "t0"));
}

/// A host whose only endpoint on an overlay comes and goes, again and again (each time the
/// overlay's data path there may be torn down and made again): every run works, and reaches a
/// container on another host.
#[test]
fn endpoints_come_and_go_on_a_host() {
    let c = Cluster::new(2);
    let (a, b) = (c.host(0), c.host(1));
    let id = c.create_overlay(0, "churn");
    c.wait_network_everywhere("churn", &id);
    run_sleeper(a, "anchor", &["--net=churn"]);
    let anchor = ip_of(a, "anchor", "churn");
    for i in 0..8 {
        let o = b.cli(&[
            "run",
            "--rm",
            "--net=churn",
            "busybox",
            "ping",
            "-c1",
            "-W2",
            &anchor,
        ]);
        ok(&o, &format!("run --rm #{i} on B"));
    }
    // and the other way: anchor reaches a fresh container on B by name
    run_sleeper(b, "late", &["--net=churn"]);
    let late = ip_of(b, "late", "churn");
    wait_resolves(a, "anchor", "late", &late, 3 * SEC);
    assert!(pings(a, "anchor", "late"));
}

/// `-o com.docker.network.driver.mtu` and `-o com.docker.network.driver.overlay.vxlanid_list`
/// are honoured on every host; `--attachable` is accepted.
#[test]
fn driver_options_mtu_and_vni() {
    let c = Cluster::new(2);
    let (a, b) = (c.host(0), c.host(1));
    ok(
        &a.cli(&[
            "network",
            "create",
            "-d",
            "overlay",
            "--attachable",
            "-o",
            "com.docker.network.driver.mtu=1400",
            "-o",
            "com.docker.network.driver.overlay.vxlanid_list=4242",
            "opts",
        ]),
        "create with options",
    );
    let id = a.inspect("opts")["Id"].as_str().unwrap().to_string();
    c.wait_network_everywhere("opts", &id);
    assert_eq!(b.inspect("opts")["Attachable"], true);
    run_sleeper(a, "o0", &["--net=opts"]);
    run_sleeper(b, "o1", &["--net=opts"]);
    for (h, name) in [(a, "o0"), (b, "o1")] {
        let eth0 = link_json(&sandbox(h, name), "eth0");
        assert_eq!(eth0["mtu"], 1400, "{eth0}");
        let ons = kernel::overlay_ns(h, &id).expect("overlay namespace");
        let vx = kernel::vxlan_link(&ons).expect("vxlan0");
        assert_eq!(vx["linkinfo"]["info_data"]["id"], 4242, "{vx}");
    }
    let o1 = ip_of(b, "o1", "opts");
    wait_resolves(a, "o0", "o1", &o1, 3 * SEC);
    assert!(pings(a, "o0", "o1"));
    // a VNI already taken is refused
    let e = fails(&b.cli(&[
        "network",
        "create",
        "-d",
        "overlay",
        "-o",
        "com.docker.network.driver.overlay.vxlanid_list=4242",
        "opts2",
    ]));
    assert!(e.contains("4242"), "{e}");
}
