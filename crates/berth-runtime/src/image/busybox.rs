//! The built-in `busybox:latest`: a one-layer image made from the host's static busybox, so
//! that berth can run containers on a machine that reaches no registry.
//!
//! The layer tar is built in memory with fixed owners, fixed order and the binary's mtime as
//! every timestamp, so the same binary always gives the same layer and the same image id.

use super::config;
use crate::{Error, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

pub const REFERENCE: &str = "busybox:latest";

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
nobody:x:65534:65534:nobody:/home:/bin/false\n";

const GROUP: &str = "root:x:0:\ndaemon:x:1:\ntty:x:5:\nnogroup:x:65534:\n";

/// Directories of the root filesystem and their modes.
const DIRS: &[(&str, u32)] = &[
    ("bin", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("home", 0o755),
    ("proc", 0o755),
    ("root", 0o700),
    ("sbin", 0o755),
    ("sys", 0o755),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
    ("var", 0o755),
];

/// The layer tar of the busybox rootfs and the image's creation time (the binary's mtime).
pub fn layer_tar(binary: &Path) -> Result<(Vec<u8>, i64)> {
    let meta = std::fs::metadata(binary)
        .map_err(|e| Error::internal(format!("reading {}: {e}", binary.display())))?;
    let mtime = std::os::unix::fs::MetadataExt::mtime(&meta);
    let bin = std::fs::read(binary)
        .map_err(|e| Error::internal(format!("reading {}: {e}", binary.display())))?;
    let applets = applets(binary)?;

    let mut b = tar::Builder::new(Vec::new());
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime.max(0) as u64);
        h.set_size(size);
        h
    };
    let io = |e: std::io::Error| Error::internal(format!("building the busybox layer: {e}"));
    for (dir, mode) in DIRS {
        let mut h = header(tar::EntryType::Directory, *mode, 0);
        b.append_data(&mut h, format!("{dir}/"), std::io::empty())
            .map_err(io)?;
    }
    let mut h = header(tar::EntryType::Regular, 0o755, bin.len() as u64);
    b.append_data(&mut h, "bin/busybox", bin.as_slice())
        .map_err(io)?;
    for a in &applets {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{a}"), "busybox")
            .map_err(io)?;
    }
    for (name, body) in [("etc/group", GROUP), ("etc/passwd", PASSWD)] {
        let mut h = header(tar::EntryType::Regular, 0o644, body.len() as u64);
        b.append_data(&mut h, name, body.as_bytes()).map_err(io)?;
    }
    Ok((b.into_inner().map_err(io)?, mtime))
}

/// The applet names `busybox --list` prints, sorted, without busybox itself.
fn applets(binary: &Path) -> Result<Vec<String>> {
    let out = Command::new(binary)
        .arg("--list")
        .output()
        .map_err(|e| Error::internal(format!("running {} --list: {e}", binary.display())))?;
    if !out.status.success() {
        return Err(Error::internal(format!(
            "{} --list failed: is it busybox?",
            binary.display()
        )));
    }
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/') && !a.starts_with('.'))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// The image config document for a busybox layer.
pub fn image_config(diff_id: &str, created: &str) -> Value {
    let mut doc = config::new_image_config(
        &json!({"Env": [PATH_ENV], "Cmd": ["sh"]}),
        &[diff_id.to_string()],
        created,
        "",
    );
    // no berth version in it: the same binary must give the same id under any berth
    doc.as_object_mut()
        .expect("object")
        .remove("docker_version");
    doc
}
