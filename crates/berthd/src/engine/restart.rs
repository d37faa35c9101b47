//! Restart policies (`--restart no|always|unless-stopped|on-failure[:N]`): Docker's validation,
//! and Docker 20.10's restart manager: a process that ends is started again after a back-off
//! of 100 ms that doubles with each restart (at most a minute), back to 100 ms once a run
//! lasted 10 s. A container the user stopped or killed is not restarted; at a daemon start,
//! `always` containers come back even then, `unless-stopped` ones only if not stopped by hand.

use super::record::{Record, Status};
use super::{Ctr, Engine, Result};
use berth_api::HostConfig;
use berth_net::NetError;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the back-off.
const RESET_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    No,
    Always,
    UnlessStopped,
    /// At most this many restarts; 0: no limit.
    OnFailure(i64),
}

impl Policy {
    /// `HostConfig.RestartPolicy`, checked as Docker checks it (create and update).
    pub fn from_json(v: Option<&Value>) -> Result<Policy> {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Ok(Policy::No);
        };
        let name = v.get("Name").and_then(Value::as_str).unwrap_or("");
        let max = match v.get("MaximumRetryCount") {
            None | Some(Value::Null) => 0,
            Some(m) => m
                .as_i64()
                .ok_or_else(|| NetError::invalid(format!("invalid MaximumRetryCount: {m}")))?,
        };
        match name {
            "always" | "unless-stopped" | "no" if max != 0 => Err(NetError::invalid(format!(
                "maximum retry count cannot be used with restart policy '{name}'"
            ))),
            "always" => Ok(Policy::Always),
            "unless-stopped" => Ok(Policy::UnlessStopped),
            "no" | "" => Ok(Policy::No),
            "on-failure" if max < 0 => {
                Err(NetError::invalid("maximum retry count cannot be negative"))
            }
            "on-failure" => Ok(Policy::OnFailure(max)),
            other => Err(NetError::invalid(format!(
                "invalid restart policy '{other}'"
            ))),
        }
    }

    pub fn of(hc: &HostConfig) -> Policy {
        Policy::from_json(hc.extra.get("RestartPolicy")).unwrap_or(Policy::No)
    }

    /// As inspect shows it.
    pub fn to_json(&self) -> Value {
        let (name, max) = match self {
            Policy::No => ("no", 0),
            Policy::Always => ("always", 0),
            Policy::UnlessStopped => ("unless-stopped", 0),
            Policy::OnFailure(n) => ("on-failure", *n),
        };
        json!({"Name": name, "MaximumRetryCount": max})
    }

    /// Docker's `ShouldRestart` without the back-off: `restarts` done so far.
    pub fn wants_restart(&self, exit_code: i32, stopped_by_user: bool, restarts: i64) -> bool {
        match self {
            Policy::No => false,
            Policy::Always => !stopped_by_user,
            Policy::UnlessStopped => !stopped_by_user,
            Policy::OnFailure(max) => {
                !stopped_by_user && exit_code != 0 && (*max == 0 || restarts < *max)
            }
        }
    }
}

/// The restart manager's memory: the current delay and when the last run began.
#[derive(Debug, Default)]
pub struct Backoff {
    delay: Option<Duration>,
    started: Option<Instant>,
}

impl Backoff {
    pub fn started(&mut self) {
        self.started = Some(Instant::now());
    }

    pub fn reset(&mut self) {
        self.delay = None;
    }

    /// The delay before the next restart: 100 ms, doubled each time, reset by a long run.
    pub fn next(&mut self) -> Duration {
        if self.started.is_some_and(|s| s.elapsed() >= RESET_AFTER) {
            self.delay = None;
        }
        let d = match self.delay {
            None => FIRST_DELAY,
            Some(d) => (d * 2).min(MAX_DELAY),
        };
        self.delay = Some(d);
        d
    }
}

