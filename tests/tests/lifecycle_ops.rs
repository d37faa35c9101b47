//! Restart policies, pause/unpause, update and stats, end to end against a lab berthd with
//! the berth CLI, the docker CLI and the API: what the kernel shows (cgroup files, a frozen
//! process, interface counters) and what Docker answers.

use berth_e2e::cluster::{wait_state, wait_until};
use berth_e2e::{fails, ok, Lab};
use serde_json::{json, Value};
use std::time::Duration;

fn inspect(lab: &Lab, c: &str) -> Value {
    let (st, v) = lab.api("GET", &format!("/containers/{c}/json"), None);
    assert_eq!(st, 200, "{v}");
    v
}

/// A file of the container's cgroup for `controller` (v1), or of its unified cgroup (v2).
fn cgroup_file(pid: i64, controller: &str, v1: &str, v2: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let v2_root = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    for l in text.lines() {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let file = if v2_root && ctrls.is_empty() {
            format!("/sys/fs/cgroup{path}/{v2}")
        } else if ctrls.split(',').any(|c| c == controller) {
            format!("/sys/fs/cgroup/{controller}{path}/{v1}")
        } else {
            continue;
        };
        return std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .trim()
            .to_string();
    }
    panic!("no {controller} cgroup in {text}");
}

fn pid(lab: &Lab, c: &str) -> i64 {
    inspect(lab, c)["State"]["Pid"].as_i64().unwrap()
}

/// `cat /proc/uptime` at each start, then exit 3: the starts' times from the log.
#[test]
fn on_failure_restarts_exactly_twice_with_growing_gaps() {
    let lab = Lab::start();
    // "flaky" for the count, "slow" (4 restarts) to see the back-off grow past the noise of
    // a start (a few hundred ms on a loaded machine)
    for (name, policy) in [("flaky", "on-failure:2"), ("slow", "on-failure:4")] {
        let out = lab.cli(&[
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            "busybox",
            "sh",
            "-c",
            "cut -d' ' -f1 /proc/uptime; exit 3",
        ]);
        ok(&out, policy);
    }
    for (name, n) in [("flaky", 2), ("slow", 4)] {
        wait_state(Duration::from_secs(20), "all runs, then exited", || {
            let v = inspect(&lab, name);
            let done = v["State"]["Status"] == "exited" && v["RestartCount"] == n;
            (
                done,
                format!("{name}: {} {}", v["RestartCount"], v["State"]),
            )
        });
    }
    // nothing more comes: the limit holds
    std::thread::sleep(Duration::from_secs(1));
    let v = inspect(&lab, "flaky");
    assert_eq!(v["RestartCount"], 2, "{v}");
    assert_eq!(v["State"]["ExitCode"], 3);
    assert_eq!(v["State"]["Restarting"], false);
    assert_eq!(
        v["HostConfig"]["RestartPolicy"],
        json!({"Name": "on-failure", "MaximumRetryCount": 2})
    );
    let starts = |name: &str| -> Vec<f64> {
        let logs = ok(&lab.cli(&["logs", name]), "logs");
        logs.lines().map(|l| l.trim().parse().unwrap()).collect()
    };
    let t = starts("flaky");
    assert_eq!(t.len(), 3, "three runs: {t:?}");
    let (g1, g2) = (t[1] - t[0], t[2] - t[1]);
    // Docker's back-off: 100 ms, then 200 ms (uptime counts in 10 ms steps)
    assert!(g1 >= 0.09, "first gap {g1}");
    assert!(g2 >= 0.19, "second gap {g2} (first {g1})");
    let t = starts("slow");
    assert_eq!(t.len(), 5, "five runs: {t:?}");
    let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("gaps between starts: {gaps:.2?}");
    // 100, 200, 400, 800 ms plus the cost of a start each
    for (g, min) in gaps.iter().zip([0.09, 0.19, 0.39, 0.79]) {
        assert!(*g >= min, "gaps {gaps:?}");
    }
    assert!(gaps[3] > gaps[0] + 0.4, "growing: {gaps:?}");

    // Docker's refusals, nothing created
    let bad = [
        ("bogus", "invalid restart policy 'bogus'"),
        (
            "always:3",
            "maximum retry count cannot be used with restart policy 'always'",
        ),
        ("on-failure:-1", "maximum retry count cannot be negative"),
    ];
    for (p, msg) in bad {
        let err = fails(&lab.docker(&["create", "--restart", p, "busybox", "true"]));
        assert!(err.contains(msg), "--restart {p}: {err}");
    }
    let err = fails(&lab.cli(&["create", "--rm", "--restart", "always", "busybox", "true"]));
    assert!(
        err.contains("can't create 'AutoRemove' container with restart policy"),
        "{err}"
    );
    let err = fails(&lab.cli(&["create", "--restart", "on-failure:x", "busybox", "true"]));
    assert!(
        err.contains("maximum retry count must be an integer"),
        "{err}"
    );
    let (_, list) = lab.api("GET", "/containers/json?all=1", None);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
}

