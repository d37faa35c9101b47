//! The crash campaign on overlays (issue 12): on a two-host lab, host 0's berthd dies with
//! SIGKILL at every failpoint of overlay network create and rm, and of an overlay connect and
//! disconnect (each cluster-store write and kernel step, `berth_net::fail::POINTS`); it is
//! started again, and then: no VXLAN device, veth or namespace is left that nothing uses, no
//! address is held twice across the hosts, the cluster store's endpoint records and address
//! claims are exactly what runs, host 1 programs exactly host 0's live endpoints as peers,
//! the operation retried succeeds (or answers that it is done), and traffic crosses the hosts.

use berth_e2e::cluster::{
    all_addresses, assert_no_duplicate_addresses, kernel, nsexec, overlay_body, run_sleeper,
    wait_state, Cluster, ClusterOpts, ETCD_PORT,
};
use berth_e2e::http::call;
use berth_e2e::net::in_netns;
use berth_e2e::Lab;
use berth_net::fail::POINTS;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const SEC: Duration = Duration::from_secs(1);
/// The network every case uses (made by host 1) and the one create and rm make (on host 0).
const NET: &str = "ovf";
const NEW: &str = "ovx";
const SUBJECT: &str = "subj";
const FAR: &str = "far";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Create,
    Rm,
    Connect,
    Disconnect,
}

impl Op {
    fn prefixes(self) -> &'static [&'static str] {
        match self {
            Op::Create => &["overlay-create/"],
            Op::Rm => &["overlay-rm/"],
            Op::Connect => &["overlay-connect/"],
            // the local record and veth first (the points every disconnect has), then the
            // cluster store, in the background after the answer
            Op::Disconnect => &[
                "disconnect/stored",
                "disconnect/veth",
                "overlay-disconnect/",
            ],
        }
    }

    fn points(self) -> Vec<&'static str> {
        berth_net::fail::points_under(self.prefixes())
    }
}

fn connect(lab: &Lab) -> Option<(u16, Value)> {
    let body = json!({"Container": SUBJECT});
    call(
        &lab.sock(),
        "POST",
        &format!("/networks/{NET}/connect"),
        Some(body),
    )
}

fn disconnect(lab: &Lab) -> Option<(u16, Value)> {
    let body = json!({"Container": SUBJECT});
    call(
        &lab.sock(),
        "POST",
        &format!("/networks/{NET}/disconnect"),
        Some(body),
    )
}

// ------------------------------------------------------------------ the cluster store

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unb64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, b) in c.iter().enumerate() {
            n |= (val(*b) as u32) << (18 - 6 * i);
        }
        out.extend(n.to_be_bytes()[1..c.len()].iter());
    }
    out
}

/// Keys and values under `/berth/v1/<rel>` (etcd's v3 JSON gateway, from the underlay).
fn store_range(c: &Cluster, rel: &str) -> Vec<(String, Value)> {
    let key = format!("/berth/v1/{rel}");
    let mut end = key.clone().into_bytes();
    *end.last_mut().unwrap() += 1;
    let body = json!({"key": b64(key.as_bytes()), "range_end": b64(&end)}).to_string();
    let to: SocketAddr = format!("{}:{ETCD_PORT}", c.etcd_member_ip(0))
        .parse()
        .unwrap();
    let req = format!(
        "POST /v3/kv/range HTTP/1.0\r\nHost: {to}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let out = in_netns(format!("/run/netns/{}", c.underlay), move || {
        let mut s = TcpStream::connect_timeout(&to, SEC).unwrap();
        s.set_read_timeout(Some(3 * SEC)).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    });
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["kvs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|kv| {
            let k = String::from_utf8(unb64(kv["key"].as_str().unwrap())).unwrap();
            let v = unb64(kv["value"].as_str().unwrap_or(""));
            (k, serde_json::from_slice(&v).unwrap_or(Value::Null))
        })
        .collect()
}

// ------------------------------------------------------------------ the lab

struct Fixture {
    c: Cluster,
    armed: PathBuf,
    /// the network's id and gateway
    net: (String, String),
}

