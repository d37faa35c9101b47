//! Unit tests of loading: YAML positions, interpolation, keys, merge, validation.

use super::interpolate::{parse_dotenv, substitute, Env};
use super::load::{from_texts, normalize_name, Loaded};
use super::model::*;
use super::yaml::{self, Scalar};
use std::collections::BTreeMap;
use std::path::Path;

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::new(
        BTreeMap::new(),
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

fn load_env(files: &[(&str, &str)], e: Env) -> Result<Loaded, String> {
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    from_texts(&texts, Path::new("/srv/My App!"), None, e)
}

fn load(files: &[(&str, &str)]) -> Result<Project, String> {
    load_env(files, Env::default()).map(|l| l.project)
}

fn err(files: &[(&str, &str)]) -> String {
    load(files).expect_err("must be refused")
}

#[test]
fn scalars_resolve_like_pyyaml() {
    assert_eq!(Scalar::resolve("1", true), Scalar::Int(1));
    assert_eq!(Scalar::resolve("1", false), Scalar::Str("1".into()));
    assert_eq!(Scalar::resolve("yes", true), Scalar::Bool(true));
    assert_eq!(Scalar::resolve("~", true), Scalar::Null);
    assert_eq!(Scalar::resolve("0x1f", true), Scalar::Int(31));
    assert_eq!(Scalar::resolve("1.5", true), Scalar::Float("1.5".into()));
    assert_eq!(Scalar::resolve("80:80", true), Scalar::Str("80:80".into()));
    assert_eq!(
        Scalar::resolve("1.2.3.4", true),
        Scalar::Str("1.2.3.4".into())
    );
}

#[test]
fn yaml_tree_has_positions_anchors_and_merge_keys() {
    let t = "x-base: &base\n  image: busybox\n  tty: true\nservices:\n  a:\n    <<: *base\n    tty: false\n";
    let root = yaml::parse("f.yml", t).unwrap();
    let p = super::parse::file(&root).unwrap();
    let a = &p.services[0];
    assert_eq!(a.image.as_deref(), Some("busybox"));
    assert_eq!(
        a.tty,
        Some(false),
        "the mapping's own key wins over the merged one"
    );
    assert_eq!((a.at.line, &*a.at.file), (6, "f.yml"));
    let e = yaml::parse("f.yml", "a: 1\na: 2\n").unwrap_err();
    assert_eq!(e, "f.yml:2:1: duplicate key \"a\"");
    let e = yaml::parse("f.yml", "a: [1, 2\n").unwrap_err();
    assert!(e.starts_with("f.yml:"), "{e}");
    assert!(yaml::parse("f.yml", "a: 1\n---\nb: 2\n").is_err());
}

#[test]
fn unknown_and_unsupported_keys_named_with_file_and_line() {
    let e = err(&[(
        "server.yml",
        "services:\n  web:\n    image: busybox\n    portz: [\"80\"]\n    cap_add: [\"NET_ADMIN\"]\n    networks:\n      front:\n        ipv4_addres: 10.0.0.1\nnetworks:\n  front:\n    drivr: bridge\n",
    )]);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        [
            "server.yml:4:5: services.web.portz: is not a key of the compose format here",
            "server.yml:5:5: services.web.cap_add: is a compose key berth compose does not support",
            "server.yml:8:9: services.web.networks.front.ipv4_addres: is not a key of the compose format here",
            "server.yml:11:5: networks.front.drivr: is not a key of the compose format here",
        ]
    );
    let e = err(&[(
        "c.yml",
        "services:\n  web:\n    image: busybox\n    tty: maybe\n",
    )]);
    assert_eq!(
        e,
        "c.yml:4:10: services.web.tty: expected true or false, got a string"
    );
    let e = err(&[(
        "c.yml",
        "services:\n  web:\n    image: busybox\n    environment:\n      A: true\n",
    )]);
    assert!(
        e.starts_with("c.yml:5:10: services.web.environment.A: contains true"),
        "{e}"
    );
    // extension keys are the user's
    load(&[(
        "c.yml",
        "x-common: {a: 1}\nservices:\n  web:\n    image: busybox\n    x-note: hi\n",
    )])
    .unwrap();
}

