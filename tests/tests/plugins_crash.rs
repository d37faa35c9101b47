//! A berthd killed after an IPAM plugin granted something and before a record of berth's
//! held it (the failpoints `berth_net::fail::PLUGIN_POINTS`): the next berthd gives the grant
//! back (ReleaseAddress, then ReleasePool, read from the plugin's record of calls), and the
//! retried operation gets what it would have got without the crash (a leaked grant would
//! have pushed it to the next pool or address).

use berth_e2e::plug::*;
use berth_e2e::{ok, Lab};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The testplug beside a berthd that reads its armed failpoint from the returned file.
fn lab_armed(flags: &[&str]) -> (Lab, Plug, PathBuf, PathBuf) {
    let mut lab = Lab::new_ns();
    let plugins = lab.root().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let record = lab.root().join("calls.jsonl");
    let plug = start_plugin(&lab, &plugins, &record, flags);
    let armed = lab.root().join("failpoint");
    std::fs::write(&armed, "").unwrap();
    lab.set_daemon_env("BERTH_FAILPOINTS", armed.to_str().unwrap());
    lab.start_daemon(&["--plugins-dir", plugins.to_str().unwrap()]);
    (lab, plug, record, armed)
}

/// Runs `args` with `point` armed, checks berthd died there, and starts it again; returns
/// where the plugin's record stood before the restart.
fn die_at(lab: &mut Lab, armed: &Path, point: &str, args: &[&str], record: &Path) -> usize {
    std::fs::write(armed, point).unwrap();
    let _ = lab.cli(args);
    assert!(
        lab.wait_died(Duration::from_secs(10)),
        "{point} not reached by {args:?}"
    );
    std::fs::write(armed, "").unwrap();
    let mark = records(record).len();
    lab.start_again();
    mark
}

/// The IPAM grants and releases after `mark`: (method, pool id, address).
fn ipam_moves(record: &Path, mark: usize) -> Vec<(String, String, String)> {
    records(record)
        .into_iter()
        .skip(mark)
        .filter_map(|r| {
            let m = r["Method"]
                .as_str()?
                .strip_prefix("IpamDriver.")?
                .to_string();
            if !m.starts_with("Request") && !m.starts_with("Release") {
                return None;
            }
            let q = &r["Request"];
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            Some((m, s(&q["PoolID"]), s(&q["Address"])))
        })
        .collect()
}

