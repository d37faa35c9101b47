//! Every call's bytes on the wire, and how replies (good, bad, hostile) come back.

use super::*;
use crate::plugins::api::net::*;
use crate::plugins::ipam::gateway_request;
use serde_json::json;
use std::collections::BTreeMap;

async fn driver(
    dir: &std::path::Path,
    h: impl Fn(&Call) -> Answer + Send + Sync + 'static,
) -> (Fake, RemoteDriver) {
    let f = Fake::start(&sock(dir, "p"), h);
    let d = RemoteDriver::resolve(&registry(dir), "p").await.unwrap();
    (f, d)
}

#[tokio::test]
async fn network_calls_on_the_wire() {
    let t = tempfile::tempdir().unwrap();
    let (f, d) = driver(t.path(), fake::standard).await;

    let req = CreateNetworkRequest {
        network_id: "n1".into(),
        options: BTreeMap::from([
            (keys::GENERIC.into(), json!({"k": "v"})),
            (keys::ENABLE_IPV6.into(), json!(false)),
        ]),
        ipv4_data: vec![IpamData {
            address_space: "localAS".into(),
            pool: "10.0.0.0/24".into(),
            gateway: Some("10.0.0.1/24".into()),
            aux_addresses: BTreeMap::from([("a".into(), "10.0.0.5/24".into())]),
        }],
        ipv6_data: vec![],
    };
    d.create_network(&req).await.unwrap();
    let c = f.last("NetworkDriver.CreateNetwork");
    assert_eq!(c.verb, "POST");
    assert_eq!(
        c.header("accept"),
        Some("application/vnd.docker.plugins.v1.2+json")
    );
    assert_eq!(c.header("content-type"), None);
    assert_eq!(
        c.text(),
        "{\"NetworkID\":\"n1\",\"Options\":{\"com.docker.network.enable_ipv6\":false,\"com.docker.network.generic\":{\"k\":\"v\"}},\"IPv4Data\":[{\"AddressSpace\":\"localAS\",\"AuxAddresses\":{\"a\":\"10.0.0.5/24\"},\"Gateway\":\"10.0.0.1/24\",\"Pool\":\"10.0.0.0/24\"}],\"IPv6Data\":[]}\n"
    );

    // CreateEndpoint: the plugin's MAC is adopted next to berth's address
    let ep = CreateEndpointRequest {
        network_id: "n1".into(),
        endpoint_id: "e1".into(),
        interface: EndpointInterface {
            address: "10.0.0.2/24".into(),
            ..Default::default()
        },
        options: BTreeMap::from([(
            keys::EXPOSED_PORTS.into(),
            json!([{"Proto": 6, "Port": 80}]),
        )]),
    };
    let i = d.create_endpoint(&ep).await.unwrap();
    assert_eq!(i.address, Some("10.0.0.2/24".parse().unwrap()));
    assert_eq!(i.mac, Some([0xa0, 0xb1, 0xc2, 0xd3, 0xe4, 0xf5]));
    assert_eq!(
        f.last("NetworkDriver.CreateEndpoint").text(),
        "{\"NetworkID\":\"n1\",\"EndpointID\":\"e1\",\"Interface\":{\"Address\":\"10.0.0.2/24\",\"AddressIPv6\":\"\",\"MacAddress\":\"\"},\"Options\":{\"com.docker.network.endpoint.exposedports\":[{\"Proto\":6,\"Port\":80}]}}\n"
    );

    let j = d
        .join(&JoinRequest {
            network_id: "n1".into(),
            endpoint_id: "e1".into(),
            sandbox_key: "/run/berth/netns/abc".into(),
            options: BTreeMap::new(),
        })
        .await
        .unwrap();
    assert_eq!(j.src_name, "cnt0");
    assert_eq!(j.dst_prefix, "veth");
    assert_eq!(j.gateway, Some("10.9.0.1".parse().unwrap()));
    assert_eq!(
        j.routes,
        vec![
            Route {
                destination: "169.254.1.1/32".parse().unwrap(),
                next_hop: None
            },
            Route {
                destination: "10.8.0.0/16".parse().unwrap(),
                next_hop: Some("10.9.0.254".parse().unwrap())
            },
        ]
    );
    assert_eq!(
        f.last("NetworkDriver.Join").json(),
        json!({"NetworkID":"n1","EndpointID":"e1","SandboxKey":"/run/berth/netns/abc","Options":{}})
    );

    let prog = ProgramExternalConnectivityRequest {
        network_id: "n1".into(),
        endpoint_id: "e1".into(),
        options: BTreeMap::from([(
            keys::EXPOSED_PORTS.into(),
            json!([{"Proto": 6, "Port": 70}]),
        )]),
    };
    d.program_external_connectivity(&prog).await.unwrap();
    assert_eq!(
        f.last("NetworkDriver.ProgramExternalConnectivity").json()["Options"][keys::EXPOSED_PORTS]
            [0]["Port"],
        70
    );
    let v = d.endpoint_oper_info("n1", "e1").await.unwrap();
    assert_eq!(v.get("a"), Some(&json!("b")));
    d.revoke_external_connectivity("n1", "e1").await.unwrap();
    d.leave("n1", "e1").await.unwrap();
    d.delete_endpoint("n1", "e1").await.unwrap();
    d.delete_network("n1").await.unwrap();
    let n = DiscoveryNotification {
        discovery_type: DISCOVERY_NODE,
        discovery_data: serde_json::to_value(NodeDiscoveryData {
            address: "10.0.0.5".into(),
            bind_address: String::new(),
            is_self: false,
        })
        .unwrap(),
    };
    d.discover_new(&n).await.unwrap();
    d.discover_delete(&n).await.unwrap();
    assert_eq!(
        f.last("NetworkDriver.DiscoverNew").text(),
        "{\"DiscoveryType\":1,\"DiscoveryData\":{\"Address\":\"10.0.0.5\",\"BindAddress\":\"\",\"Self\":false}}\n"
    );
    d.free_network("n1").await.unwrap();
    for (m, body) in [
        (
            "NetworkDriver.RevokeExternalConnectivity",
            "{\"NetworkID\":\"n1\",\"EndpointID\":\"e1\"}\n",
        ),
        (
            "NetworkDriver.Leave",
            "{\"NetworkID\":\"n1\",\"EndpointID\":\"e1\"}\n",
        ),
        (
            "NetworkDriver.DeleteEndpoint",
            "{\"NetworkID\":\"n1\",\"EndpointID\":\"e1\"}\n",
        ),
        (
            "NetworkDriver.EndpointOperInfo",
            "{\"NetworkID\":\"n1\",\"EndpointID\":\"e1\"}\n",
        ),
        ("NetworkDriver.DeleteNetwork", "{\"NetworkID\":\"n1\"}\n"),
        ("NetworkDriver.FreeNetwork", "{\"NetworkID\":\"n1\"}\n"),
    ] {
        assert_eq!(f.last(m).text(), body, "{m}");
    }
}

