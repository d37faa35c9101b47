//! Issue 6's exercises 1, 3, 4 and 6 end to end, each through `berth compose` and through the
//! real docker-compose 1.29.2 against berthd; idempotent `up`, `down` removing exactly what
//! `up` made, the two clients managing each other's projects, and refused files changing
//! nothing. (Exercises 2 and 5, which need the embedded DNS and port publishing, are in
//! compose_dns_ports.rs.)

use berth_e2e::compose::{address, container_names, ids, inspect, Project, Tool};
use berth_e2e::{Lab, OutputExt};
use serde_json::Value;
use std::time::Duration;

const SERVER_CMD: &str = r#"sh -c "while true; do echo hello | nc -l -p 5000; done""#;

fn ex1() -> String {
    format!(
        "version: \"3.8\"\nservices:\n  server:\n    image: busybox\n    command: {SERVER_CMD}\n  client:\n    image: busybox\n    command: sleep 1d\n    depends_on: [server]\n"
    )
}

fn network_names(lab: &Lab) -> Vec<String> {
    lab.network_names(None)
}

/// `down` leaves no container of the project and none of its networks.
fn assert_down(p: &Project, networks: &[&str]) {
    let out = p.ok(&["down", "-t", "1"]);
    assert_eq!(container_names(p.lab), Vec::<String>::new(), "{out}");
    for n in networks {
        assert!(
            !network_names(p.lab).contains(&n.to_string()),
            "{n} left after down: {out}"
        );
    }
    assert!(p.lab.veths_left().is_empty(), "veths left after down");
}

