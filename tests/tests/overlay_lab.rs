//! The multi-host lab itself (no overlay needed): etcd answers in its namespace, the hosts reach
//! each other and etcd over the underlay, plain daemons start on every host, and everything is
//! gone after the cluster is dropped.

use berth_e2e::cluster::{Cluster, ClusterOpts};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

#[test]
fn underlay_etcd_and_daemons() {
    let mut c = Cluster::with(ClusterOpts {
        hosts: 3,
        start_daemons: false,
        ..ClusterOpts::default()
    });
    assert!(c.etcd_healthy());
    let (st, body) = c.etcd_get("/version").unwrap();
    assert_eq!(st, 200);
    assert!(body.contains("\"etcdserver\":\"3."), "{body}");
    for a in 0..3 {
        for b in 0..3 {
            if a != b {
                assert!(c.underlay_ping(a, b), "host {a} → host {b}");
            }
        }
    }
    // every host reaches etcd's client port over the underlay
    let etcd: SocketAddr = format!("{}:2379", c.etcd_ip()).parse().unwrap();
    for h in &c.hosts {
        let ns = berth_e2e::net::ns_path(&h.ns);
        berth_e2e::net::in_netns(ns, move || {
            std::net::TcpStream::connect_timeout(&etcd, Duration::from_secs(2))
                .expect("etcd from a host")
        });
    }
    // etcd stops and starts again on the same data
    c.stop_etcd();
    assert!(!c.etcd_healthy());
    c.start_etcd();
    assert!(c.etcd_healthy());
    // a plain daemon (no cluster flags) on every host
    for h in c.hosts.iter_mut() {
        h.start_daemon(&[]);
        let (st, _) = h.api("GET", "/_ping", None);
        assert_eq!(st, 200);
    }
    let names: Vec<String> = c.hosts.iter().map(|h| h.ns.clone()).collect();
    let ul = c.underlay.clone();
    drop(c);
    for n in names.iter().chain([&ul]) {
        assert!(!Path::new(&format!("/run/netns/{n}")).exists(), "{n} left");
    }
}
