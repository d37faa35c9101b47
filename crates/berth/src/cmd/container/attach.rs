//! `berth attach`: docker 28's order — wait registered first (so the exit status is not
//! missed), state checked, attach, state checked again, stream, then the exit status.

use super::session::{self, Wait};
use super::{path, AttachArgs};
use crate::client::Client;
use crate::hijack::{self, keys, term, End, Wiring};
use anyhow::bail;
use serde_json::Value;

fn check_state(v: &Value) -> anyhow::Result<()> {
    let s = &v["State"];
    if !s["Running"].as_bool().unwrap_or(false) {
        bail!("cannot attach to a stopped container, start it first");
    }
    if s["Paused"].as_bool().unwrap_or(false) {
        bail!("cannot attach to a paused container, unpause it first");
    }
    if s["Restarting"].as_bool().unwrap_or(false) {
        bail!("cannot attach to a restarting container, wait until it is running");
    }
    Ok(())
}

pub async fn attach(c: &Client, a: AttachArgs) -> anyhow::Result<i32> {
    // the daemon refuses them at attach time: refuse before anything is created
    keys::check(a.detach_keys.as_deref())?;
    let wait = Wait::open(c, &a.container, None).await;
    let v = session::inspect(c, &a.container).await?;
    check_state(&v)?;
    let id = v["Id"].as_str().unwrap_or(&a.container).to_string();
    let tty = v["Config"]["Tty"].as_bool().unwrap_or(false);
    if let Err(e) = session::check_tty(!a.no_stdin, tty) {
        bail!("{e}");
    }
    let stdin = !a.no_stdin && v["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    if a.sig_proxy && !tty {
        session::forward_signals(c, &id);
    }
    let conn = session::attach(c, &id, stdin, true, true, a.detach_keys.as_deref()).await?;
    // it may have stopped between the first look and the attach
    check_state(&session::inspect(c, &id).await?)?;
    if tty && term::isatty(1) {
        session::monitor_tty_size(c, path(&id, "/resize"));
    }
    let wiring = Wiring {
        tty,
        stdin,
        detach_keys: keys::resolve(a.detach_keys.as_deref()),
    };
    if hijack::stream(conn, wiring).await? == End::Detached {
        bail!(hijack::DETACHED);
    }
    Ok(wait.result().await? as i32)
}