impl Engine {
    /// At an exit: whether (and after how long) the process is to be started again. Counted
    /// at once, as Docker counts `RestartCount` when it decides.
    pub(super) fn restart_delay(&self, c: &Ctr, code: i32) -> Option<Duration> {
        let rec = c.rec.lock().unwrap();
        if !Policy::of(&rec.host_config).wants_restart(
            code,
            rec.state.stopped_by_user,
            rec.restart_count,
        ) {
            return None;
        }
        drop(rec);
        Some(c.backoff.lock().unwrap().next())
    }

    /// Starts the container again after `delay`, unless a stop, kill or remove came first
    /// (they clear `restarting` under the op lock, which the start takes too).
    pub(super) fn schedule_restart(self: &Arc<Self>, c: Arc<Ctr>, delay: Duration) {
        let e = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(err) = e.start_again(&c).await {
                tracing::warn!("container {}: restart failed: {err}", &c.id[..12]);
                let _ = e.update(&c, |r| {
                    r.state.restarting = false;
                    r.state.error = err.message.clone();
                });
            }
        });
    }

    /// At a daemon start, for a container found not running: Docker's restore rule.
    pub(super) fn restart_at_boot(rec: &Record) -> bool {
        if rec.state.status != Status::Exited {
            return false;
        }
        match Policy::of(&rec.host_config) {
            Policy::Always => true,
            Policy::UnlessStopped => !rec.state.stopped_by_user,
            // stopped during its back-off: carry on
            Policy::OnFailure(_) => rec.state.restarting,
            Policy::No => false,
        }
    }

    /// Stops a pending restart (stop, kill, remove of a restarting container). `true`: the
    /// container was waiting for one.
    pub(super) async fn cancel_restart(&self, c: &Ctr) -> bool {
        let _op = c.op.lock().await;
        if !c.rec.lock().unwrap().state.restarting {
            return false;
        }
        let _ = self.update(c, |r| {
            r.state.restarting = false;
            r.state.stopped_by_user = true;
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: Value) -> std::result::Result<Policy, String> {
        Policy::from_json(Some(&v)).map_err(|e| e.message)
    }

    #[test]
    fn validation_as_docker() {
        assert_eq!(p(json!({"Name": "always"})), Ok(Policy::Always));
        assert_eq!(p(json!({"Name": ""})), Ok(Policy::No));
        assert_eq!(
            p(json!({"Name": "on-failure", "MaximumRetryCount": 3})),
            Ok(Policy::OnFailure(3))
        );
        assert_eq!(
            p(json!({"Name": "bogus"})),
            Err("invalid restart policy 'bogus'".into())
        );
        assert_eq!(
            p(json!({"Name": "always", "MaximumRetryCount": 3})),
            Err("maximum retry count cannot be used with restart policy 'always'".into())
        );
        assert_eq!(
            p(json!({"Name": "on-failure", "MaximumRetryCount": -1})),
            Err("maximum retry count cannot be negative".into())
        );
        assert_eq!(Policy::from_json(None).unwrap(), Policy::No);
    }

    #[test]
    fn decisions() {
        let f = Policy::OnFailure(2);
        assert!(f.wants_restart(3, false, 0));
        assert!(f.wants_restart(3, false, 1));
        assert!(!f.wants_restart(3, false, 2));
        assert!(!f.wants_restart(0, false, 0));
        assert!(Policy::OnFailure(0).wants_restart(1, false, 1000));
        assert!(Policy::Always.wants_restart(0, false, 9));
        assert!(!Policy::Always.wants_restart(0, true, 0));
        assert!(!Policy::No.wants_restart(1, false, 0));
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let mut b = Backoff::default();
        b.started();
        let ms: Vec<u128> = (0..4).map(|_| b.next().as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800]);
        for _ in 0..20 {
            b.next();
        }
        assert_eq!(b.next(), MAX_DELAY);
        b.reset();
        assert_eq!(b.next(), FIRST_DELAY);
        // a run of 10 s or more starts over
        b.started = Some(Instant::now() - RESET_AFTER);
        assert_eq!(b.next(), FIRST_DELAY);
    }
}
