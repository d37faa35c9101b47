//! The project's test plugin (`berth-testplug`, Docker's remote protocol on a unix socket),
//! run in a lab host's namespace beside its berthd, and the calls it recorded.

use crate::lab::bin_path;
use crate::Lab;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::Path;
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
