//! The crash campaign's failpoints (issue 12): for every operation and every failpoint on its
//! path (`berth_net::fail::POINTS`: each store write and kernel step), berthd dies with SIGKILL
//! right there, a new berthd starts on the same roots, the invariants hold
//! (`berth_e2e::invariants`), and the operation, retried, succeeds and leaves what it promises.
//!
//! berthd arms a failpoint when its name is in the file `BERTH_FAILPOINTS` names (and it was
//! built with berth-net's `failpoints` feature, which this crate turns on for the workspace).

use berth_e2e::http::call;
use berth_e2e::invariants::{check, ip_on, resolve, sandbox_of, HTTP_LABEL};
use berth_e2e::Lab;
use berth_net::fail::POINTS;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    NetCreate,
    NetRm,
    Run,
    Start,
    Connect,
    Disconnect,
    Stop,
    Rm,
}

const OPS: [Op; 8] = [
    Op::NetCreate,
    Op::NetRm,
    Op::Run,
    Op::Start,
    Op::Connect,
    Op::Disconnect,
    Op::Stop,
    Op::Rm,
];

impl Op {
    /// The failpoints on the operation's path, by the prefixes of their names.
    fn prefixes(self) -> &'static [&'static str] {
        match self {
            Op::NetCreate => &["network-create/"],
            Op::NetRm => &["network-rm/"],
            Op::Run => &[
                "create/",
                "sandbox-create/",
                "connect/",
                "publish/",
                "start/",
            ],
            Op::Start => &["sandbox-create/", "connect/", "publish/", "start/"],
            Op::Connect => &["connect/"],
            Op::Disconnect => &["disconnect/"],
            // stop: ports, then the namespace (its veths go in the background), then the record
            Op::Stop => &["unpublish/", "sandbox-delete/", "disconnect/veth", "exit/"],
            Op::Rm => &["rm/"],
        }
    }

    fn points(self) -> Vec<&'static str> {
        berth_net::fail::points_under(self.prefixes())
    }
}

fn expect(lab: &Lab, method: &str, path: &str, body: Option<Value>, ok: &[u16], what: &str) {
    let (st, v) = lab.api(method, path, body);
    assert!(ok.contains(&st), "{what}: {method} {path} → {st} {v}");
}

const SUBJECT: &str = "subj";

/// The subject: busybox httpd on `fpa`, port 80 published on an ephemeral host port.
fn create_subject(lab: &Lab) -> Option<(u16, Value)> {
    let script = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www";
    let body = json!({
        "Image": "busybox",
        "Cmd": ["sh", "-c", script],
        "ExposedPorts": {"80/tcp": {}},
        "Labels": {HTTP_LABEL: "1"},
        "HostConfig": {
            "NetworkMode": "fpa",
            "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": ""}]},
        },
    });
    call(
        &lab.sock(),
        "POST",
        &format!("/containers/create?name={SUBJECT}"),
        Some(body),
    )
}

fn start_subject(lab: &Lab) -> Option<(u16, Value)> {
    call(
        &lab.sock(),
        "POST",
        &format!("/containers/{SUBJECT}/start"),
        None,
    )
}

fn join(lab: &Lab, net: &str, c: &str) -> Option<(u16, Value)> {
    call(
        &lab.sock(),
        "POST",
        &format!("/networks/{net}/connect"),
        Some(json!({"Container": c})),
    )
}

struct Fixture {
    lab: Lab,
    /// the file berthd reads its armed failpoint from
    armed: PathBuf,
}

/// Networks `fpa` and `fpb`, and `peer` running on both (it asks the DNS questions).
fn fixture() -> Fixture {
    let mut lab = Lab::new_ns();
    let armed = lab.root().join("failpoint");
    std::fs::write(&armed, "").unwrap();
    lab.set_daemon_env("BERTH_FAILPOINTS", armed.to_str().unwrap());
    lab.start_daemon(&[]);
    lab.net("fpa");
    lab.net("fpb");
    let body = json!({"Image": "busybox", "Cmd": ["sleep", "3600"],
        "HostConfig": {"NetworkMode": "fpa"}});
    expect(
        &lab,
        "POST",
        "/containers/create?name=peer",
        Some(body),
        &[201],
        "peer",
    );
    expect(&lab, "POST", "/containers/peer/start", None, &[204], "peer");
    assert_eq!(join(&lab, "fpb", "peer").map(|r| r.0), Some(200));
    Fixture { lab, armed }
}

