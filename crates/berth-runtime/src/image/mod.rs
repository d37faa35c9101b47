//! The image store: images imported (`berth import`), loaded (`berth load`, the `docker save`
//! format) or built in (busybox from the host's static binary), kept as extracted read-only
//! layer directories that overlayfs stacks under each container's writable layer.
//!
//! Layout under the store's root (`<data-root>/image`): `layers/<diff id hex>/` (see
//! [`layer`]), `images/<id hex>/` and `repositories.json` (see [`store`]), `tmp/` for archives
//! being unpacked.

mod busybox;
pub mod changes;
pub mod config;
mod filter;
mod layer;
mod load;
pub mod reference;
mod remove;
mod store;
pub(crate) mod untar;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_load;
#[cfg(test)]
mod tests_props;
#[cfg(test)]
mod tests_untar;

use crate::{Error, Result};
use reference::Reference;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

pub use remove::chain_ids;

/// The runtime part of an image's config (Docker's image `config` object).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, deserialize_with = "config::null_default")]
    pub env: Vec<String>,
    #[serde(default, deserialize_with = "config::null_default")]
    pub working_dir: String,
    #[serde(default, deserialize_with = "config::null_default")]
    pub user: String,
    #[serde(default, deserialize_with = "config::null_default")]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    /// `VOLUME` paths: each becomes an anonymous volume of a container made from the image.
    #[serde(default, deserialize_with = "config::null_default")]
    pub volumes: BTreeMap<String, serde_json::Value>,
    #[serde(default, deserialize_with = "config::null_default")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<64 hex>`
    pub id: String,
    /// `["busybox:latest"]`
    pub repo_tags: Vec<String>,
    /// RFC 3339
    pub created: String,
    pub config: ImageConfig,
    /// Extracted layer directories, lowest (base) first.
    pub layers: Vec<PathBuf>,
    /// Bytes of all layers.
    pub size: u64,
}

impl Image {
    /// `created` in nanoseconds since the epoch (0 when unparseable), for ordering.
    pub fn created_nanos(&self) -> i128 {
        time::OffsetDateTime::parse(
            &self.created,
            &time::format_description::well_known::Rfc3339,
        )
        .map(|t| t.unix_timestamp_nanos())
        .unwrap_or(0)
    }

    /// `created` as the Unix seconds the API's image list reports.
    pub fn created_unix(&self) -> i64 {
        (self.created_nanos().div_euclid(1_000_000_000)) as i64
    }
}

/// Everything `docker image inspect` shows of an image.
#[derive(Debug, Clone)]
pub struct ImageDetails {
    pub image: Image,
    /// The image config document as stored (`architecture`, `config`, `rootfs`, ...).
    pub document: serde_json::Value,
    /// `sha256:...` diff ids, lowest first.
    pub diff_ids: Vec<String>,
    /// RFC 3339, when a tag was last set on the image.
    pub last_tag_time: Option<String>,
}

/// What `remove` did, in Docker's terms: `("Untagged", "busybox:latest")`, `("Deleted", id)`.
pub type Removed = Vec<(String, String)>;

pub struct ImageStore {
    root: PathBuf,
    busybox: Option<PathBuf>,
    layers: layer::Layers,
    db: Mutex<store::Db>,
    /// Held by whatever adds or removes images, so that a layer being shared by a new image is
    /// never deleted under it. Readers only take `db`, briefly.
    write: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formattable")
}

/// How a reference matched: by a tag (which one) or by the image id.
struct Found {
    id: String,
    tag: Option<String>,
}

impl ImageStore {
    /// Opens (creating) the store under `root` (`<data-root>/image`). `busybox` is the host's
    /// static busybox binary used to build `busybox:latest` on first use.
    pub fn open(root: &Path, busybox: Option<PathBuf>) -> Result<ImageStore> {
        std::fs::create_dir_all(root)
            .map_err(|e| Error::internal(format!("creating {}: {e}", root.display())))?;
        // whatever an interrupted import or load left
        layer::remove_tree(&root.join("tmp"));
        if let Ok(rd) = std::fs::read_dir(root) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().contains(".tmp-") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let db = store::Db::open(root)?;
        let layers = layer::Layers::open(root.join("layers"))?;
        layers.clean(&db.used_layers());
        Ok(ImageStore {
            root: root.to_path_buf(),
            busybox,
            layers,
            db: Mutex::new(db),
            write: Mutex::new(()),
        })
    }

