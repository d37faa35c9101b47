//! Volumes, bind mounts, tmpfs and `docker cp` (issue 15), through the real docker CLI and
//! berth's, against a lab berthd.

use berth_e2e::Lab;
use std::process::Output;

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A ustar entry written by hand: the name is taken as given, `..` included.
fn entry(out: &mut Vec<u8>, name: &str, kind: u8, link: &str, data: &[u8]) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn finish(mut t: Vec<u8>) -> Vec<u8> {
    t.extend_from_slice(&[0u8; 1024]);
    t
}

#[test]
fn a_named_volume_is_shared_kept_across_restarts_and_refused_while_used() {
    let mut lab = Lab::start();
    assert_eq!(
        ok(&lab.docker(&["volume", "create", "--label", "k=v", "vol1"])),
        "vol1"
    );
    ok(&lab.docker(&[
        "run",
        "--rm",
        "-v",
        "vol1:/data",
        "busybox",
        "sh",
        "-c",
        "echo hi > /data/f",
    ]));
    // another container, through berth's CLI, sees the write
    assert_eq!(
        ok(&lab.cli(&[
            "run",
            "--rm",
            "-v",
            "vol1:/data",
            "busybox",
            "cat",
            "/data/f"
        ])),
        "hi"
    );
    // read-only: the write fails inside the container
    let ro = lab.docker(&[
        "run",
        "--rm",
        "-v",
        "vol1:/data:ro",
        "busybox",
        "sh",
        "-c",
        "echo x > /data/g",
    ]);
    assert!(!ro.status.success(), "{ro:?}");
    assert!(stderr(&ro).contains("Read-only file system"), "{ro:?}");

    let mp = ok(&lab.docker(&[
        "volume",
        "inspect",
        "-f",
        "{{.Mountpoint}} {{.Labels.k}}",
        "vol1",
    ]));
    assert_eq!(
        mp,
        format!("{}/volumes/vol1/_data v", lab.data_root().display())
    );
    assert_eq!(ok(&lab.cli(&["volume", "ls", "-q"])), "vol1");
    assert_eq!(
        ok(&lab.cli(&["volume", "ls", "--format", "{{.Driver}}/{{.Name}}"])),
        "local/vol1"
    );

    // in use by a created container: 409 with Docker's text, force or not
    let id = ok(&lab.docker(&["create", "-v", "vol1:/data", "busybox", "true"]));
    let (st, v) = lab.api("DELETE", "/volumes/vol1?force=1", None);
    assert_eq!(st, 409, "{v}");
    assert_eq!(
        v["message"],
        format!("remove vol1: volume is in use - [{id}]")
    );
    // ps finds it by the volume
    assert_eq!(
        ok(&lab.docker(&["ps", "-aq", "--no-trunc", "--filter", "volume=vol1"])),
        id
    );
    let mounts = lab.api("GET", &format!("/containers/{id}/json"), None).1["Mounts"].clone();
    assert_eq!(mounts[0]["Type"], "volume");
    assert_eq!(mounts[0]["Name"], "vol1");
    assert_eq!(mounts[0]["Mode"], "z");
    assert_eq!(mounts[0]["RW"], true);

    lab.restart();
    assert_eq!(
        ok(&lab.cli(&[
            "run",
            "--rm",
            "-v",
            "vol1:/data",
            "busybox",
            "cat",
            "/data/f"
        ])),
        "hi"
    );
    ok(&lab.docker(&["rm", &id]));
    assert_eq!(ok(&lab.cli(&["volume", "rm", "vol1"])), "vol1");
    let (st, v) = lab.api("GET", "/volumes/vol1", None);
    assert_eq!(
        (st, v["message"].as_str()),
        (404, Some("get vol1: no such volume"))
    );
    assert!(!lab.data_root().join("volumes/vol1").exists());

    // bad names: Docker's words, nothing made
    let (st, v) = lab.api(
        "POST",
        "/volumes/create",
        Some(serde_json::json!({"Name": "bad/name"})),
    );
    assert_eq!(st, 400, "{v}");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("includes invalid characters for a local volume name"));
    assert_eq!(ok(&lab.cli(&["volume", "ls", "-q"])), "");
}

