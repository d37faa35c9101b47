//! One Docker daemon (dockerd + the containerd it talks to) in a lab host's network namespace:
//! the peer of the benches that compare with Docker 20.10 (overlay_docker.rs, plugins_docker.rs).
//!
//! The daemons are started as
//!
//! ```text
//! nsenter --net=/run/netns/<lab> -- unshare --mount --uts --propagation private -- sh -c '
//!     hostname <unique>; mount -t tmpfs tmpfs /run
//!     <the caller's lines, e.g. a plugin on /run/docker/plugins>
//!     setpriv --pdeathsig KILL containerd --config <dir>/containerd.toml &
//!     exec dockerd --containerd <dir>/containerd.sock --data-root <dir>/data
//!          --exec-root <dir>/exec --pidfile <dir>/dockerd.pid -H unix://<dir>/docker.sock
//!          --config-file <dir>/daemon.json --cgroup-parent <unique> <the caller's flags>'
//! ```
//!
//! with `<dir>` inside the lab host's temp dir. Why each piece (found by trying, Debian
//! bookworm's docker.io 20.10.24 and containerd 1.6.20 on kernel 6.18, cgroup v1):
//! - own UTS namespace and hostname: daemons of one run do not share the machine's hostname
//!   (overlay_docker.rs says why that matters there).
//! - private mount namespace with a tmpfs on /run: dockerd and containerd keep fixed paths
//!   there (`/run/docker/plugins`, `/run/containerd/…` for runc state and shim sockets) that
//!   would be shared by several daemons and left on the machine. Container namespaces are
//!   pinned under the exec root inside that mount namespace, so a bench enters containers
//!   through `/proc/<pid>/ns/net`, and every mount goes away with the daemons. A legacy plugin
//!   socket under `/run/docker/plugins` is seen by this dockerd only.
//! - firewall: dockerd writes its iptables rules (Debian's `iptables` 1.8.9, nf_tables
//!   backend, works as is inside a namespace) into the lab host namespace only, which is
//!   deleted at the end.
//! - `--cgroup-parent`: the containers' cgroups sit under a per-run name, removed at the end.
//! - no `/etc/docker/daemon.json` of the machine (`--config-file` names an empty one).
//!
//! Teardown ([`DockerHost`]'s drop, so also on a panic in the measuring code): every container
//! removed through the API, dockerd SIGTERMed (SIGKILL after 20 s), containerd stopped,
//! whatever still runs in the daemons' mount namespace (shims, the callers' helpers) killed,
//! the cgroups removed; the lab then deletes the namespace and the temp dir. If the bench
//! itself is SIGKILLed, dockerd, containerd and helpers started with `setpriv --pdeathsig KILL`
//! die with it (parent-death signal); only the temp dirs and empty `berth-bench-docker-*`
//! cgroups would be left then.

use berth_e2e::http::request;
use berth_e2e::Lab;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The text of a caught panic.
pub fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// `(dockerd --version, its major version)` when dockerd and its tools are installed; else
/// why not.
pub fn installed() -> Result<(String, u32), String> {
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
    if major == 0 {
        return Err(format!("dockerd --version: {v}"));
    }
    for tool in ["containerd", "runc", "iptables", "setpriv"] {
        out(tool).ok_or(format!("{tool} not installed (apt-get install docker.io)"))?;
    }
    Ok((num.to_string(), major))
}

/// What differs between the daemons of the benches.
pub struct Spec {
    /// The UTS namespace's hostname (unique per daemon of a run).
    pub hostname: String,
    /// `--cgroup-parent` (one name per daemon; removed at the end).
    pub cgroup: String,
    /// Shell lines run after the tmpfs on /run is mounted, before the daemons start (in their
    /// network, mount and UTS namespaces). Anything started there in the background should
    /// be `setpriv --pdeathsig KILL …` so that it dies with dockerd.
    pub before: String,
    /// Extra dockerd flags (already shell-quoted where needed).
    pub flags: String,
    /// Copy dockerd.log there, as `<cgroup>.log`, at the end.
    pub keep_log_in: Option<PathBuf>,
}

/// One dockerd (and its containerd) in a lab host's network namespace.
pub struct DockerHost {
    /// `<lab root>/docker`: roots, sockets, logs.
    pub dir: PathBuf,
    pub sock: PathBuf,
    pub daemon: Child,
    /// `mnt:[…]` of the daemons' private mount namespace, once known.
    mntns: Option<String>,
    spec: Spec,
}

impl DockerHost {
    /// Starts the daemons in `lab`'s namespace (see the module doc); [`DockerHost::wait_ready`]
    /// waits for them.
    pub fn spawn(lab: &Lab, spec: Spec) -> Result<DockerHost, String> {
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
        fs::write(dir.join("daemon.json"), "{}").map_err(|e| e.to_string())?;
        let script = format!(
            "set -e\n\
             hostname {host}\n\
             mount -t tmpfs -o mode=755 tmpfs /run\n\
             {before}\n\
             setpriv --pdeathsig KILL containerd --config {d}/containerd.toml >{d}/containerd.log 2>&1 &\n\
             echo $! >{d}/containerd.pid\n\
             n=0; while [ ! -S {d}/containerd.sock ]; do\n\
               n=$((n+1)); [ $n -lt 600 ] || {{ echo 'containerd did not start' >&2; exit 1; }}\n\
               sleep 0.05\n\
             done\n\
             exec dockerd --config-file {d}/daemon.json --containerd {d}/containerd.sock \
               --data-root {d}/data --exec-root {d}/exec --pidfile {d}/dockerd.pid \
               -H unix://{d}/docker.sock --cgroup-parent /{cgroup} {flags}\n",
            host = spec.hostname,
            before = spec.before,
            cgroup = spec.cgroup,
            flags = spec.flags,
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
        berth_e2e::die_with_parent(&mut cmd);
        let daemon = cmd.spawn().map_err(|e| format!("spawn dockerd: {e}"))?;
        Ok(DockerHost {
            sock: dir.join("docker.sock"),
            dir,
            daemon,
            mntns: None,
            spec,
        })
    }

    /// Waits (≤ 60 s) until `GET /_ping` answers OK.
    pub fn wait_ready(&mut self) -> Result<(), String> {
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

    /// The last `n` lines of dockerd.log.
    pub fn log_tail(&self, n: usize) -> String {
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

impl Drop for DockerHost {
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
        if let Some(keep) = &self.spec.keep_log_in {
            let _ = fs::create_dir_all(keep);
            let _ = fs::copy(
                self.dir.join("dockerd.log"),
                keep.join(format!("{}.log", self.spec.cgroup)),
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
        // anything left in the daemons' mount namespace (shims, helpers)
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
            rmdir_tree(&ctl.path().join(&self.spec.cgroup));
        }
        rmdir_tree(&Path::new("/sys/fs/cgroup").join(&self.spec.cgroup));
    }
}

/// A busybox image as a tar: the machine's static /bin/busybox and a link per applet.
pub fn busybox_tar() -> Vec<u8> {
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
pub fn import_busybox(sock: &Path, tar: &[u8]) {
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
