//! Extracted layers: `layers/<hex of the diff id>/`, one read-only overlayfs lower directory per
//! distinct layer, shared by every image that has it. A layer is extracted under a temporary
//! name and renamed into place, so a crash never leaves half a layer under a real name.

use super::untar::{self, Mode};
use crate::{Error, Result};
use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const TMP_PREFIX: &str = ".tmp-";

pub struct Layers {
    dir: PathBuf,
}

/// A layer now in the store.
#[derive(Debug, Clone)]
pub struct Added {
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    pub size: u64,
    /// False when an identical layer was already there.
    pub new: bool,
}

impl Layers {
    pub fn open(dir: PathBuf) -> Result<Layers> {
        fs::create_dir_all(&dir).map_err(|e| io_error("creating", &dir, e))?;
        Ok(Layers { dir })
    }

    pub fn path(&self, diff_id: &str) -> PathBuf {
        self.dir
            .join(diff_id.strip_prefix("sha256:").unwrap_or(diff_id))
    }

    pub fn exists(&self, diff_id: &str) -> bool {
        self.path(diff_id).is_dir()
    }

    /// Extracts a layer tar (plain or gzip).
    pub fn add(&self, src: &mut dyn Read) -> Result<Added> {
        let tmp = self
            .dir
            .join(format!("{TMP_PREFIX}{:016x}", rand::random::<u64>()));
        fs::create_dir(&tmp).map_err(|e| io_error("creating", &tmp, e))?;
        let unpacked = untar::decompressed(Box::new(src))
            .and_then(|mut r| untar::unpack(&mut r, &tmp, Mode::Layer));
        let unpacked = match unpacked {
            Ok(u) => u,
            Err(e) => {
                remove_tree(&tmp);
                return Err(e);
            }
        };
        let dst = self.path(&unpacked.digest);
        if dst.is_dir() {
            remove_tree(&tmp);
            return Ok(Added {
                diff_id: unpacked.digest,
                size: unpacked.size,
                new: false,
            });
        }
        if let Err(e) = fs::rename(&tmp, &dst) {
            remove_tree(&tmp);
            return Err(io_error("storing layer", &dst, e));
        }
        Ok(Added {
            diff_id: unpacked.digest,
            size: unpacked.size,
            new: true,
        })
    }

    /// Deletes a layer: renamed away first so that its real name disappears at once.
    pub fn remove(&self, diff_id: &str) {
        let path = self.path(diff_id);
        let tmp = self
            .dir
            .join(format!("{TMP_PREFIX}rm-{:016x}", rand::random::<u64>()));
        if fs::rename(&path, &tmp).is_ok() {
            remove_tree(&tmp);
        }
    }

    /// Bytes of regular files in an extracted layer (each inode once).
    pub fn size(&self, diff_id: &str) -> u64 {
        let mut seen = HashSet::new();
        dir_size(&self.path(diff_id), &mut seen)
    }

    /// At start-up: drops leftovers of interrupted extractions and layers no image uses.
    pub fn clean(&self, used: &HashSet<String>) {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP_PREFIX) || !used.contains(&format!("sha256:{name}")) {
                tracing::info!("removing unused layer directory {name}");
                remove_tree(&e.path());
            }
        }
    }
}

fn dir_size(dir: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for e in rd.flatten() {
        let Ok(m) = e.path().symlink_metadata() else {
            continue;
        };
        if m.is_dir() {
            total += dir_size(&e.path(), seen);
        } else if m.is_file() && seen.insert((m.dev(), m.ino())) {
            total += m.len();
        }
    }
    total
}

/// Removes a tree, first making directories writable (a layer may hold 0555 ones, which
/// stop even root's unlink only on some filesystems, but always stop non-root tests).
pub fn remove_tree(path: &Path) {
    if path.symlink_metadata().is_err() || fs::remove_dir_all(path).is_ok() {
        return;
    }
    fn open_up(p: &Path) {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = p.symlink_metadata() {
            if m.is_dir() {
                let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o700));
                if let Ok(rd) = fs::read_dir(p) {
                    for e in rd.flatten() {
                        open_up(&e.path());
                    }
                }
            }
        }
    }
    open_up(path);
    if let Err(e) = fs::remove_dir_all(path) {
        tracing::warn!("removing {}: {e}", path.display());
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::internal(format!("{what} {}: {e}", path.display()))
}
