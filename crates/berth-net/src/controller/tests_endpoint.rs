//! Endpoints and sandboxes against the fake Osl: Docker's errors, allocation rules, rollback,
//! restarts and concurrency.

use super::*;
use crate::endpoint::EndpointRequest;
use crate::error::ErrorKind;
use crate::firewall::FwError;
use crate::osl::fake::FakeOsl;
use crate::store::ENDPOINTS;
use berth_api::{Ipam, IpamConfig};

struct NoFw;

impl Firewall for NoFw {
    fn init(&self) -> std::result::Result<(), FwError> {
        Ok(())
    }
    fn add_network(&self, _: &FwNetwork) -> std::result::Result<(), FwError> {
        Ok(())
    }
    fn remove_network(&self, _: &FwNetwork) -> std::result::Result<(), FwError> {
        Ok(())
    }
    fn bridges(&self) -> std::result::Result<Vec<String>, FwError> {
        Ok(vec![])
    }
    fn teardown(&self) -> std::result::Result<(), FwError> {
        Ok(())
    }
}

struct Rig {
    dir: tempfile::TempDir,
    osl: Arc<FakeOsl>,
    c: Arc<Controller>,
}

fn cfg(dir: &std::path::Path) -> Config {
    Config {
        instance: "berth".into(),
        default_bridge: "berth0".into(),
        bip: None,
        pools: vec![],
        netns_dir: dir.join("netns"),
        dns: Default::default(),
        cluster: None,
        plugin_dirs: vec![],
        plugin_retry: Some(crate::plugins::Retry::NONE),
    }
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let osl = Arc::new(FakeOsl::default());
    let c = start(&dir, &osl, cfg(dir.path())).await;
    Rig { dir, osl, c }
}

async fn start(dir: &tempfile::TempDir, osl: &Arc<FakeOsl>, cfg: Config) -> Arc<Controller> {
    let store = Store::open(&dir.path().join("berth.db")).unwrap();
    Controller::start(cfg, store, osl.clone(), Arc::new(NoFw))
        .await
        .unwrap()
}

impl Rig {
    async fn restart_with(self, cfg: Config) -> Rig {
        let Rig { dir, osl, c } = self;
        c.settle().await;
        drop(c);
        let c = start(&dir, &osl, cfg).await;
        Rig { dir, osl, c }
    }

    async fn restart(self) -> Rig {
        let cfg = cfg(self.dir.path());
        self.restart_with(cfg).await
    }

    async fn net(&self, name: &str, subnet: &str) -> String {
        self.net_with(name, ipam(subnet)).await
    }

    async fn net_with(&self, name: &str, c: IpamConfig) -> String {
        let req = NetworkCreateRequest {
            name: name.into(),
            ipam: Some(Ipam {
                driver: "default".into(),
                options: None,
                config: Some(vec![c]),
            }),
            ..Default::default()
        };
        self.c.create(&req).await.unwrap()
    }

    async fn join(&self, n: usize, net: &str) -> berth_api::EndpointSettings {
        self.c.connect(req(n, net)).await.unwrap()
    }

    async fn err(&self, r: EndpointRequest) -> (ErrorKind, String) {
        let e = self.c.connect(r).await.unwrap_err();
        (e.kind, e.message)
    }

    fn veths(&self) -> Vec<String> {
        self.osl.endpoints.lock().unwrap().keys().cloned().collect()
    }

    fn spec(&self, ep: &berth_api::EndpointSettings) -> crate::osl::EndpointSpec {
        let eps = self.osl.endpoints.lock().unwrap();
        eps.values()
            .find(|s| s.alias.ends_with(&ep.endpoint_id))
            .cloned()
            .expect("veth of the endpoint")
    }
}

fn ipam(subnet: &str) -> IpamConfig {
    IpamConfig {
        subnet: subnet.into(),
        ..Default::default()
    }
}

/// Distinct in the first 12 digits, as sandboxes are named by them.
fn cid(n: usize) -> String {
    format!("{n:04x}{}", "c".repeat(60))
}

fn req(n: usize, net: &str) -> EndpointRequest {
    EndpointRequest {
        container_id: cid(n),
        container_name: format!("c{n}"),
        network: net.into(),
        ..Default::default()
    }
}

