//! Compose volumes: the services' mounts resolved at load (named volumes to their full name,
//! relative binds to absolute paths), the project's volumes made before its containers (with
//! docker-compose's labels), the mounts put in each container's HostConfig, `down -v`.

use super::api::{COMPOSE_VERSION, PROJECT, VERSION};
use super::model::{Project, Service, SvcVolume, VolumeDef};
use crate::client::{query_escape, Client};
use anyhow::bail;
use hyper::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

pub const VOLUME: &str = "com.docker.compose.volume";

/// The short syntax; `daemon`: with the source the daemon gets.
pub fn spec_text(v: &SvcVolume, daemon: bool) -> String {
    let src = if daemon {
        v.daemon_source()
    } else {
        v.source.as_deref()
    };
    let mut s = src.map(|s| format!("{s}:")).unwrap_or_default();
    s.push_str(&v.target);
    if let Some(m) = &v.mode {
        s.push(':');
        s.push_str(m);
    }
    s
}

/// Named sources to the daemon's names, relative binds to absolute paths; an undeclared
/// named volume is docker-compose's error.
pub fn resolve(
    project: &str,
    working_dir: &Path,
    defs: &BTreeMap<String, VolumeDef>,
    services: &mut [Service],
) -> Result<(), String> {
    for s in services {
        for v in s.volumes.iter_mut().flatten() {
            let Some(src) = v.source.clone() else {
                continue;
            };
            match v.kind.as_str() {
                "bind" => {
                    let abs = if let Some(rest) = src.strip_prefix('~') {
                        let home = std::env::var("HOME").unwrap_or_default();
                        format!("{home}{rest}")
                    } else if src.starts_with('/') {
                        src
                    } else {
                        working_dir.join(&src).display().to_string()
                    };
                    v.resolved = Some(berth_clean(&abs));
                }
                "volume" => match defs.get(&src) {
                    Some(d) => v.resolved = Some(d.full_name(project, &src)),
                    None => {
                        return Err(format!(
                            "Named volume \"{}\" is used in service \"{}\" but no declaration was found in the volumes section.",
                            spec_text(v, false),
                            s.name
                        ))
                    }
                },
                _ => {}
            }
        }
    }
    Ok(())
}

/// `/a/./b/../c` → `/a/c` (what the daemon would see anyway, but the hash must be stable).
fn berth_clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// The service's `HostConfig.Binds` (short syntax) and `HostConfig.Mounts` (long syntax).
pub fn host_config(s: &Service) -> (Value, Value) {
    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    for v in s.volumes.iter().flatten() {
        if !v.long {
            binds.push(json!(spec_text(v, true)));
            continue;
        }
        let mut m = json!({"Type": v.kind, "Target": v.target, "ReadOnly": v.read_only});
        if let Some(src) = v.daemon_source() {
            m["Source"] = json!(src);
        }
        if let Some(p) = &v.propagation {
            m["BindOptions"] = json!({"Propagation": p});
        }
        if v.nocopy {
            m["VolumeOptions"] = json!({"NoCopy": true});
        }
        if let Some(n) = v.tmpfs_size {
            m["TmpfsOptions"] = json!({"SizeBytes": n});
        }
        mounts.push(m);
    }
    let list = |l: Vec<Value>| {
        if l.is_empty() {
            Value::Null
        } else {
            Value::Array(l)
        }
    };
    (list(binds), list(mounts))
}

/// Top-level volumes the selected services use: (key, definition).
pub fn used<'a>(p: &'a Project, services: &[String]) -> Vec<(&'a String, &'a VolumeDef)> {
    p.volumes
        .iter()
        .filter(|(k, d)| {
            let full = d.full_name(&p.name, k);
            services.iter().filter_map(|s| p.service(s)).any(|s| {
                s.volumes
                    .iter()
                    .flatten()
                    .any(|v| v.kind == "volume" && v.daemon_source() == Some(full.as_str()))
            })
        })
        .collect()
}

