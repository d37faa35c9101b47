//! Compose projects in a lab: the same files driven by `berth compose` or by the real
//! docker-compose 1.29.2 (Python) against the lab's berthd.

use crate::lab::{berth_bin, Lab, CMD_TIMEOUT};
use crate::{run, OutputExt};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Which compose client drives the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Berth,
    DockerCompose,
}

/// `$DOCKER_COMPOSE_BIN`, else `/opt/berth-compose/bin/docker-compose` (where `.ci/install`
/// puts docker-compose 1.29.2). Missing is a failure, never a skip.
pub fn docker_compose_bin() -> PathBuf {
    let p = std::env::var_os("DOCKER_COMPOSE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/berth-compose/bin/docker-compose"));
    assert!(
        p.is_file(),
        "docker-compose 1.29.2 not found at {} (run .ci/install, or point DOCKER_COMPOSE_BIN at it)",
        p.display()
    );
    p
}

/// A project directory in the lab's temp dir, named like the project.
pub struct Project<'a> {
    pub lab: &'a Lab,
    pub tool: Tool,
    pub dir: PathBuf,
    /// `-f` flags given before every command.
    pub files: Vec<String>,
}

impl<'a> Project<'a> {
    /// Writes `files` into `<lab dir>/<tool>/<name>/`: the directory's name is the project's.
    pub fn new(lab: &'a Lab, tool: Tool, name: &str, files: &[(&str, &str)]) -> Project<'a> {
        let dir = lab.root().join(format!("{tool:?}")).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (f, text) in files {
            std::fs::write(dir.join(f), text).unwrap();
        }
        Project {
            lab,
            tool,
            dir,
            files: Vec::new(),
        }
    }

    /// With explicit `-f` files (in order).
    pub fn with_files(mut self, files: &[&str]) -> Self {
        self.files = files.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Runs `<client> [-f ...] args...` in the project directory.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = match self.tool {
            Tool::Berth => {
                let mut c = Command::new(berth_bin());
                c.arg("-H").arg(self.lab.host_uri()).arg("compose");
                c
            }
            Tool::DockerCompose => {
                let mut c = Command::new(docker_compose_bin());
                c.env("DOCKER_HOST", self.lab.host_uri());
                c
            }
        };
        for k in [
            "BERTH_HOST",
            "DOCKER_CONTEXT",
            "DOCKER_TLS_VERIFY",
            "COMPOSE_PROJECT_NAME",
            "COMPOSE_FILE",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("DOCKER_CONFIG", self.lab.root().join("docker-config"));
        cmd.current_dir(&self.dir);
        for f in &self.files {
            cmd.arg("-f").arg(f);
        }
        cmd.args(args);
        run(&mut cmd, CMD_TIMEOUT)
    }

    /// `run` that must succeed; stdout + stderr (compose reports progress on stderr).
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let out = o.ok();
        format!("{out}{}", o.err())
    }

    /// `exec -T service sh -c script`, retried until it succeeds (servers take a moment to
    /// listen) or `within` passes; its stdout.
    pub fn exec_until(&self, service: &str, script: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let o = self.run(&["exec", "-T", service, "sh", "-c", script]);
            if o.status.success() && !o.out().trim().is_empty() {
                return o.out();
            }
            if Instant::now() > deadline {
                // what the container's resolver sees, to tell a bad file from a bad lookup
                let files = self.run(&[
                    "exec",
                    "-T",
                    service,
                    "sh",
                    "-c",
                    "hostname; cat /etc/hosts /etc/resolv.conf",
                ]);
                panic!(
                    "{:?}: exec {service} {script:?} did not succeed within {within:?}: {}{}\n\
                     its hostname, /etc/hosts and /etc/resolv.conf:\n{}{}",
                    self.tool,
                    o.out(),
                    o.err(),
                    files.out(),
                    files.err()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// `berth inspect` of a container, parsed.
pub fn inspect(lab: &Lab, name: &str) -> Value {
    let out = lab.cli(&["inspect", name]).ok();
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

/// Names of every container (all states) on the lab daemon, sorted.
pub fn container_names(lab: &Lab) -> Vec<String> {
    let out = lab.cli(&["ps", "-a", "--format", "{{.Names}}"]).ok();
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// `Id`s of the named containers, in order.
pub fn ids(lab: &Lab, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|n| inspect(lab, n)["Id"].as_str().unwrap().to_string())
        .collect()
}

/// A container's address on a network.
pub fn address(lab: &Lab, container: &str, network: &str) -> String {
    let v = inspect(lab, container);
    v["NetworkSettings"]["Networks"][network]["IPAddress"]
        .as_str()
        .unwrap_or_else(|| panic!("{container} is not on {network}: {}", v["NetworkSettings"]))
        .to_string()
}
