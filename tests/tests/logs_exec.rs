//! Logs (one timestamped log per container: order, --timestamps/--since/--until/--tail, a
//! line per frame, a daemon restart, an older berthd's log files), exec (a terminal's stream
//! framed by start's Tty, detach keys), attach without a stream, link removal, and renaming
//! a running container (issue 15), with the real docker CLI and the API.

use berth_e2e::Lab;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Output;
use std::time::Duration;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{o:?}");
    text(&o.stdout)
}

/// Docker's stdcopy frames: (stream, payload) each.
fn frames(mut b: &[u8]) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    while b.len() >= 8 {
        let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        assert!(b.len() >= 8 + n, "a frame cut short: {b:?}");
        out.push((b[0], text(&b[8..8 + n])));
        b = &b[8 + n..];
    }
    assert!(b.is_empty(), "bytes after the last frame: {b:?}");
    out
}

/// POST with `Upgrade: tcp`; returns the connection after the `101` (its headers read).
fn hijack(lab: &Lab, path: &str, body: &str) -> UnixStream {
    let mut s = UnixStream::connect(lab.sock()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /v1.41{path} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "headers: {}", text(&head));
        head.push(byte[0]);
    }
    assert!(text(&head).starts_with("HTTP/1.1 101"), "{}", text(&head));
    s
}

/// Everything until the end of the stream (a read timeout fails the test).
fn read_to_end(s: &mut UnixStream) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v).expect("the stream did not end");
    v
}

/// Reads until `want` was seen.
fn read_until(s: &mut UnixStream, want: &str) -> Vec<u8> {
    let mut v = Vec::new();
    let mut buf = [0u8; 4096];
    while !text(&v).contains(want) {
        let n = s
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("{e}: {}", text(&v)));
        assert!(n > 0, "ended before {want:?}: {}", text(&v));
        v.extend_from_slice(&buf[..n]);
    }
    v
}

fn logs(lab: &Lab, name: &str, query: &str) -> Vec<(u8, String)> {
    let r = lab.http(
        "GET",
        &format!("/containers/{name}/logs?stdout=1&stderr=1&{query}"),
        &[],
        None,
    );
    assert_eq!(r.status, 200, "{query}: {}", r.text());
    frames(&r.body)
}

fn inspect(lab: &Lab, name: &str) -> Value {
    let (st, v) = lab.api("GET", &format!("/containers/{name}/json"), None);
    assert_eq!(st, 200, "{v}");
    v
}

fn wait_exit(lab: &Lab, name: &str) {
    let (st, v) = lab.api("POST", &format!("/containers/{name}/wait"), None);
    assert_eq!(st, 200, "{v}");
}