fn with_ip(n: usize, net: &str, ip: &str) -> EndpointRequest {
    EndpointRequest {
        ipv4: Some(ip.into()),
        ..req(n, net)
    }
}

#[tokio::test]
async fn connect_gives_docker_settings_and_kernel_spec() {
    let r = rig().await;
    let id = r.net("n1", "10.10.0.0/24").await;
    let sb = r.c.sandbox_create(&cid(1)).await.unwrap();
    assert_eq!(sb, r.dir.path().join("netns").join(&cid(1)[..12]));
    assert_eq!(r.c.sandbox_create(&cid(1)).await.unwrap(), sb, "idempotent");
    assert_eq!(r.c.sandbox_path(&cid(1)), sb);
    let mut rq = req(1, "n1");
    rq.aliases = vec!["web".into()];
    rq.links = vec!["c9:db".into()];
    let s = r.c.connect(rq).await.unwrap();
    assert_eq!(s.network_id, id);
    assert_eq!(s.endpoint_id.len(), 64);
    assert_eq!(
        (s.ip_address.as_str(), s.ip_prefix_len, s.gateway.as_str()),
        ("10.10.0.2", 24, "10.10.0.1")
    );
    assert_eq!(s.mac_address, "02:42:0a:0a:00:02");
    assert_eq!(s.aliases, Some(vec!["web".to_string()]));
    assert_eq!(s.links, Some(vec!["c9:db".to_string()]));
    assert_eq!((s.ipam_config.clone(), s.driver_opts.clone()), (None, None));
    assert_eq!(
        (s.ipv6_gateway.as_str(), s.global_ipv6_address.as_str()),
        ("", "")
    );
    let spec = r.spec(&s);
    assert!(spec.host_if.starts_with("veth") && spec.host_if.len() == 11);
    assert_eq!(spec.alias, format!("berth/berth/ep/{}", s.endpoint_id));
    assert_eq!(spec.bridge, format!("br-{}", &id[..12]));
    assert_eq!((spec.netns.clone(), spec.ifname.as_str()), (sb, "eth0"));
    assert_eq!(spec.addrs, vec!["10.10.0.2/24".parse().unwrap()]);
    assert_eq!(spec.gateways, vec!["10.10.0.1".parse::<IpAddr>().unwrap()]);

    let n = r.c.inspect("n1").unwrap();
    let e = &n.containers[&cid(1)];
    assert_eq!(
        (
            e.name.as_str(),
            e.ipv4_address.as_str(),
            e.ipv6_address.as_str()
        ),
        ("c1", "10.10.0.2/24", "")
    );
    assert_eq!(e.endpoint_id, s.endpoint_id);
    assert_eq!(e.mac_address, s.mac_address);
    let listed = r.c.list(Filters::new()).unwrap();
    assert!(listed
        .iter()
        .any(|x| x.name == "n1" && x.containers.len() == 1));
    let mut f = Filters::new();
    f.insert("dangling".into(), vec!["true".into()]);
    assert!(r.c.list(f).unwrap().is_empty(), "n1 is in use");
    assert_eq!(r.c.endpoints_of(&cid(1)), vec![("n1".to_string(), s)]);
}

