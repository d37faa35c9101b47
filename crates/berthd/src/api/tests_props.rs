//! The Engine API through its real router (version prefixes included), fed generated
//! sequences of requests: every route, Docker's query keys, JSON bodies made of API field
//! names and hostile values. The daemon is real (netlink, nftables, redb, image store) in a
//! network namespace of the test's own, with one empty image and no OCI runtime: containers
//! are created and their starts get as far as the sandbox, the root filesystem and the ports
//! before runc is missing. Goal: no panic, no request slower than a bound, the daemon still
//! serving after, and no mount left once every container is removed.
//! `PROPTEST_CASES=N` runs a longer campaign than CI's.

use super::*;
use axum::body::Body;
use axum::http::Method;
use clap::Parser;
use proptest::prelude::*;
// proptest's, not axum's `any` route (both come in by glob)
use proptest::prelude::any;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};
use std::time::Duration;
use tower::ServiceExt;

/// What one request may take: most take milliseconds; a hang is what this looks for.
const SLOW: Duration = Duration::from_secs(20);

fn name() -> BoxedStrategy<String> {
    prop_oneof![
        Just("bridge".to_string()),
        Just("host".to_string()),
        Just("none".to_string()),
        Just("n1".to_string()),
        Just("n2".to_string()),
        Just("c1".to_string()),
        Just("c2".to_string()),
        Just("..".to_string()),
        Just("%2F".to_string()),
        Just(String::new()),
        "[a-zA-Z0-9_.-]{1,12}",
    ]
    .boxed()
}

fn path() -> impl Strategy<Value = String> {
    let tail = prop_oneof![
        Just("/_ping".to_string()),
        Just("/version".to_string()),
        Just("/info".to_string()),
        Just("/networks".to_string()),
        Just("/networks/".to_string()),
        Just("/networks/create".to_string()),
        Just("/networks/prune".to_string()),
        Just("/containers/create".to_string()),
        Just("/containers/json".to_string()),
        Just("/images/json".to_string()),
        Just("/images/create".to_string()),
        Just("/images/load".to_string()),
        Just("/nope".to_string()),
        name().prop_map(|n| format!("/networks/{n}")),
        (name(), prop_oneof![Just("connect"), Just("disconnect")])
            .prop_map(|(n, v)| format!("/networks/{n}/{v}")),
        (
            name(),
            prop_oneof![
                Just("json"),
                Just("start"),
                Just("stop"),
                Just("restart"),
                Just("kill"),
                Just("wait"),
                Just("attach"),
                Just("resize"),
                Just("logs"),
                Just("rename"),
                Just("exec"),
            ]
        )
            .prop_map(|(n, v)| format!("/containers/{n}/{v}")),
        name().prop_map(|n| format!("/containers/{n}")),
        (
            name(),
            prop_oneof![Just("start"), Just("resize"), Just("json")]
        )
            .prop_map(|(n, v)| format!("/exec/{n}/{v}")),
        (
            name(),
            prop_oneof![Just("json"), Just("tag"), Just("history"), Just("")]
        )
            .prop_map(|(n, v)| format!("/images/{n}/{v}")),
    ];
    let prefix = prop_oneof![
        4 => Just(String::new()),
        2 => Just("/v1.41".to_string()),
        1 => Just("/v1.12".to_string()),
        1 => Just("/v9.99".to_string()),
        1 => Just("/v1.0".to_string()),
        1 => Just("/v".to_string()),
    ];
    (prefix, tail).prop_map(|(p, t)| format!("{p}{t}"))
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        3 => Just(Method::POST),
        3 => Just(Method::GET),
        1 => Just(Method::DELETE),
        1 => Just(Method::HEAD),
        1 => Just(Method::PUT),
    ]
}

