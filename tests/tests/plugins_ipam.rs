//! Remote IPAM drivers end to end (`--ipam-driver testplug`): the real `berth-testplug`
//! chooses the pools and addresses under the built-in bridge driver and under a plugin
//! network driver; every call reaches it in libnetwork's order, and a failure at any step
//! leaves nothing half-made.

use berth_e2e::plug::*;
use berth_e2e::{fails, ok};
use serde_json::Value;
use std::time::{Duration, Instant};

#[test]
fn remote_ipam_under_the_bridge_driver() {
    let (lab, _plug, record) = lab_with_plugin(&["--range", "10.124.0.0/16"]);
    ok(
        &lab.cli(&[
            "network",
            "create",
            "--ipam-driver",
            "testplug",
            "--ipam-opt",
            "color=blue",
            "mixed",
        ]),
        "create",
    );
    let inspect = lab.inspect("mixed");
    assert_eq!(inspect["Driver"], "bridge");
    assert_eq!(inspect["IPAM"]["Driver"], "testplug", "{inspect}");
    assert_eq!(inspect["IPAM"]["Options"]["color"], "blue", "{inspect}");
    // the plugin chose the pool and the gateway
    let cfg = &inspect["IPAM"]["Config"][0];
    assert_eq!(cfg["Subnet"], "10.124.0.0/24", "{inspect}");
    assert_eq!(cfg["Gateway"], "10.124.0.1", "{inspect}");
    let id = inspect["Id"].as_str().unwrap().to_string();
    let bridge = format!("br-{}", &id[..12]);
    assert!(
        lab.addrs(&bridge).iter().any(|a| a == "10.124.0.1/24"),
        "{:?}",
        lab.addrs(&bridge)
    );
    let c = ipam_calls(&record);
    assert_eq!(
        methods(&c),
        [
            "GetCapabilities",
            "GetDefaultAddressSpaces",
            "RequestPool",
            "RequestAddress"
        ],
        "{c:?}"
    );
    let pool = &c[2].1;
    assert_eq!(pool["AddressSpace"], "testplug-local", "{pool}");
    assert_eq!(pool["Pool"], "", "{pool}");
    assert_eq!(pool["V6"], false, "{pool}");
    assert_eq!(pool["Options"]["color"], "blue", "{pool}");
    let gw = &c[3].1;
    assert_eq!(gw["PoolID"], "testplug/10.124.0.0/24", "{gw}");
    assert_eq!(gw["Address"], "", "{gw}");
    assert_eq!(
        gw["Options"]["RequestAddressType"], "com.docker.network.gateway",
        "{gw}"
    );
    // a built-in driver with a remote IPAM: no network driver calls beyond registration
    assert!(
        !calls(&record)
            .iter()
            .any(|m| m.starts_with("NetworkDriver.") && m != "NetworkDriver.GetCapabilities"),
        "{:?}",
        calls(&record)
    );

    for name in ["ia", "ib"] {
        ok(
            &lab.cli(&[
                "run", "-d", "--net", "mixed", "--name", name, "busybox", "sleep", "1d",
            ]),
            name,
        );
    }
    let a = ok(
        &lab.cli(&["exec", "ia", "ip", "-o", "-4", "addr", "show", "eth0"]),
        "ip",
    );
    assert!(a.contains("inet 10.124.0.2/24"), "{a}");
    ok(
        &lab.cli(&["exec", "ia", "ping", "-c", "1", "-W", "2", "10.124.0.3"]),
        "ping by address",
    );
    ok(
        &lab.cli(&["exec", "ib", "ping", "-c", "1", "-W", "2", "ia"]),
        "ping by name",
    );
    let c = ipam_calls(&record);
    let eps: Vec<&Value> = c[4..].iter().map(|(_, r)| r).collect();
    assert_eq!(methods(&c[4..]), ["RequestAddress", "RequestAddress"]);
    for r in &eps {
        // endpoint requests: no address asked for, Docker's nil options
        assert_eq!(r["Address"], "", "{r}");
        assert!(r["Options"].is_null(), "{r}");
    }
    let net = lab.inspect("mixed");
    let ips: Vec<&str> = net["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["IPv4Address"].as_str().unwrap())
        .collect();
    assert_eq!(ips.len(), 2);
    assert!(
        ips.contains(&"10.124.0.2/24") && ips.contains(&"10.124.0.3/24"),
        "{ips:?}"
    );

    // rm gives every address back, then network rm the gateway and the pool
    ok(&lab.cli(&["rm", "-f", "ia", "ib"]), "rm");
    let deadline = Instant::now() + Duration::from_secs(5);
    while methods(&ipam_calls(&record)).len() < 8 {
        assert!(Instant::now() < deadline, "{:?}", ipam_calls(&record));
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(&lab.cli(&["network", "rm", "mixed"]), "network rm");
    let c = ipam_calls(&record);
    assert_eq!(
        methods(&c[6..]),
        [
            "ReleaseAddress",
            "ReleaseAddress",
            "ReleaseAddress",
            "ReleasePool"
        ],
        "{c:?}"
    );
    let released: Vec<&str> = c[6..8]
        .iter()
        .map(|(_, r)| r["Address"].as_str().unwrap())
        .collect();
    assert!(
        released.contains(&"10.124.0.2") && released.contains(&"10.124.0.3"),
        "{released:?}"
    );
    assert_eq!(c[8].1["Address"], "10.124.0.1", "{c:?}");
    assert_eq!(c[9].1["PoolID"], "testplug/10.124.0.0/24", "{c:?}");
    assert!(lab.veths_left().is_empty(), "{:?}", lab.veths_left());
}

#[test]
fn remote_ipam_in_band_error_makes_nothing() {
    let (lab, _plug, record) =
        lab_with_plugin(&["--ipam-error", "IpamDriver.RequestPool=no pools today"]);
    // the IPAM protocol's in-band error (200 {"Error"}): `remote: …`, nothing made
    let before = lab.snapshot();
    let err = fails(&lab.cli(&["network", "create", "--ipam-driver", "testplug", "x"]));
    assert!(err.contains("remote: no pools today"), "{err}");
    assert!(lab.network_names(None).iter().all(|n| n != "x"));
    lab.assert_unchanged(&before, "a refused RequestPool");
    assert_eq!(
        methods(&ipam_calls(&record)),
        ["GetCapabilities", "GetDefaultAddressSpaces", "RequestPool"]
    );
}

#[test]
fn remote_ipam_address_error_leaves_nothing_half_made() {
    // a pool with room for its gateway and one container: the second run's RequestAddress
    // fails, and neither its endpoint nor its address stays anywhere
    let (lab, _plug, record2) = lab_with_plugin(&[]);
    ok(
        &lab.cli(&[
            "network",
            "create",
            "--ipam-driver",
            "testplug",
            "--subnet",
            "10.125.0.0/30",
            "tiny",
        ]),
        "create",
    );
    ok(
        &lab.cli(&[
            "run", "-d", "--net", "tiny", "--name", "t1", "busybox", "sleep", "1d",
        ]),
        "t1",
    );
    let veths = lab.veths_left();
    let err = fails(&lab.cli(&[
        "run", "-d", "--net", "tiny", "--name", "t2", "busybox", "sleep", "1d",
    ]));
    assert!(
        err.contains("IpamDriver.RequestAddress: no available addresses"),
        "{err}"
    );
    assert_eq!(lab.veths_left(), veths);
    let net = lab.inspect("tiny");
    assert_eq!(net["Containers"].as_object().unwrap().len(), 1, "{net}");
    ok(&lab.cli(&["rm", "-f", "t1", "t2"]), "rm");
    ok(&lab.cli(&["network", "rm", "tiny"]), "network rm");
    let c = ipam_calls(&record2);
    // gateway and t1 granted, t2 refused; t1 and the gateway released, the pool last
    let asked = methods(&c)
        .iter()
        .filter(|m| **m == "RequestAddress")
        .count();
    assert_eq!(asked, 3, "{c:?}");
    assert_eq!(methods(&c).last(), Some(&"ReleasePool"), "{c:?}");
    assert_eq!(
        methods(&c)
            .iter()
            .filter(|m| **m == "ReleaseAddress")
            .count(),
        2,
        "{c:?}"
    );
}

#[test]
fn remote_ipam_under_a_remote_driver() {
    // one plugin as both drivers, its IPAM wanting the MAC
    let (lab, _plug, record) = lab_with_plugin(&[
        "--range",
        "10.126.0.0/16",
        "--requires-mac",
        "--fail",
        "NetworkDriver.Join=join refused",
    ]);
    ok(
        &lab.cli(&[
            "network",
            "create",
            "-d",
            "testplug",
            "--ipam-driver",
            "testplug",
            "both",
        ]),
        "create",
    );
    let c = calls(&record);
    let pos = |m: &str| c.iter().position(|x| x == m).unwrap_or(usize::MAX);
    assert!(pos("IpamDriver.RequestPool") < pos("IpamDriver.RequestAddress"));
    assert!(pos("IpamDriver.RequestAddress") < pos("NetworkDriver.CreateNetwork"));
    let create = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["Method"] == "NetworkDriver.CreateNetwork")
        .unwrap();
    let data = &create["Request"]["IPv4Data"][0];
    assert_eq!(data["AddressSpace"], "testplug-local", "{create}");
    assert_eq!(data["Pool"], "10.126.0.0/24", "{create}");
    assert_eq!(data["Gateway"], "10.126.0.1/24", "{create}");

    // Join fails: Leave is not owed, DeleteEndpoint then ReleaseAddress, in that order
    let err = fails(&lab.cli(&[
        "run", "-d", "--net", "both", "--name", "jn", "busybox", "sleep", "1d",
    ]));
    assert!(err.contains("join refused"), "{err}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let c = loop {
        let c = calls(&record);
        if c.iter().any(|m| m == "IpamDriver.ReleaseAddress") || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let tail: Vec<&str> = c
        .iter()
        .map(String::as_str)
        .skip_while(|m| *m != "NetworkDriver.CreateNetwork")
        .skip(1)
        .collect();
    assert_eq!(
        tail,
        [
            "IpamDriver.RequestAddress",
            "NetworkDriver.CreateEndpoint",
            "NetworkDriver.Join",
            "NetworkDriver.DeleteEndpoint",
            "IpamDriver.ReleaseAddress"
        ],
        "{c:?}"
    );
    // RequiresMACAddress: the MAC went to the IPAM and to CreateEndpoint alike
    let recs: Vec<Value> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    let ra = recs
        .iter()
        .rfind(|v| v["Method"] == "IpamDriver.RequestAddress")
        .unwrap();
    let ce = recs
        .iter()
        .find(|v| v["Method"] == "NetworkDriver.CreateEndpoint")
        .unwrap();
    let mac = ra["Request"]["Options"]["com.docker.network.endpoint.macaddress"]
        .as_str()
        .unwrap_or_else(|| panic!("{ra}"));
    assert_eq!(ce["Request"]["Interface"]["MacAddress"], mac, "{ce}");
    assert_eq!(lab.inspect("both")["Containers"], serde_json::json!({}));
    ok(&lab.cli(&["rm", "-f", "jn"]), "rm");
    ok(&lab.cli(&["network", "rm", "both"]), "network rm");
    // the driver's DeleteNetwork runs after the answer (controller/remove.rs)
    wait_for(&record, "NetworkDriver.DeleteNetwork", 1);
    let c = calls(&record);
    let tail: Vec<&str> = c.iter().rev().take(3).rev().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "IpamDriver.ReleaseAddress",
            "IpamDriver.ReleasePool",
            "NetworkDriver.DeleteNetwork"
        ],
        "{c:?}"
    );
}
