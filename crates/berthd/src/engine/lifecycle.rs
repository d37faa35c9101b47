//! Start, stop, kill, restart, remove, wait: the container's life, and what happens when its
//! process ends (exit code recorded, network released, rootfs unmounted).

use super::record::{now, Status};
use super::{blocking, no_such_container, not_running, Ctr, Engine, Result};
use berth_net::NetError;
use berth_runtime::container::{io, ProcessSpec, RunSpec};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// What a start did: Docker answers 304 when the container already runs.
pub enum Started {
    Now,
    AlreadyRunning,
}

/// `SIGTERM`, `TERM`, `15` → 15.
pub fn parse_signal(s: &str) -> Result<i32> {
    if s.is_empty() {
        return Ok(libc::SIGKILL);
    }
    if let Ok(n) = s.parse::<i32>() {
        if !(1..=64).contains(&n) {
            return Err(NetError::invalid(format!("Invalid signal: {s}")));
        }
        return Ok(n);
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "WINCH" => libc::SIGWINCH,
        "ALRM" => libc::SIGALRM,
        "PIPE" => libc::SIGPIPE,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "CHLD" => libc::SIGCHLD,
        "FPE" => libc::SIGFPE,
        "ILL" => libc::SIGILL,
        "IO" | "POLL" => libc::SIGIO,
        "PROF" => libc::SIGPROF,
        "PWR" => libc::SIGPWR,
        "SEGV" => libc::SIGSEGV,
        "STKFLT" => libc::SIGSTKFLT,
        "SYS" => libc::SIGSYS,
        "TRAP" => libc::SIGTRAP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "VTALRM" => libc::SIGVTALRM,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        _ => return Err(NetError::invalid(format!("Invalid signal: {s}"))),
    };
    Ok(n)
}

impl Engine {
    pub async fn start_container(self: &Arc<Self>, key: &str) -> Result<Started> {
        let c = self.find(key)?;
        let r = self.start_inner(&c, true).await;
        // `--rm` also covers a start that failed (Docker removes the container then too).
        if r.is_err() && c.rec.lock().unwrap().host_config.auto_remove {
            let (e, id) = (self.clone(), c.id.clone());
            tokio::spawn(async move {
                let _ = e.remove_with_volumes(&id, true, true).await;
            });
        }
        r
    }

    /// The restart policy's start: only if the restart is still wanted.
    pub(super) async fn start_again(self: &Arc<Self>, c: &Arc<Ctr>) -> Result<Started> {
        self.start_inner(c, false).await
    }