#[test]
fn logs_keep_the_order_of_both_streams_with_times_and_filters() {
    let lab = Lab::start();
    ok(lab.docker(&[
        "run",
        "--name",
        "lg",
        "busybox",
        "sh",
        "-c",
        "echo o1; sleep 0.2; echo e1 >&2; sleep 0.2; echo o2; sleep 1.2; echo e2 >&2",
    ]));
    let all = logs(&lab, "lg", "");
    let want = [(1, "o1\n"), (2, "e1\n"), (1, "o2\n"), (2, "e2\n")];
    let want: Vec<(u8, String)> = want.iter().map(|(s, t)| (*s, t.to_string())).collect();
    assert_eq!(all, want);
    // --timestamps: Docker's fixed-width RFC 3339 with nanoseconds, then the line
    let o = ok(lab.docker(&["logs", "-t", "lg"]));
    let stamps: Vec<&str> = o.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(stamps.len(), 2, "{o}");
    for s in &stamps {
        assert_eq!(s.len(), 30, "{s}");
        assert!(
            s.ends_with('Z') && s.as_bytes()[10] == b'T' && s.as_bytes()[19] == b'.',
            "{s}"
        );
    }
    assert!(o.lines().next().unwrap().ends_with(" o1"), "{o}");
    let timed = logs(&lab, "lg", "timestamps=1");
    let time_of = |i: usize| timed[i].1.split(' ').next().unwrap().to_string();
    assert!(time_of(0) < time_of(3), "{timed:?}");
    // --since / --until with dates (the CLI sends unix seconds) and with unix seconds
    let o = lab.docker(&["logs", "--since", &time_of(3), "lg"]);
    assert_eq!(
        (text(&o.stdout), text(&o.stderr)),
        ("".into(), "e2\n".into())
    );
    let o = lab.docker(&["logs", "--until", &time_of(2), "lg"]);
    assert_eq!(
        (text(&o.stdout), text(&o.stderr)),
        ("o1\no2\n".into(), "e1\n".into())
    );
    assert!(logs(&lab, "lg", "until=1").is_empty());
    assert!(logs(&lab, "lg", "since=-1&until=-1").is_empty());
    assert_eq!(logs(&lab, "lg", "since=1.5").len(), 4);
    // --tail counts lines of both streams
    assert_eq!(logs(&lab, "lg", "tail=2"), want[2..].to_vec());
    assert_eq!(logs(&lab, "lg", "tail=0"), vec![]);
    assert_eq!(logs(&lab, "lg", "tail=all").len(), 4);
    let o = lab.docker(&["logs", "--tail", "1", "-t", "lg"]);
    assert!(
        text(&o.stderr).ends_with(" e2\n") && o.stdout.is_empty(),
        "{o:?}"
    );
    // Docker's refusal of a bad time, in its words
    let (st, v) = lab.api("GET", "/containers/lg/logs?stdout=1&since=abc", None);
    assert_eq!(
        (st, v["message"].as_str()),
        (
            500,
            Some("strconv.ParseInt: parsing \"abc\": invalid syntax")
        )
    );

    // A line per frame, as Docker's log: two lines written at once are two frames
    // (docker-py's streamed logs rely on it).
    ok(lab.docker(&[
        "run",
        "--name",
        "two",
        "busybox",
        "sh",
        "-c",
        "echo hello && echo world",
    ]));
    let r = lab.http("GET", "/containers/two/logs?stdout=1&follow=1", &[], None);
    assert_eq!(
        frames(&r.body),
        vec![(1, "hello\n".into()), (1, "world\n".into())]
    );
    // A terminal's output: one stream, the terminal's line ends.
    ok(lab.docker(&[
        "run",
        "-t",
        "--name",
        "tt",
        "busybox",
        "sh",
        "-c",
        "echo a; echo b >&2",
    ]));
    let r = lab.http(
        "GET",
        "/containers/tt/logs?stdout=1&stderr=1&timestamps=1",
        &[],
        None,
    );
    let t = text(&r.body);
    assert_eq!(t.lines().count(), 2, "{t:?}");
    assert!(t.contains("Z a\r\n") && t.contains("Z b\r\n"), "{t:?}");
}

#[test]
fn logs_survive_a_daemon_restart_and_an_older_berthds_files_are_read() {
    let mut lab = Lab::start();
    let id = ok(lab.docker(&[
        "run",
        "-d",
        "--name",
        "tick",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo t$i; sleep 0.1; done",
    ]))
    .trim()
    .to_string();
    std::thread::sleep(Duration::from_millis(500));
    lab.restart();
    std::thread::sleep(Duration::from_millis(800));
    ok(lab.docker(&["stop", "-t", "1", "tick"]));
    // every tick, none lost or doubled across the restart (the pipes wait for the new pump)
    let lines: Vec<String> = logs(&lab, "tick", "").into_iter().map(|(_, l)| l).collect();
    assert!(lines.len() >= 8, "{lines:?}");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l, &format!("t{}\n", i + 1), "{lines:?}");
    }

    // An older berthd's log files (stdout.log, stderr.log) come first, then the new log.
    let data = lab.data_root().join("containers").join(&id);
    std::fs::write(data.join("stdout.log"), "old out\n").unwrap();
    std::fs::write(data.join("stderr.log"), "old err\n").unwrap();
    let all = logs(&lab, "tick", "");
    assert_eq!(all[..2], [(1, "old out\n".into()), (2, "old err\n".into())]);
    assert_eq!(all[2], (1, "t1\n".into()));
    assert_eq!(all.len(), lines.len() + 2);
    let o = lab.docker(&["logs", "--tail", "1", "tick"]);
    assert_eq!(text(&o.stdout), lines.last().unwrap().clone());
}

