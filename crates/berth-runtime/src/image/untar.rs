//! Extracting tar archives into a directory: image layers (ownership, modes, links, devices,
//! xattrs, and AUFS whiteouts turned into overlayfs ones) and plain archives (`docker save`
//! bundles). Nothing is ever written outside the target directory: every path is made
//! relative and refused if it climbs (`..`) or holds a NUL, parents are resolved as if the
//! target were `/` (see [`make_parents`]), whiteouts must name a file of their own directory,
//! and the late directory fix-ups walk without following links (see [`finish_dir`]).

use crate::{Error, Result};
use rustix::fs::FileType;
use sha2::{Digest, Sha256};
use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use tar::EntryType;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An image layer: owners, devices and whiteouts as the archive says.
    Layer,
    /// A plain bundle of files read by berth itself: no owners, no devices, no whiteouts.
    Plain,
}

/// What an extraction found.
#[derive(Debug)]
pub struct Unpacked {
    /// `sha256:` + hex of the uncompressed tar stream (a layer's diff id).
    pub digest: String,
    /// Bytes of regular files.
    pub size: u64,
}

/// `src` with its compression (gzip) removed, detected by magic number like Docker does.
pub fn decompressed<'a>(src: Box<dyn Read + 'a>) -> Result<Box<dyn Read + 'a>> {
    let mut buf = BufReader::with_capacity(64 * 1024, src);
    let head = buf.fill_buf().map_err(bad_archive)?;
    let unsupported = |what: &str| {
        Err(Error::invalid(format!(
            "{what}-compressed archives are not supported: decompress it or use gzip"
        )))
    };
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(buf)))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        unsupported("xz")
    } else if head.starts_with(b"BZh") {
        unsupported("bzip2")
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        unsupported("zstd")
    } else {
        Ok(Box::new(buf))
    }
}

/// Extracts the (uncompressed) tar stream `src` into the existing directory `dst`.
pub fn unpack(src: &mut dyn Read, dst: &Path, mode: Mode) -> Result<Unpacked> {
    let mut hashed = Hashing {
        inner: src,
        hash: Sha256::new(),
    };
    let root = running_as_root();
    let mut dirs = Vec::new();
    let mut size = 0;
    {
        let mut archive = tar::Archive::new(&mut hashed);
        for entry in archive.entries().map_err(bad_archive)? {
            let mut entry = entry.map_err(bad_archive)?;
            size += unpack_entry(&mut entry, dst, mode, root, &mut dirs)?;
        }
    }
    // the trailing zero blocks are part of the stream the diff id covers
    io::copy(&mut hashed, &mut io::sink()).map_err(bad_archive)?;
    // children are in place: directory modes and times last, deepest first
    for d in dirs.iter().rev() {
        finish_dir(dst, d)?;
    }
    Ok(Unpacked {
        digest: format!("sha256:{:x}", hashed.hash.finalize()),
        size,
    })
}

struct Hashing<'a> {
    inner: &'a mut dyn Read,
    hash: Sha256,
}

impl Read for Hashing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

struct DirMeta {
    /// Relative to the target; empty for the target itself.
    rel: PathBuf,
    mode: u32,
    mtime: i64,
}

fn bad_archive(e: impl std::fmt::Display) -> Error {
    // the tar crate quotes the offending header bytes: binary junk has no place in a message
    let text = e.to_string();
    let text = match text.split_once(" when getting") {
        Some((head, _)) if head.contains(':') => head.split(':').next().unwrap_or(head).to_string(),
        _ => text,
    };
    let clean = text
        .chars()
        .all(|c| !c.is_control() && c != char::REPLACEMENT_CHARACTER);
    Error::invalid(match clean {
        true => format!("invalid tar archive: {text}"),
        false => "invalid tar archive: not a tar file".to_string(),
    })
}

fn fs_error(what: &str, path: &Path, e: io::Error) -> Error {
    Error::internal(format!("{what} {}: {e}", path.display()))
}

fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Extracts one entry; returns the bytes it added to the layer's size.
fn unpack_entry(
    entry: &mut tar::Entry<'_, &mut Hashing<'_>>,
    dst: &Path,
    mode: Mode,
    root: bool,
    dirs: &mut Vec<DirMeta>,
) -> Result<u64> {
    let header = entry.header().clone();
    let kind = header.entry_type();
    if matches!(
        kind,
        EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink
    ) {
        return Ok(0);
    }
    let raw = entry.path().map_err(bad_archive)?.into_owned();
    let Some(rel) = relative(&raw)? else {
        // the archive's root itself (`./`): the layer directory's own metadata
        if kind == EntryType::Directory && mode == Mode::Layer {
            let m = header.mode().map_err(bad_archive)?;
            set_owner(dst, &header, root, false)?;
            dirs.push(DirMeta {
                rel: PathBuf::new(),
                mode: m,
                mtime: header.mtime().unwrap_or(0) as i64,
            });
        }
        return Ok(0);
    };
    // `relative` keeps only normal components and is never empty: there is a last one
    let name = rel.file_name().unwrap_or_default();
    if mode == Mode::Layer && name.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
        // checked before anything is touched: a bad whiteout changes nothing
        let what = whiteout_target(&raw, name)?;
        let parent = make_parents(dst, rel.parent().unwrap_or(Path::new("")))?;
        return whiteout(&parent, what, &header, root).map(|_| 0);
    }
    let parent = make_parents(dst, rel.parent().unwrap_or(Path::new("")))?;
    let path = parent.join(name);
    let perm = header.mode().map_err(bad_archive)? & 0o7777;
    let mtime = header.mtime().unwrap_or(0) as i64;
    let mut size = 0;
    match kind {
        EntryType::Directory => {
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    remove_any(&path)?;
                    mkdir(&path)?;
                }
                Err(_) => mkdir(&path)?,
            }
            set_owner(&path, &header, root && mode == Mode::Layer, false)?;
            dirs.push(DirMeta {
                rel: path.strip_prefix(dst).unwrap_or(&rel).to_path_buf(),
                mode: if mode == Mode::Layer { perm } else { 0o755 },
                mtime,
            });
        }
        EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(bad_archive)?
                .ok_or_else(|| bad_archive(format!("symlink {} has no target", raw.display())))?;
            no_nul(&target)?;
            remove_any(&path)?;
            std::os::unix::fs::symlink(&target, &path)
                .map_err(|e| fs_error("creating symlink", &path, e))?;
            set_owner(&path, &header, root && mode == Mode::Layer, true)?;
            set_mtime(&path, mtime, true);
        }
        EntryType::Link => {
            let target = entry
                .link_name()
                .map_err(bad_archive)?
                .ok_or_else(|| bad_archive(format!("hard link {} has no target", raw.display())))?;
            let trel = relative(&target)?
                .ok_or_else(|| bad_archive(format!("hard link {} to the root", raw.display())))?;
            let tparent = make_parents(dst, trel.parent().unwrap_or(Path::new("")))?;
            let tpath = tparent.join(trel.file_name().unwrap_or_default());
            if tpath != path {
                remove_any(&path)?;
                fs::hard_link(&tpath, &path).map_err(|e| {
                    bad_archive(format!(
                        "hard link {} to {}: {e}",
                        raw.display(),
                        target.display()
                    ))
                })?;
            }
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            if mode == Mode::Plain || (!root && kind != EntryType::Fifo) {
                // a device needs privileges (and has no place in a bundle): left out
                return Ok(0);
            }
            let major = header.device_major().ok().flatten().unwrap_or(0);
            let minor = header.device_minor().ok().flatten().unwrap_or(0);
            let fmt = match kind {
                EntryType::Char => FileType::CharacterDevice,
                EntryType::Block => FileType::BlockDevice,
                _ => FileType::Fifo,
            };
            remove_any(&path)?;
            mknod(&path, fmt, perm, rustix::fs::makedev(major, minor))?;
            set_owner(&path, &header, root, false)?;
            chmod(&path, perm)?;
            set_mtime(&path, mtime, false);
        }
        // everything else is a regular file, as POSIX says unknown types must be read
        _ => {
            remove_any(&path)?;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| fs_error("creating", &path, e))?;
            size = io::copy(entry, &mut f).map_err(bad_archive)?;
            drop(f);
            set_owner(&path, &header, root && mode == Mode::Layer, false)?;
            // after chown, which clears set-id bits
            chmod(&path, if mode == Mode::Layer { perm } else { 0o644 })?;
            set_mtime(&path, mtime, false);
        }
    }
    if mode == Mode::Layer && kind != EntryType::Link {
        set_xattrs(entry, &path, root)?;
    }
    Ok(size)
}

