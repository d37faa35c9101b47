//! Publishing against fakes: which endpoint carries the ports, what the firewall gets, Docker's
//! errors with nothing left behind, and restarts.

use super::*;
use crate::endpoint::EndpointRequest;
use crate::error::ErrorKind;
use crate::firewall::ports::Elem;
use crate::firewall::FwError;
use crate::osl::fake::FakeOsl;
use crate::portmap::assign::tests::FakeHost;
use crate::portmap::{Proto, Want};
use crate::store::PORTS;
use berth_api::{Ipam, IpamConfig};
use std::collections::BTreeSet;

/// Records the port elements; other calls succeed.
#[derive(Default)]
struct PortFw {
    elems: Mutex<BTreeSet<Elem>>,
    fail_publish: Mutex<bool>,
}

impl Firewall for PortFw {
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
    fn publish(&self, elems: &[Elem]) -> std::result::Result<(), FwError> {
        if std::mem::take(&mut *self.fail_publish.lock().unwrap()) {
            return Err(FwError::Context("injected"));
        }
        self.elems.lock().unwrap().extend(elems.iter().cloned());
        Ok(())
    }
    fn unpublish(&self, elems: &[Elem]) -> std::result::Result<(), FwError> {
        let mut m = self.elems.lock().unwrap();
        for e in elems {
            m.remove(e);
        }
        Ok(())
    }
    fn reset_ports(&self, elems: &[Elem]) -> std::result::Result<(), FwError> {
        *self.elems.lock().unwrap() = elems.iter().cloned().collect();
        Ok(())
    }
}

struct Rig {
    dir: tempfile::TempDir,
    osl: Arc<FakeOsl>,
    fw: Arc<PortFw>,
    host: Arc<FakeHost>,
    c: Arc<Controller>,
}

async fn start(
    r: (
        &tempfile::TempDir,
        &Arc<FakeOsl>,
        &Arc<PortFw>,
        &Arc<FakeHost>,
    ),
) -> Arc<Controller> {
    let (dir, osl, fw, host) = r;
    let cfg = Config {
        instance: "berth".into(),
        default_bridge: "berth0".into(),
        bip: None,
        pools: vec![],
        netns_dir: dir.path().join("netns"),
        dns: Default::default(),
        cluster: None,
        plugin_dirs: vec![],
        plugin_retry: Some(crate::plugins::Retry::NONE),
    };
    let store = Store::open(&dir.path().join("berth.db")).unwrap();
    Controller::start_with(cfg, store, osl.clone(), fw.clone(), host.clone())
        .await
        .unwrap()
}

