use super::*;
use crate::firewall::FwError;
use crate::osl::fake::FakeOsl;
use crate::osl::BridgeSpec;
use berth_api::{Ipam, IpamConfig};

#[derive(Default)]
struct FakeFw {
    nets: Mutex<BTreeMap<String, FwNetwork>>,
    fail_add: Mutex<bool>,
}

impl Firewall for FakeFw {
    fn init(&self) -> std::result::Result<(), FwError> {
        Ok(())
    }
    fn add_network(&self, n: &FwNetwork) -> std::result::Result<(), FwError> {
        if std::mem::take(&mut *self.fail_add.lock().unwrap()) {
            return Err(FwError::Context("injected"));
        }
        self.nets
            .lock()
            .unwrap()
            .insert(n.bridge.clone(), n.clone());
        Ok(())
    }
    fn remove_network(&self, n: &FwNetwork) -> std::result::Result<(), FwError> {
        self.nets.lock().unwrap().remove(&n.bridge);
        Ok(())
    }
    fn bridges(&self) -> std::result::Result<Vec<String>, FwError> {
        Ok(self.nets.lock().unwrap().keys().cloned().collect())
    }
    fn teardown(&self) -> std::result::Result<(), FwError> {
        Ok(())
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    osl: Arc<FakeOsl>,
    fw: Arc<FakeFw>,
    c: Arc<Controller>,
}

fn cfg() -> Config {
    Config {
        instance: "berth".into(),
        default_bridge: "berth0".into(),
        bip: None,
        pools: vec![],
        netns_dir: "/nonexistent/netns".into(),
        dns: Default::default(),
        cluster: None,
        plugin_dirs: vec![],
        plugin_retry: Some(crate::plugins::Retry::NONE),
    }
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.db");
    let osl = Arc::new(FakeOsl::default());
    let fw = Arc::new(FakeFw::default());
    let c = Controller::start(cfg(), Store::open(&path).unwrap(), osl.clone(), fw.clone())
        .await
        .unwrap();
    Rig {
        _dir: dir,
        path,
        osl,
        fw,
        c,
    }
}

impl Rig {
    async fn restart(self) -> Rig {
        let Rig {
            _dir,
            path,
            osl,
            fw,
            c,
        } = self;
        drop(c);
        let c = Controller::start(cfg(), Store::open(&path).unwrap(), osl.clone(), fw.clone())
            .await
            .unwrap();
        Rig {
            _dir,
            path,
            osl,
            fw,
            c,
        }
    }

