//! Issue 6's exercises 2 (service discovery by name and link alias) and 5 (a published port),
//! through `berth compose` and the real docker-compose 1.29.2, and a port already taken
//! refused with nothing left behind. These need the embedded DNS (issue 4) and port
//! publishing (issue 5): compose itself sends what they need (service-name and short-id
//! aliases on every network, links, PortBindings/ExposedPorts), as the other tests check.

use berth_e2e::compose::{container_names, inspect, Project, Tool};
use berth_e2e::{Lab, OutputExt};
use std::time::{Duration, Instant};

const EX2: &str = r#"version: "3.8"
services:
  server:
    image: busybox
    command: sh -c "while true; do echo hello | nc -l -p 5000; done"
    networks: [default]
  client:
    image: busybox
    command: sleep 1d
    networks: [default]
    links: ["server:target"]
"#;

fn exercise2(tool: Tool) {
    let lab = Lab::start();
    let p = Project::new(&lab, tool, "ex2", &[("docker-compose.yml", EX2)]);
    p.ok(&["up", "-d"]);
    let c = inspect(&lab, "ex2_client_1");
    let ep = &c["NetworkSettings"]["Networks"]["ex2_default"];
    assert!(
        ep["Links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "ex2_server_1:target"),
        "{ep}"
    );
    // by service name, and by the link's alias
    for name in ["server", "target", "ex2_server_1"] {
        let got = p.exec_until(
            "client",
            &format!("nc -w 2 {name} 5000 </dev/null"),
            Duration::from_secs(10),
        );
        assert_eq!(got.trim(), "hello", "via {name}");
    }
    let ping = p.ok(&[
        "exec", "-T", "client", "ping", "-c", "1", "-W", "2", "server",
    ]);
    assert!(ping.contains("1 packets received"), "{ping}");
    // the link alias is the client's own: the server does not know it
    let o = p.run(&["exec", "-T", "server", "nslookup", "target"]);
    assert!(
        !o.status.success() || !o.out().contains("Address"),
        "{}",
        o.out()
    );
    p.ok(&["down", "-t", "1"]);
    assert_eq!(container_names(&lab), Vec::<String>::new());
}

#[test]
fn exercise2_names_and_links_berth() {
    exercise2(Tool::Berth);
}

#[test]
fn exercise2_names_and_links_docker_compose() {
    exercise2(Tool::DockerCompose);
}

fn web(port: &str) -> String {
    format!(
        "version: \"3.8\"\nservices:\n  web:\n    image: busybox\n    command: sh -c \"mkdir -p /www && echo published > /www/index.html && httpd -f -p 80 -h /www\"\n    ports: [\"{port}:80\"]\n"
    )
}

/// `wget` from the lab host (inside its namespace) until it answers.
fn fetch(lab: &Lab, url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut cmd = std::process::Command::new("ip");
        cmd.args([
            "netns", "exec", &lab.ns, "busybox", "wget", "-q", "-O", "-", url,
        ]);
        let o = berth_e2e::run(&mut cmd, Duration::from_secs(10));
        if o.status.success() {
            return o.out();
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer: {}",
            o.err()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn exercise5(tool: Tool) {
    let lab = Lab::start();
    let p = Project::new(&lab, tool, "ex5", &[("docker-compose.yml", &web("1234"))]);
    p.ok(&["up", "-d"]);
    let c = inspect(&lab, "ex5_web_1");
    assert_eq!(
        c["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
        "1234"
    );
    assert_eq!(fetch(&lab, "http://127.0.0.1:1234/").trim(), "published");
    let ps = p.ok(&["ps"]);
    assert!(ps.contains("1234->80/tcp"), "{ps}");
    p.ok(&["down", "-t", "1"]);
    assert_eq!(container_names(&lab), Vec::<String>::new());
}

#[test]
fn exercise5_published_port_berth() {
    exercise5(Tool::Berth);
}

#[test]
fn exercise5_published_port_docker_compose() {
    exercise5(Tool::DockerCompose);
}

/// A second project wanting a host port the first holds: refused naming the service, and
/// nothing of the second project left.
#[test]
fn port_taken_refused_and_rolled_back_berth() {
    let lab = Lab::start();
    let first = Project::new(
        &lab,
        Tool::Berth,
        "first",
        &[("docker-compose.yml", &web("1234"))],
    );
    first.ok(&["up", "-d"]);
    let before = lab.snapshot();
    let second = Project::new(
        &lab,
        Tool::Berth,
        "second",
        &[("docker-compose.yml", &web("1234"))],
    );
    let err = second.run(&["up", "-d"]).fails();
    assert!(err.contains("Cannot start service web"), "{err}");
    assert!(err.contains("1234"), "the message names the port: {err}");
    assert_eq!(container_names(&lab), ["first_web_1"]);
    lab.assert_unchanged(&before, "second project");
    assert_eq!(fetch(&lab, "http://127.0.0.1:1234/").trim(), "published");
}
