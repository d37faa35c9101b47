//! Issue 15's network part, each as Docker answers it: the swarm routes of a node outside any
//! swarm, network names Docker takes, `EndpointSettings` (MacAddress, LinkLocalIPs,
//! DriverOpts, Aliases, Links) kept at create and connect, before and after start and used
//! in the kernel, and the embedded DNS for a container that joins a user network late.

use berth_e2e::{http, msg, ok, run_ok, Lab, OutputExt};
use serde_json::{json, Value};
use std::process::Command;

const NO_SWARM: &str = "This node is not part of a swarm";
const NO_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

fn create(lab: &Lab, name: &str, body: Value) -> String {
    let (st, v) = lab.api(
        "POST",
        &format!("/containers/create?name={name}"),
        Some(body.clone()),
    );
    assert_eq!(st, 201, "create {name} {body}: {v}");
    v["Id"].as_str().unwrap().to_string()
}

fn start(lab: &Lab, id: &str) {
    let (st, v) = lab.api("POST", &format!("/containers/{id}/start"), None);
    assert_eq!(st, 204, "start {id}: {v}");
}

fn inspect(lab: &Lab, id: &str) -> Value {
    let (st, v) = lab.api("GET", &format!("/containers/{id}/json"), None);
    assert_eq!(st, 200, "inspect {id}: {v}");
    v
}

fn connect(lab: &Lab, net: &str, c: &str, cfg: Value) {
    let (st, v) = lab.api(
        "POST",
        &format!("/networks/{}/connect", http::urlencode(net)),
        Some(json!({"Container": c, "EndpointConfig": cfg})),
    );
    assert_eq!(st, 200, "connect {c} to {net}: {v}");
}