    async fn snapshot(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        self.c.settle().await;
        let mut nets: Vec<String> = self
            .c
            .list(Filters::new())
            .unwrap()
            .into_iter()
            .map(|n| n.id)
            .collect();
        nets.sort();
        (
            nets,
            self.osl.links.lock().unwrap().keys().cloned().collect(),
            self.fw.bridges().unwrap(),
        )
    }
}

fn named(name: &str) -> NetworkCreateRequest {
    NetworkCreateRequest {
        name: name.into(),
        ..Default::default()
    }
}

fn with_subnet(name: &str, c: IpamConfig) -> NetworkCreateRequest {
    NetworkCreateRequest {
        name: name.into(),
        ipam: Some(Ipam {
            driver: "default".into(),
            options: Some(BTreeMap::new()),
            config: Some(vec![c]),
        }),
        ..Default::default()
    }
}

fn subnet(s: &str) -> IpamConfig {
    IpamConfig {
        subnet: s.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn predefined_networks_exist() {
    let r = rig().await;
    let mut names: Vec<(String, String)> =
        r.c.list(Filters::new())
            .unwrap()
            .into_iter()
            .map(|n| (n.name, n.driver))
            .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            ("bridge".into(), "bridge".into()),
            ("host".into(), "host".into()),
            ("none".into(), "null".into())
        ]
    );
    let b = r.c.inspect("bridge").unwrap();
    assert_eq!(b.ipam.config.unwrap()[0].subnet, "172.17.0.0/16");
    assert!(r.osl.links.lock().unwrap().contains_key("berth0"));
    assert_eq!(
        r.c.delete("bridge").await.unwrap_err().message,
        "bridge is a pre-defined network and cannot be removed"
    );
}

#[tokio::test]
async fn auto_subnets_follow_docker_then_skip_host_routes() {
    let r = rig().await;
    r.osl
        .host
        .lock()
        .unwrap()
        .push("172.19.0.0/24".parse().unwrap());
    let a = r.c.create(&named("a")).await.unwrap();
    let b = r.c.create(&named("b")).await.unwrap();
    let sub = |id: &str| r.c.inspect(id).unwrap().ipam.config.unwrap()[0].clone();
    assert_eq!(sub(&a).subnet, "172.18.0.0/16");
    assert_eq!(sub(&a).gateway, "172.18.0.1");
    assert_eq!(sub(&b).subnet, "172.20.0.0/16", "172.19 is a host route");
    let br = format!("br-{}", &a[..12]);
    let spec = r.osl.links.lock().unwrap()[&br].clone();
    assert_eq!(spec.addrs, vec!["172.18.0.1/16".parse().unwrap()]);
    assert!(r.fw.nets.lock().unwrap()[&br].masquerade);
}

#[tokio::test]
async fn explicit_config_is_echoed_and_respected() {
    let r = rig().await;
    let mut c = subnet("10.0.1.0/24");
    c.ip_range = "10.0.1.128/25".into();
    c.gateway = "10.0.1.254".into();
    c.aux_addresses = Some([("a".to_string(), "10.0.1.130".to_string())].into());
    let mut req = with_subnet("demo", c.clone());
    req.options = Some([(OPT_NAME.to_string(), "br-demo".to_string())].into());
    req.labels = Some([("team".to_string(), "a".to_string())].into());
    let id = r.c.create(&req).await.unwrap();
    let n = r.c.inspect("demo").unwrap();
    assert_eq!(n.id, id);
    assert_eq!(n.ipam.config.unwrap(), vec![c]);
    assert_eq!(n.labels["team"], "a");
    assert_eq!(n.options[OPT_NAME], "br-demo");
    assert!(r.osl.links.lock().unwrap().contains_key("br-demo"));
    // prefix and name resolution
    assert_eq!(r.c.inspect(&id[..5]).unwrap().name, "demo");
}

#[tokio::test]
async fn refused_requests_change_nothing() {
    let r = rig().await;
    r.c.create(&with_subnet("one", subnet("10.1.0.0/16")))
        .await
        .unwrap();
    let before = r.snapshot().await;
    let cases: Vec<(NetworkCreateRequest, &str)> = vec![
        (named("one"), "network with name one already exists"),
        (
            with_subnet("two", subnet("10.1.2.0/24")),
            "Pool overlaps with other one on this address space",
        ),
        (
            with_subnet("two", subnet("172.16.0.0/12")),
            "Pool overlaps with other one on this address space",
        ),
        (
            with_subnet(
                "two",
                IpamConfig {
                    gateway: "10.203.0.1".into(),
                    ..subnet("10.202.0.0/24")
                },
            ),
            "failed to allocate gateway (10.203.0.1): Requested address is out of range",
        ),
        (
            with_subnet("two", subnet("10.5.0.0/31")),
            "failed to allocate gateway (): No available addresses on this pool",
        ),
        (
            NetworkCreateRequest {
                options: Some([(OPT_MTU.to_string(), "abc".to_string())].into()),
                ..named("two")
            },
            "failed to parse com.docker.network.driver.mtu value: abc (strconv.Atoi: parsing \"abc\": invalid syntax)",
        ),
    ];
    for (req, msg) in cases {
        assert_eq!(r.c.create(&req).await.unwrap_err().message, msg);
        assert_eq!(r.snapshot().await, before, "after: {msg}");
    }
    // the subnet of a refused request is free again
    r.c.create(&with_subnet("two", subnet("10.202.0.0/24")))
        .await
        .unwrap();
}

#[tokio::test]
async fn bridge_name_conflicts_are_refused() {
    let r = rig().await;
    let req = |n: &str, b: &str| NetworkCreateRequest {
        options: Some([(OPT_NAME.to_string(), b.to_string())].into()),
        ..named(n)
    };
    r.c.create(&req("a", "br-x")).await.unwrap();
    let before = r.snapshot().await;
    assert!(r
        .c
        .create(&req("b", "br-x"))
        .await
        .unwrap_err()
        .message
        .contains("networks have same bridge name"));
    // the default bridge is protected the same way (Docker silently breaks it here)
    assert!(r.c.create(&req("c", "berth0")).await.is_err());
    // an interface berth does not own
    r.osl.links.lock().unwrap().insert(
        "eth9".into(),
        BridgeSpec {
            name: "eth9".into(),
            alias: String::new(),
            mtu: None,
            addrs: vec![],
        },
    );
    let e = r.c.create(&req("d", "eth9")).await.unwrap_err();
    assert_eq!(e.kind, crate::error::ErrorKind::Forbidden);
    r.osl.links.lock().unwrap().remove("eth9");
    assert_eq!(r.snapshot().await, before);
}

#[tokio::test]
async fn kernel_failures_roll_back() {
    let r = rig().await;
    let before = r.snapshot().await;
    *r.osl.fail_create.lock().unwrap() = Some("boom".into());
    assert!(r.c.create(&named("x")).await.is_err());
    *r.fw.fail_add.lock().unwrap() = true;
    assert!(r.c.create(&named("x")).await.is_err());
    assert_eq!(r.snapshot().await, before);
    // nothing persisted either
    let r = r.restart().await;
    assert_eq!(r.snapshot().await, before);
}

#[tokio::test]
async fn restart_keeps_everything_and_repairs_the_kernel() {
    let r = rig().await;
    let id = r.c.create(&named("keep")).await.unwrap();
    let before = r.c.inspect("keep").unwrap();
    let bridge_id = r.c.inspect("bridge").unwrap().id;
    let br = format!("br-{}", &id[..12]);
    // kernel drift while the daemon is down: a missing bridge, an orphan, stale rules
    r.osl.links.lock().unwrap().remove(&br);
    r.osl.links.lock().unwrap().insert(
        "br-orphan".into(),
        BridgeSpec {
            name: "br-orphan".into(),
            alias: "berth/berth/deadbeef".into(),
            mtu: None,
            addrs: vec![],
        },
    );
    r.fw.nets.lock().unwrap().insert(
        "br-stale".into(),
        FwNetwork {
            bridge: "br-stale".into(),
            internal: false,
            masquerade: true,
            icc: true,
        },
    );
    let r = r.restart().await;
    assert_eq!(r.c.inspect("keep").unwrap(), before);
    assert_eq!(r.c.inspect("bridge").unwrap().id, bridge_id);
    let links = r.osl.links.lock().unwrap().clone();
    assert!(links.contains_key(&br));
    assert!(!links.contains_key("br-orphan"));
    assert!(!r.fw.bridges().unwrap().contains(&"br-stale".to_string()));
    // the round-robin cursor survived: the next network does not reuse 172.18
    r.c.delete("keep").await.unwrap();
    let next = r.c.create(&named("next")).await.unwrap();
    assert_eq!(
        r.c.inspect(&next).unwrap().ipam.config.unwrap()[0].subnet,
        "172.19.0.0/16"
    );
}

#[tokio::test]
async fn delete_and_prune() {
    let r = rig().await;
    let before = r.snapshot().await;
    r.c.create(&named("a")).await.unwrap();
    let mut l = named("bee");
    l.labels = Some([("keep".to_string(), "1".to_string())].into());
    r.c.create(&l).await.unwrap();
    let mut f = Filters::new();
    f.insert("label!".into(), vec!["keep".into()]);
    assert_eq!(r.c.prune(f).await.unwrap(), vec!["a".to_string()]);
    r.c.delete("bee").await.unwrap();
    assert_eq!(r.snapshot().await, before);
    // "bee" is not hex, so it cannot match a random id prefix
    assert_eq!(
        r.c.delete("bee").await.unwrap_err().message,
        "network bee not found"
    );
}

#[tokio::test]
async fn list_filters() {
    let r = rig().await;
    r.c.create(&named("rsch-n1")).await.unwrap();
    r.c.create(&named("rsch-n2")).await.unwrap();
    let names = |k: &str, v: &str| {
        let mut f = Filters::new();
        f.insert(k.into(), vec![v.into()]);
        let mut v: Vec<String> = r.c.list(f).unwrap().into_iter().map(|n| n.name).collect();
        v.sort();
        v
    };
    assert_eq!(names("name", "rsch-n"), vec!["rsch-n1", "rsch-n2"]);
    assert_eq!(names("name", "^rsch-n1$"), vec!["rsch-n1"]);
    assert_eq!(names("type", "builtin"), vec!["bridge", "host", "none"]);
    assert_eq!(names("type", "custom"), vec!["rsch-n1", "rsch-n2"]);
    assert_eq!(names("driver", "null"), vec!["none"]);
    assert_eq!(names("dangling", "true"), vec!["rsch-n1", "rsch-n2"]);
}

#[tokio::test]
async fn internal_and_masquerade_flags_reach_the_firewall() {
    let r = rig().await;
    let mut i = named("int");
    i.internal = true;
    let id = r.c.create(&i).await.unwrap();
    let mut m = named("nomasq");
    m.options = Some([(OPT_MASQ.to_string(), "false".to_string())].into());
    let id2 = r.c.create(&m).await.unwrap();
    let fw = r.fw.nets.lock().unwrap().clone();
    let a = &fw[&format!("br-{}", &id[..12])];
    assert!(a.internal && !a.masquerade);
    let b = &fw[&format!("br-{}", &id2[..12])];
    assert!(!b.internal && !b.masquerade);
}

#[tokio::test]
async fn ipv6_network() {
    let r = rig().await;
    let mut req = with_subnet("v6net", subnet("2001:db8:1::/64"));
    req.enable_ipv6 = true;
    let id = r.c.create(&req).await.unwrap();
    let n = r.c.inspect(&id).unwrap();
    let cfg = n.ipam.config.unwrap();
    assert_eq!(cfg.len(), 2, "auto v4 plus the user's v6: {cfg:?}");
    assert_eq!(cfg[1].subnet, "2001:db8:1::/64");
    let spec = r.osl.links.lock().unwrap()[&format!("br-{}", &id[..12])].clone();
    assert!(spec.addrs.contains(&"2001:db8:1::1/64".parse().unwrap()));
}

#[tokio::test]
async fn finished_teardowns_are_not_kept() {
    let r = rig().await;
    for i in 0..40 {
        let name = format!("td-{i}");
        r.c.create(&named(&name)).await.unwrap();
        r.c.delete(&name).await.unwrap();
        // let the background teardown finish before the next one is spawned
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }
    let kept = r.c.teardowns.lock().unwrap().len();
    assert!(
        kept <= 1,
        "{kept} teardown tasks kept after 40 network removals"
    );
}

#[tokio::test]
async fn a_leaving_endpoint_counts_until_its_guard_goes_even_cut_short() {
    let r = rig().await;
    let started = |n: &str| {
        let mut st = r.c.lock();
        super::leave::Leaving::start(&r.c, &mut st, n)
    };
    let (a, b) = (started("n1"), started("n1"));
    assert_eq!(r.c.lock().eps.leaving.get("n1"), Some(&2));
    drop(a);
    assert_eq!(r.c.lock().eps.leaving.get("n1"), Some(&1));
    // a teardown future dropped before it ran (a request cancelled) still ends its count
    let task = async move {
        let _b = b;
        std::future::pending::<()>().await
    };
    drop(task);
    assert!(r.c.lock().eps.leaving.is_empty());
}

/// Names in the store after a restart (the record a crash would leave).
async fn names_after_restart(r: Rig) -> (Rig, Vec<String>) {
    let r = r.restart().await;
    let mut names: Vec<String> =
        r.c.list(Filters::new())
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect();
    names.sort();
    (r, names)
}

/// A network being removed keeps its name until the store has forgotten it: a create of the
/// same name committed before the removal's delete would leave two records of one name to a
/// berthd that died between the two commits (seen in the kill -9 campaign). The store's write
/// lock is held so that the removal stops right before its delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_name_being_removed_is_not_given_again_before_the_removal_is_stored() {
    let r = rig().await;
    r.c.create(&named("x")).await.unwrap();
    let held = r.c.store.hold_writes();
    let rm = tokio::spawn({
        let c = r.c.clone();
        async move { c.delete("x").await }
    });
    // the removal has taken the network out of memory and waits for the store
    let t0 = std::time::Instant::now();
    while r.c.find_by_name("x").is_some() {
        assert!(t0.elapsed() < std::time::Duration::from_secs(5));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let mut create = tokio::spawn({
        let c = r.c.clone();
        async move { c.create(&named("x")).await }
    });
    let early = tokio::time::timeout(std::time::Duration::from_secs(2), &mut create).await;
    drop(held);
    rm.await.unwrap().unwrap();
    let early = match early {
        Ok(done) => done.unwrap(),
        // (before the fix) it went on to its own commit, racing the removal's delete
        Err(_) => {
            let _ = create.await;
            panic!("the create of a name being removed did not answer at once");
        }
    };
    let e = early.unwrap_err();
    assert_eq!(e.to_string(), "network with name x already exists");
    // once removed, the name is free; one record of it after a restart
    r.c.create(&named("x")).await.unwrap();
    let (_r, names) = names_after_restart(r).await;
    assert_eq!(names, ["bridge", "host", "none", "x"]);
}

/// Concurrent creates of one name (Docker 20.10 with CheckDuplicate: one 201, the rest 409):
/// exactly one wins, in memory and in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_name_give_it_once() {
    let r = rig().await;
    for round in 0..20 {
        let name = format!("n{round}");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (c, name) = (r.c.clone(), name.clone());
                tokio::spawn(async move { c.create(&named(&name)).await })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => won += 1,
                Err(e) => assert_eq!(
                    e.to_string(),
                    format!("network with name {name} already exists")
                ),
            }
        }
        assert_eq!(won, 1, "{name}");
    }
    let (_r, names) = names_after_restart(r).await;
    assert_eq!(names.len(), 3 + 20, "{names:?}");
}
