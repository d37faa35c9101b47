//! Volumes of the `local` driver: a directory `<data-root>/volumes/<name>/_data` and a record
//! in the store's `volumes` table, so they outlive the daemon. Create, inspect, list (with
//! Docker's filters), remove (refused while a container uses it) and prune, as Docker 20.10.

use super::{Engine, Result};
use berth_api::Filters;
use berth_net::NetError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

pub const VOLUMES: &str = "volumes";

/// Serialises create/remove/prune: a name is taken or freed by one of them at a time.
static LOCK: Mutex<()> = Mutex::new(());

/// A volume as the store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolRec {
    pub name: String,
    pub driver: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub options: Option<BTreeMap<String, String>>,
    pub created_at: String,
    /// Made for a container's unnamed mount point: `rm -v` removes it with the container.
    #[serde(default)]
    pub anonymous: bool,
}

/// A volume as the API shows it, fields in Docker's order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub created_at: String,
    pub driver: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub mountpoint: String,
    pub name: String,
    pub options: Option<BTreeMap<String, String>>,
    pub scope: String,
}

/// `POST /volumes/create`'s body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// Docker's rule for local volume names.
pub fn check_name(name: &str) -> Result<()> {
    let ok_first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok_first || !ok_rest {
        return Err(NetError::invalid(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    if name.len() < 2 {
        return Err(NetError::invalid(format!(
            "create {name}: volume name is too short, names should be at least two alphanumeric characters"
        )));
    }
    Ok(())
}

fn no_such_volume(name: &str) -> NetError {
    NetError::not_found(format!("get {name}: no such volume"))
}

fn du(p: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(p) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => du(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn label_match(labels: &Option<BTreeMap<String, String>>, want: &str) -> bool {
    let l = labels.clone().unwrap_or_default();
    match want.split_once('=') {
        Some((k, v)) => l.get(k).map(String::as_str) == Some(v),
        None => l.contains_key(want),
    }
}

impl Engine {
    /// `<data-root>/volumes/<name>/_data`
    pub fn volume_path(&self, name: &str) -> PathBuf {
        self.rt.volumes_dir().join(name).join("_data")
    }

    fn volume_shown(&self, r: &VolRec) -> Volume {
        Volume {
            created_at: r.created_at.clone(),
            driver: r.driver.clone(),
            labels: r.labels.clone(),
            mountpoint: self.volume_path(&r.name).display().to_string(),
            name: r.name.clone(),
            options: r.options.clone(),
            scope: "local".into(),
        }
    }

    fn volume_rec(&self, name: &str) -> Result<Option<VolRec>> {
        self.store
            .get::<VolRec>(VOLUMES, name)
            .map_err(|e| NetError::internal(e.to_string()))
    }

    fn volume_recs(&self) -> Result<Vec<VolRec>> {
        Ok(self
            .store
            .list::<VolRec>(VOLUMES)
            .map_err(|e| NetError::internal(e.to_string()))?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// `POST /volumes/create`: an existing name answers with the volume as it is.
    pub fn create_volume(&self, req: CreateRequest) -> Result<Volume> {
        self.create_volume_rec(req, false)
            .map(|r| self.volume_shown(&r))
    }

    pub(super) fn create_volume_rec(&self, req: CreateRequest, anonymous: bool) -> Result<VolRec> {
        let name = if req.name.is_empty() {
            berth_net::network::new_id()
        } else {
            req.name.clone()
        };
        check_name(&name)?;
        if !req.driver.is_empty() && req.driver != "local" {
            return Err(NetError::not_found(format!(
                "create {name}: error looking up volume plugin {d}: plugin \"{d}\" not found",
                d = req.driver
            )));
        }
        if let Some(opts) = req.driver_opts.as_ref().filter(|o| !o.is_empty()) {
            if let Some(k) = opts
                .keys()
                .find(|k| !["type", "device", "o"].contains(&k.as_str()))
            {
                return Err(NetError::invalid(format!(
                    "create {name}: invalid option: \"{k}\""
                )));
            }
            if !opts.contains_key("device") {
                return Err(NetError::invalid(format!(
                    "create {name}: missing required option: \"device\""
                )));
            }
            return Err(NetError::not_implemented(format!(
                "create {name}: berth's local driver keeps volumes as directories; mount options (type, device, o) are not supported"
            )));
        }
        let _g = LOCK.lock().unwrap();
        if let Some(r) = self.volume_rec(&name)? {
            return Ok(r);
        }
        let rec = VolRec {
            name: name.clone(),
            driver: "local".into(),
            // empty maps show as null, as Docker 20.10 shows them
            labels: req.labels.clone().filter(|l| !l.is_empty()),
            options: req.driver_opts.clone().filter(|o| !o.is_empty()),
            created_at: super::record::now(),
            anonymous,
        };
        let dir = self.volume_path(&name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| NetError::internal(format!("create {name}: {e}")))?;
        if let Err(e) = self.store.put(VOLUMES, &name, &rec) {
            let _ = std::fs::remove_dir_all(self.rt.volumes_dir().join(&name));
            return Err(NetError::internal(e.to_string()));
        }
        Ok(rec)
    }

    pub fn inspect_volume(&self, name: &str) -> Result<Volume> {
        self.volume_rec(name)?
            .map(|r| self.volume_shown(&r))
            .ok_or_else(|| no_such_volume(name))
    }

    /// Ids of the containers with a mount of the volume `name`.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|c| {
                c.rec
                    .lock()
                    .unwrap()
                    .mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.name == name)
            })
            .map(|c| c.id.clone())
            .collect()
    }

    /// `GET /volumes`: filters `name` (substring), `driver`, `label`, `dangling`.
    pub fn list_volumes(&self, f: &Filters) -> Result<Vec<Volume>> {
        for k in f.keys() {
            if !["name", "driver", "label", "dangling"].contains(&k.as_str()) {
                return Err(NetError::invalid(format!("Invalid filter '{k}'")));
            }
        }
        let mut out = Vec::new();
        for r in self.volume_recs()? {
            let ok = f.iter().all(|(k, vals)| {
                vals.is_empty()
                    || match k.as_str() {
                        "name" => vals.iter().any(|v| r.name.contains(v.as_str())),
                        "driver" => vals.contains(&r.driver),
                        "label" => vals.iter().all(|v| label_match(&r.labels, v)),
                        _ => {
                            let dangling = self.volume_users(&r.name).is_empty();
                            vals.iter()
                                .any(|v| matches!(v.as_str(), "true" | "1") == dangling)
                        }
                    }
            });
            if ok {
                out.push(self.volume_shown(&r));
            }
        }
        Ok(out)
    }

    /// `DELETE /volumes/{name}`: `force` only forgives a missing volume (Docker 20.10).
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let _g = LOCK.lock().unwrap();
        self.remove_volume_locked(name, force).map(|_| ())
    }

    fn remove_volume_locked(&self, name: &str, force: bool) -> Result<u64> {
        if self.volume_rec(name)?.is_none() {
            return if force {
                Ok(0)
            } else {
                Err(no_such_volume(name))
            };
        }
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(NetError::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        let dir = self.rt.volumes_dir().join(name);
        let size = du(&dir);
        self.store
            .delete(VOLUMES, name)
            .map_err(|e| NetError::internal(e.to_string()))?;
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!("volume {name}: removing {}: {e}", dir.display());
        }
        Ok(size)
    }

    /// `POST /volumes/prune`: every volume no container uses (named ones too, as in 20.10),
    /// narrowed by `label`/`label!`. Returns the names and the bytes freed.
    pub fn prune_volumes(&self, f: &Filters) -> Result<(Vec<String>, u64)> {
        for k in f.keys() {
            if !["label", "label!"].contains(&k.as_str()) {
                return Err(NetError::invalid(format!("Invalid filter '{k}'")));
            }
        }
        let _g = LOCK.lock().unwrap();
        let mut names = Vec::new();
        let mut size = 0;
        for r in self.volume_recs()? {
            let want = f
                .get("label")
                .is_none_or(|v| v.iter().all(|l| label_match(&r.labels, l)))
                && f.get("label!")
                    .is_none_or(|v| !v.iter().any(|l| label_match(&r.labels, l)));
            if !want || !self.volume_users(&r.name).is_empty() {
                continue;
            }
            if let Ok(s) = self.remove_volume_locked(&r.name, false) {
                size += s;
                names.push(r.name.clone());
            }
        }
        Ok((names, size))
    }

    /// Removes the container, and with `volumes` its anonymous volumes (`rm -v`, `--rm`).
    pub async fn remove_with_volumes(
        self: &std::sync::Arc<Self>,
        key: &str,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        let mounts = self.find(key)?.snapshot().mounts;
        self.remove_container(key, force).await?;
        if volumes {
            let e = self.clone();
            let _ = tokio::task::spawn_blocking(move || e.remove_anonymous_volumes(&mounts)).await;
        }
        Ok(())
    }

    /// After a container is gone: its anonymous volumes, unless another container uses them
    /// (`rm -v`, `--rm`).
    pub fn remove_anonymous_volumes(&self, mounts: &[super::mounts::MountPoint]) {
        for m in mounts.iter().filter(|m| m.kind == "volume" && m.anonymous) {
            let anonymous = self
                .volume_rec(&m.name)
                .ok()
                .flatten()
                .is_some_and(|r| r.anonymous);
            if anonymous {
                if let Err(e) = self.remove_volume(&m.name, true) {
                    tracing::debug!("volume {}: kept: {e}", m.name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_docker_takes_them() {
        assert!(check_name("my-vol_1.x").is_ok());
        let e = check_name("bad/name").unwrap_err();
        assert!(e.message.contains("includes invalid characters"), "{e:?}");
        let e = check_name("a").unwrap_err();
        assert!(e.message.contains("too short"), "{e:?}");
        assert!(check_name("-x").is_err());
        assert!(check_name("").is_err());
    }

    #[test]
    fn labels_filter_by_key_or_pair() {
        let l = Some(BTreeMap::from([("a".to_string(), "1".to_string())]));
        assert!(label_match(&l, "a"));
        assert!(label_match(&l, "a=1"));
        assert!(!label_match(&l, "a=2"));
        assert!(!label_match(&None, "a"));
    }
}