fn fixture() -> Fixture {
    let mut c = Cluster::with(ClusterOpts {
        hosts: 2,
        start_daemons: false,
        ..ClusterOpts::default()
    });
    let armed = c.hosts[0].root().join("failpoint");
    std::fs::write(&armed, "").unwrap();
    c.hosts[0].set_daemon_env("BERTH_FAILPOINTS", armed.to_str().unwrap());
    c.start_host(0);
    c.start_host(1);
    let id = c.create_overlay(1, NET);
    c.wait_network_everywhere(NET, &id);
    let gw = c.hosts[1].inspect(NET)["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap_or("")
        .to_string();
    run_sleeper(c.host(1), FAR, &[&format!("--net={NET}")]);
    Fixture {
        c,
        armed,
        net: (id, gw),
    }
}

/// Host 0's containers on the network, by name, with their addresses.
fn on_host0(c: &Cluster) -> BTreeSet<String> {
    all_addresses(c, NET)
        .into_iter()
        .filter(|(h, ..)| *h == 0)
        .map(|(_, _, ip)| ip)
        .collect()
}

/// Berth's veths in host 0's own namespace (the bridge and docker_gwbridge ends).
fn host_veths(lab: &Lab) -> usize {
    lab.links().iter().filter(|l| l.starts_with("veth")).count()
}

/// Links of a kind in a namespace.
fn links_in(ns: &std::path::Path) -> Vec<String> {
    let o = nsexec(ns, &["ip", "-o", "link", "show"]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap().to_string())
        .collect()
}

/// The overlay invariants, once the cluster has settled (a killed host's lease runs out
/// within the TTL, a restarted one republishes): what a crash may leave for a moment is
/// waited for, what stays is reported.
fn check(fx: &Fixture, veths: Veths, what: &str) {
    let c = &fx.c;
    let (nid, gw) = &fx.net;
    let all = assert_no_duplicate_addresses(c, NET);
    let running: BTreeSet<String> = all.iter().map(|(.., ip)| ip.clone()).collect();
    let mine = on_host0(c);
    let host0_vtep = c.host_ip(0);
    wait_state(4 * c.ttl() + 4 * SEC, what, || {
        let mut bad = Vec::new();
        // the cluster store: one endpoint record per running address, claims for exactly
        // those (and the gateway, if the IPAM claims it)
        let recs: BTreeSet<String> = store_range(c, &format!("endpoints/{nid}/"))
            .into_iter()
            .filter_map(|(_, v)| {
                v["ipv4"]
                    .as_str()
                    .map(|s| s.split('/').next().unwrap().to_string())
            })
            .collect();
        if recs != running {
            bad.push(format!("endpoint records {recs:?}, running {running:?}"));
        }
        let claims: BTreeSet<String> = store_range(c, &format!("ipam/{nid}/"))
            .into_iter()
            .map(|(k, _)| k.rsplit('/').next().unwrap().to_string())
            .filter(|ip| ip != gw)
            .collect();
        if claims != running {
            bad.push(format!("address claims {claims:?}, running {running:?}"));
        }
        // the global networks: the store's records, its names, and every host's list agree
        let recorded: BTreeSet<String> = store_range(c, "networks/")
            .into_iter()
            .map(|(k, _)| k.rsplit('/').next().unwrap().to_string())
            .collect();
        let names = store_range(c, "names/").len();
        if names != recorded.len() {
            bad.push(format!("{names} names for networks {recorded:?}"));
        }
        for (i, h) in c.hosts.iter().enumerate() {
            let (_, list) = h.api("GET", "/networks", None);
            let global: BTreeSet<String> = list
                .as_array()
                .into_iter()
                .flatten()
                .filter(|n| n["Scope"] == "global")
                .map(|n| n["Id"].as_str().unwrap().to_string())
                .collect();
            if global != recorded {
                bad.push(format!("host {i} lists {global:?}, the store {recorded:?}"));
            }
        }
        // host 0's data path: a namespace with one VXLAN device and one veth per endpoint
        // while it has endpoints, nothing once it has none
        let ovl: Vec<String> = std::fs::read_dir(c.host(0).exec_root().join("netns"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("ovl-"))
                    .collect()
            })
            .unwrap_or_default();
        match kernel::overlay_ns(c.host(0), nid) {
            Some(ns) => {
                let links = links_in(&ns);
                let vx = links.iter().filter(|l| l.starts_with("vxlan")).count();
                let ve = links.iter().filter(|l| l.starts_with("veth")).count();
                if mine.is_empty() || vx != 1 || ve != mine.len() || ovl.len() != 1 {
                    bad.push(format!(
                        "host 0: {} endpoints, overlay namespaces {ovl:?} with {links:?}",
                        mine.len()
                    ));
                }
            }
            None if !mine.is_empty() || !ovl.is_empty() => bad.push(format!(
                "host 0: {} endpoints, overlay namespaces {ovl:?}",
                mine.len()
            )),
            None => {}
        }
        let subject = c
            .host(0)
            .api("GET", &format!("/containers/{SUBJECT}/json"), None)
            .0
            == 200;
        let want = match (subject, mine.is_empty()) {
            (false, _) => veths.none,
            (true, true) => veths.off,
            (true, false) => veths.on,
        };
        let have = host_veths(c.host(0));
        if have != want {
            bad.push(format!("host 0: {have} veths, {want} expected"));
        }
        // host 1's peers: exactly host 0's live endpoints point at host 0's VTEP
        if let Some(ns) = kernel::overlay_ns(c.host(1), nid) {
            let peers: BTreeSet<String> = kernel::vxlan_fdb(&ns)
                .into_iter()
                .filter(|(_, dst)| *dst == host0_vtep)
                .map(|(mac, _)| mac)
                .collect();
            let want: BTreeSet<String> = mine.iter().map(|ip| kernel::mac_for(ip)).collect();
            if peers != want {
                bad.push(format!("host 1 peers of host 0 {peers:?}, want {want:?}"));
            }
        }
        (bad.is_empty(), bad.join("; "))
    });
}

