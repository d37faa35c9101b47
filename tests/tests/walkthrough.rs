//! Docker's networking walkthrough (issue 3), end to end in a lab host with real runc
//! containers, once through the real docker CLI and once through berth's own.

use berth_e2e::Lab;
use serde_json::Value;
use std::process::Output;

fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output, what: &str) -> String {
    assert!(!o.status.success(), "{what} should have failed");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The walkthrough with `run` being `docker -H …` or `berth -H …`.
fn walkthrough(run: &dyn Fn(&[&str]) -> Output) {
    let c1 = ok(
        &run(&["run", "-itd", "--name=container1", "busybox"]),
        "run container1",
    );
    assert_eq!(c1.trim().len(), 64, "run -d prints the id: {c1}");
    ok(
        &run(&["run", "-itd", "--name=container2", "busybox"]),
        "run container2",
    );
    ok(
        &run(&["network", "create", "-d", "bridge", "isolated_nw"]),
        "network create",
    );
    ok(
        &run(&["network", "connect", "isolated_nw", "container2"]),
        "connect",
    );

    let net: Value = serde_json::from_str(&ok(
        &run(&["network", "inspect", "isolated_nw"]),
        "network inspect",
    ))
    .unwrap();
    let containers = net[0]["Containers"].as_object().expect("Containers map");
    assert_eq!(containers.len(), 1, "{net}");
    let (_, ep) = containers.iter().next().unwrap();
    assert_eq!(ep["Name"], "container2");
    assert_eq!(ep["EndpointID"].as_str().unwrap().len(), 64);
    let v4 = ep["IPv4Address"].as_str().unwrap();
    let ip2 = v4.split('/').next().unwrap();
    let mac = ep["MacAddress"].as_str().unwrap();
    let octets: Vec<String> = ip2
        .split('.')
        .map(|o| format!("{:02x}", o.parse::<u8>().unwrap()))
        .collect();
    assert_eq!(mac, format!("02:42:{}", octets.join(":")), "MAC from IPv4");

    ok(
        &run(&[
            "run",
            "--net=isolated_nw",
            "-itd",
            "--name=container3",
            "busybox",
        ]),
        "run container3",
    );
    let nets: Value = serde_json::from_str(&ok(
        &run(&[
            "inspect",
            "--format={{json .NetworkSettings.Networks}}",
            "container3",
        ]),
        "inspect container3",
    ))
    .unwrap();
    let n3 = &nets["isolated_nw"];
    assert!(
        n3["IPAddress"]
            .as_str()
            .unwrap()
            .starts_with(&ip2[..ip2.rfind('.').unwrap()]),
        "{nets}"
    );
    assert_eq!(nets.as_object().unwrap().len(), 1);

    let c1_ip = {
        let v: Value = serde_json::from_str(&ok(
            &run(&[
                "inspect",
                "--format={{json .NetworkSettings}}",
                "container1",
            ]),
            "inspect container1",
        ))
        .unwrap();
        v["Networks"]["bridge"]["IPAddress"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        c1_ip.starts_with("172.17."),
        "default bridge address: {c1_ip}"
    );

    let addrs = ok(&run(&["exec", "container2", "ip", "addr"]), "exec ip addr");
    assert!(
        addrs.contains("eth0") && addrs.contains("172.17."),
        "{addrs}"
    );
    assert!(addrs.contains("eth1") && addrs.contains(ip2), "{addrs}");

    ok(
        &run(&["exec", "container2", "ping", "-c1", "-W2", &c1_ip]),
        "container2 pings container1 on the default bridge",
    );
    err(
        &run(&["exec", "container3", "ping", "-c1", "-W1", &c1_ip]),
        "container3 pinging container1 across networks",
    );

    ok(
        &run(&["network", "disconnect", "isolated_nw", "container2"]),
        "disconnect",
    );
    let addrs = ok(&run(&["exec", "container2", "ip", "addr"]), "exec ip addr");
    assert!(
        !addrs.contains("eth1"),
        "eth1 gone after disconnect: {addrs}"
    );

    let e = err(
        &run(&["network", "rm", "isolated_nw"]),
        "rm of a network in use",
    );
    assert!(
        e.contains("error while removing network: network isolated_nw id")
            && e.contains("has active endpoints"),
        "{e}"
    );

    // host and none modes
    let host = ok(
        &run(&["run", "--rm", "--net=host", "busybox", "ip", "link"]),
        "host mode",
    );
    assert!(
        host.contains("berth0"),
        "host mode sees the host's links: {host}"
    );
    let none = ok(
        &run(&["run", "--rm", "--net=none", "busybox", "ip", "link"]),
        "none mode",
    );
    assert!(none.contains("lo") && !none.contains("eth0"), "{none}");

    for c in ["container1", "container2", "container3"] {
        ok(&run(&["rm", "-f", c]), "rm -f");
    }
    ok(
        &run(&["network", "rm", "isolated_nw"]),
        "network rm after the containers left",
    );
}

#[test]
fn walkthrough_with_docker_cli() {
    let lab = Lab::start();
    walkthrough(&|args| lab.docker(args));
    let left = lab.veths_left();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn walkthrough_with_berth_cli() {
    let lab = Lab::start();
    walkthrough(&|args| lab.cli(args));
    let left = lab.veths_left();
    assert!(left.is_empty(), "{left:?}");
}
