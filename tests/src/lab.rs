//! The "lab host": a private network namespace with its own berthd, temp roots and socket.

use crate::http::{self, Response};
use crate::nft::{self, NftState};
use crate::{run, run_ok};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tempfile::TempDir;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// How long to wait for the daemon to answer `/_ping` (and to exit after SIGTERM).
const DAEMON_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound for one CLI invocation.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// A lab host: network namespace `berthlab-<pid>-<n>`, temp dir with `data/`, `exec/`,
/// `exec/berth.sock`, `berthd.log`, and the daemon running inside the namespace.
///
/// Dropping it kills the daemon, deletes the namespace (and with it every bridge, veth and nft
/// rule the daemon made) and removes the temp dir. Set `BERTH_E2E_KEEP=1` to keep the temp dir
/// of a failed test.
pub struct Lab {
    pub ns: String,
    dir: Option<TempDir>,
    daemon: Option<Child>,
    args: Vec<String>,
    starts: usize,
    env: Vec<(String, String)>,
    /// the start under way is expected to die ([`Lab::start_to_die`])
    launch_to_die: bool,
}

/// Binary lookup: `$BERTHD_BIN` / `$BERTH_BIN`, else next to the test executable
/// (`target/<profile>/deps/<test>` → `target/<profile>/<name>`).
pub fn bin_path(name: &str, env: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "{env}={} does not name an executable file",
            p.display()
        );
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut candidates = Vec::new();
    let mut dir = exe.parent();
    // deps/ → profile dir; also tolerate being run from the profile dir itself.
    for _ in 0..3 {
        if let Some(d) = dir {
            candidates.push(d.join(name));
            dir = d.parent();
        }
    }
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "the `{name}` binary was not found (looked in {:?}); build it first with \
         `cargo build --workspace` (the e2e tests run the real binaries), or point {env} at it",
        candidates
    );
}

pub fn berthd_bin() -> PathBuf {
    bin_path("berthd", "BERTHD_BIN")
}

pub fn berth_bin() -> PathBuf {
    bin_path("berth", "BERTH_BIN")
}

pub fn docker_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("DOCKER_BIN") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from("/usr/local/bin/docker");
    if p.is_file() {
        return p;
    }
    PathBuf::from("docker")
}

