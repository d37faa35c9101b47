//! `up`: networks first, then services in dependency order (services that do not depend on
//! each other in parallel), each converged as docker-compose 1.29 converges it — created when
//! it has no container, recreated when its config hash changed, started when stopped, left
//! alone otherwise. A failure undoes what this `up` created (containers, networks) and puts
//! back a container it was replacing, so nothing is left half-made.

use super::api::{self, Ctr};
use super::container::{self, Wiring};
use super::hash;
use super::load::Loaded;
use super::model::{Project, Service};
use super::networks;
use crate::client::Client;
use anyhow::{anyhow, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// What this `up` changed, to be undone if it fails.
#[derive(Default)]
pub struct Undo {
    containers: Vec<(String, String)>,
    networks: Vec<String>,
    /// A container set aside to be replaced: (id, its name, was it running).
    replacing: Vec<(String, String, bool)>,
}

impl Undo {
    pub async fn run(self, c: &Client) {
        for (id, name) in self.containers.iter().rev() {
            eprintln!("Removing {name} (rolling back)");
            let _ = api::remove(c, id, true).await;
        }
        for (id, name, running) in &self.replacing {
            let _ = api::rename(c, id, name).await;
            if *running {
                let _ = api::start(c, id).await;
            }
        }
        for n in self.networks.iter().rev() {
            eprintln!("Removing network {n} (rolling back)");
            let _ = api::remove_network(c, n).await;
        }
    }
}

/// Everything a service's convergence reads.
pub struct Ctx<'a> {
    pub c: &'a Client,
    pub p: &'a Project,
    pub images: BTreeMap<String, Option<String>>,
    pub undo: Mutex<Undo>,
    pub timeout: u32,
}

/// The services to bring up: the named ones and everything they depend on (all when none
/// are named), in start order.
pub fn selection(p: &Project, named: &[String]) -> anyhow::Result<Vec<String>> {
    let order = super::validate::start_order(p).map_err(|e| anyhow!(e))?;
    if named.is_empty() {
        return Ok(order);
    }
    let mut want: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = named.to_vec();
    while let Some(n) = todo.pop() {
        let s = p
            .service(&n)
            .ok_or_else(|| anyhow!("no such service: {n}"))?;
        if want.insert(n.clone()) {
            todo.extend(s.dependencies());
        }
    }
    Ok(order.into_iter().filter(|s| want.contains(s)).collect())
}

/// The services in waves: each wave depends only on earlier ones.
pub fn waves(p: &Project, order: &[String]) -> Vec<Vec<String>> {
    let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
    for name in order {
        let s = p.service(name).expect("validated");
        let d = s
            .dependencies()
            .iter()
            .filter_map(|d| depth.get(d.as_str()))
            .map(|d| d + 1)
            .max()
            .unwrap_or(0);
        depth.insert(name, d);
    }
    let mut out: Vec<Vec<String>> = Vec::new();
    for name in order {
        let d = depth[name.as_str()];
        if out.len() <= d {
            out.resize(d + 1, Vec::new());
        }
        out[d].push(name.clone());
    }
    out
}