#[test]
fn bind_mounts_tmpfs_and_their_inspect() {
    let lab = Lab::start();
    let host = tempfile::tempdir().unwrap();
    let dir = host.path().display().to_string();
    ok(&lab.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{dir}:/h"),
        "busybox",
        "sh",
        "-c",
        "echo b > /h/x",
    ]));
    assert_eq!(
        std::fs::read_to_string(host.path().join("x")).unwrap(),
        "b\n"
    );
    let ro = lab.docker(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={dir},dst=/h,readonly"),
        "busybox",
        "sh",
        "-c",
        "echo c > /h/y",
    ]);
    assert!(!ro.status.success(), "{ro:?}");
    assert!(!host.path().join("y").exists());
    // a missing bind source: made by -v, refused by --mount (Docker's text)
    let missing = host.path().join("made");
    ok(&lab.cli(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/m", missing.display()),
        "busybox",
        "true",
    ]));
    assert!(missing.is_dir());
    let bad = lab.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,src=/no/such/dir,dst=/m",
        "busybox",
        "true",
    ]);
    assert!(
        stderr(&bad).contains("bind source path does not exist: /no/such/dir"),
        "{bad:?}"
    );

    let t = ok(&lab.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,dst=/t",
        "busybox",
        "sh",
        "-c",
        "grep ' /t ' /proc/mounts",
    ]));
    assert!(t.starts_with("tmpfs /t tmpfs"), "{t}");

    let id = ok(&lab.docker(&[
        "create",
        "-v",
        &format!("{dir}:/h:ro"),
        "-v",
        &format!("{dir}:/h2:rw,rshared"),
        "busybox",
        "true",
    ]));
    let v = lab.api("GET", &format!("/containers/{id}/json"), None).1;
    let m = v["Mounts"].as_array().unwrap();
    let h = m.iter().find(|m| m["Destination"] == "/h").unwrap();
    assert_eq!(h["Type"], "bind");
    assert_eq!(h["Source"], dir.as_str());
    assert_eq!(
        (
            h["Mode"].as_str(),
            h["RW"].as_bool(),
            h["Propagation"].as_str()
        ),
        (Some("ro"), Some(false), Some("rprivate"))
    );
    let h2 = m.iter().find(|m| m["Destination"] == "/h2").unwrap();
    assert_eq!(
        (h2["RW"].as_bool(), h2["Propagation"].as_str()),
        (Some(true), Some("rshared"))
    );
    // --volumes-from: the other container's mounts, read-only when asked
    let a = ok(&lab.docker(&["create", "-v", "vf:/vf", "busybox", "true"]));
    let b = ok(&lab.docker(&[
        "create",
        "--volumes-from",
        &format!("{a}:ro"),
        "busybox",
        "touch",
        "/vf/x",
    ]));
    let v = lab.api("GET", &format!("/containers/{b}/json"), None).1;
    let vf = v["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/vf")
        .unwrap()
        .clone();
    assert_eq!(
        (vf["Name"].as_str(), vf["RW"].as_bool()),
        (Some("vf"), Some(false))
    );
    let run = lab.docker(&["start", "-a", &b]);
    assert!(!run.status.success(), "{run:?}");
    // berth's CLI: the same flag
    assert_eq!(
        ok(&lab.cli(&[
            "run",
            "--rm",
            "--volumes-from",
            &a,
            "busybox",
            "sh",
            "-c",
            "echo w > /vf/w; cat /vf/w"
        ])),
        "w"
    );
    let (st, v) = lab.api(
        "POST",
        "/containers/create",
        Some(serde_json::json!({"Image": "busybox", "HostConfig": {"VolumesFrom": ["nosuch"]}})),
    );
    assert_eq!(
        (st, v["message"].as_str()),
        (404, Some("No such container: nosuch"))
    );
    // a bad spec is refused with Docker's text
    let (st, v) = lab.api(
        "POST",
        "/containers/create",
        Some(serde_json::json!({"Image": "busybox", "HostConfig": {"Binds": ["a:b:c:d"]}})),
    );
    assert_eq!(
        (st, v["message"].as_str()),
        (400, Some("invalid volume specification: 'a:b:c:d'"))
    );
}

