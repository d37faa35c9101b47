//! The user's mounts (binds, volumes, tmpfs) as OCI mounts, and the copy-up that fills an
//! empty volume with what the image has at its path (Docker's `CopyImagePathContent`).

use crate::{Error, Result};
use oci_spec::runtime::{Mount, MountBuilder};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One mount of the container, resolved to the host: volumes are binds of their directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// Host path; ignored for tmpfs.
    pub source: PathBuf,
    /// Absolute path in the container.
    pub destination: String,
    pub tmpfs: bool,
    pub readonly: bool,
    /// `rprivate`, `rshared`, `rslave`, ... (binds only); empty means `rprivate`.
    pub propagation: String,
    /// A volume that is to receive the image's content at its path when it is empty.
    pub copy_up: bool,
    /// tmpfs options (`size=...`, `mode=...`), as runc takes them.
    pub tmpfs_options: Vec<String>,
}

fn oci(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("OCI spec: {e}"))
}

/// The OCI mounts, in the order given (a later mount may sit inside an earlier one).
pub fn oci_mounts(mounts: &[MountSpec]) -> Result<Vec<Mount>> {
    let mut sorted: Vec<&MountSpec> = mounts.iter().collect();
    // parents before children, as Docker sorts them: `/a` must be mounted before `/a/b`
    sorted.sort_by_key(|m| Path::new(&m.destination).components().count());
    sorted
        .into_iter()
        .map(|m| {
            let mut b = MountBuilder::default().destination(&m.destination);
            let mut opts: Vec<String>;
            if m.tmpfs {
                opts = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
                opts.extend(m.tmpfs_options.iter().cloned());
                b = b.typ("tmpfs").source("tmpfs");
            } else {
                let prop = if m.propagation.is_empty() {
                    "rprivate"
                } else {
                    &m.propagation
                };
                opts = vec!["rbind".into(), prop.to_string()];
                b = b.typ("bind").source(&m.source);
            }
            opts.push(if m.readonly { "ro" } else { "rw" }.into());
            b.options(opts).build().map_err(oci)
        })
        .collect()
}

/// The root's propagation: a shared or slave bind needs a root that propagates (Docker's
/// rule), otherwise runc's default (`rprivate`) is left alone.
pub fn root_propagation(mounts: &[MountSpec]) -> Option<&'static str> {
    let props: Vec<&str> = mounts.iter().map(|m| m.propagation.as_str()).collect();
    if props.iter().any(|p| matches!(*p, "shared" | "rshared")) {
        Some("rshared")
    } else if props.iter().any(|p| matches!(*p, "slave" | "rslave")) {
        Some("rslave")
    } else {
        None
    }
}

/// Copies the image's content at each copy-up volume's destination into the volume when the
/// volume is empty. `rootfs` is the container's mounted root. Runs before the container
/// starts, so nothing else writes either side.
pub fn copy_up(rootfs: &Path, mounts: &[MountSpec]) -> Result<()> {
    for m in mounts.iter().filter(|m| m.copy_up && !m.tmpfs) {
        let Some(src) = super::archive::resolve_in(rootfs, &m.destination)? else {
            continue;
        };
        let Ok(meta) = fs::symlink_metadata(&src) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let empty = fs::read_dir(&m.source)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            continue;
        }
        copy_tree(&src, &m.source).map_err(|e| {
            Error::internal(format!("copying {} into its volume: {e}", m.destination))
        })?;
        // the volume's root takes the image directory's owner and mode, as Docker's does
        let _ = std::os::unix::fs::lchown(&m.source, Some(meta.uid()), Some(meta.gid()));
        let _ = fs::set_permissions(&m.source, fs::Permissions::from_mode(meta.mode() & 0o7777));
    }
    Ok(())
}

/// A recursive copy that never follows a symlink (links are copied as links).
fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    for e in fs::read_dir(src)? {
        let e = e?;
        let from = e.path();
        let to = dst.join(e.file_name());
        let meta = fs::symlink_metadata(&from)?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else if ft.is_dir() {
            fs::create_dir(&to)?;
            copy_tree(&from, &to)?;
            fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        } else if ft.is_file() {
            fs::copy(&from, &to)?;
        } else {
            // devices, fifos and sockets have no content to copy
            continue;
        }
        let _ = std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(dst: &str, prop: &str, ro: bool) -> MountSpec {
        MountSpec {
            source: "/src".into(),
            destination: dst.into(),
            tmpfs: false,
            readonly: ro,
            propagation: prop.into(),
            copy_up: false,
            tmpfs_options: vec![],
        }
    }

    #[test]
    fn binds_and_tmpfs_become_oci_mounts_parents_first() {
        let mut t = bind("/t", "", false);
        t.tmpfs = true;
        t.tmpfs_options = vec!["size=65536k".into()];
        let ms = oci_mounts(&[bind("/a/b", "", true), bind("/a", "rshared", false), t]).unwrap();
        let v = serde_json::to_value(&ms).unwrap();
        assert_eq!(v[0]["destination"], "/a");
        assert_eq!(
            v[0]["options"],
            serde_json::json!(["rbind", "rshared", "rw"])
        );
        assert_eq!(v[1]["destination"], "/t");
        assert_eq!(v[1]["type"], "tmpfs");
        assert!(v[1]["options"]
            .as_array()
            .unwrap()
            .contains(&"size=65536k".into()));
        assert_eq!(v[2]["destination"], "/a/b");
        assert_eq!(
            v[2]["options"],
            serde_json::json!(["rbind", "rprivate", "ro"])
        );
    }

    #[test]
    fn propagation_of_the_root_follows_the_binds() {
        assert_eq!(root_propagation(&[bind("/a", "", false)]), None);
        assert_eq!(
            root_propagation(&[bind("/a", "rslave", false)]),
            Some("rslave")
        );
        assert_eq!(
            root_propagation(&[bind("/a", "rslave", false), bind("/b", "rshared", false)]),
            Some("rshared")
        );
    }

    #[test]
    fn copy_up_fills_only_an_empty_volume() {
        let root = tempfile::tempdir().unwrap();
        let vol = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("data/sub")).unwrap();
        fs::write(root.path().join("data/sub/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.path().join("data/l")).unwrap();
        let mut m = bind("/data", "", false);
        m.source = vol.path().into();
        m.copy_up = true;
        copy_up(root.path(), std::slice::from_ref(&m)).unwrap();
        assert_eq!(fs::read_to_string(vol.path().join("sub/f")).unwrap(), "x");
        assert!(fs::symlink_metadata(vol.path().join("l"))
            .unwrap()
            .file_type()
            .is_symlink());
        // not empty any more: a second copy-up leaves it alone
        fs::remove_file(vol.path().join("sub/f")).unwrap();
        copy_up(root.path(), &[m]).unwrap();
        assert!(!vol.path().join("sub/f").exists());
    }
}