#[tokio::test]
async fn ipam_calls_on_the_wire() {
    let t = tempfile::tempdir().unwrap();
    let f = Fake::start(&sock(t.path(), "i"), fake::standard);
    let plugins = registry(t.path());
    let i = RemoteIpam::resolve(&plugins, "i").await.unwrap();
    let info = i.info().unwrap();
    assert!(info.requires_mac_address);
    assert_eq!(i.address_space(false).unwrap(), "localAS");
    assert_eq!(i.address_space(true).unwrap(), "globalAS");

    let pool = i
        .request_pool(&api::ipam::RequestPoolRequest {
            address_space: "localAS".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pool.id, "localAS/172.28.0.0/16");
    assert_eq!(pool.pool, "172.28.0.0/16".parse().unwrap());
    assert_eq!(
        f.last("IpamDriver.RequestPool").text(),
        "{\"AddressSpace\":\"localAS\",\"Pool\":\"\",\"SubPool\":\"\",\"Options\":null,\"V6\":false}\n"
    );
    let (a, _) = i
        .request_address(&pool.id, None, Some(gateway_request()))
        .await
        .unwrap();
    assert_eq!(a, "172.28.255.254/16".parse().unwrap());
    assert_eq!(
        f.last("IpamDriver.RequestAddress").text(),
        "{\"PoolID\":\"localAS/172.28.0.0/16\",\"Address\":\"\",\"Options\":{\"RequestAddressType\":\"com.docker.network.gateway\"}}\n"
    );
    i.request_address(&pool.id, Some("172.28.0.9".parse().unwrap()), None)
        .await
        .unwrap();
    assert_eq!(
        f.last("IpamDriver.RequestAddress").json(),
        json!({"PoolID":"localAS/172.28.0.0/16","Address":"172.28.0.9","Options":null})
    );
    i.release_address(&pool.id, a.addr()).await.unwrap();
    assert_eq!(
        f.last("IpamDriver.ReleaseAddress").text(),
        "{\"PoolID\":\"localAS/172.28.0.0/16\",\"Address\":\"172.28.255.254\"}\n"
    );
    i.release_pool(&pool.id).await.unwrap();
    assert_eq!(
        f.last("IpamDriver.ReleasePool").text(),
        "{\"PoolID\":\"localAS/172.28.0.0/16\"}\n"
    );
    // the IPAM-only view of a plugin that is both: no second activation
    let n = f
        .methods()
        .iter()
        .filter(|m| *m == "Plugin.Activate")
        .count();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn plugin_errors_in_dockers_words() {
    let t = tempfile::tempdir().unwrap();
    let (_f, d) = driver(t.path(), |c: &Call| match c.method.as_str() {
        "NetworkDriver.CreateNetwork" => Answer::Json(500, r#"{"Err":"boom"}"#.into()),
        "NetworkDriver.DeleteNetwork" => ok(r#"{"Err":"boom"}"#),
        "NetworkDriver.Leave" => Answer::Json(500, "oops, not json".into()),
        "NetworkDriver.ProgramExternalConnectivity" => {
            Answer::Json(404, "404 page not found".into())
        }
        "NetworkDriver.DeleteEndpoint" => Answer::Json(404, "404 page not found".into()),
        "NetworkDriver.EndpointOperInfo" => ok(r#"{"err":"lower-case err"}"#),
        _ => fake::standard(c),
    })
    .await;
    let req = CreateNetworkRequest::default();
    assert_eq!(
        err_of(d.create_network(&req)).await,
        "NetworkDriver.CreateNetwork: boom"
    );
    let e = d.create_network(&req).await.unwrap_err();
    assert_eq!(
        crate::error::NetError::from(e).kind,
        crate::error::ErrorKind::Internal
    );
    assert_eq!(err_of(d.delete_network("n")).await, "remote: boom");
    assert_eq!(
        err_of(d.leave("n", "e")).await,
        "NetworkDriver.Leave: oops, not json"
    );
    assert_eq!(
        err_of(d.endpoint_oper_info("n", "e")).await,
        "remote: lower-case err"
    );
    // 404 excuses only the optional methods
    d.program_external_connectivity(&Default::default())
        .await
        .unwrap();
    assert_eq!(
        err_of(d.delete_endpoint("n", "e")).await,
        "NetworkDriver.DeleteEndpoint: 404 page not found"
    );
}

#[tokio::test]
async fn ipam_error_field_asymmetry() {
    let t = tempfile::tempdir().unwrap();
    let _f = Fake::start(&sock(t.path(), "i"), |c: &Call| match c.method.as_str() {
        "IpamDriver.GetCapabilities" => Answer::Json(404, "404 page not found".into()),
        "IpamDriver.RequestPool" => ok(r#"{"Error":"boom"}"#),
        "IpamDriver.RequestAddress" => ok(r#"{"Err":"boom"}"#),
        "IpamDriver.ReleasePool" => Answer::Json(500, r#"{"Err":"held"}"#.into()),
        _ => fake::standard(c),
    });
    let i = RemoteIpam::resolve(&registry(t.path()), "i").await.unwrap();
    // GetCapabilities 404: registered without capabilities
    assert!(!i.info().unwrap().requires_mac_address);
    assert_eq!(
        err_of(i.request_pool(&Default::default())).await,
        "remote: boom"
    );
    assert_eq!(
        err_of(i.request_address("p", None, None)).await,
        "No address returned"
    );
    assert_eq!(
        err_of(i.release_pool("p")).await,
        "IpamDriver.ReleasePool: held"
    );
    assert!(!i.get_capabilities().await.unwrap().requires_mac_address);
}

#[tokio::test]
async fn create_endpoint_reply_that_changes_an_address_is_rolled_back() {
    let t = tempfile::tempdir().unwrap();
    let (f, d) = driver(
        t.path(),
        with("NetworkDriver.CreateEndpoint", || {
            ok(r#"{"Interface":{"Address":"10.0.0.3/24"}}"#)
        }),
    )
    .await;
    let ep = CreateEndpointRequest {
        network_id: "n".into(),
        endpoint_id: "e".into(),
        interface: EndpointInterface {
            address: "10.0.0.2/24".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        err_of(d.create_endpoint(&ep)).await,
        "driver modified interface address: endpoint interface IP present (10.0.0.2/24). Cannot be modified with (10.0.0.3/24).; rolled back"
    );
    let m = f.methods();
    assert_eq!(
        &m[m.len() - 2..],
        [
            "NetworkDriver.CreateEndpoint",
            "NetworkDriver.DeleteEndpoint"
        ]
    );
    // with no address asked for, the plugin's address is taken (null IPAM)
    let ep = CreateEndpointRequest::default();
    assert_eq!(
        d.create_endpoint(&ep).await.unwrap().address,
        Some("10.0.0.3/24".parse().unwrap())
    );
}

#[test]
fn merge_checks_each_field() {
    use crate::plugins::driver::merge_interface;
    let asked = Interface {
        mac: Some([2, 0, 0, 0, 0, 1]),
        ..Default::default()
    };
    let reply = EndpointInterface {
        mac_address: "ee:ee:ee:ee:ee:ee".into(),
        ..Default::default()
    };
    assert_eq!(
        merge_interface(&asked, &reply).unwrap_err(),
        "driver modified interface MAC address: endpoint interface MAC address present (02:00:00:00:00:01). Cannot be modified with ee:ee:ee:ee:ee:ee."
    );
    let reply = EndpointInterface {
        address: "fd00::5/64".into(),
        ..Default::default()
    };
    let m = merge_interface(&asked, &reply).unwrap();
    assert_eq!(m.address_ipv6, Some("fd00::5/64".parse().unwrap()));
    assert_eq!(m.address, None);
    let reply = EndpointInterface {
        mac_address: "zz".into(),
        ..Default::default()
    };
    assert_eq!(
        merge_interface(&Interface::default(), &reply).unwrap_err(),
        "address zz: invalid MAC address"
    );
}

#[tokio::test]
async fn bad_join_reply_sends_leave() {
    let t = tempfile::tempdir().unwrap();
    let (f, d) = driver(
        t.path(),
        with("NetworkDriver.Join", || ok(r#"{"Gateway":"10.0.0.1/24"}"#)),
    )
    .await;
    assert_eq!(
        err_of(d.join(&Default::default())).await,
        "unable to parse Gateway \"10.0.0.1/24\""
    );
    assert_eq!(f.methods().last().unwrap(), "NetworkDriver.Leave");
    let t2 = tempfile::tempdir().unwrap();
    let (_f, d) = driver(
        t2.path(),
        with("NetworkDriver.Join", || {
            ok(r#"{"StaticRoutes":[{"Destination":"10.0.0.0/8","RouteType":0,"NextHop":"x"}]}"#)
        }),
    )
    .await;
    assert_eq!(
        err_of(d.join(&Default::default())).await,
        "failed to parse nexthop IP x"
    );
}

#[tokio::test]
async fn hostile_replies_are_bounded_and_never_panic() {
    let t = tempfile::tempdir().unwrap();
    let (_f, d) = driver(t.path(), |c: &Call| match c.method.as_str() {
        "NetworkDriver.CreateNetwork" => Answer::Json(200, "x".repeat(1 << 20)),
        "NetworkDriver.DeleteNetwork" => ok("{\"Err\":"),
        "NetworkDriver.Leave" => ok(""),
        "NetworkDriver.DeleteEndpoint" => {
            ok(&format!("{}{}", "[".repeat(20_000), "]".repeat(20_000)))
        }
        "NetworkDriver.EndpointOperInfo" => Answer::Hang,
        "NetworkDriver.Join" => Answer::Raw(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()),
        "NetworkDriver.RevokeExternalConnectivity" => Answer::Close,
        "NetworkDriver.DiscoverNew" => {
            Answer::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n{".to_vec())
        }
        "NetworkDriver.FreeNetwork" => ok(r#"{"Err":5}"#),
        _ => fake::standard(c),
    })
    .await;
    let e = err_of(d.create_network(&Default::default())).await;
    assert_eq!(
        e,
        "NetworkDriver.CreateNetwork: reply larger than 65536 bytes"
    );
    let e = err_of(d.delete_network("n")).await;
    assert!(
        e.starts_with("NetworkDriver.DeleteNetwork: EOF while parsing"),
        "{e}"
    );
    assert_eq!(err_of(d.leave("n", "e")).await, "NetworkDriver.Leave: EOF");
    let e = err_of(d.delete_endpoint("n", "e")).await;
    assert!(e.contains("recursion limit"), "{e}");
    let started = std::time::Instant::now();
    let e = err_of(d.endpoint_oper_info("n", "e")).await;
    assert!(e.ends_with("/NetworkDriver.EndpointOperInfo\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // garbage and dropped connections are transport failures: retried, then Go's texts
    let e = err_of(d.join(&Default::default())).await;
    assert!(
        e.starts_with("Post \"http://") && e.contains("malformed HTTP response"),
        "{e}"
    );
    let e = err_of(d.revoke_external_connectivity("n", "e")).await;
    assert!(
        e.ends_with("/NetworkDriver.RevokeExternalConnectivity\": EOF"),
        "{e}"
    );
    let e = err_of(d.discover_new(&Default::default())).await;
    assert!(e.contains("reply larger than 65536 bytes"), "{e}");
    let e = err_of(d.free_network("n")).await;
    assert!(e.contains("invalid type"), "{e}");
}

#[tokio::test]
async fn tcp_spec_plugin() {
    let t = tempfile::tempdir().unwrap();
    let (f, port) = Fake::start_tcp(fake::standard).await;
    std::fs::write(
        t.path().join("tp.spec"),
        format!("tcp://127.0.0.1:{port}\n"),
    )
    .unwrap();
    let d = RemoteDriver::resolve(&registry(t.path()), "tp")
        .await
        .unwrap();
    d.leave("n", "e").await.unwrap();
    let c = f.last("NetworkDriver.Leave");
    assert_eq!(c.header("host"), Some(format!("127.0.0.1:{port}").as_str()));
    assert_eq!(f.methods()[0], "Plugin.Activate");
}
