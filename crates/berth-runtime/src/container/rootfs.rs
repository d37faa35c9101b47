//! A container's root filesystem: the image's read-only layers under overlayfs with the
//! container's own writable layer on top.

use crate::{Error, Result};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

/// A mount point has another device than its parent directory. (Reading mountinfo instead
/// would cost a line per container on the host at every start and stop.)
fn is_mounted(target: &Path) -> bool {
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
    let fstype = CString::new("overlay").unwrap();
    let data = CString::new(opts).map_err(|e| Error::internal(e.to_string()))?;
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            cstr(target).as_ptr(),
            fstype.as_ptr(),
            0,
            data.as_ptr() as *const libc::c_void,
        )
    };
    if rc != 0 {
        return Err(Error::internal(format!(
            "mounting the root filesystem at {}: {}",
            target.display(),
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Unmounts `target` if mounted (lazily: an exec still starting may hold it briefly).
pub fn unmount(target: &Path) {
    if !is_mounted(target) {
        return;
    }
    unsafe {
        libc::umount2(cstr(target).as_ptr(), libc::MNT_DETACH);
    }
}