    /// `by_user`: a start through the API, which resets the restart count and back-off.
    async fn start_inner(self: &Arc<Self>, c: &Arc<Ctr>, by_user: bool) -> Result<Started> {
        let c = c.clone();
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        // a restart cancelled by stop/kill/remove meanwhile, or a start while one is pending
        if rec.state.restarting == by_user || c.removed.load(Ordering::SeqCst) {
            return Ok(Started::AlreadyRunning);
        }
        match rec.state.status {
            Status::Running => return Ok(Started::AlreadyRunning),
            Status::Removing | Status::Dead => {
                return Err(NetError::conflict(
                    "container is marked for removal and cannot be started",
                ))
            }
            _ => {}
        }
        let images = self.images.clone();
        let image_id = rec.image_id.clone();
        let image = blocking(move || images.resolve(&image_id)).await?;
        // checked at create; before any network is attached, so a failure leaves nothing behind
        let groups = super::resources::groups(&rec.host_config)?;

        // links are checked before anything is attached: nothing to undo when a target is down
        let links = match self.legacy_links(&rec) {
            Ok(l) => l,
            Err(e) => {
                let _ = self.update(&c, |r| r.state.error = e.message.clone());
                return Err(e);
            }
        };
        let mounts = match self.mount_specs(&rec.mounts) {
            Ok(m) => m,
            Err(e) => {
                let _ = self.update(&c, |r| r.state.error = e.message.clone());
                return Err(e);
            }
        };
        let t0 = std::time::Instant::now();
        let netns = self.attach_networks(&c).await;
        let t_net = t0.elapsed();
        let netns = match netns {
            Ok(n) => n,
            Err(e) => {
                let _ = self.update(&c, |r| r.state.error = e.message.clone());
                return Err(e);
            }
        };
        berth_net::fail::point("start/networks");
        let rec = c.snapshot();
        let spec = RunSpec {
            layers: image.layers.clone(),
            hostname: rec.config.hostname.clone(),
            netns,
            process: ProcessSpec {
                args: std::iter::once(rec.path.clone())
                    .chain(rec.args.iter().cloned())
                    .collect(),
                env: (rec.config.env.iter().flatten().cloned())
                    .chain(
                        links
                            .iter()
                            .flat_map(|l| super::links::env_of(&rec.name, l)),
                    )
                    .collect(),
                cwd: rec.config.working_dir.clone(),
                tty: rec.config.tty,
                user: rec.config.user.clone(),
            },
            open_stdin: rec.config.open_stdin,
            mounts,
            resources: super::resources::of(&rec.host_config),
            groups,
        };
        let rt = self.rt.clone();
        let id = c.id.clone();
        let running = match blocking(move || rt.start(&id, spec)).await {
            Ok(r) => r,
            Err(e) => {
                self.detach_networks(&c).await;
                let _ = self.update(&c, |r| {
                    r.state.error = e.message.clone();
                    r.state.restarting = false;
                });
                return Err(e);
            }
        };
        tracing::debug!(
            "container {} started: network {t_net:?}, runtime {:?}",
            &c.id[..12],
            t0.elapsed() - t_net
        );
        berth_net::fail::point("start/runtime");
        let pid = running.pid;
        *c.stdin.lock().unwrap() = running.stdin;
        {
            let mut b = c.backoff.lock().unwrap();
            if by_user {
                b.reset();
            }
            b.started();
        }
        let saved = self.update(&c, |r| {
            r.state.status = Status::Running;
            r.state.pid = pid;
            r.state.exit_code = 0;
            r.state.error.clear();
            r.state.started_at = now();
            r.state.paused = false;
            r.state.restarting = false;
            if by_user {
                r.state.stopped_by_user = false;
                r.restart_count = 0;
            }
        });
        berth_net::fail::point("start/stored");
        // Followed whatever happens to the record: an unwatched process would never be reaped.
        self.clone().monitor(c.clone(), pid);
        if let Err(e) = saved {
            tracing::warn!("container {}: saving its running state: {e}", &c.id[..12]);
        }
        Ok(Started::Now)
    }

    /// Waits for the process to end, then cleans up after it.
    fn monitor(self: Arc<Self>, c: Arc<Ctr>, pid: i32) {
        // Opened while the process is known to be alive (just started, or checked as the
        // container's init after a restart), before its exit can be reaped.
        *c.proc.lock().unwrap() = super::pidfd::Proc::open(pid);
        tokio::spawn(async move {
            let code = self.rt.wait_exit(pid).await;
            // The pid may be reused from now on: nothing may signal it any more.
            c.rec.lock().unwrap().state.pid = 0;
            *c.proc.lock().unwrap() = None;
            self.on_exit(&c, code).await;
        });
    }

