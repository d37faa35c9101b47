//! Helpers for the plugin tests: `berth-testplug` started in a lab host, and its record of
//! calls (one JSON line `{"Method","Request"}` per call) read back.

use crate::lab::bin_path;
use crate::Lab;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The plugin process, killed on drop.
pub struct Plug(pub Child);

impl Drop for Plug {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `berth-testplug` in the lab host's namespace, its socket in `dir`, once it listens.
pub fn start_plugin(lab: &Lab, dir: &Path, record: &Path, extra: &[&str]) -> Plug {
    let sock = dir.join("testplug.sock");
    let mut cmd = Command::new(bin_path("berth-testplug", "BERTH_TESTPLUG_BIN"));
    cmd.arg("--socket")
        .arg(&sock)
        .arg("--record")
        .arg(record)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let ns = format!("/run/netns/{}", lab.ns);
    // SAFETY: setns and prctl are async-signal-safe; the closure touches no allocator state.
    unsafe {
        cmd.pre_exec(move || {
            let f = std::fs::File::open(&ns)?;
            if libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn berth-testplug");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "the plugin made no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    Plug(child)
}

pub fn calls(record: &Path) -> Vec<String> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["Method"].as_str().map(str::to_string))
        .collect()
}

/// The plugin's IPAM calls, (method without the interface, request), in order.
pub fn ipam_calls(record: &Path) -> Vec<(String, Value)> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            let m = v["Method"]
                .as_str()?
                .strip_prefix("IpamDriver.")?
                .to_string();
            Some((m, v["Request"].clone()))
        })
        .collect()
}

pub fn methods(calls: &[(String, Value)]) -> Vec<&str> {
    calls.iter().map(|(m, _)| m.as_str()).collect()
}

pub fn lab_with_plugin(extra: &[&str]) -> (Lab, Plug, PathBuf) {
    let mut lab = Lab::new_ns();
    let plugins = lab.root().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let record = lab.root().join("calls.jsonl");
    let plug = start_plugin(&lab, &plugins, &record, extra);
    lab.start_daemon(&["--plugins-dir", plugins.to_str().unwrap()]);
    (lab, plug, record)
}

pub fn records(record: &Path) -> Vec<Value> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// The calls after `from` (exclusive) up to the end, network ones only.
pub fn net_calls_since(record: &Path, from: usize) -> Vec<String> {
    calls(record)
        .into_iter()
        .skip(from)
        .filter(|m| m.starts_with("NetworkDriver."))
        .collect()
}

/// Waits (≤ 5 s) until the plugin got `method` at least `n` times.
pub fn wait_for(record: &Path, method: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while calls(record).iter().filter(|m| *m == method).count() < n {
        assert!(
            Instant::now() < deadline,
            "{method} x{n}: {:?}",
            calls(record)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