fn moves(v: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    v.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[test]
fn grants_made_before_a_crash_are_released_by_the_next_berthd() {
    let (mut lab, _plug, record, armed) = lab_armed(&["--range", "10.130.0.0/16"]);
    let create = |name: &'static str| ["network", "create", "--ipam-driver", "testplug", name];

    // the pool was granted; the gateway not yet asked for
    let mark = die_at(
        &mut lab,
        &armed,
        "plugin-ipam/pool",
        &create("inet"),
        &record,
    );
    wait_for(&record, "IpamDriver.ReleasePool", 1);
    assert_eq!(
        ipam_moves(&record, mark),
        moves(&[("ReleasePool", "testplug/10.130.0.0/24", "")])
    );
    ok(&lab.cli(&create("inet")), "create inet again");
    let cfg = lab.inspect("inet")["IPAM"]["Config"][0].clone();
    assert_eq!(cfg["Subnet"], "10.130.0.0/24", "{cfg}");
    assert_eq!(cfg["Gateway"], "10.130.0.1", "{cfg}");

    // the pool and its gateway were granted
    let mark = die_at(
        &mut lab,
        &armed,
        "plugin-ipam/gateway",
        &create("gnet"),
        &record,
    );
    wait_for(&record, "IpamDriver.ReleasePool", 2);
    assert_eq!(
        ipam_moves(&record, mark),
        moves(&[
            ("ReleaseAddress", "testplug/10.130.1.0/24", "10.130.1.1"),
            ("ReleasePool", "testplug/10.130.1.0/24", ""),
        ])
    );
    ok(&lab.cli(&create("gnet")), "create gnet again");
    let cfg = lab.inspect("gnet")["IPAM"]["Config"][0].clone();
    assert_eq!(cfg["Subnet"], "10.130.1.0/24", "{cfg}");
    assert_eq!(cfg["Gateway"], "10.130.1.1", "{cfg}");

    // a container's address was granted; its endpoint not recorded
    let run = [
        "run", "-d", "--net", "inet", "--name", "ca", "busybox", "sleep", "1d",
    ];
    let mark = die_at(&mut lab, &armed, "plugin-ipam/address", &run, &record);
    wait_for(&record, "IpamDriver.ReleaseAddress", 2);
    assert_eq!(
        ipam_moves(&record, mark),
        moves(&[("ReleaseAddress", "testplug/10.130.0.0/24", "10.130.0.2")])
    );
    assert_eq!(lab.inspect("inet")["Containers"], serde_json::json!({}));
    ok(&lab.cli(&["start", "ca"]), "start ca");
    let a = ok(
        &lab.cli(&["exec", "ca", "ip", "-o", "-4", "addr", "show", "eth0"]),
        "ip",
    );
    assert!(a.contains("inet 10.130.0.2/24"), "{a}");

    // what the networks hold stays granted: a plain restart releases no pool nor gateway
    let mark = records(&record).len();
    lab.restart();
    std::thread::sleep(Duration::from_millis(500));
    let released: Vec<_> = ipam_moves(&record, mark)
        .into_iter()
        .filter(|(m, _, a)| m == "ReleasePool" || a.ends_with(".1"))
        .collect();
    assert_eq!(released, moves(&[]));
    ok(&lab.cli(&["rm", "-f", "ca"]), "rm");
    ok(&lab.cli(&["network", "rm", "inet", "gnet"]), "network rm");
}

#[test]
fn plugin_endpoints_outlive_a_restart() {
    let (mut lab, _plug, record) = lab_with_plugin(&[]);
    ok(
        &lab.cli(&[
            "network",
            "create",
            "-d",
            "testplug",
            "--subnet",
            "10.131.0.0/24",
            "snet",
        ]),
        "create",
    );
    for name in ["sa", "sb"] {
        ok(
            &lab.cli(&[
                "run", "-d", "--net", "snet", "--name", name, "busybox", "sleep", "1d",
            ]),
            name,
        );
    }
    // the plugin's interface carries berth's tag inside the sandbox: a complete join
    let mark = records(&record).len();
    lab.restart();
    std::thread::sleep(Duration::from_millis(500));
    let after: Vec<String> = calls(&record)
        .into_iter()
        .skip(mark)
        .filter(|m| m.starts_with("NetworkDriver.") && !m.ends_with("GetCapabilities"))
        .collect();
    assert!(after.is_empty(), "{after:?}");
    let c = lab.inspect("snet")["Containers"].clone();
    assert_eq!(c.as_object().map(|o| o.len()), Some(2), "{c}");
    ok(
        &lab.cli(&["exec", "sa", "ping", "-c", "1", "-W", "2", "sb"]),
        "ping after the restart",
    );
    ok(&lab.cli(&["rm", "-f", "sa", "sb"]), "rm");
    ok(&lab.cli(&["network", "rm", "snet"]), "network rm");
}

/// The release side: berthd deletes the record first and gives the grant back after; killed
/// in between (the generic points after those deletes), the next berthd gives it back.
#[test]
fn releases_cut_short_by_a_crash_are_finished_by_the_next_berthd() {
    let (mut lab, _plug, record, armed) = lab_armed(&["--range", "10.134.0.0/16"]);
    let pool = "testplug/10.134.0.0/24";
    ok(
        &lab.cli(&["network", "create", "--ipam-driver", "testplug", "rnet"]),
        "create",
    );
    let run = [
        "run", "-d", "--net", "rnet", "--name", "ra", "busybox", "sleep", "1d",
    ];
    ok(&lab.cli(&run), "run");
    let released = |ip: &str| {
        ipam_moves(&record, 0)
            .iter()
            .filter(|(m, _, a)| m == "ReleaseAddress" && a == ip)
            .count()
    };

    // the endpoint's record is gone, its address not given back yet
    let disconnect = ["network", "disconnect", "rnet", "ra"];
    let mark = die_at(&mut lab, &armed, "disconnect/stored", &disconnect, &record);
    wait_for(&record, "IpamDriver.ReleaseAddress", 1);
    assert_eq!(
        ipam_moves(&record, mark),
        moves(&[("ReleaseAddress", pool, "10.134.0.2")])
    );
    assert_eq!(released("10.134.0.2"), 1, "given back once");
    assert_eq!(lab.inspect("rnet")["Containers"], serde_json::json!({}));
    // the address is the plugin's to give again
    ok(
        &lab.cli(&["network", "connect", "rnet", "ra"]),
        "connect again",
    );
    let a = ok(
        &lab.cli(&["exec", "ra", "ip", "-o", "-4", "addr", "show"]),
        "ip",
    );
    assert!(a.contains("inet 10.134.0.2/24"), "{a}");
    ok(&lab.cli(&disconnect), "disconnect");
    // given back after the answer, by the background teardown
    wait_for(&record, "IpamDriver.ReleaseAddress", 2);

    // the network's record is gone, its gateway and pool not given back yet
    let rm = ["network", "rm", "rnet"];
    let mark = die_at(&mut lab, &armed, "network-rm/stored", &rm, &record);
    wait_for(&record, "IpamDriver.ReleasePool", 1);
    assert_eq!(
        ipam_moves(&record, mark),
        moves(&[
            ("ReleaseAddress", pool, "10.134.0.1"),
            ("ReleasePool", pool, ""),
        ])
    );
    assert_eq!(released("10.134.0.1"), 1, "the gateway given back once");
    // the pool is free again: the next network gets it
    ok(
        &lab.cli(&["network", "create", "--ipam-driver", "testplug", "rnet2"]),
        "create rnet2",
    );
    let cfg = lab.inspect("rnet2")["IPAM"]["Config"][0].clone();
    assert_eq!(cfg["Subnet"], "10.134.0.0/24", "{cfg}");
    ok(&lab.cli(&["rm", "-f", "ra"]), "rm");
    ok(&lab.cli(&["network", "rm", "rnet2"]), "network rm");
}