/// Strings an API body or query may hold, valid and not.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        Just("bridge".to_string()),
        Just("host".to_string()),
        Just("null".to_string()),
        Just("overlay".to_string()),
        Just("10.77.0.0/24".to_string()),
        Just("10.77.0.1".to_string()),
        Just("10.77.0.0/33".to_string()),
        Just("172.17.0.0/16".to_string()),
        Just("fd00:77::/64".to_string()),
        Just("::/0".to_string()),
        Just("0.0.0.0/0".to_string()),
        Just("256.1.1.1".to_string()),
        Just("80/tcp".to_string()),
        Just("53/udp".to_string()),
        Just("1-65535/tcp".to_string()),
        Just("65536".to_string()),
        Just("busybox".to_string()),
        Just("n1".to_string()),
        Just("SIGKILL".to_string()),
        Just("ctrl-p,ctrl-q".to_string()),
        Just("{\"name\":[\"x\"]}".to_string()),
        Just("{\"label\":{\"a=b\":true}}".to_string()),
        Just("{\"driver\":\"bridge\"}".to_string()),
        Just("[".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999".to_string()),
        ".{0,16}",
    ]
    .boxed()
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "Name",
        "Driver",
        "Internal",
        "Attachable",
        "EnableIPv6",
        "IPAM",
        "Config",
        "Subnet",
        "IPRange",
        "Gateway",
        "AuxiliaryAddresses",
        "Options",
        "Labels",
        "CheckDuplicate",
        "Container",
        "EndpointConfig",
        "IPAMConfig",
        "IPv4Address",
        "IPv6Address",
        "Aliases",
        "Links",
        "Force",
        "Image",
        "Cmd",
        "Entrypoint",
        "Env",
        "Hostname",
        "ExposedPorts",
        "HostConfig",
        "PortBindings",
        "HostIp",
        "HostPort",
        "NetworkMode",
        "PublishAllPorts",
        "Dns",
        "ExtraHosts",
        "NetworkingConfig",
        "EndpointsConfig",
        "AttachStdin",
        "Tty",
        "OpenStdin",
        "Detach",
        "DetachKeys",
        "MacAddress",
        "com.docker.network.bridge.name",
        "com.docker.network.driver.mtu",
    ])
    .prop_map(str::to_string)
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![Just(0i64), Just(1), Just(-1), Just(65535), Just(65536)].prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Bodies shaped like a network create or connect, so that requests get past the first checks
/// and reach IPAM, the store and the kernel.
fn shaped_body() -> impl Strategy<Value = Value> {
    prop_oneof![network_body(), connect_body()]
}

fn network_body() -> impl Strategy<Value = Value> {
    let ipam = (text(), text(), text(), prop::option::of(text())).prop_map(|(s, g, r, a)| {
        let mut c = json!({"Subnet": s, "Gateway": g, "IPRange": r});
        if let Some(a) = a {
            c["AuxiliaryAddresses"] = json!({"x": a});
        }
        c
    });
    (
        name(),
        prop::sample::select(vec!["bridge", "", "null", "host", "nope"]),
        prop::collection::vec(ipam, 0..3),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(text()),
    )
        .prop_map(|(n, d, cfg, internal, v6, mtu)| {
            let mut b = json!({
                "Name": n, "Driver": d, "Internal": internal, "EnableIPv6": v6,
                "IPAM": {"Driver": "default", "Config": cfg},
            });
            if let Some(m) = mtu {
                b["Options"] = json!({"com.docker.network.driver.mtu": m});
            }
            b
        })
}

fn container_body() -> impl Strategy<Value = Value> {
    (
        name(),
        prop::collection::vec((text(), text()), 0..3),
        any::<bool>(),
        prop::collection::vec((name(), text()), 0..2),
        any::<bool>(),
    )
        .prop_map(|(mode, ports, all, nets, tty)| {
            let bindings: Map<String, Value> = ports
                .into_iter()
                .map(|(p, h)| (p, json!([{"HostIp": "", "HostPort": h}])))
                .collect();
            let exposed: Map<String, Value> =
                bindings.keys().map(|k| (k.clone(), json!({}))).collect();
            let endpoints: Map<String, Value> = nets
                .into_iter()
                .map(|(n, a)| (n, json!({"Aliases": [a]})))
                .collect();
            json!({
                "Image": "busybox",
                "Cmd": ["sh"],
                "Tty": tty,
                "OpenStdin": tty,
                "ExposedPorts": exposed,
                "HostConfig": {
                    "NetworkMode": mode,
                    "PortBindings": bindings,
                    "PublishAllPorts": all,
                },
                "NetworkingConfig": {"EndpointsConfig": endpoints},
            })
        })
}

fn connect_body() -> impl Strategy<Value = Value> {
    (name(), text(), text()).prop_map(|(c, a, ip)| {
        json!({
            "Container": c,
            "Force": true,
            "EndpointConfig": {"Aliases": [a], "IPAMConfig": {"IPv4Address": ip}},
        })
    })
}

fn query() -> impl Strategy<Value = Vec<(String, String)>> {
    let k = prop::sample::select(vec![
        "filters",
        "force",
        "t",
        "signal",
        "detachKeys",
        "since",
        "until",
        "tail",
        "timestamps",
        "follow",
        "stdout",
        "stderr",
        "stdin",
        "stream",
        "all",
        "limit",
        "size",
        "name",
        "fromSrc",
        "fromImage",
        "tag",
        "repo",
        "changes",
        "condition",
        "v",
        "h",
        "w",
    ]);
    prop::collection::vec((k.prop_map(str::to_string), text()), 0..4)
}

