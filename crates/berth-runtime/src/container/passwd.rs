//! `--user NAME[:GROUP]` resolved as Docker resolves it (moby/sys/user's GetExecUser): names
//! through the container's own `/etc/passwd` and `/etc/group`, numbers as they are, the
//! user's primary group from its passwd entry, supplementary groups from `/etc/group`
//! membership, and `HOME` from the entry.

use crate::{Error, Result};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

/// A file of the image's `/etc`, read only when neither it nor `/etc` is a symlink: an image
/// must not make berthd (root) read a file of the host through a link. Missing: empty.
fn etc_file(rootfs: &Path, name: &str) -> String {
    let etc = rootfs.join("etc");
    let p = etc.join(name);
    let plain = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| !m.file_type().is_symlink());
    if !plain(&etc) || !plain(&p) {
        return String::new();
    }
    // passwd and group files are small; a huge one is not read whole
    use std::io::Read;
    let mut s = String::new();
    if let Ok(f) = std::fs::File::open(&p) {
        let _ = f.take(4 << 20).read_to_string(&mut s);
    }
    s
}

/// Lines of a colon-separated file, comments and short lines skipped.
fn rows(text: &str, min: usize) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(move |f| f.len() >= min)
}

pub fn resolve(rootfs: &Path, spec: &str) -> Result<ExecUser> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let passwd = etc_file(rootfs, "passwd");
    // name:x:uid:gid:gecos:home:shell
    let entry = rows(&passwd, 6).find(|f| match u.parse::<u32>() {
        Ok(n) => f[2].parse::<u32>() == Ok(n),
        Err(_) => f[0] == u,
    });
    let mut user = ExecUser {
        uid: 0,
        gid: 0,
        additional_gids: vec![],
        home: "/".into(),
    };
    match (&entry, u.parse::<u32>()) {
        (Some(f), _) => {
            user.uid = f[2].parse().unwrap_or(0);
            user.gid = f[3].parse().unwrap_or(0);
            if !f[5].is_empty() {
                user.home = f[5].to_string();
            }
        }
        (None, Ok(n)) => user.uid = n,
        (None, Err(_)) => {
            return Err(Error::invalid(format!(
                "unable to find user {u}: no matching entries in passwd file"
            )))
        }
    }
    let group = etc_file(rootfs, "group");
    if let Some(g) = g.filter(|g| !g.is_empty()) {
        // name:x:gid:members
        user.gid = match rows(&group, 3).find(|f| match g.parse::<u32>() {
            Ok(n) => f[2].parse::<u32>() == Ok(n),
            Err(_) => f[0] == g,
        }) {
            Some(f) => f[2].parse().unwrap_or(0),
            None => g.parse().map_err(|_| {
                Error::invalid(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
    }
    if let Some(name) = entry.as_ref().map(|f| f[0]) {
        for f in rows(&group, 4) {
            let member = f[3].split(',').any(|m| m.trim() == name);
            if let Ok(gid) = f[2].parse::<u32>() {
                if member && gid != user.gid && !user.additional_gids.contains(&gid) {
                    user.additional_gids.push(gid);
                }
            }
        }
    }
    Ok(user)
}

/// Supplementary groups (`--group-add`): numbers as they are, names through the image's
/// `/etc/group`. Docker finds the names at start and answers 500 for an unknown one.
pub fn group_ids(rootfs: &Path, groups: &[String]) -> Result<Vec<u32>> {
    let table = etc_file(rootfs, "group");
    groups
        .iter()
        .map(|g| match g.parse::<u32>() {
            Ok(n) => Ok(n),
            Err(_) => rows(&table, 3)
                .find(|f| f[0] == g)
                .and_then(|f| f[2].trim().parse().ok())
                .ok_or_else(|| {
                    Error::internal(format!(
                        "Unable to find group {g}: no matching entries in group file"
                    ))
                }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(passwd: &str, group: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/passwd"), passwd).unwrap();
        std::fs::write(d.path().join("etc/group"), group).unwrap();
        d
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n# note\npg:x:70:70::/var/lib/pg:/bin/sh\n";
    const GROUP: &str =
        "root:x:0:\nwheel:x:10:root,pg\nnogroup:x:65534:\npg:x:70:\naudio:x:29:pg\n";

    #[test]
    fn names_numbers_groups_and_home() {
        let d = root_with(PASSWD, GROUP);
        let r = |s: &str| resolve(d.path(), s);
        let root = r("").unwrap();
        assert_eq!((root.uid, root.gid, root.home.as_str()), (0, 0, "/root"));
        assert_eq!(root.additional_gids, vec![10]);
        let pg = r("pg").unwrap();
        assert_eq!((pg.uid, pg.gid), (70, 70));
        assert_eq!(pg.additional_gids, vec![10, 29]);
        assert_eq!(pg.home, "/var/lib/pg");
        assert_eq!(r("nobody:wheel").unwrap().gid, 10);
        assert_eq!(
            r("65534").unwrap().gid,
            65534,
            "a number in passwd gets its group"
        );
        let n = r("1234:5678").unwrap();
        assert_eq!((n.uid, n.gid, n.home.as_str()), (1234, 5678, "/"));
        assert_eq!(
            r("postgres").unwrap_err().message,
            "unable to find user postgres: no matching entries in passwd file"
        );
        assert_eq!(
            r("pg:nosuch").unwrap_err().message,
            "unable to find group nosuch: no matching entries in group file"
        );
    }

    #[test]
    fn a_symlinked_passwd_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        let host = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(host.path(), "evil:x:0:0::/:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink(host.path(), d.path().join("etc/passwd")).unwrap();
        assert!(resolve(d.path(), "evil").is_err());
        assert_eq!(resolve(d.path(), "5").unwrap().uid, 5);
    }
}