/// While waiting for its restart a container shows "restarting" and cannot be removed
/// without force; stop ends the waiting; a container stopped by hand stays down.
#[test]
fn restarting_containers_answer_as_docker() {
    let lab = Lab::start();
    ok(
        &lab.docker(&[
            "run",
            "-d",
            "--name",
            "loop",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "exit 1",
        ]),
        "run",
    );
    // after a few quick exits the back-off is long enough to catch it waiting
    wait_state(Duration::from_secs(15), "restarting", || {
        let v = inspect(&lab, "loop");
        let n = v["RestartCount"].as_i64().unwrap_or(0);
        (
            v["State"]["Status"] == "restarting" && n >= 4,
            v["State"].to_string(),
        )
    });
    let v = inspect(&lab, "loop");
    assert_eq!(v["State"]["Running"], true, "{v}");
    assert_eq!(v["State"]["Restarting"], true);
    let ps = ok(
        &lab.docker(&["ps", "--format", "{{.Names}} {{.Status}}"]),
        "ps",
    );
    assert!(ps.starts_with("loop Restarting (1)"), "{ps}");
    let (st, e) = lab.api("DELETE", "/containers/loop", None);
    assert_eq!(st, 409, "{e}");
    assert!(
        berth_e2e::msg(&e).contains("Stop the container before attempting removal"),
        "{e}"
    );
    ok(&lab.docker(&["stop", "loop"]), "stop");
    std::thread::sleep(Duration::from_secs(2));
    let v = inspect(&lab, "loop");
    assert_eq!(v["State"]["Status"], "exited", "stays stopped: {v}");
    let n = v["RestartCount"].as_i64().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inspect(&lab, "loop")["RestartCount"], n);

    // kill of a running `always` container: not restarted either (Docker)
    ok(
        &lab.cli(&[
            "run",
            "-d",
            "--name",
            "killed",
            "--restart",
            "always",
            "busybox",
            "sleep",
            "600",
        ]),
        "run",
    );
    ok(&lab.cli(&["kill", "killed"]), "kill");
    std::thread::sleep(Duration::from_secs(1));
    let v = inspect(&lab, "killed");
    assert_eq!(
        (v["State"]["Status"].as_str(), v["RestartCount"].as_i64()),
        (Some("exited"), Some(0)),
        "{v}"
    );
    ok(&lab.cli(&["rm", "-f", "loop", "killed"]), "rm");
}