#[test]
fn anonymous_volumes_copy_up_and_rm_v() {
    let lab = Lab::start();
    // an image with content at its VOLUME path
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("bin")).unwrap();
    std::fs::create_dir_all(root.path().join("data")).unwrap();
    std::fs::copy("/bin/busybox", root.path().join("bin/busybox")).unwrap();
    for a in ["sh", "cat", "ls"] {
        std::os::unix::fs::symlink("busybox", root.path().join("bin").join(a)).unwrap();
    }
    std::fs::write(root.path().join("data/seed"), "seeded\n").unwrap();
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    let r = lab.http(
        "POST",
        "/images/create?fromSrc=-&repo=volimg&tag=1&changes=VOLUME%20%2Fdata",
        &[],
        Some(&tar.stdout),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // the image's volume: anonymous, filled from the image
    let id = ok(&lab.docker(&["create", "volimg:1", "cat", "/data/seed"]));
    let v = lab.api("GET", &format!("/containers/{id}/json"), None).1;
    assert_eq!(v["Mounts"][0]["Destination"], "/data");
    assert_eq!(v["Config"]["Volumes"]["/data"], serde_json::json!({}));
    let anon = v["Mounts"][0]["Name"].as_str().unwrap().to_string();
    assert_eq!(anon.len(), 64);
    ok(&lab.docker(&["start", "-a", &id]));
    assert_eq!(ok(&lab.docker(&["logs", &id])), "seeded");
    assert_eq!(
        std::fs::read_to_string(lab.data_root().join(format!("volumes/{anon}/_data/seed")))
            .unwrap(),
        "seeded\n"
    );
    // a new named volume is filled too; one with content is left alone
    assert_eq!(
        ok(&lab.docker(&[
            "run",
            "--rm",
            "-v",
            "fresh:/data",
            "volimg:1",
            "cat",
            "/data/seed"
        ])),
        "seeded"
    );
    ok(&lab.docker(&[
        "run",
        "--rm",
        "-v",
        "fresh:/data",
        "volimg:1",
        "sh",
        "-c",
        "echo mine > /data/seed",
    ]));
    assert_eq!(
        ok(&lab.docker(&[
            "run",
            "--rm",
            "-v",
            "fresh:/data",
            "volimg:1",
            "cat",
            "/data/seed"
        ])),
        "mine"
    );

    // rm -v takes the anonymous volume, never the named one
    let id2 = ok(&lab.docker(&["create", "-v", "/anon", "-v", "fresh:/f", "busybox", "true"]));
    let anon2 = lab.api("GET", &format!("/containers/{id2}/json"), None).1["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/anon")
        .unwrap()["Name"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&lab.docker(&["rm", "-v", &id2]));
    ok(&lab.docker(&["rm", "-v", &id]));
    let names = ok(&lab.docker(&["volume", "ls", "-q"]));
    assert_eq!(names, "fresh", "anonymous volumes left: {anon} {anon2}");

    // prune (20.10: every unused volume, named too), label filter first
    ok(&lab.docker(&["volume", "create", "--label", "keep=1", "kept"]));
    let out = ok(&lab.docker(&["volume", "prune", "-f", "--filter", "label!=keep"]));
    assert!(out.contains("fresh"), "{out}");
    assert_eq!(ok(&lab.docker(&["volume", "ls", "-q"])), "kept");
}

