//! `docker cp`: a container's files seen from the host, through its root filesystem and the
//! mounts whose content the host can reach (binds and volumes). Every path is resolved with
//! `openat2(RESOLVE_IN_ROOT)` from the directory it belongs to, so a symlink (even one the
//! container swaps in while we work) resolves as if that directory were `/` and never
//! leads outside it. Extraction is in `archive_put`.

use crate::{Error, Result};
use rustix::fs::{FileType, Mode as Perm, OFlags, ResolveFlags};
use serde::Serialize;
use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Where a container's paths live on the host.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The mounted root filesystem.
    pub rootfs: PathBuf,
    /// Binds and volumes (tmpfs content is not reachable from the host).
    pub mounts: Vec<LayoutMount>,
}

#[derive(Debug, Clone)]
pub struct LayoutMount {
    pub destination: String,
    pub source: PathBuf,
    pub readonly: bool,
}

/// A container path routed to the directory that holds it.
#[derive(Debug)]
pub struct Routed<'a> {
    pub base: &'a Path,
    /// Relative to `base`; empty for `base` itself.
    pub rest: PathBuf,
    pub readonly: bool,
}

/// `/a/./b/../c` → components `a`, `c` (lexically, as Docker's `filepath.Clean`).
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

impl Layout {
    /// The mount holding the container path `cpath` (the deepest one), or the root.
    pub fn route(&self, cpath: &Path) -> Routed<'_> {
        let rel = clean(cpath);
        let mut best: Option<(&LayoutMount, usize)> = None;
        for m in &self.mounts {
            let d = clean(Path::new(&m.destination));
            if rel.starts_with(&d) {
                let depth = d.components().count();
                if best.is_none_or(|(_, b)| depth > b) {
                    best = Some((m, depth));
                }
            }
        }
        match best {
            Some((m, depth)) => Routed {
                base: &m.source,
                rest: rel.components().skip(depth).collect(),
                readonly: m.readonly,
            },
            None => Routed {
                base: &self.rootfs,
                rest: rel,
                readonly: false,
            },
        }
    }

    /// The mount whose destination is exactly `cpath`, if any.
    fn mount_at(&self, cpath: &Path) -> Option<&LayoutMount> {
        let rel = clean(cpath);
        self.mounts
            .iter()
            .find(|m| clean(Path::new(&m.destination)) == rel)
    }
}

pub(super) fn fs_err(what: &str, path: &Path, e: impl Into<std::io::Error>) -> Error {
    Error::internal(format!("{what} {}: {}", path.display(), e.into()))
}

pub(super) fn open_root(base: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        base,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Perm::empty(),
    )
    .map_err(|e| fs_err("opening", base, e))
}

pub(super) const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// `rel` under the directory `root`, confined to it; `follow_last`: whether a symlink at the
/// end is followed. `rel` empty: `root` itself. `None` when it does not exist.
pub(super) fn open_in(
    root: &OwnedFd,
    rel: &Path,
    flags: OFlags,
    follow_last: bool,
) -> Result<Option<OwnedFd>> {
    let path: &Path = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let mut f = flags | OFlags::CLOEXEC;
    if !follow_last {
        f |= OFlags::NOFOLLOW;
    }
    match rustix::fs::openat2(root, path, f, Perm::empty(), IN_ROOT) {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => Ok(None),
        Err(e) => Err(fs_err("opening", rel, e)),
    }
}

/// The host path of the container path `cpath` under `rootfs`, symlinks resolved inside
/// `rootfs` (for reading the image's content during copy-up). `None` if missing.
pub fn resolve_in(rootfs: &Path, cpath: &str) -> Result<Option<PathBuf>> {
    let root = open_root(rootfs)?;
    let Some(fd) = open_in(&root, &clean(Path::new(cpath)), OFlags::PATH, true)? else {
        return Ok(None);
    };
    // the kernel's name for what was opened: a path under rootfs, since IN_ROOT kept it there
    let link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
    Ok(std::fs::read_link(link).ok())
}

/// `X-Docker-Container-Path-Stat`: Go's `os.FileMode` bits and a RFC 3339 time.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_PIPE: u32 = 1 << 25;
const GO_SOCKET: u32 = 1 << 24;
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_CHARDEV: u32 = 1 << 21;
const GO_STICKY: u32 = 1 << 20;

/// A stat's mode as Go's `os.FileMode`.
pub fn go_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match FileType::from_raw_mode(st_mode) {
        FileType::Directory => GO_DIR,
        FileType::Symlink => GO_SYMLINK,
        FileType::Fifo => GO_PIPE,
        FileType::Socket => GO_SOCKET,
        FileType::CharacterDevice => GO_DEVICE | GO_CHARDEV,
        FileType::BlockDevice => GO_DEVICE,
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        m |= GO_SETUID;
    }
    if st_mode & 0o2000 != 0 {
        m |= GO_SETGID;
    }
    if st_mode & 0o1000 != 0 {
        m |= GO_STICKY;
    }
    m
}

fn rfc3339(sec: i64, nsec: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(sec as i128 * 1_000_000_000 + nsec as i128)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn not_found(cpath: &Path) -> Error {
    Error::not_found(format!("Could not find the file {}", cpath.display()))
}

/// The base name Docker gives a path: `/` for the root, the last component otherwise.
fn base_name(cpath: &Path) -> String {
    clean(cpath)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into())
}