/// The entry's path relative to the target, `None` for the target itself. `..` is refused:
/// a layer has no business outside its directory. An absolute path is taken as relative to
/// the target, as Docker does. A NUL (possible in GNU long names and PAX records) is refused:
/// no system call can take such a path.
pub fn relative(raw: &Path) -> Result<Option<PathBuf>> {
    no_nul(raw)?;
    let mut rel = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => rel.push(p),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                return Err(Error::invalid(format!(
                    "invalid tar archive: path {} escapes the extraction directory",
                    raw.display()
                )))
            }
        }
    }
    Ok(if rel.as_os_str().is_empty() {
        None
    } else {
        Some(rel)
    })
}

fn no_nul(p: &Path) -> Result<()> {
    if p.as_os_str().as_bytes().contains(&0) {
        return Err(Error::invalid(format!(
            "invalid tar archive: path {:?} contains a NUL byte",
            p.as_os_str()
        )));
    }
    Ok(())
}

/// Creates the directories of `rel` under `root` (0755, like Docker) and returns the real path
/// of the last one. Symlinks met on the way are followed as if `root` were `/`, so a link can
/// never lead outside (runc's securejoin).
fn make_parents(root: &Path, rel: &Path) -> Result<PathBuf> {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<PathBuf> = rel
        .components()
        .rev()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut hops = 0;
    while let Some(c) = pending.pop() {
        match c.to_str() {
            Some("..") => {
                resolved.pop();
                continue;
            }
            Some(".") | Some("/") | Some("") => continue,
            _ => {}
        }
        let cand = resolved.join(&c);
        let full = root.join(&cand);
        match fs::symlink_metadata(&full) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return Err(bad_archive(format!(
                        "too many symlinks under {}",
                        rel.display()
                    )));
                }
                let target =
                    fs::read_link(&full).map_err(|e| fs_error("reading link", &full, e))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                pending.extend(
                    target
                        .components()
                        .rev()
                        .map(|c| PathBuf::from(c.as_os_str())),
                );
            }
            Ok(m) if m.is_dir() => resolved = cand,
            Ok(_) => {
                return Err(bad_archive(format!(
                    "{} is not a directory",
                    cand.display()
                )));
            }
            Err(_) => {
                mkdir(&full)?;
                resolved = cand;
            }
        }
    }
    Ok(root.join(resolved))
}

/// What a whiteout entry asks for.
enum Whiteout<'a> {
    /// `.wh..wh..opq`: its directory hides the layers below.
    Opaque,
    /// `.wh.NAME`: NAME of the layers below is hidden.
    Hide(&'a OsStr),
    /// AUFS's own bookkeeping (`.wh..wh.plnk`, ...): nothing for overlayfs.
    Ignore,
}

/// What the whiteout entry `name` (`.wh.` + something) means; an error when it would name no
/// file of its directory (`.wh..` and `.wh...` name the directory itself and its parent:
/// removing those wipes the layer, or the whole layer store).
fn whiteout_target<'a>(raw: &Path, name: &'a OsStr) -> Result<Whiteout<'a>> {
    if name == OPAQUE_MARKER {
        return Ok(Whiteout::Opaque);
    }
    let hidden = &name.as_bytes()[WHITEOUT_PREFIX.len()..];
    if hidden == b"." || hidden == b".." {
        return Err(Error::invalid(format!(
            "invalid tar archive: whiteout {} escapes its directory",
            raw.display()
        )));
    }
    if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) || hidden.is_empty() {
        return Ok(Whiteout::Ignore);
    }
    Ok(Whiteout::Hide(OsStr::from_bytes(hidden)))
}

/// `.wh.NAME` hides NAME of the layers below: overlayfs wants a 0/0 character device there.
/// `.wh..wh..opq` makes its directory opaque: overlayfs wants an xattr on it.
fn whiteout(parent: &Path, what: Whiteout, header: &tar::Header, root: bool) -> Result<()> {
    if !root {
        // only root can make either; berth runs containers as root anyway
        return Ok(());
    }
    let hidden = match what {
        Whiteout::Opaque => return setxattr(parent, "trusted.overlay.opaque", b"y"),
        Whiteout::Ignore => return Ok(()),
        Whiteout::Hide(hidden) => hidden,
    };
    let path = parent.join(hidden);
    remove_any(&path)?;
    mknod(&path, FileType::CharacterDevice, 0, 0)?;
    set_owner(&path, header, root, false)
}

