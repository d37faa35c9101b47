//! `--ip`/`--ip6` and their errors, with the docker CLI against berthd (issue 3).

use berth_e2e::Lab;
use std::process::Output;

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {}{}", out(&o), stderr(&o));
    out(&o)
}

#[test]
fn static_addresses_and_their_errors() {
    let lab = Lab::start();
    let d = |a: &[&str]| lab.docker(a);
    ok(
        d(&[
            "network",
            "create",
            "--subnet",
            "10.91.0.0/24",
            "--ipv6",
            "--subnet",
            "fd00:91::/64",
            "fixed",
        ]),
        "create",
    );
    ok(d(&["network", "create", "auto"]), "create auto");
    ok(
        d(&[
            "run",
            "-d",
            "--name",
            "s1",
            "--net",
            "fixed",
            "--ip",
            "10.91.0.50",
            "--ip6",
            "fd00:91::50",
            "busybox",
            "sleep",
            "600",
        ]),
        "run --ip",
    );
    let addrs = ok(d(&["exec", "s1", "ip", "addr", "show", "eth0"]), "ip addr");
    assert!(addrs.contains("10.91.0.50/24"), "{addrs}");
    assert!(addrs.contains("fd00:91::50/64"), "{addrs}");
    let mac = ok(
        d(&[
            "inspect",
            "--format={{(index .NetworkSettings.Networks \"fixed\").MacAddress}}",
            "s1",
        ]),
        "mac",
    );
    assert_eq!(mac, "02:42:0a:5b:00:32");

    // An automatic address on the same network never takes the static one.
    ok(
        d(&[
            "run", "-d", "--name", "s2", "--net", "fixed", "busybox", "sleep", "600",
        ]),
        "run",
    );
    let ip2 = ok(
        d(&[
            "inspect",
            "--format={{(index .NetworkSettings.Networks \"fixed\").IPAddress}}",
            "s2",
        ]),
        "ip",
    );
    assert_eq!(ip2, "10.91.0.2");
    ok(
        d(&["exec", "s2", "ping", "-c1", "-W2", "10.91.0.50"]),
        "ping the static address",
    );
    ok(
        d(&["exec", "s2", "ping6", "-c1", "-W2", "fd00:91::50"]),
        "ping6 the static address",
    );

    let cases: &[(&[&str], &str)] = &[
        (&["--net", "fixed", "--ip", "10.91.0.50"], "Address already in use"),
        (
            &["--net", "fixed", "--ip", "10.92.0.5"],
            "Invalid address 10.92.0.5: It does not belong to any of this network's subnets",
        ),
        (
            &["--ip", "172.17.0.50"],
            "user specified IP address is supported on user defined networks only",
        ),
        (
            &["--net", "auto", "--ip", "172.18.0.50"],
            "user specified IP address is supported only when connecting to networks with user configured subnets",
        ),
    ];
    for (args, msg) in cases {
        let veths_before = lab.links().iter().filter(|l| l.starts_with("veth")).count();
        let mut a = vec!["run", "-d"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["busybox", "sleep", "600"]);
        let o = d(&a);
        assert!(!o.status.success(), "{a:?} should fail");
        assert!(
            stderr(&o).contains(msg),
            "{a:?}: want {msg:?}, got {}",
            stderr(&o)
        );
        let veths_after = lab.links().iter().filter(|l| l.starts_with("veth")).count();
        assert_eq!(veths_before, veths_after, "{a:?} left a veth behind");
    }
    // Connect with a static address to a running container.
    ok(
        d(&["run", "-d", "--name", "s3", "busybox", "sleep", "600"]),
        "run s3",
    );
    ok(
        d(&["network", "connect", "--ip", "10.91.0.77", "fixed", "s3"]),
        "connect --ip",
    );
    let a3 = ok(d(&["exec", "s3", "ip", "addr", "show", "eth1"]), "eth1");
    assert!(a3.contains("10.91.0.77/24"), "{a3}");
    let o = d(&["network", "connect", "--ip", "10.91.0.78", "fixed", "s3"]);
    assert!(
        stderr(&o).contains("endpoint with name s3 already exists in network fixed"),
        "{}",
        stderr(&o)
    );
    // A stopped (created) container's connect takes effect when it starts.
    ok(
        d(&["create", "--name", "s4", "busybox", "sleep", "600"]),
        "create s4",
    );
    ok(
        d(&["network", "connect", "--ip", "10.91.0.88", "fixed", "s4"]),
        "connect created",
    );
    ok(d(&["start", "s4"]), "start s4");
    let a4 = ok(d(&["exec", "s4", "ip", "addr"]), "ip addr s4");
    assert!(
        a4.contains("172.17.") && a4.contains("10.91.0.88/24"),
        "{a4}"
    );
    let o = d(&["network", "connect", "fixed", "nosuchcontainer"]);
    assert!(
        stderr(&o).contains("No such container: nosuchcontainer"),
        "{}",
        stderr(&o)
    );
    let o = d(&["network", "disconnect", "auto", "s3"]);
    assert!(
        stderr(&o).contains("is not connected to network auto"),
        "{}",
        stderr(&o)
    );
}
