//! What networks do to the kernel: bridges, addresses, MTU, and the daemon's nftables sets.

use berth_e2e::*;
use serde_json::json;

#[test]
fn bridge_per_network() {
    let lab = Lab::start();
    let links_before = lab.links();
    let id = lab.net_subnet("k1", "10.230.0.0/24");
    let br = bridge_name(&id);
    let l = lab.assert_bridge_up(&br);
    assert_eq!(l["mtu"], 1500, "{l}");
    assert_eq!(lab.addrs(&br), ["10.230.0.1/24"]);
    // exactly one new link
    let mut want = links_before.clone();
    want.push(br.clone());
    want.sort();
    assert_eq!(lab.links(), want);
    // the host has a connected route to the subnet through the bridge
    let routes = lab.ip_json(&["route", "show", "10.230.0.0/24"]);
    assert!(
        routes
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["dev"] == br.as_str()),
        "{routes}"
    );

    let (st, v) = lab.api("DELETE", "/networks/k1", None);
    assert_eq!(st, 204, "{v}");
    // The bridge is deleted in the background (the kernel's teardown waits for RCU).
    assert!(lab.link_gone(&br), "{br} still there");
    assert_eq!(lab.links(), links_before);
}

#[test]
fn bridge_name_and_mtu_options() {
    let lab = Lab::start();
    let id = lab.create_network(json!({"Name": "k2", "CheckDuplicate": true,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": "10.231.0.0/24"}]},
        "Options": {"com.docker.network.bridge.name": "labnet0",
                    "com.docker.network.driver.mtu": "1400"}}));
    let l = lab.assert_bridge_up("labnet0");
    assert_eq!(l["mtu"], 1400, "{l}");
    assert_eq!(lab.addrs("labnet0"), ["10.231.0.1/24"]);
    assert!(lab.link_gone(&bridge_name(&id)));
    assert_eq!(
        lab.inspect("k2")["Options"],
        json!({"com.docker.network.bridge.name": "labnet0",
               "com.docker.network.driver.mtu": "1400"})
    );
    assert!(set_has(
        &lab.nft_set_elements("bridges"),
        "labnet0",
        "10.231.0.0/24"
    ));
    let (st, v) = lab.api("DELETE", "/networks/k2", None);
    assert_eq!(st, 204, "{v}");
    assert!(lab.link_gone("labnet0"));
    assert_eq!(lab.nft_mentions("labnet0"), Vec::<String>::new());
}

#[test]
fn default_bridge_in_firewall_sets() {
    let lab = Lab::start();
    let st = lab.nft_state();
    assert!(
        !st.tables.is_empty(),
        "no inet table named berth*; ruleset: {}",
        lab.nft_json()
    );
    let bridges = lab.nft_set_elements("bridges");
    let masq = lab.nft_set_elements("masq");
    assert!(set_has(&bridges, "berth0", "172.17.0.0/16"), "{bridges:?}");
    assert!(set_has(&masq, "berth0", "172.17.0.0/16"), "{masq:?}");
    assert!(!set_has(
        &lab.nft_set_elements("internal"),
        "berth0",
        "172.17.0.0/16"
    ));
}

