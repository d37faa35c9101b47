//! A network driver plugin end to end: the real `berth-testplug` (Docker's remote protocol on
//! a unix socket) runs in the lab host beside berthd, found through `--plugins-dir`; networks
//! created with `-d testplug` get their bridge from the plugin, containers their interface
//! from its Join, and every call reaches it in libnetwork's order.

use berth_e2e::plug::*;
use berth_e2e::{fails, ok};
use std::time::{Duration, Instant};

#[test]
fn network_plugin_drives_networks_and_endpoints() {
    let (lab, _plug, record) = lab_with_plugin(&[]);

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
        "create",
    );
    let inspect = lab.inspect("pnet");
    assert_eq!(inspect["Driver"], "testplug");
    assert_eq!(inspect["Scope"], "local");
    let id = inspect["Id"].as_str().unwrap().to_string();
    // the plugin made its bridge with the gateway address berth's IPAM gave it
    let bridge = format!("tpbr{}", &id[..8]);
    assert!(lab.link_exists(&bridge), "{:?}", lab.links());
    assert!(
        lab.addrs(&bridge).iter().any(|a| a == "10.77.0.1/24"),
        "{:?}",
        lab.addrs(&bridge)
    );
    let info = lab.api("GET", "/info", None).1;
    assert!(
        info["Plugins"]["Network"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == "testplug"),
        "{info}"
    );

    ok(
        &lab.cli(&[
            "run", "-d", "--net", "pnet", "--name", "pa", "busybox", "sleep", "1d",
        ]),
        "run pa",
    );
    ok(
        &lab.cli(&[
            "run", "-d", "--net", "pnet", "--name", "pb", "busybox", "sleep", "1d",
        ]),
        "run pb",
    );
    let addr = ok(
        &lab.cli(&["exec", "pa", "ip", "addr", "show", "eth0"]),
        "ip",
    );
    assert!(addr.contains("inet 10.77.0.2/24"), "{addr}");
    assert!(addr.contains("02:42:0a:4d:00:02"), "{addr}");
    // real traffic through the plugin's bridge, and names from the embedded DNS
    ok(
        &lab.cli(&["exec", "pa", "ping", "-c", "1", "-W", "2", "10.77.0.3"]),
        "ping by address",
    );
    ok(
        &lab.cli(&["exec", "pa", "ping", "-c", "1", "-W", "2", "pb"]),
        "ping by name",
    );
    let route = ok(&lab.cli(&["exec", "pa", "ip", "route"]), "route");
    assert!(route.contains("default via 10.77.0.1"), "{route}");

    // rm refused while endpoints exist; the plugin is not asked
    let err = fails(&lab.cli(&["network", "rm", "pnet"]));
    assert!(err.contains("has active endpoints"), "{err}");

    ok(&lab.cli(&["rm", "-f", "pa", "pb"]), "rm");
    ok(&lab.cli(&["network", "rm", "pnet"]), "network rm");
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab.link_exists(&bridge) {
        assert!(Instant::now() < deadline, "the plugin's bridge stayed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let c = calls(&record);
    let order: Vec<&str> = c
        .iter()
        .map(String::as_str)
        .filter(|m| m.starts_with("NetworkDriver."))
        .collect();
    let pos = |m: &str| {
        order
            .iter()
            .position(|x| *x == m)
            .unwrap_or_else(|| panic!("{m} never called: {order:?}"))
    };
    assert_eq!(
        c.first().map(String::as_str),
        Some("Plugin.Activate"),
        "{c:?}"
    );
    assert!(pos("NetworkDriver.CreateNetwork") < pos("NetworkDriver.CreateEndpoint"));
    assert!(pos("NetworkDriver.CreateEndpoint") < pos("NetworkDriver.Join"));
    assert!(pos("NetworkDriver.Join") < pos("NetworkDriver.Leave"));
    assert!(pos("NetworkDriver.Leave") < pos("NetworkDriver.DeleteEndpoint"));
    assert!(pos("NetworkDriver.DeleteEndpoint") < pos("NetworkDriver.DeleteNetwork"));
    for m in ["Join", "Leave", "CreateEndpoint", "DeleteEndpoint"] {
        let n = order
            .iter()
            .filter(|x| **x == format!("NetworkDriver.{m}"))
            .count();
        assert_eq!(n, 2, "{m}: {order:?}");
    }
    assert!(lab.veths_left().is_empty(), "{:?}", lab.veths_left());
}

#[test]
fn a_failing_plugin_leaves_nothing_behind() {
    let (lab, _plug, record) = lab_with_plugin(&["--fail", "NetworkDriver.Join=no join today"]);
    ok(
        &lab.cli(&[
            "network",
            "create",
            "-d",
            "testplug",
            "--subnet",
            "10.78.0.0/24",
            "pnet",
        ]),
        "create",
    );
    let err = fails(&lab.cli(&[
        "run", "-d", "--net", "pnet", "--name", "pa", "busybox", "sleep", "1d",
    ]));
    assert!(err.contains("no join today"), "{err}");
    // the endpoint was undone with the plugin too, and its address is free again
    let c = calls(&record);
    assert!(
        c.iter().any(|m| m == "NetworkDriver.DeleteEndpoint"),
        "{c:?}"
    );
    assert_eq!(lab.inspect("pnet")["Containers"], serde_json::json!({}));
    ok(&lab.cli(&["rm", "-f", "pa"]), "rm");
    ok(&lab.cli(&["network", "rm", "pnet"]), "network rm");
}

#[test]
fn published_ports_reach_the_plugin_in_dockers_order() {
    let (lab, _plug, record) = lab_with_plugin(&[]);
    ok(
        &lab.cli(&[
            "network",
            "create",
            "-d",
            "testplug",
            "--subnet",
            "10.81.0.0/24",
            "pnet",
        ]),
        "create",
    );
    let start = calls(&record).len();
    ok(
        &lab.cli(&[
            "run", "-d", "--net", "pnet", "-p", "8080:80", "-p", "53/udp", "--name", "pp",
            "busybox", "sleep", "1d",
        ]),
        "run",
    );
    assert_eq!(
        net_calls_since(&record, start),
        [
            "NetworkDriver.CreateEndpoint",
            "NetworkDriver.Join",
            "NetworkDriver.ProgramExternalConnectivity"
        ]
    );
    let recs = records(&record);
    let prog = recs
        .iter()
        .find(|r| r["Method"] == "NetworkDriver.ProgramExternalConnectivity")
        .unwrap();
    let o = &prog["Request"]["Options"];
    let pm = o["com.docker.network.portmap"].as_array().unwrap();
    assert!(
        pm.iter()
            .any(|p| p["Proto"] == 6 && p["Port"] == 80 && p["HostPort"] == 8080),
        "{prog}"
    );
    assert!(
        pm.iter().any(|p| p["Proto"] == 17 && p["Port"] == 53),
        "{prog}"
    );
    let ex = o["com.docker.network.endpoint.exposedports"]
        .as_array()
        .unwrap();
    assert_eq!(ex.len(), 2, "{prog}");
    let ep = recs
        .iter()
        .find(|r| r["Method"] == "NetworkDriver.Join")
        .unwrap()["Request"]["EndpointID"]
        .clone();
    assert_eq!(prog["Request"]["EndpointID"], ep);
    // the plugin's Join gateway is the container's
    let route = ok(&lab.cli(&["exec", "pp", "ip", "route"]), "route");
    assert!(route.contains("default via 10.81.0.1 dev eth0"), "{route}");
    let gw = lab.api("GET", "/containers/pp/json", None).1;
    assert_eq!(
        gw["NetworkSettings"]["Networks"]["pnet"]["Gateway"], "10.81.0.1",
        "{gw}"
    );

    let start = calls(&record).len();
    ok(&lab.cli(&["rm", "-f", "pp"]), "rm");
    wait_for(&record, "NetworkDriver.DeleteEndpoint", 1);
    assert_eq!(
        net_calls_since(&record, start),
        [
            "NetworkDriver.RevokeExternalConnectivity",
            "NetworkDriver.Leave",
            "NetworkDriver.DeleteEndpoint"
        ]
    );
    ok(&lab.cli(&["network", "rm", "pnet"]), "network rm");
}

#[test]
fn a_join_without_gateway_gets_the_gateway_service() {
    let (lab, _plug, record) = lab_with_plugin(&["--no-gateway"]);
    ok(
        &lab.cli(&[
            "network",
            "create",
            "-d",
            "testplug",
            "--subnet",
            "10.82.0.0/24",
            "wnet",
        ]),
        "create",
    );
    ok(
        &lab.cli(&[
            "run", "-d", "--net", "wnet", "-p", "8080:80", "--name", "wa", "busybox", "sleep", "1d",
        ]),
        "run",
    );
    // Weave's way: no gateway from Join, so docker_gwbridge gives the way out (and the ports)
    let links = ok(&lab.cli(&["exec", "wa", "ip", "-o", "link"]), "links");
    assert!(links.contains("eth1"), "{links}");
    let route = ok(&lab.cli(&["exec", "wa", "ip", "route"]), "route");
    assert!(
        route.contains("default via") && route.contains("dev eth1"),
        "{route}"
    );
    assert!(!route.contains("default via 10.82.0.1"), "{route}");
    let c = calls(&record);
    assert!(
        !c.iter()
            .any(|m| m == "NetworkDriver.ProgramExternalConnectivity"),
        "{c:?}"
    );
    let gw = lab.inspect("docker_gwbridge");
    assert_eq!(gw["Containers"].as_object().unwrap().len(), 1, "{gw}");
    ok(&lab.cli(&["rm", "-f", "wa"]), "rm");
    wait_for(&record, "NetworkDriver.DeleteEndpoint", 1);
    assert!(!calls(&record)
        .iter()
        .any(|m| m == "NetworkDriver.RevokeExternalConnectivity"));
    let gw = lab.inspect("docker_gwbridge");
    assert_eq!(gw["Containers"], serde_json::json!({}), "{gw}");
    ok(&lab.cli(&["network", "rm", "wnet"]), "network rm");
}

#[test]
fn the_next_gateway_endpoint_is_programmed_before_the_old_one_is_deleted() {
    let (lab, _plug, record) = lab_with_plugin(&[]);
    for (name, subnet) in [("pone", "10.83.0.0/24"), ("ptwo", "10.84.0.0/24")] {
        ok(
            &lab.cli(&[
                "network", "create", "-d", "testplug", "--subnet", subnet, name,
            ]),
            "create",
        );
    }
    ok(
        &lab.cli(&[
            "run", "-d", "--net", "pone", "-p", "8080:80", "--name", "ho", "busybox", "sleep", "1d",
        ]),
        "run",
    );
    ok(&lab.cli(&["network", "connect", "ptwo", "ho"]), "connect");
    let eps = lab.api("GET", "/containers/ho/json", None).1["NetworkSettings"]["Networks"].clone();
    let (one, two) = (
        eps["pone"]["EndpointID"].clone(),
        eps["ptwo"]["EndpointID"].clone(),
    );
    // the first endpoint stays the gateway endpoint while both are attached
    let programmed: Vec<_> = records(&record)
        .into_iter()
        .filter(|r| r["Method"] == "NetworkDriver.ProgramExternalConnectivity")
        .map(|r| r["Request"]["EndpointID"].clone())
        .collect();
    assert_eq!(programmed, std::slice::from_ref(&one));

    let start = records(&record).len();
    ok(
        &lab.cli(&["network", "disconnect", "pone", "ho"]),
        "disconnect",
    );
    wait_for(&record, "NetworkDriver.DeleteEndpoint", 1);
    // libnetwork's sbLeave: Revoke and Leave of the old gateway endpoint, Program of the one
    // taking over (with the container's ports), then the old one's DeleteEndpoint
    let seq: Vec<(String, serde_json::Value)> = records(&record)
        .into_iter()
        .skip(start)
        .filter(|r| r["Method"].as_str().unwrap().starts_with("NetworkDriver."))
        .map(|r| {
            (
                r["Method"].as_str().unwrap().to_string(),
                r["Request"].clone(),
            )
        })
        .collect();
    let got: Vec<(&str, &serde_json::Value)> = seq
        .iter()
        .map(|(m, r)| (m.as_str(), &r["EndpointID"]))
        .collect();
    assert_eq!(
        got,
        [
            ("NetworkDriver.RevokeExternalConnectivity", &one),
            ("NetworkDriver.Leave", &one),
            ("NetworkDriver.ProgramExternalConnectivity", &two),
            ("NetworkDriver.DeleteEndpoint", &one),
        ]
    );
    let pm = &seq[2].1["Options"]["com.docker.network.portmap"];
    assert_eq!(pm[0]["HostPort"], 8080, "{pm}");
    let route = ok(&lab.cli(&["exec", "ho", "ip", "route"]), "route");
    assert!(route.contains("default via 10.84.0.1"), "{route}");
    ok(&lab.cli(&["rm", "-f", "ho"]), "rm");
    ok(&lab.cli(&["network", "rm", "pone", "ptwo"]), "network rm");
}

/// The container ends the plugin handed out (`tpc…`) in the lab host's namespace.
fn plugin_links_home(lab: &berth_e2e::Lab) -> Vec<String> {
    lab.links()
        .into_iter()
        .filter(|l| l.starts_with("tpc"))
        .collect()
}

#[test]
fn leave_gives_the_plugins_link_back_under_its_name() {
    // DeleteEndpoint answers (and deletes the pair) only after 2 s: what Leave left is seen
    let flags = [
        "--range",
        "10.133.0.0/16",
        "--delay",
        "NetworkDriver.DeleteEndpoint=2000",
    ];
    let (lab, _plug, record) = lab_with_plugin(&flags);
    ok(
        &lab.cli(&["network", "create", "-d", "testplug", "gnet"]),
        "create",
    );
    for name in ["ga", "gb"] {
        ok(
            &lab.cli(&[
                "run", "-d", "--net", "gnet", "--name", name, "busybox", "sleep", "1d",
            ]),
            name,
        );
    }
    assert!(plugin_links_home(&lab).is_empty(), "{:?}", lab.links());
    // a disconnect, and a container removed (its namespace goes right after), as Docker:
    // Leave, the link moved back down and under the plugin's name, then DeleteEndpoint
    for (n, cmd) in [
        (1, vec!["network", "disconnect", "gnet", "ga"]),
        (2, vec!["rm", "-f", "gb"]),
    ] {
        ok(&lab.cli(&cmd), "leave");
        wait_for(&record, "NetworkDriver.DeleteEndpoint", n);
        let home = plugin_links_home(&lab);
        assert_eq!(home.len(), 1, "{cmd:?}: {:?}", lab.links());
        let link = lab.link(&home[0]).expect("listed");
        let flags: Vec<&str> = link["flags"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f.as_str())
            .collect();
        assert!(!flags.contains(&"UP"), "{link}");
        // then the plugin's DeleteEndpoint deletes it
        assert!(lab.link_gone(&home[0]), "{:?}", lab.links());
    }
    let eth = lab.cli(&["exec", "ga", "ip", "link", "show", "eth0"]);
    assert!(!eth.status.success(), "ga still has its eth0");
}

#[test]
fn a_join_that_fails_after_the_move_gives_the_link_back_too() {
    // a static route via a next hop off every link: the kernel refuses it after the move
    let flags = [
        "--range",
        "10.134.0.0/16",
        "--route",
        "10.77.0.0/16=192.0.2.1",
        "--delay",
        "NetworkDriver.DeleteEndpoint=2000",
    ];
    let (lab, _plug, record) = lab_with_plugin(&flags);
    ok(
        &lab.cli(&["network", "create", "-d", "testplug", "fnet"]),
        "create",
    );
    ok(
        &lab.cli(&["run", "-d", "--name", "fa", "busybox", "sleep", "1d"]),
        "run",
    );
    let connect = std::process::Command::new(berth_e2e::berth_bin())
        .arg("-H")
        .arg(lab.host_uri())
        .args(["network", "connect", "fnet", "fa"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // undone as Docker undoes: Leave, the link back under the plugin's name, DeleteEndpoint
    wait_for(&record, "NetworkDriver.DeleteEndpoint", 1);
    let home = plugin_links_home(&lab);
    assert_eq!(home.len(), 1, "{:?}", lab.links());
    let out = connect.wait_with_output().unwrap();
    let err = fails(&out);
    assert!(err.contains("route to 10.77.0.0/16"), "{err}");
    assert!(lab.link_gone(&home[0]), "{:?}", lab.links());
    let c = calls(&record);
    let n = c.len();
    assert_eq!(
        c[n - 3..],
        [
            "NetworkDriver.Join",
            "NetworkDriver.Leave",
            "NetworkDriver.DeleteEndpoint"
        ],
        "{c:?}"
    );
    let eth = lab.cli(&["exec", "fa", "ip", "link", "show", "eth1"]);
    assert!(!eth.status.success(), "fa kept an eth1");
}
