//! `exec` into a service's container and `run` of a one-off container, through the same code
//! as `berth exec` and `berth run`.

use super::api;
use super::container::{self, OneOff};
use super::load::Loaded;
use super::up::{self, Ctx};
use crate::client::Client;
use crate::cmd::container::ExecArgs;
use crate::hijack::term;
use anyhow::{anyhow, bail};

/// `exec [-T] [--index N] SERVICE CMD...`: in the service's running container number N.
/// `compose exec`'s options, as docker compose has them.
pub struct ExecOpts {
    pub detach: bool,
    pub env: Vec<String>,
    pub no_tty: bool,
    pub privileged: bool,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// Which container of the service (its number).
    pub index: u32,
}

pub async fn exec(
    c: &Client,
    l: &Loaded,
    service: &str,
    o: ExecOpts,
    command: Vec<String>,
) -> anyhow::Result<i32> {
    let p = &l.project;
    if p.service(service).is_none() {
        bail!("no such service: {service}");
    }
    let ctrs = api::containers(c, &p.name, Some(service), Some(false)).await?;
    let Some(ctr) = ctrs
        .iter()
        .find(|x| x.running && x.number.unwrap_or(1) == o.index)
    else {
        bail!(
            "service \"{service}\" is not running (no container number {})",
            o.index
        );
    };
    let args = ExecArgs {
        detach: o.detach,
        detach_keys: None,
        env: o.env,
        // detached: nothing reads the command's input
        interactive: !o.detach,
        privileged: o.privileged,
        tty: !o.no_tty && !o.detach && term::isatty(0),
        user: o.user,
        workdir: o.workdir,
        container: ctr.id.clone(),
        command,
    };
    crate::cmd::container::exec(c, args).await
}

pub struct RunOpts {
    pub service: String,
    pub command: Vec<String>,
    pub rm: bool,
    pub no_tty: bool,
    pub no_deps: bool,
    pub timeout: u32,
}

/// `run [--rm] [-T] SERVICE [CMD...]`: the dependencies brought up, then a one-off container
/// of the service, attached, with the command given (the service's own otherwise).
pub async fn run(c: &Client, l: &Loaded, o: RunOpts) -> anyhow::Result<i32> {
    let p = &l.project;
    let s = p
        .service(&o.service)
        .ok_or_else(|| anyhow!("no such service: {}", o.service))?;
    let mut order = up::selection(p, std::slice::from_ref(&o.service))?;
    order.retain(|n| *n != o.service);
    if o.no_deps {
        order.clear();
    }
    let cx = Ctx::new(
        c,
        p,
        &[&order[..], std::slice::from_ref(&o.service)].concat(),
        o.timeout,
    )
    .await?;
    let r = async {
        cx.ensure_networks(&[&order[..], std::slice::from_ref(&o.service)].concat())
            .await?;
        cx.converge_all(&order).await?;
        cx.wiring(s).await
    }
    .await;
    let (wiring, _) = match r {
        Ok(w) => w,
        Err(e) => {
            cx.into_undo().run(c).await;
            return Err(e);
        }
    };
    let slug = container::slug();
    let one_off = OneOff {
        command: (!o.command.is_empty()).then(|| o.command.clone()),
        tty: !o.no_tty && term::isatty(0),
        rm: o.rm,
    };
    let labels = container::labels(p, s, None, None, Some(&slug));
    let spec = container::spec(s, &wiring, labels, Some(&one_off)).map_err(|e| anyhow!(e))?;
    let name = container::oneoff_name(&p.name, &s.name, &slug);
    let id = api::create_container(c, &name, &spec.body)
        .await
        .map_err(|e| {
            anyhow!(
                "Cannot create container for service {}: {}",
                s.name,
                up::daemon_text(&e)
            )
        })?;
    if let Err(e) = container::join_networks(c, &id, s, &wiring, false).await {
        let _ = api::remove(c, &id, true).await;
        bail!("Cannot start service {}: {}", s.name, up::daemon_text(&e));
    }
    crate::cmd::container::start_created(c, &id, &spec, None, true).await
}
