//! Root tests: each runs in a network namespace of its own, created by a
//! thread that calls `unshare(CLONE_NEWNET)`, so the host's ruleset is never
//! touched; the namespace disappears with the thread. They need root
//! (CAP_SYS_ADMIN for unshare/setns, CAP_NET_ADMIN for nftables), `nft` and
//! `ip` (Debian `nftables`, `iproute2`) — CI runs as root.
use super::*;
use crate::testing::in_new_netns;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: &str = "berthtest";

/// `nft -j <args>` as a child process (so in the calling thread's netns).
fn nft_cli(args: &[&str]) -> Result<Value, String> {
    let out = Command::new("nft")
        .arg("-j")
        .args(args)
        .output()
        .expect("running nft (install the nftables package)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("nft -j output is JSON"))
}

fn list_table(table: &str) -> Result<Vec<Value>, String> {
    let v = nft_cli(&["list", "table", "inet", table])?;
    Ok(v["nftables"].as_array().unwrap().clone())
}

fn elem_to_string(e: &Value) -> String {
    match e {
        Value::String(s) => s.clone(),
        Value::Object(o) if o.contains_key("concat") => o["concat"]
            .as_array()
            .unwrap()
            .iter()
            .map(elem_to_string)
            .collect::<Vec<_>>()
            .join(" . "),
        other => panic!("unexpected element {other}"),
    }
}

/// Elements of `set` according to the `nft` command, sorted.
fn cli_elements(table: &str, set: &str) -> Vec<String> {
    let objs = list_table(table).unwrap_or_else(|e| panic!("{e}"));
    let s = objs
        .iter()
        .find_map(|o| o.get("set").filter(|s| s["name"] == set))
        .unwrap_or_else(|| panic!("set {set} not in table {table}"));
    let mut v: Vec<String> = s
        .get("elem")
        .map(|e| e.as_array().unwrap().iter().map(elem_to_string).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Number of rules of each chain, according to the `nft` command.
fn cli_rule_counts(table: &str) -> (usize, usize) {
    let objs = list_table(table).unwrap_or_else(|e| panic!("{e}"));
    let count = |chain: &str| {
        objs.iter()
            .filter(|o| o.get("rule").is_some_and(|r| r["chain"] == chain))
            .count()
    };
    (count("forward"), count("postrouting"))
}

fn cli_text(table: &str) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "inet", table])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

use super::ruleset::tests::net;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

const EMPTY_TABLE: &str = "\
table inet berthtest {
\tset bridges {
\t\ttype ifname
\t}

\tset masq {
\t\ttype ifname
\t}

\tset internal {
\t\ttype ifname
\t}

\tset own {
\t\ttype ifname . ifname
\t}

\tset noicc {
\t\ttype ifname . ifname
\t}

\tmap ports4 {
\t\ttype inet_proto . inet_service : ipv4_addr . inet_service
\t}

\tmap ports4_ip {
\t\ttype ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
\t}

\tmap ranges4 {
\t\ttype inet_proto . ipv4_addr . inet_service : ipv4_addr
\t\tflags interval
\t}

\tset self4 {
\t\ttype ipv4_addr . ipv4_addr
\t}

\tmap ports6 {
\t\ttype inet_proto . inet_service : ipv6_addr . inet_service
\t}

\tmap ports6_ip {
\t\ttype ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service
\t}

\tmap ranges6 {
\t\ttype inet_proto . ipv6_addr . inet_service : ipv6_addr
\t\tflags interval
\t}

\tset self6 {
\t\ttype ipv6_addr . ipv6_addr
\t}

\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t\tiifname . oifname @noicc drop
\t\tiifname . oifname @own accept
\t\tiifname @internal drop
\t\toifname @internal drop
\t\toifname @bridges ct status dnat accept
\t\tiifname @bridges oifname @bridges drop
\t\toifname @bridges ct state established,related accept
\t\toifname @bridges drop
\t}