#[test]
fn always_restarts_across_a_berthd_restart() {
    let mut lab = Lab::start();
    for (name, policy) in [
        ("al", "always"),
        ("us", "unless-stopped"),
        ("al2", "always"),
        ("no", "no"),
    ] {
        ok(
            &lab.cli(&[
                "run",
                "-d",
                "--name",
                name,
                "--restart",
                policy,
                "busybox",
                "sleep",
                "600",
            ]),
            name,
        );
    }
    // stopped by the user: `always` comes back at the next daemon start, `unless-stopped` not
    ok(&lab.cli(&["stop", "-t", "0", "us", "al2"]), "stop");
    let p_al = pid(&lab, "al");
    let p_no = pid(&lab, "no");
    lab.stop();
    // both die while berthd is down
    for p in [p_al, p_no] {
        // SAFETY: plain kill(2) of a container process this test started
        unsafe { libc::kill(p as i32, libc::SIGKILL) };
    }
    wait_until(Duration::from_secs(5), "killed", || {
        !std::path::Path::new(&format!("/proc/{p_al}")).exists()
            && !std::path::Path::new(&format!("/proc/{p_no}")).exists()
    });
    lab.start_again();
    wait_state(Duration::from_secs(10), "al running again", || {
        let v = inspect(&lab, "al");
        (v["State"]["Status"] == "running", v["State"].to_string())
    });
    let v = inspect(&lab, "al");
    assert_ne!(v["State"]["Pid"].as_i64().unwrap(), p_al);
    assert_eq!(v["RestartCount"], 1, "{v}");
    wait_state(Duration::from_secs(10), "al2 running again", || {
        let v = inspect(&lab, "al2");
        (v["State"]["Status"] == "running", v["State"].to_string())
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(inspect(&lab, "us")["State"]["Status"], "exited");
    let no = inspect(&lab, "no");
    assert_eq!(no["State"]["Status"], "exited", "{no}");
    assert_eq!(no["RestartCount"], 0);
    // the count survives another daemon restart
    lab.restart();
    assert_eq!(inspect(&lab, "al")["RestartCount"], 1);
    ok(&lab.cli(&["rm", "-f", "al", "us", "al2", "no"]), "rm");
}

/// A loop writes a line every 100 ms: paused, the log does not grow (and the freezer cgroup
/// says frozen); unpaused, it grows again.
#[test]
fn pause_freezes_a_counting_loop_and_unpause_resumes_it() {
    let lab = Lab::start();
    let id = ok(
        &lab.cli(&[
            "run",
            "-d",
            "--name",
            "counter",
            "busybox",
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done",
        ]),
        "run",
    );
    let lines = || ok(&lab.cli(&["logs", "counter"]), "logs").lines().count();
    wait_until(Duration::from_secs(5), "counting", || lines() > 3);
    assert_eq!(ok(&lab.cli(&["pause", "counter"]), "pause"), "counter");
    let p = pid(&lab, "counter");
    let frozen = cgroup_file(p, "freezer", "freezer.state", "cgroup.freeze");
    assert!(frozen == "FROZEN" || frozen == "1", "freezer: {frozen}");
    let v = inspect(&lab, "counter");
    assert_eq!(
        (
            &v["State"]["Status"],
            &v["State"]["Running"],
            &v["State"]["Paused"]
        ),
        (&json!("paused"), &json!(true), &json!(true)),
        "{v}"
    );
    let ps = ok(
        &lab.docker(&["ps", "--format", "{{.Status}}|{{.State}}"]),
        "ps",
    );
    assert!(ps.ends_with("(Paused)|paused"), "{ps}");
    let n1 = lines();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lines(), n1, "a paused loop does not count");
    // Docker's answers while paused
    let (st, e) = lab.api("POST", "/containers/counter/pause", None);
    assert_eq!(
        (st, berth_e2e::msg(&e)),
        (409, format!("Container {id} is already paused"))
    );
    let err = fails(&lab.docker(&["exec", "counter", "true"]));
    assert!(
        err.contains("Container counter is paused, unpause the container before exec"),
        "{err}"
    );
    let err = fails(&lab.docker(&["rm", "counter"]));
    assert!(
        err.contains("You cannot remove a paused container"),
        "{err}"
    );

    assert_eq!(
        ok(&lab.docker(&["unpause", "counter"]), "unpause"),
        "counter"
    );
    let v = inspect(&lab, "counter");
    assert_eq!(
        (&v["State"]["Status"], &v["State"]["Paused"]),
        (&json!("running"), &json!(false))
    );
    wait_until(Duration::from_secs(5), "counting again", || {
        lines() > n1 + 3
    });
    let (st, e) = lab.api("POST", "/containers/counter/unpause", None);
    assert_eq!(
        (st, berth_e2e::msg(&e)),
        (500, format!("Container {id} is not paused"))
    );
    // a paused container still stops (the SIGKILL thaws it)
    ok(&lab.cli(&["pause", "counter"]), "pause");
    ok(&lab.cli(&["stop", "-t", "1", "counter"]), "stop");
    let v = inspect(&lab, "counter");
    assert_eq!(
        (&v["State"]["Status"], &v["State"]["Paused"]),
        (&json!("exited"), &json!(false)),
        "{v}"
    );
    let (st, _) = lab.api("POST", "/containers/counter/pause", None);
    assert_eq!(st, 409);
    ok(&lab.cli(&["rm", "counter"]), "rm");
}

/// The first `n` readings of `GET /containers/{c}/stats` (streamed, chunked).
fn stream_readings(lab: &Lab, c: &str, n: usize) -> Vec<Value> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(lab.sock()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /v1.41/containers/{c}/stats HTTP/1.1\r\nHost: berth\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let text = String::from_utf8_lossy(&buf).to_string();
        let found: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
            .filter(|v| v.get("read").is_some())
            .collect();
        if found.len() >= n {
            return found;
        }
        let k = s.read(&mut chunk).expect("a reading each second");
        assert!(k > 0, "stream ended early: {text}");
        buf.extend_from_slice(&chunk[..k]);
    }
}

