//! The peer of `berth-bench overlay`: Docker 20.10 in classic overlay mode (`dockerd
//! --cluster-store=etcd://… --cluster-advertise=…`), measured by the same code
//! ([`crate::overlay::measure`]) on the same kind of lab, in the same run.
//!
//! The lab is [`Cluster`] without berthd: an underlay namespace with bridge `ul0` and etcd 3.4
//! started with `--enable-v2` (libkv's etcd backend, which classic mode uses, speaks only the v2
//! API), and three host namespaces on the underlay. In every host namespace runs one containerd
//! and one dockerd ([`DockerHost`], which says how and why), with
//! `--cluster-store … --cluster-advertise …`. What matters here in particular (found by trying,
//! Debian bookworm's docker.io 20.10.24 and containerd 1.6.20 on kernel 6.18, cgroup v1):
//! - own UTS namespace and hostname: serf (the overlay driver's gossip, port 7946) names a node
//!   by its hostname; three daemons with the machine's one hostname fight ("Node name conflicts
//!   with another node … Names must be unique!") and quit gossiping, so no peer is ever learnt.
//! - private mount namespace: overlay namespaces too are pinned under the exec root inside it.
//! - the kernel's `vxlan` module was loaded already (`ip link add … type vxlan` works in a
//!   namespace). Harmless errors left in dockerd.log: the `net.ipv4.neigh.default.gc_thresh*`
//!   sysctls do not exist outside the initial namespace; "enabling default vlan on bridge br0
//!   failed open /sys/class/net/br0/bridge/default_pvid: permission denied" because this
//!   kernel has no bridge VLAN filtering (the file does not exist, in any namespace); Docker
//!   runs that re-exec helper once per overlay sandbox on any machine, so its cost is counted
//!   as it would be elsewhere.
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
//! Teardown: [`DockerHost`]'s (also on a panic in the measuring code); then the cluster
//! deletes etcd, the namespaces and the temp dirs.

use crate::docker_host::{busybox_tar, import_busybox, installed, panic_text, DockerHost, Spec};
use crate::env;
use crate::overlay::{inspect, measure, remove, run_on, Numbers, Target};
use berth_e2e::cluster::{Cluster, ClusterOpts, ETCD_PORT};
use berth_e2e::net::in_netns;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
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

/// `dockerd --version` when it is a 20.10 (or older) with its tools; else why not.
fn available() -> Result<String, String> {
    let (num, major) = installed()?;
    if major > 20 {
        return Err(format!(
            "dockerd {num}: classic overlay mode (--cluster-store) was removed after 20.10"
        ));
    }
    Ok(num)
}

/// The cluster without berthd, and one dockerd + containerd per host.
struct DockerLab {
    /// Dropped (torn down) before the cluster.
    hosts: Vec<DockerHost>,
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
            let c = &lab.cluster;
            let h = DockerHost::spawn(
                c.host(i),
                Spec {
                    hostname: format!("berthdk{}-h{i}", c.k),
                    cgroup: format!("berth-bench-docker-{}-h{i}", std::process::id()),
                    before: String::new(),
                    flags: format!(
                        "--cluster-store {} --cluster-advertise {}",
                        c.store_url(),
                        c.advertise(i)
                    ),
                    keep_log_in: std::env::var_os("BENCH_OVERLAY_DOCKER_LOGS").map(PathBuf::from),
                },
            )?;
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
