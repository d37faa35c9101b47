//! runc, driven through its command line (the OCI runtime's only stable interface). Each call
//! is one short-lived runc process; nothing of runc stays behind once a container runs.

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, Clone)]
pub struct Runc {
    pub binary: PathBuf,
    /// runc's state directory (`--root`), under berth's exec root.
    pub root: PathBuf,
}

/// The stdio a new process gets: runc passes these through to it.
pub struct Stdio3 {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl Stdio3 {
    pub fn null() -> Stdio3 {
        Stdio3 {
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            stderr: Stdio::null(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub status: String,
    pub pid: i32,
}

impl Runc {
    fn cmd(&self, log: Option<&Path>) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        if let Some(l) = log {
            c.arg("--log").arg(l).arg("--log-format").arg("json");
        }
        c
    }

    /// runc reports failures as JSON log lines; the last error-level message is the reason.
    fn failure(what: &str, log: &Path, stderr: &[u8]) -> Error {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let msg = text
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| matches!(v["level"].as_str(), Some("error" | "fatal")))
            .and_then(|v| v["msg"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(stderr).trim().to_string());
        Error::internal(format!("OCI runtime {what} failed: {msg}"))
    }

    fn run(&self, what: &str, mut c: Command, log: &Path) -> Result<()> {
        let out = c
            .output()
            .map_err(|e| Error::internal(format!("running {}: {e}", self.binary.display())))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Self::failure(what, log, &out.stderr))
        }
    }

    /// `runc run --detach`: create and start in one runc process (each runc invocation costs
    /// tens of milliseconds). Its pid is returned; once this runc exits the process is
    /// reparented to berthd (a child subreaper).
    pub fn run_detached(
        &self,
        id: &str,
        bundle: &Path,
        console_socket: Option<&Path>,
        stdio: Stdio3,
    ) -> Result<i32> {
        let args = [
            "run".as_ref(),
            "--detach".as_ref(),
            "--bundle".as_ref(),
            bundle.as_os_str(),
        ];
        self.detached("run", &args, id, bundle, console_socket, stdio)
    }

    /// `runc exec -d`: starts `process.json` in the container and returns its pid.
    pub fn exec(
        &self,
        id: &str,
        dir: &Path,
        process_json: &Path,
        console_socket: Option<&Path>,
        stdio: Stdio3,
    ) -> Result<i32> {
        let args = [
            "exec".as_ref(),
            "-d".as_ref(),
            "--process".as_ref(),
            process_json.as_os_str(),
        ];
        self.detached("exec", &args, id, dir, console_socket, stdio)
    }

    /// Runs a runc verb that leaves a process behind and writes its pid into `dir`.
    fn detached(
        &self,
        what: &str,
        args: &[&std::ffi::OsStr],
        id: &str,
        dir: &Path,
        console_socket: Option<&Path>,
        stdio: Stdio3,
    ) -> Result<i32> {
        let log = dir.join("runc.log");
        let pidfile = dir.join("init.pid");
        let _ = std::fs::remove_file(&pidfile);
        let mut c = self.cmd(Some(&log));
        c.args(args).arg("--pid-file").arg(&pidfile);
        if let Some(s) = console_socket {
            c.arg("--console-socket").arg(s);
        }
        // runc's own complaints go to --log; its stdio belongs to the new process.
        c.arg(id)
            .stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr);
        let status = c
            .status()
            .map_err(|e| Error::internal(format!("running {}: {e}", self.binary.display())))?;
        if !status.success() {
            return Err(Self::failure(what, &log, b""));
        }
        read_pid(&pidfile)
    }

    /// Signals the container's init (or all its processes).
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        let log = self.root.join(format!("{id}.kill.log"));
        let mut c = self.cmd(Some(&log));
        c.arg("kill");
        if all {
            c.arg("--all");
        }
        c.arg(id).arg(signal.to_string());
        let r = self.run("kill", c, &log);
        let _ = std::fs::remove_file(&log);
        r
    }

    /// Forgets the container, killing what is left of it. A plain delete first: `--force`
    /// on a container that already stopped polls for a second before giving up.
    pub fn delete(&self, id: &str) {
        let run = |force: bool| {
            let mut c = self.cmd(None);
            c.arg("delete");
            if force {
                c.arg("--force");
            }
            c.arg(id)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !run(false) && self.root.join(id).exists() {
            run(true);
        }
    }

    pub fn state(&self, id: &str) -> Option<State> {
        let out = self
            .cmd(None)
            .arg("state")
            .arg(id)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(State {
            status: v["status"].as_str()?.to_string(),
            pid: v["pid"].as_i64()? as i32,
        })
    }
}

fn read_pid(p: &Path) -> Result<i32> {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Error::internal(format!("runc wrote no pid to {}", p.display())))
}