fn rx_bytes(lab: &Lab, c: &str) -> u64 {
    let (st, v) = lab.api(
        "GET",
        &format!("/containers/{c}/stats?stream=false&one-shot=true"),
        None,
    );
    assert_eq!(st, 200, "{v}");
    v["networks"]["eth0"]["rx_bytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("{v}"))
}

/// Traffic between two containers shows in the receiver's `networks` counters; the rest of
/// Docker's document is there, and the CLI's table reads it.
#[test]
fn stats_show_rx_bytes_growing_after_traffic() {
    let lab = Lab::start();
    lab.create_network(json!({"Name": "st"}));
    for n in ["sa", "sb"] {
        ok(
            &lab.cli(&[
                "run",
                "-d",
                "--name",
                n,
                "--network",
                "st",
                "busybox",
                "sleep",
                "600",
            ]),
            n,
        );
    }
    let before = rx_bytes(&lab, "sa");
    ok(
        &lab.cli(&[
            "exec", "sb", "ping", "-c", "20", "-i", "0.05", "-s", "1000", "sa",
        ]),
        "ping",
    );
    let after = rx_bytes(&lab, "sa");
    assert!(after >= before + 20 * 1000, "rx {before} → {after}");

    // stream=false: two readings a second apart (precpu filled); the shape docker-py checks
    let (st, v) = lab.api("GET", "/containers/sa/stats?stream=false", None);
    assert_eq!(st, 200);
    for k in [
        "read",
        "preread",
        "networks",
        "precpu_stats",
        "cpu_stats",
        "memory_stats",
        "blkio_stats",
        "pids_stats",
    ] {
        assert!(v.get(k).is_some(), "{k} missing: {v}");
    }
    assert_eq!(v["name"], "/sa");
    assert_eq!(v["pids_stats"]["current"], 1);
    assert!(v["memory_stats"]["usage"].as_u64().unwrap() > 0, "{v}");
    assert!(
        v["cpu_stats"]["system_cpu_usage"].as_u64().unwrap()
            > v["precpu_stats"]["system_cpu_usage"].as_u64().unwrap()
    );
    assert!(v["cpu_stats"]["online_cpus"].as_u64().unwrap() >= 1);
    assert_ne!(v["preread"], "0001-01-01T00:00:00Z");

    // the stream: a reading per second, each with the one before as `pre`
    let readings = stream_readings(&lab, "sa", 3);
    assert_eq!(readings[0]["preread"], "0001-01-01T00:00:00Z");
    assert_eq!(readings[1]["preread"], readings[0]["read"]);
    assert_eq!(readings[2]["precpu_stats"], readings[1]["cpu_stats"]);
    let out = ok(
        &lab.docker(&["stats", "--no-stream", "sa", "sb"]),
        "docker stats",
    );
    let mut rows = out.lines();
    let header = rows.next().unwrap();
    for col in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ] {
        assert!(header.contains(col), "{header}");
    }
    assert_eq!(rows.clone().count(), 2, "{out}");
    let mine = ok(&lab.cli(&["stats", "--no-stream", "sa"]), "berth stats");
    let row = mine.lines().nth(1).unwrap_or_else(|| panic!("{mine}"));
    assert!(
        row.contains(" sa ") && row.contains('%') && row.contains(" / "),
        "{mine}"
    );

    // a stopped container: Docker's zeroed reading
    ok(&lab.cli(&["stop", "-t", "0", "sb"]), "stop");
    let (st, v) = lab.api("GET", "/containers/sb/stats?stream=false", None);
    assert_eq!(
        (st, &v["read"]),
        (200, &json!("0001-01-01T00:00:00Z")),
        "{v}"
    );
    let (st, _) = lab.api("GET", "/containers/nope/stats?stream=false", None);
    assert_eq!(st, 404);
    ok(&lab.cli(&["rm", "-f", "sa", "sb"]), "rm");
}

