//! The image metadata on disk and in memory:
//! - `images/<hex>/config.json`: the image config exactly as received (the id is its sha256),
//!   next to `meta.json` (what berth measured: the size). The directory is written under a
//!   temporary name and renamed, so an image exists whole or not at all.
//! - `repositories.json`: tags → ids, and when each image was last tagged; rewritten
//!   atomically on every change.

use super::config;
use super::{Image, ImageConfig};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One stored image.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    /// The parsed config document.
    pub doc: Value,
    pub config: ImageConfig,
    pub created: String,
    pub diff_ids: Vec<String>,
    pub size: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Repositories {
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    last_tag_time: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    size: u64,
}

pub struct Db {
    root: PathBuf,
    pub images: BTreeMap<String, Record>,
    /// `busybox:latest` → `sha256:...`
    pub tags: BTreeMap<String, String>,
    pub last_tag_time: BTreeMap<String, String>,
}

impl Db {
    pub fn open(root: &Path) -> Result<Db> {
        let dir = root.join("images");
        fs::create_dir_all(&dir).map_err(|e| io_error("creating", &dir, e))?;
        let mut images = BTreeMap::new();
        for e in fs::read_dir(&dir)
            .map_err(|e| io_error("reading", &dir, e))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            match read_record(&e.path(), &name) {
                Some(r) => {
                    images.insert(r.id.clone(), r);
                }
                None => {
                    // a temporary or damaged entry: no image can be made of it
                    tracing::info!("removing incomplete image entry {name}");
                    super::layer::remove_tree(&e.path());
                }
            }
        }
        let repos: Repositories = match fs::read(root.join("repositories.json")) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                Error::internal(format!(
                    "reading {}: {e}",
                    root.join("repositories.json").display()
                ))
            })?,
            Err(_) => Repositories::default(),
        };
        let mut db = Db {
            root: root.to_path_buf(),
            tags: repos
                .tags
                .into_iter()
                .filter(|(_, id)| images.contains_key(id))
                .collect(),
            last_tag_time: repos.last_tag_time,
            images,
        };
        db.last_tag_time.retain(|id, _| db.images.contains_key(id));
        Ok(db)
    }

    /// Every diff id some image uses.
    pub fn used_layers(&self) -> HashSet<String> {
        self.images
            .values()
            .flat_map(|r| r.diff_ids.iter().cloned())
            .collect()
    }

    pub fn layer_users(&self, diff_id: &str) -> usize {
        self.images
            .values()
            .filter(|r| r.diff_ids.iter().any(|d| d == diff_id))
            .count()
    }

    /// Registers an image from its config bytes (idempotent: the id is their digest).
    pub fn add_image(&mut self, raw: &[u8], size: u64) -> Result<String> {
        let id = image_id(raw);
        if self.images.contains_key(&id) {
            return Ok(id);
        }
        let doc: Value = serde_json::from_slice(raw)
            .map_err(|e| Error::invalid(format!("invalid image config: {e}")))?;
        let record = record(id.clone(), doc, size)?;
        let dir = self.root.join("images");
        let tmp = dir.join(format!(".tmp-{:016x}", rand::random::<u64>()));
        let written = (|| {
            fs::create_dir(&tmp)?;
            write_file(&tmp.join("config.json"), raw)?;
            write_file(&tmp.join("meta.json"), &serde_json::to_vec(&Meta { size })?)?;
            fs::rename(&tmp, dir.join(hex(&id)))
        })();
        if let Err(e) = written {
            super::layer::remove_tree(&tmp);
            return Err(io_error("storing image", &dir.join(hex(&id)), e));
        }
        self.images.insert(id.clone(), record);
        Ok(id)
    }

    /// Forgets an image (its tags must be gone already).
    pub fn remove_image(&mut self, id: &str) -> Result<()> {
        let dir = self.root.join("images");
        let tmp = dir.join(format!(".tmp-rm-{:016x}", rand::random::<u64>()));
        fs::rename(dir.join(hex(id)), &tmp)
            .map_err(|e| io_error("removing image", &dir.join(hex(id)), e))?;
        super::layer::remove_tree(&tmp);
        self.images.remove(id);
        self.last_tag_time.remove(id);
        Ok(())
    }

    /// Points `tag` at `id`; returns the image it pointed at before, if another.
    pub fn set_tag(&mut self, tag: &str, id: &str, now: &str) -> Result<Option<String>> {
        let prev = self.tags.insert(tag.to_string(), id.to_string());
        self.last_tag_time.insert(id.to_string(), now.to_string());
        self.save_tags()?;
        Ok(prev.filter(|p| p != id))
    }

    pub fn untag(&mut self, tag: &str) -> Result<()> {
        if self.tags.remove(tag).is_some() {
            self.save_tags()?;
        }
        Ok(())
    }

    pub fn tags_of(&self, id: &str) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(_, v)| *v == id)
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn image(&self, id: &str, layers: &super::layer::Layers) -> Option<Image> {
        let r = self.images.get(id)?;
        Some(Image {
            id: r.id.clone(),
            repo_tags: self.tags_of(id),
            created: r.created.clone(),
            config: r.config.clone(),
            layers: r.diff_ids.iter().map(|d| layers.path(d)).collect(),
            size: r.size,
        })
    }

    fn save_tags(&self) -> Result<()> {
        let repos = Repositories {
            tags: self.tags.clone(),
            last_tag_time: self.last_tag_time.clone(),
        };
        let path = self.root.join("repositories.json");
        let bytes = serde_json::to_vec_pretty(&repos).expect("serializable");
        write_file(&path, &bytes).map_err(|e| io_error("writing", &path, e))
    }
}

/// `sha256:` + the digest of an image config: the image id, as Docker computes it.
pub fn image_id(raw: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(raw))
}

pub fn hex(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

fn record(id: String, doc: Value, size: u64) -> Result<Record> {
    let diff_ids = config::diff_ids(&doc)?;
    Ok(Record {
        id,
        config: config::parse_image_config(&doc),
        created: doc["created"].as_str().unwrap_or("").to_string(),
        diff_ids,
        size,
        doc,
    })
}

fn read_record(dir: &Path, name: &str) -> Option<Record> {
    if !super::reference::is_full_id(name) {
        return None;
    }
    let raw = fs::read(dir.join("config.json")).ok()?;
    let meta: Meta = serde_json::from_slice(&fs::read(dir.join("meta.json")).ok()?).ok()?;
    let id = image_id(&raw);
    if hex(&id) != name {
        return None;
    }
    record(id, serde_json::from_slice(&raw).ok()?, meta.size).ok()
}

/// Writes a whole file under a temporary name, then renames it into place.
pub fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{:08x}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        rand::random::<u32>()
    ));
    let r = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

fn io_error(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("{what} {}: {e}", path.display()))
}
