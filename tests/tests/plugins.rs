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