fn mkdir(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .mode(0o755)
        .create(path)
        .map_err(|e| fs_error("creating directory", path, e))
}

/// Removes whatever is at `path` so an entry can take its place (a directory only when the
/// new entry is not one: callers keep existing directories).
fn remove_any(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(|e| fs_error("removing", path, e)),
        Ok(_) => fs::remove_file(path).map_err(|e| fs_error("removing", path, e)),
    }
}

fn mknod(path: &Path, kind: FileType, perm: u32, dev: rustix::fs::Dev) -> Result<()> {
    let mode = rustix::fs::Mode::from_raw_mode(perm);
    rustix::fs::mknodat(rustix::fs::CWD, path, kind, mode, dev)
        .map_err(|e| fs_error("creating device", path, e.into()))
}

fn chmod(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| fs_error("chmod", path, e))
}

fn set_owner(path: &Path, header: &tar::Header, enabled: bool, link: bool) -> Result<()> {
    if !enabled {
        return Ok(());
    }
    let uid = header.uid().map_err(bad_archive)? as u32;
    let gid = header.gid().map_err(bad_archive)? as u32;
    let r = if link {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
    } else {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
    };
    r.map_err(|e| fs_error("chown", path, e))
}

/// Times matter little to a layer: failures are ignored.
fn set_mtime(path: &Path, mtime: i64, nofollow: bool) {
    let flags = if nofollow {
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW
    } else {
        rustix::fs::AtFlags::empty()
    };
    let _ = rustix::fs::utimensat(rustix::fs::CWD, path, &times(mtime), flags);
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

/// A directory's mode and time, set once its children are in place. By then a later entry
/// may have replaced it, or one of its parents, by a symlink to anywhere: the path is walked
/// from the target without following links, and a directory that is gone is skipped.
fn finish_dir(dst: &Path, d: &DirMeta) -> Result<()> {
    let Some(fd) = open_dir_beneath(dst, &d.rel)? else {
        return Ok(());
    };
    let shown = dst.join(&d.rel);
    rustix::fs::fchmod(&fd, rustix::fs::Mode::from_raw_mode(d.mode))
        .map_err(|e| fs_error("chmod", &shown, e.into()))?;
    // times matter little to a layer: failures are ignored
    let _ = rustix::fs::futimens(&fd, &times(d.mtime));
    Ok(())
}

/// `dst/rel` opened as a directory, no component of `rel` being a symlink; `None` when one is
/// (or is no longer a directory).
fn open_dir_beneath(dst: &Path, rel: &Path) -> Result<Option<OwnedFd>> {
    use rustix::fs::{Mode as Perm, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut fd = rustix::fs::open(dst, flags, Perm::empty())
        .map_err(|e| fs_error("opening", dst, e.into()))?;
    for c in rel.components() {
        match rustix::fs::openat(&fd, c.as_os_str(), flags, Perm::empty()) {
            Ok(next) => fd = next,
            Err(_) => return Ok(None),
        }
    }
    Ok(Some(fd))
}

fn setxattr(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty())
        .map_err(|e| fs_error(&format!("setting xattr {name} on"), path, e.into()))
}

/// PAX `SCHILY.xattr.*` records (file capabilities, SELinux labels, ...). Only root may set
/// most of them; filesystems that take none are tolerated.
fn set_xattrs(entry: &mut tar::Entry<'_, &mut Hashing<'_>>, path: &Path, root: bool) -> Result<()> {
    let Some(exts) = entry.pax_extensions().map_err(bad_archive)? else {
        return Ok(());
    };
    let attrs: Vec<(String, Vec<u8>)> = exts
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let key = e.key().ok()?.strip_prefix("SCHILY.xattr.")?.to_string();
            Some((key, e.value_bytes().to_vec()))
        })
        .collect();
    for (k, v) in attrs {
        if !root && !k.starts_with("user.") {
            continue;
        }
        if let Err(e) = setxattr(path, &k, &v) {
            tracing::debug!("{e}");
        }
    }
    Ok(())
}
