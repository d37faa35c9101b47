//! The peer of `berth-bench plugins`: Docker (Debian's docker.io, 20.10) with the same plugin,
//! measured by the same code ([`crate::plugins::measure`]: the same Engine API requests, the
//! same n, one request per connection) in the same run, on the same kind of lab:
//! - one lab namespace ([`Lab::new_ns`], no berthd in it) with one dockerd and its containerd
//!   ([`DockerHost`]: private mount namespace with a tmpfs on /run, own hostname,
//!   `--cgroup-parent`, roots in the lab's temp dir, parent-death signal, teardown on drop);
//! - `berth-testplug --socket /run/docker/plugins/testplug.sock --record … --timings …` started
//!   by the same shell as the daemons, in their network and mount namespaces, before them:
//!   Docker 20.10 finds legacy plugins by socket there (and in /etc/docker/plugins,
//!   /usr/lib/docker/plugins, which are the machine's and not used), and that /run is the
//!   private tmpfs, so no other daemon sees it. The plugin makes its veths in the lab
//!   namespace, which goes away at the end.
//!
//! Docker's own time per plugin connect (the API call's time minus the plugin's reported time
//! inside its calls during that connect) includes, as berth's does, the kernel's move of the
//! plugin's interface into the container's namespace: `__dev_change_net_namespace` waits in
//! `rcu_barrier()`, ~15-20 ms on the project's 2-core VM. That is the point of the comparison:
//! both daemons pay the same move, the rest is theirs. Docker logs no time for that move, so
//! there is no "less the kernel's move" row for it; the move alone is measured again in
//! Docker's lab, after Docker's connects, for the conditions of that part of the run.
//!
//! Without dockerd on PATH this prints why and measures nothing.

use crate::docker_host::{busybox_tar, import_busybox, installed, panic_text, DockerHost, Spec};
use crate::plugins::{measure, Side};
use berth_e2e::lab::bin_path;
use berth_e2e::Lab;

/// Where Docker 20.10 looks for the plugin named `testplug` (inside the daemon's /run).
const PLUGIN_SOCK: &str = "/run/docker/plugins/testplug.sock";

/// Docker's rows after berth's; a line saying why when Docker was not measured.
pub fn run(n: usize) {
    let version = match installed() {
        Ok((v, _)) => v,
        Err(why) => {
            println!("plugins, Docker not measured: {why}");
            return;
        }
    };
    let r = std::panic::catch_unwind(|| measure_docker(&version, n));
    let why = match r {
        Ok(Ok(())) => return,
        Ok(Err(why)) => why,
        Err(p) => format!("panicked: {}", panic_text(&p)),
    };
    println!("plugins, Docker not measured: {why}");
}

fn measure_docker(version: &str, n: usize) -> Result<(), String> {
    let lab = Lab::new_ns();
    let record = lab.root().join("docker-calls.jsonl");
    let timings = lab.root().join("docker-timings.jsonl");
    let plug = bin_path("berth-testplug", "BERTH_TESTPLUG_BIN");
    let before = format!(
        "setpriv --pdeathsig KILL {plug} --socket {PLUGIN_SOCK} --record {record} \
           --timings {timings} >{log} 2>&1 &\n\
         n=0; while [ ! -S {PLUGIN_SOCK} ]; do\n\
           n=$((n+1)); [ $n -lt 200 ] || {{ echo 'berth-testplug did not start' >&2; exit 1; }}\n\
           sleep 0.05\n\
         done",
        plug = plug.display(),
        record = record.display(),
        timings = timings.display(),
        log = lab.root().join("testplug.log").display(),
    );
    let mut host = DockerHost::spawn(
        &lab,
        Spec {
            hostname: format!("berthdk-plugins-{}", std::process::id()),
            cgroup: format!("berth-bench-docker-{}-plugins", std::process::id()),
            before,
            flags: String::new(),
            keep_log_in: None,
        },
    )?;
    host.wait_ready()?;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        import_busybox(&host.sock, &busybox_tar());
        println!(
            "== plugins, Docker {version} (n={n}, the same calls, berth-testplug on {PLUGIN_SOCK}) =="
        );
        measure(
            &Side {
                who: "Docker",
                sock: &host.sock,
                lab: &lab,
                timings: &timings,
                record: &record,
                moves: None,
            },
            n,
        );
    }));
    let out = r.map_err(|p| {
        format!(
            "the measurement panicked: {}\n--- end of dockerd.log ---\n{}",
            panic_text(&p),
            host.log_tail(15)
        )
    });
    // the daemons before the namespace and the temp dir
    drop(host);
    drop(lab);
    out
}
