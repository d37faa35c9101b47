//! Endpoints with real kernel objects (root): a private network namespace stands in for the
//! host, so bridges, veths, sandboxes and traffic never touch the machine's own.

use super::*;
use crate::osl::netlink::Netlink;
use std::time::{Duration, Instant};

use crate::testing::run;

fn in_ns(sb: &std::path::Path, args: &[&str]) -> String {
    let net = format!("--net={}", sb.display());
    let mut all = vec!["nsenter", net.as_str()];
    all.extend_from_slice(args);
    run(&all)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Unpins whatever the test pinned, even when an assertion fails.
struct Unpin(Vec<std::path::PathBuf>);
impl Drop for Unpin {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = crate::osl::netns::delete(p);
        }
    }
}

async fn start_real(dir: &std::path::Path) -> Arc<Controller> {
    let cfg = Config {
        instance: "berthlab".into(),
        default_bridge: "berthlab0".into(),
        bip: Some("10.124.0.1/24".parse().unwrap()),
        pools: vec![],
        netns_dir: dir.join("netns"),
        dns: Default::default(),
        cluster: None,
        plugin_dirs: vec![],
        plugin_retry: Some(crate::plugins::Retry::NONE),
    };
    let store = Store::open(&dir.join("berth.db")).unwrap();
    let osl = Arc::new(Netlink::new().unwrap());
    Controller::start(cfg, store, osl, Arc::new(NoFw))
        .await
        .unwrap()
}

#[test]
fn sandboxes_ping_each_other_and_disconnect_removes_the_veth() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    crate::testing::block_on_in_new_netns(move || async move {
        let _unpin = Unpin(
            (1..30)
                .map(|n| root.join("netns").join(&cid(n)[..12]))
                .collect(),
        );
        let c = start_real(&root).await;
        for (name, subnet) in [("lab", "10.123.0.0/24"), ("lab2", "10.125.0.0/24")] {
            c.create(&NetworkCreateRequest {
                name: name.into(),
                ipam: Some(Ipam {
                    driver: "default".into(),
                    options: None,
                    config: Some(vec![ipam(subnet)]),
                }),
                ..Default::default()
            })
            .await
            .unwrap();
        }
        let sb1 = c.sandbox_create(&cid(1)).await.unwrap();
        let sb2 = c.sandbox_create(&cid(2)).await.unwrap();
        assert!(in_ns(&sb1, &["ip", "-j", "link", "show", "lo"]).contains("LOWER_UP"));
        let a = c.connect(req(1, "lab")).await.unwrap();
        let b = c.connect(req(2, "lab")).await.unwrap();
        assert_eq!(
            (a.ip_address.as_str(), b.ip_address.as_str()),
            ("10.123.0.2", "10.123.0.3")
        );
        let addr = in_ns(&sb1, &["ip", "-j", "addr", "show", "eth0"]);
        assert!(
            addr.contains("\"10.123.0.2\"") && addr.contains(&a.mac_address),
            "{addr}"
        );
        let routes = in_ns(&sb1, &["ip", "-j", "route"]);
        assert!(
            routes.contains("\"dst\":\"default\",\"gateway\":\"10.123.0.1\""),
            "{routes}"
        );
        in_ns(
            &sb1,
            &["busybox", "ping", "-c", "1", "-W", "2", "10.123.0.3"],
        );
        in_ns(
            &sb2,
            &["busybox", "ping", "-c", "1", "-W", "2", "10.123.0.2"],
        );
        let lab = c.inspect("lab").unwrap();
        let veth = |s: &berth_api::EndpointSettings| {
            let links: serde_json::Value =
                serde_json::from_str(&run(&["ip", "-j", "link", "show", "type", "veth"])).unwrap();
            links
                .as_array()
                .unwrap()
                .iter()
                .find(|l| {
                    l["ifalias"]
                        .as_str()
                        .is_some_and(|x| x.ends_with(&s.endpoint_id))
                })
                .map(|l| {
                    (
                        l["ifname"].as_str().unwrap().to_string(),
                        l["master"].as_str().unwrap_or("").to_string(),
                    )
                })
        };
        let (b_if, master) = veth(&b).expect("tagged veth");
        assert_eq!(master, format!("br-{}", &lab.id[..12]));

        // a second network: eth1; when eth0's network goes, the default route moves over
        let a2 = c.connect(req(1, "lab2")).await.unwrap();
        assert!(in_ns(&sb1, &["ip", "link"]).contains("eth1"));
        c.disconnect(&cid(1), "lab").await.unwrap();
        let routes = in_ns(&sb1, &["ip", "-j", "route"]);
        assert!(
            routes.contains("\"dst\":\"default\",\"gateway\":\"10.125.0.1\",\"dev\":\"eth1\""),
            "{routes}"
        );
        assert_eq!(a2.gateway, "10.125.0.1");

        c.disconnect(&cid(2), "lab").await.unwrap();
        c.settle().await;
        assert!(veth(&b).is_none());
        assert!(!run(&["ip", "link"]).contains(&b_if));
        assert!(!in_ns(&sb2, &["ip", "link"]).contains("eth0"));

        // a restart keeps the live endpoint (its veth is tagged) and the namespaces
        drop(c);
        let c = start_real(&root).await;
        assert_eq!(c.endpoints_of(&cid(1)), vec![("lab2".to_string(), a2)]);

        // timing through the controller (printed, not asserted): 20 containers connect
        // one after the other, then disconnect
        let ids: Vec<usize> = (10..30).collect();
        for n in &ids {
            c.sandbox_create(&cid(*n)).await.unwrap();
        }
        let (mut conn, mut disc) = (vec![], vec![]);
        for n in &ids {
            let t = Instant::now();
            c.connect(req(*n, "lab")).await.unwrap();
            conn.push(t.elapsed());
        }
        for n in &ids {
            let t = Instant::now();
            c.disconnect(&cid(*n), "lab").await.unwrap();
            disc.push(t.elapsed());
        }
        let t = Instant::now();
        c.settle().await;
        eprintln!(
            "connect median {:?}, disconnect median {:?}, veth deletions {:?}",
            median(conn),
            median(disc),
            t.elapsed()
        );
        for n in &ids {
            c.sandbox_delete(&cid(*n)).await.unwrap();
        }
        let sb3 = c.sandbox_create(&cid(3)).await.unwrap();
        for n in 1..=3 {
            c.sandbox_delete(&cid(n)).await.unwrap();
        }
        c.settle().await;
        for sb in [&sb1, &sb2, &sb3] {
            assert!(!sb.exists(), "{}", sb.display());
        }
        assert!(!run(&["ip", "link"]).contains("veth"));
    });
}
