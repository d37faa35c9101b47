//! `PUT /containers/{id}/archive`: a client's tar extracted into a container. The archive is
//! hostile: it is spooled to an unnamed temporary file and every entry checked (no `..`, no
//! NUL, nothing into a read-only mount, hard links within one mount) before anything is
//! written, so a refused archive changes nothing. Then each entry is created through a
//! directory descriptor opened with `RESOLVE_IN_ROOT` (see `archive`): symlinks already in the
//! container, or made by the archive itself, never lead outside the directory they live in.

use super::archive::{clean, fs_err, open_in, open_root, Layout};
use crate::image::untar;
use crate::{Error, Result};
use rustix::fs::{AtFlags, FileType, Mode as Perm, OFlags};
use std::collections::HashMap;
use std::io::{Read, Seek};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use tar::EntryType;

#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// `noOverwriteDirNonDir`: refuse to replace a directory by a non-directory or back.
    pub no_overwrite_dir_non_dir: bool,
    /// `copyUIDGID`: owner of everything extracted; `None`: the archive's owners.
    pub owner: Option<(u32, u32)>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::invalid(msg.into())
}

fn skipped(kind: EntryType) -> bool {
    matches!(
        kind,
        EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink
    )
}

/// Extracts `src` (tar, maybe gzip) at the container directory `cpath`. `spool`: a directory
/// on the host for the archive's temporary copy.
pub fn put(
    layout: &Layout,
    cpath: &str,
    src: &mut dyn Read,
    opts: &PutOptions,
    spool: &Path,
) -> Result<()> {
    let dest = Path::new("/").join(clean(Path::new(cpath)));
    let r = layout.route(&dest);
    let root = open_root(r.base)?;
    let fd = open_in(&root, &r.rest, OFlags::PATH, true)?
        .ok_or_else(|| Error::not_found(format!("Could not find the file {}", dest.display())))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| fs_err("stat", &dest, e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Err(bad("extraction point is not a directory"));
    }
    if r.readonly {
        // Docker's text and status (500)
        return Err(Error::internal("mounted volume is marked read-only"));
    }
    let mut file = spool_copy(src, spool)?;
    check(layout, &dest, &mut file)?;
    file.rewind().map_err(|e| fs_err("rewinding", spool, e))?;
    extract(layout, &dest, &mut file, opts)
}

fn spool_copy(src: &mut dyn Read, spool: &Path) -> Result<std::fs::File> {
    let fd = rustix::fs::open(
        spool,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Perm::from_raw_mode(0o600),
    )
    .map_err(|e| fs_err("creating a temporary file in", spool, e))?;
    let mut f = std::fs::File::from(fd);
    let mut r = untar::decompressed(Box::new(src))?;
    std::io::copy(&mut r, &mut f).map_err(|e| bad(format!("reading the archive: {e}")))?;
    f.rewind().map_err(|e| fs_err("rewinding", spool, e))?;
    Ok(f)
}

/// Where an entry goes: its container path, relative to its mount's directory.
fn target<'a>(
    layout: &'a Layout,
    dest: &Path,
    raw: &Path,
) -> Result<Option<(PathBuf, super::archive::Routed<'a>)>> {
    let Some(rel) = untar::relative(raw)? else {
        return Ok(None);
    };
    let cpath = dest.join(&rel);
    let r = layout.route(&cpath);
    Ok(Some((cpath, r)))
}

/// The first pass: every entry's path and link, before anything is written.
fn check(layout: &Layout, dest: &Path, f: &mut std::fs::File) -> Result<()> {
    let mut a = tar::Archive::new(f);
    for e in a
        .entries()
        .map_err(|e| bad(format!("invalid tar archive: {e}")))?
    {
        let e = e.map_err(|e| bad(format!("invalid tar archive: {e}")))?;
        let kind = e.header().entry_type();
        if skipped(kind) {
            continue;
        }
        let raw = e
            .path()
            .map_err(|e| bad(format!("invalid tar archive: {e}")))?;
        let Some((cpath, r)) = target(layout, dest, &raw)? else {
            continue;
        };
        if r.readonly {
            return Err(Error::internal(format!(
                "mounted volume is marked read-only: {}",
                cpath.display()
            )));
        }
        if r.rest.as_os_str().is_empty() && kind != EntryType::Directory {
            return Err(bad(format!(
                "cannot overwrite the mount point {} with a non-directory",
                cpath.display()
            )));
        }
        if kind == EntryType::Link {
            let t = e
                .link_name()
                .map_err(|e| bad(format!("invalid tar archive: {e}")))?
                .ok_or_else(|| bad(format!("hard link {} has no target", raw.display())))?;
            let (_, tr) = target(layout, dest, &t)?
                .ok_or_else(|| bad(format!("hard link {} to the root", raw.display())))?;
            if tr.base != r.base {
                return Err(bad(format!(
                    "hard link {} leads to another mount",
                    raw.display()
                )));
            }
        }
        if kind == EntryType::Symlink {
            if let Some(t) = e.link_name().ok().flatten() {
                if t.as_os_str().as_encoded_bytes().contains(&0) {
                    return Err(bad("invalid tar archive: a link target holds a NUL byte"));
                }
            }
        }
    }
    Ok(())
}