/// Limits given at create are in the cgroup; `update` changes them there and in inspect.
#[test]
fn update_changes_the_cgroup_file() {
    let lab = Lab::start();
    ok(
        &lab.cli(&[
            "run",
            "-d",
            "--name",
            "lim",
            "--cpu-shares",
            "512",
            "-m",
            "64m",
            "busybox",
            "sleep",
            "600",
        ]),
        "run",
    );
    let p = pid(&lab, "lim");
    let shares = || cgroup_file(p, "cpu", "cpu.shares", "cpu.weight");
    let mem = || cgroup_file(p, "memory", "memory.limit_in_bytes", "memory.max");
    let v1 = !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if v1 {
        assert_eq!(shares(), "512");
    }
    assert_eq!(mem(), (64u64 << 20).to_string());
    let hc = &inspect(&lab, "lim")["HostConfig"];
    assert_eq!(
        (&hc["CpuShares"], &hc["Memory"], &hc["MemorySwap"]),
        (&json!(512), &json!(64 << 20), &json!(128 << 20))
    );

    let out = lab.cli(&[
        "update",
        "--cpu-shares",
        "256",
        "-m",
        "96m",
        "--pids-limit",
        "40",
        "--restart",
        "on-failure:3",
        "lim",
    ]);
    assert_eq!(ok(&out, "update"), "lim");
    if v1 {
        assert_eq!(shares(), "256");
    }
    assert_eq!(mem(), (96u64 << 20).to_string());
    assert_eq!(cgroup_file(p, "pids", "pids.max", "pids.max"), "40");
    let hc = &inspect(&lab, "lim")["HostConfig"];
    assert_eq!(
        (&hc["CpuShares"], &hc["Memory"], &hc["PidsLimit"]),
        (&json!(256), &json!(96 << 20), &json!(40))
    );
    assert_eq!(
        hc["RestartPolicy"],
        json!({"Name": "on-failure", "MaximumRetryCount": 3})
    );

    // through the API, Docker's reply; with the docker CLI too
    let (st, v) = lab.api(
        "POST",
        "/containers/lim/update",
        Some(json!({"CpuShares": 300})),
    );
    assert_eq!((st, v), (200, json!({"Warnings": null})));
    ok(
        &lab.docker(&[
            "update",
            "--cpu-quota",
            "50000",
            "--cpu-period",
            "100000",
            "lim",
        ]),
        "docker update",
    );
    if v1 {
        assert_eq!(
            cgroup_file(p, "cpu", "cpu.cfs_quota_us", "cpu.max"),
            "50000"
        );
    }
    // refused, nothing changed
    for (body, status, msg) in [
        (
            json!({"Memory": 1000}),
            400,
            "Minimum memory limit allowed is 6MB".to_string(),
        ),
        (
            json!({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}}),
            400,
            "maximum retry count cannot be used with restart policy 'always'".into(),
        ),
        (
            json!({"Memory": 512 << 20}),
            409,
            "Memory limit should be smaller than already set memoryswap limit".into(),
        ),
    ] {
        let (st, e) = lab.api("POST", "/containers/lim/update", Some(body.clone()));
        assert_eq!(st, status, "{body}: {e}");
        assert!(berth_e2e::msg(&e).contains(&msg), "{body}: {e}");
    }
    assert_eq!(mem(), (96u64 << 20).to_string());
    let hc = &inspect(&lab, "lim")["HostConfig"];
    assert_eq!(
        (&hc["CpuShares"], &hc["Memory"]),
        (&json!(300), &json!(96 << 20))
    );
    let (st, _) = lab.api("POST", "/containers/nope/update", Some(json!({})));
    assert_eq!(st, 404);

    // supplementary groups and the runtime
    let out = ok(
        &lab.cli(&[
            "run",
            "--rm",
            "--group-add",
            "1000",
            "--group-add",
            "1001",
            "busybox",
            "id",
            "-G",
        ]),
        "group-add",
    );
    assert!(
        out.split_whitespace().any(|g| g == "1000") && out.contains("1001"),
        "{out}"
    );
    let (_, info) = lab.api("GET", "/info", None);
    assert_eq!(info["Runtimes"]["runc"]["path"], "runc", "{info}");
    let err = fails(&lab.docker(&["create", "--runtime", "kata", "busybox", "true"]));
    assert!(err.contains("Unknown runtime specified kata"), "{err}");
    ok(&lab.cli(&["rm", "-f", "lim"]), "rm");
}

