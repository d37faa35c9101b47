//! Overlays through the real docker CLI (one host advertising by interface name), and the
//! cluster-store configuration errors.

use berth_e2e::cluster::{kernel, wait_for, wait_until, Cluster, ClusterOpts};
use berth_e2e::{fails, ok, Lab};
use std::process::Command;
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

#[test]
fn docker_cli_overlay_flow() {
    let c = Cluster::with(ClusterOpts {
        hosts: 2,
        advertise_iface: vec![1],
        ..ClusterOpts::default()
    });
    let (a, b) = (c.host(0), c.host(1));
    // host 1 was given `ul0:2376`: shown as given or as the address it stands for
    let (_, info) = b.api("GET", "/info", None);
    let adv = info["ClusterAdvertise"].as_str().unwrap_or("");
    assert!(
        adv == c.advertise(1) || adv == format!("{}:2376", c.host_ip(1)),
        "{info}"
    );

    let id = ok(
        &a.docker(&["network", "create", "-d", "overlay", "dnet"]),
        "docker network create -d overlay",
    );
    assert!(berth_e2e::is_hex(&id, 64), "{id:?}");
    wait_until(3 * SEC, "dnet listed on B", || {
        b.docker(&[
            "network",
            "ls",
            "--filter",
            "driver=overlay",
            "--format",
            "{{.Name}} {{.Driver}} {{.Scope}}",
        ])
        .stdout
            == b"dnet overlay global\n"
    });
    assert_eq!(
        ok(
            &b.docker(&[
                "network",
                "ls",
                "-q",
                "--no-trunc",
                "--filter",
                "scope=global"
            ]),
            "ls scope=global"
        ),
        id
    );
    assert_eq!(
        ok(
            &b.docker(&[
                "network",
                "inspect",
                "dnet",
                "--format",
                "{{.Scope}} {{.Driver}} {{(index .IPAM.Config 0).Subnet}}"
            ]),
            "inspect"
        ),
        "global overlay 10.0.0.0/24"
    );
    // docker network ls prints what berth network ls prints
    for args in [
        vec!["network", "ls"],
        vec!["network", "ls", "--filter", "scope=global"],
    ] {
        assert_eq!(ok(&b.docker(&args), "docker"), ok(&b.cli(&args), "berth"));
    }

    let script =
        "mkdir -p /www && echo hello from dweb > /www/index.html && exec httpd -f -p 80 -h /www";
    ok(
        &a.docker(&[
            "run",
            "-d",
            "--net",
            "dnet",
            "--name",
            "dweb",
            "--network-alias",
            "site",
            "busybox",
            "sh",
            "-c",
            script,
        ]),
        "docker run on A",
    );
    ok(
        &b.docker(&[
            "run", "-d", "--net", "dnet", "--name", "dpeer", "busybox", "sleep", "1d",
        ]),
        "docker run on B",
    );
    let page = wait_for(3 * SEC, "wget dweb from B", || {
        let o = b.docker(&[
            "run", "--rm", "--net", "dnet", "busybox", "wget", "-qO-", "site",
        ]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    });
    assert_eq!(page, "hello from dweb");
    ok(
        &b.docker(&["exec", "dpeer", "ping", "-c1", "-W2", "dweb.dnet"]),
        "docker exec ping",
    );
    // A's peer entry for B's container points at B's address, though B advertised ul0
    let dpeer = ok(
        &b.docker(&[
            "inspect",
            "--format",
            "{{(index .NetworkSettings.Networks \"dnet\").IPAddress}}",
            "dpeer",
        ]),
        "inspect dpeer",
    );
    let ons = kernel::overlay_ns(a, &id).expect("A's overlay namespace");
    let fdb = kernel::vxlan_fdb(&ons);
    assert!(
        fdb.contains(&(kernel::mac_for(&dpeer), c.host_ip(1))),
        "{fdb:?}"
    );

    // rm while A has an endpoint: refused, Docker's words
    let e = fails(&b.docker(&["network", "rm", "dnet"]));
    assert!(
        e.contains(&format!(
            "Error response from daemon: error while removing network: network dnet id {id} has active endpoints"
        )),
        "{e}"
    );
    ok(&a.docker(&["rm", "-f", "dweb"]), "rm dweb");
    ok(&b.docker(&["rm", "-f", "dpeer"]), "rm dpeer");
    wait_until(3 * SEC, "docker network rm dnet on B", || {
        b.docker(&["network", "rm", "dnet"]).status.success()
    });
    c.wait_network_gone_everywhere("dnet");
}

#[test]
fn overlay_needs_a_cluster_store() {
    let lab = Lab::start();
    let (st, v) = lab.api(
        "POST",
        "/networks/create",
        Some(berth_e2e::cluster::overlay_body("nostore")),
    );
    assert!(st >= 400, "{st} {v}");
    assert!(
        berth_e2e::msg(&v).to_lowercase().contains("cluster store"),
        "{st} {v}"
    );
    let e = fails(&lab.cli(&["network", "create", "-d", "overlay", "nostore"]));
    assert!(e.to_lowercase().contains("cluster store"), "{e}");
    let e = fails(&lab.docker(&["network", "create", "-d", "overlay", "nostore"]));
    assert!(e.to_lowercase().contains("cluster store"), "{e}");
    assert_eq!(lab.api("GET", "/networks/nostore", None).0, 404);
}

/// `consul://` and `zk://` stores: berthd refuses to start, naming etcd.
#[test]
fn other_stores_are_refused_at_start() {
    let lab = Lab::new_ns();
    for store in ["consul://127.0.0.1:8500", "zk://127.0.0.1:2181"] {
        let o = berth_e2e::run(
            Command::new("nsenter")
                .arg(format!("--net=/run/netns/{}", lab.ns))
                .arg("--")
                .arg(berth_e2e::berthd_bin())
                .arg("--data-root")
                .arg(lab.data_root())
                .arg("--exec-root")
                .arg(lab.exec_root())
                .arg("-H")
                .arg(lab.host_uri())
                .arg("--resolv-conf")
                .arg(lab.resolv_conf())
                .args(["--cluster-store", store])
                .args(["--cluster-advertise", "127.0.0.1:2376"]),
            Duration::from_secs(20),
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!o.status.success(), "{store}: berthd started: {text}");
        assert!(text.contains("etcd"), "{store}: {text}");
    }
}

/// `driver: overlay` in a compose file, with `berth compose` and with docker-compose 1.29.2:
/// the project's network is global, its service answers by name from another host, and
/// `down` removes the network everywhere.
#[test]
fn compose_driver_overlay() {
    use berth_e2e::compose::{Project, Tool};
    let c = Cluster::new(2);
    let (a, b) = (c.host(0), c.host(1));
    for (tool, name) in [(Tool::Berth, "ovb"), (Tool::DockerCompose, "ovd")] {
        let file = "version: \"3.7\"\n\
            services:\n  web:\n    image: busybox\n    networks: [front]\n    command: [\"sh\", \"-c\", \
            \"mkdir -p /www && echo hello from compose > /www/index.html && exec httpd -f -p 80 -h /www\"]\n\
            networks:\n  front:\n    driver: overlay\n    attachable: true\n";
        let p = Project::new(a, tool, name, &[("docker-compose.yml", file)]);
        p.ok(&["up", "-d"]);
        let net = format!("{name}_front");
        let id = a.inspect(&net)["Id"].as_str().unwrap().to_string();
        c.wait_network_everywhere(&net, &id);
        assert_eq!(b.inspect(&net)["Driver"], "overlay");
        let page = wait_for(5 * SEC, "wget web from B", || {
            let o = b.cli(&[
                "run", "--rm", "--net", &net, "busybox", "wget", "-qO-", "web",
            ]);
            o.status
                .success()
                .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
        });
        assert_eq!(page, "hello from compose", "{tool:?}");
        p.ok(&["down"]);
        c.wait_network_gone_everywhere(&net);
    }
}