\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tiifname . oifname @own ct status dnat masquerade
\t\tct status dnat ip saddr . ip daddr @self4 masquerade
\t\tct status dnat ip6 saddr . ip6 daddr @self6 masquerade
\t\tiifname . oifname @own return
\t\tmeta nfproto ipv4 iifname @masq masquerade
\t\toifname @bridges ip saddr 127.0.0.0/8 masquerade
\t}

\tchain published {
\t\tdnat ip to meta l4proto . th dport map @ports4
\t\tdnat ip to ip daddr . meta l4proto . th dport map @ports4_ip
\t\tdnat ip to meta l4proto . ip daddr . th dport map @ranges4
\t\tdnat ip6 to meta l4proto . th dport map @ports6
\t\tdnat ip6 to ip6 daddr . meta l4proto . th dport map @ports6_ip
\t\tdnat ip6 to meta l4proto . ip6 daddr . th dport map @ranges6
\t}

\tchain prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tfib daddr type local jump published
\t}

\tchain output {
\t\ttype nat hook output priority -100; policy accept;
\t\tip6 daddr ::1 return
\t\tfib daddr type local jump published
\t}

\tchain guard {
\t\ttype filter hook prerouting priority raw; policy accept;
\t\tiifname @bridges ip daddr 127.0.0.0/8 drop
\t}
}
";

#[test]
fn init_creates_the_table_once_and_keeps_elements() {
    in_new_netns(|| {
        assert!(list_table(T).is_err(), "fresh namespace has no table");
        let fw = Nftables::new(T).unwrap();
        assert!(!fw.table_exists().unwrap());
        fw.init().unwrap();
        assert!(fw.table_exists().unwrap());
        assert_eq!(cli_text(T), EMPTY_TABLE);
        assert_eq!(cli_rule_counts(T), (8, 6));

        fw.add_network(&net("br-a", false, true, true)).unwrap();
        fw.init().unwrap();
        fw.init().unwrap();
        assert_eq!(cli_rule_counts(T), (8, 6), "init must not duplicate rules");
        assert_eq!(cli_elements(T, "bridges"), s(&["br-a"]));
        assert_eq!(cli_elements(T, "masq"), s(&["br-a"]));
        assert_eq!(cli_elements(T, "own"), s(&["br-a . br-a"]));

        // A "restarted daemon": a new context on the existing table.
        drop(fw);
        let fw = Nftables::new(T).unwrap();
        fw.init().unwrap();
        assert_eq!(fw.bridges().unwrap(), s(&["br-a"]));
        assert_eq!(cli_rule_counts(T), (8, 6));

        // A stale or tampered rule set is repaired, elements kept.
        let out = Command::new("nft")
            .args(["add rule inet berthtest forward counter accept"])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(cli_rule_counts(T), (9, 6));
        fw.init().unwrap();
        assert_eq!(cli_rule_counts(T), (8, 6));
        assert_eq!(fw.bridges().unwrap(), s(&["br-a"]));
    })
}