/// compose `restart:` through `berth compose` and docker-compose: the policy is on the
/// container and acts (a service that exits is started again).
#[test]
fn compose_restart_policy_is_applied() {
    use berth_e2e::compose::{Project, Tool};
    let lab = Lab::start();
    let file = "services:\n  web:\n    image: busybox\n    command: sh -c 'sleep 0.3; exit 2'\n    restart: on-failure:1\n  db:\n    image: busybox\n    command: sleep 600\n    restart: unless-stopped\n";
    for (tool, name) in [(Tool::Berth, "rb"), (Tool::DockerCompose, "rd")] {
        let p = Project::new(&lab, tool, name, &[("docker-compose.yml", file)]);
        p.ok(&["up", "-d"]);
        let web = format!("{name}_web_1");
        let db = format!("{name}_db_1");
        assert_eq!(
            inspect(&lab, &db)["HostConfig"]["RestartPolicy"],
            json!({"Name": "unless-stopped", "MaximumRetryCount": 0})
        );
        wait_state(
            Duration::from_secs(15),
            "web restarted once, then exited",
            || {
                let v = inspect(&lab, &web);
                let done = v["State"]["Status"] == "exited" && v["RestartCount"] == 1;
                (
                    done,
                    format!("{tool:?}: {} {}", v["RestartCount"], v["State"]),
                )
            },
        );
        p.ok(&["down"]);
    }
    // the same config hash as docker-compose: one tool's `up` keeps the other's container
    let dc = Project::new(
        &lab,
        Tool::DockerCompose,
        "rx",
        &[("docker-compose.yml", file)],
    );
    dc.ok(&["up", "-d", "db"]);
    let id = inspect(&lab, "rx_db_1")["Id"].clone();
    let bc = Project::new(&lab, Tool::Berth, "rx", &[("docker-compose.yml", file)]);
    let out = bc.ok(&["up", "-d", "db"]);
    assert!(out.contains("rx_db_1 is up-to-date"), "{out}");
    assert_eq!(inspect(&lab, "rx_db_1")["Id"], id);
    bc.ok(&["down"]);
}

/// `berth container prune` removes the stopped containers only, as docker reports it.
#[test]
fn container_prune_removes_stopped_containers() {
    let lab = Lab::start();
    let done = ok(
        &lab.cli(&["create", "--name", "gone", "busybox", "true"]),
        "create",
    );
    ok(
        &lab.cli(&["run", "-d", "--name", "stays", "busybox", "sleep", "600"]),
        "run",
    );
    // what Docker shows for a container created without limits
    let hc = &inspect(&lab, "gone")["HostConfig"];
    for (k, v) in [
        ("CpuShares", json!(0)),
        ("Memory", json!(0)),
        ("MemorySwap", json!(0)),
        ("PidsLimit", Value::Null),
        ("GroupAdd", Value::Null),
        ("Runtime", json!("runc")),
        (
            "RestartPolicy",
            json!({"Name": "no", "MaximumRetryCount": 0}),
        ),
    ] {
        assert_eq!(hc[k], v, "{k}: {hc}");
    }
    let out = ok(&lab.cli(&["container", "prune", "-f"]), "prune");
    assert_eq!(
        out,
        format!("Deleted Containers:\n{done}\n\nTotal reclaimed space: 0B")
    );
    let (_, list) = lab.api("GET", "/containers/json?all=1", None);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Names"][0].as_str().unwrap())
        .collect();
    assert_eq!(names, ["/stays"]);
    let out = ok(&lab.docker(&["container", "prune", "-f"]), "docker prune");
    assert_eq!(out, "Total reclaimed space: 0B");
    ok(&lab.cli(&["rm", "-f", "stays"]), "rm");
}