    /// By `name[:tag]` (tag defaults to `latest`), full or short id (with or without
    /// `sha256:`). Unknown: NotFound `No such image: busybox:latest`.
    pub fn resolve(&self, reference: &str) -> Result<Image> {
        let found = self.find(reference)?;
        let db = lock(&self.db);
        db.image(&found.id, &self.layers)
            .ok_or_else(|| Error::not_found(format!("No such image: {reference}")))
    }

    /// `resolve` with what only inspect needs.
    pub fn inspect(&self, reference: &str) -> Result<ImageDetails> {
        let found = self.find(reference)?;
        let db = lock(&self.db);
        let (Some(image), Some(r)) = (db.image(&found.id, &self.layers), db.images.get(&found.id))
        else {
            return Err(Error::not_found(format!("No such image: {reference}")));
        };
        Ok(ImageDetails {
            image,
            document: r.doc.clone(),
            diff_ids: r.diff_ids.clone(),
            last_tag_time: db.last_tag_time.get(&found.id).cloned(),
        })
    }

    /// `docker import`: one filesystem tar (optionally gzip) → a one-layer image, with
    /// `--change` lines (`CMD`, `ENTRYPOINT`, `ENV`, `WORKDIR`, `EXPOSE`, `USER`, `LABEL`).
    pub fn import(
        &self,
        src: &mut dyn Read,
        reference: Option<&str>,
        changes: &[String],
    ) -> Result<Image> {
        self.import_with_message(src, reference, changes, "")
    }

    /// `import` with Docker's `-m` commit message (default: `Imported from -`).
    pub fn import_with_message(
        &self,
        src: &mut dyn Read,
        reference: Option<&str>,
        changes: &[String],
        message: &str,
    ) -> Result<Image> {
        let tag = match reference.filter(|r| !r.is_empty()) {
            Some(r) => Some(reference::with_tag(r, "")?),
            None => None,
        };
        let mut cfg = serde_json::Map::new();
        changes::apply(&mut cfg, changes)?;
        let comment = if message.is_empty() {
            "Imported from -"
        } else {
            message
        };

        let _w = lock(&self.write);
        let added = self.layers.add(src)?;
        let created = now();
        let doc = config::new_image_config(
            &cfg.into(),
            std::slice::from_ref(&added.diff_id),
            &created,
            comment,
        );
        let raw = serde_json::to_vec(&doc).expect("serializable");
        let mut db = lock(&self.db);
        let id = match db.add_image(&raw, added.size) {
            Ok(id) => id,
            Err(e) => {
                if added.new {
                    self.layers.remove(&added.diff_id);
                }
                return Err(e);
            }
        };
        if let Some(t) = tag {
            db.set_tag(&t, &id, &created)?;
        }
        Ok(db.image(&id, &self.layers).expect("just added"))
    }

