//! The real docker CLI against plugin networks: `docker network create -d <plugin>` and
//! `--ipam-driver <plugin>`, `docker run --net`, `network connect/disconnect`, inspect,
//! `network rm` and `network prune`, each checked against the calls the plugin recorded, in
//! libnetwork's order (plugins.md §4).

use berth_e2e::plug::*;
use berth_e2e::{Lab, OutputExt};
use serde_json::Value;
use std::path::Path;

/// The calls after `mark`, without activation and capability queries: the method, and the
/// address or pool it is about (CIDR for the network driver's, plain for the IPAM's).
fn steps(record: &Path, mark: usize) -> Vec<String> {
    records(record)
        .into_iter()
        .skip(mark)
        .filter_map(|r| {
            let m = r["Method"].as_str()?.to_string();
            if m.starts_with("Plugin.") || m.ends_with("GetCapabilities") || m.ends_with("Spaces") {
                return None;
            }
            let q = &r["Request"];
            let about = match m.as_str() {
                "IpamDriver.RequestPool" => q["Pool"].as_str().map(str::to_string),
                "IpamDriver.ReleasePool" => q["PoolID"].as_str().map(str::to_string),
                "IpamDriver.RequestAddress" | "IpamDriver.ReleaseAddress" => {
                    q["Address"].as_str().map(str::to_string)
                }
                "NetworkDriver.CreateNetwork" => {
                    q["IPv4Data"][0]["Gateway"].as_str().map(str::to_string)
                }
                "NetworkDriver.CreateEndpoint" => {
                    q["Interface"]["Address"].as_str().map(str::to_string)
                }
                _ => None,
            };
            let short = m.split('.').nth(1).unwrap_or(&m).to_string();
            Some(match about {
                Some(a) => format!("{short} {a}"),
                None => short,
            })
        })
        .collect()
}

fn inspect(lab: &Lab, name: &str) -> Value {
    let out = lab.docker(&["network", "inspect", name]).ok();
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v[0].clone()
}