#[test]
fn cp_in_and_out_running_and_stopped() {
    let lab = Lab::start();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "from host\n").unwrap();
    std::fs::create_dir_all(host.path().join("tree/sub")).unwrap();
    std::fs::write(host.path().join("tree/sub/f"), "deep\n").unwrap();
    let id = ok(&lab.docker(&[
        "create",
        "--name",
        "cpc",
        "-v",
        "/vol1",
        "-v",
        "rov:/ro:ro",
        "busybox",
        "sleep",
        "1000",
    ]));
    // into a stopped container: its root and its volume
    ok(&lab.docker(&[
        "cp",
        &host.path().join("in.txt").display().to_string(),
        "cpc:/tmp/",
    ]));
    ok(&lab.cli(&[
        "cp",
        &host.path().join("tree").display().to_string(),
        "cpc:/vol1/",
    ]));
    ok(&lab.docker(&["start", "cpc"]));
    assert_eq!(
        ok(&lab.docker(&["exec", "cpc", "cat", "/tmp/in.txt"])),
        "from host"
    );
    assert_eq!(
        ok(&lab.docker(&["exec", "cpc", "cat", "/vol1/tree/sub/f"])),
        "deep"
    );
    // out of a running one, under a new name, by both CLIs
    ok(&lab.docker(&["exec", "cpc", "sh", "-c", "echo made inside > /tmp/out.txt"]));
    let dst = host.path().join("got.txt");
    ok(&lab.docker(&["cp", "cpc:/tmp/out.txt", &dst.display().to_string()]));
    assert_eq!(std::fs::read_to_string(&dst).unwrap(), "made inside\n");
    let dst2 = host.path().join("tree2");
    ok(&lab.cli(&["cp", "cpc:/vol1/tree", &dst2.display().to_string()]));
    assert_eq!(
        std::fs::read_to_string(dst2.join("sub/f")).unwrap(),
        "deep\n"
    );
    // the stat header
    let r = lab.http(
        "HEAD",
        &format!("/containers/{id}/archive?path=/tmp/out.txt"),
        &[],
        None,
    );
    assert_eq!(r.status, 200);
    let h = r
        .header("X-Docker-Container-Path-Stat")
        .unwrap()
        .to_string();
    let dec = std::process::Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    dec.stdin.as_ref().unwrap().write_all(h.as_bytes()).unwrap();
    let st: serde_json::Value =
        serde_json::from_slice(&dec.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(
        (st["name"].as_str(), st["size"].as_i64()),
        (Some("out.txt"), Some(12))
    );
    let r = lab.http(
        "HEAD",
        &format!("/containers/{id}/archive?path=/nope"),
        &[],
        None,
    );
    assert_eq!(r.status, 404);
    let (st, v) = lab.api("GET", &format!("/containers/{id}/archive?path=/nope"), None);
    assert_eq!(
        (st, v["message"].as_str().map(String::from)),
        (
            404,
            Some(format!("Could not find the file /nope in container {id}"))
        )
    );
    // a read-only volume takes nothing (Docker's text and status)
    let mut t = Vec::new();
    entry(&mut t, "x.txt", b'0', "", b"x");
    let r = lab.http(
        "PUT",
        &format!("/containers/{id}/archive?path=/ro"),
        &[("Content-Type", "application/x-tar")],
        Some(&finish(t)),
    );
    assert_eq!(r.status, 500, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("mounted volume is marked read-only"));
    assert!(!lab.data_root().join("volumes/rov/_data/x.txt").exists());
    ok(&lab.docker(&["rm", "-f", "cpc"]));
}

