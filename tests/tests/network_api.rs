//! Engine API: transport basics, predefined networks, create/inspect/list/remove/prune shapes,
//! IPAM gateway and automatic subnet rules.

use berth_e2e::*;
use serde_json::{json, Value};

const INSPECT_KEYS: [&str; 15] = [
    "Name",
    "Id",
    "Created",
    "Scope",
    "Driver",
    "EnableIPv6",
    "IPAM",
    "Internal",
    "Attachable",
    "Ingress",
    "ConfigFrom",
    "ConfigOnly",
    "Containers",
    "Options",
    "Labels",
];

fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn names(list: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = list
        .iter()
        .map(|n| n["Name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn http_basics_ping_version_info() {
    let lab = Lab::start();

    let r = lab.http("GET", "/_ping", &[], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "OK");
    assert_eq!(r.header("Api-Version"), Some("1.41"), "{:?}", r.headers);
    assert_eq!(r.header("Ostype"), Some("linux"), "{:?}", r.headers);
    assert!(
        r.header("Content-Type")
            .unwrap_or("")
            .starts_with("text/plain"),
        "{:?}",
        r.headers
    );

    let r = lab.http("HEAD", "/_ping", &[], None);
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("Api-Version"), Some("1.41"), "{:?}", r.headers);

    let r = lab.http("GET", "/v1.41/_ping", &[], None);
    assert_eq!((r.status, r.text().as_str()), (200, "OK"));

    for path in ["/version", "/v1.41/version"] {
        let r = lab.http("GET", path, &[], None);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(
            r.header("Content-Type")
                .unwrap_or("")
                .starts_with("application/json"),
            "{:?}",
            r.headers
        );
        assert!(r.body.ends_with(b"\n"), "JSON bodies end with a newline");
        assert_eq!(r.header("Api-Version"), Some("1.41"));
        let v = r.json();
        assert_eq!(v["ApiVersion"], "1.41", "{v}");
        assert_eq!(v["MinAPIVersion"], "1.12", "{v}");
        assert_eq!(v["Os"], "linux", "{v}");
        assert!(!v["Version"].as_str().unwrap_or("").is_empty(), "{v}");
        assert!(!v["Arch"].as_str().unwrap_or("").is_empty(), "{v}");
    }

    for path in ["/info", "/v1.41/info"] {
        let (st, v) = lab.api("GET", path, None);
        assert_eq!(st, 200, "{path}: {v}");
        assert!(v.is_object(), "{path}: {v}");
    }

    let (st, v) = lab.api("GET", "/v1.50/version", None);
    assert_eq!(
        (st, msg(&v).as_str()),
        (
            400,
            "client version 1.50 is too new. Maximum supported API version is 1.41"
        )
    );

    let (st, v) = lab.api("GET", "/nosuch/route", None);
    assert_eq!((st, msg(&v).as_str()), (404, "page not found"));
    let r = lab.http("GET", "/nosuch/route", &[], None);
    assert!(r.body.ends_with(b"\n"), "error bodies end with a newline");
}

#[test]
fn predefined_networks() {
    let lab = Lab::start();
    let list = lab.networks(None);
    assert_eq!(names(&list), ["bridge", "host", "none"]);
    let mut ids = Vec::new();
    for n in &list {
        let id = n["Id"].as_str().unwrap();
        assert!(is_hex(id, 64), "{n}");
        ids.push(id.to_string());
        assert_eq!(keys(n), INSPECT_KEYS, "list element field order");
        assert_eq!(n["Scope"], "local", "{n}");
        assert_eq!(n["Containers"], json!({}), "{n}");
        assert_eq!(n["Labels"], json!({}), "{n}");
        assert!(is_rfc3339_utc(n["Created"].as_str().unwrap()), "{n}");
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "distinct ids");

    let bridge = lab.inspect("bridge");
    assert_eq!(keys(&bridge), INSPECT_KEYS, "inspect field order");
    assert_eq!(bridge["Driver"], "bridge");
    assert_eq!(bridge["EnableIPv6"], false);
    assert_eq!(bridge["Internal"], false);
    assert_eq!(bridge["IPAM"]["Driver"], "default");
    let cfg = bridge["IPAM"]["Config"].as_array().unwrap();
    assert_eq!(cfg.len(), 1, "{bridge}");
    assert_eq!(cfg[0]["Subnet"], "172.17.0.0/16", "{bridge}");
    if let Some(gw) = cfg[0].get("Gateway") {
        assert_eq!(gw, "172.17.0.1", "{bridge}");
    }
    assert_eq!(
        bridge["Options"],
        json!({
            "com.docker.network.bridge.default_bridge": "true",
            "com.docker.network.bridge.enable_icc": "true",
            "com.docker.network.bridge.enable_ip_masquerade": "true",
            "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
            "com.docker.network.bridge.name": "berth0",
            "com.docker.network.driver.mtu": "1500"
        })
    );

    for (name, driver) in [("host", "host"), ("none", "null")] {
        let v = lab.inspect(name);
        assert_eq!(v["Driver"], driver, "{v}");
        assert_eq!(
            v["IPAM"],
            json!({"Driver": "default", "Options": null, "Config": []}),
            "{v}"
        );
        assert_eq!(v["Options"], json!({}), "{v}");
        assert_eq!(v["Labels"], json!({}), "{v}");
        assert_eq!(v["Containers"], json!({}), "{v}");
    }

    // the default bridge in the kernel
    lab.assert_bridge_up("berth0");
    assert_eq!(lab.addrs("berth0"), ["172.17.0.1/16"]);
}

#[test]
fn create_and_inspect_shape() {
    let lab = Lab::start();
    let (st, v) = lab.api(
        "POST",
        "/networks/create",
        Some(json!({
            "Name": "n1", "CheckDuplicate": true, "Driver": "bridge", "Scope": "",
            "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": "10.230.0.0/24"}]},
            "Internal": false, "Attachable": false, "Ingress": false, "ConfigOnly": false,
            "ConfigFrom": null, "Options": {}, "Labels": {"a": "b"},
            "GwPriority": 0, "SomethingNew": {"x": 1}
        })),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(keys(&v), ["Id", "Warning"], "{v}");
    assert_eq!(v["Warning"], "", "{v}");
    let id = v["Id"].as_str().unwrap().to_string();
    assert!(is_hex(&id, 64), "{v}");

    let n = lab.inspect("n1");
    assert_eq!(keys(&n), INSPECT_KEYS);
    assert_eq!(n["Name"], "n1");
    assert_eq!(n["Id"], id.as_str());
    assert!(
        is_rfc3339_utc(n["Created"].as_str().unwrap()),
        "{}",
        n["Created"]
    );
    assert_eq!(n["Scope"], "local");
    assert_eq!(n["Driver"], "bridge");
    assert_eq!(n["EnableIPv6"], false);
    assert_eq!(
        n["IPAM"],
        json!({"Driver": "default", "Options": {}, "Config": [{"Subnet": "10.230.0.0/24"}]}),
        "IPAM echoes what was sent, without the automatic gateway"
    );
    assert_eq!(n["Internal"], false);
    assert_eq!(n["Attachable"], false);
    assert_eq!(n["Ingress"], false);
    assert_eq!(n["ConfigFrom"], json!({"Network": ""}));
    assert_eq!(n["ConfigOnly"], false);
    assert_eq!(n["Containers"], json!({}));
    assert_eq!(n["Options"], json!({}));
    assert_eq!(n["Labels"], json!({"a": "b"}));

    // list element == inspect (no containers), and the body ends with a newline
    let list = lab.networks(None);
    let elem = list.iter().find(|x| x["Id"] == id.as_str()).unwrap();
    assert_eq!(elem, &n);
    let r = lab.http("GET", &format!("/networks/{id}"), &[], None);
    assert!(r.body.ends_with(b"\n"));
    assert!(r
        .header("Content-Type")
        .unwrap_or("")
        .starts_with("application/json"));

    // the bridge
    let br = bridge_name(&id);
    lab.assert_bridge_up(&br);
    assert_eq!(lab.addrs(&br), ["10.230.0.1/24"]);
}

