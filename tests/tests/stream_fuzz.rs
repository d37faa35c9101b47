//! The routes that stream, fuzzed against a real daemon with real containers (runc): attach,
//! exec create/start, logs with follow, events and resize, with generated query strings and
//! bodies, hostile input bytes (detach-key prefixes, NULs, huge writes) and connections cut at
//! random points (before the response, mid-stream, after a half-close). After every case the
//! daemon must answer; at the end its descriptors and threads must be back near where they
//! started, every exec it ran must have ended, and the containers must still stop and go.
//!
//! Seeded: `BERTH_STREAM_FUZZ_SEED` replays a run, `BERTH_STREAM_FUZZ_CASES` sets its length
//! (CI: 120).

use berth_e2e::{ok, Lab};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// xorshift64*: enough randomness for a fuzzer, no dependency, replayable from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max as u64 + 1) as usize;
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            // bias towards the bytes that mean something: detach keys, NUL, newline, escape
            let b = match self.below(8) {
                0 => 0x10, // ctrl-p
                1 => 0x11, // ctrl-q
                2 => 0,
                3 => b'\n',
                4 => 0x1b,
                _ => self.next() as u8,
            };
            v.push(b);
        }
        v
    }
}

/// Mostly running containers: a stopped one and a missing one now and then.
const TARGETS: &[&str] = &[
    "fz-cat", "fz-tty", "fz-echo", "fz-cat", "fz-tty", "fz-echo", "fz-gone", "nosuch",
];
const BOOLS: &[&str] = &["1", "0", "true", "false", "", "yes", "-1", "2"];
const KEYS: &[&str] = &[
    "ctrl-p,ctrl-q",
    "ctrl-x",
    "a,b",
    "ctrl-",
    ",,",
    "ctrl-@,ctrl-[",
    "ctrl-\\,ctrl-]",
    "DEL",
    "",
];
const TIMES: &[&str] = &[
    "0",
    "1",
    "-5",
    "99999999999",
    "2026-12-03T10:00:00Z",
    "bad",
    "1.5",
];