#[test]
fn a_hostile_archive_writes_nothing_outside_the_container() {
    let lab = Lab::start();
    let id = ok(&lab.docker(&["create", "busybox", "sleep", "1000"]));
    let marker = format!("berth-vol-escape-{}", std::process::id());
    // `..` climbing out: refused whole, nothing of it written (the first entry is fine)
    let mut t = Vec::new();
    entry(&mut t, "fine.txt", b'0', "", b"ok");
    entry(
        &mut t,
        &format!("../../../../../../../../tmp/{marker}"),
        b'0',
        "",
        b"x",
    );
    let r = lab.http(
        "PUT",
        &format!("/containers/{id}/archive?path=/"),
        &[("Content-Type", "application/x-tar")],
        Some(&finish(t)),
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("escapes the extraction directory"));
    assert!(!std::path::Path::new("/tmp").join(&marker).exists());
    let upper = lab.data_root().join("containers").join(&id).join("upper");
    assert!(!upper.join("fine.txt").exists(), "a refused archive wrote");

    // a symlink to the host's / and a file through it: lands inside the container
    let mut t = Vec::new();
    entry(&mut t, "evil", b'2', "/", b"");
    entry(&mut t, &format!("evil/tmp/{marker}"), b'0', "", b"inside");
    let r = lab.http(
        "PUT",
        &format!("/containers/{id}/archive?path=/"),
        &[("Content-Type", "application/x-tar")],
        Some(&finish(t)),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        !std::path::Path::new("/tmp").join(&marker).exists(),
        "wrote on the host"
    );
    assert_eq!(
        std::fs::read_to_string(upper.join("tmp").join(&marker)).unwrap(),
        "inside"
    );
    // a symlink already in the container, to the host's /tmp, for the extraction point
    ok(&lab.docker(&["start", &id]));
    ok(&lab.docker(&["exec", &id, "ln", "-s", "/tmp", "/hostish"]));
    let mut t = Vec::new();
    entry(&mut t, &format!("{marker}.2"), b'0', "", b"inside");
    let r = lab.http(
        "PUT",
        &format!("/containers/{id}/archive?path=/hostish"),
        &[("Content-Type", "application/x-tar")],
        Some(&finish(t)),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        !std::path::Path::new("/tmp")
            .join(format!("{marker}.2"))
            .exists(),
        "wrote on the host"
    );
    assert_eq!(
        ok(&lab.docker(&["exec", &id, "cat", &format!("/tmp/{marker}.2")])),
        "inside"
    );
    ok(&lab.docker(&["rm", "-f", &id]));
}

fn compose_volumes(tool: berth_e2e::compose::Tool) {
    use berth_e2e::compose::Project;
    let lab = Lab::start();
    let file = r#"
version: "3.8"
services:
  writer:
    image: busybox
    command: sh -c 'echo from-writer > /data/f; echo bound > /host/b; sleep 1000'
    volumes:
      - data:/data
      - ./hostdir:/host
  reader:
    image: busybox
    command: sleep 1000
    volumes:
      - type: volume
        source: data
        target: /shared
        read_only: true
      - type: tmpfs
        target: /scratch
volumes:
  data:
    labels:
      team: a
"#;
    let p = Project::new(&lab, tool, "cv", &[("docker-compose.yml", file)]);
    p.ok(&["up", "-d"]);
    let v = lab.api("GET", "/volumes/cv_data", None).1;
    assert_eq!(v["Labels"]["com.docker.compose.project"], "cv", "{v}");
    assert_eq!(v["Labels"]["com.docker.compose.volume"], "data");
    assert_eq!(v["Labels"]["team"], "a");
    let got = p.exec_until(
        "reader",
        "cat /shared/f",
        std::time::Duration::from_secs(10),
    );
    assert_eq!(got.trim(), "from-writer");
    assert_eq!(
        std::fs::read_to_string(p.dir.join("hostdir/b")).unwrap(),
        "bound\n"
    );
    let ro = p.run(&["exec", "-T", "reader", "sh", "-c", "echo x > /shared/g"]);
    assert!(!ro.status.success(), "{ro:?}");
    let m = p.ok(&["exec", "-T", "reader", "grep", " /scratch ", "/proc/mounts"]);
    assert!(m.starts_with("tmpfs"), "{m}");
    // a second up keeps the containers
    let out = p.ok(&["up", "-d"]);
    assert!(out.contains("cv_reader_1 is up-to-date"), "{out}");
    p.ok(&["down", "-v"]);
    let (st, _) = lab.api("GET", "/volumes/cv_data", None);
    assert_eq!(st, 404, "down -v left the project's volume");
}

