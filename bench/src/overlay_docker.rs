//! The peer of `berth-bench overlay`: Docker 20.10 in classic overlay mode (`dockerd
//! --cluster-store=etcd://… --cluster-advertise=…`), measured by the same code
//! ([`crate::overlay::measure`]) on the same kind of lab, in the same run.
//!
//! The lab is [`Cluster`] without berthd: an underlay namespace with bridge `ul0` and etcd 3.4
//! started with `--enable-v2` (libkv's etcd backend, which classic mode uses, speaks only the v2
//! API), and three host namespaces on the underlay. In every host namespace runs one containerd
//! and one dockerd, started as
//!
//! ```text
//! nsenter --net=/run/netns/<host> -- unshare --mount --uts --propagation private -- sh -c '
//!     hostname <unique>; mount -t tmpfs tmpfs /run
//!     setpriv --pdeathsig KILL containerd --config <dir>/containerd.toml &
//!     exec dockerd --containerd <dir>/containerd.sock --data-root <dir>/data
//!          --exec-root <dir>/exec --pidfile <dir>/dockerd.pid -H unix://<dir>/docker.sock
//!          --config-file <dir>/daemon.json --cgroup-parent <unique> --cluster-store … '
//! ```
//!
//! with `<dir>` inside the lab host's temp dir. Why each piece (found by trying, Debian
//! bookworm's docker.io 20.10.24 and containerd 1.6.20 on kernel 6.18, cgroup v1):
//! - own UTS namespace and hostname: serf (the overlay driver's gossip, port 7946) names a node
//!   by its hostname; three daemons with the machine's one hostname fight ("Node name conflicts
//!   with another node … Names must be unique!") and quit gossiping, so no peer is ever learnt.
//! - private mount namespace with a tmpfs on /run: dockerd and containerd keep fixed paths
//!   there (`/run/docker/plugins`, `/run/containerd/…` for runc state and shim sockets) that
//!   would be shared by the three daemons and left on the machine. Container and overlay
//!   namespaces are pinned under the exec root inside that mount namespace, so the bench
//!   enters containers through `/proc/<pid>/ns/net`, and every mount goes away with the
//!   daemons.
//! - firewall: dockerd writes its iptables rules (Debian's `iptables` 1.8.9, nf_tables
//!   backend, works as is inside a namespace) into the lab host namespace only, which is deleted
//!   at the end. The kernel's `vxlan` module was loaded already (`ip link add … type vxlan`
//!   works in a namespace). Harmless errors left in dockerd.log: the
//!   `net.ipv4.neigh.default.gc_thresh*` sysctls do not exist outside the initial namespace;
//!   "enabling default vlan on bridge br0 failed open /sys/class/net/br0/bridge/default_pvid:
//!   permission denied" because this kernel has no bridge VLAN filtering (the file does not
//!   exist, in any namespace); Docker runs that re-exec helper once per overlay sandbox on any
//!   machine, so its cost is counted as it would be elsewhere.
//! - `--cgroup-parent`: the containers' cgroups sit under a per-run name, removed at the end.
//! - discovery keeps Docker's defaults (heartbeat 20 s, TTL 60 s; berthd gets a 10 s lease):
//!   none of the measured operations waits on node liveness.
//!
//! Docker 20.10 fails some calls in this run, and not because of the lab: after a number of
//! overlay sandboxes have been torn down on a host (the connect / disconnect loop makes and
//! removes host 2's sandbox of `bench` 40 times), that dockerd's own connections start failing
//! now and then, e.g. `POST /networks/bench/connect` → 500 "failed to update store for object
//! type *libnetwork.endpointCnt: client: etcd cluster is unavailable or misconfigured; error #0:
//! dial tcp 10.99.k.1:2379: connect: network is unreachable", or "failed to get network from
//! store during join: network <id> not found". Some daemon thread is left in a (deleted)
//! overlay namespace, which has no route to the underlay; users report the same on real hosts
//! in classic mode (moby/moby#39036, #39372: "connect: network is unreachable" after a
//! container leaves an overlay). The bench counts failed calls per operation and goes on.
//!
//! `BENCH_OVERLAY_DOCKER_LOGS=<dir>` keeps a copy of every dockerd.log there.
//!
//! Teardown (also on a panic in the measuring code): every container removed through the API,
//! dockerd SIGTERMed (SIGKILL after 20 s), containerd stopped, whatever still runs in the
//! daemons' mount namespace (shims) killed, the cgroups removed; then the cluster deletes etcd,
//! the namespaces and the temp dirs. If the bench itself is SIGKILLed, dockerd and containerd
//! die with it (parent-death signal) and the namespaces are swept by the next cluster; only
//! the temp dirs and empty `berth-bench-docker-<pid>-h<i>` cgroups would be left then.

