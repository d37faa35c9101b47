//! `docker cp`: a container's files through its root filesystem and mounts, running or not.
//! A container that does not run has its root filesystem mounted for the time of the copy,
//! under its op lock, so it neither starts nor is removed meanwhile.

use super::{blocking, Ctr, Engine, Result};
use berth_net::NetError;
use berth_runtime::container::archive::{self, Layout, PathStat};
use berth_runtime::container::archive_put::{self, PutOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A container whose files are about to be read or written.
pub struct Target {
    c: Arc<Ctr>,
    key: String,
    layers: Vec<PathBuf>,
}

fn in_container(e: NetError, t: &Target) -> NetError {
    if e.kind == berth_net::ErrorKind::NotFound {
        NetError::not_found(format!("{} in container {}", e.message, t.key))
    } else {
        e
    }
}

fn check_path(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(NetError::invalid("bad parameter: pathcannot be empty"));
    }
    if path.contains('\0') {
        return Err(NetError::invalid("bad parameter: path holds a NUL byte"));
    }
    Ok(())
}

impl Engine {
    pub async fn archive_target(&self, key: &str, path: &str) -> Result<Target> {
        let c = self.find(key)?;
        check_path(path)?;
        let images = self.images.clone();
        let image_id = c.snapshot().image_id;
        let image = blocking(move || images.resolve(&image_id)).await?;
        Ok(Target {
            c,
            key: key.to_string(),
            layers: image.layers,
        })
    }

    /// Runs `f` (blocking) on the container's files.
    fn on_files<T>(&self, t: &Target, f: impl FnOnce(&Layout) -> Result<T>) -> Result<T> {
        // a running container's root is mounted and stays so while its process lives; the
        // descriptors opened below keep working even if it ends meanwhile
        let _guard = if t.c.snapshot().running() {
            None
        } else {
            Some(t.c.op.blocking_lock())
        };
        if t.c.removed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(super::no_such_container(&t.key));
        }
        let points = t.c.snapshot().mounts;
        self.rt
            .with_rootfs(&t.c.id, &t.layers, |root| {
                f(&self.layout(root.to_path_buf(), &points))
            })
            .map_err(|e| in_container(e, t))
    }

    /// `HEAD /containers/{id}/archive`
    pub async fn archive_stat(self: &Arc<Self>, t: Target, path: String) -> Result<PathStat> {
        let e = self.clone();
        blocking(move || e.on_files(&t, |l| archive::stat(l, Path::new(&path)))).await
    }

    /// `GET /containers/{id}/archive`: the stat, then the tar written to `out` on a blocking
    /// thread (the caller streams it).
    pub async fn archive_get(
        self: &Arc<Self>,
        t: Target,
        path: String,
        out: impl Write + Send + 'static,
    ) -> Result<(PathStat, tokio::task::JoinHandle<()>)> {
        let e = self.clone();
        let t = Arc::new(t);
        let (t1, p1) = (t.clone(), path.clone());
        let stat = blocking(move || e.on_files(&t1, |l| archive::stat(l, Path::new(&p1)))).await?;
        let e = self.clone();
        let job = tokio::task::spawn_blocking(move || {
            let mut out = out;
            if let Err(err) = e.on_files(&t, |l| archive::get(l, &path, &mut out)) {
                tracing::debug!("archive of {path} in {}: {err}", t.key);
            }
        });
        Ok((stat, job))
    }

    /// `PUT /containers/{id}/archive`, blocking: `src` is the request body.
    pub fn archive_put(
        &self,
        t: &Target,
        path: &str,
        src: &mut dyn Read,
        opts: &PutOptions,
    ) -> Result<()> {
        let spool = self.rt.paths(&t.c.id).data;
        self.on_files(t, |l| archive_put::put(l, path, src, opts, &spool))
    }
}
