//! The multi-host lab: N [`Lab`] hosts joined by an "underlay" bridge, and a real etcd v3.
//!
//! ```text
//!   berthul-<pid>-k<k>  (underlay namespace)
//!     bridge ul0 10.99.k.1/24 ── etcd, client URL http://10.99.k.1:2379 (metrics/health on
//!                                :2381; more members on .2, .3, … when asked for)
//!       ├─ veth h0 ─── ul0 10.99.k.10/24   in host 0 (berthlab-<pid>-<n>, berthd)
//!       ├─ veth h1 ─── ul0 10.99.k.11/24   in host 1
//!       └─ …
//! ```
//!
//! Every host's berthd runs with `--cluster-store etcd://10.99.k.1:2379 --cluster-advertise
//! 10.99.k.(10+i):2376 --cluster-store-opt discovery.ttl=<ttl>`. `k` is unique among the
//! clusters alive on the machine (chosen under a lock file), so parallel tests never share an
//! underlay subnet. Dropping the [`Cluster`] kills the daemons, their containers and etcd and
//! deletes every namespace, also when a test panics; a later cluster sweeps the namespaces of
//! test processes that died without cleaning up.
//!
//! Where berthd's kernel objects for overlays are named (the overlay namespace under the exec
//! root, `vxlan0`, `br0`, `berth_gwbridge`) is known only to [`kernel`]: adjust it there.

use crate::lab::CMD_TIMEOUT;
use crate::net::in_netns;
use crate::{run, Lab};
use serde_json::Value;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// etcd's client port.
pub const ETCD_PORT: u16 = 2379;
/// etcd's plain-HTTP `/health` and `/metrics` port (also when clients must use TLS).
pub const ETCD_METRICS_PORT: u16 = 2381;
/// The port in every host's `--cluster-advertise`.
pub const ADVERTISE_PORT: u16 = 2376;
/// The underlay interface's name inside every host namespace.
pub const UNDERLAY_IF: &str = "ul0";
/// Lease TTL the hosts get unless told otherwise (`discovery.ttl`), in seconds.
pub const DEFAULT_TTL: u64 = 3;

const ETCD_TIMEOUT: Duration = Duration::from_secs(20);

/// How a cluster is built.
#[derive(Debug, Clone)]
pub struct ClusterOpts {
    pub hosts: usize,
    /// `--cluster-store-opt discovery.ttl=` for every host.
    pub ttl: u64,
    /// Hosts (by index) whose `--cluster-advertise` is given as `ul0:2376` instead of an address.
    pub advertise_iface: Vec<usize>,
    /// Extra berthd flags for every host.
    pub extra_args: Vec<String>,
    /// Start the daemons (else only the namespaces, the underlay and etcd).
    pub start_daemons: bool,
    /// etcd speaks TLS only and wants client certificates (a CA, server and client certificates
    /// made with `openssl` in etcd's temp dir); the hosts get `kv.cacertfile`, `kv.certfile`,
    /// `kv.keyfile`.
    pub tls: bool,
    /// etcd members (1..=9), on 10.99.k.1, .2, …; the hosts are given all of them.
    pub etcd_members: usize,
    /// etcd also serves the v2 API (`--enable-v2`), which Docker 20.10's classic mode (libkv's
    /// etcd backend) speaks; berthd needs only v3.
    pub etcd_v2: bool,
}

impl Default for ClusterOpts {
    fn default() -> Self {
        ClusterOpts {
            hosts: 3,
            ttl: DEFAULT_TTL,
            advertise_iface: Vec::new(),
            extra_args: Vec::new(),
            start_daemons: true,
            tls: false,
            etcd_members: 1,
            etcd_v2: false,
        }
    }
}

/// See the module documentation.
pub struct Cluster {
    /// The hosts, each a namespace with its own berthd. Dropped before etcd and the underlay.
    pub hosts: Vec<Lab>,
    /// The underlay namespace (bridge `ul0`, etcd).
    pub underlay: String,
    /// The third octet of the underlay subnet 10.99.k.0/24.
    pub k: u8,
    pub opts: ClusterOpts,
    /// The etcd members (None: stopped).
    etcd: Vec<Option<Child>>,
    etcd_dir: Option<TempDir>,
}

