//! The image store: images imported (`berth import`), loaded (`berth load`, the `docker save`
//! format) or built in (busybox from the host's static binary), kept as extracted read-only
//! layer directories that overlayfs stacks under each container's writable layer.
//!
//! (Interface fixed; implementation being written.)

use crate::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The runtime part of an image's config (Docker's image `config` object).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
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

/// What `remove` did, in Docker's terms: `("Untagged", "busybox:latest")`, `("Deleted", id)`.
pub type Removed = Vec<(String, String)>;

pub struct ImageStore {
    _root: PathBuf,
}

impl ImageStore {
    /// Opens (creating) the store under `root` (`<data-root>/image`). `busybox` is the host's
    /// static busybox binary used to build `busybox:latest` on first use.
    pub fn open(root: &Path, busybox: Option<PathBuf>) -> Result<ImageStore> {
        let _ = busybox;
        Ok(ImageStore {
            _root: root.to_path_buf(),
        })
    }

    /// By `name[:tag]` (tag defaults to `latest`), full or short id (with or without
    /// `sha256:`). Unknown: NotFound `No such image: busybox:latest`.
    pub fn resolve(&self, reference: &str) -> Result<Image> {
        let _ = reference;
        todo!()
    }

    /// `docker import`: one filesystem tar (optionally gzip) → a one-layer image, with
    /// `--change` lines (`CMD`, `ENTRYPOINT`, `ENV`, `WORKDIR`, `EXPOSE`, `USER`, `LABEL`).
    pub fn import(&self, src: &mut dyn Read, reference: Option<&str>, changes: &[String]) -> Result<Image> {
        let _ = (src, reference, changes);
        todo!()
    }

    /// `docker load`: a `docker save` tar. Returns Docker's lines (`Loaded image: busybox:latest`).
    pub fn load(&self, src: &mut dyn Read) -> Result<Vec<String>> {
        let _ = src;
        todo!()
    }

    pub fn list(&self) -> Vec<Image> {
        todo!()
    }

    /// `docker rmi`. `in_use(image_id)` names a container using the image, if any.
    pub fn remove(&self, reference: &str, force: bool, in_use: &dyn Fn(&str) -> Option<String>) -> Result<Removed> {
        let _ = (reference, force, in_use);
        todo!()
    }
}