#[test]
fn firewall_sets_follow_networks() {
    let lab = Lab::start();
    let plain = lab.net_subnet("plain", "10.232.0.0/24");
    let internal = lab.create_network(
        json!({"Name": "int", "CheckDuplicate": true, "Internal": true,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": "10.233.0.0/24"}]}}),
    );
    let nomasq = lab.create_network(json!({"Name": "nomasq", "CheckDuplicate": true,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": "10.234.0.0/24"}]},
        "Options": {"com.docker.network.bridge.enable_ip_masquerade": "false"}}));
    let (bp, bi, bn) = (
        bridge_name(&plain),
        bridge_name(&internal),
        bridge_name(&nomasq),
    );

    let bridges = lab.nft_set_elements("bridges");
    let masq = lab.nft_set_elements("masq");
    let int = lab.nft_set_elements("internal");
    for (b, s) in [
        (&bp, "10.232.0.0/24"),
        (&bi, "10.233.0.0/24"),
        (&bn, "10.234.0.0/24"),
    ] {
        assert!(set_has(&bridges, b, s), "{b} not in bridges {bridges:?}");
    }
    assert!(set_has(&masq, &bp, "10.232.0.0/24"), "{masq:?}");
    assert!(
        !set_has(&masq, &bi, "10.233.0.0/24"),
        "internal masqueraded: {masq:?}"
    );
    assert!(
        !set_has(&masq, &bn, "10.234.0.0/24"),
        "masquerade=false masqueraded: {masq:?}"
    );
    assert!(set_has(&int, &bi, "10.233.0.0/24"), "{int:?}");
    assert!(!set_has(&int, &bp, "10.232.0.0/24"), "{int:?}");
    assert!(!set_has(&int, &bn, "10.234.0.0/24"), "{int:?}");

    // removal removes every element that names the bridge or the subnet, and the bridge
    for (name, b, s) in [
        ("plain", &bp, "10.232.0.0/24"),
        ("int", &bi, "10.233.0.0/24"),
        ("nomasq", &bn, "10.234.0.0/24"),
    ] {
        let (st, v) = lab.api("DELETE", &format!("/networks/{name}"), None);
        assert_eq!(st, 204, "{v}");
        assert!(lab.link_gone(b));
        assert_eq!(lab.nft_mentions(b), Vec::<String>::new(), "after rm {name}");
        assert_eq!(lab.nft_mentions(s), Vec::<String>::new(), "after rm {name}");
    }
    // back to the state with only the default bridge
    assert!(set_has(
        &lab.nft_set_elements("bridges"),
        "berth0",
        "172.17.0.0/16"
    ));
}

#[test]
fn firewall_state_returns_to_baseline_after_removal() {
    let lab = Lab::start();
    let baseline = lab.snapshot();
    for i in 0..3 {
        lab.net(&format!("tmp{i}"));
    }
    lab.create_network(json!({"Name": "tmp-int", "CheckDuplicate": true, "Internal": true}));
    lab.create_network(json!({"Name": "tmp-noicc", "CheckDuplicate": true,
        "Options": {"com.docker.network.bridge.enable_icc": "false"}}));
    assert_ne!(lab.snapshot(), baseline);
    let (st, v) = lab.api("POST", "/networks/prune", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["NetworksDeleted"].as_array().unwrap().len(), 5, "{v}");
    // bridges go away in the background after the reply
    lab.assert_unchanged(&baseline, "prune");
}

#[test]
fn ipv6_gateway_on_bridge() {
    let lab = Lab::start();
    let id = lab.create_network(
        json!({"Name": "k6", "CheckDuplicate": true, "EnableIPv6": true,
        "IPAM": {"Driver": "default", "Options": {},
                 "Config": [{"Subnet": "10.235.0.0/24"}, {"Subnet": "2001:db8:1::/64"}]}}),
    );
    let br = bridge_name(&id);
    lab.assert_bridge_up(&br);
    let mut addrs = lab.addrs(&br);
    addrs.sort();
    assert_eq!(addrs, ["10.235.0.1/24", "2001:db8:1::1/64"]);
    let (st, v) = lab.api("DELETE", "/networks/k6", None);
    assert_eq!(st, 204, "{v}");
    assert!(lab.link_gone(&br));
    assert_eq!(lab.nft_mentions("2001:db8:1::"), Vec::<String>::new());
}

#[test]
fn many_networks_distinct_bridges() {
    let lab = Lab::start();
    let ids: Vec<String> = (0..8).map(|i| lab.net(&format!("many{i}"))).collect();
    let bridges = lab.nft_set_elements("bridges");
    let mut subnets = Vec::new();
    for id in &ids {
        let br = bridge_name(id);
        lab.assert_bridge_up(&br);
        let s = lab.subnet_of(id);
        let a = lab.addrs(&br);
        assert_eq!(a.len(), 1, "{br}: {a:?}");
        assert!(overlaps4(&a[0], &s), "{br} address {a:?} not in {s}");
        assert!(set_has(&bridges, &br, &s), "{br} not in {bridges:?}");
        subnets.push(s);
    }
    for (i, a) in subnets.iter().enumerate() {
        for b in &subnets[i + 1..] {
            assert!(!overlaps4(a, b), "{a} overlaps {b}");
        }
    }
}
