//! The real docker CLI (28.x) against berthd: it must work unchanged, and print what the berth
//! CLI prints.

use berth_e2e::*;
use serde_json::{json, Value};

#[test]
fn docker_version_negotiates_1_41() {
    let lab = Lab::start();
    let out = lab
        .docker(&["version", "--format", "{{.Server.APIVersion}}"])
        .ok();
    assert_eq!(out.trim(), "1.41");
    let out = lab
        .docker(&["version", "--format", "{{.Client.APIVersion}}"])
        .ok();
    assert_eq!(out.trim(), "1.41", "the CLI negotiated down to 1.41");
}

#[test]
fn docker_network_ls_matches_berth() {
    let lab = Lab::start();
    lab.net("alpha");
    lab.net("a-rather-long-network-name");
    lab.create_network(json!({"Name": "zeta", "CheckDuplicate": true, "Internal": true}));
    for args in [
        vec!["network", "ls"],
        vec!["network", "ls", "--no-trunc"],
        vec!["network", "ls", "-q"],
        vec!["network", "ls", "--format", "{{.Name}}\t{{.Driver}}"],
        vec!["network", "ls", "--filter", "driver=bridge"],
        vec![
            "network",
            "ls",
            "--filter",
            "name=zeta",
            "--filter",
            "type=custom",
        ],
    ] {
        let d = lab.docker(&args).ok();
        let b = lab.cli(&args).ok();
        assert_eq!(b, d, "berth {args:?} differs from docker");
    }
    let d = lab.docker(&["network", "ls"]).ok();
    let header = format!(
        "NETWORK ID     NAME{}DRIVER    SCOPE\n",
        " ".repeat("a-rather-long-network-name".len() + 3 - "NAME".len())
    );
    assert!(d.starts_with(&header), "{d}");
    assert_eq!(d.lines().count(), 1 + 6, "{d}");
}

#[test]
fn docker_network_create_inspect_rm() {
    let lab = Lab::start();
    let out = lab.docker(berth_e2e::FULL_CREATE_ARGS).ok();
    let id = out.trim().to_string();
    assert!(is_hex(&id, 64), "{out:?}");
    berth_e2e::assert_full_create(&lab, &id);
    let n = lab.inspect(&id);

    let plain = lab.docker(&["network", "create", "plain"]).ok();
    let plain = plain.trim().to_string();
    assert_eq!(
        lab.subnet_of(&plain),
        "172.18.0.0/16",
        "first automatic subnet"
    );

    // inspect: same JSON as the API and as berth's CLI
    for key in ["rsch-cli1", id.as_str(), &id[..12]] {
        let d = lab.docker(&["network", "inspect", key]).ok();
        let dv: Value = serde_json::from_str(&d).unwrap_or_else(|e| panic!("{e}: {d}"));
        assert_eq!(dv, json!([n.clone()]), "docker network inspect {key}");
        let b = lab.cli(&["network", "inspect", key]).ok();
        let bv: Value = serde_json::from_str(&b).unwrap_or_else(|e| panic!("{e}: {b}"));
        assert_eq!(bv, dv, "berth network inspect {key}");
    }
    for fmt in [
        "{{.IPAM.Config}}",
        "{{.Name}} {{.Driver}} {{.Scope}} {{.Internal}}",
        "{{json .Options}}",
        "{{range $k, $v := .Labels}}{{$k}}={{$v}}{{end}}",
    ] {
        let d = lab
            .docker(&["network", "inspect", "-f", fmt, "rsch-cli1"])
            .ok();
        let b = lab
            .cli(&["network", "inspect", "-f", fmt, "rsch-cli1"])
            .ok();
        assert_eq!(b, d, "inspect -f {fmt}");
    }
    assert_eq!(
        lab.docker(&["network", "inspect", "-f", "{{.IPAM.Config}}", "rsch-cli1"])
            .ok(),
        "[{10.211.0.0/24 10.211.0.0/25 10.211.0.1 map[a:10.211.0.200]}]\n"
    );

    // rm prints its arguments
    let out = lab
        .docker(&["network", "rm", "rsch-cli1", &plain[..12]])
        .ok();
    assert_eq!(out, format!("rsch-cli1\n{}\n", &plain[..12]));
    assert!(lab.link_gone("rschbr0"));
    assert!(lab.link_gone(&bridge_name(&plain)));
    assert_eq!(lab.network_names(None), ["bridge", "host", "none"]);
}

#[test]
fn docker_network_create_flags() {
    let lab = Lab::start();
    lab.docker(&[
        "network",
        "create",
        "--internal",
        "--attachable",
        "-o",
        "com.docker.network.driver.mtu=1400",
        "flags",
    ])
    .ok();
    let n = lab.inspect("flags");
    assert_eq!(n["Internal"], true);
    assert_eq!(n["Attachable"], true);
    let br = bridge_name(n["Id"].as_str().unwrap());
    assert_eq!(lab.assert_bridge_up(&br)["mtu"], 1400);

    lab.docker(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "2001:db8:1::/64",
        "v6",
    ])
    .ok();
    let n = lab.inspect("v6");
    assert_eq!(n["EnableIPv6"], true);
    let br = bridge_name(n["Id"].as_str().unwrap());
    assert!(lab.addrs(&br).contains(&"2001:db8:1::1/64".to_string()));
}

#[test]
fn docker_network_prune() {
    let lab = Lab::start();
    lab.net("pruneme");
    let out = lab.docker(&["network", "prune", "-f"]).ok();
    assert_eq!(out, "Deleted Networks:\npruneme\n\n");
    lab.net("pruneme2");
    let out = lab.cli(&["network", "prune", "-f"]).ok();
    assert_eq!(
        out, "Deleted Networks:\npruneme2\n\n",
        "berth prints what docker prints"
    );
    assert_eq!(lab.network_names(None), ["bridge", "host", "none"]);
}

#[test]
fn docker_network_errors() {
    let lab = Lab::start();
    lab.net("dup");
    let cases: [(&[&str], &str); 4] = [
        (
            &["network", "create", "dup"],
            "Error response from daemon: network with name dup already exists",
        ),
        (
            &["network", "rm", "bridge"],
            "Error response from daemon: bridge is a pre-defined network and cannot be removed",
        ),
        (
            &["network", "rm", "nosuch"],
            "Error response from daemon: network nosuch not found",
        ),
        (
            &["network", "create", "--subnet", "10.9.0.0/33", "bad"],
            "invalid CIDR address: 10.9.0.0/33",
        ),
    ];
    for (args, want) in cases {
        let o = lab.docker(args);
        let err = o.fails();
        assert_eq!(o.code(), Some(1), "docker {args:?}");
        assert!(err.contains(want), "docker {args:?}: {err}");
        // the berth CLI says the same thing
        let b = lab.cli(args);
        let berr = b.fails();
        assert_eq!(b.code(), Some(1), "berth {args:?}");
        assert!(berr.contains(want), "berth {args:?}: {berr}");
    }
    assert_eq!(lab.network_names(None), ["bridge", "dup", "host", "none"]);
}
