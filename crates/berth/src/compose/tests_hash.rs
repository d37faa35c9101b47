//! The config hash against what docker-compose 1.29.2 computed for the same files (taken from
//! its `Service.config_dict()` and `config_hash` against berthd, busybox built from the
//! static busybox).

use super::container::prioritized;
use super::hash::{config_dict, config_hash, dumps, Context};
use super::interpolate::Env;
use super::load::from_texts;
use super::model::Project;
use std::path::Path;

const IMAGE: &str = "sha256:7f0d5dc58a27c6254576225eb9371cee295abe66f84aed85e6fdadef12cdcc37";

fn project(name: &str, files: &[(&str, &str)]) -> Project {
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    from_texts(
        &texts,
        Path::new("/tmp").join(name).as_path(),
        None,
        Env::default(),
    )
    .unwrap()
    .project
}

fn hash_of(p: &Project, service: &str, net: &str) -> (String, String) {
    let s = p.service(service).unwrap();
    let nets = prioritized(p, s);
    let cx = Context {
        image_id: Some(IMAGE),
        net,
        networks: &nets,
    };
    (dumps(&config_dict(s, &cx)), config_hash(s, &cx))
}

const EX1: &str = r#"
version: "3.8"
services:
  server:
    image: busybox
    command: sh -c "while true; do echo hello | nc -l -p 5000; done"
  client:
    image: busybox
    command: sleep 1d
    depends_on: [server]
"#;

#[test]
fn default_network_project() {
    let p = project("ex1", &[("docker-compose.yml", EX1)]);
    let (dump, h) = hash_of(&p, "client", "ex1_default");
    assert_eq!(
        dump,
        r#"{"image_id":"sha256:7f0d5dc58a27c6254576225eb9371cee295abe66f84aed85e6fdadef12cdcc37","ipc_mode":null,"links":[],"net":"ex1_default","networks":{"ex1_default":{}},"options":{"command":"sleep 1d","depends_on":{"server":{"condition":"service_started"}},"device_requests":null,"image":"busybox","platform":null,"volumes":[]},"secrets":[],"volumes_from":[]}"#
    );
    assert_eq!(
        h,
        "2729e7c2dcff933198b82b47a4d6a96c088b948f3f84617abe68fcc234c92aff"
    );
    let (_, h) = hash_of(&p, "server", "ex1_default");
    assert_eq!(
        h,
        "83aa0b1128f70bd49b337448577a45275d5e2acd763803f6fa7d12bd007930dd"
    );
}

#[test]
fn static_addresses_and_network_modes() {
    let ex3 = r#"
services:
  server:
    image: busybox
    command: sh -c "while true; do echo hello | nc -l -p 5000; done"
    networks:
      app_net:
        ipv4_address: 172.68.0.10
networks:
  app_net:
    driver: bridge
    ipam: {driver: default, config: [{subnet: 172.68.0.0/16}]}
"#;
    let p = project("ex3", &[("docker-compose.yml", ex3)]);
    assert_eq!(
        hash_of(&p, "server", "ex3_app_net").1,
        "d7f076d89b7e45e3031a4cc4402fae4e143cb57bb9046b11ddf862b490d5495f"
    );
    let ex6 = "services:\n  web:\n    image: busybox\n    command: httpd -f -p 80 -h /etc\n    network_mode: host\n";
    let p = project("ex6", &[("docker-compose.yml", ex6)]);
    assert_eq!(
        hash_of(&p, "web", "host").1,
        "3e1159e434a5c7ae7287420830355240c35f2eeeeed21cee84dc72c83d7281c1"
    );
}

