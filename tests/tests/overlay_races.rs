//! Overlays under concurrency: two hosts creating the same name at the same instant, and 20
//! containers started at once across three hosts on one overlay.

use berth_e2e::cluster::{
    assert_no_duplicate_addresses, overlay_body, resolve, wait_until, Cluster,
};
use berth_e2e::http::request;
use berth_e2e::{cidr4, ok, overlaps4};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Barrier;
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

fn post_json(sock: &std::path::Path, path: &str, body: &Value) -> (u16, Value) {
    let b = serde_json::to_vec(body).unwrap();
    let r = request(
        sock,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        Some(&b),
    )
    .expect("request");
    (r.status, r.value())
}

#[test]
fn same_name_on_two_hosts_at_once() {
    let c = Cluster::new(3);
    let socks: Vec<_> = c.hosts.iter().map(|h| h.sock()).collect();
    let mut ids = Vec::new();
    for round in 0..6 {
        let name = format!("race{round}");
        // hosts 0 and 1 in even rounds, 1 and 2 in odd ones
        let pair = if round % 2 == 0 { [0, 1] } else { [1, 2] };
        let barrier = Barrier::new(2);
        let results: Vec<(u16, Value)> = std::thread::scope(|s| {
            let hs: Vec<_> = pair
                .iter()
                .map(|&i| {
                    let (sock, name, barrier) = (&socks[i], &name, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        post_json(sock, "/networks/create", &overlay_body(name))
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won: Vec<&(u16, Value)> = results.iter().filter(|r| r.0 == 201).collect();
        let lost: Vec<&(u16, Value)> = results.iter().filter(|r| r.0 != 201).collect();
        assert_eq!(won.len(), 1, "exactly one create wins: {results:?}");
        assert_eq!(
            (lost[0].0, berth_e2e::msg(&lost[0].1)),
            (409, format!("network with name {name} already exists")),
            "{results:?}"
        );
        let id = won[0].1["Id"].as_str().unwrap().to_string();
        c.wait_network_everywhere(&name, &id);
        for h in &c.hosts {
            let n = h
                .network_names(None)
                .into_iter()
                .filter(|n| *n == name)
                .count();
            assert_eq!(n, 1, "{name} listed once on {}", h.ns);
        }
        ids.push(id);
    }
    // the winners got distinct ids and non-overlapping subnets
    let subnets: Vec<String> = ids.iter().map(|id| c.host(2).subnet_of(id)).collect();
    for (i, a) in subnets.iter().enumerate() {
        for b in &subnets[i + 1..] {
            assert!(!overlaps4(a, b), "{a} and {b} overlap: {subnets:?}");
        }
    }
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        ids.len()
    );
}

#[test]
fn twenty_containers_at_once_across_three_hosts() {
    let c = Cluster::new(3);
    let id = c.create_overlay(0, "crowd");
    c.wait_network_everywhere("crowd", &id);
    let subnet = c.host(1).subnet_of("crowd");
    let gateway = c.host(1).inspect("crowd")["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap_or("")
        .to_string();
    // busybox image made on every host first: not part of the race
    for h in &c.hosts {
        ok(&h.cli(&["run", "--rm", "busybox", "true"]), "warm up");
    }
    let n = 20;
    let barrier = Barrier::new(n);
    let outs: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|k| {
                let h = &c.hosts[k % 3];
                let (barrier, bin, uri) = (&barrier, berth_e2e::berth_bin(), h.host_uri());
                s.spawn(move || {
                    barrier.wait();
                    berth_e2e::run(
                        Command::new(bin).args([
                            "-H",
                            &uri,
                            "run",
                            "-d",
                            "--net=crowd",
                            "--name",
                            &format!("c{k}"),
                            "busybox",
                            "sleep",
                            "1d",
                        ]),
                        Duration::from_secs(120),
                    )
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (k, o) in outs.iter().enumerate() {
        ok(o, &format!("run c{k}"));
    }
    let all = assert_no_duplicate_addresses(&c, "crowd");
    assert_eq!(all.len(), n, "{all:?}");
    let (net, plen) = cidr4(&subnet);
    for (_, name, ip) in &all {
        let a: Ipv4Addr = ip.parse().unwrap();
        let mask = u32::MAX << (32 - plen);
        assert_eq!(u32::from(a) & mask, net, "{name} {ip} outside {subnet}");
        assert_ne!(*ip, gateway, "{name} got the gateway");
    }
    // every name resolves to its address from a container on host 0, and every address answers
    let c0 = &c.hosts[0];
    wait_until(5 * SEC, "all 20 names on host 0", || {
        all.iter()
            .all(|(_, name, ip)| resolve(c0, "c0", name) == [ip.as_str()])
    });
    let ips: Vec<&str> = all
        .iter()
        .filter(|(_, name, _)| name != "c0")
        .map(|(_, _, ip)| ip.as_str())
        .collect();
    let script = format!(
        "for ip in {}; do ping -c1 -W2 $ip >/dev/null || echo unreachable $ip; done",
        ips.join(" ")
    );
    let o = berth_e2e::cluster::exec(c0, "c0", &["sh", "-c", &script]);
    assert_eq!(ok(&o, "ping all"), "", "from c0");
}