impl<'a> Ctx<'a> {
    pub async fn new(
        c: &'a Client,
        p: &'a Project,
        services: &[String],
        timeout: u32,
    ) -> anyhow::Result<Ctx<'a>> {
        let mut images = BTreeMap::new();
        for name in services {
            let s = p.service(name).expect("validated");
            let image = s.image.clone().unwrap_or_default();
            if images.contains_key(&image) {
                continue;
            }
            let id = api::image_id(c, &image).await?;
            if id.is_none() {
                bail!("service \"{name}\": image \"{image}\" not found (berth has no registry to pull from: `berth import` or `berth load` it first)");
            }
            images.insert(image, id);
        }
        Ok(Ctx {
            c,
            p,
            images,
            undo: Mutex::new(Undo::default()),
            timeout,
        })
    }

    /// The service's networks, mode and links against what is running now, and its hash.
    pub async fn wiring(&self, s: &Service) -> anyhow::Result<(Wiring, String)> {
        let nets = container::prioritized(self.p, s);
        let (mode, net_id) = match s.network_mode.as_deref() {
            None => {
                let primary = nets
                    .first()
                    .map(|n| n.0.clone())
                    .unwrap_or_else(|| "none".into());
                (primary.clone(), primary)
            }
            Some(m) if m.starts_with("service:") => {
                let other = &m["service:".len()..];
                let running =
                    api::containers(self.c, &self.p.name, Some(other), Some(false)).await?;
                let Some(ctr) = running.iter().find(|c| c.running) else {
                    bail!("service \"{}\" uses the network stack of service \"{other}\", which has no running container", s.name);
                };
                (format!("container:{}", ctr.id), other.to_string())
            }
            Some(m) if m.starts_with("container:") => {
                let v = api::inspect_container(self.c, &m["container:".len()..])
                    .await
                    .map_err(|e| {
                        anyhow!(
                            "service \"{}\": network_mode {m}: {}",
                            s.name,
                            crate::render_error(&e)
                        )
                    })?;
                let id = v["Id"].as_str().unwrap_or_default().to_string();
                (m.to_string(), id)
            }
            Some(m) => (m.to_string(), m.to_string()),
        };
        let mut links: BTreeMap<String, String> = BTreeMap::new(); // alias → container name
        for l in s.links.iter().flatten() {
            let ctrs = api::containers(self.c, &self.p.name, Some(&l.service), Some(false)).await?;
            for ctr in ctrs.iter().filter(|c| c.running) {
                links.insert(
                    l.alias.clone().unwrap_or(l.service.clone()),
                    ctr.name.clone(),
                );
                links.insert(ctr.name.clone(), ctr.name.clone());
                let n = ctr.number.unwrap_or(1);
                links.insert(format!("{}_{n}", l.service), ctr.name.clone());
            }
        }
        let mut links: Vec<String> = links
            .into_iter()
            .map(|(alias, name)| format!("{name}:{alias}"))
            .collect();
        links.sort();
        let image = s.image.clone().unwrap_or_default();
        let hx = hash::Context {
            image_id: self.images.get(&image).and_then(|i| i.as_deref()),
            net: &net_id,
            networks: &nets,
        };
        let h = hash::config_hash(s, &hx);
        Ok((
            Wiring {
                networks: nets,
                mode,
                links,
            },
            h,
        ))
    }

    /// Creates, joins and starts container `number` of the service.
    async fn create(
        &self,
        s: &Service,
        w: &Wiring,
        h: &str,
        number: u32,
    ) -> anyhow::Result<String> {
        let name = s
            .container_name
            .clone()
            .unwrap_or_else(|| container::name(&self.p.name, &s.name, number));
        let labels = container::labels(self.p, s, Some(number), Some(h), None);
        let spec = container::spec(s, w, labels, None).map_err(|e| anyhow!(e))?;
        let id = api::create_container(self.c, &name, &spec.body)
            .await
            .map_err(|e| {
                anyhow!(
                    "Cannot create container for service {}: {}",
                    s.name,
                    daemon_text(&e)
                )
            })?;
        self.undo
            .lock()
            .unwrap()
            .containers
            .push((id.clone(), name.clone()));
        self.start(s, w, &id).await?;
        Ok(name)
    }

    async fn start(&self, s: &Service, w: &Wiring, id: &str) -> anyhow::Result<()> {
        container::join_networks(self.c, id, s, w, true)
            .await
            .map_err(|e| anyhow!("Cannot start service {}: {}", s.name, daemon_text(&e)))?;
        api::start(self.c, id)
            .await
            .map_err(|e| anyhow!("Cannot start service {}: {}", s.name, daemon_text(&e)))
    }

    /// Stops the old container, moves it aside, makes its replacement, removes it.
    async fn recreate(&self, s: &Service, w: &Wiring, h: &str, old: &Ctr) -> anyhow::Result<()> {
        api::stop(self.c, &old.id, self.timeout).await?;
        let aside = format!("{}_{}", old.short_id(), old.name);
        api::rename(self.c, &old.id, &aside).await?;
        self.undo
            .lock()
            .unwrap()
            .replacing
            .push((old.id.clone(), old.name.clone(), old.running));
        self.create(s, w, h, old.number.unwrap_or(1)).await?;
        api::remove(self.c, &old.id, true).await?;
        let mut u = self.undo.lock().unwrap();
        u.replacing.retain(|(id, _, _)| *id != old.id);
        // the replacement is kept even if a later service fails: its old self is gone
        u.containers.retain(|(_, n)| *n != old.name);
        Ok(())
    }

    /// docker-compose's convergence plan for one service, carried out.
    pub async fn converge(&self, name: &str) -> anyhow::Result<()> {
        let s = self.p.service(name).expect("validated");
        let existing = api::containers(self.c, &self.p.name, Some(name), Some(false)).await?;
        let (w, h) = self.wiring(s).await?;
        if existing.is_empty() {
            let n = self.create(s, &w, &h, 1).await?;
            eprintln!("Creating {n} ... done");
            return Ok(());
        }
        if existing
            .iter()
            .any(|c| c.hash.as_deref() != Some(h.as_str()))
        {
            for old in &existing {
                self.recreate(s, &w, &h, old).await?;
                eprintln!("Recreating {} ... done", old.name);
            }
            return Ok(());
        }
        for ctr in &existing {
            if ctr.running {
                eprintln!("{} is up-to-date", ctr.name);
            } else {
                self.start(s, &w, &ctr.id).await?;
                eprintln!("Starting {} ... done", ctr.name);
            }
        }
        Ok(())
    }

    /// Converges the services wave by wave; the first failure stops the rest.
    pub async fn converge_all(&self, order: &[String]) -> anyhow::Result<()> {
        for wave in waves(self.p, order) {
            let results = futures::future::join_all(wave.iter().map(|n| self.converge(n))).await;
            if let Some(e) = results.into_iter().find_map(Result::err) {
                return Err(e);
            }
        }
        Ok(())
    }

    pub async fn ensure_networks(&self, services: &[String]) -> anyhow::Result<()> {
        let used = networks::used(self.p, services);
        for (key, def) in used {
            if let Some(created) = networks::ensure(self.c, self.p, &key, &def).await? {
                self.undo.lock().unwrap().networks.push(created);
            }
        }
        Ok(())
    }

    pub fn into_undo(self) -> Undo {
        self.undo.into_inner().unwrap()
    }
}

