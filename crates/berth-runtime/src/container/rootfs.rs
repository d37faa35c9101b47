//! A container's root filesystem: the image's read-only layers under overlayfs with the
//! container's own writable layer on top.

use crate::{Error, Result};
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// A mount point has another device than its parent directory. (Reading mountinfo instead
/// would cost a line per container on the host at every start and stop.)
pub fn is_mounted(target: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(t), Some(Ok(p))) = (
        std::fs::metadata(target),
        target.parent().map(std::fs::metadata),
    ) else {
        return false;
    };
    t.dev() != p.dev()
}

/// Mounts `layers` (base first) with `upper`/`work` at `target`. Idempotent: an existing mount
/// (berthd restarted while the container ran) is kept.
pub fn mount(layers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    for d in [upper, work, target] {
        std::fs::create_dir_all(d)
            .map_err(|e| Error::internal(format!("creating {}: {e}", d.display())))?;
    }
    if is_mounted(target) {
        return Ok(());
    }
    if layers.is_empty() {
        return Err(Error::internal("image has no layers"));
    }
    // overlayfs lists the top-most lower layer first.
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    let data = CString::new(opts).map_err(|e| Error::internal(e.to_string()))?;
    rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        rustix::mount::MountFlags::empty(),
        data.as_c_str(),
    )
    .map_err(|e| {
        Error::internal(format!(
            "mounting the root filesystem at {}: {}",
            target.display(),
            std::io::Error::from(e)
        ))
    })
}

/// Unmounts `target` if mounted (lazily: an exec still starting may hold it briefly).
pub fn unmount(target: &Path) {
    if !is_mounted(target) {
        return;
    }
    let _ = rustix::mount::unmount(target, rustix::mount::UnmountFlags::DETACH);
}