/// Brings the state the operation starts from.
fn setup(lab: &Lab, op: Op) {
    let what = format!("setup of {op:?}");
    match op {
        Op::NetCreate | Op::Run => {}
        Op::NetRm => expect(
            lab,
            "POST",
            "/networks/create",
            Some(json!({"Name": "fpnet", "CheckDuplicate": true})),
            &[201],
            &what,
        ),
        Op::Start => assert_eq!(create_subject(lab).map(|r| r.0), Some(201), "{what}"),
        Op::Connect | Op::Stop | Op::Rm | Op::Disconnect => {
            assert_eq!(create_subject(lab).map(|r| r.0), Some(201), "{what}");
            assert_eq!(start_subject(lab).map(|r| r.0), Some(204), "{what}");
            if op == Op::Disconnect {
                assert_eq!(join(lab, "fpb", SUBJECT).map(|r| r.0), Some(200));
            }
        }
    }
}

/// The operation itself; its answer does not matter (the daemon may die before it).
fn perform(lab: &Lab, op: Op) {
    match op {
        Op::NetCreate => {
            let body = json!({"Name": "fpnet", "CheckDuplicate": true});
            call(&lab.sock(), "POST", "/networks/create", Some(body));
        }
        Op::NetRm => {
            call(&lab.sock(), "DELETE", "/networks/fpnet", None);
        }
        Op::Run => {
            if let Some((201, _)) = create_subject(lab) {
                start_subject(lab);
            }
        }
        Op::Start => {
            start_subject(lab);
        }
        Op::Connect => {
            join(lab, "fpb", SUBJECT);
        }
        Op::Disconnect => {
            let body = json!({"Container": SUBJECT});
            call(&lab.sock(), "POST", "/networks/fpb/disconnect", Some(body));
        }
        Op::Stop => {
            call(
                &lab.sock(),
                "POST",
                &format!("/containers/{SUBJECT}/stop?t=0"),
                None,
            );
        }
        Op::Rm => {
            call(
                &lab.sock(),
                "DELETE",
                &format!("/containers/{SUBJECT}?force=1"),
                None,
            );
        }
    }
}

/// The operation again, on the restarted daemon: it succeeds, or answers that it is done.
fn retry(lab: &Lab, op: Op, what: &str) {
    match op {
        Op::NetCreate => expect(
            lab,
            "POST",
            "/networks/create",
            Some(json!({"Name": "fpnet", "CheckDuplicate": true})),
            &[201, 409],
            what,
        ),
        Op::NetRm => expect(lab, "DELETE", "/networks/fpnet", None, &[204, 404], what),
        Op::Run | Op::Start => {
            let (st, _) = lab.api("GET", &format!("/containers/{SUBJECT}/json"), None);
            if st == 404 {
                assert_eq!(create_subject(lab).map(|r| r.0), Some(201), "{what}");
            }
            let r = start_subject(lab);
            assert!(matches!(r, Some((204 | 304, _))), "{what}: start → {r:?}");
        }
        Op::Connect => {
            let r = join(lab, "fpb", SUBJECT);
            assert!(matches!(r, Some((200 | 403, _))), "{what}: connect → {r:?}");
        }
        Op::Disconnect => {
            let body = json!({"Container": SUBJECT});
            let r = call(&lab.sock(), "POST", "/networks/fpb/disconnect", Some(body));
            // 500 "is not connected" is Docker's answer when it already was disconnected
            assert!(
                matches!(r, Some((200 | 500, _))),
                "{what}: disconnect → {r:?}"
            );
        }
        Op::Stop => expect(
            lab,
            "POST",
            &format!("/containers/{SUBJECT}/stop?t=0"),
            None,
            &[204, 304],
            what,
        ),
        Op::Rm => expect(
            lab,
            "DELETE",
            &format!("/containers/{SUBJECT}?force=1"),
            None,
            &[204, 404],
            what,
        ),
    }
}

fn state_of(lab: &Lab, c: &str) -> Option<String> {
    let (st, v) = lab.api("GET", &format!("/containers/{c}/json"), None);
    (st == 200).then(|| v["State"]["Status"].as_str().unwrap().to_string())
}