fn query(r: &mut Rng, keys: &[&str]) -> String {
    let mut q = Vec::new();
    for k in keys {
        if r.chance(60) {
            let v = match *k {
                "detachKeys" => r.pick(KEYS).to_string(),
                "since" | "until" => r.pick(TIMES).to_string(),
                "tail" => r
                    .pick(&["all", "0", "3", "-1", "x", "100000000000"])
                    .to_string(),
                "h" | "w" => r
                    .pick(&["0", "24", "65535", "65536", "-3", "x"])
                    .to_string(),
                _ => r.pick(BOOLS).to_string(),
            };
            let enc: String = v
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            q.push(format!("{k}={enc}"));
        }
    }
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// An exec's create body: most are well-formed (so that execs start and their streams get
/// fuzzed), the rest carry wrong types, unknown users, bad directories and odd environments.
fn exec_body(r: &mut Rng) -> String {
    let good = r.chance(75);
    let cmd = if good {
        r.pick(&[
            r#"["cat"]"#,
            r#"["sh","-c","echo out; echo err >&2"]"#,
            r#"["sh","-c","head -c 100000 /dev/zero"]"#,
            r#"["sleep","0.2"]"#,
            r#"["sh"]"#,
        ])
    } else {
        r.pick(&[r#"["nosuchcmd"]"#, r#"[]"#, r#""sh""#, r#"null"#, r#"[1]"#])
    };
    let b = |r: &mut Rng| {
        if good || r.chance(50) {
            r.pick(&["true", "false"]).to_string()
        } else {
            r.pick(&["1", "null", "\"x\""]).to_string()
        }
    };
    let (user, dir, env) = if good {
        (
            r.pick(&["\"\"", "\"nobody\"", "\"65534:65534\"", "\"0\""]),
            r.pick(&["\"\"", "\"/tmp\"", "\"/\""]),
            r.pick(&["[]", "[\"A=1\"]", "null"]),
        )
    } else {
        (
            r.pick(&["\"nosuchuser\"", "\"a:b:c\"", "7", "\"\\u0000\""]),
            r.pick(&["\"/nonexistent\"", "\"relative\"", "\"\\u0000\""]),
            r.pick(&["[\"=\"]", "[\"\\u0000\"]", "{}", "[\"A\"]"]),
        )
    };
    format!(
        r#"{{"Cmd":{cmd},"AttachStdin":{},"AttachStdout":{},"AttachStderr":{},"Tty":{},"DetachKeys":"{}","User":{user},"WorkingDir":{dir},"Env":{env}}}"#,
        b(r),
        b(r),
        b(r),
        b(r),
        r.pick(KEYS).replace('\\', "\\\\"),
    )
}

/// What the client does once its request is sent.
struct Then<'a> {
    /// Bytes sent after the request (a hijacked stream's input).
    input: &'a [u8],
    /// Half-close (end of input) before reading, or not.
    half_close: bool,
    /// How long the output is read before the connection is dropped.
    read_for: Duration,
}

/// One request on a fresh connection: `body`, then what `then` says. Returns the status line.
fn exchange(
    lab: &Lab,
    (method, path): (&str, &str),
    body: Option<&str>,
    upgrade: bool,
    then: Then,
) -> String {
    let Then {
        input,
        half_close,
        read_for,
    } = then;
    let Ok(mut s) = UnixStream::connect(lab.sock()) else {
        return "connect failed".into();
    };
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\n");
    if upgrade {
        req.push_str("Connection: Upgrade\r\nUpgrade: tcp\r\n");
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    if s.write_all(req.as_bytes()).is_err() {
        return "write failed".into();
    }
    let _ = s.write_all(input);
    if half_close {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut got = Vec::new();
    let end = Instant::now() + read_for;
    let mut buf = [0u8; 16384];
    while Instant::now() < end && got.len() < 1 << 20 {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&got)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

fn running(lab: &Lab, name: &str) -> bool {
    lab.api("GET", &format!("/containers/{name}/json"), None).1["State"]["Running"] == true
}

fn fds_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn run_case(lab: &Lab, r: &mut Rng, exec_ids: &mut Vec<String>) {
    let target = r.pick(TARGETS);
    let read_for = Duration::from_millis(r.below(400));
    let half = r.chance(50);
    let max = if r.chance(10) { 200_000 } else { 64 };
    let input = r.bytes(max);
    match r.below(6) {
        0 => {
            let q = query(
                r,
                &["stream", "stdin", "stdout", "stderr", "logs", "detachKeys"],
            );
            exchange(
                lab,
                ("POST", &format!("/containers/{target}/attach{q}")),
                None,
                r.chance(90),
                Then {
                    input: &input,
                    half_close: half,
                    read_for,
                },
            );
        }
        1 => {
            let body = exec_body(r);
            let (code, v) = lab.api(
                "POST",
                &format!("/containers/{target}/exec"),
                serde_json::from_str(&body).ok(),
            );
            if std::env::var("BERTH_STREAM_FUZZ_DEBUG").is_ok() {
                eprintln!("exec create on {target}: {code} {v} <- {body}");
            }
            if code == 201 {
                let id = v["Id"].as_str().unwrap_or_default().to_string();
                let start = format!(
                    r#"{{"Detach":{},"Tty":{}}}"#,
                    r.pick(&["false", "false", "true", "\"x\""]),
                    r.pick(&["false", "true", "null"])
                );
                exchange(
                    lab,
                    ("POST", &format!("/exec/{id}/start")),
                    Some(&start),
                    r.chance(90),
                    Then {
                        input: &input,
                        half_close: half,
                        read_for,
                    },
                );
                if r.chance(30) {
                    let q = query(r, &["h", "w"]);
                    lab.api("POST", &format!("/exec/{id}/resize{q}"), None);
                }
                exec_ids.push(id);
            }
        }
        2 => {
            let q = query(
                r,
                &[
                    "follow",
                    "stdout",
                    "stderr",
                    "since",
                    "until",
                    "timestamps",
                    "tail",
                ],
            );
            exchange(
                lab,
                ("GET", &format!("/containers/{target}/logs{q}")),
                None,
                false,
                Then {
                    input: &[],
                    half_close: half,
                    read_for,
                },
            );
        }
        3 => {
            let q = query(r, &["since", "until"]);
            exchange(
                lab,
                ("GET", &format!("/events{q}")),
                None,
                false,
                Then {
                    input: &[],
                    half_close: half,
                    read_for,
                },
            );
        }
        4 => {
            let q = query(r, &["h", "w"]);
            lab.api("POST", &format!("/containers/{target}/resize{q}"), None);
        }
        _ => {
            // a request cut off in its body, then a raw upgrade with garbage before it
            exchange(
                lab,
                (
                    "POST",
                    &format!("/containers/{target}/attach?stream=1&stdin=1"),
                ),
                Some(&String::from_utf8_lossy(&input)),
                true,
                Then {
                    input: b"",
                    half_close: false,
                    read_for: Duration::from_millis(0),
                },
            );
        }
    }
}

#[test]
fn streaming_routes_survive_generated_sessions() {
    let lab = Lab::start();
    let run = |args: &[&str]| ok(&lab.cli(args), "run");
    run(&["run", "-d", "-i", "--name", "fz-cat", "busybox", "cat"]);
    run(&["run", "-d", "-i", "-t", "--name", "fz-tty", "busybox", "sh"]);
    run(&[
        "run",
        "-d",
        "--name",
        "fz-echo",
        "busybox",
        "sh",
        "-c",
        "while true; do echo tick; echo tock >&2; sleep 0.05; done",
    ]);
    run(&["create", "--name", "fz-gone", "busybox", "true"]);
    let pid = lab.pid().expect("berthd pid");
    // let the daemon's pools settle before the baseline
    std::thread::sleep(Duration::from_millis(500));
    let (fd0, th0) = (fds_of(pid), threads_of(pid));

    let seed: u64 = std::env::var("BERTH_STREAM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let cases: usize = std::env::var("BERTH_STREAM_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    eprintln!("stream fuzz: seed {seed} (BERTH_STREAM_FUZZ_SEED), {cases} cases");
    let mut r = Rng(seed);
    let mut exec_ids = Vec::new();
    for i in 0..cases {
        run_case(&lab, &mut r, &mut exec_ids);
        let (code, _) = lab.api("GET", "/_ping", None);
        assert_eq!(
            code, 200,
            "case {i} (seed {seed}): the daemon stopped answering"
        );
        // a detach-key or a `cat` that ended its container: put it back for the next cases
        for name in ["fz-cat", "fz-tty", "fz-echo"] {
            if !running(&lab, name) {
                ok(&lab.cli(&["start", name]), "restart a fuzzed container");
            }
        }
    }

    // every exec that started has ended (or still runs a command that does not end: cat)
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stuck = Vec::new();
    for id in &exec_ids {
        loop {
            let (code, v) = lab.api("GET", &format!("/exec/{id}/json"), None);
            let running = code == 200 && v["Running"] == true;
            let endless = v["ProcessConfig"]["entrypoint"] == "cat"
                || v["ProcessConfig"]["entrypoint"] == "sh"
                    && v["ProcessConfig"]["arguments"]
                        .as_array()
                        .is_some_and(|a| a.is_empty());
            if !running || endless {
                break;
            }
            if Instant::now() > deadline {
                stuck.push(v.to_string());
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(
        stuck.is_empty(),
        "seed {seed}: execs that never ended: {stuck:?}"
    );

    // the containers still stop and go, and the endless execs with them
    ok(
        &lab.cli(&["rm", "-f", "fz-cat", "fz-tty", "fz-echo", "fz-gone"]),
        "rm -f",
    );
    // descriptors and threads back near the baseline once sessions have wound down (idle
    // blocking-pool threads linger 10 s)
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (fd, th) = (fds_of(pid), threads_of(pid));
        if fd <= fd0 + 8 && th <= th0 + 8 {
            eprintln!(
                "stream fuzz: fds {fd0} -> {fd}, threads {th0} -> {th}, {} execs",
                exec_ids.len()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: berthd holds {fd} fds (started with {fd0}) and {th} threads ({th0})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