#[test]
fn interpolation_forms() {
    let e = env(&[("SET", "v"), ("EMPTY", "")]);
    let mut unset = Vec::new();
    let mut sub = |s: &str| substitute(s, &e, &mut |v: &str| unset.push(v.to_string()));
    assert_eq!(sub("$SET-${SET}").unwrap(), "v-v");
    assert_eq!(sub("${EMPTY:-d} ${EMPTY-d} ${NOPE-d}").unwrap(), "d  d");
    assert_eq!(
        sub("${SET:+alt}${EMPTY:+alt}${EMPTY+alt}").unwrap(),
        "altalt"
    );
    assert_eq!(sub("${NOPE:-${SET}x}").unwrap(), "vx");
    assert_eq!(sub("$$SET $NOPE.").unwrap(), "$SET .");
    assert_eq!(
        sub("${EMPTY:?needs a value}").unwrap_err(),
        "required variable EMPTY is missing a value: needs a value"
    );
    assert_eq!(sub("${EMPTY?x}").unwrap(), "");
    assert!(sub("${SET").is_err());
    assert!(sub("${A B}").is_err());
    assert!(sub("cost $5").is_err());
    assert_eq!(unset, ["NOPE"]);
}

#[test]
fn interpolated_values_and_dotenv() {
    let dot =
        parse_dotenv("# c\nPORT=8080\nexport IMG='busy box'\nQ=\"a\\nb\"\nX=1 # note\n").unwrap();
    assert_eq!(dot["PORT"], "8080");
    assert_eq!(dot["IMG"], "busy box");
    assert_eq!(dot["Q"], "a\nb");
    assert_eq!(dot["X"], "1");
    assert!(parse_dotenv("nonsense\n").is_err());
    // the process environment wins over .env
    let e = Env::new(dot, [("PORT".to_string(), "9090".to_string())].into_iter());
    let l = load_env(
        &[("c.yml", "services:\n  web:\n    image: ${IMG:-busybox}\n    ports: [\"${PORT}:80\"]\n    environment: [\"HOME\", \"PORT\", \"UNSET_ONE\"]\n    command: echo $$HOME ${MISSING}\n")],
        e,
    )
    .unwrap();
    let s = &l.project.services[0];
    assert_eq!(s.image.as_deref(), Some("busy box"));
    assert_eq!(
        s.ports.as_ref().unwrap()[0].published,
        Some(Published::Port(9090))
    );
    assert_eq!(s.command, Some(Cmd::Shell("echo $HOME ".into())));
    let env = s.environment.clone().unwrap();
    assert_eq!(env[1], ("PORT".to_string(), Scalar::Str("9090".into())));
    assert_eq!(env[2], ("UNSET_ONE".to_string(), Scalar::Null));
    assert_eq!(
        l.warnings,
        ["The MISSING variable is not set. Defaulting to a blank string."]
    );
    let e = load_env(
        &[(
            "c.yml",
            "services:\n  web:\n    image: \"${IMG:?set IMG}\"\n",
        )],
        Env::default(),
    )
    .map(|_| ())
    .unwrap_err();
    assert_eq!(
        e,
        "c.yml:3:12: services.web.image: required variable IMG is missing a value: set IMG"
    );
}

#[test]
fn project_name() {
    assert_eq!(normalize_name("My App!_x-1"), "myapp_x-1");
    assert_eq!(load(&[("c.yml", "services: {}\n")]).unwrap().name, "myapp");
    assert_eq!(
        load(&[("c.yml", "name: Other\nservices: {}\n")])
            .unwrap()
            .name,
        "other"
    );
    let l = load_env(
        &[("c.yml", "name: other\n")],
        env(&[("COMPOSE_PROJECT_NAME", "fromenv")]),
    )
    .unwrap();
    assert_eq!(l.project.name, "fromenv");
    let texts = vec![("c.yml".to_string(), "services: {}\n".to_string())];
    let l = from_texts(&texts, Path::new("/x"), Some("Given"), Env::default()).unwrap();
    assert_eq!(l.project.name, "given");
    assert!(from_texts(&texts, Path::new("/x"), Some("!!"), Env::default()).is_err());
}

#[test]
fn ports_and_networks_short_and_long_forms() {
    let p = load(&[(
        "c.yml",
        "services:\n  web:\n    image: busybox\n    ports:\n      - \"1234:80\"\n      - \"127.0.0.1::81/udp\"\n      - \"8000-8001:90-91\"\n      - {target: 82, published: 8082, host_ip: \"::1\"}\n    networks:\n      n1: {aliases: [w], ipv4_address: 10.1.0.5, priority: 5}\n      n2:\nnetworks:\n  n1:\n    ipam: {config: [{subnet: 10.1.0.0/24}]}\n  n2: {}\n",
    )])
    .unwrap();
    let s = &p.services[0];
    let ports = s.ports.clone().unwrap();
    assert_eq!(ports.len(), 5);
    assert_eq!(
        (ports[0].target, ports[0].published.clone()),
        (80, Some(Published::Port(1234)))
    );
    assert_eq!(ports[0].protocol, None);
    assert_eq!(ports[1].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        (ports[1].published.clone(), ports[1].protocol.as_deref()),
        (None, Some("udp"))
    );
    assert_eq!(
        (ports[3].target, ports[3].published.clone()),
        (91, Some(Published::Port(8001)))
    );
    assert_eq!(ports[4].host_ip.as_deref(), Some("::1"));
    let nets = super::container::prioritized(&p, s);
    assert_eq!(
        nets[0].0, "myapp_n1",
        "the highest priority is the primary network"
    );
    assert_eq!(nets[0].1.aliases, Some(vec!["w".to_string()]));
    let e = err(&[(
        "c.yml",
        "services:\n  web:\n    image: busybox\n    ports: [\"99999:80\"]\n",
    )]);
    assert!(
        e.starts_with("c.yml:4:13: services.web.ports[0]: invalid hostPort"),
        "{e}"
    );
}