#[test]
fn compose_volumes_berth() {
    compose_volumes(berth_e2e::compose::Tool::Berth);
}

#[test]
fn compose_volumes_docker_compose() {
    compose_volumes(berth_e2e::compose::Tool::DockerCompose);
}

#[test]
fn compose_volumes_same_hash_in_both_tools() {
    use berth_e2e::compose::{Project, Tool};
    let lab = Lab::start();
    let file = r#"
version: "3.8"
services:
  app:
    image: busybox
    command: sleep 1000
    volumes:
      - data:/data
      - ./h:/h:ro
      - /anon
      - type: volume
        source: data
        target: /long
        read_only: true
volumes:
  data: {}
"#;
    let dc = Project::new(
        &lab,
        Tool::DockerCompose,
        "hv",
        &[("docker-compose.yml", file)],
    );
    dc.ok(&["up", "-d"]);
    let berth = Project {
        lab: &lab,
        tool: Tool::Berth,
        dir: dc.dir.clone(),
        files: Vec::new(),
    };
    let out = berth.ok(&["up", "-d"]);
    assert!(out.contains("hv_app_1 is up-to-date"), "{out}");
    berth.ok(&["down", "-v"]);
}

#[test]
fn berth_cli_volume_commands_and_cp_through_stdio() {
    use std::io::Write;
    let lab = Lab::start();
    assert_eq!(
        ok(&lab.cli(&["volume", "create", "--label", "keep=1", "kept"])),
        "kept"
    );
    // an anonymous one: a 64-hex name
    let anon = ok(&lab.cli(&["volume", "create"]));
    assert_eq!(anon.len(), 64, "{anon}");
    assert_eq!(
        ok(&lab.cli(&["volume", "inspect", "-f", "{{.Driver}} {{.Labels}}", "kept"])),
        "local map[keep:1]"
    );
    let missing = lab.cli(&["volume", "inspect", "nosuch"]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("no such volume"), "{missing:?}");
    let out = ok(&lab.cli(&["volume", "prune", "-f", "--filter", "label!=keep"]));
    assert!(
        out.contains(&anon) && out.contains("Total reclaimed space: 0B"),
        "{out}"
    );
    assert_eq!(ok(&lab.cli(&["volume", "ls", "-q"])), "kept");

    // cp from a tar on stdin, and out as a tar on stdout
    let id = ok(&lab.cli(&["create", "busybox", "true"]));
    let mut t = Vec::new();
    entry(&mut t, "piped.txt", b'0', "", b"through stdin");
    let mut child = std::process::Command::new(berth_e2e::berth_bin())
        .args(["-H", &lab.host_uri(), "cp", "-", &format!("{id}:/")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&finish(t)).unwrap();
    let done = child.wait_with_output().unwrap();
    assert!(done.status.success(), "{done:?}");
    let out = lab.cli(&["cp", &format!("{id}:/piped.txt"), "-"]);
    assert!(out.status.success(), "{out:?}");
    // a tar: the name in the first header, the content after it
    assert!(
        out.stdout.starts_with(b"piped.txt"),
        "{:?}",
        &out.stdout[..32]
    );
    assert_eq!(&out.stdout[512..525], b"through stdin");
    // -L: the link's target, under the link's name
    let dir = tempfile::tempdir().unwrap();
    ok(&lab.cli(&[
        "cp",
        "-L",
        &format!("{id}:/bin/sh"),
        &dir.path().display().to_string(),
    ]));
    let m = std::fs::symlink_metadata(dir.path().join("sh")).unwrap();
    assert!(m.is_file() && m.len() > 100_000, "{m:?}");
    let nope = lab.cli(&["cp", &format!("{id}:/nope"), "-"]);
    assert!(
        stderr(&nope).contains("Could not find the file /nope"),
        "{nope:?}"
    );
}
