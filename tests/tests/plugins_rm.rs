//! `network rm` of plugin networks (plugins.md §4.3, §4.4): an rm right after a disconnect
//! still reaches the plugins in Docker's order (the disconnect answers before its Leave,
//! DeleteEndpoint and ReleaseAddress ran), and an rm whose plugin is gone fails with Docker's
//! error, hides the network, and the next start tells the plugin.

use berth_e2e::plug::*;
use berth_e2e::{fails, ok};
use std::time::Duration;

#[test]
fn an_rm_right_after_a_disconnect_waits_for_the_endpoints_teardown() {
    // a slow Leave: the disconnect's teardown is still running when the rm comes
    let flags = [
        "--range",
        "10.131.0.0/16",
        "--delay",
        "NetworkDriver.Leave=400",
    ];
    let (lab, _plug, record) = lab_with_plugin(&flags);
    ok(
        &lab.cli(&[
            "network",
            "create",
            "-d",
            "testplug",
            "--ipam-driver",
            "testplug",
            "qnet",
        ]),
        "create",
    );
    ok(
        &lab.cli(&["run", "-d", "--name", "qa", "busybox", "sleep", "1d"]),
        "run",
    );
    ok(&lab.cli(&["network", "connect", "qnet", "qa"]), "connect");
    let ip = lab.inspect("qnet")["Containers"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["IPv4Address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mark = records(&record).len();
    ok(
        &lab.cli(&["network", "disconnect", "qnet", "qa"]),
        "disconnect",
    );
    ok(&lab.cli(&["network", "rm", "qnet"]), "rm");
    wait_for(&record, "NetworkDriver.DeleteNetwork", 1);
    let after: Vec<(String, String)> = records(&record)
        .into_iter()
        .skip(mark)
        .map(|r| {
            let m = r["Method"].as_str().unwrap_or_default().to_string();
            let a = r["Request"]["Address"].as_str().unwrap_or_default().into();
            (m, a)
        })
        .collect();
    let order: Vec<&str> = after.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        order,
        [
            "NetworkDriver.Leave",
            "NetworkDriver.DeleteEndpoint",
            "IpamDriver.ReleaseAddress",
            "IpamDriver.ReleaseAddress",
            "IpamDriver.ReleasePool",
            "NetworkDriver.DeleteNetwork",
        ],
        "{after:?}"
    );
    // the endpoint's address first, then the gateway's
    assert_eq!(after[2].1, ip, "{after:?}");
    assert_ne!(after[3].1, ip, "{after:?}");
    // the plugin's veth pair went with DeleteEndpoint, its bridge with DeleteNetwork
    let links = lab.links();
    assert!(!links.iter().any(|l| l.starts_with("tp")), "{links:?}");
}

#[test]
fn an_rm_without_its_plugin_fails_as_dockers_and_the_next_start_tells_the_plugin() {
    let flags = ["--range", "10.132.0.0/16"];
    let (mut lab, plug, record) = lab_with_plugin(&flags);
    ok(
        &lab.cli(&["network", "create", "-d", "testplug", "gone"]),
        "create",
    );
    let id = lab.inspect("gone")["Id"].as_str().unwrap().to_string();
    // the plugin goes away while berthd is down: the new berthd never activated it
    lab.stop();
    drop(plug);
    let dir = lab.root().join("plugins");
    std::fs::remove_file(dir.join("testplug.sock")).unwrap();
    lab.start_again();
    // after Docker's retry window (~15 s)
    let err = fails(&lab.cli(&["network", "rm", "gone"]));
    assert!(
        err.contains(
            "Error response from daemon: error while removing network: failed deleting network: plugin \"testplug\" not found"
        ),
        "{err}"
    );
    // hidden, and its name free, as in Docker
    assert!(
        !lab.network_names(None).contains(&"gone".to_string()),
        "{:?}",
        lab.network_names(None)
    );
    let (status, _) = lab.api("GET", &format!("/networks/{id}"), None);
    assert_eq!(status, 404);
    ok(&lab.cli(&["network", "create", "gone"]), "the name again");
    ok(&lab.cli(&["network", "rm", "gone"]), "rm the new one");
    assert_eq!(
        calls(&record)
            .iter()
            .filter(|m| *m == "NetworkDriver.DeleteNetwork")
            .count(),
        0
    );
    // the plugin is back at the next start: it gets DeleteNetwork for that network, once
    lab.stop();
    let _plug = start_plugin(&lab, &dir, &record, &flags);
    lab.start_again();
    wait_for(&record, "NetworkDriver.DeleteNetwork", 1);
    let deleted: Vec<String> = records(&record)
        .into_iter()
        .filter(|r| r["Method"] == "NetworkDriver.DeleteNetwork")
        .map(|r| {
            r["Request"]["NetworkID"]
                .as_str()
                .unwrap_or_default()
                .into()
        })
        .collect();
    assert_eq!(deleted, [id]);
    lab.restart();
    // the start after that has nothing left to tell (it would have come by now: the plugin
    // answers at once)
    std::thread::sleep(Duration::from_millis(500));
    let again = calls(&record)
        .iter()
        .filter(|m| *m == "NetworkDriver.DeleteNetwork")
        .count();
    assert_eq!(again, 1, "{:?}", calls(&record));
    assert!(!lab.network_names(None).contains(&"gone".to_string()));
}