/// What the operation promises, after the retry.
fn verify(lab: &Lab, op: Op, what: &str) {
    let peer = sandbox_of(lab, "peer");
    // `subj.fpa`, `subj.fpb`: the network's own answer (an unqualified name is answered by
    // the asker's first network that knows it)
    let names = |net: &str, want: Option<String>| {
        let q = format!("{SUBJECT}.{net}");
        let got = resolve(&peer, &q);
        assert_eq!(
            got,
            Vec::from_iter(want),
            "{what}: the peer's answer for {q}"
        );
    };
    match op {
        Op::NetCreate => assert_eq!(lab.inspect("fpnet")["Name"], "fpnet", "{what}"),
        Op::NetRm => {
            let (st, v) = lab.api("GET", "/networks/fpnet", None);
            assert_eq!(st, 404, "{what}: {v}");
        }
        Op::Run | Op::Start | Op::Connect | Op::Disconnect => {
            assert_eq!(state_of(lab, SUBJECT).as_deref(), Some("running"), "{what}");
            let a = ip_on(lab, SUBJECT, "fpa").expect("an address on fpa");
            let b = ip_on(lab, SUBJECT, "fpb");
            assert_eq!(b.is_some(), op == Op::Connect, "{what}: on fpb: {b:?}");
            names("fpa", Some(a));
            names("fpb", b);
        }
        Op::Stop | Op::Rm => {
            let want = (op == Op::Stop).then(|| "exited".to_string());
            assert_eq!(state_of(lab, SUBJECT), want, "{what}");
            names("fpa", None);
            names("fpb", None);
            assert_eq!(resolve(&peer, SUBJECT), Vec::<String>::new(), "{what}");
        }
    }
}

/// Back to the fixture's state.
fn cleanup(lab: &Lab, op: Op) {
    let what = format!("cleanup after {op:?}");
    match op {
        Op::NetCreate => expect(lab, "DELETE", "/networks/fpnet", None, &[204], &what),
        Op::NetRm | Op::Rm => {}
        _ => expect(
            lab,
            "DELETE",
            &format!("/containers/{SUBJECT}?force=1"),
            None,
            &[204],
            &what,
        ),
    }
}

/// Every failpoint of `op`: die there, restart, invariants, retry, promise, invariants.
fn campaign(op: Op) {
    let points = op.points();
    assert!(!points.is_empty(), "{op:?} has no failpoint");
    let mut fx = fixture();
    let t0 = Instant::now();
    check(&fx.lab, &format!("{op:?}: the fixture"));
    for point in &points {
        let what = format!("{op:?} killed at {point}");
        setup(&fx.lab, op);
        std::fs::write(&fx.armed, point).unwrap();
        perform(&fx.lab, op);
        let died = fx.lab.wait_died(Duration::from_secs(10));
        std::fs::write(&fx.armed, "").unwrap();
        assert!(died, "{op:?}: failpoint {point} was not reached");
        fx.lab.start_again();
        let lab = &fx.lab;
        check(lab, &what);
        retry(lab, op, &what);
        verify(lab, op, &what);
        let n = check(lab, &format!("{what}, after the retry"));
        cleanup(lab, op);
        eprintln!("{what}: survived ({n:?})");
    }
    check(&fx.lab, &format!("{op:?}: the end"));
    eprintln!(
        "{op:?}: {} failpoints, each killed, restarted, checked and retried, in {:?}",
        points.len(),
        t0.elapsed()
    );
}

/// berthd's start-up repair: each point with a crash whose leftovers make the next start
/// reach it (the operation, where it died first, then the repair point).
const REPAIRS: &[(&str, Op, &str)] = &[
    // the network's record without its bridge: the bridge is made again
    ("repair/bridge", Op::NetCreate, "network-create/stored"),
    // the bridge without its nft elements: added again
    ("repair/firewall", Op::NetCreate, "network-create/bridge"),
    // the bridge of a network the store forgot: removed
    ("repair/orphan-bridge", Op::NetRm, "network-rm/stored"),
    // a connect's record without its veth: the record dropped
    (
        "repair/endpoints-stored",
        Op::Connect,
        "connect/dns-listener",
    ),
    // a disconnect's veth without its record: the veth removed
    ("repair/orphan-veth", Op::Disconnect, "disconnect/stored"),
    // a running container with a published port: followed again, its port kept
    ("repair/ports", Op::Connect, "connect/live"),
    ("repair/resumed", Op::Connect, "connect/live"),
    // the container ended while berthd was down: its exit handled at start
    ("repair/exited", Op::Stop, "unpublish/nft"),
    // a stopped container's record written, its cleanup not done
    ("repair/cleaned", Op::Stop, "exit/stored"),
];

