//! `docker exec`: extra processes in a running container, started through runc and reaped
//! like the container's own (by the fd keeper, their parent).

use super::{not_running, Engine, Result};
use berth_api::ExecCreateRequest;
use berth_net::NetError;
use berth_runtime::container::{ExecProcess, ProcessSpec};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long an ended exec stays inspectable. Docker forgets ended execs a few minutes after
/// their end (its exec GC ran every 5 minutes); berth forgets them 5 minutes after, checked
/// whenever an exec is created, the only way the table grows.
pub const EXEC_RETENTION: Duration = Duration::from_secs(5 * 60);
/// Exec records one container may hold. Ended ones are forgotten oldest first to make room;
/// when every one is still running (or was never started), creation is refused.
pub const MAX_EXECS_PER_CONTAINER: usize = 1024;

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
    ended: Option<Instant>,
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

    fn ended(&self) -> Option<Instant> {
        self.state.lock().unwrap().ended
    }

    fn end(&self, code: i32) {
        let mut s = self.state.lock().unwrap();
        s.running = false;
        s.exit_code = Some(code);
        s.ended = Some(Instant::now());
        drop(s);
        self.done.send_replace(true);
    }
}

/// Forgets execs that ended `retention` ago, then makes room for one more exec of `container`
/// (forgetting its oldest ended ones) or refuses.
fn make_room(
    execs: &mut HashMap<String, Arc<Exec>>,
    container: &str,
    now: Instant,
    retention: Duration,
    max: usize,
) -> Result<()> {
    let expired = |e: &Exec| {
        e.ended()
            .is_some_and(|t| now.saturating_duration_since(t) >= retention)
    };
    execs.retain(|_, e| !expired(e));
    let mine = execs
        .values()
        .filter(|e| e.container_id == container)
        .count();
    if mine < max {
        return Ok(());
    }
    let mut ended: Vec<(Instant, String)> = execs
        .values()
        .filter(|e| e.container_id == container)
        .filter_map(|e| Some((e.ended()?, e.id.clone())))
        .collect();
    ended.sort();
    let surplus = mine + 1 - max;
    if ended.len() < surplus {
        return Err(NetError::conflict(format!(
            "container {container} already has {max} exec instances that have not ended: \
             wait for some to end"
        )));
    }
    for (_, id) in ended.into_iter().take(surplus) {
        execs.remove(&id);
    }
    Ok(())
}

impl Engine {
    pub fn exec_create(&self, container: &str, req: ExecCreateRequest) -> Result<String> {
        let c = self.require_running(container)?;
        if req.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(NetError::invalid("No exec command specified"));
        }
        // Docker checks the keys when the exec is made (a 500, in its words), not at start.
        if !req.detach_keys.is_empty()
            && berth_api::keys::parse_detach_keys(&req.detach_keys).is_err()
        {
            return Err(NetError::internal(format!(
                "Invalid escape keys ({}) provided",
                req.detach_keys
            )));
        }
        let id = berth_net::network::new_id();
        let e = Arc::new(Exec {
            id: id.clone(),
            container_id: c.id.clone(),
            req,
            state: Mutex::new(ExecState::default()),
            done: watch::channel(false).0,
        });
        let mut execs = self.execs.lock().unwrap();
        make_room(
            &mut execs,
            &c.id,
            Instant::now(),
            EXEC_RETENTION,
            MAX_EXECS_PER_CONTAINER,
        )?;
        execs.insert(id.clone(), e);
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

    /// Starts the exec's process; its streams are the caller's to pump. Whether it gets a
    /// terminal is the exec's own `Tty` (from its create); start's `Tty` only decides the
    /// framing of the stream, as in Docker.
    pub async fn exec_start(&self, e: &Arc<Exec>, detach: bool) -> Result<ExecProcess> {
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
            tty: e.req.tty && !detach,
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
                // The shell's conventions, as Docker reports them: 127 not found, 126 cannot run.
                let m = err.message.to_ascii_lowercase();
                let missing = m.contains("executable file not found") || m.contains("no such file");
                e.end(if missing { 127 } else { 126 });
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
            e2.end(code.unwrap_or(255));
        });
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(id: &str, container: &str) -> Arc<Exec> {
        Arc::new(Exec {
            id: id.into(),
            container_id: container.into(),
            req: ExecCreateRequest::default(),
            state: Mutex::new(ExecState::default()),
            done: watch::channel(false).0,
        })
    }

    fn ended_at(e: &Exec, t: Instant) {
        e.end(0);
        e.state.lock().unwrap().ended = Some(t);
    }

    #[test]
    fn ended_execs_are_forgotten_after_the_retention_and_the_table_is_bounded() {
        let t0 = Instant::now();
        let ret = Duration::from_secs(300);
        let mut m = HashMap::new();
        for (id, c) in [
            ("old", "a"),
            ("recent", "a"),
            ("running", "a"),
            ("other", "b"),
        ] {
            m.insert(id.to_string(), exec(id, c));
        }
        ended_at(&m["old"], t0);
        ended_at(&m["recent"], t0 + Duration::from_secs(200));
        ended_at(&m["other"], t0);
        let later = t0 + Duration::from_secs(301);
        make_room(&mut m, "a", later, ret, 10).unwrap();
        let mut left: Vec<_> = m.keys().cloned().collect();
        left.sort();
        // other containers' expired execs go too: any create sweeps the whole table
        assert_eq!(left, ["recent", "running"]);

        // full: the oldest ended one makes room, then nothing can
        make_room(&mut m, "a", later, ret, 2).unwrap();
        assert!(m.contains_key("running") && !m.contains_key("recent"));
        m.insert("r2".into(), exec("r2", "a"));
        let e = make_room(&mut m, "a", later, ret, 2).unwrap_err();
        assert_eq!(e.kind, berth_net::ErrorKind::Conflict);
        assert_eq!(m.len(), 2);
        // another container is not limited by a's execs
        make_room(&mut m, "b", later, ret, 2).unwrap();
    }
}