/// `ip -j addr show IF` inside the container's namespace: (MAC, ["addr/len", ...]).
fn iface(lab: &Lab, c: &str, ifname: &str) -> (String, Vec<String>) {
    let key = inspect(lab, c)["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_string();
    let out = run_ok(
        Command::new("nsenter")
            .arg(format!("--net={key}"))
            .args(["ip", "-j", "addr", "show", ifname]),
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    let l = &v[0];
    let addrs = l["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect();
    (l["address"].as_str().unwrap().to_string(), addrs)
}

#[test]
fn swarm_routes_answer_as_a_node_outside_any_swarm() {
    let lab = Lab::start();
    for path in ["/swarm/leave?force=1", "/v1.41/swarm/leave?force=true"] {
        let (st, v) = lab.api("POST", path, None);
        assert_eq!((st, msg(&v)), (503, NO_SWARM.to_string()), "{path}");
    }
    for (method, path) in [
        ("GET", "/swarm"),
        ("GET", "/nodes"),
        ("GET", "/services"),
        ("GET", "/tasks"),
        ("GET", "/secrets"),
        ("GET", "/configs"),
        ("GET", "/v1.41/nodes/abc"),
        ("POST", "/secrets/create"),
        ("DELETE", "/services/abc"),
        ("POST", "/swarm/unlock"),
    ] {
        let (st, v) = lab.api(method, path, None);
        assert_eq!(
            (st, msg(&v)),
            (503, NO_MANAGER.to_string()),
            "{method} {path}"
        );
    }
    // paths moby does not route stay "page not found"
    let (st, v) = lab.api("GET", "/swarm/leave", None);
    assert_eq!((st, msg(&v)), (404, "page not found".to_string()));
    let (st, _) = lab.api(
        "POST",
        "/swarm/init",
        Some(json!({"ListenAddr": "127.0.0.1"})),
    );
    assert_eq!(st, 503);
    // the docker CLI shows Docker's words
    let err = lab.docker(&["swarm", "leave", "--force"]).fails();
    assert!(err.contains(NO_SWARM), "{err}");
    let err = lab.docker(&["node", "ls"]).fails();
    assert!(err.contains(NO_MANAGER), "{err}");
}

#[test]
fn network_names_docker_takes_work_everywhere() {
    let lab = Lab::start();
    for name in ["test 01", "a/b", "-dash", "é"] {
        let id = lab.net(name);
        let enc = http::urlencode(name);
        // inspect by name, the kernel bridge named after the id
        assert_eq!(lab.inspect(&enc)["Id"], id.as_str());
        lab.assert_bridge_up(&berth_e2e::bridge_name(&id));
        let c = create(
            &lab,
            "",
            json!({"Image": "busybox", "Cmd": ["sleep", "1d"]}),
        );
        start(&lab, &c);
        connect(&lab, name, &c, json!({}));
        let n = &inspect(&lab, &c)["NetworkSettings"]["Networks"][name];
        assert_eq!(n["NetworkID"], id.as_str(), "{name}");
        let (st, v) = lab.api(
            "POST",
            &format!("/networks/{enc}/disconnect"),
            Some(json!({"Container": c})),
        );
        assert_eq!(st, 200, "disconnect from {name}: {v}");
        let (st, v) = lab.api("DELETE", &format!("/networks/{enc}"), None);
        assert_eq!(st, 204, "rm {name}: {v}");
        assert!(!lab.network_names(None).contains(&name.to_string()));
    }
    // the docker CLI, as in docker-py's test_create_remove_network_with_space_in_name
    lab.docker(&["network", "create", "test 02"]).ok();
    let ls = lab.docker(&["network", "ls", "--format", "{{.Name}}"]).ok();
    assert!(ls.lines().any(|l| l == "test 02"), "{ls}");
    lab.docker(&["network", "rm", "test 02"]).ok();
}

#[test]
fn endpoint_settings_round_trip_and_reach_the_kernel() {
    let lab = Lab::start();
    lab.net("n1");
    lab.net("n2");
    lab.net("n3");
    // at create, on the NetworkMode network
    let asked = json!({
        "IPAMConfig": {"LinkLocalIPs": ["169.254.8.8"]},
        "Aliases": ["foo"],
        "Links": ["other:bar"],
        "MacAddress": "02:42:0a:0b:0c:0d",
        "DriverOpts": {"com.example.opt": "on"}
    });
    let c1 = create(
        &lab,
        "c1",
        json!({"Image": "busybox", "Cmd": ["sleep", "1d"], "HostConfig": {"NetworkMode": "n1"},
               "NetworkingConfig": {"EndpointsConfig": {"n1": asked}}}),
    );
    let before = inspect(&lab, &c1)["NetworkSettings"]["Networks"]["n1"].clone();
    for k in ["IPAMConfig", "Aliases", "Links", "MacAddress", "DriverOpts"] {
        assert_eq!(before[k], asked[k], "{k} before start: {before}");
    }
    start(&lab, &c1);
    let live = inspect(&lab, &c1)["NetworkSettings"]["Networks"]["n1"].clone();
    for k in ["IPAMConfig", "Links", "MacAddress", "DriverOpts"] {
        assert_eq!(live[k], asked[k], "{k} after start: {live}");
    }
    let aliases: Vec<&str> = live["Aliases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        aliases.contains(&"foo") && aliases.contains(&&c1[..12]),
        "{aliases:?}"
    );
    let ip = live["IPAddress"].as_str().unwrap();
    let (mac, addrs) = iface(&lab, &c1, "eth0");
    assert_eq!(mac, "02:42:0a:0b:0c:0d");
    assert!(addrs.contains(&"169.254.8.8/16".to_string()), "{addrs:?}");
    assert!(
        addrs.iter().any(|a| a.starts_with(&format!("{ip}/"))),
        "{addrs:?}"
    );

    // at connect, on a created container: kept, then used at start
    let c2 = create(
        &lab,
        "c2",
        json!({"Image": "busybox", "Cmd": ["sleep", "1d"]}),
    );
    let asked2 = json!({"MacAddress": "02:42:ac:11:00:99",
                        "IPAMConfig": {"LinkLocalIPs": ["169.254.9.9"]},
                        "DriverOpts": {"k": "v"}});
    connect(&lab, "n2", &c2, asked2.clone());
    let n2 = inspect(&lab, &c2)["NetworkSettings"]["Networks"]["n2"].clone();
    for k in ["MacAddress", "IPAMConfig", "DriverOpts"] {
        assert_eq!(n2[k], asked2[k], "{k} before start: {n2}");
    }
    start(&lab, &c2);
    let (mac, addrs) = iface(&lab, &c2, "eth1");
    assert_eq!(mac, "02:42:ac:11:00:99");
    assert!(addrs.contains(&"169.254.9.9/16".to_string()), "{addrs:?}");
    assert_eq!(
        inspect(&lab, &c2)["NetworkSettings"]["Networks"]["n2"]["DriverOpts"],
        asked2["DriverOpts"]
    );

    // at connect, on a running container
    connect(
        &lab,
        "n3",
        &c1,
        json!({"MacAddress": "02:42:01:02:03:04", "IPAMConfig": {"LinkLocalIPs": ["169.254.7.7"]},
               "DriverOpts": {"x": "y"}, "Aliases": ["baz"]}),
    );
    let n3 = inspect(&lab, &c1)["NetworkSettings"]["Networks"]["n3"].clone();
    assert_eq!(n3["MacAddress"], "02:42:01:02:03:04");
    assert_eq!(n3["DriverOpts"], json!({"x": "y"}));
    assert_eq!(n3["IPAMConfig"], json!({"LinkLocalIPs": ["169.254.7.7"]}));
    let (mac, addrs) = iface(&lab, &c1, "eth1");
    assert_eq!(mac, "02:42:01:02:03:04");
    assert!(addrs.contains(&"169.254.7.7/16".to_string()), "{addrs:?}");

    // the container's own MacAddress is the NetworkMode network's only (Docker's rule)
    let c3 = create(
        &lab,
        "c3",
        json!({"Image": "busybox", "Cmd": ["sleep", "1d"], "MacAddress": "02:42:aa:bb:cc:dd"}),
    );
    start(&lab, &c3);
    connect(&lab, "n1", &c3, json!({}));
    assert_eq!(iface(&lab, &c3, "eth0").0, "02:42:aa:bb:cc:dd");
    assert_ne!(iface(&lab, &c3, "eth1").0, "02:42:aa:bb:cc:dd");

    // refusals in Docker's words, changing nothing
    lab.assert_refused(
        "POST",
        "/networks/n2/connect",
        Some(json!({"Container": "c3", "EndpointConfig": {"MacAddress": "02:42:zz"}})),
        400,
        "invalid MAC address 02:42:zz",
    );
    lab.assert_refused(
        "POST",
        "/networks/n2/connect",
        Some(json!({"Container": "c3",
                    "EndpointConfig": {"IPAMConfig": {"LinkLocalIPs": ["169.254.1.1", "nope"]}}})),
        500,
        "Invalid link-local IP address: [169.254.1.1 nope]",
    );
    let (st, v) = lab.api(
        "POST",
        "/containers/create",
        Some(
            json!({"Image": "busybox", "NetworkingConfig": {"EndpointsConfig":
            {"bridge": {"MacAddress": "bogus"}}}}),
        ),
    );
    assert_eq!(
        (st, msg(&v)),
        (400, "invalid MAC address bogus".to_string())
    );
}

#[test]
fn joining_a_user_network_brings_the_embedded_dns() {
    let lab = Lab::start();
    lab.net("appnet");
    lab.net("othernet");
    let run = |args: &[&str]| {
        let mut v = vec!["run", "-d"];
        v.extend_from_slice(args);
        v.extend_from_slice(&["busybox", "sleep", "1d"]);
        ok(&lab.cli(&v), "run -d")
    };
    run(&["--name=late"]);
    run(&["--net=appnet", "--name=peer"]);
    run(&["--net=othernet", "--name=stranger"]);
    let rc = lab.cli(&["exec", "late", "cat", "/etc/resolv.conf"]).ok();
    assert!(!rc.contains("127.0.0.11"), "default bridge only: {rc}");
    lab.cli(&["network", "connect", "appnet", "late"]).ok();
    let rc = lab.cli(&["exec", "late", "cat", "/etc/resolv.conf"]).ok();
    assert!(rc.lines().any(|l| l == "nameserver 127.0.0.11"), "{rc}");
    assert!(rc.lines().any(|l| l == "options ndots:0"), "{rc}");
    let peer_ip = inspect(&lab, "peer")["NetworkSettings"]["Networks"]["appnet"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let out = lab.cli(&["exec", "late", "nslookup", "peer"]).ok();
    assert!(out.contains(&peer_ip), "{out}");
    // only names of the networks it shares
    let stranger_ip = inspect(&lab, "stranger")["NetworkSettings"]["Networks"]["othernet"]
        ["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let o = lab.cli(&["exec", "late", "nslookup", "stranger"]);
    assert!(!o.out().contains(&stranger_ip), "{}", o.out());
}
