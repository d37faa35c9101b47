//! Refused requests: Docker's status codes and texts, and the rule that a refused request
//! changes nothing (no new link, address, nft element, rule, or network).

use berth_e2e::*;
use serde_json::{json, Value};

const CREATE: &str = "/networks/create";

/// A create body with one IPAM config.
fn with_config(name: &str, config: Value) -> Value {
    json!({"Name": name, "CheckDuplicate": true, "Driver": "bridge",
           "IPAM": {"Driver": "default", "Options": {}, "Config": [config]}})
}

#[test]
fn duplicate_name_409() {
    let lab = Lab::start();
    lab.net("dup");
    lab.assert_refused(
        "POST",
        CREATE,
        Some(json!({"Name": "dup", "CheckDuplicate": true})),
        409,
        "network with name dup already exists",
    );
    // also when the new one would have a different, valid subnet
    lab.assert_refused(
        "POST",
        CREATE,
        Some(with_config("dup", json!({"Subnet": "10.100.0.0/24"}))),
        409,
        "network with name dup already exists",
    );
    // the subnet was not kept by the refused request
    lab.net_subnet("dup2", "10.100.0.0/24");
}

#[test]
fn predefined_names_403() {
    let lab = Lab::start();
    for name in ["bridge", "host", "none", "default"] {
        lab.assert_refused(
            "POST",
            CREATE,
            Some(json!({"Name": name, "CheckDuplicate": true})),
            403,
            // Docker names the network asked for (PredefinedNetworkError(name)), with its
            // trailing space
            &format!("operation is not permitted on predefined {name} network "),
        );
    }
}

#[test]
fn overlapping_subnets_403() {
    let lab = Lab::start();
    lab.net_subnet("base", "10.101.0.0/16");
    for (name, subnet) in [
        ("same", "10.101.0.0/16"),
        ("inside", "10.101.7.0/24"),
        ("around", "10.100.0.0/15"),
        ("default-bridge", "172.17.3.0/24"),
        ("around-default", "172.16.0.0/12"),
    ] {
        lab.assert_refused(
            "POST",
            CREATE,
            Some(with_config(name, json!({"Subnet": subnet}))),
            403,
            "Pool overlaps with other one on this address space",
        );
    }
    // overlapping an automatic subnet
    let auto = lab.net("auto");
    assert_eq!(lab.subnet_of(&auto), "172.18.0.0/16");
    lab.assert_refused(
        "POST",
        CREATE,
        Some(with_config(
            "over-auto",
            json!({"Subnet": "172.18.128.0/17"}),
        )),
        403,
        "Pool overlaps with other one on this address space",
    );
}

#[test]
fn remove_predefined_403() {
    let lab = Lab::start();
    for name in ["bridge", "host", "none"] {
        lab.assert_refused(
            "DELETE",
            &format!("/networks/{name}"),
            None,
            403,
            &format!("{name} is a pre-defined network and cannot be removed"),
        );
        let id = lab.inspect(name)["Id"].as_str().unwrap().to_string();
        lab.assert_refused(
            "DELETE",
            &format!("/networks/{id}"),
            None,
            403,
            &format!("{name} is a pre-defined network and cannot be removed"),
        );
    }
    lab.assert_bridge_up("berth0");
}

#[test]
fn unknown_network_404() {
    let lab = Lab::start();
    lab.net("exists");
    for method in ["GET", "DELETE"] {
        lab.assert_refused(
            method,
            "/networks/nosuchnet",
            None,
            404,
            "network nosuchnet not found",
        );
        lab.assert_refused(
            method,
            "/v1.41/networks/nosuchnet",
            None,
            404,
            "network nosuchnet not found",
        );
    }
    // a hex string that prefixes nothing
    let ids: Vec<String> = lab
        .networks(None)
        .iter()
        .map(|n| n["Id"].as_str().unwrap().to_string())
        .collect();
    let probe = (0..16u8)
        .map(|d| format!("{d:x}{d:x}{d:x}{d:x}{d:x}{d:x}"))
        .find(|p| !ids.iter().any(|id| id.starts_with(p.as_str())))
        .unwrap();
    lab.assert_refused(
        "GET",
        &format!("/networks/{probe}"),
        None,
        404,
        &format!("network {probe} not found"),
    );
}