/// `/run/netns` entries of clusters: `berthul-<pid>-k<k>`.
const UL_PREFIX: &str = "berthul-";

fn sh(script: &str) {
    let o = run(Command::new("sh").arg("-c").arg(script), CMD_TIMEOUT);
    assert!(
        o.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Deletes underlay namespaces whose test process is gone; returns the `k`s still in use.
fn sweep_and_used() -> Vec<u8> {
    let mut used = Vec::new();
    let Ok(entries) = fs::read_dir("/run/netns") else {
        return used;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(UL_PREFIX) else {
            continue;
        };
        let mut parts = rest.split('-');
        let pid = parts.next().and_then(|p| p.parse::<u32>().ok());
        let k = parts
            .next()
            .and_then(|p| p.strip_prefix('k'))
            .and_then(|p| p.parse::<u8>().ok());
        match (pid, k) {
            (Some(pid), _) if !Path::new(&format!("/proc/{pid}")).exists() => {
                let _ = Command::new("ip")
                    .args(["netns", "del", &name])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            (_, Some(k)) => used.push(k),
            _ => {}
        }
    }
    used
}

/// Holds an exclusive `flock` on a file under /run while alive.
struct FileLock(#[allow(dead_code)] fs::File);

impl FileLock {
    fn take(path: &str) -> FileLock {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own; it is released when the file is closed.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {path}");
        FileLock(f)
    }
}

impl Cluster {
    /// `n` hosts with the default options (TTL 3 s), daemons running.
    pub fn new(n: usize) -> Cluster {
        Cluster::with(ClusterOpts {
            hosts: n,
            ..ClusterOpts::default()
        })
    }

    pub fn with(opts: ClusterOpts) -> Cluster {
        assert!(
            // SAFETY: geteuid takes nothing and cannot fail.
            unsafe { libc::geteuid() } == 0,
            "the e2e tests need root (network namespaces, bridges, nftables)"
        );
        assert!(opts.hosts >= 1 && opts.hosts <= 200, "1..=200 hosts");
        assert!((1..=9).contains(&opts.etcd_members), "1..=9 etcd members");
        // choose k and create the underlay namespace under one lock, so two test processes
        // never pick the same subnet
        let (underlay, k) = {
            let _lock = FileLock::take("/run/berth-e2e-cluster.lock");
            let used = sweep_and_used();
            let start = (std::process::id() as usize) % 250;
            let k = (0..250)
                .map(|i| ((start + i) % 250) as u8 + 1)
                .find(|k| !used.contains(k))
                .expect("a free underlay subnet (more than 250 clusters alive?)");
            let underlay = format!("{UL_PREFIX}{}-k{k}", std::process::id());
            sh(&format!(
                "ip netns add {underlay} && ip -n {underlay} link set lo up && \
                 ip -n {underlay} link add ul0 type bridge && \
                 ip -n {underlay} link set ul0 up"
            ));
            for m in 0..opts.etcd_members {
                sh(&format!(
                    "ip -n {underlay} addr add 10.99.{k}.{}/24 dev ul0",
                    m + 1
                ));
            }
            (underlay, k)
        };
        let etcd_dir = tempfile::Builder::new()
            .prefix("berthetcd-")
            .tempdir()
            .expect("tempdir");
        let mut c = Cluster {
            hosts: Vec::new(),
            underlay,
            k,
            opts: opts.clone(),
            etcd: (0..opts.etcd_members).map(|_| None).collect(),
            etcd_dir: Some(etcd_dir),
        };
        if opts.tls {
            c.make_certs();
        }
        c.start_etcd();
        for i in 0..opts.hosts {
            let lab = Lab::new_ns();
            let ip = c.host_ip(i);
            sh(&format!(
                "ip -n {ul} link add h{i} type veth peer name {UNDERLAY_IF} netns {ns} && \
                 ip -n {ul} link set h{i} master ul0 && ip -n {ul} link set h{i} up && \
                 ip -n {ns} addr add {ip}/24 dev {UNDERLAY_IF} && \
                 ip -n {ns} link set {UNDERLAY_IF} up",
                ul = c.underlay,
                ns = lab.ns
            ));
            c.hosts.push(lab);
        }
        if opts.start_daemons {
            for i in 0..opts.hosts {
                c.start_host(i);
            }
        }
        c
    }

    // ---------------------------------------------------------------- addresses

    /// The underlay address of host `i`: 10.99.k.(10+i).
    pub fn host_ip(&self, i: usize) -> String {
        format!("10.99.{}.{}", self.k, 10 + i)
    }

    /// The first etcd member's address (on the underlay bridge).
    pub fn etcd_ip(&self) -> String {
        self.etcd_member_ip(0)
    }

    /// etcd member `m`'s address: 10.99.k.(1+m).
    pub fn etcd_member_ip(&self, m: usize) -> String {
        format!("10.99.{}.{}", self.k, 1 + m)
    }

    /// The directory holding etcd's data, log and (with TLS) certificates.
    pub fn etcd_dir(&self) -> &Path {
        self.etcd_dir.as_ref().unwrap().path()
    }

    /// A CA, a server certificate for etcd's address and a client certificate, in etcd's dir:
    /// `ca.pem`, `server.pem`/`server.key`, `client.pem`/`client.key`.
    fn make_certs(&self) {
        let d = self.etcd_dir().display().to_string();
        let ip = (0..self.etcd.len())
            .map(|m| format!("IP:{}", self.etcd_member_ip(m)))
            .collect::<Vec<_>>()
            .join(",");
        sh(&format!(
            "set -e; cd {d}; \
             k='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'; \
             openssl req -x509 $k -keyout ca.key -out ca.pem -days 2 -subj /CN=berth-lab-ca 2>/dev/null; \
             openssl req $k -keyout server.key -out server.csr -subj /CN=etcd 2>/dev/null; \
             printf 'subjectAltName={ip}\nextendedKeyUsage=serverAuth,clientAuth\n' > server.ext; \
             openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext 2>/dev/null; \
             openssl req $k -keyout client.key -out client.csr -subj /CN=berthd 2>/dev/null; \
             printf 'extendedKeyUsage=clientAuth\n' > client.ext; \
             openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext 2>/dev/null"
        ));
    }

    /// `etcd://10.99.k.1:2379` (`,10.99.k.2:2379…` with several members)
    pub fn store_url(&self) -> String {
        let eps: Vec<String> = (0..self.etcd.len())
            .map(|m| format!("{}:{ETCD_PORT}", self.etcd_member_ip(m)))
            .collect();
        format!("etcd://{}", eps.join(","))
    }

    /// What host `i` gives as `--cluster-advertise`.
    pub fn advertise(&self, i: usize) -> String {
        if self.opts.advertise_iface.contains(&i) {
            format!("{UNDERLAY_IF}:{ADVERTISE_PORT}")
        } else {
            format!("{}:{ADVERTISE_PORT}", self.host_ip(i))
        }
    }

    /// The cluster flags of host `i` (plus [`ClusterOpts::extra_args`]).
    pub fn daemon_args(&self, i: usize) -> Vec<String> {
        let mut v = vec![
            "--cluster-store".to_string(),
            self.store_url(),
            "--cluster-advertise".to_string(),
            self.advertise(i),
            "--cluster-store-opt".to_string(),
            format!("discovery.ttl={}", self.opts.ttl),
        ];
        if self.opts.tls {
            let d = self.etcd_dir();
            for (k, f) in [
                ("kv.cacertfile", "ca.pem"),
                ("kv.certfile", "client.pem"),
                ("kv.keyfile", "client.key"),
            ] {
                v.push("--cluster-store-opt".to_string());
                v.push(format!("{k}={}", d.join(f).display()));
            }
        }
        v.extend(self.opts.extra_args.iter().cloned());
        v
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    pub fn host(&self, i: usize) -> &Lab {
        &self.hosts[i]
    }

    /// The lease TTL the hosts were given.
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.opts.ttl)
    }

    // ---------------------------------------------------------------- hosts

    /// Starts berthd on host `i` with the cluster flags (first start).
    pub fn start_host(&mut self, i: usize) {
        let args = self.daemon_args(i);
        let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        self.hosts[i].start_daemon(&refs);
    }

    /// `kill -9` of host `i`'s berthd (its containers keep running, nothing is cleaned up).
    pub fn kill9(&mut self, i: usize) {
        self.hosts[i].kill9();
    }

    /// Starts host `i`'s berthd again after [`Cluster::kill9`] / a stop, same flags and roots.
    pub fn start_again(&mut self, i: usize) {
        self.hosts[i].start_again();
    }

    /// SIGTERM, wait, start again.
    pub fn restart(&mut self, i: usize) {
        self.hosts[i].restart();
    }

    /// Whether host `from` reaches host `to`'s underlay address (one ping, 1 s).
    pub fn underlay_ping(&self, from: usize, to: usize) -> bool {
        let o = run(
            Command::new("ip").args([
                "netns",
                "exec",
                &self.hosts[from].ns,
                "busybox",
                "ping",
                "-c1",
                "-W1",
                &self.host_ip(to),
            ]),
            CMD_TIMEOUT,
        );
        o.status.success()
    }

    // ---------------------------------------------------------------- etcd

    /// Starts every etcd member that is not running (v3.4, `/usr/bin/etcd` or `$ETCD_BIN`) in
    /// the underlay namespace on its data dir (kept across stops) and waits until each says
    /// `/health` true.
    pub fn start_etcd(&mut self) {
        let stopped: Vec<usize> = (0..self.etcd.len())
            .filter(|&m| self.etcd[m].is_none())
            .collect();
        assert!(!stopped.is_empty(), "etcd already running");
        for &m in &stopped {
            self.spawn_member(m);
        }
        for m in stopped {
            self.wait_member(m);
        }
    }

    /// Starts one stopped member and waits until it is healthy.
    pub fn start_etcd_member(&mut self, m: usize) {
        assert!(self.etcd[m].is_none(), "etcd member {m} already running");
        self.spawn_member(m);
        self.wait_member(m);
    }

    fn spawn_member(&mut self, m: usize) {
        let bin = std::env::var("ETCD_BIN").unwrap_or_else(|_| "/usr/bin/etcd".into());
        assert!(
            Path::new(&bin).is_file(),
            "{bin} not found: apt-get install etcd-server (see .ci/install)"
        );
        let dir = self.etcd_dir().to_path_buf();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("etcd{m}.log")))
            .unwrap();
        let log2 = log.try_clone().unwrap();
        let ip = self.etcd_member_ip(m);
        let scheme = if self.opts.tls { "https" } else { "http" };
        let client = format!("{scheme}://{ip}:{ETCD_PORT}");
        let metrics = format!("http://{ip}:{ETCD_METRICS_PORT}");
        let peer = format!("http://{ip}:2380");
        let initial: Vec<String> = (0..self.etcd.len())
            .map(|j| format!("m{j}=http://{}:2380", self.etcd_member_ip(j)))
            .collect();
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.underlay))
            .arg("--")
            .arg(&bin)
            .args(["--name", &format!("m{m}")])
            .arg("--data-dir")
            .arg(dir.join(format!("data{m}")))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-metrics-urls", &metrics])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-token", &self.underlay])
            .args(["--log-outputs", "stderr", "--logger", "zap"]);
        if self.opts.etcd_v2 {
            cmd.arg("--enable-v2");
        }
        if self.opts.tls {
            cmd.arg("--cert-file")
                .arg(dir.join("server.pem"))
                .arg("--key-file")
                .arg(dir.join("server.key"))
                .arg("--trusted-ca-file")
                .arg(dir.join("ca.pem"))
                .arg("--client-cert-auth");
        }
        cmd.env_remove("ETCD_UNSUPPORTED_ARCH")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        crate::die_with_parent(&mut cmd);
        self.etcd[m] = Some(cmd.spawn().expect("spawn etcd"));
    }

    fn wait_member(&mut self, m: usize) {
        let deadline = Instant::now() + ETCD_TIMEOUT;
        loop {
            if let Some(st) = self.etcd[m].as_mut().unwrap().try_wait().unwrap() {
                self.etcd[m] = None;
                panic!("etcd member {m} exited ({st}):\n{}", self.etcd_log_tail(40));
            }
            if self.etcd_member_healthy(m) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd member {m} not healthy within {ETCD_TIMEOUT:?}:\n{}",
                self.etcd_log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills every etcd member (SIGKILL: an outage, not a clean shutdown). Data dirs are kept.
    pub fn stop_etcd(&mut self) {
        assert!(self.etcd_running(), "etcd not running");
        for m in 0..self.etcd.len() {
            if self.etcd[m].is_some() {
                self.stop_etcd_member(m);
            }
        }
    }

    /// Kills one etcd member.
    pub fn stop_etcd_member(&mut self, m: usize) {
        let mut c = self.etcd[m].take().expect("etcd member not running");
        let _ = c.kill();
        let _ = c.wait();
    }

    /// Whether any member runs.
    pub fn etcd_running(&self) -> bool {
        self.etcd.iter().any(|c| c.is_some())
    }

    /// Every member healthy (`GET /health` on its metrics URL from the underlay namespace).
    pub fn etcd_healthy(&self) -> bool {
        (0..self.etcd.len()).all(|m| self.etcd_member_healthy(m))
    }

    pub fn etcd_member_healthy(&self, m: usize) -> bool {
        matches!(self.etcd_member_get(m, "/health"), Ok((200, b)) if b.contains("\"health\":\"true\""))
    }

    /// A plain HTTP/1.0 GET on the first member's metrics URL (`/health`, `/metrics`;
    /// `/version` too unless TLS is on, from the client URL).
    pub fn etcd_get(&self, path: &str) -> Result<(u16, String), String> {
        self.etcd_member_get(0, path)
    }

    pub fn etcd_member_get(&self, m: usize, path: &str) -> Result<(u16, String), String> {
        let port = if path == "/version" && !self.opts.tls {
            ETCD_PORT
        } else {
            ETCD_METRICS_PORT
        };
        let to: SocketAddr = format!("{}:{port}", self.etcd_member_ip(m))
            .parse()
            .unwrap();
        let req = format!("GET {path} HTTP/1.0\r\nHost: {to}\r\n\r\n");
        in_netns(format!("/run/netns/{}", self.underlay), move || {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(1))
                .map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
            let mut out = String::new();
            s.read_to_string(&mut out).map_err(|e| e.to_string())?;
            let status = out
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("not HTTP: {out:?}"))?;
            let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
            Ok((status, body.to_string()))
        })
    }

    /// etcd's `grpc_server_handled_total` counters summed over the running members (from
    /// `/metrics`): a crude count of the requests the cluster answered.
    pub fn etcd_requests(&self) -> Option<u64> {
        let mut n = 0f64;
        for m in 0..self.etcd.len() {
            if self.etcd[m].is_none() {
                continue;
            }
            let (_, body) = self.etcd_member_get(m, "/metrics").ok()?;
            for l in body.lines() {
                if l.starts_with("grpc_server_handled_total{") {
                    n += l.rsplit(' ').next()?.parse::<f64>().ok()?;
                }
            }
        }
        Some(n as u64)
    }

    /// The last `n` lines of every member's log.
    pub fn etcd_log_tail(&self, n: usize) -> String {
        let Some(d) = self.etcd_dir.as_ref() else {
            return String::new();
        };
        let mut out = String::new();
        for m in 0..self.etcd.len() {
            let s = fs::read_to_string(d.path().join(format!("etcd{m}.log"))).unwrap_or_default();
            let lines: Vec<&str> = s.lines().collect();
            out += &format!(
                "[member {m}]\n{}\n",
                lines[lines.len().saturating_sub(n)..].join("\n")
            );
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        // the hosts first: their daemons and containers, then their namespaces
        self.hosts.clear();
        for c in self.etcd.iter_mut() {
            if let Some(mut c) = c.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if panicking {
            eprintln!(
                "----- last 20 lines of etcd.log -----\n{}\n----- end of etcd.log -----",
                self.etcd_log_tail(20)
            );
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.underlay])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        self.etcd_dir.take();
    }
}