/// The subject pings the far container across the hosts, and back (by address).
fn traffic(c: &Cluster, what: &str) {
    let far = berth_e2e::cluster::ip_of(c.host(1), FAR, NET);
    let me = berth_e2e::cluster::ip_of(c.host(0), SUBJECT, NET);
    wait_state(5 * SEC, what, || {
        let there = berth_e2e::cluster::pings(c.host(0), SUBJECT, &far);
        let back = berth_e2e::cluster::pings(c.host(1), FAR, &me);
        (
            there && back,
            format!("{me} → {far}: {there}, back: {back}"),
        )
    });
}

fn setup(fx: &Fixture, op: Op) {
    let lab = fx.c.host(0);
    match op {
        Op::Create => {}
        Op::Rm => {
            let id = fx.c.create_overlay(0, NEW);
            fx.c.wait_network_everywhere(NEW, &id);
        }
        Op::Connect | Op::Disconnect => {
            run_sleeper(lab, SUBJECT, &[]);
            if op == Op::Disconnect {
                assert_eq!(connect(lab).map(|r| r.0), Some(200));
            }
        }
    }
}

fn perform(lab: &Lab, op: Op) {
    match op {
        Op::Create => {
            call(
                &lab.sock(),
                "POST",
                "/networks/create",
                Some(overlay_body(NEW)),
            );
        }
        Op::Rm => {
            call(&lab.sock(), "DELETE", &format!("/networks/{NEW}"), None);
        }
        Op::Connect => {
            connect(lab);
        }
        Op::Disconnect => {
            disconnect(lab);
        }
    }
}

/// The operation again: it succeeds, or answers that it is done; then its promise.
fn retry_and_verify(fx: &Fixture, op: Op, what: &str) {
    let c = &fx.c;
    let lab = c.host(0);
    match op {
        Op::Create => {
            let r = call(
                &lab.sock(),
                "POST",
                "/networks/create",
                Some(overlay_body(NEW)),
            );
            assert!(matches!(r, Some((201 | 409, _))), "{what}: create → {r:?}");
            let id = lab.inspect(NEW)["Id"].as_str().unwrap().to_string();
            c.wait_network_everywhere(NEW, &id);
        }
        Op::Rm => {
            let r = call(&lab.sock(), "DELETE", &format!("/networks/{NEW}"), None);
            assert!(matches!(r, Some((204 | 404, _))), "{what}: rm → {r:?}");
            c.wait_network_gone_everywhere(NEW);
        }
        Op::Connect => {
            let r = connect(lab);
            assert!(matches!(r, Some((200 | 403, _))), "{what}: connect → {r:?}");
            traffic(c, what);
        }
        Op::Disconnect => {
            let r = disconnect(lab);
            assert!(
                matches!(r, Some((200 | 500, _))),
                "{what}: disconnect → {r:?}"
            );
            assert!(on_host0(c).is_empty(), "{what}: still on {NET}");
            // and it can join again, across the hosts
            assert_eq!(
                connect(lab).map(|r| r.0),
                Some(200),
                "{what}: connect again"
            );
            traffic(c, what);
        }
    }
}

