//! Issue 12: the soak. `BENCH_SOAK_MINUTES` (default 2) of mixed load from
//! `BENCH_SOAK_CLIENTS` (default 64) concurrent API clients against one berthd: each client
//! runs, connects, disconnects, stops, starts, inspects and removes containers of its own (at
//! most four at a time, half of them publishing an HTTP port) and creates and removes a
//! network of its own. Reports p50/p99 per operation, every error (each client knows its own
//! state, so no answer other than success is expected: the goal is 0), berthd's RSS and open
//! fds at the start and the end (the goal: flat), and the crash campaign's invariants
//! (`berth_e2e::invariants`) at the end.

use crate::networks::rss_kb;
use crate::{env, ms, report};
use berth_e2e::http::request;
use berth_e2e::invariants::{self, HTTP_LABEL};
use berth_e2e::Lab;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Shared networks every client's containers use.
const NETS: [&str; 3] = ["soak0", "soak1", "soak2"];

/// xorshift64, seeded per client: the load is replayable without a random number crate.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Default)]
struct Tally {
    /// operation → latencies (ms)
    times: BTreeMap<&'static str, Vec<f64>>,
    /// (operation, status, message)
    errors: Vec<(&'static str, u16, String)>,
}

impl Tally {
    /// One call, timed and recorded; `true` when it answered one of `ok`.
    fn call(
        &mut self,
        sock: &Path,
        op: &'static str,
        method: &str,
        path: &str,
        body: Option<Value>,
        ok: &[u16],
    ) -> Option<Value> {
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
        let t = Instant::now();
        let r = request(
            sock,
            method,
            path,
            &[("Content-Type", "application/json")],
            bytes.as_deref(),
        );
        let took = ms(t.elapsed());
        match r {
            Ok(r) if ok.contains(&r.status) => {
                self.times.entry(op).or_default().push(took);
                Some(serde_json::from_slice(&r.body).unwrap_or(Value::Null))
            }
            Ok(r) => {
                self.errors.push((op, r.status, r.text()));
                None
            }
            Err(e) => {
                self.errors.push((op, 0, e.to_string()));
                None
            }
        }
    }
}

struct Mine {
    name: String,
    running: bool,
    /// the shared networks it is on besides its first
    extra: Vec<&'static str>,
    first: &'static str,
}

fn client(sock: PathBuf, who: usize, until: Instant) -> Tally {
    let mut t = Tally::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((who as u64 + 1) * 0x2545_f491_4f6c_dd1d));
    let mut mine: Vec<Mine> = Vec::new();
    let own_net = format!("soak-own{who}");
    let mut have_net = false;
    let mut i = 0;
    while Instant::now() < until {
        i += 1;
        let pick = rng.below(10);
        match pick {
            // run: create + start (or rm when the client has four)
            0..=2 if mine.len() < 4 => {
                let name = format!("soak{who}-{i}");
                let first = NETS[rng.below(3) as usize];
                let (ports, labels, cmd) = match rng.below(2) {
                    0 => (
                        json!({"80/tcp": [{"HostIp": "", "HostPort": ""}]}),
                        json!({HTTP_LABEL: "1"}),
                        json!(["sh", "-c", "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 80 -h /www"]),
                    ),
                    _ => (json!({}), json!({}), json!(["sleep", "3600"])),
                };
                let body = json!({"Image": "busybox", "Cmd": cmd, "Labels": labels,
                    "ExposedPorts": {"80/tcp": {}},
                    "HostConfig": {"NetworkMode": first, "PortBindings": ports}});
                let path = format!("/v1.41/containers/create?name={name}");
                if t.call(&sock, "create", "POST", &path, Some(body), &[201])
                    .is_some()
                {
                    let path = format!("/v1.41/containers/{name}/start");
                    let running = t
                        .call(&sock, "start", "POST", &path, None, &[204])
                        .is_some();
                    mine.push(Mine {
                        name,
                        running,
                        extra: vec![],
                        first,
                    });
                }
            }
            0..=3 if !mine.is_empty() => {
                let m = mine.swap_remove(rng.below(mine.len() as u64) as usize);
                let path = format!("/v1.41/containers/{}?force=1", m.name);
                t.call(&sock, "rm -f", "DELETE", &path, None, &[204]);
            }
            4 if !mine.is_empty() => {
                let k = rng.below(mine.len() as u64) as usize;
                let m = &mut mine[k];
                let free: Vec<&'static str> = NETS
                    .iter()
                    .copied()
                    .filter(|n| *n != m.first && !m.extra.contains(n))
                    .collect();
                if let Some(n) = free.first() {
                    let body = json!({"Container": m.name});
                    let path = format!("/v1.41/networks/{n}/connect");
                    if t.call(&sock, "connect", "POST", &path, Some(body), &[200])
                        .is_some()
                    {
                        m.extra.push(n);
                    }
                }
            }
            5 if mine.iter().any(|m| !m.extra.is_empty()) => {
                let m = mine.iter_mut().find(|m| !m.extra.is_empty()).unwrap();
                let n = m.extra.pop().unwrap();
                let body = json!({"Container": m.name});
                let path = format!("/v1.41/networks/{n}/disconnect");
                t.call(&sock, "disconnect", "POST", &path, Some(body), &[200]);
            }
            6 if !mine.is_empty() => {
                let k = rng.below(mine.len() as u64) as usize;
                let m = &mut mine[k];
                let (op, path) = if m.running {
                    ("stop", format!("/v1.41/containers/{}/stop?t=0", m.name))
                } else {
                    ("start", format!("/v1.41/containers/{}/start", m.name))
                };
                if t.call(&sock, op, "POST", &path, None, &[204]).is_some() {
                    m.running = !m.running;
                }
            }
            7 if !mine.is_empty() => {
                let m = &mine[rng.below(mine.len() as u64) as usize];
                let path = format!("/v1.41/containers/{}/json", m.name);
                t.call(&sock, "inspect", "GET", &path, None, &[200]);
            }
            8 => {
                t.call(
                    &sock,
                    "ps -a",
                    "GET",
                    "/v1.41/containers/json?all=1",
                    None,
                    &[200],
                );
            }
            _ => {
                if have_net {
                    let path = format!("/v1.41/networks/{own_net}");
                    t.call(&sock, "network rm", "DELETE", &path, None, &[204]);
                    have_net = false;
                } else {
                    let body = json!({"Name": own_net, "CheckDuplicate": true});
                    let path = "/v1.41/networks/create";
                    have_net = t
                        .call(&sock, "network create", "POST", path, Some(body), &[201])
                        .is_some();
                }
            }
        }
    }
    t
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

pub fn run() {
    let minutes = env("BENCH_SOAK_MINUTES", 2);
    let clients = env("BENCH_SOAK_CLIENTS", 64);
    println!("\n== soak: {minutes} min, {clients} API clients ==");
    let lab = Lab::start();
    for n in NETS {
        lab.create_network(json!({"Name": n, "CheckDuplicate": true}));
    }
    let pid = lab.pid().expect("berthd");
    let (rss0, fds0) = (rss_kb(pid), fds(pid));
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs(minutes as u64 * 60);
    let threads: Vec<_> = (0..clients)
        .map(|who| {
            let sock = lab.sock();
            std::thread::spawn(move || client(sock, who, until))
        })
        .collect();
    // RSS and fds every 10 s, for the curve
    let mut samples = Vec::new();
    while Instant::now() < until {
        std::thread::sleep(Duration::from_secs(10).min(until - Instant::now()));
        samples.push((t0.elapsed().as_secs(), rss_kb(pid), fds(pid)));
    }
    let mut all = Tally::default();
    for th in threads {
        let t = th.join().unwrap();
        for (op, v) in t.times {
            all.times.entry(op).or_default().extend(v);
        }
        all.errors.extend(t.errors);
    }
    let (rss1, fds1) = (rss_kb(pid), fds(pid));
    let calls: usize = all.times.values().map(Vec::len).sum::<usize>() + all.errors.len();
    println!(
        "{calls} calls in {:.0} s ({:.0}/s)",
        t0.elapsed().as_secs_f64(),
        calls as f64 / t0.elapsed().as_secs_f64()
    );
    for (op, v) in &mut all.times {
        report(op, v);
    }
    println!("errors: {}", all.errors.len());
    for (op, st, msg) in all.errors.iter().take(20) {
        println!("  {op}: {st} {}", msg.trim());
    }
    println!(
        "berthd RSS {:.1} → {:.1} MB, open fds {fds0} → {fds1}",
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0
    );
    let curve: Vec<String> = samples
        .iter()
        .map(|(s, r, f)| format!("{s}s {:.1}MB/{f}", *r as f64 / 1024.0))
        .collect();
    println!("  every 10 s (RSS/fds): {}", curve.join(", "));
    let n = invariants::check(&lab, "the end of the soak");
    println!("invariants at the end: hold ({n:?})");
    // the same after removing everything: nothing left behind
    let (_, list) = {
        let r = request(&lab.sock(), "GET", "/containers/json?all=1", &[], None).unwrap();
        (r.status, r.json())
    };
    for c in list.as_array().unwrap() {
        let id = c["Id"].as_str().unwrap();
        let r = request(
            &lab.sock(),
            "DELETE",
            &format!("/containers/{id}?force=1"),
            &[],
            None,
        );
        assert_eq!(r.map(|r| r.status).ok(), Some(204));
    }
    let n = invariants::check(&lab, "after removing every container");
    println!(
        "after removing every container: hold ({n:?}); berthd RSS {:.1} MB, open fds {}",
        rss_kb(pid) as f64 / 1024.0,
        fds(pid)
    );
    // A window to look at the idle daemon from outside (a heap profiler, gdb).
    let hold = env("BENCH_SOAK_HOLD_SECS", 0);
    if hold > 0 {
        println!("holding berthd (pid {pid}) for {hold} s");
        std::thread::sleep(Duration::from_secs(hold as u64));
        println!(
            "berthd RSS {:.1} MB after the hold",
            rss_kb(pid) as f64 / 1024.0
        );
    }
}