/// The daemon's message alone (docker-compose prints the explanation, not the prefix).
pub fn daemon_text(e: &anyhow::Error) -> String {
    match e.downcast_ref::<crate::client::DaemonError>() {
        Some(d) => d.message.clone(),
        None => crate::render_error(e),
    }
}

pub struct UpOpts {
    pub detach: bool,
    pub remove_orphans: bool,
    pub services: Vec<String>,
    pub timeout: u32,
}

pub async fn up(c: &Client, l: &Loaded, o: &UpOpts) -> anyhow::Result<i32> {
    let p = &l.project;
    let order = selection(p, &o.services)?;
    let cx = Ctx::new(c, p, &order, o.timeout).await?;
    super::down::orphans(c, p, o.remove_orphans).await?;
    let r = async {
        cx.ensure_networks(&order).await?;
        // volumes are kept on a failed up, as docker-compose keeps them (they hold data)
        for (k, d) in super::volumes::used(p, &order) {
            super::volumes::ensure(c, p, k, d).await?;
        }
        cx.converge_all(&order).await
    }
    .await;
    if let Err(e) = r {
        cx.into_undo().run(c).await;
        return Err(e);
    }
    if o.detach {
        return Ok(0);
    }
    // attached: the services' output until Ctrl-C, then stop them as docker-compose does
    let ctrs = api::containers(c, &p.name, None, Some(false)).await?;
    let ctrs: Vec<Ctr> = ctrs
        .into_iter()
        .filter(|x| order.contains(&x.service))
        .collect();
    tokio::select! {
        r = super::logs::follow(c, &ctrs, true) => r?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
            super::down::stop_all(c, p, &ctrs, o.timeout).await;
        }
    }
    Ok(0)
}