#[test]
fn exec_streams_are_framed_by_start_and_detach_keys_leave_it_running() {
    let lab = Lab::start();
    ok(lab.docker(&["run", "-d", "-i", "--name", "cx", "busybox", "cat"]));
    let exec = |body: Value| -> String {
        let (st, v) = lab.api("POST", "/containers/cx/exec", Some(body));
        assert_eq!(st, 201, "{v}");
        v["Id"].as_str().unwrap().to_string()
    };
    // Created with a terminal, started without: framed, all of it (Docker frames by start's Tty).
    let e = exec(
        json!({"Cmd": ["printf", "yay, interactive exec!"], "Tty": true, "AttachStdout": true}),
    );
    let mut s = hijack(&lab, &format!("/exec/{e}/start"), r#"{"Tty":false}"#);
    assert_eq!(
        frames(&read_to_end(&mut s)),
        vec![(1, "yay, interactive exec!".into())]
    );
    let cmd = ["sh", "-c", "echo hello out; sleep 0.3; echo hello err >&2"];
    let e = exec(json!({"Cmd": cmd, "Tty": true, "AttachStdout": true, "AttachStderr": true}));
    let mut s = hijack(&lab, &format!("/exec/{e}/start"), r#"{"Tty":false}"#);
    let got: String = frames(&read_to_end(&mut s))
        .into_iter()
        .map(|(st, t)| {
            assert_eq!(st, 1);
            t
        })
        .collect();
    assert_eq!(got, "hello out\r\nhello err\r\n");
    // without a terminal: stdout and stderr frames, the second after a pause
    let e = exec(json!({"Cmd": cmd, "AttachStdout": true, "AttachStderr": true}));
    let mut s = hijack(&lab, &format!("/exec/{e}/start"), "{}");
    assert_eq!(
        frames(&read_to_end(&mut s)),
        vec![(1, "hello out\n".into()), (2, "hello err\n".into())]
    );
    // started with a terminal: raw
    let e = exec(json!({"Cmd": cmd, "Tty": true, "AttachStdout": true, "AttachStderr": true}));
    let mut s = hijack(&lab, &format!("/exec/{e}/start"), r#"{"Tty":true}"#);
    assert_eq!(text(&read_to_end(&mut s)), "hello out\r\nhello err\r\n");

    // Detach keys (the default, then the exec's own): the session ends with Docker's words,
    // the process runs on.
    for (keys, seq) in [("", &b"\x10\x11"[..]), ("ctrl-x,y", &b"\x18y"[..])] {
        let e = exec(
            json!({"Cmd": ["cat"], "Tty": true, "AttachStdin": true, "AttachStdout": true, "DetachKeys": keys}),
        );
        let mut s = hijack(&lab, &format!("/exec/{e}/start"), r#"{"Tty":true}"#);
        s.write_all(b"ab\n").unwrap();
        read_until(&mut s, "ab\r\nab\r\n");
        s.write_all(seq).unwrap();
        let rest = text(&read_to_end(&mut s));
        assert!(
            rest.ends_with("exec attach failed: error on attach stdin: read escape sequence\r\n"),
            "{rest:?}"
        );
        let (_, v) = lab.api("GET", &format!("/exec/{e}/json"), None);
        assert_eq!(v["Running"], true, "{v}");
    }
    // Without a terminal the keys are plain input (as Docker).
    let e = exec(json!({"Cmd": ["cat"], "AttachStdin": true, "AttachStdout": true}));
    let mut s = hijack(&lab, &format!("/exec/{e}/start"), "{}");
    s.write_all(b"\x10\x11\n").unwrap();
    let got = read_until(&mut s, "\x11\n");
    assert_eq!(frames(&got), vec![(1, "\x10\x11\n".into())]);
    // Bad keys are refused when the exec is made, in Docker's words.
    let (st, v) = lab.api(
        "POST",
        "/containers/cx/exec",
        Some(json!({"Cmd": ["cat"], "DetachKeys": "ctrl-"})),
    );
    assert_eq!(
        (st, v["message"].as_str()),
        (500, Some("Invalid escape keys (ctrl-) provided"))
    );
}

#[test]
fn attach_without_a_stream_sends_the_logs_and_ends() {
    let lab = Lab::start();
    ok(lab.docker(&[
        "run",
        "--name",
        "at",
        "busybox",
        "sh",
        "-c",
        "echo hello; echo bye >&2",
    ]));
    wait_exit(&lab, "at");
    let mut s = hijack(
        &lab,
        "/containers/at/attach?logs=1&stream=0&stdout=1&stderr=1",
        "",
    );
    assert_eq!(
        frames(&read_to_end(&mut s)),
        vec![(1, "hello\n".into()), (2, "bye\n".into())]
    );
    let mut s = hijack(&lab, "/containers/at/attach?logs=1&stream=0&stdout=1", "");
    assert_eq!(frames(&read_to_end(&mut s)), vec![(1, "hello\n".into())]);
    // neither logs nor a stream: nothing, at once
    let mut s = hijack(&lab, "/containers/at/attach?stream=0&stdout=1", "");
    assert!(read_to_end(&mut s).is_empty());
}

#[test]
fn a_link_is_removed_from_the_record_and_the_hosts_file() {
    let lab = Lab::start();
    ok(lab.docker(&["run", "-d", "-i", "--name", "db", "busybox", "cat"]));
    ok(lab.docker(&[
        "run",
        "-d",
        "-i",
        "--name",
        "web",
        "--link",
        "db:mylink",
        "busybox",
        "cat",
    ]));
    let hosts = ok(lab.docker(&["exec", "web", "cat", "/etc/hosts"]));
    assert!(hosts.contains("\tmylink"), "{hosts}");
    // Docker's refusals
    let (st, v) = lab.api("DELETE", "/containers/web?link=1", None);
    assert_eq!(
        (st, v["message"].as_str()),
        (
            500,
            Some("Conflict, cannot remove the default link name of the container")
        )
    );
    let (st, v) = lab.api("DELETE", "/containers/web/nope?link=1", None);
    assert_eq!(
        (st, v["message"].as_str()),
        (404, Some("No such container: web/nope"))
    );
    let (st, _) = lab.api("GET", "/containers/web/nope", None);
    assert_eq!(st, 404);
    ok(lab.docker(&["rm", "--link", "web/mylink"]));
    let hosts = ok(lab.docker(&["exec", "web", "cat", "/etc/hosts"]));
    assert!(!hosts.contains("mylink"), "{hosts}");
    assert_eq!(inspect(&lab, "web")["HostConfig"]["Links"], Value::Null);
    let (st, v) = lab.api("DELETE", "/containers/web/mylink?link=1", None);
    assert_eq!(
        (st, v["message"].as_str()),
        (404, Some("No such container: web/mylink"))
    );
    // both containers are still there and running
    let names = ok(lab.docker(&["ps", "--format", "{{.Names}}"]));
    assert!(
        names.lines().any(|n| n == "db") && names.lines().any(|n| n == "web"),
        "{names}"
    );
}

#[test]
fn a_running_container_is_renamed_in_the_embedded_dns_and_across_a_restart() {
    let mut lab = Lab::start();
    ok(lab.docker(&["network", "create", "n"]));
    ok(lab.docker(&[
        "run",
        "-d",
        "-i",
        "--name",
        "r1",
        "--net",
        "n",
        "--network-alias",
        "al",
        "busybox",
        "cat",
    ]));
    ok(lab.docker(&[
        "run", "-d", "-i", "--name", "r2", "--net", "n", "busybox", "cat",
    ]));
    ok(lab.docker(&["run", "-d", "-i", "--name", "b1", "busybox", "cat"]));
    ok(lab.docker(&[
        "run", "-d", "-i", "--name", "b2", "--link", "b1:db", "busybox", "cat",
    ]));
    ok(lab.docker(&["rename", "r1", "r1b"]));
    ok(lab.docker(&["rename", "b1", "b1x"]));
    // busybox's nslookup exits 0 on some failures: its answer says
    let resolves = |lab: &Lab, name: &str| {
        let o = lab.docker(&["exec", "r2", "nslookup", name, "127.0.0.11"]);
        text(&o.stdout).contains(&format!("Name:\t{name}\nAddress: 172."))
    };
    let check = |lab: &Lab| {
        assert!(resolves(lab, "r1b"), "the new name");
        assert!(resolves(lab, "al"), "the alias");
        assert!(!resolves(lab, "r1"), "the old name");
        let v = inspect(lab, "r1b");
        assert_eq!(v["Name"], "/r1b");
        // a link follows its target, under its alias (Docker's form)
        let links = &inspect(lab, "b2")["HostConfig"]["Links"];
        assert_eq!(links, &json!(["/b1x:/b2/db"]));
    };
    check(&lab);
    lab.restart();
    check(&lab);
    // the renamed target is found again when its peer restarts
    ok(lab.docker(&["restart", "-t", "0", "b2"]));
    let hosts = ok(lab.docker(&["exec", "b2", "cat", "/etc/hosts"]));
    assert!(hosts.contains("\tdb ") && hosts.contains("b1x"), "{hosts}");
    // a stopped container renames as before
    ok(lab.docker(&["stop", "-t", "0", "r2"]));
    ok(lab.docker(&["rename", "r2", "r2b"]));
}