#[derive(Debug, Clone)]
struct Req {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Value>,
    json_type: bool,
}

fn request() -> impl Strategy<Value = Req> {
    let post = |path: BoxedStrategy<String>, body: BoxedStrategy<Value>| {
        (path, body).prop_map(|(path, body)| Req {
            method: Method::POST,
            path,
            query: Vec::new(),
            body: Some(body),
            json_type: true,
        })
    };
    prop_oneof![
        3 => any_request(),
        2 => post(Just("/networks/create".to_string()).boxed(), network_body().boxed()),
        1 => post(
            (name(), prop::sample::select(vec!["connect", "disconnect"]))
                .prop_map(|(n, v)| format!("/networks/{n}/{v}"))
                .boxed(),
            connect_body().boxed(),
        ),
        1 => name().prop_map(|n| Req {
            method: Method::DELETE,
            path: format!("/networks/{n}"),
            query: Vec::new(),
            body: None,
            json_type: false,
        }),
        2 => (name(), container_body()).prop_map(|(n, body)| Req {
            method: Method::POST,
            path: "/containers/create".into(),
            query: vec![("name".into(), n)],
            body: Some(body),
            json_type: true,
        }),
        2 => (
            name(),
            prop::sample::select(vec!["start", "stop", "restart", "kill"])
        )
            .prop_map(|(n, v)| Req {
                method: Method::POST,
                path: format!("/containers/{n}/{v}"),
                query: Vec::new(),
                body: None,
                json_type: false,
            }),
        1 => name().prop_map(|n| Req {
            method: Method::DELETE,
            path: format!("/containers/{n}"),
            query: vec![("force".into(), "1".into())],
            body: None,
            json_type: false,
        }),
    ]
}

fn any_request() -> impl Strategy<Value = Req> {
    (
        method(),
        path(),
        query(),
        prop::option::weighted(0.8, prop_oneof![json_value(), shaped_body()]),
        prop::bool::weighted(0.9),
    )
        .prop_map(|(method, path, query, body, json_type)| Req {
            method,
            path,
            query,
            body,
            json_type,
        })
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Req {
    fn build(&self) -> Option<Request> {
        let mut uri = self.path.clone();
        if !self.query.is_empty() {
            let q: Vec<String> = self
                .query
                .iter()
                .map(|(k, v)| format!("{k}={}", encode(v)))
                .collect();
            uri = format!("{uri}?{}", q.join("&"));
        }
        let mut b = Request::builder().method(self.method.clone()).uri(uri);
        let body = match &self.body {
            Some(v) => {
                if self.json_type {
                    b = b.header("Content-Type", "application/json");
                }
                Body::from(serde_json::to_vec(v).ok()?)
            }
            None => Body::empty(),
        };
        b.body(body).ok()
    }
}

/// `f` on a thread of its own in a new network namespace, with a current-thread runtime.
fn in_new_netns(f: impl FnOnce(&tokio::runtime::Runtime) + Send + 'static) {
    let t = std::thread::spawn(move || {
        // SAFETY: unshare takes no pointers and moves only this thread.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        f(&rt)
    });
    if let Err(p) = t.join() {
        std::panic::resume_unwind(p)
    }
}

fn mounts_under(root: &std::path::Path) -> Vec<String> {
    let root = root.to_string_lossy();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(root.as_ref()))
        .map(str::to_string)
        .collect();
    v.sort_by_key(|m| std::cmp::Reverse(m.len()));
    v
}