/// `HEAD /containers/{id}/archive`: what is at `cpath` (a symlink is described, not followed).
pub fn stat(layout: &Layout, cpath: &Path) -> Result<PathStat> {
    let r = layout.route(cpath);
    let root = open_root(r.base)?;
    let fd = open_in(&root, &r.rest, OFlags::PATH, false)?.ok_or_else(|| not_found(cpath))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| fs_err("stat", cpath, e))?;
    let mut link_target = String::new();
    if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
        // Docker shows where the link leads, as a container path
        let t = rustix::fs::readlinkat(&fd, "", Vec::new())
            .map_err(|e| fs_err("readlink", cpath, e))?;
        let t = PathBuf::from(OsStr::from_bytes(t.as_bytes()));
        let abs = if t.is_absolute() {
            t
        } else {
            Path::new("/")
                .join(clean(cpath).parent().unwrap_or(Path::new("")))
                .join(t)
        };
        link_target = Path::new("/").join(clean(&abs)).display().to_string();
    }
    Ok(PathStat {
        name: base_name(cpath),
        size: st.st_size,
        mode: go_mode(st.st_mode),
        mtime: rfc3339(st.st_mtime, st.st_mtime_nsec as i64),
        link_target,
    })
}

/// `GET /containers/{id}/archive`: a tar of what is at `cpath` written to `out`, named by its
/// base name (`/etc/hosts` → `hosts`); a path ending in `/.` gives the directory's content
/// only. Symlinks are archived as links, never followed; mounts inside are crossed.
pub fn get(layout: &Layout, cpath: &str, out: &mut dyn Write) -> Result<()> {
    let content_only = cpath.ends_with("/.");
    let p = Path::new(cpath);
    let r = layout.route(p);
    let root = open_root(r.base)?;
    let fd = open_in(&root, &r.rest, OFlags::PATH, false)?.ok_or_else(|| not_found(p))?;
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let name = if content_only || clean(p).as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        PathBuf::from(base_name(p))
    };
    add(&mut b, layout, &clean(p), &fd, &name)?;
    b.finish()
        .map_err(|e| fs_err("writing the archive of", p, e))?;
    Ok(())
}

fn header_for(st: &rustix::fs::Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// Adds the object `fd` (an `O_PATH` descriptor, not followed) at `cpath` as `name`.
fn add<W: Write>(
    b: &mut tar::Builder<W>,
    layout: &Layout,
    cpath: &Path,
    fd: &OwnedFd,
    name: &Path,
) -> Result<()> {
    let shown = Path::new("/").join(cpath);
    let err = |what: &str, e: std::io::Error| fs_err(what, &shown, e);
    let st = rustix::fs::fstat(fd).map_err(|e| err("stat", e.into()))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            let mut h = header_for(&st, tar::EntryType::Directory);
            b.append_data(&mut h, name, std::io::empty())
                .map_err(|e| err("archiving", e))?;
            let dir = rustix::fs::openat(
                fd,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Perm::empty(),
            )
            .map_err(|e| err("opening", e.into()))?;
            let mut names: Vec<Vec<u8>> = rustix::fs::Dir::read_from(&dir)
                .map_err(|e| err("reading", e.into()))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_bytes().to_vec())
                .filter(|n| n != b"." && n != b"..")
                .collect();
            names.sort();
            for n in names {
                let n = OsStr::from_bytes(&n);
                let child = cpath.join(n);
                // a mount inside: its content, not the empty directory under it
                let cfd = match layout.mount_at(&child) {
                    Some(m) => open_root(&m.source)?,
                    None => match rustix::fs::openat(
                        &dir,
                        n,
                        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Perm::empty(),
                    ) {
                        Ok(f) => f,
                        // gone meanwhile (a running container changes its files)
                        Err(_) => continue,
                    },
                };
                add(b, layout, &child, &cfd, &name.join(n))?;
            }
        }
        FileType::Symlink => {
            let t = rustix::fs::readlinkat(fd, "", Vec::new())
                .map_err(|e| err("readlink", e.into()))?;
            let mut h = header_for(&st, tar::EntryType::Symlink);
            b.append_link(&mut h, name, OsStr::from_bytes(t.as_bytes()))
                .map_err(|e| err("archiving", e))?;
        }
        FileType::RegularFile => {
            // reopened for reading through its O_PATH descriptor: the same inode
            let link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
            let f = rustix::fs::open(
                link.as_str(),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Perm::empty(),
            )
            .map_err(|e| err("opening", e.into()))?;
            let mut h = header_for(&st, tar::EntryType::Regular);
            h.set_size(st.st_size as u64);
            // the size is fixed in the header: a file growing meanwhile is cut there
            let file = std::fs::File::from(f);
            let mut r = std::io::Read::take(file, st.st_size as u64);
            b.append_data(&mut h, name, &mut r)
                .map_err(|e| err("archiving", e))?;
        }
        FileType::Fifo => {
            let mut h = header_for(&st, tar::EntryType::Fifo);
            b.append_data(&mut h, name, std::io::empty())
                .map_err(|e| err("archiving", e))?;
        }
        // devices and sockets: Docker's archives carry devices, but a copy out has no use
        // for them and berth never makes them from an archive either
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