/// A crash during berthd's own repair: the operation dies at its point, the next berthd dies
/// at the repair point, a third starts; the invariants hold and the operation, retried,
/// succeeds and leaves what it promises.
#[test]
fn a_crash_during_the_start_up_repair() {
    let mut fx = fixture();
    let t0 = Instant::now();
    check(&fx.lab, "repair: the fixture");
    for &(repair, op, point) in REPAIRS {
        let what = format!("{op:?} killed at {point}, then the repair at {repair}");
        setup(&fx.lab, op);
        std::fs::write(&fx.armed, point).unwrap();
        perform(&fx.lab, op);
        let died = fx.lab.wait_died(Duration::from_secs(10));
        assert!(died, "{what}: failpoint {point} was not reached");
        std::fs::write(&fx.armed, repair).unwrap();
        let died = fx.lab.start_to_die();
        std::fs::write(&fx.armed, "").unwrap();
        assert!(died, "{what}: the repair did not reach {repair}");
        fx.lab.start_again();
        let lab = &fx.lab;
        check(lab, &what);
        retry(lab, op, &what);
        verify(lab, op, &what);
        let n = check(lab, &format!("{what}, after the retry"));
        cleanup(lab, op);
        eprintln!("{what}: survived ({n:?})");
    }
    check(&fx.lab, "repair: the end");
    eprintln!(
        "{} repair failpoints, each reached after a crash, killed there, restarted, checked and retried, in {:?}",
        REPAIRS.len(),
        t0.elapsed()
    );
}

#[test]
fn every_failpoint_is_on_the_path_of_an_operation() {
    // the overlays' points: tests/tests/overlay_crash.rs
    for p in POINTS.iter().filter(|p| !p.starts_with("overlay-")) {
        assert!(
            OPS.iter().any(|op| op.points().contains(p)) || REPAIRS.iter().any(|(r, ..)| r == p),
            "failpoint {p} belongs to no operation of the campaign"
        );
    }
    let cases: usize = OPS.iter().map(|op| op.points().len()).sum();
    eprintln!(
        "{} failpoints, {cases} (operation, failpoint) cases, {} repair cases",
        POINTS.len(),
        REPAIRS.len()
    );
}

#[test]
fn network_create() {
    campaign(Op::NetCreate);
}

#[test]
fn network_rm() {
    campaign(Op::NetRm);
}

#[test]
fn run() {
    campaign(Op::Run);
}

#[test]
fn start() {
    campaign(Op::Start);
}

#[test]
fn connect() {
    campaign(Op::Connect);
}

#[test]
fn disconnect() {
    campaign(Op::Disconnect);
}

#[test]
fn stop() {
    campaign(Op::Stop);
}

#[test]
fn rm() {
    campaign(Op::Rm);
}

/// Found by the campaign: after a crash the embedded DNS listened on new ports, but conntrack
/// kept sending a flow it had seen (one source port, a resolver retrying) to the dead
/// daemon's port for as long as the client kept retrying. The new daemon binds the old ports.
#[test]
fn a_dns_flow_seen_before_a_crash_is_answered_after_it() {
    use berth_e2e::dns::{query, read_reply};
    use berth_e2e::net::in_netns;
    use hickory_proto::rr::RecordType;

    let mut lab = Lab::start();
    lab.net("fpdns");
    for name in ["asker", "target"] {
        let body = json!({"Image": "busybox", "Cmd": ["sleep", "3600"],
            "HostConfig": {"NetworkMode": "fpdns"}});
        let path = format!("/containers/create?name={name}");
        expect(&lab, "POST", &path, Some(body), &[201], name);
        let path = format!("/containers/{name}/start");
        expect(&lab, "POST", &path, None, &[204], name);
    }
    let want = ip_on(&lab, "target", "fpdns").unwrap();
    let sandbox = sandbox_of(&lab, "asker");
    // one source port, three tries a second apart: a resolver's retries
    let ask = |sandbox: PathBuf| {
        in_netns(&sandbox, || {
            let s = std::net::UdpSocket::bind("0.0.0.0:45353").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let q = query("target", RecordType::A);
            let mut buf = [0u8; 512];
            for _ in 0..3 {
                s.send_to(&q, "127.0.0.11:53").unwrap();
                if let Ok(n) = s.recv(&mut buf) {
                    return Some(read_reply(&buf[..n]).answers);
                }
            }
            None
        })
    };
    assert_eq!(ask(sandbox.clone()), Some(vec![want.clone()]));
    lab.kill9();
    lab.start_again();
    assert_eq!(ask(sandbox), Some(vec![want]), "after the crash");
}