    async fn on_exit(self: &Arc<Self>, c: &Arc<Ctr>, code: Option<i32>) {
        let _op = c.op.lock().await;
        *c.stdin.lock().unwrap() = None;
        let t0 = std::time::Instant::now();
        let rt = self.rt.clone();
        let id = c.id.clone();
        let _ = tokio::task::spawn_blocking(move || rt.drain_output(&id)).await;
        self.detach_networks(c).await;
        berth_net::fail::point("exit/networks");
        let t_net = t0.elapsed();
        let auto_remove = c.rec.lock().unwrap().host_config.auto_remove;
        // Unknown only if the keeper itself was gone (killed) when the process ended.
        let code = code.unwrap_or(255);
        let restart = self.restart_delay(c, code);
        c.exits.fetch_add(1, Ordering::SeqCst);
        let _ = self.update(c, |r| {
            r.state.status = Status::Exited;
            r.state.pid = 0;
            r.state.exit_code = code;
            r.state.finished_at = now();
            r.state.paused = false;
            if restart.is_some() {
                r.state.restarting = true;
                r.restart_count += 1;
            }
        });
        berth_net::fail::point("exit/stored");
        // Reported first, cleaned up after: runc's cgroup removal can take most of a second
        // after a SIGKILL, and stop/wait need not wait for it. The op lock keeps a new start
        // (or a remove) from overtaking the cleanup; restore() redoes it after a crash.
        let rt = self.rt.clone();
        let id = c.id.clone();
        let _ = tokio::task::spawn_blocking(move || rt.cleanup(&id)).await;
        tracing::debug!(
            "container {} exited ({code}): network release {t_net:?}, runtime cleanup {:?}",
            &c.id[..12],
            t0.elapsed() - t_net
        );
        drop(_op);
        if let Some(delay) = restart {
            self.schedule_restart(c.clone(), delay);
        }
        if auto_remove {
            let _ = self.remove_with_volumes(&c.id, true, true).await;
        }
    }

    /// After a daemon restart: running containers are followed again, the others cleaned up.
    pub(super) async fn restore(self: Arc<Self>, c: Arc<Ctr>) {
        let rec = c.snapshot();
        match rec.state.status {
            // Alive, and still the container's init (after a reboot the pid may be anyone's).
            Status::Running
                if io::alive(rec.state.pid) && self.is_init(&rec.id, rec.state.pid).await =>
            {
                tracing::info!(
                    "container {} still runs (pid {})",
                    rec.short_id(),
                    rec.state.pid
                );
                self.align_networks(&c);
                berth_net::fail::point("repair/resumed");
                if !rec.config.tty {
                    let (rt, id) = (self.rt.clone(), c.id.clone());
                    let _ = tokio::task::spawn_blocking(move || rt.reattach_output(&id)).await;
                }
                if rec.config.tty || rec.config.open_stdin {
                    let (rt, id, tty) = (self.rt.clone(), c.id.clone(), rec.config.tty);
                    let input = tokio::task::spawn_blocking(move || {
                        if tty {
                            rt.reattach_console(&id)
                        } else {
                            rt.reattach_stdin(&id)
                        }
                    })
                    .await
                    .ok()
                    .flatten();
                    if input.is_none() && tty {
                        tracing::warn!("container {}: its terminal was lost", rec.short_id());
                    }
                    *c.stdin.lock().unwrap() = input;
                    // an attach waiting for the input wakes on this
                    c.bump();
                }
                self.monitor(c, rec.state.pid);
            }
            Status::Running => {
                self.on_exit(&c, None).await;
                berth_net::fail::point("repair/exited");
            }
            Status::Removing => {
                let _ = self.remove_container(&c.id, true).await;
            }
            // A crash between reporting the exit and cleaning up leaves runc state, a
            // mounted rootfs or a sandbox behind; each step is a no-op when there is none.
            _ => {
                self.detach_networks(&c).await;
                let rt = self.rt.clone();
                let id = c.id.clone();
                let _ = tokio::task::spawn_blocking(move || rt.cleanup(&id)).await;
                berth_net::fail::point("repair/cleaned");
                if Self::restart_at_boot(&rec) {
                    tracing::info!("container {}: restarted (restart policy)", rec.short_id());
                    let _ = self.update(&c, |r| r.state.restarting = true);
                    self.schedule_restart(c, Duration::ZERO);
                }
            }
        }
    }