#[test]
fn files_merge_like_docker_compose() {
    let base = "services:\n  web:\n    image: busybox\n    command: a\n    environment: {A: \"1\", B: \"2\"}\n    expose: [\"90\", 80]\n    dns: 1.1.1.1\n    extra_hosts: [\"h:10.0.0.1\"]\n    ports: [\"8080:80\"]\n    networks:\n      n: {aliases: [z, a]}\nnetworks:\n  n: {driver: bridge}\n";
    let over = "services:\n  web:\n    command: b\n    environment: [\"B=3\", \"C=4\"]\n    expose: [80]\n    dns: [8.8.8.8]\n    extra_hosts: {g: 10.0.0.2}\n    ports: [\"8080:80\", \"9090:90\"]\n    networks:\n      n: {aliases: [b], ipv4_address: 10.9.0.9}\n  other:\n    image: busybox\nnetworks:\n  n:\n    ipam: {config: [{subnet: 10.9.0.0/16}]}\n";
    let p = load(&[("a.yml", base), ("b.yml", over)]).unwrap();
    let s = p.service("web").unwrap();
    assert_eq!(s.command, Some(Cmd::Shell("b".into())));
    assert_eq!(
        s.environment.clone().unwrap(),
        [
            ("A".to_string(), Scalar::Str("1".into())),
            ("B".to_string(), Scalar::Str("3".into())),
            ("C".to_string(), Scalar::Str("4".into())),
        ]
    );
    assert_eq!(
        s.expose,
        Some(vec![Scalar::Str("80".into()), Scalar::Str("90".into())])
    );
    assert_eq!(
        s.dns,
        Some(vec!["1.1.1.1".to_string(), "8.8.8.8".to_string()])
    );
    assert_eq!(
        s.extra_hosts,
        Some(ExtraHosts::Map(vec![
            ("h".into(), "10.0.0.1".into()),
            ("g".into(), "10.0.0.2".into())
        ]))
    );
    assert_eq!(s.ports.as_ref().unwrap().len(), 2);
    let n = &s.networks.as_ref().unwrap()[0].1;
    assert_eq!(
        n.aliases,
        Some(vec!["a".to_string(), "b".to_string(), "z".to_string()])
    );
    assert_eq!(n.ipv4_address.as_deref(), Some("10.9.0.9"));
    // a network named again is replaced whole
    assert_eq!(p.networks["n"].driver, None);
    assert_eq!(p.services.len(), 2);
}

#[test]
fn references_addresses_and_cycles_checked() {
    let net = "networks:\n  app:\n    ipam: {config: [{subnet: 172.68.0.0/16}]}\n";
    let e = err(&[("c.yml", &format!("services:\n  s:\n    image: busybox\n    networks:\n      app: {{ipv4_address: 10.0.0.5}}\n{net}"))]);
    assert_eq!(e, "c.yml:3:5: service \"s\": address 10.0.0.5 is outside the subnet of network \"app\" (172.68.0.0/16)");
    let e = err(&[(
        "c.yml",
        "services:\n  s:\n    image: busybox\n    networks: [nope]\n",
    )]);
    assert_eq!(e, "c.yml:3:5: service \"s\": uses network \"nope\", which is not defined under the top-level networks");
    let e = err(&[(
        "c.yml",
        "services:\n  s:\n    image: busybox\n    depends_on: [ghost]\n    links: [\"ghost2:x\"]\n",
    )]);
    assert!(
        e.contains("depends on service \"ghost\", which is not defined"),
        "{e}"
    );
    assert!(
        e.contains("links to service \"ghost2\", which is not defined"),
        "{e}"
    );
    let e = err(&[("c.yml", "services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    network_mode: \"service:a\"\n")]);
    assert_eq!(e, "circular dependency between services: a -> b -> a");
    let e = err(&[("c.yml", "services:\n  a:\n    image: busybox\n    networks:\n      default: {ipv4_address: 10.0.0.2}\n")]);
    assert!(e.contains("needs a subnet configured"), "{e}");
    let e = err(&[("c.yml", "services:\n  a:\n    image: busybox\n    ports: [\"80:80\"]\n  b:\n    image: busybox\n    ports: [\"80:8080\"]\n")]);
    assert!(
        e.contains("services \"a\" and \"b\" both publish host port 80/tcp"),
        "{e}"
    );
    let e = err(&[("c.yml", "services:\n  a:\n    command: x\n")]);
    assert!(e.contains("service \"a\": no image given"), "{e}");
}

