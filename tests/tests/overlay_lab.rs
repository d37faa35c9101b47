//! The multi-host lab itself (no overlay needed): etcd answers in its namespace, the hosts reach
//! each other and etcd over the underlay, plain daemons start on every host, and everything is
//! gone after the cluster is dropped.

use berth_e2e::cluster::*;
use berth_e2e::OutputExt;
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

/// The helpers the overlay tests lean on, checked where no overlay is needed: DNS answers and
/// pings between containers on a bridge network, background flows, and the VXLAN FDB and
/// neighbour parsing on a device made by hand (no traffic).
#[test]
fn helpers_on_local_networks_and_a_hand_made_vxlan() {
    let mut c = Cluster::with(ClusterOpts {
        hosts: 2,
        start_daemons: false,
        ..ClusterOpts::default()
    });
    c.hosts[0].start_daemon(&[]);
    c.hosts[1].start_daemon(&[]);
    let a = c.host(0);
    a.net("bn");
    run_sleeper(a, "x1", &["--net=bn", "--network-alias=web"]);
    run_sleeper(a, "x2", &["--net=bn", "--network-alias=web"]);
    let ip1 = ip_of(a, "x1", "bn");
    assert_eq!(resolve(a, "x2", "x1"), [ip1.as_str()]);
    assert!(resolve(a, "x2", "nope").is_empty());
    assert_eq!(resolve(a, "x2", "web").len(), 2);
    wait_resolves(a, "x2", "x1", &ip1, Duration::from_secs(1));
    assert!(pings(a, "x2", "x1"));
    assert!(!pings(a, "x2", "10.250.0.9"));
    assert!(ns_pings(&sandbox(a, "x2"), &ip1));
    let all = assert_no_duplicate_addresses(&c, "bn");
    assert_eq!(all.len(), 2, "{all:?}");
    let bg = Background::spawn_in(&sandbox(a, "x2"), &["busybox", "ping", "-i", "0.2", &ip1]);
    std::thread::sleep(Duration::from_millis(700));
    let st = ping_stats(&bg.interrupt());
    assert!(matches!(st, Some((s, r)) if s >= 3 && r == s), "{st:?}");
    // vxlan parsing in a scratch namespace
    let ns = format!("/run/netns/{}", c.host(1).ns);
    let nsp = Path::new(&ns);
    c.host(1).sh("ip link add vxlan0 type vxlan id 42 dstport 4789 local 10.99.1.11 nolearning && ip link set vxlan0 up && \
      bridge fdb add 02:42:0a:00:00:05 dev vxlan0 dst 10.99.1.12 self permanent && \
      ip neigh add 10.0.0.5 lladdr 02:42:0a:00:00:05 dev vxlan0 nud permanent");
    let vx = kernel::vxlan_link(nsp).unwrap();
    assert_eq!(vx["linkinfo"]["info_kind"], "vxlan");
    assert_eq!(
        vx["linkinfo"]["info_data"]["port"],
        kernel::VXLAN_PORT,
        "{vx}"
    );
    assert_eq!(vx["linkinfo"]["info_data"]["id"], 42);
    assert_eq!(
        kernel::vxlan_fdb(nsp),
        [("02:42:0a:00:00:05".to_string(), "10.99.1.12".to_string())]
    );
    assert_eq!(
        kernel::vxlan_neigh(nsp),
        [("10.0.0.5".to_string(), "02:42:0a:00:00:05".to_string())]
    );
    assert!(c.etcd_requests().is_some());
    eprintln!("etcd requests {:?}", c.etcd_requests());
}

/// etcd with TLS and client certificates: it answers a client holding the lab's client
/// certificate, and refuses one without.
#[test]
fn tls_etcd_takes_the_lab_client_certificate() {
    let c = Cluster::with(ClusterOpts {
        hosts: 1,
        start_daemons: false,
        tls: true,
        ..ClusterOpts::default()
    });
    assert!(c.etcd_healthy());
    let d = c.etcd_dir().to_path_buf();
    let get = |with_cert: bool| {
        let mut cmd = std::process::Command::new("sh");
        let cert = if with_cert {
            format!(
                "-cert {} -key {}",
                d.join("client.pem").display(),
                d.join("client.key").display()
            )
        } else {
            String::new()
        };
        cmd.arg("-c").arg(format!(
            "printf 'GET /version HTTP/1.0\\r\\n\\r\\n' | ip netns exec {ns} openssl s_client -quiet \
             -connect {ip}:2379 -CAfile {ca} -verify_return_error {cert} 2>&1",
            ns = c.host(0).ns,
            ip = c.etcd_ip(),
            ca = d.join("ca.pem").display()
        ));
        berth_e2e::run(&mut cmd, Duration::from_secs(20)).out()
    };
    let with = get(true);
    assert!(with.contains("\"etcdserver\":\"3."), "{with}");
    let without = get(false);
    assert!(!without.contains("etcdserver"), "{without}");
    let args = c.daemon_args(0).join(" ");
    assert!(
        args.contains("kv.cacertfile=") && args.contains("kv.keyfile="),
        "{args}"
    );
}

/// A three-member etcd cluster: every host is given every member, and it stays healthy with
/// one member down.
#[test]
fn three_member_etcd() {
    let mut c = Cluster::with(ClusterOpts {
        hosts: 1,
        start_daemons: false,
        etcd_members: 3,
        ..ClusterOpts::default()
    });
    assert!(c.etcd_healthy());
    let k = c.k;
    assert_eq!(
        c.store_url(),
        format!("etcd://10.99.{k}.1:2379,10.99.{k}.2:2379,10.99.{k}.3:2379")
    );
    c.stop_etcd_member(0);
    // a new leader, if member 0 was it, within a few election timeouts
    wait_until(Duration::from_secs(10), "members 1 and 2 healthy", || {
        c.etcd_member_healthy(1) && c.etcd_member_healthy(2)
    });
    c.start_etcd_member(0);
    c.stop_etcd();
    assert!(!c.etcd_running());
    c.start_etcd();
    assert!(c.etcd_healthy());
}
