//! The embedded DNS (127.0.0.11) end to end: real busybox `nslookup`/`ping` in containers, and
//! exact answers read with an independent client from inside the containers' namespaces.
//! Upstream servers are the test's own, in a namespace the test made.

use berth_e2e::dns::{ask_tcp, ask_udp, Upstream};
use berth_e2e::net::{in_netns, Outside};
use berth_e2e::Lab;
use berth_e2e::{fails, ok};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;

const RESOLVER: &str = "127.0.0.11:53";

fn fmt(lab: &Lab, c: &str, f: &str) -> String {
    ok(&lab.docker(&["inspect", "--format", f, c]), "inspect")
}

fn ip_of(lab: &Lab, c: &str, net: &str) -> String {
    fmt(
        lab,
        c,
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
    )
}

fn sandbox(lab: &Lab, c: &str) -> PathBuf {
    PathBuf::from(fmt(lab, c, "{{.NetworkSettings.SandboxKey}}"))
}

fn resolver() -> SocketAddr {
    RESOLVER.parse().unwrap()
}

fn a(lab: &Lab, from: &str, name: &str) -> Vec<String> {
    let r = ask_udp(&sandbox(lab, from), resolver(), name, RecordType::A).expect("a reply");
    assert_eq!(r.rcode, ResponseCode::NoError, "{name} from {from}: {r:?}");
    r.answers
}

