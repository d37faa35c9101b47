//! Overlays when things fail: a berthd killed with -9 (mid-connect) and not restarted, then
//! restarted; every berthd restarted; etcd stopped under traffic.
//!
//! `BERTH_E2E_ETCD_OUTAGE` sets the etcd outage in seconds (default 8; the 30 s is a
//! matter of setting it).

use berth_e2e::cluster::{
    assert_no_duplicate_addresses, ip_of, kernel, ping_stats, pings, resolve, run_sleeper, sandbox,
    wait_resolves, wait_state, wait_until, Background, Cluster,
};
use berth_e2e::{ok, Lab};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SEC: Duration = Duration::from_secs(1);

/// No FDB entry pointing at `vtep` and no neighbour entry for any of `ips` in `lab`'s
/// namespace of overlay `net_id` (a missing namespace counts as clean).
fn no_peer_state(lab: &Lab, net_id: &str, vtep: &str, ips: &[String]) -> bool {
    let Some(ns) = kernel::overlay_ns(lab, net_id) else {
        return true;
    };
    !kernel::vxlan_fdb(&ns).iter().any(|(_, d)| d == vtep)
        && !kernel::vxlan_neigh(&ns)
            .iter()
            .any(|(ip, _)| ips.contains(ip))
}

#[test]
fn killed_host_disappears_within_ttl_and_comes_back() {
    let mut c = Cluster::new(3);
    let ttl = c.ttl();
    let id = c.create_overlay(0, "kn");
    c.wait_network_everywhere("kn", &id);
    run_sleeper(c.host(0), "a1", &["--net=kn"]);
    run_sleeper(c.host(1), "b1", &["--net=kn"]);
    run_sleeper(c.host(2), "c1", &["--net=kn"]);
    run_sleeper(c.host(1), "b2", &[]);
    let b1 = ip_of(c.host(1), "b1", "kn");
    let (b_vtep, b1_mac) = (c.host_ip(1), kernel::mac_for(&b1));
    for (h, me) in [(0, "a1"), (2, "c1")] {
        wait_resolves(c.host(h), me, "b1", &b1, 3 * SEC);
        let ns = kernel::overlay_ns(c.host(h), &id).expect("overlay namespace");
        assert!(
            kernel::vxlan_fdb(&ns).contains(&(b1_mac.clone(), b_vtep.clone())),
            "{:?}",
            kernel::vxlan_fdb(&ns)
        );
    }
    assert!(pings(c.host(0), "a1", "b1"));

    // kill -9 of B while it connects b2 to kn
    let mut connect = Command::new(berth_e2e::berth_bin())
        .args([
            "-H",
            &c.host(1).host_uri(),
            "network",
            "connect",
            "kn",
            "b2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(30));
    c.kill9(1);
    let killed = Instant::now();
    // the CLI sees its connection die; never wait for it forever
    let deadline = Instant::now() + 10 * SEC;
    while connect.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = connect.kill();
            let _ = connect.wait();
            panic!("berth network connect still running 10 s after its daemon was killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    // within TTL + 2 s: B's names and peer entries are gone from A and C
    let within = ttl + 2 * SEC;
    wait_state(within, "B's names and FDB/neighbour entries gone", || {
        let mut state = String::new();
        let mut done = true;
        for (h, me) in [(0, "a1"), (2, "c1")] {
            let (n1, n2) = (resolve(c.host(h), me, "b1"), resolve(c.host(h), me, "b2"));
            let clean = no_peer_state(c.host(h), &id, &b_vtep, std::slice::from_ref(&b1));
            done &= n1.is_empty() && n2.is_empty() && clean;
            state += &format!("host {h}: b1 {n1:?} b2 {n2:?} peer state clean {clean}; ");
        }
        (done, state)
    });
    let gone = killed.elapsed();
    eprintln!("B gone everywhere {gone:?} after kill -9 (TTL {ttl:?})");
    assert!(gone <= within, "took {gone:?}");

    // the cluster goes on without B: new containers, never with B's addresses
    for k in 0..3 {
        run_sleeper(c.host(0), &format!("a-new{k}"), &["--net=kn"]);
        assert_ne!(ip_of(c.host(0), &format!("a-new{k}"), "kn"), b1);
    }
    run_sleeper(c.host(2), "c-new", &["--net=kn"]);
    assert_ne!(ip_of(c.host(2), "c-new", "kn"), b1);
    wait_until(3 * SEC, "a1 → c-new", || pings(c.host(0), "a1", "c-new"));

    // B comes back: its containers keep their addresses and are reachable again
    c.start_again(1);
    assert_eq!(ip_of(c.host(1), "b1", "kn"), b1);
    wait_resolves(c.host(0), "a1", "b1", &b1, 10 * SEC);
    wait_until(5 * SEC, "a1 → b1 after B's restart", || {
        pings(c.host(0), "a1", "b1")
    });
    assert!(pings(c.host(1), "b1", "c-new"));
    // b2's interrupted connect left it either connected with a working address, or not at all
    let b2_net = berth_e2e::cluster::container(c.host(1), "b2")["NetworkSettings"]["Networks"]
        .get("kn")
        .cloned();
    if let Some(ep) = b2_net {
        let ip = ep["IPAddress"].as_str().unwrap_or("").to_string();
        eprintln!("b2 was connected before the kill: {ip}");
        assert!(!ip.is_empty(), "{ep}");
        wait_resolves(c.host(0), "a1", "b2", &ip, 10 * SEC);
    } else {
        eprintln!("b2 was not connected before the kill");
        ok(
            &c.host(1).cli(&["network", "connect", "kn", "b2"]),
            "connect b2",
        );
    }
    assert_no_duplicate_addresses(&c, "kn");
}

/// Every berthd restarted (SIGTERM, then kill -9): containers keep their addresses, traffic and
/// names still work, new containers get fresh addresses.
#[test]
fn every_berthd_restarted() {
    let mut c = Cluster::new(3);
    let id = c.create_overlay(1, "rs");
    c.wait_network_everywhere("rs", &id);
    for i in 0..3 {
        run_sleeper(c.host(i), &format!("r{i}"), &["--net=rs"]);
    }
    let before: Vec<String> = (0..3)
        .map(|i| ip_of(c.host(i), &format!("r{i}"), "rs"))
        .collect();
    wait_resolves(c.host(0), "r0", "r2", &before[2], 3 * SEC);

    // a flow across hosts while the daemons go and come back: count the losses (printed)
    let flow = Background::spawn_in(
        &sandbox(c.host(0), "r0"),
        &["busybox", "ping", "-i", "0.2", "-W", "1", &before[1]],
    );

    for round in ["SIGTERM", "kill -9"] {
        for i in 0..3 {
            if round == "SIGTERM" {
                c.restart(i);
            } else {
                c.kill9(i);
                c.start_again(i);
            }
        }
        for (i, ip) in before.iter().enumerate() {
            assert_eq!(
                &ip_of(c.host(i), &format!("r{i}"), "rs"),
                ip,
                "after {round}"
            );
        }
        for (h, me) in [(0, "r0"), (1, "r1"), (2, "r2")] {
            for (k, ip) in before.iter().enumerate() {
                if k != h {
                    wait_resolves(c.host(h), me, &format!("r{k}"), ip, 10 * SEC);
                }
            }
        }
        assert!(pings(c.host(0), "r0", "r1"), "after {round}");
        assert!(pings(c.host(1), "r1", "r2"), "after {round}");
        assert!(pings(c.host(2), "r2", "r0"), "after {round}");
        c.wait_network_everywhere("rs", &id);
    }
    let stats = ping_stats(&flow.interrupt());
    eprintln!("ping r0 → r1 across 6 daemon restarts: (sent, received) = {stats:?}");
    run_sleeper(c.host(1), "r-new", &["--net=rs"]);
    let fresh = ip_of(c.host(1), "r-new", "rs");
    assert!(!before.contains(&fresh), "{fresh} reused: {before:?}");
    assert_no_duplicate_addresses(&c, "rs");
    wait_until(3 * SEC, "r0 → r-new", || pings(c.host(0), "r0", "r-new"));
}

/// etcd stopped for 30 s (the figure; `BERTH_E2E_ETCD_OUTAGE` seconds) under traffic,
/// ten times the lab's lease TTL, so every lease expires: existing flows and names keep
/// working, local networks work, overlay create/connect fail fast naming the cluster store;
/// all works again once it is back.
#[test]
fn etcd_outage_under_traffic() {
    let outage = Duration::from_secs(
        std::env::var("BERTH_E2E_ETCD_OUTAGE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30),
    );
    let mut c = Cluster::new(2);
    let id = c.create_overlay(0, "eo");
    c.wait_network_everywhere("eo", &id);
    run_sleeper(c.host(0), "e0", &["--net=eo"]);
    run_sleeper(c.host(1), "e1", &["--net=eo"]);
    run_sleeper(c.host(1), "bystander", &[]);
    let e1 = ip_of(c.host(1), "e1", "eo");
    wait_resolves(c.host(0), "e0", "e1", &e1, 3 * SEC);

    c.stop_etcd();
    let down = Instant::now();
    let count = (outage.as_millis() / 200).max(5).to_string();
    let flow = Background::spawn_in(
        &sandbox(c.host(0), "e0"),
        &["busybox", "ping", "-c", &count, "-i", "0.2", "-W", "1", &e1],
    );

    let (a, b) = (c.host(0), c.host(1));
    let t = Instant::now();
    let (st, v) = a.api(
        "POST",
        "/networks/create",
        Some(berth_e2e::cluster::overlay_body("during")),
    );
    let create_took = t.elapsed();
    assert_ne!(st, 201, "an overlay created without etcd: {v}");
    assert!(
        berth_e2e::msg(&v).to_lowercase().contains("cluster store"),
        "{st} {v}"
    );
    assert!(create_took < 5 * SEC, "create took {create_took:?}");
    let t = Instant::now();
    let (st, v) = b.api(
        "POST",
        "/networks/eo/connect",
        Some(json!({"Container": "bystander"})),
    );
    let connect_took = t.elapsed();
    assert!(st >= 400, "connected without etcd: {st} {v}");
    assert!(
        berth_e2e::msg(&v).to_lowercase().contains("cluster store"),
        "{st} {v}"
    );
    assert!(connect_took < 5 * SEC, "connect took {connect_took:?}");
    eprintln!("without etcd: create refused in {create_took:?}, connect in {connect_took:?}");
    // local networks do not care
    a.net("localnet");
    run_sleeper(a, "local1", &["--net=localnet"]);
    // names already known keep answering
    assert_eq!(resolve(a, "e0", "e1"), [e1.as_str()]);
    assert!(pings(a, "e0", "e1"));

    let out = flow.output();
    let (sent, received) = ping_stats(&out).unwrap_or_else(|| panic!("no ping statistics: {out}"));
    eprintln!("e0 → e1 during the etcd outage: {received}/{sent} answered");
    assert!(sent > 0 && received + 1 >= sent, "{out}");
    if down.elapsed() < outage {
        std::thread::sleep(outage - down.elapsed());
    }

    c.start_etcd();
    let (a, b) = (c.host(0), c.host(1));
    let t = Instant::now();
    let during2 =
        berth_e2e::cluster::wait_for(20 * SEC, "overlay create after etcd is back", || {
            let (st, v) = a.api(
                "POST",
                "/networks/create",
                Some(berth_e2e::cluster::overlay_body("after")),
            );
            (st == 201).then(|| v["Id"].as_str().unwrap().to_string())
        });
    eprintln!(
        "overlay create works again {:?} after etcd came back",
        t.elapsed()
    );
    c.wait_network_everywhere("after", &during2);
    assert!(b.api("GET", "/networks/during", None).0 == 404);
    // the old names survived the outage; new ones spread again
    wait_resolves(a, "e0", "e1", &e1, 10 * SEC);
    ok(
        &b.cli(&["network", "connect", "eo", "bystander"]),
        "connect after",
    );
    run_sleeper(b, "e2", &["--net=eo"]);
    let e2 = ip_of(b, "e2", "eo");
    wait_resolves(a, "e0", "e2", &e2, 5 * SEC);
    assert!(pings(a, "e0", "e2"));
    assert!(pings(a, "e0", "bystander"));
    assert_no_duplicate_addresses(&c, "eo");
}

/// `--cluster-store etcd://M1,M2,M3` (a three-member etcd cluster): with the first member
/// killed, the hosts go on: new overlays, new names across hosts, old traffic.
#[test]
fn etcd_cluster_with_a_member_down() {
    let mut c = Cluster::with(berth_e2e::cluster::ClusterOpts {
        hosts: 2,
        etcd_members: 3,
        ..Default::default()
    });
    let id = c.create_overlay(0, "m3");
    c.wait_network_everywhere("m3", &id);
    run_sleeper(c.host(0), "x0", &["--net=m3"]);
    run_sleeper(c.host(1), "x1", &["--net=m3"]);
    let x1 = ip_of(c.host(1), "x1", "m3");
    wait_resolves(c.host(0), "x0", "x1", &x1, 3 * SEC);

    c.stop_etcd_member(0);
    let t = std::time::Instant::now();
    let id2 = berth_e2e::cluster::wait_for(15 * SEC, "overlay create with member 0 down", || {
        let (st, v) = c.host(1).api(
            "POST",
            "/networks/create",
            Some(berth_e2e::cluster::overlay_body("m3b")),
        );
        (st == 201).then(|| v["Id"].as_str().unwrap().to_string())
    });
    eprintln!("create worked {:?} after member 0 died", t.elapsed());
    c.wait_network_everywhere("m3b", &id2);
    run_sleeper(c.host(1), "x2", &["--net=m3"]);
    let x2 = ip_of(c.host(1), "x2", "m3");
    wait_resolves(c.host(0), "x0", "x2", &x2, 5 * SEC);
    assert!(pings(c.host(0), "x0", "x1"));
    assert!(pings(c.host(0), "x0", "x2"));
    // the hosts' leases live on: after more than a TTL, x1 still answers on host 0
    std::thread::sleep(c.ttl() + SEC);
    assert_eq!(resolve(c.host(0), "x0", "x1"), [x1.as_str()]);
}