#[test]
fn unknown_drivers_404() {
    let lab = Lab::start();
    lab.assert_refused(
        "POST",
        CREATE,
        Some(json!({"Name": "x", "CheckDuplicate": true, "Driver": "nosuchdriver"})),
        404,
        "plugin \"nosuchdriver\" not found",
    );
    lab.assert_refused(
        "POST",
        CREATE,
        Some(
            json!({"Name": "x", "CheckDuplicate": true, "Driver": "bridge",
                    "IPAM": {"Driver": "nosuchipam", "Config": [{"Subnet": "10.102.0.0/24"}]}}),
        ),
        404,
        "plugin \"nosuchipam\" not found",
    );
}

#[test]
fn invalid_subnets_500() {
    let lab = Lab::start();
    lab.assert_refused(
        "POST",
        CREATE,
        Some(with_config("x", json!({"Subnet": "10.9.0.0/33"}))),
        500,
        "Invalid subnet 10.9.0.0/33 : invalid CIDR address: 10.9.0.0/33",
    );
    lab.assert_refused(
        "POST",
        CREATE,
        Some(with_config("x", json!({"Subnet": "bogus"}))),
        500,
        "Invalid subnet bogus : invalid CIDR address: bogus",
    );
    lab.assert_refused(
        "POST",
        CREATE,
        Some(with_config("x", json!({"IPRange": "10.9.0.0/25"}))),
        500,
        "Invalid subnet  : invalid CIDR address: ",
    );
}

#[test]
fn two_ipv4_subnets_403() {
    let lab = Lab::start();
    lab.assert_refused(
        "POST",
        CREATE,
        Some(
            json!({"Name": "two", "CheckDuplicate": true, "Driver": "bridge",
            "IPAM": {"Driver": "default", "Options": {},
                     "Config": [{"Subnet": "10.103.0.0/24"}, {"Subnet": "10.104.0.0/24"}]}}),
        ),
        403,
        "bridge driver doesn't support multiple subnets",
    );
    // neither subnet was kept
    lab.net_subnet("a", "10.103.0.0/24");
    lab.net_subnet("b", "10.104.0.0/24");
}

#[test]
fn gateway_errors_500() {
    let lab = Lab::start();
    lab.assert_refused(
        "POST",
        CREATE,
        Some(with_config(
            "gw",
            json!({"Subnet": "10.202.0.0/24", "Gateway": "10.203.0.1"}),
        )),
        500,
        "failed to allocate gateway (10.203.0.1): Requested address is out of range",
    );
    lab.assert_refused(
        "POST",
        CREATE,
        Some(with_config(
            "gw",
            json!({"Subnet": "10.217.0.0/24", "Gateway": "10.217.0.0"}),
        )),
        500,
        "failed to allocate gateway (10.217.0.0): Address already in use",
    );
    lab.assert_refused(
        "POST",
        CREATE,
        Some(with_config(
            "gw",
            json!({"Subnet": "10.217.0.0/24", "Gateway": "10.217.0.255"}),
        )),
        500,
        "failed to allocate gateway (10.217.0.255): Address already in use",
    );
    lab.assert_refused(
        "POST",
        CREATE,
        Some(with_config(
            "gw",
            json!({"Subnet": "10.217.0.0/24", "Gateway": "bogus"}),
        )),
        500,
        "invalid gateway address bogus in Ipam configuration",
    );
    // the subnets were released
    lab.net_subnet("ok1", "10.202.0.0/24");
    lab.net_subnet("ok2", "10.217.0.0/24");
}

