use super::*;
use crate::container::archive_put::{put, PutOptions};
use std::fs;

fn layout(root: &Path, vol: &Path, ro: bool) -> Layout {
    Layout {
        rootfs: root.into(),
        mounts: vec![LayoutMount {
            destination: "/vol".into(),
            source: vol.into(),
            readonly: ro,
        }],
    }
}

/// A tar entry whose name is written raw (the tar crate refuses `..` on its own).
fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: &str,
    data: &[u8],
) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    let g = h.as_gnu_mut().unwrap();
    g.name[..name.len()].copy_from_slice(name.as_bytes());
    g.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn tar_of(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (n, k, l, d) in entries {
        raw_entry(&mut b, n, *k, l, d);
    }
    b.into_inner().unwrap()
}

#[test]
fn routes_to_the_deepest_mount() {
    let l = Layout {
        rootfs: "/r".into(),
        mounts: vec![
            LayoutMount {
                destination: "/a".into(),
                source: "/va".into(),
                readonly: false,
            },
            LayoutMount {
                destination: "/a/b/".into(),
                source: "/vb".into(),
                readonly: true,
            },
        ],
    };
    let r = l.route(Path::new("/a/b/c/../d"));
    assert_eq!(r.base, Path::new("/vb"));
    assert_eq!(r.rest, PathBuf::from("d"));
    assert!(r.readonly);
    let r = l.route(Path::new("/a/bb"));
    assert_eq!(r.base, Path::new("/va"));
    let r = l.route(Path::new("/../etc"));
    assert_eq!(r.base, Path::new("/r"));
    assert_eq!(r.rest, PathBuf::from("etc"));
}

#[test]
fn go_modes() {
    assert_eq!(go_mode(0o040755), (1 << 31) | 0o755);
    assert_eq!(go_mode(0o120777), (1 << 27) | 0o777);
    assert_eq!(go_mode(0o104755), (1 << 23) | 0o755);
}

#[test]
fn put_then_stat_and_get_back() {
    let root = tempfile::tempdir().unwrap();
    let vol = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("vol")).unwrap();
    let l = layout(root.path(), vol.path(), false);
    let t = tar_of(&[
        ("d/", tar::EntryType::Directory, "", b""),
        ("d/f.txt", tar::EntryType::Regular, "", b"hello"),
        ("d/l", tar::EntryType::Symlink, "f.txt", b""),
        ("d/h", tar::EntryType::Link, "d/f.txt", b""),
    ]);
    put(&l, "/vol", &mut &t[..], &PutOptions::default(), root.path()).unwrap();
    assert_eq!(
        fs::read_to_string(vol.path().join("d/f.txt")).unwrap(),
        "hello"
    );
    assert_eq!(fs::read_to_string(vol.path().join("d/h")).unwrap(), "hello");
    // nothing went to the directory under the mount
    assert!(!root.path().join("vol/d").exists());

    let s = stat(&l, Path::new("/vol/d/f.txt")).unwrap();
    assert_eq!((s.name.as_str(), s.size), ("f.txt", 5));
    let s = stat(&l, Path::new("/vol/d/l")).unwrap();
    assert_eq!(s.link_target, "/vol/d/f.txt");
    assert_ne!(s.mode & (1 << 27), 0);
    assert_eq!(
        stat(&l, Path::new("/nope")).unwrap_err().kind,
        crate::ErrorKind::NotFound
    );

    // the whole root, crossing into the volume
    let mut out = Vec::new();
    get(&l, "/", &mut out).unwrap();
    let mut a = tar::Archive::new(&out[..]);
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "vol/d/f.txt"), "{names:?}");
    let mut out = Vec::new();
    get(&l, "/vol/d/f.txt", &mut out).unwrap();
    let mut a = tar::Archive::new(&out[..]);
    let mut e = a.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(e.path().unwrap(), Path::new("f.txt"));
    let mut s = String::new();
    std::io::Read::read_to_string(&mut e, &mut s).unwrap();
    assert_eq!(s, "hello");
}

#[test]
fn hostile_archives_are_refused_before_writing() {
    let root = tempfile::tempdir().unwrap();
    let vol = tempfile::tempdir().unwrap();
    let l = layout(root.path(), vol.path(), false);
    let t = tar_of(&[
        ("ok.txt", tar::EntryType::Regular, "", b"x"),
        ("../escape.txt", tar::EntryType::Regular, "", b"x"),
    ]);
    let e = put(&l, "/", &mut &t[..], &PutOptions::default(), root.path()).unwrap_err();
    assert_eq!(e.kind, crate::ErrorKind::InvalidParameter, "{e}");
    assert!(
        !root.path().join("ok.txt").exists(),
        "a refused archive wrote"
    );
    assert!(!root.path().parent().unwrap().join("escape.txt").exists());

    // into a read-only volume
    let l = layout(root.path(), vol.path(), true);
    let t = tar_of(&[("vol/x", tar::EntryType::Regular, "", b"x")]);
    assert!(put(&l, "/", &mut &t[..], &PutOptions::default(), root.path()).is_err());
    assert!(!vol.path().join("x").exists());
}

#[test]
fn symlinks_never_lead_outside() {
    let outside = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let vol = tempfile::tempdir().unwrap();
    let l = layout(root.path(), vol.path(), false);
    // a link already in the container, and one the archive makes, both to the host's dir
    std::os::unix::fs::symlink(outside.path(), root.path().join("pre")).unwrap();
    let out = outside.path().display().to_string();
    // a dangling link (its target missing inside the root) is refused, not followed out
    let t = tar_of(&[("pre/a", tar::EntryType::Regular, "", b"x")]);
    assert!(put(&l, "/", &mut &t[..], &PutOptions::default(), root.path()).is_err());
    assert_eq!(
        fs::read_dir(outside.path()).unwrap().count(),
        0,
        "wrote outside"
    );
    let inside = root.path().join(outside.path().strip_prefix("/").unwrap());
    fs::create_dir_all(&inside).unwrap();
    let t = tar_of(&[
        ("pre/a", tar::EntryType::Regular, "", b"x"),
        ("made", tar::EntryType::Symlink, &out, b""),
        ("made/b", tar::EntryType::Regular, "", b"x"),
        ("up", tar::EntryType::Symlink, "../../../../../../..", b""),
        ("up/c", tar::EntryType::Regular, "", b"x"),
    ]);
    put(&l, "/", &mut &t[..], &PutOptions::default(), root.path()).unwrap();
    assert_eq!(
        fs::read_dir(outside.path()).unwrap().count(),
        0,
        "wrote outside"
    );
    // each landed inside the root, where the link leads when the root is `/`
    assert!(inside.join("a").exists() && inside.join("b").exists());
    assert!(root.path().join("c").exists());
}
