//! A network driver plugin end to end: the real `berth-testplug` (Docker's remote protocol on
//! a unix socket) runs in the lab host beside berthd, found through `--plugins-dir`; networks
//! created with `-d testplug` get their bridge from the plugin, containers their interface
//! from its Join, and every call reaches it in libnetwork's order.

use berth_e2e::lab::bin_path;
use berth_e2e::Lab;
use berth_e2e::{fails, ok};
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The plugin process, killed on drop.
struct Plug(Child);

impl Drop for Plug {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `berth-testplug` in the lab host's namespace, its socket in `dir`, once it listens.
fn start_plugin(lab: &Lab, dir: &Path, record: &Path, extra: &[&str]) -> Plug {
    let sock = dir.join("testplug.sock");
    let mut cmd = Command::new(bin_path("berth-testplug", "BERTH_TESTPLUG_BIN"));
    cmd.arg("--socket")
        .arg(&sock)
        .arg("--record")
        .arg(record)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let ns = format!("/run/netns/{}", lab.ns);
    // SAFETY: setns and prctl are async-signal-safe; the closure touches no allocator state.
    unsafe {
        cmd.pre_exec(move || {
            let f = std::fs::File::open(&ns)?;
            if libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn berth-testplug");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "the plugin made no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    Plug(child)
}

fn calls(record: &Path) -> Vec<String> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["Method"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn network_plugin_drives_networks_and_endpoints() {
    let mut lab = Lab::new_ns();
    let plugins = lab.root().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let record = lab.root().join("calls.jsonl");
    let _plug = start_plugin(&lab, &plugins, &record, &[]);
    lab.start_daemon(&["--plugins-dir", plugins.to_str().unwrap()]);

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
    let mut lab = Lab::new_ns();
    let plugins = lab.root().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let record = lab.root().join("calls.jsonl");
    let _plug = start_plugin(
        &lab,
        &plugins,
        &record,
        &["--fail", "NetworkDriver.Join=no join today"],
    );
    lab.start_daemon(&["--plugins-dir", plugins.to_str().unwrap()]);
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

/// The plugin's IPAM calls, (method without the interface, request), in order.
fn ipam_calls(record: &Path) -> Vec<(String, Value)> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            let m = v["Method"]
                .as_str()?
                .strip_prefix("IpamDriver.")?
                .to_string();
            Some((m, v["Request"].clone()))
        })
        .collect()
}

fn methods(calls: &[(String, Value)]) -> Vec<&str> {
    calls.iter().map(|(m, _)| m.as_str()).collect()
}

fn lab_with_plugin(extra: &[&str]) -> (Lab, Plug, std::path::PathBuf) {
    let mut lab = Lab::new_ns();
    let plugins = lab.root().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let record = lab.root().join("calls.jsonl");
    let plug = start_plugin(&lab, &plugins, &record, extra);
    lab.start_daemon(&["--plugins-dir", plugins.to_str().unwrap()]);
    (lab, plug, record)
}

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

fn records(record: &Path) -> Vec<Value> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// The calls after `from` (exclusive) up to the end, network ones only.
fn net_calls_since(record: &Path, from: usize) -> Vec<String> {
    calls(record)
        .into_iter()
        .skip(from)
        .filter(|m| m.starts_with("NetworkDriver."))
        .collect()
}

/// Waits (≤ 5 s) until the plugin got `method` at least `n` times.
fn wait_for(record: &Path, method: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while calls(record).iter().filter(|m| *m == method).count() < n {
        assert!(
            Instant::now() < deadline,
            "{method} x{n}: {:?}",
            calls(record)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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
