//! `GET /containers/{id}/stats`: Docker's stats JSON read from the container's cgroups (v1
//! or v2, found through `/proc/<pid>/cgroup`, so wherever runc placed them) and, for
//! `networks`, from `/proc/<pid>/net/dev`, which shows the container's network namespace.

use super::record::ZERO_TIME;
use super::{Ctr, Engine};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Kernel clock ticks per second (`USER_HZ`), the unit of `cpuacct.stat` and `/proc/stat`.
const USER_HZ: u64 = 100;
const NS_PER_TICK: u64 = 1_000_000_000 / USER_HZ;

/// Where a process's cgroups are.
enum Cgroups {
    /// controller → directory
    V1(BTreeMap<String, PathBuf>),
    V2(PathBuf),
}

impl Cgroups {
    fn of(pid: i32) -> Option<Cgroups> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let mut v1 = BTreeMap::new();
        let mut unified = None;
        for line in text.lines() {
            let mut f = line.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            let path = path.trim_start_matches('/');
            if ctrls.is_empty() {
                unified = Some(path.to_string());
                continue;
            }
            for c in ctrls.split(',') {
                v1.insert(
                    c.to_string(),
                    PathBuf::from("/sys/fs/cgroup").join(c).join(path),
                );
            }
        }
        let v2_root = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        match unified {
            Some(p) if v2_root => Some(Cgroups::V2(PathBuf::from("/sys/fs/cgroup").join(p))),
            _ if !v1.is_empty() => Some(Cgroups::V1(v1)),
            _ => None,
        }
    }
}

fn read(p: PathBuf) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn num(p: PathBuf) -> Option<u64> {
    read(p)?.trim().parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat).
fn kv(text: &str) -> Map<String, Value> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), json!(v.trim().parse::<u64>().ok()?)))
        })
        .collect()
}

fn get(m: &Map<String, Value>, k: &str) -> u64 {
    m.get(k).and_then(Value::as_u64).unwrap_or(0)
}

/// (total of all CPUs' time in ns, number of CPUs) from `/proc/stat`.
fn system_cpu() -> (u64, u64) {
    let text = read("/proc/stat".into()).unwrap_or_default();
    let mut total = 0;
    let mut cpus = 0;
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("cpu ") {
            // user nice system idle iowait irq softirq steal (guest time is inside user)
            total = rest
                .split_whitespace()
                .take(8)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum::<u64>()
                * NS_PER_TICK;
        } else if l.starts_with("cpu") {
            cpus += 1;
        }
    }
    (total, cpus)
}

fn host_memory() -> u64 {
    read("/proc/meminfo".into())
        .and_then(|t| {
            let l = t.lines().find(|l| l.starts_with("MemTotal:"))?;
            l.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map(|kb| kb * 1024)
        .unwrap_or(u64::MAX)
}

/// Per-interface counters of the namespace `pid` lives in, loopback left out (as Docker).
pub fn networks(pid: i32) -> Map<String, Value> {
    parse_net_dev(&read(format!("/proc/{pid}/net/dev").into()).unwrap_or_default())
}

fn parse_net_dev(text: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if name == "lo" || v.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            json!({"rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                   "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11]}),
        );
    }
    out
}

/// `8:0 Read 4096` lines (v1 blkio) → Docker's entries, the `Total` line left out.
fn blkio_v1(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, val) = (f.next()?, f.next()?, f.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(
                json!({"major": major.parse::<u64>().ok()?, "minor": minor.parse::<u64>().ok()?,
                        "op": op, "value": val.parse::<u64>().ok()?}),
            )
        })
        .collect()
}

/// `8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...` lines (v2 io.stat) → (bytes, ios) entries.
fn blkio_v2(text: &str) -> (Vec<Value>, Vec<Value>) {
    let (mut bytes, mut ios) = (vec![], vec![]);
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            let e = |op: &str| json!({"major": major, "minor": minor, "op": op, "value": v});
            match k {
                "rbytes" => bytes.push(e("read")),
                "wbytes" => bytes.push(e("write")),
                "rios" => ios.push(e("read")),
                "wios" => ios.push(e("write")),
                _ => {}
            }
        }
    }
    (bytes, ios)
}

fn zero_cpu() -> Value {
    json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
           "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}})
}

fn blkio(bytes: Value, ios: Value) -> Value {
    json!({"io_service_bytes_recursive": bytes, "io_serviced_recursive": ios,
           "io_queue_recursive": [], "io_service_time_recursive": [],
           "io_wait_time_recursive": [], "io_merged_recursive": [], "io_time_recursive": [],
           "sectors_recursive": []})
}

impl Engine {
    /// The stats of a container that does not run: Docker's zeroed document.
    pub fn stats_empty(&self, c: &Ctr) -> Value {
        let rec = c.snapshot();
        json!({"read": ZERO_TIME, "preread": ZERO_TIME, "pids_stats": {},
               "blkio_stats": blkio(Value::Null, Value::Null), "num_procs": 0,
               "storage_stats": {}, "cpu_stats": zero_cpu(), "precpu_stats": zero_cpu(),
               "memory_stats": {}, "name": format!("/{}", rec.name), "id": rec.id})
    }

