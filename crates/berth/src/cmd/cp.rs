//! `berth cp`: files between a container and the host (or a tar on stdin/stdout), through
//! `/containers/{id}/archive` as the docker CLI does.

use crate::client::{query_escape, Client, DaemonError};
use anyhow::{bail, Context};
use base64::Engine as _;
use clap::Args;
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    follow_link: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH|-
    src: String,
    /// DEST_PATH|- or CONTAINER:DEST_PATH
    dest: String,
}

/// `name:path` → (container, path); a path with a `/` before any `:` is local, as docker's.
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    let (c, p) = arg.split_once(':')?;
    (!c.is_empty() && !c.contains('/')).then_some((c, p))
}

fn base_name(p: &str) -> String {
    Path::new(p)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into())
}

/// What is at `path` in the container (Docker's path stat), `None` if nothing.
async fn stat(c: &Client, ctr: &str, path: &str) -> anyhow::Result<Option<Value>> {
    let q = format!(
        "/containers/{}/archive?path={}",
        query_escape(ctr),
        query_escape(path)
    );
    match c.head(&q).await {
        Ok(h) => Ok(h
            .get("X-Docker-Container-Path-Stat")
            .and_then(|v| v.to_str().ok())
            .and_then(decode_stat)),
        Err(e) => {
            if e.downcast_ref::<DaemonError>()
                .is_some_and(|d| d.status == StatusCode::NOT_FOUND)
            {
                // a missing container is an error, a missing path is not (yet)
                c.get_json(&format!("/containers/{}/json", query_escape(ctr)))
                    .await?;
                return Ok(None);
            }
            Err(e)
        }
    }
}

pub async fn run(c: &Client, a: CpArgs) -> anyhow::Result<i32> {
    match (split(&a.src), split(&a.dest)) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some((ctr, path)), None) => copy_out(c, ctr, path, &a.dest, a.follow_link).await,
        (None, Some((ctr, path))) => copy_in(c, &a.src, ctr, path, a.archive, a.follow_link).await,
    }
}

async fn copy_out(
    c: &Client,
    ctr: &str,
    orig: &str,
    dest: &str,
    follow: bool,
) -> anyhow::Result<i32> {
    // -L: what the link leads to, kept under the link's own name
    let mut path = orig.to_string();
    if follow {
        if let Some(t) = stat(c, ctr, orig)
            .await?
            .and_then(|v| v["linkTarget"].as_str().map(str::to_string))
            .filter(|t| !t.is_empty())
        {
            path = t;
        }
    }
    let path = path.as_str();
    let q = format!(
        "/containers/{}/archive?path={}",
        query_escape(ctr),
        query_escape(path)
    );
    let (_, tar) = c.call(Method::GET, &q, None).await?;
    if dest == "-" {
        std::io::stdout().write_all(&tar)?;
        return Ok(0);
    }
    let mut dest = PathBuf::from(dest);
    if dest.is_dir() {
        if path == orig {
            // into the directory, under the source's own name
            unpack(&tar, &dest)?;
            return Ok(0);
        }
        dest = dest.join(base_name(orig));
    }
    // a new name: extracted beside it, then renamed (docker's rule for a missing DEST)
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        bail!("destination directory {} does not exist", parent.display());
    }
    let tmp = parent.join(format!(".berth-cp-{}", std::process::id()));
    std::fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let r = unpack(&tar, &tmp).and_then(|_| {
        let name = base_name(path);
        let src = if path.ends_with("/.") {
            tmp.clone()
        } else {
            tmp.join(&name)
        };
        std::fs::rename(&src, &dest).with_context(|| format!("creating {}", dest.display()))
    });
    let _ = std::fs::remove_dir_all(&tmp);
    r?;
    Ok(0)
}

/// Extracts the container's archive: the tar crate refuses `..` and links leading out.
fn unpack(tar: &[u8], dest: &Path) -> anyhow::Result<()> {
    let mut a = tar::Archive::new(tar);
    a.set_preserve_permissions(true);
    a.set_overwrite(true);
    for e in a.entries()? {
        let mut e = e?;
        e.unpack_in(dest)
            .with_context(|| format!("extracting into {}", dest.display()))?;
    }
    Ok(())
}

async fn copy_in(
    c: &Client,
    src: &str,
    ctr: &str,
    path: &str,
    archive: bool,
    follow: bool,
) -> anyhow::Result<i32> {
    let mut put_path = path.to_string();
    let body = if src == "-" {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b)?;
        b
    } else {
        let src_path = Path::new(src);
        let meta = if follow {
            std::fs::metadata(src_path)
        } else {
            std::fs::symlink_metadata(src_path)
        }
        .with_context(|| format!("could not find the file {src}"))?;
        // an existing directory takes the source under its own name; anything else is
        // the new name of the source, put into its parent
        let existing = stat(c, ctr, path).await?;
        let mut name = base_name(src);
        // Go's os.ModeDir
        let dir_exists = existing
            .as_ref()
            .and_then(|v| v["mode"].as_u64())
            .is_some_and(|m| m & (1 << 31) != 0);
        if !dir_exists {
            if path.ends_with('/') && !meta.is_dir() {
                bail!("destination directory {path} does not exist in the container");
            }
            name = base_name(path);
            let parent = Path::new(path)
                .parent()
                .map(|p| p.display().to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/".into());
            put_path = parent;
        }
        let mut b = tar::Builder::new(Vec::new());
        b.follow_symlinks(follow);
        if meta.is_dir() {
            b.append_dir_all(&name, src_path)?;
        } else {
            b.append_path_with_name(src_path, &name)?;
        }
        b.into_inner()?
    };
    let q = format!(
        "/containers/{}/archive?path={}{}",
        query_escape(ctr),
        query_escape(&put_path),
        if archive { "&copyUIDGID=1" } else { "" }
    );
    c.send(
        Method::PUT,
        &q,
        Some(("application/x-tar", Bytes::from(body))),
    )
    .await?;
    Ok(0)
}

/// The `X-Docker-Container-Path-Stat` header's JSON.
pub fn decode_stat(h: &str) -> Option<Value> {
    let raw = base64::engine::general_purpose::STANDARD.decode(h).ok()?;
    serde_json::from_slice(&raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_and_local_ones() {
        assert_eq!(split("web:/etc/hosts"), Some(("web", "/etc/hosts")));
        assert_eq!(split("/tmp/a:b"), None);
        assert_eq!(split("./x:y"), None);
        assert_eq!(split("file.txt"), None);
        assert_eq!(base_name("/a/b/"), "b");
        let v = decode_stat("eyJuYW1lIjoiYmluIn0=").unwrap();
        assert_eq!(v["name"], "bin");
    }
}