struct DirFix {
    base: PathBuf,
    rest: PathBuf,
    mode: u32,
    mtime: i64,
}

fn extract(layout: &Layout, dest: &Path, f: &mut std::fs::File, opts: &PutOptions) -> Result<()> {
    let root_user = rustix::process::geteuid().is_root();
    let mut roots: HashMap<PathBuf, OwnedFd> = HashMap::new();
    let mut dirs: Vec<DirFix> = Vec::new();
    let mut a = tar::Archive::new(f);
    for e in a
        .entries()
        .map_err(|e| bad(format!("invalid tar archive: {e}")))?
    {
        let mut e = e.map_err(|e| bad(format!("invalid tar archive: {e}")))?;
        let h = e.header().clone();
        let kind = h.entry_type();
        if skipped(kind) {
            continue;
        }
        let raw = e
            .path()
            .map_err(|e| bad(format!("invalid tar archive: {e}")))?
            .into_owned();
        let Some((cpath, r)) = target(layout, dest, &raw)? else {
            continue;
        };
        if !roots.contains_key(r.base) {
            roots.insert(r.base.to_path_buf(), open_root(r.base)?);
        }
        let root = &roots[r.base];
        let perm = h.mode().unwrap_or(0o644) & 0o7777;
        let mtime = h.mtime().unwrap_or(0) as i64;
        let owner = opts.owner.or_else(|| {
            root_user.then(|| (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32))
        });
        let Some(name) = r.rest.file_name().map(|n| n.to_os_string()) else {
            // the mount point itself: a directory entry, already there
            continue;
        };
        let parent = ensure_dir(root, r.rest.parent().unwrap_or(Path::new("")), &cpath)?;
        let existing = rustix::fs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .map(|s| FileType::from_raw_mode(s.st_mode));
        let is_dir = kind == EntryType::Directory;
        match existing {
            Some(FileType::Directory) if is_dir => {}
            Some(FileType::Directory) => {
                return Err(bad(format!(
                    "cannot overwrite directory \"{}\" with non-directory \"{}\"",
                    cpath.display(),
                    raw.display()
                )))
            }
            Some(_) if is_dir && opts.no_overwrite_dir_non_dir => {
                return Err(bad(format!(
                    "cannot overwrite non-directory \"{}\" with directory \"{}\"",
                    cpath.display(),
                    raw.display()
                )))
            }
            Some(_) => rustix::fs::unlinkat(&parent, &name, AtFlags::empty())
                .map_err(|e| fs_err("removing", &cpath, e))?,
            None => {}
        }
        match kind {
            EntryType::Directory => {
                if existing != Some(FileType::Directory) {
                    rustix::fs::mkdirat(&parent, &name, Perm::from_raw_mode(0o755))
                        .map_err(|e| fs_err("creating", &cpath, e))?;
                }
                if let Some((u, g)) = owner {
                    let _ = rustix::fs::chownat(
                        &parent,
                        &name,
                        Some(rustix::fs::Uid::from_raw(u)),
                        Some(rustix::fs::Gid::from_raw(g)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    );
                }
                dirs.push(DirFix {
                    base: r.base.to_path_buf(),
                    rest: r.rest.clone(),
                    mode: perm,
                    mtime,
                });
            }
            EntryType::Symlink => {
                let t = e
                    .link_name()
                    .map_err(|e| bad(format!("invalid tar archive: {e}")))?
                    .ok_or_else(|| bad(format!("symlink {} has no target", raw.display())))?;
                rustix::fs::symlinkat(t.as_ref(), &parent, &name)
                    .map_err(|e| fs_err("creating symlink", &cpath, e))?;
                if let Some((u, g)) = owner {
                    let _ = rustix::fs::chownat(
                        &parent,
                        &name,
                        Some(rustix::fs::Uid::from_raw(u)),
                        Some(rustix::fs::Gid::from_raw(g)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    );
                }
            }
            EntryType::Link => {
                let t = e
                    .link_name()
                    .map_err(|e| bad(format!("invalid tar archive: {e}")))?
                    .ok_or_else(|| bad(format!("hard link {} has no target", raw.display())))?;
                let (tc, tr) = target(layout, dest, &t)?
                    .ok_or_else(|| bad(format!("hard link {} to the root", raw.display())))?;
                let tname = tr.rest.file_name().unwrap_or_default();
                let tparent = open_in(
                    root,
                    tr.rest.parent().unwrap_or(Path::new("")),
                    OFlags::RDONLY | OFlags::DIRECTORY,
                    true,
                )?
                .ok_or_else(|| bad(format!("hard link target {} not found", tc.display())))?;
                rustix::fs::linkat(&tparent, tname, &parent, &name, AtFlags::empty()).map_err(
                    |e| {
                        bad(format!(
                            "hard link {} to {}: {e}",
                            raw.display(),
                            t.display()
                        ))
                    },
                )?;
            }
            EntryType::Fifo if root_user => {
                rustix::fs::mknodat(&parent, &name, FileType::Fifo, Perm::from_raw_mode(perm), 0)
                    .map_err(|e| fs_err("creating", &cpath, e))?;
            }
            // devices (and fifos without privileges) are left out: a container gets its
            // devices from its runtime, never from a copied archive
            EntryType::Char | EntryType::Block | EntryType::Fifo => {}
            _ => {
                let fd = rustix::fs::openat(
                    &parent,
                    &name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Perm::from_raw_mode(0o600),
                )
                .map_err(|e| fs_err("creating", &cpath, e))?;
                let mut out = std::fs::File::from(fd);
                std::io::copy(&mut e, &mut out)
                    .map_err(|e| bad(format!("reading the archive: {e}")))?;
                if let Some((u, g)) = owner {
                    rustix::fs::fchown(
                        &out,
                        Some(rustix::fs::Uid::from_raw(u)),
                        Some(rustix::fs::Gid::from_raw(g)),
                    )
                    .map_err(|e| fs_err("chown", &cpath, e))?;
                }
                // after chown, which clears set-id bits
                rustix::fs::fchmod(&out, Perm::from_raw_mode(perm))
                    .map_err(|e| fs_err("chmod", &cpath, e))?;
                let _ = rustix::fs::futimens(&out, &times(mtime));
            }
        }
    }
    // children are in place: directory modes and times last, deepest first
    dirs.reverse();
    for d in dirs {
        let root = &roots[&d.base];
        if let Some(fd) = open_in(root, &d.rest, OFlags::RDONLY | OFlags::DIRECTORY, false)? {
            let _ = rustix::fs::fchmod(&fd, Perm::from_raw_mode(d.mode));
            let _ = rustix::fs::futimens(&fd, &times(d.mtime));
        }
    }
    Ok(())
}

fn times(mtime: i64) -> rustix::fs::Timestamps {
    let t = rustix::fs::Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// The directory `rel` under `root`, made (0755, like Docker) where missing, opened for use as
/// the parent of an entry. Resolution stays inside `root` at every step.
fn ensure_dir(root: &OwnedFd, rel: &Path, shown: &Path) -> Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY;
    if let Some(fd) = open_in(root, rel, flags, true)? {
        return Ok(fd);
    }
    let mut cur = PathBuf::new();
    let mut fd = open_in(root, &cur, flags, true)?
        .ok_or_else(|| Error::internal("the extraction root is gone"))?;
    for c in rel.components() {
        cur.push(c);
        if let Some(next) = open_in(root, &cur, flags, true)? {
            fd = next;
            continue;
        }
        match rustix::fs::mkdirat(&fd, c.as_os_str(), Perm::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(fs_err("creating the parent of", shown, e)),
        }
        fd = open_in(root, &cur, flags, true)?.ok_or_else(|| {
            bad(format!(
                "cannot extract {}: {} is not a directory",
                shown.display(),
                cur.display()
            ))
        })?;
    }
    Ok(fd)
}
