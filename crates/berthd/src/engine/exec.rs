//! `docker exec`: extra processes in a running container, started through runc and reaped
//! like the container's own (by the fd keeper, their parent).

use super::{not_running, Engine, Result};
use berth_api::ExecCreateRequest;
use berth_net::NetError;
use berth_runtime::container::{ExecProcess, ProcessSpec};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub req: ExecCreateRequest,
    state: Mutex<ExecState>,
    done: watch::Sender<bool>,
}

#[derive(Default)]
struct ExecState {
    started: bool,
    running: bool,
    pid: i32,
    exit_code: Option<i32>,
}

impl Exec {
    pub fn inspect(&self) -> Value {
        let s = self.state.lock().unwrap();
        let cmd = self.req.cmd.clone().unwrap_or_default();
        json!({
            "ID": self.id,
            "Running": s.running,
            "ExitCode": s.exit_code,
            "ProcessConfig": {
                "tty": self.req.tty,
                "entrypoint": cmd.first().cloned().unwrap_or_default(),
                "arguments": cmd.iter().skip(1).collect::<Vec<_>>(),
                "privileged": self.req.privileged,
            },
            "OpenStdin": self.req.attach_stdin,
            "OpenStderr": self.req.attach_stderr,
            "OpenStdout": self.req.attach_stdout,
            "CanRemove": false,
            "ContainerID": self.container_id,
            "DetachKeys": self.req.detach_keys,
            "Pid": s.pid,
        })
    }

    /// Resolves when the process has ended (immediately if it has).
    pub async fn wait(&self) -> Option<i32> {
        let mut rx = self.done.subscribe();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                break;
            }
        }
        self.state.lock().unwrap().exit_code
    }
}

impl Engine {
    pub fn exec_create(&self, container: &str, req: ExecCreateRequest) -> Result<String> {
        let c = self.require_running(container)?;
        if req.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(NetError::invalid("No exec command specified"));
        }
        let id = berth_net::network::new_id();
        let e = Arc::new(Exec {
            id: id.clone(),
            container_id: c.id.clone(),
            req,
            state: Mutex::new(ExecState::default()),
            done: watch::channel(false).0,
        });
        self.execs.lock().unwrap().insert(id.clone(), e);
        Ok(id)
    }

    pub fn exec_get(&self, id: &str) -> Result<Arc<Exec>> {
        self.execs
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| NetError::not_found(format!("No such exec instance: {id}")))
    }

    /// The refusals of `exec_start` that come before any stream: started already, container
    /// not running.
    pub fn exec_startable(&self, e: &Exec) -> Result<()> {
        if e.state.lock().unwrap().started {
            return Err(NetError::conflict(format!(
                "Error: Exec command {} is already running",
                e.id
            )));
        }
        self.require_running(&e.container_id)
            .map(|_| ())
            .map_err(|_| not_running(&e.container_id))
    }

    /// Starts the exec's process; its streams are the caller's to pump.
    pub async fn exec_start(&self, e: &Arc<Exec>, tty: bool, detach: bool) -> Result<ExecProcess> {
        {
            let mut s = e.state.lock().unwrap();
            if s.started {
                return Err(NetError::conflict(format!(
                    "Error: Exec command {} is already running",
                    e.id
                )));
            }
            s.started = true;
        }
        let c = self
            .require_running(&e.container_id)
            .map_err(|_| not_running(&e.container_id))?;
        let rec = c.snapshot();
        let mut env = rec.config.env.clone().unwrap_or_default();
        env.extend(e.req.env.clone().unwrap_or_default());
        let spec = ProcessSpec {
            args: e.req.cmd.clone().unwrap_or_default(),
            env,
            cwd: if e.req.working_dir.is_empty() {
                rec.config.working_dir.clone()
            } else {
                e.req.working_dir.clone()
            },
            tty: (tty || e.req.tty) && !detach,
            user: if e.req.user.is_empty() {
                rec.config.user.clone()
            } else {
                e.req.user.clone()
            },
        };
        let rt = self.rt.clone();
        let (cid, eid, stdin) = (c.id.clone(), e.id.clone(), e.req.attach_stdin);
        let started = super::blocking(move || rt.exec(&cid, &eid, &spec, stdin && !detach, detach));
        let p = match started.await {
            Ok(p) => p,
            Err(err) => {
                let mut s = e.state.lock().unwrap();
                // The shell's conventions, as Docker reports them: 127 not found, 126 cannot run.
                let m = err.message.to_ascii_lowercase();
                let missing = m.contains("executable file not found") || m.contains("no such file");
                s.exit_code = Some(if missing { 127 } else { 126 });
                e.done.send_replace(true);
                return Err(err);
            }
        };
        {
            let mut s = e.state.lock().unwrap();
            s.running = true;
            s.pid = p.pid;
        }
        let e2 = e.clone();
        let pid = p.pid;
        let rt = self.rt.clone();
        tokio::spawn(async move {
            let code = rt.wait_exit(pid).await;
            let mut s = e2.state.lock().unwrap();
            s.running = false;
            s.exit_code = Some(code.unwrap_or(255));
            drop(s);
            e2.done.send_replace(true);
        });
        Ok(p)
    }
}