#[tokio::test]
async fn docker_errors_and_refusals_change_nothing() {
    let r = rig().await;
    r.net("n1", "10.10.0.0/24").await;
    let mut aux = ipam("10.11.0.0/24");
    aux.aux_addresses = Some([("h".to_string(), "10.11.0.9".to_string())].into());
    r.net_with("n2", aux).await;
    r.c.create(&NetworkCreateRequest {
        name: "auto".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    r.net("tiny", "10.12.0.0/30").await;
    r.join(1, "n1").await;
    r.join(1, "tiny").await;
    let veths = r.veths();
    use ErrorKind::*;
    let cases: Vec<(EndpointRequest, ErrorKind, &str)> = vec![
        (req(2, "nosuch"), NotFound, "network nosuch not found"),
        (req(1, "n1"), Forbidden, "endpoint with name c1 already exists in network n1"),
        (with_ip(2, "bridge", "172.17.0.9"), InvalidParameter, "user specified IP address is supported on user defined networks only"),
        (with_ip(2, "auto", "172.18.0.9"), InvalidParameter, "user specified IP address is supported only when connecting to networks with user configured subnets"),
        (EndpointRequest { ipv6: Some("2001:db8::5".into()), ..req(2, "n1") }, InvalidParameter, "user specified IP address is supported only when connecting to networks with user configured subnets"),
        (with_ip(2, "n1", "notanip"), Internal, "Invalid IPv4 address: notanip)"),
        (with_ip(2, "n1", "10.99.0.5"), Internal, "Invalid address 10.99.0.5: It does not belong to any of this network's subnets"),
        (with_ip(2, "n1", "10.10.0.2"), Forbidden, "Address already in use"),
        (with_ip(2, "n1", "10.10.0.1"), Forbidden, "Address already in use"),
        (with_ip(2, "n2", "10.11.0.9"), Forbidden, "Address already in use"),
        (req(2, "tiny"), Internal, ""),
        (EndpointRequest { aliases: vec!["a".into()], ..req(2, "bridge") }, InvalidParameter, "network-scoped alias is supported only for containers in user defined networks"),
        (req(2, "host"), InvalidParameter, "container cannot be disconnected from host network or connected to host network"),
        (req(2, "none"), InvalidParameter, "container cannot be connected to multiple networks with one of the networks in private (none) mode"),
        (EndpointRequest { mac: Some("nope".into()), ..req(2, "n1") }, Internal, "address nope: invalid MAC address"),
    ];
    let tiny_id = r.c.inspect("tiny").unwrap().id;
    for (rq, kind, msg) in cases {
        let msg = if msg.is_empty() {
            format!("no available IPv4 addresses on this network's address pools: tiny ({tiny_id})")
        } else {
            msg.to_string()
        };
        assert_eq!(r.err(rq).await, (kind, msg.clone()));
        assert_eq!(r.veths(), veths, "after {msg}");
    }
    // nothing was taken by the refusals: the next address and eth number follow on
    let s = r.join(2, "n1").await;
    assert_eq!(s.ip_address, "10.10.0.3");
    assert_eq!(r.spec(&s).ifname, "eth0");
    let s = r.c.connect(with_ip(3, "n2", "10.11.0.5")).await.unwrap();
    assert_eq!(s.ipam_config.unwrap().ipv4_address, "10.11.0.5");

    let e = r.c.disconnect(&cid(2), "n2").await.unwrap_err();
    assert_eq!(e.kind, Internal);
    assert_eq!(
        e.message,
        format!("container {} is not connected to network n2", cid(2))
    );
    let e = r.c.disconnect(&cid(2), "nosuch").await.unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (NotFound, "network nosuch not found")
    );
    let e = r.c.disconnect(&cid(2), "host").await.unwrap_err();
    assert_eq!(e.kind, InvalidParameter);
}

#[tokio::test]
async fn eth_numbers_are_never_reused_and_routes_move_on() {
    let r = rig().await;
    r.net("a", "10.20.0.0/24").await;
    r.net("b", "10.21.0.0/24").await;
    let a = r.join(1, "a").await;
    let b = r.join(1, "b").await;
    assert_eq!(
        (r.spec(&a).ifname, r.spec(&b).ifname),
        ("eth0".into(), "eth1".into())
    );
    assert!(!r.spec(&a).gateways.is_empty());
    assert!(
        r.spec(&b).gateways.is_empty(),
        "only the first carries the default route"
    );
    r.c.disconnect(&cid(1), "a").await.unwrap();
    let sb = r.c.sandbox_path(&cid(1));
    assert_eq!(
        r.osl.routes.lock().unwrap().clone(),
        vec![(
            sb.clone(),
            "eth1".to_string(),
            vec!["10.21.0.1".parse().unwrap()]
        )]
    );
    let a2 = r.join(1, "a").await;
    assert_eq!(r.spec(&a2).ifname, "eth2");
    assert!(r.spec(&a2).gateways.is_empty(), "b carries the route now");
    r.c.disconnect(&cid(1), "b").await.unwrap();
    assert_eq!(r.osl.routes.lock().unwrap().last().unwrap().1, "eth2");
    let b2 = r.join(1, "b").await;
    assert_eq!(r.spec(&b2).ifname, "eth3");
    let names: Vec<String> =
        r.c.endpoints_of(&cid(1))
            .into_iter()
            .map(|(n, _)| n)
            .collect();
    assert_eq!(names, vec!["a", "b"], "attach order");
    // the counter survives a daemon restart while the sandbox lives
    let r = r.restart().await;
    r.c.disconnect(&cid(1), "b").await.unwrap();
    let b3 = r.join(1, "b").await;
    assert_eq!(r.spec(&b3).ifname, "eth4");
}

#[tokio::test]
async fn user_mac_ip_range_aux_and_next_after_last() {
    let r = rig().await;
    let mut c = ipam("10.0.1.0/24");
    c.ip_range = "10.0.1.128/25".into();
    c.gateway = "10.0.1.254".into();
    c.aux_addresses = Some([("a".to_string(), "10.0.1.130".to_string())].into());
    r.net_with("ranged", c).await;
    let ips: Vec<String> = [
        r.join(1, "ranged").await,
        r.join(2, "ranged").await,
        r.join(3, "ranged").await,
    ]
    .into_iter()
    .map(|s| s.ip_address)
    .collect();
    assert_eq!(ips, vec!["10.0.1.128", "10.0.1.129", "10.0.1.131"]);
    // requested addresses may lie outside the range
    let s = r.c.connect(with_ip(4, "ranged", "10.0.1.5")).await.unwrap();
    assert_eq!(
        (s.ip_address.as_str(), s.gateway.as_str()),
        ("10.0.1.5", "10.0.1.254")
    );
    let mut m = req(5, "ranged");
    m.mac = Some("02:AA:bb:cc:dd:ee".into());
    let s = r.c.connect(m).await.unwrap();
    assert_eq!(s.mac_address, "02:aa:bb:cc:dd:ee");
    assert_eq!(r.spec(&s).mac, [2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
    // a released address is not the next one handed out
    r.c.disconnect(&cid(1), "ranged").await.unwrap();
    r.c.settle().await;
    assert_eq!(r.join(6, "ranged").await.ip_address, "10.0.1.133");
}

#[tokio::test]
async fn freed_address_waits_for_its_veth() {
    let r = rig().await;
    r.net("n", "10.30.0.0/24").await;
    let s = r.join(1, "n").await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *r.osl.delete_gate.lock().unwrap() = Some(gate.clone());
    r.c.disconnect(&cid(1), "n").await.unwrap();
    assert!(r.c.inspect("n").unwrap().containers.is_empty());
    assert!(r.c.endpoints_of(&cid(1)).is_empty());
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let host_if = r.spec(&s).host_if;
    assert!(r.veths().contains(&host_if), "deletion is held");
    assert_eq!(
        r.err(with_ip(2, "n", "10.30.0.2")).await.1,
        "Address already in use"
    );
    gate.add_permits(100);
    r.c.settle().await;
    assert!(!r.veths().contains(&host_if));
    assert_eq!(
        r.c.connect(with_ip(2, "n", "10.30.0.2"))
            .await
            .unwrap()
            .ip_address,
        "10.30.0.2"
    );
}

#[tokio::test]
async fn kernel_failure_rolls_back() {
    let r = rig().await;
    r.net("n", "10.40.0.0/24").await;
    r.join(1, "n").await;
    *r.osl.fail_endpoint.lock().unwrap() = Some("boom".into());
    let e = r.c.connect(with_ip(2, "n", "10.40.0.7")).await.unwrap_err();
    assert!(e.message.contains("boom"), "{}", e.message);
    assert_eq!(r.c.inspect("n").unwrap().containers.len(), 1);
    assert!(r.c.endpoints_of(&cid(2)).is_empty());
    assert_eq!(r.veths().len(), 1);
    let s = r.c.connect(with_ip(2, "n", "10.40.0.7")).await.unwrap();
    assert_eq!(
        r.spec(&s).ifname,
        "eth0",
        "the interface number was given back"
    );
    let store =
        r.c.store
            .list::<crate::endpoint::Endpoint>(ENDPOINTS)
            .unwrap();
    assert_eq!(store.len(), 2, "no record of the failed attempt");
}

#[tokio::test]
async fn network_removal_waits_for_endpoints() {
    let r = rig().await;
    let id = r.net("busy", "10.50.0.0/24").await;
    r.join(1, "busy").await;
    r.join(1, "bridge").await;
    let e = r.c.delete("busy").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert_eq!(
        e.message,
        format!("error while removing network: network busy id {id} has active endpoints")
    );
    assert!(r.c.prune(Filters::new()).await.unwrap().is_empty());
    let bridge = r.c.inspect("bridge").unwrap();
    assert_eq!(bridge.containers[&cid(1)].ipv4_address, "172.17.0.2/16");
    assert!(
        r.c.remove(&bridge.id, true).await.is_err(),
        "predefined too"
    );
    r.c.disconnect(&cid(1), "busy").await.unwrap();
    assert_eq!(r.c.prune(Filters::new()).await.unwrap(), vec!["busy"]);
}

#[tokio::test]
async fn sandbox_delete_releases_everything() {
    let r = rig().await;
    r.net("a", "10.60.0.0/24").await;
    r.net("b", "10.61.0.0/24").await;
    // connect makes the sandbox when the engine did not
    r.join(1, "a").await;
    r.join(1, "b").await;
    let sb = r.c.sandbox_path(&cid(1));
    assert!(r.osl.sandboxes.lock().unwrap().contains(&sb));
    r.c.sandbox_delete(&cid(1)).await.unwrap();
    r.c.sandbox_delete(&cid(1)).await.unwrap();
    r.c.settle().await;
    assert!(r.veths().is_empty());
    assert!(!r.osl.sandboxes.lock().unwrap().contains(&sb));
    assert!(r.c.endpoints_of(&cid(1)).is_empty());
    assert!(r.c.inspect("a").unwrap().containers.is_empty());
    r.c.delete("a").await.unwrap();
    // a new life starts at eth0 again
    r.join(1, "b").await;
    assert_eq!(r.spec(&r.c.endpoints_of(&cid(1))[0].1).ifname, "eth0");
    let r = r.restart().await;
    assert_eq!(r.c.endpoints_of(&cid(1)).len(), 1);
}

#[tokio::test]
async fn restart_keeps_allocations_and_drops_what_is_gone() {
    let r = rig().await;
    r.net("n", "10.70.0.0/24").await;
    let a = r.join(1, "n").await;
    let b = r.join(2, "n").await;
    let c = r.join(3, "n").await;
    let d = r.join(4, "n").await;
    let external = r.dir.path().join("engine-ns");
    r.osl.create_sandbox(&external).await.unwrap();
    let e =
        r.c.connect(EndpointRequest {
            sandbox: Some(external.clone()),
            ..req(5, "n")
        })
        .await
        .unwrap();
    // while the daemon is down: container 2 died and its namespace went, container 3's veth
    // vanished (a connect that crashed half-way), and an unknown tagged veth appeared
    let sb2 = r.c.sandbox_path(&cid(2));
    r.osl.sandboxes.lock().unwrap().remove(&sb2);
    let c_if = r.spec(&c).host_if;
    r.osl.endpoints.lock().unwrap().remove(&c_if);
    let mut orphan = r.spec(&a);
    orphan.host_if = "vethdead000".into();
    orphan.alias = "berth/berth/ep/deadbeef".into();
    r.osl
        .endpoints
        .lock()
        .unwrap()
        .insert(orphan.host_if.clone(), orphan);
    // and the stored pool holds an address nobody owns (allocated, then a crash)
    let id = r.c.inspect("n").unwrap().id;
    let leak: IpAddr = "10.70.0.200".parse().unwrap();
    {
        let mut n = r.c.store.get::<Network>(NETWORKS, &id).unwrap().unwrap();
        n.subnets[0].pool.reserve(leak).unwrap();
        r.c.store.put(NETWORKS, &id, &n).unwrap();
    }
    let b_if = r.spec(&b).host_if;
    let r = r.restart().await;
    assert_eq!(
        r.c.endpoints_of(&cid(1)),
        vec![("n".to_string(), a.clone())]
    );
    assert_eq!(r.c.endpoints_of(&cid(4)), vec![("n".to_string(), d)]);
    assert_eq!(r.c.endpoints_of(&cid(5)), vec![("n".to_string(), e)]);
    assert!(r.c.endpoints_of(&cid(2)).is_empty());
    assert!(r.c.endpoints_of(&cid(3)).is_empty());
    let veths = r.veths();
    assert_eq!(veths.len(), 3, "{veths:?}");
    assert!(!veths.contains(&b_if) && !veths.contains(&"vethdead000".to_string()));
    let mut keys: Vec<String> = r.c.inspect("n").unwrap().containers.into_keys().collect();
    keys.sort();
    assert_eq!(keys, vec![cid(1), cid(4), cid(5)]);
    // kept addresses stay taken, dropped and leaked ones are free again
    assert_eq!(
        r.err(with_ip(6, "n", &a.ip_address)).await.1,
        "Address already in use"
    );
    for ip in [&b.ip_address, &c.ip_address, &leak.to_string()] {
        let s = r.c.connect(with_ip(6, "n", ip)).await.unwrap();
        assert_eq!(&s.ip_address, ip);
        r.c.disconnect(&cid(6), "n").await.unwrap();
        r.c.settle().await;
    }
}

#[tokio::test]
async fn restart_keeps_the_cursor() {
    let r = rig().await;
    r.net("n", "10.71.0.0/24").await;
    r.join(1, "n").await;
    r.join(2, "n").await;
    r.c.disconnect(&cid(2), "n").await.unwrap();
    let r = r.restart().await;
    assert_eq!(r.join(3, "n").await.ip_address, "10.71.0.4");
}

#[tokio::test]
async fn rebuilt_default_bridge_drops_its_endpoints() {
    let r = rig().await;
    r.join(1, "bridge").await;
    let mut c = cfg(r.dir.path());
    c.bip = Some("10.99.0.1/24".parse().unwrap());
    let r = r.restart_with(c).await;
    assert!(r.c.endpoints_of(&cid(1)).is_empty());
    assert!(r.veths().is_empty());
    assert_eq!(r.join(2, "bridge").await.ip_address, "10.99.0.2");
}

#[tokio::test]
async fn ipv6_endpoints() {
    let r = rig().await;
    let req6 = NetworkCreateRequest {
        name: "v6".into(),
        enable_ipv6: true,
        ipam: Some(Ipam {
            driver: "default".into(),
            options: None,
            config: Some(vec![ipam("10.80.0.0/24"), ipam("fd00:dead:beef::/64")]),
        }),
        ..Default::default()
    };
    r.c.create(&req6).await.unwrap();
    let s = r.join(1, "v6").await;
    assert_eq!(
        (
            s.global_ipv6_address.as_str(),
            s.global_ipv6_prefix_len,
            s.ipv6_gateway.as_str()
        ),
        ("fd00:dead:beef::2", 64, "fd00:dead:beef::1")
    );
    assert_eq!(r.spec(&s).gateways.len(), 2);
    let s =
        r.c.connect(EndpointRequest {
            ipv6: Some("fd00:dead:beef::99".into()),
            ..req(2, "v6")
        })
        .await
        .unwrap();
    assert_eq!(s.global_ipv6_address, "fd00:dead:beef::99");
    assert_eq!(s.ipam_config.unwrap().ipv6_address, "fd00:dead:beef::99");
    let e = r
        .err(EndpointRequest {
            ipv6: Some("zz".into()),
            ..req(3, "v6")
        })
        .await;
    assert_eq!(e.1, "Invalid IPv6 address: zz)");
    let n = r.c.inspect("v6").unwrap();
    assert_eq!(n.containers[&cid(1)].ipv6_address, "fd00:dead:beef::2/64");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_connects_get_distinct_addresses() {
    let r = rig().await;
    r.net("par", "10.90.0.0/24").await;
    let mut set = tokio::task::JoinSet::new();
    for n in 0..32 {
        let c = r.c.clone();
        set.spawn(async move { c.connect(req(n, "par")).await.unwrap() });
    }
    let mut ips = std::collections::BTreeSet::new();
    while let Some(s) = set.join_next().await {
        ips.insert(s.unwrap().ip_address);
    }
    assert_eq!(ips.len(), 32);
    assert_eq!(r.veths().len(), 32);
    assert_eq!(r.c.inspect("par").unwrap().containers.len(), 32);
    // and the store agrees after a restart
    let r = r.restart().await;
    assert_eq!(r.c.inspect("par").unwrap().containers.len(), 32);
    let next = r.join(99, "par").await.ip_address;
    assert!(!ips.contains(&next));
}

mod kernel;
