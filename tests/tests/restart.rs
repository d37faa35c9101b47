//! Daemon restarts (SIGTERM) and crashes (SIGKILL): state is kept, the kernel is reconciled,
//! nothing is duplicated.

use berth_e2e::*;
use serde_json::{json, Value};

/// The default `bridge` network may get a new id at each start (Docker re-creates it), so
/// snapshots are compared without its line.
fn stable(mut s: Snapshot) -> Snapshot {
    s.networks.retain(|l| !l.starts_with("bridge "));
    s
}

fn assert_same_state(lab: &Lab, before: &Snapshot, when: &str) {
    let now = stable(lab.snapshot());
    assert!(
        &now == before,
        "state differs {when}:\n{}",
        before.diff(&now)
    );
}

fn create_fixture(lab: &Lab) -> Vec<String> {
    vec![
        lab.create_network(json!({"Name": "keep-auto", "CheckDuplicate": true})),
        lab.create_network(json!({"Name": "keep-explicit", "CheckDuplicate": true,
            "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": "10.201.0.0/24",
                "IPRange": "10.201.0.128/25", "Gateway": "10.201.0.254",
                "AuxiliaryAddresses": {"host1": "10.201.0.5"}}]},
            "Options": {"com.docker.network.bridge.name": "keepbr0",
                        "com.docker.network.driver.mtu": "1400"},
            "Labels": {"a": "b", "com.example.c": "d"}})),
        lab.create_network(
            json!({"Name": "keep-int", "CheckDuplicate": true, "Internal": true,
            "Attachable": true}),
        ),
        lab.create_network(json!({"Name": "keep-nomasq", "CheckDuplicate": true,
            "Options": {"com.docker.network.bridge.enable_ip_masquerade": "false"}})),
        lab.create_network(
            json!({"Name": "keep-v6", "CheckDuplicate": true, "EnableIPv6": true,
            "IPAM": {"Driver": "default", "Options": {}, "Config": [
                {"Subnet": "10.241.0.0/24"}, {"Subnet": "2001:db8:5::/64"}]}}),
        ),
    ]
}

#[test]
fn restart_keeps_networks() {
    let mut lab = Lab::start();
    let ids = create_fixture(&lab);
    let inspected: Vec<Value> = ids.iter().map(|id| lab.inspect(id)).collect();
    let host_id = lab.inspect("host")["Id"].clone();
    let none_id = lab.inspect("none")["Id"].clone();
    let before = stable(lab.snapshot());

    lab.restart();

    for (id, want) in ids.iter().zip(&inspected) {
        assert_eq!(&lab.inspect(id), want, "network {id} after restart");
    }
    assert_eq!(lab.inspect("host")["Id"], host_id);
    assert_eq!(lab.inspect("none")["Id"], none_id);
    assert_eq!(lab.subnet_of("bridge"), "172.17.0.0/16");
    assert_same_state(&lab, &before, "after restart");
    assert_eq!(lab.assert_bridge_up("keepbr0")["mtu"], 1400);

    // names are still taken, subnets still allocated
    let (st, v) = lab.api(
        "POST",
        "/networks/create",
        Some(json!({"Name": "keep-auto", "CheckDuplicate": true})),
    );
    assert_eq!(st, 409, "{v}");
    let (st, v) = lab.api(
        "POST",
        "/networks/create",
        Some(json!({"Name": "clash", "CheckDuplicate": true,
            "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.201.0.0/25"}]}})),
    );
    assert_eq!(
        (st, msg(&v).as_str()),
        (403, "Pool overlaps with other one on this address space")
    );
    let fresh = lab.net("fresh");
    let s = lab.subnet_of(&fresh);
    for id in &ids {
        assert!(!overlaps4(&s, &lab.subnet_of(id)), "{s} reused");
    }

    // and a second restart changes nothing either
    let before = stable(lab.snapshot());
    lab.restart();
    assert_same_state(&lab, &before, "after the second restart");
}

#[test]
fn restart_recreates_deleted_bridges() {
    let mut lab = Lab::start();
    let ids = create_fixture(&lab);
    let before = stable(lab.snapshot());
    lab.ip(&["link", "del", &bridge_name(&ids[0])]);
    lab.ip(&["link", "del", "keepbr0"]);
    lab.ip(&["link", "del", "berth0"]);
    assert!(lab.link_gone("keepbr0"));

    lab.restart();

    lab.assert_bridge_up(&bridge_name(&ids[0]));
    assert_eq!(lab.assert_bridge_up("keepbr0")["mtu"], 1400);
    assert_eq!(lab.addrs("keepbr0"), ["10.201.0.254/24"]);
    lab.assert_bridge_up("berth0");
    assert_eq!(lab.addrs("berth0"), ["172.17.0.1/16"]);
    assert_same_state(&lab, &before, "after restart");
}

#[test]
fn restart_restores_firewall_state() {
    let mut lab = Lab::start();
    create_fixture(&lab);
    let before = stable(lab.snapshot());
    let tables = lab.nft_state().tables;
    assert!(!tables.is_empty());
    for t in &tables {
        lab.sh(&format!("nft delete table inet {t}"));
    }
    assert!(lab.nft_state().tables.is_empty());

    lab.restart();
    assert_eq!(lab.nft_state().tables, tables);
    assert_same_state(&lab, &before, "after restart");
}