/// Deletes `berthlab-<pid>-*` namespaces whose test process is gone (left by a SIGKILLed run).
fn sweep_stale_namespaces() {
    let Ok(entries) = fs::read_dir("/run/netns") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("berthlab-") else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip")
                .args(["netns", "del", &name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Lab {
    /// A namespace and a running daemon with default flags.
    pub fn start() -> Lab {
        Lab::start_with(&[])
    }

    /// A namespace and a running daemon with extra flags (after the roots and `-H`).
    pub fn start_with(args: &[&str]) -> Lab {
        let mut lab = Lab::new_ns();
        lab.start_daemon(args);
        lab
    }

    /// Only the namespace (with `lo` up) and the temp dirs: prepare the "host" with
    /// [`Lab::ip`]/[`Lab::sh`], then call [`Lab::start_daemon`].
    pub fn new_ns() -> Lab {
        assert!(
            // SAFETY: geteuid takes nothing and cannot fail.
            unsafe { libc::geteuid() } == 0,
            "the e2e tests need root (network namespaces, bridges, nftables)"
        );
        sweep_stale_namespaces();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let ns = format!("berthlab-{}-{}", std::process::id(), n);
        let out = run(Command::new("ip").args(["netns", "add", &ns]), CMD_TIMEOUT);
        assert!(
            out.status.success(),
            "ip netns add {ns} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = tempfile::Builder::new()
            .prefix("berthlab-")
            .tempdir()
            .expect("tempdir");
        for d in ["data", "exec", "docker-config"] {
            fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        fs::write(dir.path().join("resolv.conf"), "").unwrap();
        let lab = Lab {
            ns,
            dir: Some(dir),
            daemon: None,
            args: Vec::new(),
            starts: 0,
            launch_to_die: false,
            env: Vec::new(),
        };
        lab.ip(&["link", "set", "lo", "up"]);
        lab
    }

    // ---------------------------------------------------------------- paths

    /// The lab's network namespace, as named under /run/netns.
    pub fn ns(&self) -> &str {
        &self.ns
    }
    pub fn root(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }
    pub fn data_root(&self) -> PathBuf {
        self.root().join("data")
    }
    pub fn exec_root(&self) -> PathBuf {
        self.root().join("exec")
    }
    pub fn sock(&self) -> PathBuf {
        self.exec_root().join("berth.sock")
    }
    /// `unix:///tmp/.../exec/berth.sock`
    pub fn host_uri(&self) -> String {
        format!("unix://{}", self.sock().display())
    }
    /// The lab's "host resolv.conf" given to berthd: no server unless a test writes one, so
    /// nothing is ever forwarded to the machine's own resolver.
    pub fn resolv_conf(&self) -> PathBuf {
        self.root().join("resolv.conf")
    }
    pub fn log_path(&self) -> PathBuf {
        self.root().join("berthd.log")
    }

    /// The last `n` lines of berthd.log.
    pub fn log_tail(&self, n: usize) -> String {
        let s = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    // ---------------------------------------------------------------- daemon

    /// Starts berthd in the namespace with `args` (remembered for [`Lab::restart`]) and waits
    /// until `GET /_ping` answers `OK`.
    pub fn start_daemon(&mut self, args: &[&str]) {
        assert!(self.daemon.is_none(), "daemon already running");
        self.args = args.iter().map(|s| s.to_string()).collect();
        self.launch();
    }

    fn launch(&mut self) {
        let bin = berthd_bin();
        let _ = fs::remove_file(self.sock());
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open berthd.log");
        self.starts += 1;
        writeln!(
            log,
            "===== berth-e2e: start #{} of {} {:?} =====",
            self.starts,
            bin.display(),
            self.args
        )
        .unwrap();
        let log2 = log.try_clone().unwrap();
        // nsenter, not `ip netns exec`: berthd must live in the host's mount namespace, as in
        // production, so the namespaces and root filesystems it mounts outlive one daemon
        // process and the next one finds them.
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.ns))
            .arg("--")
            .arg(&bin)
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("-H")
            .arg(self.host_uri())
            .arg("--resolv-conf")
            .arg(self.resolv_conf())
            .arg("--log-level")
            .arg(std::env::var("BERTH_E2E_LOG_LEVEL").unwrap_or_else(|_| "debug".into()))
            .args(&self.args)
            .env_remove("DOCKER_HOST")
            .env_remove("BERTH_HOST")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        // never outlive the test thread
        crate::die_with_parent(&mut cmd);
        let child = cmd.spawn().expect("spawn nsenter berthd");
        self.daemon = Some(child);
        self.await_start();
    }

    /// Starts the daemon again (as [`Lab::start_again`]) expecting it to die while it starts
    /// (a failpoint in its start-up repair): `true` if it died, `false` if it came up.
    pub fn start_to_die(&mut self) -> bool {
        assert!(self.daemon.is_none(), "daemon already running");
        self.launch_to_die = true;
        self.launch();
        self.launch_to_die = false;
        self.daemon.is_none()
    }

    /// Waits for the daemon to answer `_ping`; one that dies first panics, unless it was
    /// started to die.
    fn await_start(&mut self) {
        let deadline = Instant::now() + DAEMON_TIMEOUT;
        loop {
            if let Some(st) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                self.daemon = None;
                if self.launch_to_die {
                    return;
                }
                panic!(
                    "berthd exited during startup ({st}); berthd.log:\n{}",
                    self.log_tail(50)
                );
            }
            if self.sock().exists() {
                if let Ok(r) = http::request(&self.sock(), "GET", "/_ping", &[], None) {
                    if r.status == 200 && r.body == b"OK" {
                        return;
                    }
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "berthd did not answer GET /_ping with OK within {DAEMON_TIMEOUT:?}; berthd.log:\n{}",
                    self.log_tail(50)
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The daemon's pid (it is `nsenter`, which execs berthd).
    pub fn pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(|c| c.id())
    }

    /// SIGTERM, then wait (≤10 s) for the daemon to exit. Panics if it does not.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.daemon.take().expect("daemon not running");
        // SAFETY: kill takes no pointers; the pid is our own unreaped child, so not reused.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + DAEMON_TIMEOUT;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "berthd did not exit within {DAEMON_TIMEOUT:?} of SIGTERM; berthd.log:\n{}",
                    self.log_tail(50)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// An environment variable for the daemon, from its next start on.
    pub fn set_daemon_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Waits (≤ `within`) for the daemon to die by itself (a failpoint); `true` if it did.
    pub fn wait_died(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let child = self.daemon.as_mut().expect("daemon not running");
            if child.try_wait().unwrap().is_some() {
                self.daemon = None;
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL the daemon (a crash): nothing of its kernel state is cleaned up.
    pub fn kill9(&mut self) {
        let mut child = self.daemon.take().expect("daemon not running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the daemon again with the same roots and flags (after [`Lab::stop`]/[`Lab::kill9`]).
    pub fn start_again(&mut self) {
        assert!(self.daemon.is_none(), "daemon already running");
        self.launch();
    }

    /// SIGTERM, wait, start again with the same roots and flags.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    // ---------------------------------------------------------------- API

    /// Raw request (no extra headers unless given).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        http::request(&self.sock(), method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}; berthd.log:\n{}", self.log_tail(30)))
    }

    /// JSON request; returns the status and the body (JSON, else text as a JSON string, empty = null).
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let r = match body {
            Some(b) => {
                let bytes = serde_json::to_vec(&b).unwrap();
                self.http(
                    method,
                    path,
                    &[("Content-Type", "application/json")],
                    Some(&bytes),
                )
            }
            None => self.http(method, path, &[], None),
        };
        (r.status, r.value())
    }

    /// Sends a request that must be refused with `status` and exactly `message`, and asserts
    /// that it changed nothing (networks, links, addresses, nft elements, rule counts).
    pub fn assert_refused(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
        message: &str,
    ) {
        let before = self.snapshot();
        let (st, v) = self.api(method, path, body.clone());
        let what = format!(
            "{method} {path} {}",
            body.map(|b| b.to_string()).unwrap_or_default()
        );
        assert_eq!(
            (st, crate::msg(&v)),
            (status, message.to_string()),
            "{what}: want {status} {message:?}, got {st} {v}"
        );
        self.assert_unchanged(&before, &what);
    }

    /// `POST /networks/create` with `body`; asserts 201 and returns the id.
    pub fn create_network(&self, body: Value) -> String {
        let (st, v) = self.api("POST", "/networks/create", Some(body.clone()));
        assert_eq!(st, 201, "create {body} → {st} {v}");
        let id = v["Id"].as_str().unwrap_or_else(|| panic!("no Id in {v}"));
        assert!(crate::is_hex(id, 64), "Id {id:?} is not 64 hex");
        id.to_string()
    }

    /// Creates a bridge network the way the CLI would (`CheckDuplicate: true`).
    pub fn net(&self, name: &str) -> String {
        self.create_network(json!({"Name": name, "CheckDuplicate": true, "Driver": "bridge"}))
    }

    /// Creates a bridge network with one explicit subnet.
    pub fn net_subnet(&self, name: &str, subnet: &str) -> String {
        self.create_network(json!({
            "Name": name, "CheckDuplicate": true, "Driver": "bridge",
            "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": subnet}]}
        }))
    }

    /// `GET /networks/{id}`; asserts 200.
    pub fn inspect(&self, id_or_name: &str) -> Value {
        let (st, v) = self.api("GET", &format!("/networks/{id_or_name}"), None);
        assert_eq!(st, 200, "inspect {id_or_name} → {st} {v}");
        v
    }

    /// `GET /networks` (optionally with a filters object); asserts 200.
    pub fn networks(&self, filters: Option<Value>) -> Vec<Value> {
        let path = match filters {
            Some(f) => format!("/networks?filters={}", http::urlencode(&f.to_string())),
            None => "/networks".to_string(),
        };
        let (st, v) = self.api("GET", &path, None);
        assert_eq!(st, 200, "GET {path} → {st} {v}");
        v.as_array()
            .unwrap_or_else(|| panic!("GET {path} is not an array: {v}"))
            .clone()
    }

    /// Sorted names of `GET /networks`.
    pub fn network_names(&self, filters: Option<Value>) -> Vec<String> {
        let mut v: Vec<String> = self
            .networks(filters)
            .iter()
            .map(|n| n["Name"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    /// The (first) IPv4 subnet of a network.
    pub fn subnet_of(&self, id_or_name: &str) -> String {
        let v = self.inspect(id_or_name);
        v["IPAM"]["Config"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["Subnet"].as_str())
            .find(|s| !s.contains(':'))
            .unwrap_or_else(|| panic!("no IPv4 subnet in {v}"))
            .to_string()
    }

    // ---------------------------------------------------------------- commands

    /// `berth -H unix://<sock> args…`
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = self.cli_cmd();
        cmd.arg("-H").arg(self.host_uri()).args(args);
        run(&mut cmd, CMD_TIMEOUT)
    }

    /// `berth args…` with the given environment and no `-H`.
    pub fn cli_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.cli_cmd();
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(&mut cmd, CMD_TIMEOUT)
    }

    fn cli_cmd(&self) -> Command {
        let mut cmd = Command::new(berth_bin());
        for k in [
            "DOCKER_HOST",
            "BERTH_HOST",
            "DOCKER_CONTEXT",
            "DOCKER_API_VERSION",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("DOCKER_CONFIG", self.root().join("docker-config"));
        cmd.env("NO_COLOR", "1");
        cmd
    }

    /// The real docker CLI: `docker -H unix://<sock> args…`, with a private `DOCKER_CONFIG`.
    pub fn docker(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(docker_bin());
        for k in [
            "DOCKER_HOST",
            "DOCKER_CONTEXT",
            "DOCKER_API_VERSION",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("DOCKER_CONFIG", self.root().join("docker-config"));
        cmd.env("DOCKER_CLI_HINTS", "false");
        cmd.arg("-H").arg(self.host_uri()).args(args);
        run(&mut cmd, CMD_TIMEOUT)
    }

    // ---------------------------------------------------------------- kernel

    /// `ip -n <ns> args…`; panics on failure; returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("ip");
        cmd.arg("-n").arg(&self.ns).args(args);
        run_ok(&mut cmd)
    }

    /// A veth pair `name` / `<name>p` in the lab (the kernel here has no `dummy` links);
    /// both ends set up when `up`.
    pub fn veth(&self, name: &str, up: bool) {
        let peer = format!("{name}p");
        self.ip(&["link", "add", name, "type", "veth", "peer", "name", &peer]);
        if up {
            self.ip(&["link", "set", name, "up"]);
            self.ip(&["link", "set", &peer, "up"]);
        }
    }

    /// `ip netns exec <ns> sh -c script`; panics on failure; returns stdout.
    pub fn sh(&self, script: &str) -> String {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, "sh", "-c", script]);
        run_ok(&mut cmd)
    }

    /// `ip -n <ns> -j args…` parsed.
    pub fn ip_json(&self, args: &[&str]) -> Value {
        let mut cmd = Command::new("ip");
        cmd.arg("-n").arg(&self.ns).arg("-j").args(args);
        let out = run_ok(&mut cmd);
        if out.trim().is_empty() {
            return json!([]);
        }
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("ip -j {args:?}: bad JSON ({e}): {out}"))
    }

    /// Names of all links in the namespace, sorted.
    pub fn links(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .ip_json(&["link", "show"])
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    pub fn link_exists(&self, name: &str) -> bool {
        self.links().iter().any(|l| l == name)
    }

    /// Whether the link is gone within 3 s: berthd deletes bridges in the background after
    /// `network rm` answers (the kernel's teardown waits for RCU grace periods).
    pub fn link_gone(&self, name: &str) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            if !self.link_exists(name) {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Waits (≤ 5 s) until no `veth*` link is left on the lab host (veths go in the
    /// background when containers leave); the ones still there.
    pub fn veths_left(&self) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let v: Vec<String> = self
                .links()
                .into_iter()
                .filter(|l| l.starts_with("veth"))
                .collect();
            if v.is_empty() || std::time::Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// `ip -d -j link show dev NAME` (first element), or None when there is no such link.
    pub fn link(&self, name: &str) -> Option<Value> {
        if !self.link_exists(name) {
            return None;
        }
        let v = self.ip_json(&["-d", "link", "show", "dev", name]);
        v.as_array().and_then(|a| a.first().cloned())
    }

    /// Asserts the link exists, is a bridge and is administratively up; returns its JSON.
    pub fn assert_bridge_up(&self, name: &str) -> Value {
        let l = self
            .link(name)
            .unwrap_or_else(|| panic!("bridge {name} does not exist; links: {:?}", self.links()));
        assert_eq!(
            l["linkinfo"]["info_kind"], "bridge",
            "{name} is not a bridge: {l}"
        );
        let flags: Vec<&str> = l["flags"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f.as_str())
            .collect();
        assert!(flags.contains(&"UP"), "{name} is not up: {flags:?}");
        l
    }

    /// Global-scope addresses of a link, as `addr/prefix` (IPv4 and IPv6, link-local left out).
    pub fn addrs(&self, name: &str) -> Vec<String> {
        let v = self.ip_json(&["addr", "show", "dev", name]);
        let mut out = Vec::new();
        for l in v.as_array().unwrap() {
            for a in l["addr_info"].as_array().into_iter().flatten() {
                if a["scope"] == "link" {
                    continue;
                }
                out.push(format!(
                    "{}/{}",
                    a["local"].as_str().unwrap(),
                    a["prefixlen"]
                ));
            }
        }
        out
    }

    /// All global addresses per link.
    pub fn all_addrs(&self) -> BTreeMap<String, Vec<String>> {
        let v = self.ip_json(&["addr", "show"]);
        let mut out = BTreeMap::new();
        for l in v.as_array().unwrap() {
            let name = l["ifname"].as_str().unwrap().to_string();
            let mut addrs: Vec<String> = l["addr_info"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| a["scope"] != "link")
                .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
                .collect();
            addrs.sort();
            out.insert(name, addrs);
        }
        out
    }

    /// `ip netns exec <ns> nft -j list ruleset` parsed.
    pub fn nft_json(&self) -> Value {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, "nft", "-j", "list", "ruleset"]);
        let out = run_ok(&mut cmd);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("nft -j: bad JSON ({e}): {out}"))
    }

    /// The daemon's nftables state (inet tables whose name starts with `berth`).
    pub fn nft_state(&self) -> NftState {
        nft::state(&self.nft_json())
    }

    /// Elements of the set or map `name` in the daemon's table, rendered as text
    /// (`br-1234`, `10.0.0.0/24`, `a . b`, map elements as `key : value`).
    /// Panics when no berth table has a set/map of that name.
    pub fn nft_set_elements(&self, name: &str) -> Vec<String> {
        let st = self.nft_state();
        match st.sets.get(name) {
            Some(v) => v.clone(),
            None => panic!(
                "no set or map named {name:?} in the daemon's nft table(s) {:?}; sets: {:?}",
                st.tables,
                st.sets.keys().collect::<Vec<_>>()
            ),
        }
    }

    /// Every set/map element (`set: element`) that mentions `needle`.
    pub fn nft_mentions(&self, needle: &str) -> Vec<String> {
        let st = self.nft_state();
        let mut out = Vec::new();
        for (set, elems) in &st.sets {
            for e in elems {
                if e.contains(needle) {
                    out.push(format!("{set}: {e}"));
                }
            }
        }
        out
    }

    /// Everything a refused request must leave alone: network list, links and their addresses,
    /// the daemon's nft set/map elements and per-chain rule counts.
    pub fn snapshot(&self) -> Snapshot {
        let mut networks: Vec<String> = self
            .networks(None)
            .iter()
            .map(|n| {
                format!(
                    "{} {} {}",
                    n["Name"].as_str().unwrap_or("?"),
                    n["Id"].as_str().unwrap_or("?"),
                    n["IPAM"]["Config"]
                )
            })
            .collect();
        networks.sort();
        let st = self.nft_state();
        Snapshot {
            networks,
            links: self.all_addrs(),
            nft_sets: st.sets,
            nft_rules: st.rule_counts,
        }
    }

    /// Asserts the current state equals `before`, with a readable diff.
    pub fn assert_unchanged(&self, before: &Snapshot, what: &str) {
        // bridges of removed networks disappear in the background: allow them 3 s
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let mut now = self.snapshot();
        while &now != before && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            now = self.snapshot();
        }
        if &now != before {
            panic!(
                "a refused request ({what}) changed the host:\n{}",
                before.diff(&now)
            );
        }
    }
}

impl Lab {
    /// Kills every container the lab's daemons started (they outlive berthd by design) and
    /// unmounts what berthd mounted under the lab dir (root filesystems, namespace pins).
    pub fn kill_containers(&self) {
        let Some(dir) = self.dir.as_ref() else {
            return;
        };
        let runc_root = self.exec_root().join("containers").join("runc");
        if let Ok(entries) = fs::read_dir(&runc_root) {
            for e in entries.flatten() {
                let _ = Command::new("runc")
                    .arg("--root")
                    .arg(&runc_root)
                    .args(["delete", "--force"])
                    .arg(e.file_name())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let root = dir.path().to_string_lossy().into_owned();
        // berthd's fd keeper (`berthd keeper <exec-root>/keeper/keeper.sock`) outlives the
        // daemon too.
        if let Ok(procs) = fs::read_dir("/proc") {
            for p in procs.flatten() {
                let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let cmdline = fs::read(p.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline)
                    .contains(&format!("{root}/exec/keeper/keeper.sock"))
                {
                    // SAFETY: kill takes no pointers; the pid was just read from /proc.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
        }
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&root))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for m in points {
            if let Ok(c) = std::ffi::CString::new(m) {
                // SAFETY: `c` is a NUL-terminated path that outlives the call.
                unsafe {
                    libc::umount2(c.as_ptr(), libc::MNT_DETACH);
                }
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.kill_containers();
        if panicking {
            eprintln!(
                "----- last 50 lines of berthd.log ({}) -----\n{}\n----- end of berthd.log -----",
                self.log_path().display(),
                self.log_tail(50)
            );
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.ns])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(dir) = self.dir.take() {
            if panicking && std::env::var_os("BERTH_E2E_KEEP").is_some() {
                let p = dir.keep();
                eprintln!("kept lab dir {}", p.display());
            }
        }
    }
}

/// See [`Lab::snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub networks: Vec<String>,
    pub links: BTreeMap<String, Vec<String>>,
    pub nft_sets: BTreeMap<String, Vec<String>>,
    pub nft_rules: BTreeMap<String, usize>,
}

impl Snapshot {
    pub fn diff(&self, now: &Snapshot) -> String {
        let mut s = String::new();
        if self.networks != now.networks {
            s += &format!(
                "  networks before: {:#?}\n  networks now: {:#?}\n",
                self.networks, now.networks
            );
        }
        if self.links != now.links {
            s += &format!(
                "  links before: {:?}\n  links now: {:?}\n",
                self.links, now.links
            );
        }
        if self.nft_sets != now.nft_sets {
            s += &format!(
                "  nft sets before: {:?}\n  nft sets now: {:?}\n",
                self.nft_sets, now.nft_sets
            );
        }
        if self.nft_rules != now.nft_rules {
            s += &format!(
                "  nft rule counts before: {:?}\n  nft rule counts now: {:?}\n",
                self.nft_rules, now.nft_rules
            );
        }
        s
    }
}