#[test]
fn aux_address_outside_subnet_403() {
    let lab = Lab::start();
    lab.assert_refused(
        "POST",
        CREATE,
        Some(with_config(
            "aux",
            json!({"Subnet": "10.206.0.0/24", "AuxiliaryAddresses": {"x": "10.207.0.1"}}),
        )),
        403,
        "auxiliary address: (x:10.207.0.1) must belong to the master pool: 10.206.0.0/24",
    );
    lab.net_subnet("ok", "10.206.0.0/24");
}

#[test]
fn bad_driver_options_500() {
    let lab = Lab::start();
    lab.assert_refused(
        "POST",
        CREATE,
        Some(json!({"Name": "opt", "CheckDuplicate": true, "Driver": "bridge",
                    "Options": {"com.docker.network.driver.mtu": "abc"}})),
        500,
        "failed to parse com.docker.network.driver.mtu value: abc (strconv.Atoi: parsing \"abc\": invalid syntax)",
    );
    lab.assert_refused(
        "POST",
        CREATE,
        Some(json!({"Name": "opt", "CheckDuplicate": true, "Driver": "bridge",
                    "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.105.0.0/24"}]},
                    "Options": {"com.docker.network.bridge.enable_icc": "maybe"}})),
        500,
        "failed to parse com.docker.network.bridge.enable_icc value: maybe (strconv.ParseBool: parsing \"maybe\": invalid syntax)",
    );
    lab.net_subnet("ok", "10.105.0.0/24");
}

#[test]
fn tiny_subnets_500() {
    let lab = Lab::start();
    for s in ["10.106.0.0/31", "10.106.0.8/32"] {
        lab.assert_refused(
            "POST",
            CREATE,
            Some(with_config("tiny", json!({"Subnet": s}))),
            500,
            "failed to allocate gateway (): No available addresses on this pool",
        );
    }
}

#[test]
fn ipv6_without_subnet_404() {
    let lab = Lab::start();
    lab.assert_refused(
        "POST",
        CREATE,
        Some(json!({"Name": "v6", "CheckDuplicate": true, "Driver": "bridge", "EnableIPv6": true})),
        404,
        "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network",
    );
}

#[test]
fn auto_pools_exhausted_404() {
    let lab = Lab::start_with(&[
        "--bip",
        "10.99.0.1/24",
        "--default-address-pool",
        "base=10.10.0.0/23,size=24",
    ]);
    lab.net("e1");
    lab.net("e2");
    lab.assert_refused(
        "POST",
        CREATE,
        Some(json!({"Name": "e3", "CheckDuplicate": true})),
        404,
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network",
    );
    // an explicit subnet still works
    lab.net_subnet("e3", "10.107.0.0/24");
}

/// Docker refuses only blank names (libnetwork `IsValidName`), with a "BadRequest" the engine
/// answers with 500; a name Docker takes is taken here too (see endpoint_fidelity.rs).
#[test]
fn blank_names_500() {
    let lab = Lab::start();
    for name in ["", " ", "\t "] {
        lab.assert_refused(
            "POST",
            CREATE,
            Some(json!({"Name": name, "CheckDuplicate": true})),
            500,
            &format!("invalid name: {name}"),
        );
    }
}

#[test]
fn host_and_null_drivers_refused() {
    let lab = Lab::start();
    for driver in ["host", "null"] {
        let before = lab.snapshot();
        let (st, v) = lab.api(
            "POST",
            CREATE,
            Some(json!({"Name": format!("my-{driver}"), "CheckDuplicate": true, "Driver": driver})),
        );
        assert!(
            (400..500).contains(&st),
            "driver {driver}: want a 4xx refusal, got {st} {v}"
        );
        assert!(!msg(&v).is_empty(), "{v}");
        lab.assert_unchanged(&before, &format!("create with driver {driver}"));
    }
}

