//! The `berth` CLI: docker's syntax and output formats, against a lab daemon.

use berth_e2e::*;
use serde_json::{json, Value};

/// Networks from the API, sorted by name: (id, name, driver, scope).
fn rows(lab: &Lab) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = lab
        .networks(None)
        .iter()
        .map(|n| {
            (
                n["Id"].as_str().unwrap().to_string(),
                n["Name"].as_str().unwrap().to_string(),
                n["Driver"].as_str().unwrap().to_string(),
                n["Scope"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.1.cmp(&b.1));
    v
}

fn table(rows: &[(String, String, String, String)], id_len: usize) -> String {
    let mut t = vec![vec![
        "NETWORK ID".to_string(),
        "NAME".to_string(),
        "DRIVER".to_string(),
        "SCOPE".to_string(),
    ]];
    for (id, name, driver, scope) in rows {
        t.push(vec![
            id[..id_len].to_string(),
            name.clone(),
            driver.clone(),
            scope.clone(),
        ]);
    }
    tabwrite(&t)
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

#[test]
fn cli_network_ls_formats() {
    let lab = Lab::start();
    let out = lab.cli(&["network", "ls"]).ok();
    assert!(
        out.starts_with("NETWORK ID     NAME      DRIVER    SCOPE\n"),
        "{out}"
    );
    assert_eq!(out, table(&rows(&lab), 12));

    lab.net("alpha");
    lab.net("a-rather-long-network-name");
    lab.create_network(json!({"Name": "zeta", "CheckDuplicate": true, "Labels": {"tier": "db"}}));
    let r = rows(&lab);
    assert_eq!(lab.cli(&["network", "ls"]).ok(), table(&r, 12));
    assert_eq!(lab.cli(&["network", "list"]).ok(), table(&r, 12));
    assert_eq!(
        lab.cli(&["network", "ls", "--no-trunc"]).ok(),
        table(&r, 64)
    );

    let q = lab.cli(&["network", "ls", "-q"]).ok();
    let want: Vec<String> = r.iter().map(|x| x.0[..12].to_string()).collect();
    assert_eq!(lines(&q), want);
    let q = lab.cli(&["network", "ls", "-q", "--no-trunc"]).ok();
    let want: Vec<String> = r.iter().map(|x| x.0.clone()).collect();
    assert_eq!(lines(&q), want);

    let names = lab.cli(&["network", "ls", "--format", "{{.Name}}"]).ok();
    let want: Vec<String> = r.iter().map(|x| x.1.clone()).collect();
    assert_eq!(lines(&names), want);

    let f = lab
        .cli(&[
            "network",
            "ls",
            "--filter",
            "driver=bridge",
            "--format",
            "{{.Name}}",
        ])
        .ok();
    assert_eq!(
        lines(&f),
        ["a-rather-long-network-name", "alpha", "bridge", "zeta"]
    );
    let f = lab
        .cli(&["network", "ls", "-f", "label=tier=db", "-q"])
        .ok();
    let zeta = r.iter().find(|x| x.1 == "zeta").unwrap();
    assert_eq!(lines(&f), [zeta.0[..12].to_string()]);
    let f = lab
        .cli(&["network", "ls", "--filter", "driver=bridge"])
        .ok();
    let bridged: Vec<_> = r.iter().filter(|x| x.2 == "bridge").cloned().collect();
    assert_eq!(f, table(&bridged, 12));

    let f = lab
        .cli(&[
            "network",
            "ls",
            "--format",
            "{{.ID}} {{.Driver}} {{.Scope}}",
            "--filter",
            "name=zeta",
        ])
        .ok();
    assert_eq!(f, format!("{} bridge local\n", &zeta.0[..12]));
}

#[test]
fn cli_network_create_inspect_rm() {
    let lab = Lab::start();
    let out = lab.cli(&["network", "create", "plain"]).ok();
    let id = out.trim_end_matches('\n');
    assert!(is_hex(id, 64), "create prints the id: {out:?}");
    assert_eq!(out, format!("{id}\n"));
    assert_eq!(lab.inspect("plain")["Id"], id);
    lab.assert_bridge_up(&bridge_name(id));

    let out = lab.cli(berth_e2e::FULL_CREATE_ARGS).ok();
    let id2 = out.trim().to_string();
    assert!(is_hex(&id2, 64), "{out:?}");
    berth_e2e::assert_full_create(&lab, "rsch-cli1");

    // flags
    lab.cli(&["network", "create", "--internal", "--attachable", "flags"])
        .ok();
    let f = lab.inspect("flags");
    assert_eq!(
        (&f["Internal"], &f["Attachable"]),
        (&json!(true), &json!(true))
    );
    lab.cli(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "2001:db8:1::/64",
        "v6",
    ])
    .ok();
    let v6 = lab.inspect("v6");
    assert_eq!(v6["EnableIPv6"], true);
    let v6br = bridge_name(v6["Id"].as_str().unwrap());
    assert!(lab.addrs(&v6br).contains(&"2001:db8:1::1/64".to_string()));

    // inspect: a JSON array equal to the API's objects, by name, full id and prefix
    for key in ["plain", id, &id[..12]] {
        let out = lab.cli(&["network", "inspect", key]).ok();
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(v, json!([lab.inspect("plain")]), "inspect {key}");
    }
    let out = lab.cli(&["network", "inspect", "plain", "rsch-cli1"]).ok();
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, json!([lab.inspect("plain"), lab.inspect("rsch-cli1")]));
    assert_eq!(
        lab.cli(&["network", "inspect", "-f", "{{.Name}} {{.Driver}}", "plain"])
            .ok(),
        "plain bridge\n"
    );
    assert_eq!(
        lab.cli(&[
            "network",
            "inspect",
            "--format",
            "{{json .Labels}}",
            "rsch-cli1"
        ])
        .ok(),
        "{\"x\":\"y\"}\n"
    );

    // rm prints each argument as given
    let out = lab.cli(&["network", "rm", "plain", &id2[..12]]).ok();
    assert_eq!(out, format!("plain\n{}\n", &id2[..12]));
    assert!(lab.link_gone(&bridge_name(id)));
    assert!(lab.link_gone("rschbr0"));
    let out = lab.cli(&["network", "remove", "flags"]).ok();
    assert_eq!(out, "flags\n");
    assert_eq!(lab.network_names(None), ["bridge", "host", "none", "v6"]);
}

#[test]
fn cli_inspect_ipam_config_template() {
    let lab = Lab::start();
    lab.cli(&[
        "network",
        "create",
        "--subnet",
        "10.0.1.0/24",
        "--ip-range",
        "10.0.1.128/25",
        "--gateway",
        "10.0.1.254",
        "--aux-address",
        "a=10.0.1.130",
        "demo",
    ])
    .ok();
    assert_eq!(
        lab.cli(&["network", "inspect", "-f", "{{.IPAM.Config}}", "demo"])
            .ok(),
        "[{10.0.1.0/24 10.0.1.128/25 10.0.1.254 map[a:10.0.1.130]}]\n"
    );
}

#[test]
fn cli_prune() {
    let lab = Lab::start();
    lab.cli(&["network", "create", "pr1"]).ok();
    lab.cli(&["network", "create", "pr2"]).ok();
    let out = lab.cli(&["network", "prune", "-f"]).ok();
    let mut l = lines(&out);
    assert_eq!(
        l.first().map(String::as_str),
        Some("Deleted Networks:"),
        "{out:?}"
    );
    l.remove(0);
    l.retain(|s| !s.is_empty());
    l.sort();
    assert_eq!(l, ["pr1", "pr2"], "{out:?}");
    assert_eq!(lab.network_names(None), ["bridge", "host", "none"]);

    lab.cli(&["network", "create", "--label", "keep=1", "kept"])
        .ok();
    lab.cli(&["network", "create", "gone"]).ok();
    let out = lab
        .cli(&["network", "prune", "-f", "--filter", "label!=keep"])
        .ok();
    assert_eq!(out, "Deleted Networks:\ngone\n\n");
    assert_eq!(lab.network_names(None), ["bridge", "host", "kept", "none"]);
}

#[test]
fn cli_errors() {
    let lab = Lab::start();
    lab.cli(&["network", "create", "dup"]).ok();

    let o = lab.cli(&["network", "create", "dup"]);
    let err = o.fails();
    assert_eq!(o.code(), Some(1));
    assert!(
        err.contains("Error response from daemon: network with name dup already exists"),
        "{err}"
    );

    let o = lab.cli(&["network", "rm", "nosuch"]);
    let err = o.fails();
    assert_eq!(o.code(), Some(1));
    assert!(
        err.contains("Error response from daemon: network nosuch not found"),
        "{err}"
    );

    let o = lab.cli(&["network", "rm", "bridge"]);
    let err = o.fails();
    assert_eq!(o.code(), Some(1));
    assert!(
        err.contains(
            "Error response from daemon: bridge is a pre-defined network and cannot be removed"
        ),
        "{err}"
    );

    let o = lab.cli(&["network", "create", "--subnet", "172.17.1.0/24", "over"]);
    let err = o.fails();
    assert_eq!(o.code(), Some(1));
    assert!(
        err.contains(
            "Error response from daemon: Pool overlaps with other one on this address space"
        ),
        "{err}"
    );

    let o = lab.cli(&["network", "create", "-d", "nosuchdriver", "nd"]);
    let err = o.fails();
    assert_eq!(o.code(), Some(1));
    assert!(
        err.contains("Error response from daemon: plugin \"nosuchdriver\" not found"),
        "{err}"
    );
    assert_eq!(lab.network_names(None), ["bridge", "dup", "host", "none"]);
}

#[test]
fn cli_version_and_info() {
    let lab = Lab::start();
    let v = lab.cli(&["version"]).ok();
    assert!(
        v.contains("1.41"),
        "version should show the API version: {v}"
    );
    let i = lab.cli(&["info"]).ok();
    assert!(!i.trim().is_empty());
}

#[test]
fn cli_host_from_environment() {
    let lab = Lab::start();
    let id = lab.net("envnet");
    let uri = lab.host_uri();
    for var in ["BERTH_HOST", "DOCKER_HOST"] {
        let out = lab
            .cli_env(
                &["network", "ls", "-q", "--no-trunc", "-f", "name=envnet"],
                &[(var, &uri)],
            )
            .ok();
        assert_eq!(out, format!("{id}\n"), "with {var}");
    }
    // -H wins over the environment
    let args = [
        "-H",
        uri.as_str(),
        "network",
        "ls",
        "-q",
        "--no-trunc",
        "-f",
        "name=envnet",
    ];
    let out = lab
        .cli_env(&args, &[("BERTH_HOST", "unix:///nonexistent/berth.sock")])
        .ok();
    assert_eq!(out, format!("{id}\n"));
}
