//! `down`: the project's containers stopped (dependents first) and removed, then the
//! networks the project made. External networks, and networks of that name that the project
//! did not make, are left alone. Containers of services no longer in the file are orphans:
//! reported, or removed with `--remove-orphans`.

use super::api::{self, Ctr, PROJECT};
use super::load::Loaded;
use super::model::Project;
use super::{networks, up};
use crate::client::Client;

/// Orphans: the project's (non one-off) containers whose service the file no longer has.
pub async fn orphans(c: &Client, p: &Project, remove: bool) -> anyhow::Result<()> {
    let all = api::containers(c, &p.name, None, Some(false)).await?;
    let orphans: Vec<&Ctr> = all
        .iter()
        .filter(|x| p.service(&x.service).is_none())
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    if !remove {
        let names: Vec<&str> = orphans.iter().map(|o| o.name.as_str()).collect();
        eprintln!(
            "WARNING: Found orphan containers ({}) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            names.join(", ")
        );
        return Ok(());
    }
    for o in orphans {
        eprintln!("Removing orphan container \"{}\"", o.name);
        api::remove(c, &o.id, true).await?;
    }
    Ok(())
}

/// Stops the containers, dependents before what they depend on, each wave in parallel.
pub async fn stop_all(c: &Client, p: &Project, ctrs: &[Ctr], timeout: u32) {
    let order = super::validate::start_order(p).unwrap_or_default();
    let mut waves = up::waves(p, &order);
    waves.reverse();
    // containers of services not in the waves (one-offs of removed services) go first
    let known: Vec<&String> = waves.iter().flatten().collect();
    let first: Vec<&Ctr> = ctrs
        .iter()
        .filter(|x| !known.contains(&&x.service))
        .collect();
    let mut batches: Vec<Vec<&Ctr>> = vec![first];
    for w in &waves {
        batches.push(ctrs.iter().filter(|x| w.contains(&x.service)).collect());
    }
    for batch in batches {
        let stops = batch.iter().filter(|x| x.running).map(|x| async move {
            let r = api::stop(c, &x.id, timeout).await;
            match r {
                Ok(()) => eprintln!("Stopping {} ... done", x.name),
                Err(e) => eprintln!("Stopping {} ... error: {}", x.name, up::daemon_text(&e)),
            }
        });
        futures::future::join_all(stops).await;
    }
}

pub async fn down(
    c: &Client,
    l: &Loaded,
    remove_orphans: bool,
    timeout: u32,
    volumes: bool,
) -> anyhow::Result<i32> {
    let p = &l.project;
    let all = api::containers(c, &p.name, None, None).await?;
    let ours: Vec<Ctr> = all
        .into_iter()
        .filter(|x| p.service(&x.service).is_some())
        .collect();
    stop_all(c, p, &ours, timeout).await;
    orphans(c, p, remove_orphans).await?;
    let mut failed = false;
    let removals = ours.iter().map(|x| async move {
        let r = if volumes {
            // `-v` on the removal: the container's anonymous volumes go with it
            c.call(
                hyper::Method::DELETE,
                &format!("/containers/{}?force=1&v=1", x.id),
                None,
            )
            .await
            .map(|_| ())
        } else {
            api::remove(c, &x.id, true).await
        };
        match r {
            Ok(()) => {
                eprintln!("Removing {} ... done", x.name);
                true
            }
            Err(e) => {
                eprintln!("Removing {} ... error: {}", x.name, up::daemon_text(&e));
                false
            }
        }
    });
    for ok in futures::future::join_all(removals).await {
        failed |= !ok;
    }
    let names: Vec<String> = p.services.iter().map(|s| s.name.clone()).collect();
    let mut nets: Vec<(String, bool)> = networks::used(p, &names)
        .into_iter()
        .filter(|(_, d)| !d.external)
        .map(|(k, d)| (d.full_name(&p.name, &k), true))
        .collect();
    if remove_orphans {
        // networks the project made that the file no longer names
        let filters = serde_json::json!({"label": [format!("{PROJECT}={}", p.name)]}).to_string();
        let v = c
            .get_json(&format!(
                "/networks?filters={}",
                crate::client::query_escape(&filters)
            ))
            .await?;
        for n in v.as_array().into_iter().flatten() {
            let name = n["Name"].as_str().unwrap_or_default().to_string();
            if !nets.iter().any(|(x, _)| *x == name) {
                nets.push((name, false));
            }
        }
    }
    for (name, _) in nets {
        match api::inspect_network(c, &name).await? {
            None => eprintln!("WARNING: Network {name} not found."),
            Some(v) if v["Labels"][PROJECT].as_str() != Some(p.name.as_str()) => {
                eprintln!(
                    "WARNING: Network {name} was not created by project {}: left in place.",
                    p.name
                )
            }
            Some(_) => {
                eprintln!("Removing network {name}");
                if let Err(e) = api::remove_network(c, &name).await {
                    eprintln!("ERROR: network {name}: {}", up::daemon_text(&e));
                    failed = true;
                }
            }
        }
    }
    if volumes && !super::volumes::remove_all(c, p).await {
        failed = true;
    }
    Ok(if failed { 1 } else { 0 })
}