#[test]
fn every_supported_key() {
    let rich = r#"
version: "3.8"
services:
  a:
    image: busybox
    command: ["sleep", "1d"]
    entrypoint: /bin/sh -c
    environment:
      FOO: bar
      NUM: 1
      EMPTY:
    tty: true
    stdin_open: true
    hostname: ahost
    container_name: my-a
    ports:
      - "1234:80"
      - "127.0.0.1:5000-5001:6000-6001/udp"
      - 9000
      - target: 81
        published: 8081
        protocol: tcp
        mode: host
    expose: ["3000", 4000]
    dns: 8.8.8.8
    extra_hosts: ["h1:10.1.1.1", "h2=10.1.1.2"]
    mac_address: 02:42:ac:11:00:99
    networks:
      front:
        aliases: [x1, x2]
        ipv4_address: 10.5.0.5
      back:
    links: ["b:bee", "c"]
    depends_on: [b]
  b:
    image: busybox
    environment: ["A=1", "B"]
    network_mode: "service:c"
  c:
    image: busybox
    networks: [back]
networks:
  front:
    ipam:
      config: [{subnet: 10.5.0.0/24}]
  back:
    internal: true
    labels: {x: y}
"#;
    let p = project("rich", &[("docker-compose.yml", rich)]);
    let (dump, h) = hash_of(&p, "a", "rich_back");
    assert_eq!(
        dump,
        r#"{"image_id":"sha256:7f0d5dc58a27c6254576225eb9371cee295abe66f84aed85e6fdadef12cdcc37","ipc_mode":null,"links":[["b","bee"],["c",null]],"net":"rich_back","networks":{"rich_back":{},"rich_front":{"aliases":["x1","x2"],"ipv4_address":"10.5.0.5"}},"options":{"command":["sleep","1d"],"container_name":"my-a","depends_on":{"b":{"condition":"service_started"}},"device_requests":null,"dns":["8.8.8.8"],"entrypoint":"/bin/sh -c","environment":{"EMPTY":null,"FOO":"bar","NUM":1},"expose":["3000",4000],"extra_hosts":["h1:10.1.1.1","h2=10.1.1.2"],"hostname":"ahost","image":"busybox","mac_address":"02:42:ac:11:00:99","platform":null,"ports":[[80,1234,null,null,null],[6000,5000,"udp",null,"127.0.0.1"],[6001,5001,"udp",null,"127.0.0.1"],[9000,null,null,null,null],[81,8081,"tcp","host",null]],"stdin_open":true,"tty":true,"volumes":[]},"secrets":[],"volumes_from":[]}"#
    );
    assert_eq!(
        h,
        "1c1a1fe667405b0340dc401fa72a300ee4180e280de941a9a745dd0c90a9cab6"
    );
    assert_eq!(
        hash_of(&p, "b", "c").1,
        "d7854fc34ecd43c12a2e6d0874ec84587aa712d8cbb66a8e455a7a71891f218b"
    );
    assert_eq!(
        hash_of(&p, "c", "rich_back").1,
        "7759f75a9ebe8e177e16e2b7a7bbb44330fec6f22bea09ee2917558072af314b"
    );
}

#[test]
fn two_files_and_python_string_escapes() {
    let server = "services:\n  server:\n    image: busybox\n    command: sh -c \"while true; do echo hello | nc -l -p 5000; done\"\n    network_mode: bridge\n";
    let client = "services:\n  client:\n    image: busybox\n    command: sleep 1d\n    network_mode: bridge\n";
    let p = project("ex4", &[("server.yml", server), ("client.yml", client)]);
    assert_eq!(
        hash_of(&p, "client", "bridge").1,
        "36ae4b113f266c06f76210a2bcf1f9e7e1ddaa367a3555b6bfd9b340b3d07d79"
    );
    assert_eq!(
        hash_of(&p, "server", "bridge").1,
        "992b792243b98af202384233a672cb9b33cb283d7e75b5bee1ea2f21c0d59244"
    );
    // json.dumps' ensure_ascii: non-ASCII as \u escapes, astral characters as surrogate pairs
    use super::hash::Py;
    assert_eq!(
        dumps(&Py::Str("é\"\n😀".into())),
        r#""\u00e9\"\n\ud83d\ude00""#
    );
}