#[test]
fn the_docker_cli_drives_plugin_networks() {
    let (lab, _plug, record) = lab_with_plugin(&["--range", "10.132.0.0/16"]);

    // a plugin network with the plugin's IPAM: the pool is the plugin's choice
    let mark = records(&record).len();
    let id = lab
        .docker(&[
            "network",
            "create",
            "-d",
            "testplug",
            "--ipam-driver",
            "testplug",
            "dnet",
        ])
        .ok();
    assert_eq!(id.trim().len(), 64, "{id}");
    assert_eq!(
        steps(&record, mark),
        [
            "RequestPool ",
            "RequestAddress ",
            "CreateNetwork 10.132.0.1/24"
        ]
    );
    let n = inspect(&lab, "dnet");
    assert_eq!(n["Driver"], "testplug", "{n}");
    assert_eq!(n["Scope"], "local", "{n}");
    assert_eq!(n["IPAM"]["Driver"], "testplug", "{n}");
    assert_eq!(n["IPAM"]["Config"][0]["Subnet"], "10.132.0.0/24", "{n}");
    assert_eq!(n["IPAM"]["Config"][0]["Gateway"], "10.132.0.1", "{n}");
    // the same object through berth's CLI
    let b: Value = serde_json::from_str(&lab.cli(&["network", "inspect", "dnet"]).ok()).unwrap();
    assert_eq!(b[0], n);

    // a plugin network with berth's IPAM, and a bridge network with the plugin's IPAM
    let mark = records(&record).len();
    lab.docker(&[
        "network",
        "create",
        "-d",
        "testplug",
        "--subnet",
        "10.133.0.0/24",
        "dnet2",
    ])
    .ok();
    assert_eq!(steps(&record, mark), ["CreateNetwork 10.133.0.1/24"]);
    let mark = records(&record).len();
    lab.docker(&["network", "create", "--ipam-driver", "testplug", "dnet3"])
        .ok();
    assert_eq!(steps(&record, mark), ["RequestPool ", "RequestAddress "]);
    let n3 = inspect(&lab, "dnet3");
    assert_eq!(n3["Driver"], "bridge", "{n3}");
    assert_eq!(n3["IPAM"]["Driver"], "testplug", "{n3}");
    assert_eq!(n3["IPAM"]["Config"][0]["Subnet"], "10.132.1.0/24", "{n3}");
    let ls = lab
        .docker(&[
            "network",
            "ls",
            "--filter",
            "driver=testplug",
            "--format",
            "{{.Name}} {{.Driver}} {{.Scope}}",
        ])
        .ok();
    let mut ls: Vec<&str> = ls.lines().collect();
    ls.sort();
    assert_eq!(ls, ["dnet testplug local", "dnet2 testplug local"]);

    // run, connect, disconnect
    let mark = records(&record).len();
    lab.docker(&[
        "run", "-d", "--net", "dnet", "--name", "da", "busybox", "sleep", "1d",
    ])
    .ok();
    assert_eq!(
        steps(&record, mark),
        [
            "RequestAddress ",
            "CreateEndpoint 10.132.0.2/24",
            "Join",
            "ProgramExternalConnectivity"
        ]
    );
    let a = lab
        .docker(&["exec", "da", "ip", "-o", "-4", "addr", "show", "eth0"])
        .ok();
    assert!(a.contains("inet 10.132.0.2/24"), "{a}");
    let mark = records(&record).len();
    lab.docker(&["network", "connect", "dnet2", "da"]).ok();
    assert_eq!(
        steps(&record, mark),
        ["CreateEndpoint 10.133.0.2/24", "Join"]
    );
    let ip = lab
        .docker(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.Networks.dnet2.IPAddress}}",
            "da",
        ])
        .ok();
    assert_eq!(ip.trim(), "10.133.0.2");
    let a = lab
        .docker(&["exec", "da", "ip", "-o", "-4", "addr", "show", "eth1"])
        .ok();
    assert!(a.contains("inet 10.133.0.2/24"), "{a}");
    let mark = records(&record).len();
    lab.docker(&["network", "disconnect", "dnet2", "da"]).ok();
    wait_for(&record, "NetworkDriver.DeleteEndpoint", 1);
    assert_eq!(steps(&record, mark), ["Leave", "DeleteEndpoint"]);

    // rm -f: Docker's disconnect order, the address back to the plugin last
    let mark = records(&record).len();
    lab.docker(&["rm", "-f", "da"]).ok();
    wait_for(&record, "IpamDriver.ReleaseAddress", 1);
    assert_eq!(
        steps(&record, mark),
        [
            "RevokeExternalConnectivity",
            "Leave",
            "DeleteEndpoint",
            "ReleaseAddress 10.132.0.2"
        ]
    );

    // rm, then prune: IPAM released before the driver's DeleteNetwork
    let mark = records(&record).len();
    lab.docker(&["network", "rm", "dnet2"]).ok();
    // the driver's part of a removal runs after the answer (controller/remove.rs)
    wait_for(&record, "NetworkDriver.DeleteNetwork", 1);
    assert_eq!(steps(&record, mark), ["DeleteNetwork"]);
    let mark = records(&record).len();
    let out = lab.docker(&["network", "prune", "-f"]).ok();
    assert!(out.contains("dnet\n") && out.contains("dnet3\n"), "{out}");
    wait_for(&record, "NetworkDriver.DeleteNetwork", 2);
    // each network's releases in Docker's order (the two networks may interleave)
    let got = steps(&record, mark);
    let of = |net: &str| -> Vec<&str> {
        got.iter()
            .map(String::as_str)
            .filter(|s| s.contains(net) || (net == "10.132.0." && *s == "DeleteNetwork"))
            .collect()
    };
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(
        of("10.132.0."),
        [
            "ReleaseAddress 10.132.0.1",
            "ReleasePool testplug/10.132.0.0/24",
            "DeleteNetwork"
        ]
    );
    assert_eq!(
        of("10.132.1."),
        [
            "ReleaseAddress 10.132.1.1",
            "ReleasePool testplug/10.132.1.0/24"
        ]
    );
    let left = lab
        .docker(&["network", "ls", "--filter", "type=custom", "-q"])
        .ok();
    assert_eq!(left.trim(), "", "{left}");
}