#[test]
fn networks_are_set_elements() {
    in_new_netns(|| {
        let fw = Nftables::new(T).unwrap();
        fw.init().unwrap();
        let a = net("br-a", false, true, true); // default bridge network
        let b = net("br-b", true, true, false); // internal, icc=false
        let c = net("br-c", false, false, true); // no masquerade
        for n in [&a, &b, &c] {
            fw.add_network(n).unwrap();
        }
        let check =
            |bridges: &[&str], own: &[&str], noicc: &[&str], masq: &[&str], internal: &[&str]| {
                assert_eq!(cli_elements(T, "bridges"), s(bridges));
                assert_eq!(cli_elements(T, "own"), s(own));
                assert_eq!(cli_elements(T, "noicc"), s(noicc));
                assert_eq!(cli_elements(T, "masq"), s(masq));
                assert_eq!(cli_elements(T, "internal"), s(internal));
                assert_eq!(fw.bridges().unwrap(), s(bridges));
                assert_eq!(cli_rule_counts(T), (8, 6), "rules never change");
            };
        let all_own = ["br-a . br-a", "br-b . br-b", "br-c . br-c"];
        check(
            &["br-a", "br-b", "br-c"],
            &all_own,
            &["br-b . br-b"],
            &["br-a"],
            &["br-b"],
        );

        // re-adding is fine and changes nothing
        fw.add_network(&a).unwrap();
        fw.add_network(&b).unwrap();
        check(
            &["br-a", "br-b", "br-c"],
            &all_own,
            &["br-b . br-b"],
            &["br-a"],
            &["br-b"],
        );

        // re-adding with other flags converges to them
        fw.add_network(&net("br-a", false, false, false)).unwrap();
        check(
            &["br-a", "br-b", "br-c"],
            &all_own,
            &["br-a . br-a", "br-b . br-b"],
            &[],
            &["br-b"],
        );
        fw.add_network(&a).unwrap();
        check(
            &["br-a", "br-b", "br-c"],
            &all_own,
            &["br-b . br-b"],
            &["br-a"],
            &["br-b"],
        );

        // removal takes every element of the bridge, whatever flags are passed
        fw.remove_network(&net("br-b", false, false, true)).unwrap();
        check(
            &["br-a", "br-c"],
            &["br-a . br-a", "br-c . br-c"],
            &[],
            &["br-a"],
            &[],
        );
        // removing again, or something never added, is not an error
        fw.remove_network(&b).unwrap();
        fw.remove_network(&net("br-never", false, true, true))
            .unwrap();
        check(
            &["br-a", "br-c"],
            &["br-a . br-a", "br-c . br-c"],
            &[],
            &["br-a"],
            &[],
        );

        fw.remove_network(&a).unwrap();
        fw.remove_network(&c).unwrap();
        check(&[], &[], &[], &[], &[]);
        assert_eq!(cli_text(T), EMPTY_TABLE);
    })
}

#[test]
fn unusual_but_valid_bridge_names_round_trip() {
    in_new_netns(|| {
        let fw = Nftables::new(T).unwrap();
        fw.init().unwrap();
        let names = ["123456789012345", "br;x{}", "b#c$d@e", "a.b_c+d=e,f"];
        for n in names {
            fw.add_network(&net(n, false, true, false)).unwrap();
        }
        let mut expected = s(&names);
        expected.sort();
        assert_eq!(fw.bridges().unwrap(), expected);
        assert_eq!(cli_elements(T, "masq"), expected);
        for n in names {
            fw.remove_network(&net(n, false, true, false)).unwrap();
        }
        assert_eq!(cli_text(T), EMPTY_TABLE);
    })
}

#[test]
fn teardown_and_reset() {
    in_new_netns(|| {
        let fw = Nftables::new(T).unwrap();
        fw.teardown().unwrap(); // absent table: fine
        fw.init().unwrap();
        fw.add_network(&net("br-a", false, true, true)).unwrap();
        fw.reset().unwrap();
        assert_eq!(cli_text(T), EMPTY_TABLE);
        fw.add_network(&net("br-a", false, true, true)).unwrap();
        fw.teardown().unwrap();
        assert!(!fw.table_exists().unwrap());
        assert!(list_table(T).is_err());
        fw.teardown().unwrap();
        fw.reset().unwrap(); // reset also creates
        assert_eq!(cli_text(T), EMPTY_TABLE);
    })
}