    async fn is_init(&self, id: &str, pid: i32) -> bool {
        let rt = self.rt.clone();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || rt.state(&id))
            .await
            .ok()
            .flatten()
            .is_some_and(|st| st.pid == pid && st.status == "running")
    }

    /// Docker's stop: the stop signal, `t` seconds, then SIGKILL. `false`: it was not running.
    pub async fn stop_container(&self, key: &str, t: Option<i64>) -> Result<bool> {
        let c = self.find(key)?;
        let mut rec = c.snapshot();
        if !rec.running() {
            if self.cancel_restart(&c).await {
                return Ok(true);
            }
            // the restart may have won the race
            rec = c.snapshot();
            if !rec.running() {
                return Ok(false);
            }
        }
        let sig = parse_signal(rec.config.stop_signal.as_deref().unwrap_or("SIGTERM"))?;
        // before the signal: its exit is not for the restart policy
        self.update(&c, |r| r.state.stopped_by_user = true)?;
        // A negative timeout waits as long as it takes (Docker's -1).
        let t = match t.or(rec.config.stop_timeout).unwrap_or(10) {
            t if t < 0 => u64::MAX / 4,
            t => t as u64,
        };
        let exits = c.exits();
        let mut rx = c.subscribe();
        signal(&c, sig);
        // `!running()` too: the exit may have been counted before `exits` was read above.
        let ended = |c: &Ctr| {
            c.exits() > exits || c.removed.load(Ordering::SeqCst) || !c.snapshot().running()
        };
        let graceful = tokio::time::timeout(Duration::from_secs(t), async {
            while !ended(&c) {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
        if graceful.is_err() {
            signal(&c, libc::SIGKILL);
            // a frozen process dies only once thawed
            let _ = self.thaw(&c).await;
            while !ended(&c) {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }
        Ok(true)
    }

    pub async fn kill_container(&self, key: &str, sig: &str) -> Result<()> {
        let c = self.find(key)?;
        let sig = parse_signal(sig)?;
        let rec = c.snapshot();
        if !rec.running() {
            // killing a container waiting to restart: the restart is off (Docker's answer: 204)
            if self.cancel_restart(&c).await {
                return Ok(());
            }
            return Err(NetError::conflict(format!(
                "Cannot kill container: {key}: Container {} is not running",
                rec.id
            )));
        }
        self.update(&c, |r| r.state.stopped_by_user = true)?;
        let exits = c.exits();
        let mut rx = c.subscribe();
        signal(&c, sig);
        // Docker thaws a paused container after the signal
        let _ = self.thaw(&c).await;
        if sig != libc::SIGKILL {
            return Ok(());
        }
        // Docker's `Kill`: SIGKILL answers once the container is gone (2 s at most), so a
        // client's next inspect sees it exited.
        let ended = |c: &Ctr| c.exits() > exits || !c.snapshot().running();
        let dead = tokio::time::timeout(Duration::from_secs(2), async {
            while !ended(&c) {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
        dead.map_err(|_| {
            NetError::internal("tried to kill container, but did not receive an exit event")
        })
    }

    pub async fn restart_container(self: &Arc<Self>, key: &str, t: Option<i64>) -> Result<()> {
        let c = self.find(key)?;
        self.stop_container(&c.id, t).await?;
        self.start_container(&c.id).await?;
        Ok(())
    }

    pub async fn remove_container(self: &Arc<Self>, key: &str, force: bool) -> Result<()> {
        let c = self.find(key)?;
        let st = c.snapshot().state;
        if !force && st.restarting {
            return Err(NetError::conflict(format!(
                "You cannot remove a restarting container {}. Stop the container before attempting removal or force remove",
                c.id
            )));
        }
        if !force && st.paused {
            return Err(NetError::conflict(format!(
                "You cannot remove a paused container {}. Unpause and then stop the container before attempting removal or force remove",
                c.id
            )));
        }
        if force {
            self.cancel_restart(&c).await;
        }
        let in_use = || {
            NetError::conflict(format!(
                "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                c.id
            ))
        };
        // Loops when a start slipped in between the kill and taking the op lock.
        let _op = loop {
            if c.snapshot().running() {
                if !force {
                    return Err(in_use());
                }
                let mut rx = c.subscribe();
                let _ = self.update(&c, |r| r.state.stopped_by_user = true);
                signal(&c, libc::SIGKILL);
                let _ = self.thaw(&c).await;
                while c.snapshot().running() {
                    if rx.changed().await.is_err() {
                        break;
                    }
                }
            }
            let op = c.op.lock().await;
            if !c.snapshot().running() {
                break op;
            }
            if !force {
                return Err(in_use());
            }
        };
        if c.removed.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.update(&c, |r| r.state.status = Status::Removing)?;
        berth_net::fail::point("rm/removing");
        let rt = self.rt.clone();
        let id = c.id.clone();
        let _ = tokio::task::spawn_blocking(move || rt.remove(&id)).await;
        berth_net::fail::point("rm/runtime");
        self.store
            .delete(super::record::CONTAINERS, &c.id)
            .map_err(|e| NetError::internal(e.to_string()))?;
        berth_net::fail::point("rm/stored");
        self.ctrs.lock().unwrap().remove(&c.id);
        self.execs
            .lock()
            .unwrap()
            .retain(|_, e| e.container_id != c.id);
        c.removed.store(true, Ordering::SeqCst);
        c.bump();
        Ok(())
    }

    /// `POST /containers/{id}/wait`: resolves with the exit code once `condition` holds.
    /// Returns the future without holding the registry, so the caller can send headers first.
    pub fn wait_container(
        &self,
        key: &str,
        condition: &str,
    ) -> Result<impl std::future::Future<Output = i32> + Send + 'static> {
        let c = self.find(key)?;
        let exits = c.exits();
        let condition = match condition {
            "next-exit" | "removed" | "not-running" => condition.to_string(),
            "" => "not-running".to_string(),
            other => return Err(NetError::invalid(format!("invalid condition: \"{other}\""))),
        };
        let mut rx = c.subscribe();
        Ok(async move {
            loop {
                let done = match condition.as_str() {
                    "next-exit" => c.exits() > exits || c.removed.load(Ordering::SeqCst),
                    "removed" => c.removed.load(Ordering::SeqCst),
                    // a container waiting to restart counts as running until its next exit
                    _ => {
                        let r = c.snapshot();
                        (!r.running() && !r.state.restarting) || c.exits() > exits
                    }
                };
                if done {
                    return c.rec.lock().unwrap().state.exit_code;
                }
                if rx.changed().await.is_err() {
                    return c.rec.lock().unwrap().state.exit_code;
                }
            }
        })
    }

    /// A container that can take an exec: running, not paused, not waiting to restart.
    pub fn require_running(&self, key: &str) -> Result<Arc<Ctr>> {
        let c = self.require_alive(key)?;
        if c.snapshot().state.paused {
            return Err(NetError::conflict(format!(
                "Container {key} is paused, unpause the container before exec"
            )));
        }
        Ok(c)
    }

    /// A container whose process runs (paused or not).
    pub fn require_alive(&self, key: &str) -> Result<Arc<Ctr>> {
        let c = self.find(key).map_err(|_| no_such_container(key))?;
        let st = c.snapshot().state;
        if st.restarting {
            return Err(NetError::conflict(format!(
                "Container {} is restarting, wait until the container is running",
                c.id
            )));
        }
        if !c.snapshot().running() {
            return Err(not_running(&c.id));
        }
        Ok(c)
    }
}

/// Signals the container's process through its pidfd: once it ended, nothing is signalled.
fn signal(c: &Ctr, sig: i32) {
    if let Some(p) = c.proc.lock().unwrap().as_ref() {
        if let Err(e) = p.signal(sig) {
            tracing::debug!(
                "container {}: signal {sig}: {e}",
                &c.id[..12.min(c.id.len())]
            );
        }
    }
}
