//! `berth network diagnose` across hosts, on the multi-host lab (real etcd, real VXLAN): the
//! path through vxlan0 to the peer's VTEP, then the lab broken on purpose — a missing FDB
//! entry for the peer, a container interface whose MTU exceeds the VXLAN device's — and the
//! diagnosis checked, with a real probe where the verdict is black and white.

use berth_e2e::cluster::{ip_of, kernel, nsexec, run_sleeper, sandbox, wait_resolves, Cluster};
use berth_e2e::diag::{all, diag, lines};
use berth_e2e::ok;
use serde_json::Value;
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

#[test]
fn overlay_peer_missing_fdb_and_mtu_mismatch() {
    let c = Cluster::new(2);
    let (a, b) = (c.host(0), c.host(1));
    let id = c.create_overlay(0, "dov");
    c.wait_network_everywhere("dov", &id);
    run_sleeper(a, "o0", &["--net=dov"]);
    run_sleeper(b, "o1", &["--net=dov"]);
    let o1 = ip_of(b, "o1", "dov");
    wait_resolves(a, "o0", "o1", &o1, 3 * SEC);

    // healthy: the path names vxlan0 and B's VTEP, and a real ping agrees
    let v = diag(a, "o0", "o1", true);
    assert_eq!(v["reachable"], true, "{}", all(&v));
    assert_eq!(v["probe"]["agrees"], true, "{}", all(&v));
    let path = lines(&v, "path");
    assert!(path.contains("vxlan0") && path.contains("VTEP"), "{path}");

    // the peer's FDB entry removed behind berthd's back: frames to o1 go nowhere
    let ons = kernel::overlay_ns(a, &id).expect("overlay namespace on A");
    let mac = kernel::mac_for(&o1);
    let fdb = ok(
        &nsexec(&ons, &["bridge", "-j", "fdb", "show", "dev", "vxlan0"]),
        "bridge fdb show",
    );
    let entries: Value = serde_json::from_str(&fdb).unwrap();
    let dst = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["mac"] == mac.as_str() && e["dst"].is_string())
        .unwrap_or_else(|| panic!("no FDB entry for {mac}: {fdb}"))["dst"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        &nsexec(
            &ons,
            &["bridge", "fdb", "del", &mac, "dev", "vxlan0", "dst", &dst],
        ),
        "bridge fdb del",
    );
    let v = diag(a, "o0", "o1", true);
    assert_eq!(v["reachable"], false, "{}", all(&v));
    assert!(lines(&v, "kernel").contains("no FDB entry"), "{}", all(&v));
    assert!(!lines(&v, "fix").is_empty(), "{}", all(&v));
    assert_eq!(v["probe"]["agrees"], true, "{}", all(&v));
    // put back as berthd had it
    ok(
        &nsexec(
            &ons,
            &[
                "bridge",
                "fdb",
                "add",
                &mac,
                "dev",
                "vxlan0",
                "dst",
                &dst,
                "self",
                "permanent",
            ],
        ),
        "bridge fdb add",
    );
    assert_eq!(diag(a, "o0", "o1", false)["reachable"], true);

    // o0's interface raised above vxlan0's MTU: large packets die in the tunnel
    let sb = sandbox(a, "o0");
    ok(
        &nsexec(&sb, &["ip", "link", "set", "eth0", "mtu", "1500"]),
        "raise MTU",
    );
    // small packets still pass, full-size ones die: partly reachable, and the probe's
    // full-size echo (don't fragment) is lost while its small one comes back
    let v = diag(a, "o0", "o1", true);
    assert_eq!(v["reachable"], true, "{}", all(&v));
    assert_eq!(v["verdict"], "PARTLY REACHABLE", "{}", all(&v));
    assert_eq!(v["packet_limit"]["max"], 1450, "{}", all(&v));
    assert_eq!(v["packet_limit"]["mtu"], 1500, "{}", all(&v));
    assert_eq!(v["probe"]["reached"], true, "{}", all(&v));
    assert_eq!(v["probe"]["agrees"], true, "{}", all(&v));
    assert!(
        v["probe"]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("1500-byte echo (don't fragment): no echo reply"),
        "{}",
        all(&v)
    );
    let k = lines(&v, "kernel");
    assert!(k.contains("MTU mismatch") && k.contains("1450"), "{k}");
    assert!(
        lines(&v, "fix").contains("com.docker.network.driver.mtu=1450"),
        "{}",
        all(&v)
    );
}