fn cleanup(fx: &Fixture, op: Op) {
    let lab = fx.c.host(0);
    match op {
        Op::Create => {
            let (st, v) = lab.api("DELETE", &format!("/networks/{NEW}"), None);
            assert_eq!(st, 204, "{v}");
            fx.c.wait_network_gone_everywhere(NEW);
        }
        Op::Rm => {}
        Op::Connect | Op::Disconnect => {
            let (st, v) = lab.api("DELETE", &format!("/containers/{SUBJECT}?force=1"), None);
            assert_eq!(st, 204, "{v}");
        }
    }
}

/// Host 0's veths in its own namespace without the subject, with it off and on the overlay,
/// measured on a run of the operation without a crash.
#[derive(Clone, Copy)]
struct Veths {
    none: usize,
    off: usize,
    on: usize,
}

fn veth_baseline(fx: &Fixture) -> Veths {
    let lab = fx.c.host(0);
    let none = host_veths(lab);
    run_sleeper(lab, SUBJECT, &[]);
    let off = host_veths(lab);
    assert_eq!(connect(lab).map(|r| r.0), Some(200));
    let on = host_veths(lab);
    traffic(&fx.c, "the baseline");
    let (st, v) = lab.api("DELETE", &format!("/containers/{SUBJECT}?force=1"), None);
    assert_eq!(st, 204, "{v}");
    eprintln!("host 0's veths: {none} without the subject, {off} off the overlay, {on} on it");
    Veths { none, off, on }
}

fn campaign(op: Op) {
    let points = op.points();
    assert!(!points.is_empty(), "{op:?} has no failpoint");
    let mut fx = fixture();
    let t0 = Instant::now();
    let veths = veth_baseline(&fx);
    check(&fx, veths, &format!("{op:?}: the fixture"));
    for point in &points {
        let what = format!("overlay {op:?} killed at {point}");
        setup(&fx, op);
        std::fs::write(&fx.armed, point).unwrap();
        perform(fx.c.host(0), op);
        let died = fx.c.hosts[0].wait_died(10 * SEC);
        std::fs::write(&fx.armed, "").unwrap();
        assert!(died, "{what}: not reached");
        fx.c.start_again(0);
        check(&fx, veths, &what);
        retry_and_verify(&fx, op, &what);
        check(&fx, veths, &format!("{what}, after the retry"));
        cleanup(&fx, op);
        eprintln!("{what}: survived");
    }
    // the subject gone: the data path on host 0 goes after its idle time, nothing else stays
    check(&fx, veths, &format!("{op:?}: the end"));
    eprintln!(
        "overlay {op:?}: {} failpoints, each killed, restarted, checked and retried, in {:?}",
        points.len(),
        t0.elapsed()
    );
}

#[test]
fn every_overlay_failpoint_is_on_the_path_of_an_operation() {
    for p in POINTS.iter().filter(|p| p.starts_with("overlay-")) {
        assert!(
            [Op::Create, Op::Rm, Op::Connect, Op::Disconnect]
                .iter()
                .any(|op| op.points().contains(p)),
            "failpoint {p} belongs to no overlay operation of the campaign"
        );
    }
}

#[test]
fn overlay_create() {
    campaign(Op::Create);
}

#[test]
fn overlay_rm() {
    campaign(Op::Rm);
}

#[test]
fn overlay_connect() {
    campaign(Op::Connect);
}

#[test]
fn overlay_disconnect() {
    campaign(Op::Disconnect);
}