#[test]
fn create_minimal_body_defaults() {
    let lab = Lab::start();
    let id = lab.create_network(json!({"Name": "m"}));
    let n = lab.inspect(&id);
    assert_eq!(n["Driver"], "bridge", "empty driver means bridge");
    assert_eq!(n["Scope"], "local");
    assert_eq!(
        n["IPAM"],
        json!({"Driver": "default", "Options": null,
               "Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]}),
        "automatic subnet and gateway are shown when no subnet was given"
    );
    assert_eq!(n["Options"], json!({}));
    assert_eq!(n["Labels"], json!({}));
    assert_eq!(n["ConfigFrom"], json!({"Network": ""}));
    assert_eq!(lab.addrs(&bridge_name(&id)), ["172.18.0.1/16"]);

    // Driver "" and IPAM without Config behave the same
    let id2 = lab.create_network(json!({
        "Name": "m2", "Driver": "", "IPAM": {"Driver": "", "Options": {}, "Config": []}
    }));
    let n2 = lab.inspect(&id2);
    assert_eq!(n2["Driver"], "bridge");
    assert_eq!(n2["IPAM"]["Driver"], "default");
    assert_eq!(
        n2["IPAM"]["Config"],
        json!([{"Subnet": "172.19.0.0/16", "Gateway": "172.19.0.1"}])
    );
}

#[test]
fn resolve_by_full_id_prefix_and_name() {
    let lab = Lab::start();
    let id = lab.net("resolve-me");
    for key in [
        id.clone(),
        id[..12].to_string(),
        id[..5].to_string(),
        "resolve-me".to_string(),
    ] {
        for prefix in ["", "/v1.41"] {
            let (st, v) = lab.api("GET", &format!("{prefix}/networks/{key}"), None);
            assert_eq!(st, 200, "GET {prefix}/networks/{key}: {v}");
            assert_eq!(v["Id"], id.as_str());
        }
    }
    // an exact name wins over an id prefix
    let other = lab.net(&id[..12]);
    assert_eq!(lab.inspect(&id[..12])["Id"], other.as_str());
    assert_eq!(lab.inspect(&id)["Id"], id.as_str());

    // scope filter on inspect
    let (st, v) = lab.api("GET", "/networks/resolve-me?scope=local", None);
    assert_eq!(st, 200, "{v}");
    let (st, v) = lab.api("GET", "/networks/resolve-me?scope=swarm", None);
    assert_eq!(
        (st, msg(&v).as_str()),
        (404, "network resolve-me not found")
    );
}

#[test]
fn list_filters() {
    let lab = Lab::start();
    let a = lab.create_network(json!({"Name": "filt-a", "CheckDuplicate": true,
        "Labels": {"env": "prod", "team": "x"}}));
    let _b = lab.create_network(json!({"Name": "filt-b", "CheckDuplicate": true,
        "Labels": {"env": "dev"}}));
    let _c = lab.net("filt-c");

    let f = |v: Value| lab.network_names(Some(v));
    assert_eq!(
        f(json!({"name": {"filt-": true}})),
        ["filt-a", "filt-b", "filt-c"]
    );
    assert_eq!(f(json!({"name": {"^filt-a$": true}})), ["filt-a"]);
    assert_eq!(f(json!({"name": {"filt-a": true}})), ["filt-a"]);
    assert_eq!(
        f(json!({"name": {"filt-a": true, "filt-b": true}})),
        ["filt-a", "filt-b"],
        "several values of one key: any"
    );
    assert_eq!(
        f(json!({"name": ["filt-c"]})),
        ["filt-c"],
        "legacy array form"
    );
    assert_eq!(f(json!({"id": {&a[..12]: true}})), ["filt-a"]);
    assert_eq!(f(json!({"id": {&a: true}})), ["filt-a"]);
    assert_eq!(
        f(json!({"driver": {"bridge": true}})),
        ["bridge", "filt-a", "filt-b", "filt-c"]
    );
    assert_eq!(f(json!({"driver": {"bridg": true}})), Vec::<String>::new());
    assert_eq!(f(json!({"driver": {"null": true}})), ["none"]);
    assert_eq!(f(json!({"driver": {"host": true}})), ["host"]);
    assert_eq!(f(json!({"scope": {"local": true}})).len(), 6);
    assert_eq!(f(json!({"scope": {"swarm": true}})), Vec::<String>::new());
    assert_eq!(f(json!({"label": {"env": true}})), ["filt-a", "filt-b"]);
    assert_eq!(f(json!({"label": {"env=prod": true}})), ["filt-a"]);
    assert_eq!(
        f(json!({"label": {"env=prod": true, "team=x": true}})),
        ["filt-a"],
        "all labels must match"
    );
    assert_eq!(
        f(json!({"label": {"env=prod": true, "team=y": true}})),
        Vec::<String>::new()
    );
    assert_eq!(
        f(json!({"type": {"builtin": true}})),
        ["bridge", "host", "none"]
    );
    assert_eq!(
        f(json!({"type": {"custom": true}})),
        ["filt-a", "filt-b", "filt-c"]
    );
    assert_eq!(
        f(json!({"dangling": {"true": true}})),
        ["filt-a", "filt-b", "filt-c"]
    );
    assert_eq!(
        f(json!({"dangling": {"1": true}})),
        ["filt-a", "filt-b", "filt-c"]
    );
    assert_eq!(
        f(json!({"dangling": {"false": true}})),
        ["bridge", "host", "none"]
    );
    assert_eq!(
        f(json!({"driver": {"bridge": true}, "label": {"env": true}})),
        ["filt-a", "filt-b"],
        "different keys: all"
    );
    // also under /v1.41 and with an empty filters value
    let (st, v) = lab.api("GET", "/v1.41/networks?filters=", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 6);
    let (st, v) = lab.api("GET", "/networks/", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 6);
}

#[test]
fn ipam_gateway_rules() {
    let lab = Lab::start();
    // default: first address
    let a = lab.net_subnet("gw-default", "10.219.0.0/24");
    assert_eq!(lab.addrs(&bridge_name(&a)), ["10.219.0.1/24"]);

    // with an ip-range: the first address of the range
    let b = lab.create_network(json!({"Name": "gw-range", "CheckDuplicate": true,
        "IPAM": {"Driver": "default", "Options": {},
                 "Config": [{"Subnet": "10.220.0.0/24", "IPRange": "10.220.0.128/25"}]}}));
    assert_eq!(lab.addrs(&bridge_name(&b)), ["10.220.0.128/24"]);
    assert_eq!(
        lab.inspect(&b)["IPAM"]["Config"],
        json!([{"Subnet": "10.220.0.0/24", "IPRange": "10.220.0.128/25"}]),
        "only the supplied fields are echoed"
    );

    // explicit gateway, range and aux address: all echoed exactly
    let c = lab.create_network(json!({"Name": "gw-explicit", "CheckDuplicate": true,
        "IPAM": {"Driver": "default", "Options": {},
                 "Config": [{"Subnet": "10.201.0.0/24", "IPRange": "10.201.0.128/25",
                             "Gateway": "10.201.0.254",
                             "AuxiliaryAddresses": {"host1": "10.201.0.5"}}]}}));
    assert_eq!(lab.addrs(&bridge_name(&c)), ["10.201.0.254/24"]);
    assert_eq!(
        lab.inspect(&c)["IPAM"]["Config"],
        json!([{"Subnet": "10.201.0.0/24", "IPRange": "10.201.0.128/25",
                "Gateway": "10.201.0.254", "AuxiliaryAddresses": {"host1": "10.201.0.5"}}])
    );

    // /30 works: gateway .1
    let d = lab.net_subnet("gw-30", "10.221.0.0/30");
    assert_eq!(lab.addrs(&bridge_name(&d)), ["10.221.0.1/30"]);
}

#[test]
fn auto_subnets_in_order_and_round_robin() {
    let lab = Lab::start();
    let a1 = lab.net("a1");
    let a2 = lab.net("a2");
    let a3 = lab.net("a3");
    assert_eq!(lab.subnet_of(&a1), "172.18.0.0/16");
    assert_eq!(lab.subnet_of(&a2), "172.19.0.0/16");
    assert_eq!(lab.subnet_of(&a3), "172.20.0.0/16");
    assert_eq!(lab.addrs(&bridge_name(&a2)), ["172.19.0.1/16"]);

    // a just-freed subnet is not handed out next
    let (st, v) = lab.api("DELETE", "/networks/a1", None);
    assert_eq!(st, 204, "{v}");
    let a4 = lab.net("a4");
    assert_eq!(lab.subnet_of(&a4), "172.21.0.0/16");

    // explicit subnets are skipped by the automatic ones
    lab.net_subnet("explicit-22", "172.22.0.0/16");
    lab.net_subnet("explicit-23-part", "172.23.7.0/24");
    let a5 = lab.net("a5");
    assert_eq!(lab.subnet_of(&a5), "172.24.0.0/16");
}

#[test]
fn auto_subnet_pools_in_order() {
    let lab = Lab::start();
    let mut got = Vec::new();
    for i in 0..34 {
        let id = lab.net(&format!("pool{i:02}"));
        got.push(lab.subnet_of(&id));
    }
    let mut want: Vec<String> = (18..=31).map(|o| format!("172.{o}.0.0/16")).collect();
    want.extend((0..16).map(|i| format!("192.168.{}.0/20", i * 16)));
    want.extend(["10.128.0.0/24".to_string(), "10.128.1.0/24".to_string()]);
    assert_eq!(want.len(), 32);
    assert_eq!(got[..32], want[..]);
    // and on through 10.128.0.0/9, in order, never overlapping
    for (i, a) in got.iter().enumerate() {
        for b in &got[i + 1..] {
            assert!(!overlaps4(a, b), "{a} overlaps {b}");
        }
        assert!(!overlaps4(a, "172.17.0.0/16"));
    }
    assert_eq!(got[32], "10.128.2.0/24");
    assert_eq!(got[33], "10.128.3.0/24");
}

#[test]
fn auto_subnet_skips_interface_addresses() {
    let lab = Lab::start();
    lab.ip(&[
        "link", "add", "labveth0", "type", "veth", "peer", "name", "labveth1",
    ]);
    lab.ip(&["addr", "add", "172.18.5.1/24", "dev", "labveth0"]);
    lab.ip(&["link", "set", "labveth0", "up"]);
    lab.ip(&["link", "set", "labveth1", "up"]);
    let id = lab.net("skip-if");
    let s = lab.subnet_of(&id);
    assert!(
        !overlaps4(&s, "172.18.5.0/24"),
        "{s} overlaps the host's 172.18.5.1/24"
    );
    assert_eq!(s, "172.19.0.0/16");
}

#[test]
fn auto_subnet_skips_down_interface_addresses() {
    let lab = Lab::start();
    // an address on an interface that is down (no route is installed for it)
    lab.veth("labveth0", false);
    lab.ip(&["addr", "add", "172.18.9.1/24", "dev", "labveth0"]);
    let id = lab.net("skip-down-if");
    let s = lab.subnet_of(&id);
    assert!(
        !overlaps4(&s, "172.18.9.0/24"),
        "{s} overlaps the host's 172.18.9.1/24"
    );
}

#[test]
fn auto_subnet_skips_link_routes() {
    let lab = Lab::start();
    lab.veth("labveth0", true);
    lab.ip(&["addr", "add", "10.55.0.1/24", "dev", "labveth0"]);
    lab.ip(&["route", "add", "172.18.0.0/17", "dev", "labveth0"]);
    let id = lab.net("skip-route");
    let s = lab.subnet_of(&id);
    assert_eq!(s, "172.19.0.0/16");
}

#[test]
fn auto_subnet_skips_gateway_routes() {
    let lab = Lab::start();
    lab.veth("labveth0", true);
    lab.ip(&["addr", "add", "10.55.0.1/24", "dev", "labveth0"]);
    lab.ip(&["route", "add", "172.18.64.0/18", "via", "10.55.0.2"]);
    let id = lab.net("skip-via-route");
    let s = lab.subnet_of(&id);
    assert_eq!(s, "172.19.0.0/16");
}

#[test]
fn default_address_pool_flag() {
    // --bip keeps the default bridge out of the pool, so user networks start at its base.
    let lab = Lab::start_with(&[
        "--bip",
        "10.99.0.1/24",
        "--default-address-pool",
        "base=10.10.0.0/23,size=24",
        "--default-address-pool",
        "base=10.20.0.0/16,size=24",
    ]);
    let mut got = Vec::new();
    for n in ["p1", "p2", "p3", "p4"] {
        let id = lab.net(n);
        got.push(lab.subnet_of(&id));
    }
    assert_eq!(
        got,
        [
            "10.10.0.0/24",
            "10.10.1.0/24",
            "10.20.0.0/24",
            "10.20.1.0/24"
        ]
    );
    let id = lab.net("p5");
    assert_eq!(lab.addrs(&bridge_name(&id)), ["10.20.2.1/24"]);
}

#[test]
fn bridge_and_bip_flags() {
    let lab = Lab::start_with(&["--bridge", "labbr0", "--bip", "10.99.0.1/24"]);
    let b = lab.inspect("bridge");
    assert_eq!(
        b["Options"]["com.docker.network.bridge.name"], "labbr0",
        "{b}"
    );
    let cfg = &b["IPAM"]["Config"][0];
    assert_eq!(cfg["Subnet"], "10.99.0.0/24", "{b}");
    assert_eq!(
        cfg["Gateway"], "10.99.0.1",
        "--bip records the gateway: {b}"
    );
    lab.assert_bridge_up("labbr0");
    assert_eq!(lab.addrs("labbr0"), ["10.99.0.1/24"]);
    assert!(lab.link_gone("berth0"), "{:?}", lab.links());

    // user networks never overlap it
    let id = lab.net("after-bip");
    assert!(!overlaps4(&lab.subnet_of(&id), "10.99.0.0/24"));
}

#[test]
fn default_bridge_avoids_taken_subnet() {
    let mut lab = Lab::new_ns();
    lab.veth("labveth0", true);
    lab.ip(&["addr", "add", "172.17.0.1/16", "dev", "labveth0"]);
    lab.start_daemon(&[]);
    let s = lab.subnet_of("bridge");
    assert!(!overlaps4(&s, "172.17.0.0/16"), "default bridge took {s}");
    lab.assert_bridge_up("berth0");
    let addrs = lab.addrs("berth0");
    assert_eq!(addrs.len(), 1, "{addrs:?}");
    assert!(overlaps4(&addrs[0], &s), "{addrs:?} not in {s}");
    // and the next user network does not collide with either
    let id = lab.net("after");
    let u = lab.subnet_of(&id);
    assert!(!overlaps4(&u, &s) && !overlaps4(&u, "172.17.0.0/16"), "{u}");
}

#[test]
fn delete_network() {
    let lab = Lab::start();
    let id = lab.net("d1");
    let br = bridge_name(&id);
    assert!(lab.link_exists(&br));
    let r = lab.http("DELETE", "/networks/d1", &[], None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    assert!(lab.link_gone(&br), "{:?}", lab.links());
    let (st, v) = lab.api("GET", "/networks/d1", None);
    assert_eq!((st, msg(&v).as_str()), (404, "network d1 not found"));
    let (st, v) = lab.api("GET", &format!("/networks/{id}"), None);
    assert_eq!(st, 404, "{v}");

    // by id prefix, and by full id under /v1.41
    let id2 = lab.net("d2");
    let (st, v) = lab.api("DELETE", &format!("/networks/{}", &id2[..12]), None);
    assert_eq!(st, 204, "{v}");
    let id3 = lab.net("d3");
    let (st, v) = lab.api("DELETE", &format!("/v1.41/networks/{id3}"), None);
    assert_eq!(st, 204, "{v}");
    assert_eq!(lab.network_names(None), ["bridge", "host", "none"]);
    for i in [&id2, &id3] {
        assert!(lab.link_gone(&bridge_name(i)));
    }
    // the name is free again
    lab.net("d1");
}

#[test]
fn prune_networks() {
    let lab = Lab::start();
    let p1 = lab
        .create_network(json!({"Name": "p1", "CheckDuplicate": true, "Labels": {"keep": "yes"}}));
    let p2 = lab.net("p2");
    let p3 = lab.net("p3");

    // label! : prune those without the label
    let filters = http::urlencode(&json!({"label!": {"keep": true}}).to_string());
    let (st, v) = lab.api("POST", &format!("/networks/prune?filters={filters}"), None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(keys(&v), ["NetworksDeleted"]);
    let mut deleted: Vec<String> = v["NetworksDeleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    deleted.sort();
    assert_eq!(deleted, ["p2", "p3"]);
    assert_eq!(lab.network_names(None), ["bridge", "host", "none", "p1"]);
    for id in [&p2, &p3] {
        let br = bridge_name(id);
        assert!(lab.link_gone(&br));
        assert_eq!(lab.nft_mentions(&br), Vec::<String>::new());
    }

    // label=keep=no matches nothing
    let filters = http::urlencode(&json!({"label": {"keep=no": true}}).to_string());
    let (st, v) = lab.api("POST", &format!("/networks/prune?filters={filters}"), None);
    assert_eq!((st, &v), (200, &json!({"NetworksDeleted": null})));

    // everything else
    let (st, v) = lab.api("POST", "/v1.41/networks/prune", None);
    assert_eq!((st, &v), (200, &json!({"NetworksDeleted": ["p1"]})));
    assert!(lab.link_gone(&bridge_name(&p1)));
    assert_eq!(lab.network_names(None), ["bridge", "host", "none"]);

    // nothing left: null, not []
    let (st, v) = lab.api("POST", "/networks/prune", None);
    assert_eq!((st, &v), (200, &json!({"NetworksDeleted": null})));
    lab.assert_bridge_up("berth0");
}

#[test]
fn valid_names_accepted() {
    let lab = Lab::start();
    for name in ["a", "A.b_c-d", "9lives", "x_", "net.with.dots", "UPPER"] {
        let id = lab.net(name);
        assert_eq!(lab.inspect(name)["Id"], id.as_str());
    }
}

#[test]
fn labels_options_and_flags_echoed() {
    let lab = Lab::start();
    let id = lab.create_network(json!({
        "Name": "echo", "CheckDuplicate": true, "Driver": "bridge",
        "Internal": true, "Attachable": true,
        "IPAM": {"Driver": "default", "Options": {"foo": "bar"}, "Config": [{"Subnet": "10.231.0.0/24"}]},
        "Options": {"com.docker.network.bridge.enable_icc": "false", "com.example.unknown": "kept"},
        "Labels": {"com.example.x": "1", "y": ""}
    }));
    let n = lab.inspect(&id);
    assert_eq!(n["Internal"], true);
    assert_eq!(n["Attachable"], true);
    assert_eq!(n["IPAM"]["Options"], json!({"foo": "bar"}));
    assert_eq!(
        n["Options"],
        json!({"com.docker.network.bridge.enable_icc": "false", "com.example.unknown": "kept"})
    );
    assert_eq!(n["Labels"], json!({"com.example.x": "1", "y": ""}));
}

#[test]
fn ipv6_network() {
    let lab = Lab::start();
    // IPv6 subnet only: the IPv4 subnet is automatic
    let id = lab.create_network(json!({
        "Name": "v6", "CheckDuplicate": true, "Driver": "bridge", "EnableIPv6": true,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": "2001:db8:1::/64"}]}
    }));
    let n = lab.inspect(&id);
    assert_eq!(n["EnableIPv6"], true);
    let cfg = n["IPAM"]["Config"].as_array().unwrap().clone();
    assert_eq!(cfg.len(), 2, "{cfg:?}");
    assert!(
        cfg.contains(&json!({"Subnet": "2001:db8:1::/64"})),
        "{cfg:?}"
    );
    assert!(
        cfg.contains(&json!({"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"})),
        "{cfg:?}"
    );
    let br = bridge_name(&id);
    let mut addrs = lab.addrs(&br);
    addrs.sort();
    assert_eq!(addrs, ["172.18.0.1/16", "2001:db8:1::1/64"]);

    // both given, with an explicit IPv6 gateway
    let id2 = lab.create_network(json!({
        "Name": "v6b", "CheckDuplicate": true, "Driver": "bridge", "EnableIPv6": true,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [
            {"Subnet": "10.240.0.0/24"},
            {"Subnet": "2001:db8:2::/64", "Gateway": "2001:db8:2::fe"}]}
    }));
    let mut addrs = lab.addrs(&bridge_name(&id2));
    addrs.sort();
    assert_eq!(addrs, ["10.240.0.1/24", "2001:db8:2::fe/64"]);
    assert_eq!(
        lab.inspect(&id2)["IPAM"]["Config"],
        json!([{"Subnet": "10.240.0.0/24"}, {"Subnet": "2001:db8:2::/64", "Gateway": "2001:db8:2::fe"}])
    );
}

/// The daemon caches the host's routes between creates; a route added while it runs must
/// still be seen by the next automatic allocation.
#[test]
fn auto_subnet_sees_routes_added_while_running() {
    let lab = Lab::start();
    let first = lab.net("first");
    assert_eq!(lab.subnet_of(&first), "172.18.0.0/16");
    lab.veth("labveth0", true);
    lab.ip(&["route", "add", "172.19.0.0/16", "dev", "labveth0"]);
    let second = lab.net("second");
    assert_eq!(
        lab.subnet_of(&second),
        "172.20.0.0/16",
        "172.19/16 is routed by the host"
    );
    lab.ip(&["route", "del", "172.19.0.0/16", "dev", "labveth0"]);
    lab.ip(&["addr", "add", "172.21.3.1/24", "dev", "labveth0"]);
    let third = lab.net("third");
    assert_eq!(
        lab.subnet_of(&third),
        "172.22.0.0/16",
        "172.21.3.0/24 is on a host interface"
    );
}
