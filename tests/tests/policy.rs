//! Network policy proven with traffic between real containers: same network talks, different
//! networks are isolated, internal networks reach nothing outside, others reach an "outside"
//! namespace through masquerade. The outside is a namespace of the test's own.

use berth_e2e::net::Outside;
use berth_e2e::ok;
use berth_e2e::Lab;

fn ip_of(lab: &Lab, c: &str, net: &str) -> String {
    ok(
        &lab.docker(&[
            "inspect",
            &format!("--format={{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
            c,
        ]),
        "inspect ip",
    )
}

fn pings(lab: &Lab, from: &str, to: &str) -> bool {
    lab.docker(&["exec", from, "ping", "-c1", "-W1", to])
        .status
        .success()
}

#[test]
fn isolation_internal_and_masquerade() {
    let lab = Lab::start();
    let _out = Outside::new(&lab);
    for n in ["net_a", "net_b"] {
        ok(&lab.docker(&["network", "create", n]), "network create");
    }
    ok(
        &lab.docker(&["network", "create", "--internal", "inside"]),
        "internal",
    );
    for (c, n) in [
        ("a1", "net_a"),
        ("a2", "net_a"),
        ("b1", "net_b"),
        ("i1", "inside"),
        ("i2", "inside"),
    ] {
        ok(
            &lab.docker(&[
                "run", "-d", "--name", c, "--net", n, "busybox", "sleep", "600",
            ]),
            "run",
        );
    }
    let a2 = ip_of(&lab, "a2", "net_a");
    let b1 = ip_of(&lab, "b1", "net_b");
    let i2 = ip_of(&lab, "i2", "inside");
    assert!(pings(&lab, "a1", &a2), "same network talks");
    assert!(!pings(&lab, "a1", &b1), "net_a → net_b isolated");
    assert!(!pings(&lab, "b1", &a2), "net_b → net_a isolated");
    assert!(pings(&lab, "i1", &i2), "internal network talks inside");
    assert!(
        pings(&lab, "a1", "198.51.100.2"),
        "egress through masquerade"
    );
    assert!(
        !pings(&lab, "i1", "198.51.100.2"),
        "internal reaches nothing outside"
    );
    assert!(!pings(&lab, "i1", &a2), "internal → other network isolated");
}

#[test]
fn icc_false_blocks_container_to_container() {
    let lab = Lab::start();
    ok(
        &lab.docker(&[
            "network",
            "create",
            "-o",
            "com.docker.network.bridge.enable_icc=false",
            "noicc",
        ]),
        "network create",
    );
    for c in ["n1", "n2"] {
        ok(
            &lab.docker(&[
                "run", "-d", "--name", c, "--net", "noicc", "busybox", "sleep", "600",
            ]),
            "run",
        );
    }
    let n2 = ip_of(&lab, "n2", "noicc");
    assert!(
        !pings(&lab, "n1", &n2),
        "icc=false blocks container to container"
    );
    let gw = ok(
        &lab.docker(&[
            "network",
            "inspect",
            "--format={{(index .IPAM.Config 0).Gateway}}",
            "noicc",
        ]),
        "gateway",
    );
    let gw = if gw.is_empty() {
        n2.rsplit_once('.').unwrap().0.to_string() + ".1"
    } else {
        gw
    };
    assert!(pings(&lab, "n1", &gw), "the host (gateway) still answers");
}
