//! Plugins in a cluster (issue 13, multi-host part): global-scope driver plugins keep their
//! networks in the cluster store, DiscoverNew/DiscoverDelete follow the cluster's hosts, and
//! overlays take their addresses from a remote IPAM. Real etcd, real berthd per lab host, a
//! real `berth-testplug` process in each host's namespace. The test plugin's data path is
//! host-local (a bridge per host), so across hosts the control plane is asserted: the calls
//! each host's plugin got, the networks each host shows, addresses unique across hosts.

use berth_e2e::cluster::{ip_of, run_sleeper, wait_resolves, wait_until, Cluster, ClusterOpts};
use berth_e2e::plug::{records, start_plugin, Plug};
use berth_e2e::{ok, Lab};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A cluster of `n` hosts, each with `berth-testplug EXTRA…` in its namespace and berthd
/// looking for plugins in that host's own directory. The plugins and their call records.
fn cluster_with_plugins(n: usize, extra: &[&str]) -> (Cluster, Vec<Plug>, Vec<PathBuf>) {
    cluster_with_plugins_per(n, |_| extra.iter().map(|s| s.to_string()).collect())
}

/// The same, with each host's plugin flags.
fn cluster_with_plugins_per(
    n: usize,
    extra: impl Fn(usize) -> Vec<String>,
) -> (Cluster, Vec<Plug>, Vec<PathBuf>) {
    let mut c = Cluster::with(ClusterOpts {
        hosts: n,
        start_daemons: false,
        ..ClusterOpts::default()
    });
    let mut plugs = Vec::new();
    let mut recs = Vec::new();
    for i in 0..n {
        let dir = c.hosts[i].root().join("plugins");
        std::fs::create_dir_all(&dir).unwrap();
        let rec = c.hosts[i].root().join("calls.jsonl");
        let flags = extra(i);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        plugs.push(start_plugin(&c.hosts[i], &dir, &rec, &flags));
        recs.push(rec);
        let mut args = c.daemon_args(i);
        args.extend(["--plugins-dir".to_string(), dir.display().to_string()]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        c.hosts[i].start_daemon(&refs);
    }
    (c, plugs, recs)
}

/// The requests of `method` the plugin recorded, in order.
fn requests(rec: &Path, method: &str) -> Vec<Value> {
    records(rec)
        .into_iter()
        .filter(|r| r["Method"] == method)
        .map(|r| r["Request"].clone())
        .collect()
}

fn wait_requests(rec: &Path, method: &str, what: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    wait_until(Duration::from_secs(10), method, || {
        what(&requests(rec, method))
    });
    requests(rec, method)
}

/// Whether IPv4 `ip` is in `subnet` (`a.b.c.d/len`).
fn in_subnet(ip: &str, subnet: &str) -> bool {
    let (net, len) = subnet.split_once('/').unwrap();
    let (net, len): (std::net::Ipv4Addr, u32) = (net.parse().unwrap(), len.parse().unwrap());
    let ip: std::net::Ipv4Addr = ip.parse().unwrap();
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn discovery(addr: &str, me: bool) -> Value {
    json!({"DiscoveryType": 1, "DiscoveryData": {"Address": addr, "BindAddress": "", "Self": me}})
}

fn rm_f(lab: &Lab, c: &str) {
    ok(&lab.cli(&["rm", "-f", c]), &format!("rm -f {c}"));
}

/// A global-scope plugin's network: made on host 0 (CreateNetwork there only), seen on
/// every host with Scope global, joined on both hosts (endpoint calls to each host's own
/// plugin, addresses from the cluster store, unique), refused removal while any host has an
/// endpoint, removed from the other host (DeleteNetwork there) and gone everywhere.
#[test]
fn global_plugin_network_spans_hosts() {
    let (c, _plugs, recs) = cluster_with_plugins(2, &["--scope", "global"]);
    let (h0, h1) = (c.host(0), c.host(1));
    let id = h0.create_network(json!({"Name": "gp", "Driver": "testplug"}));
    c.wait_network_everywhere("gp", &id);
    let (_, v) = h1.api("GET", "/networks/gp", None);
    assert_eq!(v["Driver"], "testplug", "{v}");
    let subnet = v["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string();
    let created = requests(&recs[0], "NetworkDriver.CreateNetwork");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["NetworkID"], id.as_str());
    // Docker's default IPAM's global address space
    assert_eq!(created[0]["IPv4Data"][0]["AddressSpace"], "GlobalDefault");
    assert_eq!(created[0]["IPv4Data"][0]["Pool"], subnet.as_str());
    assert!(requests(&recs[1], "NetworkDriver.CreateNetwork").is_empty());
    // `network ls` on the other host lists it as global
    let (_, list) = h1.api("GET", "/networks", None);
    let listed = list.as_array().unwrap().iter().find(|n| n["Name"] == "gp");
    assert_eq!(listed.map(|n| n["Scope"].clone()), Some(json!("global")));

    run_sleeper(h0, "ca", &["--net", "gp"]);
    run_sleeper(h1, "cb", &["--net", "gp"]);
    for rec in &recs {
        let eps = requests(rec, "NetworkDriver.CreateEndpoint");
        assert_eq!(eps.len(), 1, "{eps:?}");
        assert_eq!(eps[0]["NetworkID"], id.as_str());
        assert_eq!(requests(rec, "NetworkDriver.Join").len(), 1);
    }
    let (ipa, ipb) = (ip_of(h0, "ca", "gp"), ip_of(h1, "cb", "gp"));
    assert_ne!(ipa, ipb, "addresses are unique across hosts");
    for ip in [&ipa, &ipb] {
        assert!(in_subnet(ip, &subnet), "{ip} in {subnet}");
    }
    // names resolve across hosts, as on an overlay
    wait_resolves(h1, "cb", "ca", &ipa, Duration::from_secs(3));
    wait_resolves(h0, "ca", "cb", &ipb, Duration::from_secs(3));

    // refused from either host while an endpoint exists anywhere
    let (st, v) = h1.api("DELETE", "/networks/gp", None);
    assert_eq!(st, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("has active endpoints"),
        "{v}"
    );
    rm_f(h1, "cb");
    wait_requests(&recs[1], "NetworkDriver.DeleteEndpoint", |r| r.len() == 1);
    let (st, v) = h1.api("DELETE", "/networks/gp", None);
    assert_eq!(st, 403, "host 0 still has an endpoint: {v}");
    rm_f(h0, "ca");
    wait_requests(&recs[0], "NetworkDriver.DeleteEndpoint", |r| r.len() == 1);
    wait_until(Duration::from_secs(5), "rm from host 1", || {
        h1.api("DELETE", "/networks/gp", None).0 == 204
    });
    c.wait_network_gone_everywhere("gp");
    // DeleteNetwork on the host that removed it, not on the creator
    let del = requests(&recs[1], "NetworkDriver.DeleteNetwork");
    assert_eq!(del, vec![json!({"NetworkID": id})]);
    assert!(requests(&recs[0], "NetworkDriver.DeleteNetwork").is_empty());
    // the name is free again cluster-wide
    h1.create_network(json!({"Name": "gp", "Driver": "testplug"}));
}

/// DiscoverNew for every host (Self for its own) once a global plugin is activated, to the
/// plugin of a host activated later too; DiscoverDelete when a host's record expires with its
/// lease; DiscoverNew again when it comes back.
#[test]
fn discovery_follows_the_cluster_hosts() {
    let (mut c, _plugs, recs) = cluster_with_plugins(2, &["--scope", "global"]);
    let (ip0, ip1) = (c.host_ip(0), c.host_ip(1));
    // nothing before a plugin is activated (Docker registers remote drivers on first use)
    std::thread::sleep(Duration::from_millis(500));
    assert!(requests(&recs[0], "NetworkDriver.DiscoverNew").is_empty());
    c.host(0)
        .create_network(json!({"Name": "disc", "Driver": "testplug"}));
    let want0 = vec![discovery(&ip0, true), discovery(&ip1, false)];
    let got = wait_requests(&recs[0], "NetworkDriver.DiscoverNew", |r| r.len() >= 2);
    let mut sorted = got.clone();
    sorted.sort_by_key(|v| v.to_string());
    let mut want = want0.clone();
    want.sort_by_key(|v| v.to_string());
    assert_eq!(sorted, want);
    // host 1 activates the plugin when a container joins there
    run_sleeper(c.host(1), "d1", &["--net", "disc"]);
    let got = wait_requests(&recs[1], "NetworkDriver.DiscoverNew", |r| r.len() >= 2);
    assert!(got.contains(&discovery(&ip1, true)), "{got:?}");
    assert!(got.contains(&discovery(&ip0, false)), "{got:?}");

    // host 1's daemon dies: its record expires with its lease
    c.kill9(1);
    let ttl = c.ttl();
    let del = wait_until(ttl * 4, "DiscoverDelete of host 1", || {
        !requests(&recs[0], "NetworkDriver.DiscoverDelete").is_empty()
    });
    assert_eq!(
        requests(&recs[0], "NetworkDriver.DiscoverDelete"),
        vec![discovery(&ip1, false)],
        "after {del:?}"
    );
    c.start_again(1);
    wait_requests(&recs[0], "NetworkDriver.DiscoverNew", |r| {
        r.iter().filter(|v| **v == discovery(&ip1, false)).count() == 2
    });
}

/// Without a cluster store a global plugin's network fails as Docker's does, after its
/// CreateNetwork was sent and rolled back; nothing is left.
#[test]
fn global_plugin_without_cluster_store() {
    let (lab, _plug, rec) = berth_e2e::plug::lab_with_plugin(&["--scope", "global"]);
    let (st, v) = lab.api(
        "POST",
        "/networks/create",
        Some(json!({"Name": "g", "Driver": "testplug"})),
    );
    assert_eq!(st, 500, "{v}");
    assert_eq!(
        v["message"],
        "datastore for scope \"global\" is not initialized"
    );
    let calls: Vec<String> = berth_e2e::plug::calls(&rec)
        .into_iter()
        .filter(|m| m.ends_with("Network"))
        .collect();
    assert_eq!(
        calls,
        ["NetworkDriver.CreateNetwork", "NetworkDriver.DeleteNetwork"]
    );
    assert_eq!(lab.api("GET", "/networks/g", None).0, 404);
}

/// A local-scope plugin stays local when a cluster store is configured.
#[test]
fn local_plugin_stays_local_in_a_cluster() {
    let (c, _plugs, _recs) = cluster_with_plugins(2, &[]);
    c.host(0)
        .create_network(json!({"Name": "lp", "Driver": "testplug"}));
    let (_, v) = c.host(0).api("GET", "/networks/lp", None);
    assert_eq!(v["Scope"], "local", "{v}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.host(1).api("GET", "/networks/lp", None).0, 404);
    // and the name stays free on the other host
    c.host(1)
        .create_network(json!({"Name": "lp", "Driver": "testplug"}));
}

/// `network create -d overlay --ipam-driver testplug`: RequestPool in the plugin's global
/// address space on the creating host, the PoolID kept in the cluster record, addresses
/// requested on the host where each endpoint is made (unique: the instances share one
/// address space), released on rm; ReleasePool on network rm.
#[test]
fn overlay_with_a_remote_ipam() {
    let shared = tempfile::NamedTempFile::new().unwrap();
    let path = shared.path().display().to_string();
    let (c, _plugs, recs) = cluster_with_plugins(2, &["--shared-ipam", &path]);
    let (h0, h1) = (c.host(0), c.host(1));
    let id = h0.create_network(json!({
        "Name": "ov", "Driver": "overlay", "IPAM": {"Driver": "testplug"}
    }));
    c.wait_network_everywhere("ov", &id);
    let pools = requests(&recs[0], "IpamDriver.RequestPool");
    assert_eq!(pools.len(), 1, "{pools:?}");
    assert_eq!(pools[0]["AddressSpace"], "testplug-global");
    assert!(requests(&recs[1], "IpamDriver.RequestPool").is_empty());
    let (_, v) = h1.api("GET", "/networks/ov", None);
    assert_eq!(v["IPAM"]["Driver"], "testplug", "{v}");
    let subnet = v["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(subnet.starts_with("10.123."), "{subnet}");

    run_sleeper(h0, "ca", &["--net", "ov"]);
    run_sleeper(h1, "cb", &["--net", "ov"]);
    let pool_id = format!("testplug/{subnet}");
    for rec in &recs {
        let asked: Vec<Value> = requests(rec, "IpamDriver.RequestAddress")
            .into_iter()
            .filter(|r| r["Options"].get("RequestAddressType").is_none())
            .collect();
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert_eq!(asked[0]["PoolID"], pool_id.as_str());
    }
    let (ipa, ipb) = (ip_of(h0, "ca", "ov"), ip_of(h1, "cb", "ov"));
    assert_ne!(ipa, ipb);
    let gw = v["IPAM"]["Config"][0]["Gateway"].as_str().unwrap_or("");
    assert!(ipa != gw && ipb != gw, "{ipa} {ipb} {gw}");

    rm_f(h1, "cb");
    let rel = wait_requests(&recs[1], "IpamDriver.ReleaseAddress", |r| !r.is_empty());
    assert_eq!(rel[0]["Address"], ipb.as_str());
    rm_f(h0, "ca");
    wait_requests(&recs[0], "IpamDriver.ReleaseAddress", |r| !r.is_empty());
    wait_until(Duration::from_secs(5), "rm ov", || {
        h1.api("DELETE", "/networks/ov", None).0 == 204
    });
    c.wait_network_gone_everywhere("ov");
    let released = requests(&recs[1], "IpamDriver.ReleasePool");
    assert_eq!(released, vec![json!({"PoolID": pool_id})]);
}

/// A CreateEndpoint refused by host 1's plugin: the run fails with Docker's message, the
/// plugin gets no Join, and the address it had is free cluster-wide again (host 0 takes it).
#[test]
fn a_failed_endpoint_leaves_nothing_in_the_cluster() {
    let (c, _plugs, recs) = cluster_with_plugins_per(2, |i| {
        let mut v = vec!["--scope".to_string(), "global".to_string()];
        if i == 1 {
            v.extend([
                "--fail".into(),
                "NetworkDriver.CreateEndpoint=no room".into(),
            ]);
        }
        v
    });
    let (h0, h1) = (c.host(0), c.host(1));
    let id = h0.create_network(json!({
        "Name": "gf", "Driver": "testplug",
        "IPAM": {"Config": [{"Subnet": "10.77.0.0/24"}]}
    }));
    c.wait_network_everywhere("gf", &id);
    let o = h1.cli(&[
        "run",
        "-d",
        "--name",
        "cf",
        "--net",
        "gf",
        "--ip",
        "10.77.0.9",
        "busybox",
        "sleep",
        "1d",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("NetworkDriver.CreateEndpoint: no room"),
        "{err}"
    );
    assert_eq!(requests(&recs[1], "NetworkDriver.CreateEndpoint").len(), 1);
    assert!(requests(&recs[1], "NetworkDriver.Join").is_empty());
    // the address went back to the cluster store: host 0 gets it
    run_sleeper(h0, "c0", &["--net", "gf", "--ip", "10.77.0.9"]);
    assert_eq!(ip_of(h0, "c0", "gf"), "10.77.0.9");
    // and host 1 has no endpoint recorded: removal is refused only for host 0's
    ok(&h0.cli(&["rm", "-f", "c0"]), "rm c0");
    let _ = h1.cli(&["rm", "-f", "cf"]);
    wait_until(Duration::from_secs(5), "rm gf", || {
        h1.api("DELETE", "/networks/gf", None).0 == 204
    });
}

/// A global plugin network whose addresses come from a remote IPAM (Weave's setup: the
/// plugin is both): RequestPool in the global address space on the creating host, addresses
/// on each host, unique.
#[test]
fn global_plugin_with_its_own_ipam() {
    let shared = tempfile::NamedTempFile::new().unwrap();
    let path = shared.path().display().to_string();
    let (c, _plugs, recs) = cluster_with_plugins(2, &["--scope", "global", "--shared-ipam", &path]);
    let (h0, h1) = (c.host(0), c.host(1));
    let id = h0.create_network(json!({
        "Name": "gw", "Driver": "testplug", "IPAM": {"Driver": "testplug"}
    }));
    c.wait_network_everywhere("gw", &id);
    let pools = requests(&recs[0], "IpamDriver.RequestPool");
    assert_eq!(pools.len(), 1, "{pools:?}");
    assert_eq!(pools[0]["AddressSpace"], "testplug-global");
    let create = requests(&recs[0], "NetworkDriver.CreateNetwork");
    assert_eq!(create[0]["IPv4Data"][0]["AddressSpace"], "testplug-global");
    run_sleeper(h0, "ca", &["--net", "gw"]);
    run_sleeper(h1, "cb", &["--net", "gw"]);
    let (ipa, ipb) = (ip_of(h0, "ca", "gw"), ip_of(h1, "cb", "gw"));
    assert_ne!(ipa, ipb);
    assert!(
        ipa.starts_with("10.123.") && ipb.starts_with("10.123."),
        "{ipa} {ipb}"
    );
    rm_f(h0, "ca");
    rm_f(h1, "cb");
    wait_until(Duration::from_secs(5), "rm gw", || {
        h0.api("DELETE", "/networks/gw", None).0 == 204
    });
    assert_eq!(requests(&recs[0], "IpamDriver.ReleasePool").len(), 1);
    assert_eq!(requests(&recs[0], "NetworkDriver.DeleteNetwork").len(), 1);
}

/// A restarted berthd keeps its endpoint on a global plugin network: published again (the
/// network cannot be removed from another host, its name still resolves there), and the
/// plugin is sent neither CreateNetwork nor a second CreateEndpoint.
#[test]
fn a_restarted_host_keeps_its_global_plugin_endpoints() {
    let (mut c, _plugs, recs) = cluster_with_plugins(2, &["--scope", "global"]);
    let id = c
        .host(0)
        .create_network(json!({"Name": "gr", "Driver": "testplug"}));
    c.wait_network_everywhere("gr", &id);
    run_sleeper(c.host(0), "ca", &["--net", "gr"]);
    run_sleeper(c.host(1), "cb", &["--net", "gr"]);
    let ipb = ip_of(c.host(1), "cb", "gr");
    wait_resolves(c.host(0), "ca", "cb", &ipb, Duration::from_secs(3));
    c.restart(1);
    // past the old lease's TTL: what is in the store now was published again
    std::thread::sleep(c.ttl() * 2);
    c.wait_network_everywhere("gr", &id);
    assert_eq!(ip_of(c.host(1), "cb", "gr"), ipb);
    wait_resolves(c.host(0), "ca", "cb", &ipb, Duration::from_secs(5));
    let (st, v) = c.host(0).api("DELETE", "/networks/gr", None);
    assert_eq!(st, 403, "{v}");
    assert!(requests(&recs[1], "NetworkDriver.CreateNetwork").is_empty());
    assert_eq!(requests(&recs[1], "NetworkDriver.CreateEndpoint").len(), 1);
}

/// Overlay with a remote IPAM whose RequestAddress fails on host 1: the run there fails with
/// the plugin's error and leaves no endpoint (the network is removable at once); a name
/// taken already costs no IPAM call at all.
#[test]
fn overlay_remote_ipam_failures_leave_nothing() {
    let shared = tempfile::NamedTempFile::new().unwrap();
    let path = shared.path().display().to_string();
    let (c, _plugs, recs) = cluster_with_plugins_per(2, |i| {
        let mut v = vec!["--shared-ipam".to_string(), path.clone()];
        if i == 1 {
            v.extend([
                "--ipam-error".into(),
                "IpamDriver.RequestAddress=pool is dry".into(),
            ]);
        }
        v
    });
    let (h0, h1) = (c.host(0), c.host(1));
    let id = h0.create_network(json!({
        "Name": "ovf", "Driver": "overlay", "IPAM": {"Driver": "testplug"}
    }));
    c.wait_network_everywhere("ovf", &id);
    let o = h1.cli(&[
        "run", "-d", "--name", "cf", "--net", "ovf", "busybox", "sleep", "1d",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("pool is dry"), "{err}");
    assert!(requests(&recs[1], "IpamDriver.ReleaseAddress").is_empty());
    let (_, v) = h1.api("GET", "/networks/ovf", None);
    assert_eq!(v["Containers"], json!({}), "{v}");
    // the name is taken: refused before the IPAM is asked
    let (st, _) = h1.api(
        "POST",
        "/networks/create",
        Some(json!({"Name": "ovf", "Driver": "overlay", "IPAM": {"Driver": "testplug"}})),
    );
    assert_eq!(st, 409);
    assert!(requests(&recs[1], "IpamDriver.RequestPool").is_empty());
    let _ = h1.cli(&["rm", "-f", "cf"]);
    let (st, v) = h1.api("DELETE", "/networks/ovf", None);
    assert_eq!(st, 204, "{v}");
    c.wait_network_gone_everywhere("ovf");
}

/// Scope global with ConnectivityScope local: the network is global, but the plugin gets no
/// Discover calls (libnetwork sends them on ConnectivityScope only).
#[test]
fn no_discovery_for_local_connectivity() {
    let (c, _plugs, recs) =
        cluster_with_plugins(2, &["--scope", "global", "--connectivity-scope", "local"]);
    let id = c
        .host(0)
        .create_network(json!({"Name": "gl", "Driver": "testplug"}));
    c.wait_network_everywhere("gl", &id);
    run_sleeper(c.host(1), "cl", &["--net", "gl"]);
    std::thread::sleep(Duration::from_secs(1));
    for rec in &recs {
        assert!(requests(rec, "NetworkDriver.DiscoverNew").is_empty());
    }
}