// -------------------------------------------------------------------- helpers on a host

/// `GET /containers/{c}/json`; asserts 200.
pub fn container(lab: &Lab, c: &str) -> Value {
    let (st, v) = lab.api("GET", &format!("/containers/{c}/json"), None);
    assert_eq!(st, 200, "inspect container {c}: {v}");
    v
}

/// A container's address on `net`.
pub fn ip_of(lab: &Lab, c: &str, net: &str) -> String {
    let v = container(lab, c);
    v["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| panic!("{c} has no address on {net}: {}", v["NetworkSettings"]))
        .to_string()
}

/// A container's network namespace (`SandboxKey`).
pub fn sandbox(lab: &Lab, c: &str) -> PathBuf {
    let v = container(lab, c);
    PathBuf::from(
        v["NetworkSettings"]["SandboxKey"]
            .as_str()
            .unwrap_or_else(|| panic!("{c} has no SandboxKey")),
    )
}

/// Runs a command inside a namespace pinned at `netns` (a container's sandbox, an overlay
/// namespace), with the host's tools: `nsenter --net=<netns> -- args…`.
pub fn nsexec(netns: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", netns.display()))
        .arg("--")
        .args(args);
    run(&mut cmd, CMD_TIMEOUT)
}

/// `berth run -d --name NAME ARGS… busybox sleep 1d` on `lab`; the container id.
pub fn run_sleeper(lab: &Lab, name: &str, args: &[&str]) -> String {
    let mut v = vec!["run", "-d", "--name", name];
    v.extend_from_slice(args);
    v.extend_from_slice(&["busybox", "sleep", "1d"]);
    crate::ok(&lab.cli(&v), &format!("run {name} on {}", lab.ns))
}

/// Polls `f` every 50 ms until it returns `Some` or `within` has passed; panics with `what`
/// (and the last value seen, via `f`'s own reporting) when it does not.
pub fn wait_for<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `f` (every 50 ms, ≤ `within`) until its first value is true; panics with `what` and
/// the last state `f` described when it never is. How long it took.
pub fn wait_state(within: Duration, what: &str, mut f: impl FnMut() -> (bool, String)) -> Duration {
    let t = Instant::now();
    let deadline = t + within;
    loop {
        let (done, state) = f();
        if done {
            return t.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?}; last state: {state}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Like [`wait_for`] for a condition; returns how long it took.
pub fn wait_until(within: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    wait_for(within, what, || f().then_some(()));
    t.elapsed()
}

// -------------------------------------------------------------------- overlay helpers

/// The body `berth network create -d overlay NAME` sends.
pub fn overlay_body(name: &str) -> Value {
    serde_json::json!({"Name": name, "CheckDuplicate": true, "Driver": "overlay"})
}

impl Cluster {
    /// Creates overlay `name` on host `i` through the API (201 asserted); its id.
    pub fn create_overlay(&self, i: usize, name: &str) -> String {
        self.hosts[i].create_network(overlay_body(name))
    }

    /// Waits (≤ 3 s) until every host inspects `name` with id `id` and scope global; how long
    /// the slowest took.
    pub fn wait_network_everywhere(&self, name: &str, id: &str) -> Duration {
        wait_until(
            Duration::from_secs(3),
            &format!("network {name} ({id}) on every host"),
            || {
                self.hosts.iter().all(|h| {
                    let (st, v) = h.api("GET", &format!("/networks/{name}"), None);
                    st == 200 && v["Id"] == id && v["Scope"] == "global"
                })
            },
        )
    }

    /// Waits (≤ 3 s) until no host knows network `name`.
    pub fn wait_network_gone_everywhere(&self, name: &str) {
        wait_until(
            Duration::from_secs(3),
            &format!("network {name} gone from every host"),
            || {
                self.hosts
                    .iter()
                    .all(|h| h.api("GET", &format!("/networks/{name}"), None).0 == 404)
            },
        );
    }
}

/// `berth exec C args…` on `lab`.
pub fn exec(lab: &Lab, c: &str, args: &[&str]) -> Output {
    let mut v = vec!["exec", c];
    v.extend_from_slice(args);
    lab.cli(&v)
}

/// Whether container `c` on `lab` gets an answer to one ping (busybox `ping -c1 -W2`) to
/// `target` (an address or a name, resolved by the container's own resolver).
pub fn pings(lab: &Lab, c: &str, target: &str) -> bool {
    exec(lab, c, &["ping", "-c1", "-W2", target])
        .status
        .success()
}

/// One ping from inside a namespace pinned at `netns` (the host's busybox; no name lookup).
pub fn ns_pings(netns: &Path, ip: &str) -> bool {
    nsexec(netns, &["busybox", "ping", "-c1", "-W1", ip])
        .status
        .success()
}

/// The A records container `from` (on `lab`) gets for `name` from 127.0.0.11, asked with an
/// independent client from inside its namespace; empty unless the answer is NOERROR.
pub fn resolve(lab: &Lab, from: &str, name: &str) -> Vec<String> {
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::RecordType;
    let ns = sandbox(lab, from);
    match crate::dns::ask_udp(&ns, "127.0.0.11:53".parse().unwrap(), name, RecordType::A) {
        Some(r) if r.rcode == ResponseCode::NoError => r.answers,
        _ => Vec::new(),
    }
}

/// A DNS query for the A records of `name`, as bytes (for clients that loop on a socket).
pub fn a_query(name: &str) -> Vec<u8> {
    crate::dns::query(name, hickory_proto::rr::RecordType::A)
}

/// Waits (≤ `within`) until `from` resolves `name` to exactly `[ip]`.
pub fn wait_resolves(lab: &Lab, from: &str, name: &str, ip: &str, within: Duration) -> Duration {
    wait_until(
        within,
        &format!("{from} on {} resolving {name} to {ip}", lab.ns),
        || resolve(lab, from, name) == [ip],
    )
}

/// Every container address on `net` on every host: `(host, container name, ip)`.
pub fn all_addresses(c: &Cluster, net: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    for (i, h) in c.hosts.iter().enumerate() {
        let (st, v) = h.api("GET", "/containers/json?all=1", None);
        if st != 200 {
            continue;
        }
        for ct in v.as_array().into_iter().flatten() {
            let Some(id) = ct["Id"].as_str() else {
                continue;
            };
            let ct = container(h, id);
            let ip = ct["NetworkSettings"]["Networks"][net]["IPAddress"]
                .as_str()
                .unwrap_or("");
            if !ip.is_empty() {
                let name = ct["Name"].as_str().unwrap_or("?").trim_start_matches('/');
                out.push((i, name.to_string(), ip.to_string()));
            }
        }
    }
    out
}

/// Panics if two containers anywhere in the cluster share an address on `net`.
pub fn assert_no_duplicate_addresses(c: &Cluster, net: &str) -> Vec<(usize, String, String)> {
    let all = all_addresses(c, net);
    let mut seen = std::collections::HashMap::new();
    for (h, name, ip) in &all {
        if let Some((h0, n0)) = seen.insert(ip.clone(), (*h, name.clone())) {
            panic!("{ip} on {net} is held by {n0} (host {h0}) and {name} (host {h}): {all:?}");
        }
    }
    all
}

/// A process running in a namespace in the background (a traffic flow); killed when dropped.
pub struct Background(Option<Child>);

impl Background {
    /// `nsenter --net=<netns> -- args…`, stdout captured, stderr dropped.
    pub fn spawn_in(netns: &Path, args: &[&str]) -> Background {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", netns.display()))
            .arg("--")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        crate::die_with_parent(&mut cmd);
        Background(Some(
            cmd.spawn().unwrap_or_else(|e| panic!("{args:?}: {e}")),
        ))
    }

    /// Waits for the process to end; its stdout.
    pub fn output(mut self) -> String {
        let out = self.0.take().unwrap().wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// SIGINT (busybox ping then prints its statistics), wait; its stdout.
    pub fn interrupt(self) -> String {
        if let Some(c) = self.0.as_ref() {
            // SAFETY: a signal to our own child, which has not been waited for yet.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGINT);
            }
        }
        self.output()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// busybox ping's summary: `(transmitted, received)` from `N packets transmitted, M …`.
pub fn ping_stats(out: &str) -> Option<(u64, u64)> {
    let line = out.lines().find(|l| l.contains("packets transmitted"))?;
    let nums: Vec<u64> = line
        .split(|ch: char| !ch.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    Some((*nums.first()?, *nums.get(1)?))
}

// -------------------------------------------------------------------- kernel names

/// Every assumption about the names of berthd's overlay kernel objects, in one place.
pub mod kernel {
    use super::*;

    /// The VXLAN device inside an overlay namespace.
    pub const VXLAN: &str = "vxlan0";
    /// The bridge inside an overlay namespace (holds the gateway address).
    pub const BRIDGE: &str = "br0";
    /// The kernel bridge of the local `docker_gwbridge` network.
    pub const GWBRIDGE: &str = "berth_gwbridge";
    /// The name of the local network every non-internal overlay container also joins.
    pub const GWBRIDGE_NET: &str = "docker_gwbridge";
    /// VXLAN's UDP port.
    pub const VXLAN_PORT: u64 = 4789;

    /// The pinned namespace of overlay network `net_id` on `lab`: the entry of
    /// `<exec_root>/netns/` whose name contains the id's first 12 hex digits.
    pub fn overlay_ns(lab: &Lab, net_id: &str) -> Option<PathBuf> {
        let short = &net_id[..12];
        let dir = lab.exec_root().join("netns");
        fs::read_dir(&dir)
            .ok()?
            .flatten()
            .find(|e| e.file_name().to_string_lossy().contains(short))
            .map(|e| e.path())
    }

    fn json_in(ns: &Path, args: &[&str]) -> Value {
        let o = nsexec(ns, args);
        assert!(
            o.status.success(),
            "{args:?} in {}: {}",
            ns.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        let s = String::from_utf8_lossy(&o.stdout);
        if s.trim().is_empty() {
            return Value::Array(vec![]);
        }
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("{args:?}: bad JSON ({e}): {s}"))
    }

    /// `ip -d -j link show dev vxlan0` in the overlay namespace.
    pub fn vxlan_link(ns: &Path) -> Option<Value> {
        let v = json_in(ns, &["ip", "-d", "-j", "link", "show"]);
        v.as_array()?.iter().find(|l| l["ifname"] == VXLAN).cloned()
    }

    /// `bridge -j fdb show dev vxlan0` as it is (for failure messages).
    pub fn vxlan_fdb_raw(ns: &Path) -> Value {
        json_in(ns, &["bridge", "-j", "fdb", "show", "dev", VXLAN])
    }

    /// FDB entries on vxlan0 with a remote `dst` (permanent, or learned if learning is on):
    /// `(mac, dst)`.
    pub fn vxlan_fdb(ns: &Path) -> Vec<(String, String)> {
        let v = json_in(ns, &["bridge", "-j", "fdb", "show", "dev", VXLAN]);
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let dst = e["dst"].as_str()?;
                let mac = e["mac"].as_str()?;
                (mac != "00:00:00:00:00:00").then(|| (mac.to_string(), dst.to_string()))
            })
            .collect()
    }

    /// Permanent neighbour entries on vxlan0: `(ip, mac)`.
    pub fn vxlan_neigh(ns: &Path) -> Vec<(String, String)> {
        let v = json_in(ns, &["ip", "-j", "neigh", "show", "dev", VXLAN]);
        v.as_array()
            .into_iter()
            .flatten()
            .filter(|e| {
                e["state"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|x| x == "PERMANENT"))
            })
            .filter_map(|e| {
                Some((
                    e["dst"].as_str()?.to_string(),
                    e["lladdr"].as_str()?.to_string(),
                ))
            })
            .collect()
    }

    /// Docker's overlay MAC for an IPv4 address: `02:42:` + the address's bytes.
    pub fn mac_for(ip: &str) -> String {
        let a: std::net::Ipv4Addr = ip.parse().unwrap();
        let o = a.octets();
        format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ping_summary() {
        let out = "PING 10.0.0.3 (10.0.0.3): 56 data bytes\n\n--- 10.0.0.3 ping statistics ---\n\
                   40 packets transmitted, 39 packets received, 2% packet loss\n";
        assert_eq!(super::ping_stats(out), Some((40, 39)));
    }

    #[test]
    fn overlay_mac() {
        assert_eq!(super::kernel::mac_for("10.0.0.2"), "02:42:0a:00:00:02");
    }
}