#[test]
fn start_order_and_waves_follow_dependencies() {
    let p = load(&[(
        "c.yml",
        "services:\n  web:\n    image: busybox\n    depends_on: [db]\n    links: [cache]\n  db:\n    image: busybox\n  cache:\n    image: busybox\n  side:\n    image: busybox\n    network_mode: \"service:web\"\n",
    )])
    .unwrap();
    let order = super::validate::start_order(&p).unwrap();
    assert_eq!(order, ["cache", "db", "web", "side"]);
    assert_eq!(
        super::up::waves(&p, &order),
        [
            vec!["cache".to_string(), "db".to_string()],
            vec!["web".to_string()],
            vec!["side".to_string()]
        ]
    );
    let only = super::up::selection(&p, &["web".to_string()]).unwrap();
    assert_eq!(only, ["cache", "db", "web"]);
}

#[test]
fn config_output_loads_back_to_the_same_project() {
    let text = "services:\n  web:\n    image: busybox\n    command: [\"sh\", \"-c\", \"echo 'a: b' # x\"]\n    environment: {N: 1, S: \"yes\", E: null}\n    ports: [\"127.0.0.1:8080:80/udp\"]\n    networks:\n      n: {aliases: [w]}\n    extra_hosts: [\"h:10.0.0.1\"]\nnetworks:\n  n:\n    ipam: {config: [{subnet: 10.9.0.0/16, aux_addresses: {a: 10.9.0.3}}]}\n    labels: {k: \"true\"}\n";
    let p = load(&[("c.yml", text)]).unwrap();
    let out = super::emit::project(&p);
    let q = load(&[("config.yml", &out)]).unwrap();
    assert_eq!(super::emit::project(&q), out);
    let (a, b) = (p.service("web").unwrap(), q.service("web").unwrap());
    assert_eq!(a.command, b.command);
    let sorted = |e: &Option<Vec<(String, Scalar)>>| {
        let mut e = e.clone().unwrap();
        e.sort_by(|x, y| x.0.cmp(&y.0));
        e
    };
    assert_eq!(sorted(&a.environment), sorted(&b.environment));
    assert_eq!(a.ports, b.ports);
    assert_eq!(p.networks, q.networks);
}

#[test]
fn create_request_carries_what_dns_and_ports_need() {
    let p = load(&[(
        "c.yml",
        "services:\n  web:\n    image: busybox\n    command: httpd -f\n    entrypoint: [\"/bin/sh\", \"-c\"]\n    ports: [\"1234:80\"]\n    expose: [81]\n    hostname: h\n    dns: [10.0.0.53]\n    extra_hosts: [\"db=10.0.0.9\"]\n    networks:\n      default:\n        aliases: [www]\n",
    )])
    .unwrap();
    let s = p.service("web").unwrap();
    let w = super::container::Wiring {
        networks: super::container::prioritized(&p, s),
        mode: "myapp_default".into(),
        links: vec!["myapp_db_1:db".into()],
    };
    let labels = super::container::labels(&p, s, Some(1), Some("abc"), None);
    assert!(labels.contains(&"com.docker.compose.project=myapp".to_string()));
    assert!(labels.contains(&"com.docker.compose.config-hash=abc".to_string()));
    assert!(labels.contains(&"com.docker.compose.oneoff=False".to_string()));
    let b = super::container::spec(s, &w, labels, None).unwrap().body;
    assert_eq!(b["Cmd"], serde_json::json!(["httpd", "-f"]));
    assert_eq!(b["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(b["HostConfig"]["NetworkMode"], "myapp_default");
    assert_eq!(
        b["HostConfig"]["PortBindings"]["80/tcp"],
        serde_json::json!([{"HostIp": "", "HostPort": "1234"}])
    );
    assert!(b["ExposedPorts"].get("81/tcp").is_some());
    assert_eq!(
        b["HostConfig"]["Links"],
        serde_json::json!(["myapp_db_1:db"])
    );
    assert_eq!(
        b["HostConfig"]["ExtraHosts"],
        serde_json::json!(["db:10.0.0.9"])
    );
    let ep = &b["NetworkingConfig"]["EndpointsConfig"]["myapp_default"];
    assert_eq!(ep["Aliases"], serde_json::json!(["web", "www"]));
    assert_eq!(b["Labels"]["com.docker.compose.service"], "web");
}