fn exercise1(tool: Tool) {
    let lab = Lab::start();
    let p = Project::new(&lab, tool, "ex1", &[("docker-compose.yml", &ex1())]);
    p.ok(&["up", "-d"]);
    // the project's default network, with both containers and their addresses
    assert!(network_names(&lab).contains(&"ex1_default".to_string()));
    let ls = lab.cli(&["network", "ls"]).ok();
    assert!(ls.contains("ex1_default"), "{ls}");
    let net = lab.inspect("ex1_default");
    assert_eq!(net["Labels"]["com.docker.compose.project"], "ex1");
    assert_eq!(net["Labels"]["com.docker.compose.network"], "default");
    let eps: Vec<&Value> = net["Containers"].as_object().unwrap().values().collect();
    let mut names: Vec<&str> = eps.iter().map(|e| e["Name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["ex1_client_1", "ex1_server_1"]);
    let server_ip = address(&lab, "ex1_server_1", "ex1_default");
    let listed = eps.iter().find(|e| e["Name"] == "ex1_server_1").unwrap()["IPv4Address"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(listed.split('/').next().unwrap(), server_ip);
    // `hostname -i` in the server is that address; the client reaches it with nc
    let hi = p.exec_until("server", "hostname -i", Duration::from_secs(5));
    assert_eq!(hi.trim(), server_ip);
    let got = p.exec_until(
        "client",
        &format!("nc -w 2 {server_ip} 5000 </dev/null"),
        Duration::from_secs(10),
    );
    assert_eq!(got.trim(), "hello");
    // compose's labels, and the service name as an alias on the network
    let c = inspect(&lab, "ex1_client_1");
    let labels = &c["Config"]["Labels"];
    assert_eq!(labels["com.docker.compose.service"], "client");
    assert_eq!(labels["com.docker.compose.container-number"], "1");
    assert_eq!(labels["com.docker.compose.oneoff"], "False");
    assert_eq!(
        labels["com.docker.compose.config-hash"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    let aliases = &c["NetworkSettings"]["Networks"]["ex1_default"]["Aliases"];
    let short = &c["Id"].as_str().unwrap()[..12];
    for a in ["client", short] {
        assert!(
            aliases.as_array().unwrap().iter().any(|x| x == a),
            "alias {a} missing: {aliases}"
        );
    }
    // a second `up` changes nothing
    let before = ids(&lab, &["ex1_server_1", "ex1_client_1"]);
    let out = p.ok(&["up", "-d"]);
    assert!(out.contains("ex1_client_1 is up-to-date"), "{out}");
    assert_eq!(ids(&lab, &["ex1_server_1", "ex1_client_1"]), before);
    let ps = p.ok(&["ps"]);
    assert!(
        ps.contains("ex1_server_1") && ps.contains("ex1_client_1"),
        "{ps}"
    );
    assert_down(&p, &["ex1_default"]);
}

#[test]
fn exercise1_default_network_berth() {
    exercise1(Tool::Berth);
}

#[test]
fn exercise1_default_network_docker_compose() {
    exercise1(Tool::DockerCompose);
}

const EX3: &str = r#"version: "3.8"
services:
  server:
    image: busybox
    command: sh -c "while true; do echo hello | nc -l -p 5000; done"
    networks:
      app_net:
        ipv4_address: 172.68.0.10
  client:
    image: busybox
    command: sleep 1d
    networks:
      app_net:
        ipv4_address: 172.68.0.11
networks:
  app_net:
    driver: bridge
    ipam:
      driver: default
      config:
        - subnet: 172.68.0.0/16
"#;

fn exercise3(tool: Tool) {
    let lab = Lab::start();
    let p = Project::new(&lab, tool, "ex3", &[("docker-compose.yml", EX3)]);
    p.ok(&["up", "-d"]);
    assert_eq!(lab.subnet_of("ex3_app_net"), "172.68.0.0/16");
    assert_eq!(address(&lab, "ex3_server_1", "ex3_app_net"), "172.68.0.10");
    assert_eq!(address(&lab, "ex3_client_1", "ex3_app_net"), "172.68.0.11");
    let hi = p.exec_until("client", "hostname -i", Duration::from_secs(5));
    assert_eq!(hi.trim(), "172.68.0.11");
    let got = p.exec_until(
        "client",
        "nc -w 2 172.68.0.10 5000 </dev/null",
        Duration::from_secs(10),
    );
    assert_eq!(got.trim(), "hello");
    let ping = p.ok(&[
        "exec",
        "-T",
        "client",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "172.68.0.10",
    ]);
    assert!(ping.contains("1 packets received"), "{ping}");
    assert_down(&p, &["ex3_app_net"]);
}

#[test]
fn exercise3_static_addresses_berth() {
    exercise3(Tool::Berth);
}

#[test]
fn exercise3_static_addresses_docker_compose() {
    exercise3(Tool::DockerCompose);
}

const EX4_SERVER: &str = r#"version: "3.8"
services:
  server:
    image: busybox
    command: sh -c "while true; do echo hello | nc -l -p 5000; done"
    network_mode: bridge
"#;
const EX4_CLIENT: &str = r#"version: "3.8"
services:
  client:
    image: busybox
    command: sleep 1d
    network_mode: bridge
"#;

fn exercise4(tool: Tool) {
    let lab = Lab::start();
    let p = Project::new(
        &lab,
        tool,
        "ex4",
        &[("server.yml", EX4_SERVER), ("client.yml", EX4_CLIENT)],
    )
    .with_files(&["server.yml", "client.yml"]);
    p.ok(&["up", "-d"]);
    let server_ip = address(&lab, "ex4_server_1", "bridge");
    address(&lab, "ex4_client_1", "bridge");
    assert!(
        !network_names(&lab).iter().any(|n| n.starts_with("ex4")),
        "no project network"
    );
    let c = inspect(&lab, "ex4_client_1");
    assert_eq!(c["HostConfig"]["NetworkMode"], "bridge");
    assert_eq!(
        c["Config"]["Labels"]["com.docker.compose.project.config_files"],
        "server.yml,client.yml"
    );
    let got = p.exec_until(
        "client",
        &format!("nc -w 2 {server_ip} 5000 </dev/null"),
        Duration::from_secs(10),
    );
    assert_eq!(got.trim(), "hello");
    assert_down(&p, &[]);
    assert!(network_names(&lab).contains(&"bridge".to_string()));
}

#[test]
fn exercise4_two_files_default_bridge_berth() {
    exercise4(Tool::Berth);
}

#[test]
fn exercise4_two_files_default_bridge_docker_compose() {
    exercise4(Tool::DockerCompose);
}

const EX6: &str = r#"version: "3.8"
services:
  web:
    image: busybox
    command: sh -c "mkdir -p /www && echo served-from-host-mode > /www/index.html && httpd -f -p 80 -h /www"
    network_mode: host
"#;

fn exercise6(tool: Tool) {
    let lab = Lab::start();
    let p = Project::new(&lab, tool, "ex6", &[("docker-compose.yml", EX6)]);
    p.ok(&["up", "-d"]);
    let c = inspect(&lab, "ex6_web_1");
    assert_eq!(c["HostConfig"]["NetworkMode"], "host");
    // the lab host's own port 80, on its loopback
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        let mut cmd = std::process::Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &lab.ns,
            "busybox",
            "wget",
            "-q",
            "-O",
            "-",
            "http://127.0.0.1:80/",
        ]);
        let o = berth_e2e::run(&mut cmd, Duration::from_secs(10));
        if o.status.success() {
            break o.out();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no answer on the host's port 80: {}",
            o.err()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(body.trim(), "served-from-host-mode");
    assert_down(&p, &[]);
}

#[test]
fn exercise6_host_network_berth() {
    exercise6(Tool::Berth);
}

#[test]
fn exercise6_host_network_docker_compose() {
    exercise6(Tool::DockerCompose);
}

/// Each client sees the other's containers as its own and up to date, and removes them.
#[test]
fn clients_manage_each_others_projects() {
    let lab = Lab::start();
    let files = [("docker-compose.yml", ex1())];
    let files: Vec<(&str, &str)> = files.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let berth = Project::new(&lab, Tool::Berth, "ex1", &files);
    let dc = Project {
        lab: &lab,
        tool: Tool::DockerCompose,
        dir: berth.dir.clone(),
        files: Vec::new(),
    };
    berth.ok(&["up", "-d"]);
    let made = ids(&lab, &["ex1_server_1", "ex1_client_1"]);
    let out = dc.ok(&["up", "-d"]);
    assert!(
        out.contains("ex1_server_1 is up-to-date") && out.contains("ex1_client_1 is up-to-date"),
        "{out}"
    );
    assert_eq!(ids(&lab, &["ex1_server_1", "ex1_client_1"]), made);
    let ps = dc.ok(&["ps"]);
    assert!(ps.contains("ex1_client_1"), "{ps}");
    assert_down(&dc, &["ex1_default"]);

    dc.ok(&["up", "-d"]);
    let made = ids(&lab, &["ex1_server_1", "ex1_client_1"]);
    let out = berth.ok(&["up", "-d"]);
    assert!(out.contains("ex1_client_1 is up-to-date"), "{out}");
    assert_eq!(ids(&lab, &["ex1_server_1", "ex1_client_1"]), made);
    // a changed service is recreated, the other left alone
    std::fs::write(
        berth.dir.join("docker-compose.yml"),
        ex1().replace("sleep 1d", "sleep 2d"),
    )
    .unwrap();
    let out = berth.ok(&["up", "-d", "-t", "1"]);
    assert!(out.contains("Recreating ex1_client_1"), "{out}");
    let now = ids(&lab, &["ex1_server_1", "ex1_client_1"]);
    assert_eq!(now[0], made[0]);
    assert_ne!(now[1], made[1]);
    let out = dc.ok(&["up", "-d"]);
    assert!(out.contains("ex1_client_1 is up-to-date"), "{out}");
    assert_down(&berth, &["ex1_default"]);
}

/// `run --rm` runs a one-off container on the project's network and removes it; `logs` and
/// `config` show the project; orphans are reported and removed on request.
#[test]
fn run_logs_config_and_orphans_berth() {
    let lab = Lab::start();
    let p = Project::new(&lab, Tool::Berth, "ex1", &[("docker-compose.yml", &ex1())]);
    let cfg = p.ok(&["config"]);
    assert!(
        cfg.contains("name: ex1") && cfg.contains("condition: service_started"),
        "{cfg}"
    );
    let out = p.ok(&[
        "run",
        "--rm",
        "-T",
        "client",
        "sh",
        "-c",
        "echo one-off; hostname -i",
    ]);
    assert!(out.contains("one-off"), "{out}");
    // the dependency was started, the one-off is gone
    assert_eq!(container_names(&lab), ["ex1_server_1"]);
    let logs = p.ok(&["logs"]);
    assert_eq!(logs.trim(), "", "the server printed nothing: {logs}");
    p.ok(&["up", "-d"]);
    let logs = p.ok(&["exec", "-T", "server", "sh", "-c", "echo via-exec"]);
    assert_eq!(logs.trim(), "via-exec");
    // docker compose's exec options: env, workdir, user, and -d returning at once while the
    // command goes on in the background
    let out = p.ok(&[
        "exec",
        "-T",
        "-e",
        "GREETING=hi",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "server",
        "sh",
        "-c",
        "echo $GREETING $(pwd) $(id -un)",
    ]);
    assert_eq!(out.trim(), "hi /tmp nobody");
    let t = std::time::Instant::now();
    let out = p.ok(&[
        "exec",
        "-d",
        "server",
        "sh",
        "-c",
        "sleep 2; echo late > /tmp/detached",
    ]);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(2),
        "-d waited: {out}"
    );
    assert_eq!(out.trim(), "", "-d prints nothing: {out}");
    p.exec_until(
        "server",
        "cat /tmp/detached",
        std::time::Duration::from_secs(10),
    );
    // the client leaves the file: an orphan
    std::fs::write(
        p.dir.join("docker-compose.yml"),
        format!("services:\n  server:\n    image: busybox\n    command: {SERVER_CMD}\n"),
    )
    .unwrap();
    let out = p.ok(&["up", "-d"]);
    assert!(
        out.contains("Found orphan containers (ex1_client_1)"),
        "{out}"
    );
    let out = p.ok(&["down", "-t", "1", "--remove-orphans"]);
    assert!(
        out.contains("Removing orphan container \"ex1_client_1\""),
        "{out}"
    );
    assert_eq!(container_names(&lab), Vec::<String>::new());
    assert!(!network_names(&lab).contains(&"ex1_default".to_string()));
}

/// Refused projects: a clear message naming what is wrong, and nothing created.
#[test]
fn refused_projects_change_nothing_berth() {
    let lab = Lab::start();
    let cases: &[(&str, &str, &str)] = &[
        (
            "bad-key",
            "services:\n  web:\n    image: busybox\n    portz: [\"80\"]\n",
            "docker-compose.yml:4:5: services.web.portz: is not a key of the compose format here",
        ),
        (
            "bad-yaml",
            "services:\n  web: [image: busybox\n",
            "docker-compose.yml:",
        ),
        (
            "outside",
            EX3.replace("172.68.0.11", "10.1.2.3").leak(),
            "service \"client\": address 10.1.2.3 is outside the subnet of network \"app_net\" (172.68.0.0/16)",
        ),
        (
            "unknown-net",
            "services:\n  web:\n    image: busybox\n    networks: [nowhere]\n",
            "service \"web\": uses network \"nowhere\", which is not defined",
        ),
        (
            "unknown-svc",
            "services:\n  web:\n    image: busybox\n    depends_on: [db]\n",
            "service \"web\": depends on service \"db\", which is not defined",
        ),
        (
            "no-image",
            "services:\n  web:\n    image: nosuchimage\n",
            "service \"web\": image \"nosuchimage\" not found",
        ),
        (
            "external",
            "services:\n  web:\n    image: busybox\n    networks: [ext]\nnetworks:\n  ext:\n    external: true\n",
            "Network ext declared as external, but could not be found",
        ),
    ];
    for (name, file, want) in cases {
        let before = lab.snapshot();
        let p = Project::new(&lab, Tool::Berth, name, &[("docker-compose.yml", file)]);
        let err = p.run(&["up", "-d"]).fails();
        assert!(err.contains(want), "{name}: want {want:?} in:\n{err}");
        lab.assert_unchanged(&before, name);
        assert_eq!(container_names(&lab), Vec::<String>::new(), "{name}");
    }
}

/// A failure half-way (the daemon refuses the second service's address: the gateway's) rolls
/// back what this `up` created: the first service's container and the network.
#[test]
fn failed_up_rolls_back_berth() {
    let lab = Lab::start();
    let file = r#"services:
  first:
    image: busybox
    command: sleep 1d
    networks:
      app_net:
        ipv4_address: 172.68.0.10
  second:
    image: busybox
    command: sleep 1d
    depends_on: [first]
    networks:
      app_net:
        ipv4_address: 172.68.0.1
networks:
  app_net:
    ipam:
      config:
        - subnet: 172.68.0.0/16
"#;
    let before = lab.snapshot();
    let p = Project::new(&lab, Tool::Berth, "rb", &[("docker-compose.yml", file)]);
    let err = p.run(&["up", "-d"]).fails();
    assert!(err.contains("Cannot start service second"), "{err}");
    assert_eq!(container_names(&lab), Vec::<String>::new(), "{err}");
    lab.assert_unchanged(&before, "failed up");
    assert!(lab.veths_left().is_empty());
}