    /// A reading of a running container (`precpu_stats` zero, `preread` the zero time:
    /// the caller fills them from the previous reading). `None`: it does not run.
    pub fn stats_sample(&self, c: &Ctr) -> Option<Value> {
        let rec = c.snapshot();
        if !rec.running() || rec.state.pid <= 0 {
            return None;
        }
        let pid = rec.state.pid;
        let cg = Cgroups::of(pid)?;
        let (system, cpus) = system_cpu();
        let host_mem = host_memory();
        let (cpu, memory, pids, blk) = match &cg {
            Cgroups::V1(m) => {
                let dir = |c: &str| m.get(c).cloned().unwrap_or_default();
                let acct = dir("cpuacct");
                let percpu: Vec<u64> = read(acct.join("cpuacct.usage_percpu"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
                let st = kv(&read(acct.join("cpuacct.stat")).unwrap_or_default());
                let thr = kv(&read(dir("cpu").join("cpu.stat")).unwrap_or_default());
                let online = if percpu.is_empty() {
                    cpus
                } else {
                    percpu.len() as u64
                };
                let cpu = json!({
                    "cpu_usage": {"total_usage": num(acct.join("cpuacct.usage")).unwrap_or(0),
                                  "percpu_usage": percpu,
                                  "usage_in_kernelmode": get(&st, "system") * NS_PER_TICK,
                                  "usage_in_usermode": get(&st, "user") * NS_PER_TICK},
                    "system_cpu_usage": system, "online_cpus": online,
                    "throttling_data": {"periods": get(&thr, "nr_periods"),
                                        "throttled_periods": get(&thr, "nr_throttled"),
                                        "throttled_time": get(&thr, "throttled_time")}});
                let mem = dir("memory");
                let stats = kv(&read(mem.join("memory.stat")).unwrap_or_default());
                let limit = num(mem.join("memory.limit_in_bytes"))
                    .unwrap_or(u64::MAX)
                    .min(host_mem);
                let memory = json!({"usage": num(mem.join("memory.usage_in_bytes")).unwrap_or(0),
                                    "max_usage": num(mem.join("memory.max_usage_in_bytes")).unwrap_or(0),
                                    "stats": stats, "limit": limit});
                let p = dir("pids");
                let mut pids = json!({"current": num(p.join("pids.current")).unwrap_or(0)});
                if let Some(l) = num(p.join("pids.max")) {
                    pids["limit"] = json!(l);
                }
                let b = dir("blkio");
                let pick = |names: [&str; 2]| {
                    let t = names
                        .iter()
                        .find_map(|n| read(b.join(n)).filter(|t| !t.trim().is_empty()))
                        .unwrap_or_default();
                    Value::from(blkio_v1(&t))
                };
                let blk = blkio(
                    pick([
                        "blkio.throttle.io_service_bytes_recursive",
                        "blkio.throttle.io_service_bytes",
                    ]),
                    pick([
                        "blkio.throttle.io_serviced_recursive",
                        "blkio.throttle.io_serviced",
                    ]),
                );
                (cpu, memory, pids, blk)
            }
            Cgroups::V2(d) => {
                let st = kv(&read(d.join("cpu.stat")).unwrap_or_default());
                let cpu = json!({
                    "cpu_usage": {"total_usage": get(&st, "usage_usec") * 1000,
                                  "usage_in_kernelmode": get(&st, "system_usec") * 1000,
                                  "usage_in_usermode": get(&st, "user_usec") * 1000},
                    "system_cpu_usage": system, "online_cpus": cpus,
                    "throttling_data": {"periods": get(&st, "nr_periods"),
                                        "throttled_periods": get(&st, "nr_throttled"),
                                        "throttled_time": get(&st, "throttled_usec") * 1000}});
                let limit = num(d.join("memory.max")).unwrap_or(u64::MAX).min(host_mem);
                let memory = json!({"usage": num(d.join("memory.current")).unwrap_or(0),
                                    "stats": kv(&read(d.join("memory.stat")).unwrap_or_default()),
                                    "limit": limit});
                let mut pids = json!({"current": num(d.join("pids.current")).unwrap_or(0)});
                if let Some(l) = num(d.join("pids.max")) {
                    pids["limit"] = json!(l);
                }
                let (bytes, ios) = blkio_v2(&read(d.join("io.stat")).unwrap_or_default());
                (cpu, memory, pids, blkio(bytes.into(), ios.into()))
            }
        };
        let mut v = json!({"read": stamp(), "preread": ZERO_TIME, "pids_stats": pids,
                           "blkio_stats": blk, "num_procs": 0, "storage_stats": {},
                           "cpu_stats": cpu, "precpu_stats": zero_cpu(), "memory_stats": memory,
                           "name": format!("/{}", rec.name), "id": rec.id});
        if !rec.shares_netns() && !rec.networks.is_empty() {
            v["networks"] = Value::Object(networks(pid));
        }
        Some(v)
    }
}

/// RFC 3339 with nanoseconds, as Go writes `time.Time`.
fn stamp() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_files() {
        let dev = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n    lo:     10       1    0    0    0     0          0         0       10       1    0    0    0     0       0          0\n  eth0:    486       5    0    1    0     0          0         0      90       2    0    0    0     0       0          0\n";
        let n = parse_net_dev(dev);
        assert!(!n.contains_key("lo"));
        assert_eq!(n["eth0"]["rx_bytes"], 486);
        assert_eq!(n["eth0"]["rx_dropped"], 1);
        assert_eq!(n["eth0"]["tx_bytes"], 90);
        assert_eq!(n["eth0"]["tx_packets"], 2);
        let v1 = blkio_v1("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(v1.len(), 2);
        assert_eq!(
            v1[0],
            json!({"major": 8, "minor": 0, "op": "Read", "value": 4096})
        );
        let (b, i) = blkio_v2("259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(b[1]["value"], 20);
        assert_eq!(i[0]["op"], "read");
        let m = kv("cache 0\nrss 53248\n");
        assert_eq!(get(&m, "rss"), 53248);
    }
}