#[test]
fn errors_are_reported() {
    in_new_netns(|| {
        let fw = Nftables::new(T).unwrap();
        let n = net("br-a", false, true, true);
        let e = fw.add_network(&n).unwrap_err();
        assert!(matches!(e, FwError::NotInitialized { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "nftables table inet berthtest does not exist: the firewall is not initialized"
        );
        assert!(matches!(
            fw.remove_network(&n),
            Err(FwError::NotInitialized { .. })
        ));
        assert!(matches!(fw.bridges(), Err(FwError::NotInitialized { .. })));

        fw.init().unwrap();
        let e = fw
            .add_network(&net("x\" }\nflush ruleset\n", false, true, true))
            .unwrap_err();
        assert!(matches!(e, FwError::InvalidBridgeName { .. }), "{e:?}");
        assert_eq!(cli_text(T), EMPTY_TABLE);

        assert!(matches!(
            Nftables::new("no such; table"),
            Err(FwError::InvalidTableName { .. })
        ));
        // a keyword is a valid-looking name that nft refuses: clear error
        let kw = Nftables::new("counter").unwrap();
        let e = kw.init().unwrap_err();
        assert!(matches!(e, FwError::Nft { .. }), "{e:?}");
        assert!(e.to_string().contains("syntax error"), "{e}");

        // a set of the wrong type blocks init: the error says what to do
        fw.teardown().unwrap();
        let out = Command::new("nft")
            .args(["add table inet berthtest; add set inet berthtest own { type ipv4_addr; }"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let e = fw.init().unwrap_err();
        assert!(e.to_string().contains("reset it"), "{e}");
        fw.reset().unwrap();
        assert_eq!(cli_text(T), EMPTY_TABLE);
    })
}

#[test]
fn tables_of_other_daemons_are_independent() {
    in_new_netns(|| {
        let one = Nftables::new(T).unwrap();
        let two = Nftables::new("berthother").unwrap();
        one.init().unwrap();
        two.init().unwrap();
        one.add_network(&net("br-1", false, true, true)).unwrap();
        two.add_network(&net("br-2", false, true, true)).unwrap();
        assert_eq!(one.bridges().unwrap(), s(&["br-1"]));
        assert_eq!(two.bridges().unwrap(), s(&["br-2"]));
        one.teardown().unwrap();
        assert_eq!(two.bridges().unwrap(), s(&["br-2"]));
        assert_eq!(cli_elements("berthother", "masq"), s(&["br-2"]));
    })
}

#[test]
fn concurrent_use_of_one_context() {
    in_new_netns(|| {
        let fw = Arc::new(Nftables::new(T).unwrap());
        fw.init().unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let fw = Arc::clone(&fw);
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let n = net(&format!("br-{t}-{i}"), i % 3 == 0, true, i % 2 == 0);
                        fw.add_network(&n).unwrap();
                        if i % 5 == 0 {
                            fw.remove_network(&n).unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(fw.bridges().unwrap().len(), 4 * 20);
        assert_eq!(cli_elements(T, "own").len(), 80);
        assert_eq!(cli_rule_counts(T), (8, 6));
    })
}

// ---- traffic ----------------------------------------------------------

static NETNS_SEQ: AtomicUsize = AtomicUsize::new(0);

/// Named network namespaces (`ip netns add`), deleted on drop.
struct Namespaces(Vec<String>);

impl Namespaces {
    fn add(&mut self, short: &str) -> String {
        let name = format!(
            "berthfw-{}-{}-{short}",
            std::process::id(),
            NETNS_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        self.0.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        name
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("running ip (install iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `f` on a thread that joined named namespace `ns`; sockets it
/// creates stay in `ns`.
fn in_named_netns<R: Send + 'static>(ns: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns only affects the calling thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// A bridge in the current netns with one "container" namespace on it.
fn bridge_with_container(nss: &mut Namespaces, bridge: &str, subnet: u8) -> String {
    let ns = nss.add(bridge);
    let veth = format!("v{bridge}");
    let gw = format!("10.{subnet}.0.1");
    ip(&["link", "add", bridge, "type", "bridge"]);
    ip(&["addr", "add", &format!("{gw}/24"), "dev", bridge]);
    ip(&["link", "set", bridge, "up"]);
    ip(&[
        "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
    ]);
    ip(&["link", "set", &veth, "master", bridge, "up"]);
    ip(&[
        "-n",
        &ns,
        "addr",
        "add",
        &format!("10.{subnet}.0.2/24"),
        "dev",
        "eth0",
    ]);
    ip(&["-n", &ns, "link", "set", "eth0", "up"]);
    ip(&["-n", &ns, "route", "add", "default", "via", &gw]);
    ns
}

/// Connects over TCP from namespace `from` to `to_ip`, served from
/// namespace `to`. `Some(source address seen by the server)` on success,
/// `None` if the connection could not be made.
fn probe(from: &str, to: &str, to_ip: Ipv4Addr) -> Option<IpAddr> {
    const PORT: u16 = 7777;
    let listener = in_named_netns(to, || {
        let l = TcpListener::bind(("0.0.0.0", PORT)).unwrap();
        l.set_nonblocking(true).unwrap();
        l
    });
    let addr = SocketAddr::from((to_ip, PORT));
    let connected = in_named_netns(from, move || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(400))
    });
    let _stream = connected.ok()?;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match listener.accept() {
            Ok((_, peer)) => return Some(peer.ip()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

#[test]
fn traffic_follows_the_rules() {
    in_new_netns(|| {
        // This thread's namespace plays the host.
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
        let mut nss = Namespaces(Vec::new());
        let ca = bridge_with_container(&mut nss, "br-a", 1); // masquerading
        let cb = bridge_with_container(&mut nss, "br-b", 2); // not masquerading
        let ci = bridge_with_container(&mut nss, "br-i", 3); // internal
                                                             // "the outside world": directly connected, routes 10/8 back via the host
        let ext = nss.add("ext");
        ip(&[
            "link", "add", "vext", "type", "veth", "peer", "name", "eth0", "netns", &ext,
        ]);
        ip(&["addr", "add", "192.0.2.1/24", "dev", "vext"]);
        ip(&["link", "set", "vext", "up"]);
        ip(&["-n", &ext, "addr", "add", "192.0.2.2/24", "dev", "eth0"]);
        ip(&["-n", &ext, "link", "set", "eth0", "up"]);
        ip(&["-n", &ext, "route", "add", "10.0.0.0/8", "via", "192.0.2.1"]);

        let host_ext = IpAddr::from([192, 0, 2, 1]);
        let ext_ip = Ipv4Addr::new(192, 0, 2, 2);
        let a_ip = Ipv4Addr::new(10, 1, 0, 2);
        let b_ip = Ipv4Addr::new(10, 2, 0, 2);
        let i_ip = Ipv4Addr::new(10, 3, 0, 2);

        // Without a firewall everything is routed, nothing is NATed.
        assert_eq!(probe(&ca, &cb, b_ip), Some(IpAddr::V4(a_ip)));

        let fw = Nftables::new(T).unwrap();
        fw.init().unwrap();
        let a = net("br-a", false, true, true);
        fw.add_network(&a).unwrap();
        fw.add_network(&net("br-b", false, false, true)).unwrap();
        fw.add_network(&net("br-i", true, true, true)).unwrap();

        assert_eq!(probe(&ca, &ext, ext_ip), Some(host_ext), "a is masqueraded");
        assert_eq!(
            probe(&cb, &ext, ext_ip),
            Some(IpAddr::V4(b_ip)),
            "b is routed, not masqueraded"
        );
        assert_eq!(probe(&ca, &cb, b_ip), None, "networks are isolated");
        assert_eq!(probe(&cb, &ca, a_ip), None, "networks are isolated");
        assert_eq!(
            probe(&ci, &ext, ext_ip),
            None,
            "internal network reaches nothing"
        );
        assert_eq!(
            probe(&ext, &ci, i_ip),
            None,
            "nothing reaches an internal network"
        );
        assert_eq!(
            probe(&ext, &ca, a_ip),
            None,
            "no unsolicited inbound traffic"
        );

        fw.remove_network(&a).unwrap();
        assert_eq!(
            probe(&ca, &ext, ext_ip),
            Some(IpAddr::V4(a_ip)),
            "a no longer masqueraded"
        );
        assert_eq!(
            probe(&ext, &ca, a_ip),
            Some(IpAddr::V4(ext_ip)),
            "a no longer protected"
        );
        assert_eq!(probe(&ca, &cb, b_ip), None, "b still protected");

        fw.add_network(&a).unwrap();
        assert_eq!(probe(&ca, &ext, ext_ip), Some(host_ext));
        assert_eq!(probe(&ext, &ca, a_ip), None);

        fw.teardown().unwrap();
        assert_eq!(probe(&ca, &cb, b_ip), Some(IpAddr::V4(a_ip)));
    })
}