#[test]
fn bridge_name_conflicts_403() {
    let lab = Lab::start();
    lab.veth("labveth0", false);
    lab.ip(&["link", "add", "labbr9", "type", "bridge"]);
    lab.create_network(json!({"Name": "owner", "CheckDuplicate": true,
        "Options": {"com.docker.network.bridge.name": "ownbr0"}}));
    lab.assert_bridge_up("ownbr0");
    let plain = lab.net("plain");
    let plain_br = bridge_name(&plain);
    let berth0_before = lab.addrs("berth0");

    for (i, brname) in ["berth0", "ownbr0", "labveth0", "labbr9", plain_br.as_str()]
        .iter()
        .enumerate()
    {
        let before = lab.snapshot();
        let body = json!({"Name": format!("clash{i}"), "CheckDuplicate": true, "Driver": "bridge",
            "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": "10.108.0.0/24"}]},
            "Options": {"com.docker.network.bridge.name": brname}});
        let (st, v) = lab.api("POST", CREATE, Some(body));
        assert_eq!(st, 403, "bridge name {brname}: {v}");
        let m = msg(&v);
        assert!(
            m.contains(brname) || m.contains("conflicts with network"),
            "the message should say what clashes (bridge {brname}): {v}"
        );
        lab.assert_unchanged(&before, &format!("bridge name {brname}"));
    }
    // the default bridge is intact and still usable
    assert_eq!(lab.addrs("berth0"), berth0_before);
    lab.assert_bridge_up("berth0");
    assert_eq!(lab.subnet_of("bridge"), "172.17.0.0/16");
    // and the subnet was never kept
    lab.net_subnet("fine", "10.108.0.0/24");
}

#[test]
fn filter_errors() {
    let lab = Lab::start();
    let get = |f: &str| {
        let (st, v) = lab.api(
            "GET",
            &format!("/networks?filters={}", http::urlencode(f)),
            None,
        );
        (st, msg(&v))
    };
    assert_eq!(
        get(r#"{"bogus":{"x":true}}"#),
        (400, "Invalid filter 'bogus'".to_string())
    );
    assert_eq!(
        get(r#"{"type":{"x":true}}"#),
        (500, "invalid filter: 'type'='x'".to_string())
    );
    assert_eq!(
        get(r#"{"dangling":{"maybe":true}}"#),
        (
            400,
            "invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")"
                .to_string()
        )
    );
    assert_eq!(
        get(r#"{"dangling":{"true":true,"false":true}}"#),
        (
            400,
            "got more than one value for filter key \"dangling\"".to_string()
        )
    );
    let (st, _) = get("not json");
    assert_eq!(st, 500, "invalid filters JSON");

    // prune accepts only label, label! and until
    lab.net("survivor");
    let before = lab.snapshot();
    let (st, v) = lab.api(
        "POST",
        &format!(
            "/networks/prune?filters={}",
            http::urlencode(r#"{"driver":{"bridge":true}}"#)
        ),
        None,
    );
    assert_eq!((st, msg(&v).as_str()), (400, "Invalid filter 'driver'"));
    lab.assert_unchanged(&before, "prune with a bad filter");
}

#[test]
fn malformed_requests_400() {
    let lab = Lab::start();
    let before = lab.snapshot();
    let body = br#"{"Name":"ct"}"#;
    let r = lab.http(
        "POST",
        CREATE,
        &[("Content-Type", "text/plain")],
        Some(body),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        msg(&r.value()),
        "Content-Type specified (text/plain) must be 'application/json'"
    );
    let r = lab.http("POST", CREATE, &[], None);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(msg(&r.value()), "got EOF while reading request body");
    let r = lab.http(
        "POST",
        CREATE,
        &[("Content-Type", "application/json")],
        Some(b"{not json"),
    );
    assert_eq!(r.status, 400, "invalid JSON body: {}", r.text());
    lab.assert_unchanged(&before, "malformed create requests");
}