/// The walkthrough, then the exact answers behind it.
#[test]
fn names_aliases_links_reverse_and_scope() {
    let lab = Lab::start();
    ok(&lab.cli(&["network", "create", "appnet"]), "network create");
    ok(
        &lab.cli(&["network", "create", "othernet"]),
        "network create",
    );
    let run = |args: &[&str]| {
        let mut v = vec!["run", "-d"];
        v.extend_from_slice(args);
        v.extend_from_slice(&["busybox", "sleep", "1d"]);
        ok(&lab.cli(&v), "run -d")
    };
    run(&["--net=appnet", "--name=db", "--network-alias=database"]);
    run(&["--net=appnet", "--name=web1", "--network-alias=web"]);
    // the docker CLI sends aliases its own way (EndpointsConfig)
    ok(
        &lab.docker(&[
            "run",
            "-d",
            "--net=appnet",
            "--name=web2",
            "--network-alias=web",
            "busybox",
            "sleep",
            "1d",
        ]),
        "docker run",
    );
    run(&["--net=othernet", "--name=stranger"]);
    let db = ip_of(&lab, "db", "appnet");
    let (w1, w2) = (ip_of(&lab, "web1", "appnet"), ip_of(&lab, "web2", "appnet"));

    // busybox's own resolver, through /etc/resolv.conf
    let rc = ok(
        &lab.cli(&[
            "run",
            "--rm",
            "--net=appnet",
            "--dns-search=corp.example",
            "busybox",
            "cat",
            "/etc/resolv.conf",
        ]),
        "cat resolv.conf",
    );
    let lines: Vec<&str> = rc.lines().collect();
    assert_eq!(
        lines,
        [
            "nameserver 127.0.0.11",
            "search corp.example",
            "options ndots:0"
        ],
        "{rc}"
    );
    let out = ok(
        &lab.cli(&["run", "--rm", "--net=appnet", "busybox", "nslookup", "db"]),
        "nslookup db",
    );
    assert!(out.contains(&db), "{out}");
    ok(
        &lab.cli(&[
            "run",
            "--rm",
            "--net=appnet",
            "busybox",
            "ping",
            "-c1",
            "-W2",
            "db.appnet",
        ]),
        "ping db.appnet",
    );
    let out = ok(
        &lab.cli(&["run", "--rm", "--net=appnet", "busybox", "nslookup", "web"]),
        "nslookup web",
    );
    assert!(out.contains(&w1) && out.contains(&w2), "{out}");
    ok(
        &lab.cli(&[
            "run",
            "--rm",
            "--net=appnet",
            "--link=db:mydb",
            "busybox",
            "ping",
            "-c1",
            "-W2",
            "mydb",
        ]),
        "ping the link alias",
    );
    let out = ok(
        &lab.cli(&["run", "--rm", "--net=appnet", "busybox", "nslookup", &db]),
        "nslookup the address",
    );
    assert!(out.contains("db.appnet"), "{out}");
    let out = fails(&lab.cli(&["run", "--rm", "busybox", "ping", "-c1", "-W1", "db"]));
    assert!(
        out.contains("bad address"),
        "default bridge: no discovery: {out}"
    );
    let out = fails(&lab.cli(&[
        "run",
        "--rm",
        "--net=othernet",
        "busybox",
        "ping",
        "-c1",
        "-W1",
        "db",
    ]));
    assert!(out.contains("bad address"), "another network: {out}");

    // exact answers, asked from inside web1's namespace
    assert_eq!(a(&lab, "web1", "db"), [db.as_str()]);
    assert_eq!(
        a(&lab, "web1", "DB.AppNet"),
        [db.as_str()],
        "case-insensitive"
    );
    assert_eq!(a(&lab, "web1", "database"), [db.as_str()]);
    let short = fmt(&lab, "db", "{{.Id}}")[..12].to_string();
    assert_eq!(a(&lab, "web1", &short), [db.as_str()], "short id");
    let r = ask_udp(&sandbox(&lab, "web1"), resolver(), "db", RecordType::AAAA).unwrap();
    assert_eq!(
        (r.rcode, r.answers.len()),
        (ResponseCode::NoError, 0),
        "no IPv6: empty, not forwarded"
    );
    // shared alias: both addresses, and the order rotates between queries
    let firsts: HashSet<String> = (0..6)
        .map(|_| {
            let v = a(&lab, "db", "web");
            assert_eq!(
                v.iter().cloned().collect::<HashSet<_>>(),
                HashSet::from([w1.clone(), w2.clone()])
            );
            v[0].clone()
        })
        .collect();
    assert_eq!(firsts.len(), 2, "rotation: {firsts:?}");
    // reverse
    let rev = db.split('.').rev().collect::<Vec<_>>().join(".") + ".in-addr.arpa";
    let r = ask_udp(&sandbox(&lab, "web1"), resolver(), &rev, RecordType::PTR).unwrap();
    assert_eq!(r.answers, ["db.appnet."]);
    // scope: othernet's container knows none of appnet's names (no upstream: SERVFAIL)
    for name in ["db", "web", "db.appnet"] {
        let r = ask_udp(&sandbox(&lab, "stranger"), resolver(), name, RecordType::A).unwrap();
        assert_eq!(r.rcode, ResponseCode::ServFail, "{name}: {r:?}");
    }
    // connecting shares the names; disconnecting takes them away again
    ok(
        &lab.cli(&["network", "connect", "othernet", "db"]),
        "connect",
    );
    let db_other = ip_of(&lab, "db", "othernet");
    assert_eq!(a(&lab, "stranger", "db"), [db_other]);
    ok(
        &lab.cli(&["network", "disconnect", "othernet", "db"]),
        "disconnect",
    );
    let r = ask_udp(&sandbox(&lab, "stranger"), resolver(), "db", RecordType::A).unwrap();
    assert_eq!(r.rcode, ResponseCode::ServFail);

    // a name answers as soon as the container runs, and stops when it is gone
    run(&["--net=appnet", "--name=late"]);
    let late = ip_of(&lab, "late", "appnet");
    assert_eq!(a(&lab, "web1", "late"), [late]);
    ok(&lab.cli(&["rm", "-f", "late"]), "rm -f");
    let r = ask_udp(&sandbox(&lab, "web1"), resolver(), "late", RecordType::A).unwrap();
    assert_eq!(r.rcode, ResponseCode::ServFail, "gone: {r:?}");

    // a restarted daemon serves the running containers again
    let mut lab = lab;
    lab.restart();
    assert_eq!(a(&lab, "web1", "db"), [db.as_str()]);
    let r = ask_tcp(
        &sandbox(&lab, "web1"),
        resolver(),
        &[("web", RecordType::A)],
    );
    assert_eq!(r[0].answers.len(), 2);
}