    /// `docker load`: a `docker save` tar. Returns Docker's lines (`Loaded image: busybox:latest`).
    pub fn load(&self, src: &mut dyn Read) -> Result<Vec<String>> {
        let _w = lock(&self.write);
        let tmp = self
            .root
            .join("tmp")
            .join(format!("load-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&tmp)
            .map_err(|e| Error::internal(format!("creating {}: {e}", tmp.display())))?;
        let ready = load::prepare(src, &tmp, &self.layers);
        layer::remove_tree(&tmp);
        let ready = ready?;
        let mut out = Vec::new();
        let mut db = lock(&self.db);
        for r in &ready {
            let id = db.add_image(&r.raw_config, r.size)?;
            let when = now();
            let mut moved = Vec::new();
            for t in &r.tags {
                if let Some(old) = db.set_tag(t, &id, &when)? {
                    moved.push((t.clone(), old));
                }
            }
            out.extend(load::lines(&id, &r.tags, &moved));
        }
        Ok(out)
    }

    /// Every image, newest first. (The built-in busybox appears once something resolved it.)
    pub fn list(&self) -> Vec<Image> {
        let db = lock(&self.db);
        let mut all: Vec<Image> = db
            .images
            .keys()
            .filter_map(|id| db.image(id, &self.layers))
            .collect();
        all.sort_by_key(|i| (std::cmp::Reverse(i.created_nanos()), i.id.clone()));
        all
    }

    /// `docker tag`: points `target` (`name[:tag]`) at the image `source` names.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let found = self.find(source)?;
        let target = reference::with_tag(target, "")?;
        let _w = lock(&self.write);
        let mut db = lock(&self.db);
        if !db.images.contains_key(&found.id) {
            return Err(Error::not_found(format!("No such image: {source}")));
        }
        db.set_tag(&target, &found.id, &now())?;
        Ok(())
    }

    /// `docker rmi`. `in_use(image_id)` names a container using the image, if any.
    pub fn remove(
        &self,
        reference: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Removed> {
        let _w = lock(&self.write);
        let found = self.find_stored(reference)?;
        let user = in_use(&found.id);
        let mut db = lock(&self.db);
        remove::remove(
            &mut db,
            &self.layers,
            reference,
            found.tag.as_deref(),
            &found.id,
            force,
            user,
        )
    }

    /// `find_stored`, building the built-in busybox when that is what was asked for.
    fn find(&self, reference: &str) -> Result<Found> {
        match self.find_stored(reference) {
            Err(e) if e.kind == crate::ErrorKind::NotFound && self.wants_busybox(reference) => {
                self.build_busybox()?;
                self.find_stored(reference)
            }
            r => r,
        }
    }

    /// Docker's lookup order: a full id, then a tag, then an id prefix.
    fn find_stored(&self, reference: &str) -> Result<Found> {
        let db = lock(&self.db);
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        if reference::is_full_id(hex) {
            let id = format!("sha256:{hex}");
            return match db.images.contains_key(&id) {
                true => Ok(Found { id, tag: None }),
                false => Err(Error::not_found(format!("No such image: {reference}"))),
            };
        }
        let parsed = Reference::parse(reference);
        if let Ok(r) = &parsed {
            if r.digest.is_none() {
                if let Some(id) = db.tags.get(&r.familiar()) {
                    return Ok(Found {
                        id: id.clone(),
                        tag: Some(r.familiar()),
                    });
                }
            }
        }
        if reference::is_hex(hex) {
            let mut matches = db.images.keys().filter(|id| id[7..].starts_with(hex));
            if let (Some(id), None) = (matches.next(), matches.next()) {
                return Ok(Found {
                    id: id.clone(),
                    tag: None,
                });
            }
        }
        let shown = parsed?.familiar();
        Err(Error::not_found(format!("No such image: {shown}")))
    }

    fn wants_busybox(&self, reference: &str) -> bool {
        self.busybox.is_some()
            && Reference::parse(reference)
                .is_ok_and(|r| r.digest.is_none() && r.familiar() == busybox::REFERENCE)
    }

    fn build_busybox(&self) -> Result<()> {
        let binary = self.busybox.as_ref().expect("checked by wants_busybox");
        let _w = lock(&self.write);
        if lock(&self.db).tags.contains_key(busybox::REFERENCE) {
            return Ok(()); // built by a concurrent request
        }
        let (tar, mtime) = busybox::layer_tar(binary)?;
        let added = self.layers.add(&mut tar.as_slice())?;
        let created = time::OffsetDateTime::from_unix_timestamp(mtime)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
            .format(&time::format_description::well_known::Rfc3339)
            .expect("formattable");
        let raw = serde_json::to_vec(&busybox::image_config(&added.diff_id, &created))
            .expect("serializable");
        let mut db = lock(&self.db);
        let id = db.add_image(&raw, added.size)?;
        db.set_tag(busybox::REFERENCE, &id, &now())?;
        tracing::info!(
            "built {} ({id}) from {}",
            busybox::REFERENCE,
            binary.display()
        );
        Ok(())
    }
}