use crate::env;
use crate::overlay::{inspect, measure, remove, run_on, Numbers, Target};
use berth_e2e::cluster::{Cluster, ClusterOpts, ETCD_PORT};
use berth_e2e::http::request;
use berth_e2e::net::in_netns;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Docker, measured on the classic-mode lab; `Err(why)` when it was not (not installed, not a
/// version with classic mode, or it failed: the reason, with the end of dockerd.log).
pub fn run(n: usize) -> Result<Numbers, String> {
    if env("BENCH_OVERLAY_DOCKER", 1) == 0 {
        return Err("BENCH_OVERLAY_DOCKER=0".into());
    }
    let version = available()?;
    println!("overlay, Docker {version} in classic mode: 3 hosts, etcd with --enable-v2");
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = DockerLab::start()?;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lab.measure(n)));
        r.map_err(|p| {
            format!(
                "the measurement panicked: {}\n{}",
                panic_text(&p),
                lab.log_tails(15)
            )
        })
    }));
    match r {
        Ok(r) => r,
        Err(p) => Err(format!("the lab panicked: {}", panic_text(&p))),
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// `dockerd --version` when it is a 20.10 (or older) with its tools; else why not.
fn available() -> Result<String, String> {
    let out = |bin: &str| {
        Command::new(bin)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let v = out("dockerd").ok_or("dockerd not installed (apt-get install docker.io)")?;
    // "Docker version 20.10.24+dfsg1, build 5d6db84"
    let num = v
        .split_whitespace()
        .nth(2)
        .unwrap_or("")
        .trim_end_matches(',');
    let major: u32 = num
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major == 0 || major > 20 {
        return Err(format!(
            "{v}: classic overlay mode (--cluster-store) was removed after 20.10"
        ));
    }
    for tool in ["containerd", "runc", "iptables"] {
        out(tool).ok_or(format!("{tool} not installed (apt-get install docker.io)"))?;
    }
    Ok(num.to_string())
}

/// The cluster without berthd, and one dockerd + containerd per host.
struct DockerLab {
    /// Dropped (torn down) before the cluster.
    hosts: Vec<Host>,
    cluster: Cluster,
}

impl DockerLab {
    fn start() -> Result<DockerLab, String> {
        let cluster = Cluster::with(ClusterOpts {
            hosts: 3,
            start_daemons: false,
            etcd_v2: true,
            ..ClusterOpts::default()
        });
        let mut lab = DockerLab {
            hosts: Vec::new(),
            cluster,
        };
        for i in 0..3 {
            let h = Host::spawn(&lab.cluster, i)?;
            lab.hosts.push(h);
        }
        for h in &mut lab.hosts {
            h.wait_ready()?;
        }
        // every daemon registered under docker/nodes (then serf joins its neighbours)
        let t = Instant::now();
        loop {
            let nodes = lab.etcd_v2_get("/v2/keys/docker/nodes").unwrap_or_default();
            if nodes.matches("\"key\":\"/docker/nodes/").count() >= 3 {
                break;
            }
            if t.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "not every dockerd registered in etcd within 30 s: {nodes}\n{}",
                    lab.log_tails(15)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs(1));
        Ok(lab)
    }

    /// A GET on etcd's client URL from the underlay namespace; the body.
    fn etcd_v2_get(&self, path: &str) -> Result<String, String> {
        let to = format!("{}:{ETCD_PORT}", self.cluster.etcd_ip());
        let req = format!("GET {path} HTTP/1.0\r\nHost: {to}\r\n\r\n");
        in_netns(format!("/run/netns/{}", self.cluster.underlay), move || {
            let mut s = TcpStream::connect(&to).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
            let mut out = String::new();
            s.read_to_string(&mut out).map_err(|e| e.to_string())?;
            Ok(out
                .split_once("\r\n\r\n")
                .map(|x| x.1.to_string())
                .unwrap_or(out))
        })
    }

    fn log_tails(&self, n: usize) -> String {
        self.hosts
            .iter()
            .enumerate()
            .map(|(i, h)| format!("--- dockerd.log of host {i} ---\n{}\n", h.log_tail(n)))
            .collect()
    }

    fn measure(&self, n: usize) -> Numbers {
        let socks: Vec<PathBuf> = self.hosts.iter().map(|h| h.sock.clone()).collect();
        let tar = busybox_tar();
        for s in &socks {
            import_busybox(s, &tar);
            // the first container on each host (bridge): not measured, as on berth's side
            let (id, _) = run_on(s, "warmup", "bridge");
            remove(s, &id);
        }
        let netns_of = |sock: &Path, id: &str| {
            PathBuf::from(format!(
                "/proc/{}/ns/net",
                inspect(sock, id)["State"]["Pid"].as_u64().unwrap_or(0)
            ))
        };
        let c = &self.cluster;
        let numbers = measure(
            &Target {
                socks,
                host_ns: (0..3)
                    .map(|i| PathBuf::from(format!("/run/netns/{}", c.host(i).ns)))
                    .collect(),
                host_ip: (0..3).map(|i| c.host_ip(i)).collect(),
                netns_of: &netns_of,
            },
            n,
        );
        for (i, h) in self.hosts.iter().enumerate() {
            println!(
                "dockerd RSS on host {i}: {:.1} MB",
                crate::networks::rss_kb(h.daemon.id()) as f64 / 1024.0
            );
        }
        numbers
    }
}

/// One host's dockerd (and the containerd it talks to).
struct Host {
    dir: PathBuf,
    sock: PathBuf,
    daemon: Child,
    /// `mnt:[…]` of the daemons' private mount namespace, once known.
    mntns: Option<String>,
    cgroup: String,
}

impl Host {
    fn spawn(c: &Cluster, i: usize) -> Result<Host, String> {
        let lab = c.host(i);
        let dir = lab.root().join("docker");
        for d in ["data", "exec", "containerd"] {
            fs::create_dir_all(dir.join(d)).map_err(|e| e.to_string())?;
        }
        let d = dir.display();
        fs::write(
            dir.join("containerd.toml"),
            format!(
                "version = 2\nroot = \"{d}/containerd/root\"\nstate = \"{d}/containerd/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{d}/containerd.sock\"\n\
                 [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
                 [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/containerd/opt\"\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        // no /etc/docker/daemon.json of the machine
        fs::write(dir.join("daemon.json"), "{}").map_err(|e| e.to_string())?;
        let cgroup = format!("berth-bench-docker-{}-h{i}", std::process::id());
        let script = format!(
            "set -e\n\
             hostname berthdk{k}-h{i}\n\
             mount -t tmpfs -o mode=755 tmpfs /run\n\
             setpriv --pdeathsig KILL containerd --config {d}/containerd.toml >{d}/containerd.log 2>&1 &\n\
             echo $! >{d}/containerd.pid\n\
             n=0; while [ ! -S {d}/containerd.sock ]; do\n\
               n=$((n+1)); [ $n -lt 600 ] || {{ echo 'containerd did not start' >&2; exit 1; }}\n\
               sleep 0.05\n\
             done\n\
             exec dockerd --config-file {d}/daemon.json --containerd {d}/containerd.sock \
               --data-root {d}/data --exec-root {d}/exec --pidfile {d}/dockerd.pid \
               -H unix://{d}/docker.sock --cgroup-parent /{cgroup} \
               --cluster-store {store} --cluster-advertise {adv}\n",
            k = c.k,
            store = c.store_url(),
            adv = c.advertise(i),
        );
        let log = fs::File::create(dir.join("dockerd.log")).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", lab.ns))
            .args([
                "--",
                "unshare",
                "--mount",
                "--uts",
                "--propagation",
                "private",
            ])
            .args(["--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        // SAFETY: prctl in the child before exec only sets its parent-death signal.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let daemon = cmd.spawn().map_err(|e| format!("spawn dockerd: {e}"))?;
        Ok(Host {
            sock: dir.join("docker.sock"),
            dir,
            daemon,
            mntns: None,
            cgroup,
        })
    }

    /// Waits (≤ 60 s) until `GET /_ping` answers OK.
    fn wait_ready(&mut self) -> Result<(), String> {
        let t = Instant::now();
        loop {
            if let Ok(Some(st)) = self.daemon.try_wait() {
                return Err(format!("dockerd exited ({st}):\n{}", self.log_tail(30)));
            }
            if let Ok(r) = request(&self.sock, "GET", "/_ping", &[], None) {
                if r.status == 200 {
                    // nsenter, unshare and sh exec: the child's pid is dockerd's, by now in
                    // its private mount namespace (never take the bench's own for it)
                    let own = mnt_ns("self");
                    self.mntns =
                        mnt_ns(&self.daemon.id().to_string()).filter(|m| Some(m) != own.as_ref());
                    return Ok(());
                }
            }
            if t.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "dockerd not answering within 60 s:\n{}",
                    self.log_tail(30)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self, n: usize) -> String {
        let s = fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// `mnt:[…]` of `/proc/<pid>/ns/mnt`.
fn mnt_ns(pid: &str) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .map(|p| p.display().to_string())
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn wait_gone(pid: i32, within: Duration) -> bool {
    let t = Instant::now();
    while alive(pid) {
        if t.elapsed() > within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// rmdir of a cgroup directory and its children, deepest first.
fn rmdir_tree(p: &Path) {
    if let Ok(entries) = fs::read_dir(p) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_tree(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(p);
}

impl Drop for Host {
    fn drop(&mut self) {
        let pid = self.daemon.id() as i32;
        if matches!(self.daemon.try_wait(), Ok(None)) {
            if let Ok(r) = request(&self.sock, "GET", "/v1.41/containers/json?all=1", &[], None) {
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                for c in v.as_array().into_iter().flatten() {
                    if let Some(id) = c["Id"].as_str() {
                        let _ = request(
                            &self.sock,
                            "DELETE",
                            &format!("/v1.41/containers/{id}?force=1"),
                            &[],
                            None,
                        );
                    }
                }
            }
            // SAFETY: signals to our own child, not yet waited for.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let t = Instant::now();
            while matches!(self.daemon.try_wait(), Ok(None)) {
                if t.elapsed() > Duration::from_secs(20) {
                    let _ = self.daemon.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.daemon.wait();
        if let Some(keep) = std::env::var_os("BENCH_OVERLAY_DOCKER_LOGS") {
            let _ = fs::create_dir_all(&keep);
            let _ = fs::copy(
                self.dir.join("dockerd.log"),
                Path::new(&keep).join(format!("{}.log", self.cgroup)),
            );
        }
        // containerd got SIGKILL with dockerd (parent-death signal); make sure
        if let Some(cpid) = fs::read_to_string(self.dir.join("containerd.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            if alive(cpid) {
                // SAFETY: the containerd this host started (its pid file, checked alive).
                unsafe { libc::kill(cpid, libc::SIGTERM) };
                if !wait_gone(cpid, Duration::from_secs(5)) {
                    // SAFETY: the same process, still alive after SIGTERM.
                    unsafe { libc::kill(cpid, libc::SIGKILL) };
                }
            }
        }
        // anything left in the daemons' mount namespace (shims)
        if let Some(mnt) = self
            .mntns
            .as_ref()
            .filter(|m| Some(*m) != mnt_ns("self").as_ref())
        {
            let me = std::process::id() as i32;
            for p in fs::read_dir("/proc").into_iter().flatten().flatten() {
                let Ok(p) = p.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                if p != me && mnt_ns(&p.to_string()).as_ref() == Some(mnt) {
                    // SAFETY: a process of this host's private mount namespace.
                    unsafe { libc::kill(p, libc::SIGKILL) };
                    wait_gone(p, Duration::from_secs(2));
                }
            }
        }
        for ctl in fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            rmdir_tree(&ctl.path().join(&self.cgroup));
        }
        rmdir_tree(&Path::new("/sys/fs/cgroup").join(&self.cgroup));
    }
}

/// A busybox image as a tar: the machine's static /bin/busybox and a link per applet.
fn busybox_tar() -> Vec<u8> {
    let d = tempfile::Builder::new()
        .prefix("berthdk-bb-")
        .tempdir()
        .unwrap();
    let bin = d.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy("/bin/busybox", bin.join("busybox")).expect("/bin/busybox (busybox-static)");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for a in String::from_utf8_lossy(&list.stdout).lines() {
        // the list names busybox itself: a link there would replace the binary
        if !a.is_empty() && a != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(a)).unwrap();
        }
    }
    let o = Command::new("tar")
        .arg("-C")
        .arg(d.path())
        .args(["-c", "."])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// `docker import --change 'CMD ["sh"]' - busybox:latest` through the API.
fn import_busybox(sock: &Path, tar: &[u8]) {
    let r = request(
        sock,
        "POST",
        "/v1.41/images/create?fromSrc=-&repo=busybox&tag=latest&changes=CMD%20%5B%22sh%22%5D",
        &[("Content-Type", "application/x-tar")],
        Some(tar),
    )
    .expect("image import");
    let text = r.text();
    assert!(
        r.status == 200 && !text.contains("errorDetail"),
        "import busybox: {} {text}",
        r.status
    );
}