async fn inspect(c: &Client, name: &str) -> anyhow::Result<Option<Value>> {
    match c
        .get_json(&format!("/volumes/{}", query_escape(name)))
        .await
    {
        Ok(v) => Ok(Some(v)),
        Err(e)
            if e.downcast_ref::<crate::client::DaemonError>()
                .is_some_and(|d| d.status == hyper::StatusCode::NOT_FOUND) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Makes the project's volume `key` unless it exists; `Some(name)` when made here.
pub async fn ensure(
    c: &Client,
    p: &Project,
    key: &str,
    def: &VolumeDef,
) -> anyhow::Result<Option<String>> {
    let full = def.full_name(&p.name, key);
    let remote = inspect(c, &full).await?;
    if def.external {
        if remote.is_none() {
            bail!("Volume {full} declared as external, but could not be found. Please create the volume manually using `berth volume create --name={full}` and try again.");
        }
        return Ok(None);
    }
    if remote.is_some() {
        return Ok(None);
    }
    let mut labels = def.labels.clone().unwrap_or_default();
    labels.insert(PROJECT.into(), p.name.clone());
    labels.insert(VERSION.into(), COMPOSE_VERSION.into());
    labels.insert(VOLUME.into(), key.into());
    let body = json!({
        "Name": full,
        "Driver": def.driver.clone().unwrap_or_else(|| "local".into()),
        "DriverOpts": def.driver_opts.clone().unwrap_or_default(),
        "Labels": labels,
    });
    eprintln!(
        "Creating volume \"{full}\" with {} driver",
        def.driver.as_deref().unwrap_or("default")
    );
    c.call(Method::POST, "/volumes/create", Some(&body))
        .await
        .map_err(|e| anyhow::anyhow!("volume \"{full}\": {}", super::up::daemon_text(&e)))?;
    Ok(Some(full))
}

/// `down -v`: the project's own volumes (never external ones, nor one another project made).
pub async fn remove_all(c: &Client, p: &Project) -> bool {
    let mut ok = true;
    for (k, d) in p.volumes.iter().filter(|(_, d)| !d.external) {
        let full = d.full_name(&p.name, k);
        match inspect(c, &full).await {
            Ok(Some(v)) if v["Labels"][PROJECT].as_str() == Some(p.name.as_str()) => {
                eprintln!("Removing volume {full}");
                if let Err(e) = c
                    .call(
                        Method::DELETE,
                        &format!("/volumes/{}", query_escape(&full)),
                        None,
                    )
                    .await
                {
                    eprintln!("ERROR: volume {full}: {}", super::up::daemon_text(&e));
                    ok = false;
                }
            }
            Ok(Some(_)) => eprintln!(
                "WARNING: Volume {full} was not created by project {}: left in place.",
                p.name
            ),
            Ok(None) => eprintln!("WARNING: Volume {full} not found."),
            Err(e) => {
                eprintln!("ERROR: volume {full}: {}", super::up::daemon_text(&e));
                ok = false;
            }
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_and_relative_sources_resolve() {
        let defs = BTreeMap::from([("data".to_string(), VolumeDef::default())]);
        let mut s = vec![Service::empty(
            "web",
            crate::compose::yaml::Mark {
                file: "t".into(),
                line: 1,
                col: 1,
            },
        )];
        s[0].volumes = Some(vec![
            super::super::parse::short_volume("data:/d").unwrap(),
            super::super::parse::short_volume("./h/../x:/h:ro").unwrap(),
        ]);
        resolve("proj", Path::new("/srv/app"), &defs, &mut s).unwrap();
        let v = s[0].volumes.as_ref().unwrap();
        assert_eq!(v[0].daemon_source(), Some("proj_data"));
        assert_eq!(v[1].daemon_source(), Some("/srv/app/x"));
        let (binds, mounts) = host_config(&s[0]);
        assert_eq!(binds, json!(["proj_data:/d", "/srv/app/x:/h:ro"]));
        assert_eq!(mounts, Value::Null);

        let mut s = vec![Service::empty(
            "web",
            crate::compose::yaml::Mark {
                file: "t".into(),
                line: 1,
                col: 1,
            },
        )];
        s[0].volumes = Some(vec![super::super::parse::short_volume("nope:/d").unwrap()]);
        let e = resolve("proj", Path::new("/"), &defs, &mut s).unwrap_err();
        assert!(
            e.contains("no declaration was found in the volumes section"),
            "{e}"
        );
    }
}