#[test]
fn kill9_then_restart_converges() {
    let mut lab = Lab::start();
    let ids = create_fixture(&lab);
    let inspected: Vec<Value> = ids.iter().map(|id| lab.inspect(id)).collect();
    let before = stable(lab.snapshot());
    let tables = lab.nft_state().tables;

    lab.kill9();
    // the kernel state survives the crash
    assert!(lab.link_exists(&bridge_name(&ids[0])));
    lab.start_again();

    for (id, want) in ids.iter().zip(&inspected) {
        assert_eq!(&lab.inspect(id), want, "network {id} after kill -9");
    }
    assert_eq!(lab.nft_state().tables, tables, "one set of tables, not two");
    assert_same_state(&lab, &before, "after kill -9 and start");

    // every element exactly once (a set cannot hold duplicates; a second table or set would
    // show up above) and the daemon still works
    let bridges = lab.nft_set_elements("bridges");
    let br = bridge_name(&ids[0]);
    assert_eq!(
        bridges.iter().filter(|e| e.contains(&br)).count(),
        1,
        "{bridges:?}"
    );
    let id = lab.net("after-crash");
    lab.assert_bridge_up(&bridge_name(&id));
    for name in ["keep-auto", "keep-explicit", "after-crash"] {
        let (st, v) = lab.api("DELETE", &format!("/networks/{name}"), None);
        assert_eq!(st, 204, "{v}");
    }
    assert!(lab.link_gone(&br));
    assert!(lab.link_gone("keepbr0"));
    assert_eq!(lab.nft_mentions(&br), Vec::<String>::new());
    assert_eq!(lab.nft_mentions("keepbr0"), Vec::<String>::new());
}

#[test]
fn kill9_twice_in_a_row() {
    let mut lab = Lab::start();
    create_fixture(&lab);
    let before = stable(lab.snapshot());
    lab.kill9();
    lab.start_again();
    lab.kill9();
    lab.start_again();
    assert_same_state(&lab, &before, "after two crashes");
}

#[test]
fn removed_networks_stay_removed() {
    let mut lab = Lab::start();
    let a = lab.net("gone");
    let b = lab.net("stays");
    let (st, v) = lab.api("DELETE", "/networks/gone", None);
    assert_eq!(st, 204, "{v}");
    lab.restart();
    assert_eq!(lab.network_names(None), ["bridge", "host", "none", "stays"]);
    assert!(lab.link_gone(&bridge_name(&a)));
    lab.assert_bridge_up(&bridge_name(&b));
    assert_eq!(lab.nft_mentions(&bridge_name(&a)), Vec::<String>::new());

    // pruned too
    lab.api("POST", "/networks/prune", None);
    lab.kill9();
    lab.start_again();
    assert_eq!(lab.network_names(None), ["bridge", "host", "none"]);
    assert!(lab.link_gone(&bridge_name(&b)));
}

#[test]
fn restart_keeps_daemon_flags() {
    let mut lab = Lab::start_with(&[
        "--bridge",
        "labbr0",
        "--bip",
        "10.99.0.1/24",
        "--default-address-pool",
        "base=10.10.0.0/16,size=24",
    ]);
    let a = lab.net("flagged");
    assert_eq!(lab.subnet_of(&a), "10.10.0.0/24");
    lab.restart();
    assert_eq!(lab.subnet_of(&a), "10.10.0.0/24");
    assert_eq!(lab.subnet_of("bridge"), "10.99.0.0/24");
    assert_eq!(lab.addrs("labbr0"), ["10.99.0.1/24"]);
    assert!(lab.link_gone("berth0"));
    let b = lab.net("flagged2");
    let s = lab.subnet_of(&b);
    assert!(
        s.starts_with("10.10.") && s.ends_with("/24") && s != "10.10.0.0/24",
        "{s}"
    );
}

/// A second berthd on a live daemon's data root or socket exits at once with a clear message,
/// and the first one keeps serving.
#[test]
fn a_second_daemon_on_the_same_root_or_socket_is_refused() {
    let lab = Lab::start();
    let other = tempfile::tempdir().unwrap();
    let second = |data: &std::path::Path, exec: &std::path::Path, sock: &str| {
        let mut child = std::process::Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", lab.ns()))
            .arg("--")
            .arg(berthd_bin())
            .arg("--data-root")
            .arg(data)
            .arg("--exec-root")
            .arg(exec)
            .args(["-H", sock, "--resolv-conf"])
            .arg(lab.resolv_conf())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("the second berthd did not exit");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let own_sock = format!("unix://{}", other.path().join("b.sock").display());
    let err = second(&lab.data_root(), &other.path().join("exec"), &own_sock);
    assert!(err.contains("another berthd"), "{err}");
    assert!(err.contains("--data-root"), "{err}");
    let err = second(
        &other.path().join("data"),
        &other.path().join("exec"),
        &lab.host_uri(),
    );
    assert!(err.contains("another daemon is listening"), "{err}");
    // the first daemon still owns its socket
    assert_eq!(lab.api("GET", "/_ping", None).0, 200);
    assert!(!other.path().join("b.sock").exists());
}