#[test]
fn generated_requests_never_panic_or_hang() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: the daemon needs root (netlink, nftables) in its own namespace");
        return;
    }
    in_new_netns(|rt| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let arg = |p: &str| root.join(p).into_os_string();
        let args = crate::config::Args::parse_from([
            "berthd".into(),
            "--data-root".into(),
            arg("data"),
            "--exec-root".into(),
            arg("exec"),
            "--runtime".into(),
            "/nonexistent/runc".into(),
            "--resolv-conf".into(),
            arg("resolv.conf"),
        ] as [std::ffi::OsString; 9]);
        std::fs::write(root.join("resolv.conf"), "").unwrap();
        let instance = args.instance();
        let app = rt.block_on(async {
            let store = berth_net::store::Store::open(&args.data_root.join("berth.db")).unwrap();
            let osl = Arc::new(berth_net::osl::netlink::Netlink::new().unwrap());
            let fw = Arc::new(berth_net::firewall::Nftables::new(&instance).unwrap());
            let ctl = berth_net::Controller::start(
                args.net_config(&instance).unwrap(),
                store.clone(),
                osl,
                fw,
            )
            .await
            .unwrap();
            let images =
                berth_runtime::image::ImageStore::open(&args.data_root.join("image"), None)
                    .unwrap();
            // an empty archive (two zero blocks): an image with nothing in it
            let cmd = ["CMD [\"sh\"]".to_string()];
            images
                .import(&mut &[0u8; 1024][..], Some("busybox:latest"), &cmd)
                .unwrap();
            let runtime = berth_runtime::container::Runtime::new(
                args.runtime.clone(),
                args.data_root.join("containers"),
                args.exec_root.join("containers"),
            )
            .unwrap();
            let engine =
                crate::engine::Engine::start(ctl, Arc::new(images), Arc::new(runtime), store)
                    .await
                    .unwrap();
            let state = Arc::new(AppState::new(engine, &args, &instance));
            axum::middleware::from_fn(versioned).layer(routes(state))
        });
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(48);
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        // TestRunner takes an Fn: the tallies live in cells
        let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, usize>::new());
        let server_errors = std::cell::RefCell::new(Vec::new());
        let requests = std::cell::Cell::new(0usize);
        let seq = prop::collection::vec(request(), 1..12);
        let result = runner.run(&seq, |reqs| {
            for r in reqs {
                let Some(req) = r.build() else { continue };
                let resp = rt
                    .block_on(async { tokio::time::timeout(SLOW, app.clone().oneshot(req)).await })
                    .map_err(|_| TestCaseError::fail(format!("no answer within {SLOW:?}: {r:?}")))?
                    .unwrap_or_else(|e| match e {});
                let status = resp.status().as_u16();
                requests.set(requests.get() + 1);
                *statuses.borrow_mut().entry(status).or_default() += 1;
                if status >= 500 {
                    let body = rt
                        .block_on(axum::body::to_bytes(resp.into_body(), 1 << 20))
                        .unwrap_or_default();
                    server_errors.borrow_mut().push(format!(
                        "{} {} {:?} -> {status} {}",
                        r.method,
                        r.path,
                        r.query,
                        String::from_utf8_lossy(&body)
                    ));
                }
            }
            Ok(())
        });
        eprintln!(
            "requests: {}, statuses: {:?}",
            requests.get(),
            statuses.borrow()
        );
        for e in server_errors.borrow().iter() {
            eprintln!("{e}");
        }
        result.unwrap();
        // still serving, with its predefined networks
        let ping = Request::get("/_ping").body(Body::empty()).unwrap();
        let resp = rt.block_on(app.clone().oneshot(ping)).unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let ls = Request::get("/networks").body(Body::empty()).unwrap();
        let resp = rt.block_on(app.clone().oneshot(ls)).unwrap();
        let body = rt
            .block_on(axum::body::to_bytes(resp.into_body(), 1 << 24))
            .unwrap();
        let nets: Vec<Value> = serde_json::from_slice(&body).unwrap();
        assert!(nets.len() >= 3, "{}", json!(nets));
        // every container removed, nothing stays mounted (root filesystems, namespaces)
        let ls = Request::get("/containers/json?all=1")
            .body(Body::empty())
            .unwrap();
        let resp = rt.block_on(app.clone().oneshot(ls)).unwrap();
        let body = rt
            .block_on(axum::body::to_bytes(resp.into_body(), 1 << 24))
            .unwrap();
        let ctrs: Vec<Value> = serde_json::from_slice(&body).unwrap();
        for c in &ctrs {
            let id = c["Id"].as_str().unwrap();
            let rm = Request::delete(format!("/containers/{id}?force=1"))
                .body(Body::empty())
                .unwrap();
            let resp = rt.block_on(app.clone().oneshot(rm)).unwrap();
            assert_eq!(resp.status(), StatusCode::NO_CONTENT, "removing {id}");
        }
        let left = mounts_under(root);
        for m in &left {
            // cleaned up either way: the host must not keep them
            let _ = rustix::mount::unmount(m.as_str(), rustix::mount::UnmountFlags::DETACH);
        }
        assert!(
            left.is_empty(),
            "mounts left after removing every container: {left:?}"
        );
        eprintln!("containers created and removed: {}", ctrs.len());
    });
}