impl Rig {
    async fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let (osl, fw, host) = Default::default();
        let c = start((&dir, &osl, &fw, &host)).await;
        Rig {
            dir,
            osl,
            fw,
            host,
            c,
        }
    }

    async fn restart(self) -> Rig {
        self.c.settle().await;
        let Rig {
            dir,
            osl,
            fw,
            host,
            c,
        } = self;
        drop(c);
        let c = start((&dir, &osl, &fw, &host)).await;
        Rig {
            dir,
            osl,
            fw,
            host,
            c,
        }
    }

    async fn net(&self, name: &str, subnet: &str, v6: Option<&str>, internal: bool) {
        let mut config = vec![IpamConfig {
            subnet: subnet.into(),
            ..Default::default()
        }];
        if let Some(s) = v6 {
            config.push(IpamConfig {
                subnet: s.into(),
                ..Default::default()
            });
        }
        let req = NetworkCreateRequest {
            name: name.into(),
            enable_ipv6: v6.is_some(),
            internal,
            ipam: Some(Ipam {
                driver: "default".into(),
                options: None,
                config: Some(config),
            }),
            ..Default::default()
        };
        self.c.create(&req).await.unwrap();
    }

    async fn join(&self, n: usize, net: &str) {
        self.c
            .connect(EndpointRequest {
                container_id: cid(n),
                container_name: format!("c{n}"),
                network: net.into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    fn elems(&self) -> Vec<String> {
        self.fw
            .elems
            .lock()
            .unwrap()
            .iter()
            .map(|e| format!("{}: {} : {}", e.map, e.key, e.value))
            .collect()
    }

    fn stored(&self) -> Vec<String> {
        let v: Vec<(String, ports::Publication)> = self.c.store.list(PORTS).unwrap();
        v.into_iter().map(|(k, _)| k).collect()
    }
}

fn cid(n: usize) -> String {
    format!("{n:04x}{}", "c".repeat(60))
}

fn tcp(c: u16, ip: Option<&str>, h: Option<u16>) -> Want {
    Want {
        proto: Proto::Tcp,
        container_port: c,
        host_ip: ip.map(|s| s.parse().unwrap()),
        host_ports: h.map(|p| (p, p)),
    }
}

#[tokio::test]
async fn ports_go_on_the_first_non_internal_network() {
    let r = Rig::new().await;
    r.net("inside", "10.1.0.0/24", None, true).await;
    r.net("web", "10.2.0.0/24", None, false).await;
    r.join(1, "inside").await;
    r.join(1, "web").await;
    let range: Vec<Want> = (9000..=9099).map(|p| tcp(p, None, Some(p))).collect();
    let mut wants = vec![
        tcp(80, None, Some(8080)),
        tcp(81, Some("127.0.0.1"), Some(8081)),
    ];
    wants.extend(range);
    let runs = r.c.publish(&cid(1), &wants).await.unwrap();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert_eq!(
        r.elems(),
        [
            "ports4: tcp . 8080 : 10.2.0.2 . 80",
            "ports4_ip: 127.0.0.1 . tcp . 8081 : 10.2.0.2 . 81",
            "ranges4: tcp . 0.0.0.0/0 . 9000-9099 : 10.2.0.2",
            "self4: 10.2.0.2 . 10.2.0.2 : ",
        ]
    );
    assert_eq!(r.stored(), [cid(1)]);
    assert_eq!(r.host.localnet.lock().unwrap().len(), 1);
    assert_eq!(r.c.published(&cid(1)), runs);
    // publishing again is a no-op
    assert_eq!(r.c.publish(&cid(1), &wants).await.unwrap(), runs);

    // only internal networks: nothing published (Docker ignores the bindings)
    r.join(2, "inside").await;
    assert_eq!(r.c.publish(&cid(2), &wants).await.unwrap(), vec![]);

    r.c.unpublish(&cid(1)).await;
    assert!(r.elems().is_empty());
    assert!(r.stored().is_empty());
    assert!(r.c.published(&cid(1)).is_empty());
    r.c.unpublish(&cid(1)).await; // twice is fine
}

#[tokio::test]
async fn conflicts_get_dockers_message_and_leave_nothing() {
    let r = Rig::new().await;
    r.net("web", "10.2.0.0/24", None, false).await;
    for n in 1..=3 {
        r.join(n, "web").await;
    }
    r.c.publish(&cid(1), &[tcp(80, None, Some(8080))])
        .await
        .unwrap();
    let before = r.elems();
    let e =
        r.c.publish(
            &cid(2),
            &[tcp(81, None, Some(8081)), tcp(80, None, Some(8080))],
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Internal);
    let ep = r.c.endpoints_of(&cid(2))[0].1.endpoint_id.clone();
    assert_eq!(
        e.message,
        format!("driver failed programming external connectivity on endpoint c2 ({ep}): Bind for 0.0.0.0:8080 failed: port is already allocated")
    );
    assert_eq!(r.elems(), before);
    assert_eq!(r.stored(), [cid(1)]);
    // 8081 was given back
    r.c.publish(&cid(3), &[tcp(80, None, Some(8081))])
        .await
        .unwrap();

    // a port another process holds
    r.host
        .busy
        .lock()
        .unwrap()
        .insert((Proto::Tcp, "0.0.0.0".parse().unwrap(), 9999));
    let e =
        r.c.publish(&cid(2), &[tcp(80, None, Some(9999))])
            .await
            .unwrap_err();
    assert!(e
        .message
        .ends_with("Bind for 0.0.0.0:9999 failed: port is already allocated"));

    // the firewall fails: the ports are free again and nothing is stored
    *r.fw.fail_publish.lock().unwrap() = true;
    assert!(r
        .c
        .publish(&cid(2), &[tcp(80, None, Some(7000))])
        .await
        .is_err());
    assert_eq!(r.stored().len(), 2);
    r.c.publish(&cid(2), &[tcp(80, None, Some(7000))])
        .await
        .unwrap();
}

#[tokio::test]
async fn ipv6_bindings_and_the_proxy() {
    let r = Rig::new().await;
    r.net("v6", "10.3.0.0/24", Some("fd00:3::/64"), false).await;
    r.net("v4", "10.4.0.0/24", None, false).await;
    r.join(1, "v6").await;
    r.join(2, "v4").await;
    // no HostIp on a dual-stack container: 0.0.0.0 and ::
    let runs =
        r.c.publish(&cid(1), &[tcp(80, None, Some(8080))])
            .await
            .unwrap();
    let ips: Vec<String> = runs.iter().map(|r| r.host_ip.to_string()).collect();
    assert_eq!(ips, ["0.0.0.0", "::"]);
    assert_eq!(
        r.elems(),
        [
            "ports4: tcp . 8080 : 10.3.0.2 . 80",
            "ports6: tcp . 8080 : fd00:3::2 . 80",
            "self4: 10.3.0.2 . 10.3.0.2 : ",
            "self6: fd00:3::2 . fd00:3::2 : ",
        ]
    );
    // ::1 is relayed by the proxy, to the container's IPv6 address
    assert_eq!(
        r.host.proxied.lock().unwrap()[&cid(1)],
        vec![(Proto::Tcp, "[fd00:3::2]:80".parse().unwrap())]
    );
    // an IPv4-only container: only 0.0.0.0 by default; an explicit IPv6 binding is proxied
    // to its IPv4 address, with no element
    let runs =
        r.c.publish(
            &cid(2),
            &[tcp(80, None, Some(9090)), tcp(81, Some("::"), Some(9091))],
        )
        .await
        .unwrap();
    let ips: Vec<String> = runs.iter().map(|r| r.host_ip.to_string()).collect();
    assert_eq!(ips, ["0.0.0.0", "::"]);
    assert!(r
        .elems()
        .contains(&"ports4: tcp . 9090 : 10.4.0.2 . 80".to_string()));
    assert!(!r.elems().iter().any(|e| e.contains("9091")));
    assert_eq!(
        r.host.proxied.lock().unwrap()[&cid(2)],
        vec![(Proto::Tcp, "10.4.0.2:81".parse().unwrap())]
    );
    r.c.unpublish(&cid(2)).await;
    assert!(!r.host.proxied.lock().unwrap().contains_key(&cid(2)));
}

#[tokio::test]
async fn restart_keeps_live_publications_and_drops_the_rest() {
    let r = Rig::new().await;
    r.net("web", "10.2.0.0/24", None, false).await;
    r.join(1, "web").await;
    r.join(2, "web").await;
    r.c.publish(&cid(1), &[tcp(80, None, Some(8080))])
        .await
        .unwrap();
    r.c.publish(&cid(2), &[tcp(80, None, Some(8081))])
        .await
        .unwrap();
    let holds = *r.host.holds.lock().unwrap();
    // container 2's sandbox is gone while the daemon is down; a stale element lingers
    let sb = r.c.sandbox_path(&cid(2));
    r.osl.sandboxes.lock().unwrap().remove(&sb);
    r.fw.elems.lock().unwrap().insert(Elem {
        map: "ports4",
        key: "tcp . 1".into(),
        value: "10.9.9.9 . 1".into(),
    });
    let r = r.restart().await;
    assert_eq!(
        r.elems(),
        [
            "ports4: tcp . 8080 : 10.2.0.2 . 80",
            "self4: 10.2.0.2 . 10.2.0.2 : "
        ]
    );
    assert_eq!(r.stored(), [cid(1)]);
    assert_eq!(*r.host.holds.lock().unwrap(), holds + 1, "held again");
    // the allocator knows 8080 again; 8081 is free
    r.join(3, "web").await;
    let e =
        r.c.publish(&cid(3), &[tcp(80, None, Some(8080))])
            .await
            .unwrap_err();
    assert!(e.message.ends_with("port is already allocated"));
    r.c.publish(&cid(3), &[tcp(80, None, Some(8081))])
        .await
        .unwrap();
}

#[tokio::test]
async fn big_publications_hold_their_ports_in_the_background() {
    let r = Rig::new().await;
    r.net("web", "10.2.0.0/24", None, false).await;
    r.join(1, "web").await;
    r.join(2, "web").await;
    // another process holds 20150, unseen by the kernel's list (a race)
    r.host
        .hidden
        .lock()
        .unwrap()
        .insert((Proto::Tcp, "0.0.0.0".parse().unwrap(), 20150));
    let range: Vec<Want> = (20000..20300).map(|p| tcp(p, None, Some(p))).collect();
    let runs = r.c.publish(&cid(1), &range).await.unwrap();
    assert_eq!(runs.len(), 1, "one run, one element");
    assert!(r
        .elems()
        .contains(&"ranges4: tcp . 0.0.0.0/0 . 20000-20299 : 10.2.0.2".to_string()));
    // the holder finishes: every port but the raced one is held
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while *r.host.holds.lock().unwrap() < 299 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(*r.host.holds.lock().unwrap(), 299);
    // berth's own allocation still refuses another container
    let e =
        r.c.publish(&cid(2), &[tcp(80, None, Some(20150))])
            .await
            .unwrap_err();
    assert!(e.message.ends_with("port is already allocated"));
    r.c.unpublish(&cid(1)).await;
    assert!(r.elems().is_empty());
    r.c.publish(&cid(2), &[tcp(80, None, Some(20150))])
        .await
        .unwrap_err(); // still the other process's
    r.c.publish(&cid(2), &[tcp(80, None, Some(20151))])
        .await
        .unwrap();

    // small publications hold inline: the race is a conflict, with nothing left
    r.c.unpublish(&cid(2)).await;
    let e =
        r.c.publish(&cid(2), &[tcp(80, None, Some(20150))])
            .await
            .unwrap_err();
    assert!(e
        .message
        .ends_with("Bind for 0.0.0.0:20150 failed: port is already allocated"));
    assert!(r.stored().is_empty());
}

#[tokio::test]
async fn ports_leave_with_the_network_that_carries_them() {
    let r = Rig::new().await;
    r.net("a", "10.5.0.0/24", None, false).await;
    r.net("b", "10.6.0.0/24", None, false).await;
    r.join(1, "a").await;
    r.join(1, "b").await;
    r.c.publish(&cid(1), &[tcp(80, None, Some(8080))])
        .await
        .unwrap();
    let ids: BTreeMap<String, String> =
        r.c.list(Default::default())
            .unwrap()
            .into_iter()
            .map(|n| (n.name, n.id))
            .collect();
    // leaving the other network changes nothing
    r.c.unpublish_on(&cid(1), &ids["b"]).await;
    assert_eq!(r.c.published(&cid(1)).len(), 1);
    r.c.unpublish_on(&cid(1), &ids["a"]).await;
    assert!(r.c.published(&cid(1)).is_empty());
    assert!(r.elems().is_empty());
    // published again (the engine does so after a connect): on the first endpoint, in attach
    // order, that can carry them (here the one on `a`, whose endpoint this test kept)
    r.c.publish(&cid(1), &[tcp(80, None, Some(8080))])
        .await
        .unwrap();
    assert_eq!(r.elems()[0], "ports4: tcp . 8080 : 10.5.0.2 . 80");
}