fn set_host_servers(lab: &Lab, servers: &[&str]) {
    let s: String = servers
        .iter()
        .map(|s| format!("nameserver {s}\n"))
        .collect();
    std::fs::write(lab.resolv_conf(), s).unwrap();
    // the resolver looks at the file at most once a second
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

#[test]
fn forwarding_dead_upstreams_and_internal_networks() {
    let lab = Lab::start();
    let out = Outside::new(&lab);
    // a second outside address, for the dead upstream
    let added = std::process::Command::new("ip")
        .args([
            "-n",
            &out.name,
            "addr",
            "add",
            "198.51.100.3/24",
            "dev",
            "up1",
        ])
        .status()
        .unwrap();
    assert!(added.success());
    let good = Upstream::start(
        out.path(),
        "198.51.100.2".parse().unwrap(),
        &[("example.test", "203.0.113.7".parse().unwrap())],
        false,
    );
    let dead = Upstream::start(out.path(), "198.51.100.3".parse().unwrap(), &[], true);
    // a resolver on the host's own loopback (like systemd-resolved) is asked from the host
    let lab_ns = PathBuf::from(format!("/run/netns/{}", lab.ns));
    let local = Upstream::start(
        &lab_ns,
        "127.0.0.1".parse().unwrap(),
        &[("local.test", "203.0.113.9".parse().unwrap())],
        false,
    );
    ok(&lab.cli(&["network", "create", "appnet"]), "network create");
    ok(
        &lab.cli(&["network", "create", "--internal", "inner"]),
        "network create",
    );
    for (name, net) in [("cc", "appnet"), ("ii", "inner")] {
        ok(
            &lab.cli(&[
                "run", "-d", "--net", net, "--name", name, "busybox", "sleep", "1d",
            ]),
            "run",
        );
    }

    // the host's servers, read again when the file changes; forwarded through the
    // container's own namespace (masqueraded to the outside)
    set_host_servers(&lab, &["198.51.100.2"]);
    assert_eq!(a(&lab, "cc", "example.test"), ["203.0.113.7"]);
    let out_ns = ok(
        &lab.cli(&["exec", "cc", "nslookup", "example.test"]),
        "busybox nslookup via upstream",
    );
    assert!(out_ns.contains("203.0.113.7"), "{out_ns}");
    let r = ask_udp(&sandbox(&lab, "cc"), resolver(), "nope.test", RecordType::A).unwrap();
    assert_eq!(r.rcode, ResponseCode::NXDomain, "upstream's answer relayed");
    // TCP clients are forwarded over TCP
    let r = ask_tcp(
        &sandbox(&lab, "cc"),
        resolver(),
        &[("example.test", RecordType::A)],
    );
    assert_eq!(r[0].answers, ["203.0.113.7"]);

    // a dead first server costs one timeout, then it is skipped
    set_host_servers(&lab, &["198.51.100.3", "198.51.100.2"]);
    let before = dead.count();
    assert_eq!(a(&lab, "cc", "example.test"), ["203.0.113.7"]);
    assert_eq!(a(&lab, "cc", "example.test"), ["203.0.113.7"]);
    assert_eq!(a(&lab, "cc", "example.test"), ["203.0.113.7"]);
    assert_eq!(dead.count() - before, 1, "the dead server was asked once");
    // every server dead: an answer at once, not a hang
    set_host_servers(&lab, &["198.51.100.3"]);
    let t = std::time::Instant::now();
    let r = ask_udp(
        &sandbox(&lab, "cc"),
        resolver(),
        "example.test",
        RecordType::A,
    )
    .unwrap();
    assert_eq!(r.rcode, ResponseCode::ServFail);
    assert!(t.elapsed().as_secs() < 5, "within the client's budget");

    // the host's loopback resolver is reached from the host's namespace
    set_host_servers(&lab, &["127.0.0.1"]);
    assert_eq!(a(&lab, "cc", "local.test"), ["203.0.113.9"]);
    assert!(local.count() >= 1);

    // a container's own --dns wins over the host's
    ok(
        &lab.cli(&[
            "run",
            "-d",
            "--net",
            "appnet",
            "--dns",
            "198.51.100.2",
            "--name",
            "own",
            "busybox",
            "sleep",
            "1d",
        ]),
        "run --dns",
    );
    let rc = ok(&lab.cli(&["exec", "own", "cat", "/etc/resolv.conf"]), "cat");
    assert!(rc.starts_with("nameserver 127.0.0.11\n"), "{rc}");
    assert_eq!(a(&lab, "own", "example.test"), ["203.0.113.7"]);

    // internal networks are not forwarded (and their names still answer)
    let asked = good.count() + local.count();
    let r = ask_udp(
        &sandbox(&lab, "ii"),
        resolver(),
        "local.test",
        RecordType::A,
    )
    .unwrap();
    assert_eq!(r.rcode, ResponseCode::NXDomain);
    assert_eq!(good.count() + local.count(), asked, "nothing went upstream");
    assert_eq!(a(&lab, "ii", "ii").len(), 1);
}

#[test]
fn hostile_clients_do_not_hurt_the_server() {
    let lab = Lab::start();
    ok(&lab.cli(&["network", "create", "appnet"]), "network create");
    ok(
        &lab.cli(&[
            "run",
            "-d",
            "--net=appnet",
            "--name=cc",
            "busybox",
            "sleep",
            "1d",
        ]),
        "run",
    );
    let me = ip_of(&lab, "cc", "appnet");
    let ns = sandbox(&lab, "cc");
    in_netns(&ns, move || {
        use std::io::Write;
        let server: SocketAddr = RESOLVER.parse().unwrap();
        // garbage, a packet with a compression loop, a lone header, an oversized datagram
        let u = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let mut loop_pkt = berth_e2e::dns::query("cc", RecordType::A)[..12].to_vec();
        loop_pkt.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        for p in [vec![0xFF; 7], loop_pkt, vec![0; 12], vec![0x41; 9000]] {
            u.send_to(&p, server).unwrap();
        }
        // a TCP client that sends half a query and resets the connection
        let mut t = std::net::TcpStream::connect(server).unwrap();
        t.write_all(&[0, 40, 1, 2, 3]).unwrap();
        let raw = socket_linger_zero(&t);
        drop(t);
        assert!(raw);
    });
    // still answering, over both transports, and without spinning
    assert_eq!(a(&lab, "cc", "cc"), [me.as_str()]);
    let r = ask_tcp(
        &ns,
        resolver(),
        &[("cc", RecordType::A), ("cc", RecordType::AAAA)],
    );
    assert_eq!(r[0].answers, [me]);
    assert_eq!(r[1].answers.len(), 0);
    let pid = lab.pid().expect("berthd pid");
    let cpu = |p: u32| -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap();
        let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let c0 = cpu(pid);
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(
        cpu(pid) - c0 < 20,
        "berthd is busy after the hostile clients"
    );
}

/// SO_LINGER 0: closing sends a RST instead of a FIN.
fn socket_linger_zero(t: &std::net::TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the option value is a linger struct we own, of the length given.
    unsafe {
        libc::setsockopt(
            t.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as u32,
        ) == 0
    }
}

#[test]
fn default_bridge_links_write_hosts_and_environment() {
    let lab = Lab::start();
    ok(
        &lab.cli(&[
            "run",
            "-d",
            "--name=db",
            "-e",
            "PG_VERSION=16",
            "--expose=5432",
            "busybox",
            "sleep",
            "1d",
        ]),
        "run db",
    );
    let db = ip_of(&lab, "db", "bridge");
    let out = ok(
        &lab.cli(&[
            "run",
            "--rm",
            "--name=web",
            "--link=db:mydb",
            "busybox",
            "sh",
            "-c",
            "cat /etc/hosts; env; ping -c1 -W2 mydb",
        ]),
        "run with a link",
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("{db}\tmydb")) && l.ends_with(" db")),
        "{out}"
    );
    for var in [
        "MYDB_NAME=/web/mydb".to_string(),
        "MYDB_ENV_PG_VERSION=16".to_string(),
        format!("MYDB_PORT=tcp://{db}:5432"),
        format!("MYDB_PORT_5432_TCP_ADDR={db}"),
        "MYDB_PORT_5432_TCP_PORT=5432".to_string(),
    ] {
        assert!(out.lines().any(|l| l == var), "{var} in\n{out}");
    }
    let rc = ok(
        &lab.cli(&["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]),
        "cat",
    );
    assert!(
        !rc.contains("127.0.0.11"),
        "no embedded DNS on the default bridge: {rc}"
    );

    let e = fails(&lab.cli(&["run", "--rm", "--link=nosuch:x", "busybox", "true"]));
    assert!(e.contains("could not get container for nosuch"), "{e}");
    ok(&lab.cli(&["stop", "-t", "0", "db"]), "stop");
    let e = fails(&lab.cli(&[
        "run",
        "--rm",
        "--name=web2",
        "--link=db:mydb",
        "busybox",
        "true",
    ]));
    assert!(
        e.contains("Cannot link to a non running container: /db AS /web2/mydb"),
        "{e}"
    );
    assert!(
        lab.veths_left().is_empty(),
        "nothing left by the refused start"
    );
}
