//! Plugin networks across a berthd restart and a crash (plugins.md §4.5): no CreateNetwork is
//! sent again, an IPAM plugin with `RequiresRequestReplay` gets its pools and addresses
//! replayed in Docker's order, and a berthd killed in the middle of a plugin call leaves no
//! endpoint behind, telling the plugins to drop what they had granted.

use berth_e2e::plug::*;
use berth_e2e::{berth_bin, ok};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_restart_replays_the_ipam_and_never_recreates_networks() {
    let flags = ["--range", "10.127.0.0/16", "--replay"];
    let (mut lab, plug, record) = lab_with_plugin(&flags);
    ok(
        &lab.cli(&["network", "create", "--ipam-driver", "testplug", "rnet"]),
        "create",
    );
    for name in ["ra", "rb"] {
        ok(
            &lab.cli(&[
                "run", "-d", "--net", "rnet", "--name", name, "busybox", "sleep", "1d",
            ]),
            name,
        );
    }
    // the daemon and the plugin restart; the plugin forgets every grant
    lab.stop();
    drop(plug);
    let dir = lab.root().join("plugins");
    let _ = std::fs::remove_file(dir.join("testplug.sock"));
    let mark = calls(&record).len();
    let _plug = start_plugin(&lab, &dir, &record, &flags);
    lab.start_again();
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let c: Vec<String> = calls(&record).into_iter().skip(mark).collect();
        if c.iter()
            .filter(|m| *m == "IpamDriver.RequestAddress")
            .count()
            >= 3
            || Instant::now() > deadline
        {
            break c;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        after,
        [
            "Plugin.Activate",
            "NetworkDriver.GetCapabilities",
            "IpamDriver.GetCapabilities",
            "IpamDriver.GetDefaultAddressSpaces",
            "IpamDriver.RequestPool",
            "IpamDriver.RequestAddress",
            "IpamDriver.RequestAddress",
            "IpamDriver.RequestAddress"
        ]
    );
    let recs: Vec<Value> = records(&record).into_iter().skip(mark).collect();
    assert_eq!(recs[4]["Request"]["Pool"], "10.127.0.0/24", "{}", recs[4]);
    let gw = &recs[5]["Request"];
    assert_eq!(gw["Address"], "10.127.0.1", "{gw}");
    assert_eq!(
        gw["Options"]["RequestAddressType"], "com.docker.network.gateway",
        "{gw}"
    );
    assert_eq!(recs[6]["Request"]["Address"], "10.127.0.2");
    assert_eq!(recs[7]["Request"]["Address"], "10.127.0.3");
    // the plugin knows the old grants again: a new container gets a fresh address
    ok(
        &lab.cli(&[
            "run", "-d", "--net", "rnet", "--name", "rc", "busybox", "sleep", "1d",
        ]),
        "rc",
    );
    let a = ok(
        &lab.cli(&["exec", "rc", "ip", "-o", "-4", "addr", "show", "eth0"]),
        "ip",
    );
    assert!(a.contains("inet 10.127.0.4/24"), "{a}");
    ok(
        &lab.cli(&["exec", "rc", "ping", "-c", "1", "-W", "2", "ra"]),
        "ping",
    );
    ok(&lab.cli(&["rm", "-f", "ra", "rb", "rc"]), "rm");
    ok(&lab.cli(&["network", "rm", "rnet"]), "network rm");
}

#[test]
fn a_crash_in_the_middle_of_join_leaves_nothing() {
    let (mut lab, _plug, record) = lab_with_plugin(&[
        "--range",
        "10.128.0.0/16",
        "--hang-first",
        "NetworkDriver.Join",
    ]);
    ok(
        &lab.cli(&[
            "network",
            "create",
            "-d",
            "testplug",
            "--ipam-driver",
            "testplug",
            "cnet",
        ]),
        "create",
    );
    ok(
        &lab.cli(&[
            "create", "--net", "cnet", "--name", "hx", "busybox", "sleep", "1d",
        ]),
        "create hx",
    );
    // the start hangs in Join; berthd is killed there
    let mut start = Command::new(berth_bin())
        .args(["-H", &lab.host_uri(), "start", "hx"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&record, "NetworkDriver.Join", 1);
    lab.kill9();
    let _ = start.kill();
    let _ = start.wait();
    let mark = calls(&record).len();
    lab.start_again();
    // what the plugins had granted is dropped: DeleteEndpoint, then ReleaseAddress
    wait_for(&record, "IpamDriver.ReleaseAddress", 1);
    let after: Vec<String> = calls(&record)
        .into_iter()
        .skip(mark)
        .filter(|m| {
            !m.starts_with("Plugin.")
                && !m.ends_with("GetCapabilities")
                && !m.ends_with("GetDefaultAddressSpaces")
        })
        .collect();
    assert_eq!(
        after,
        ["NetworkDriver.DeleteEndpoint", "IpamDriver.ReleaseAddress"]
    );
    let recs = records(&record);
    let created = recs
        .iter()
        .find(|r| r["Method"] == "NetworkDriver.CreateEndpoint")
        .unwrap();
    let deleted = recs
        .iter()
        .find(|r| r["Method"] == "NetworkDriver.DeleteEndpoint")
        .unwrap();
    assert_eq!(
        created["Request"]["EndpointID"],
        deleted["Request"]["EndpointID"]
    );
    let released = recs
        .iter()
        .find(|r| r["Method"] == "IpamDriver.ReleaseAddress")
        .unwrap();
    assert_eq!(released["Request"]["Address"], "10.128.0.2", "{released}");
    // nothing local either: no endpoint, and the plugin's veth is gone with its endpoint
    assert_eq!(lab.inspect("cnet")["Containers"], serde_json::json!({}));
    assert!(
        !lab.links().iter().any(|l| l.starts_with("tph")),
        "{:?}",
        lab.links()
    );
    // and the container starts now (Join answers from the second call on)
    ok(&lab.cli(&["start", "hx"]), "start hx");
    let a = ok(
        &lab.cli(&["exec", "hx", "ip", "-o", "-4", "addr", "show", "eth0"]),
        "ip",
    );
    assert!(a.contains("inet 10.128.0.2/24"), "{a}");
    ok(&lab.cli(&["rm", "-f", "hx"]), "rm");
    ok(&lab.cli(&["network", "rm", "cnet"]), "network rm");
}
