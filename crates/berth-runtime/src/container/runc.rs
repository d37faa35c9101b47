//! runc, driven through its command line (the OCI runtime's only stable interface). Each call
//! is one short-lived runc process; nothing of runc stays behind once a container runs.

use super::keeper::Keeper;
use crate::{Error, Result};
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, Clone)]
pub struct Runc {
    pub binary: PathBuf,
    /// runc's state directory (`--root`), under berth's exec root.
    pub root: PathBuf,
    /// When set, runc runs as the keeper's child, so the keeper becomes the parent (and
    /// reaper) of the containers; otherwise as berthd's.
    pub via: Option<Keeper>,
}

/// The stdio a new process gets: runc passes these through to it.
pub struct Stdio3 {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

impl Stdio3 {
    pub fn null() -> Result<Stdio3> {
        let null = || -> Result<OwnedFd> {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map(OwnedFd::from)
                .map_err(|e| Error::internal(format!("/dev/null: {e}")))
        };
        Ok(Stdio3 {
            stdin: null()?,
            stdout: null()?,
            stderr: null()?,
        })
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

    /// `runc run --detach`: create and start in one runc process (each runc invocation costs
    /// tens of milliseconds). Its pid is returned; once this runc exits the process is
    /// reparented to the keeper (a child subreaper), or to whoever reaps orphans when runc runs
    /// without one.
    pub fn run_detached(
        &self,
        id: &str,
        bundle: &Path,
        console_socket: Option<&Path>,
        stdio: Stdio3,
    ) -> Result<i32> {
        let args = [
            "run".into(),
            "--detach".into(),
            "--bundle".into(),
            bundle.into(),
        ];
        self.detached("run", args, id, bundle, console_socket, stdio)
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
            "exec".into(),
            "-d".into(),
            "--process".into(),
            process_json.into(),
        ];
        self.detached("exec", args, id, dir, console_socket, stdio)
    }

    /// Runs a runc verb that leaves a process behind and writes its pid into `dir`.
    fn detached(
        &self,
        what: &str,
        verb: [OsString; 4],
        id: &str,
        dir: &Path,
        console_socket: Option<&Path>,
        stdio: Stdio3,
    ) -> Result<i32> {
        let log = dir.join("runc.log");
        let pidfile = dir.join("init.pid");
        let _ = std::fs::remove_file(&pidfile);
        let mut argv: Vec<OsString> = vec![
            self.binary.clone().into(),
            "--root".into(),
            self.root.clone().into(),
            "--log".into(),
            log.clone().into(),
            "--log-format".into(),
            "json".into(),
        ];
        argv.extend(verb);
        argv.extend(["--pid-file".into(), pidfile.clone().into()]);
        if let Some(s) = console_socket {
            argv.extend(["--console-socket".into(), s.into()]);
        }
        argv.push(id.into());
        // runc's own complaints go to --log; its stdio belongs to the new process.
        let ok = match &self.via {
            Some(k) => {
                let argv: Vec<String> = argv
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect();
                let fds = [
                    stdio.stdin.as_fd(),
                    stdio.stdout.as_fd(),
                    stdio.stderr.as_fd(),
                ];
                k.run(&argv, fds)
                    .map_err(|e| Error::internal(format!("running runc through the keeper: {e}")))?
                    == 0
            }
            None => Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(Stdio::from(stdio.stdin))
                .stdout(Stdio::from(stdio.stdout))
                .stderr(Stdio::from(stdio.stderr))
                .status()
                .map_err(|e| Error::internal(format!("running {}: {e}", self.binary.display())))?
                .success(),
        };
        if !ok {
            return Err(Self::failure(what, &log, b""));
        }
        read_pid(&pidfile)
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

    /// A runc verb that acts on a container and ends: `pause`, `resume`, `update -r FILE`.
    /// Its log goes to `log` (read back for the reason of a failure).
    pub fn verb(&self, what: &str, args: &[OsString], id: &str, log: &Path) -> Result<()> {
        let _ = std::fs::remove_file(log);
        let out = self
            .cmd(Some(log))
            .args(args)
            .arg(id)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::internal(format!("running {}: {e}", self.binary.display())))?;
        if !out.status.success() {
            return Err(Self::failure(what, log, &out.stderr));
        }
        Ok(())
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
