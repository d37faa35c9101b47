//! Crafted archives: every path stays inside its layer, whatever the archive says, and a bad
//! archive is refused (400) with nothing left behind and no panic.

use super::tests::{layer_dirs, store, Tar};
use super::*;
use std::os::unix::fs::PermissionsExt;
use tar::EntryType;

fn refused(s: &ImageStore, tar: &[u8]) -> Error {
    let e = s.import(&mut &tar[..], None, &[]).unwrap_err();
    assert_eq!(e.kind, crate::ErrorKind::InvalidParameter, "{}", e.message);
    e
}

#[test]
fn whiteouts_of_the_directory_or_its_parent_are_refused_and_the_store_survives() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let kept = s
        .import(
            &mut Tar::new().file("a", b"1").bytes().as_slice(),
            None,
            &[],
        )
        .unwrap();
    let before = layer_dirs(&dir);
    // `.wh...` hides `..`: removing `layers/.tmp-X/..` was removing every layer
    for name in [".wh...", ".wh..", "etc/.wh...", "etc/.wh.."] {
        let evil = Tar::new().dir("etc/", 0o755).file(name, b"").bytes();
        let e = refused(&s, &evil);
        assert!(e.message.contains("whiteout"), "{name}: {}", e.message);
        assert_eq!(layer_dirs(&dir), before, "{name}");
        assert!(kept.layers[0].join("a").is_file(), "{name}");
    }
    // the usual whiteouts still pass
    let fine = Tar::new()
        .file(".wh.gone", b"")
        .file(".wh..wh..opq", b"")
        .file(".wh..wh.plnk", b"")
        .bytes();
    s.import(&mut fine.as_slice(), None, &[]).unwrap();
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn directory_modes_never_land_outside_through_a_directory_replaced_by_a_link() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("b");
    std::fs::create_dir(&victim).unwrap();
    std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o700)).unwrap();
    let to = outside.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    // directory modes are set last: by then `c` and the parent `a` of `a/b` are links out
    let evil = Tar::new()
        .dir("c/", 0o777)
        .dir("a/", 0o777)
        .dir("a/b/", 0o777)
        .link(EntryType::Symlink, "c", to)
        .link(EntryType::Symlink, "a", to)
        .dir("kept/", 0o750)
        .bytes();
    let img = s.import(&mut evil.as_slice(), None, &[]).unwrap();
    assert_eq!(mode(outside.path()), 0o700);
    assert_eq!(mode(&victim), 0o700);
    let l = &img.layers[0];
    assert!(std::fs::symlink_metadata(l.join("a"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(mode(&l.join("kept")), 0o750);
}

#[test]
fn absolute_paths_and_hard_links_stay_in_the_layer() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let tar = Tar::new()
        .file("/abs", b"1")
        .link(EntryType::Link, "h", "/abs")
        .bytes();
    let img = s.import(&mut tar.as_slice(), None, &[]).unwrap();
    let l = &img.layers[0];
    assert_eq!(std::fs::read(l.join("abs")).unwrap(), b"1");
    assert_eq!(std::fs::read(l.join("h")).unwrap(), b"1");
    let e = refused(
        &s,
        &Tar::new().link(EntryType::Link, "h", "a/../../x").bytes(),
    );
    assert!(e.message.contains("escapes"), "{}", e.message);
}

#[test]
fn a_nul_in_a_gnu_long_name_is_refused_without_panic_or_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let cases = [
        // a device (mknod) and a whiteout (mknod) took the path that panicked
        Tar::new()
            .gnu_long(EntryType::GNULongName, b"dev/a\0b\0")
            .device(EntryType::Char, "placeholder", 1, 3),
        Tar::new()
            .gnu_long(EntryType::GNULongName, b".wh.a\0b")
            .file("placeholder", b""),
        Tar::new()
            .gnu_long(EntryType::GNULongName, b"x\0y")
            .file("placeholder", b"body"),
        Tar::new()
            .gnu_long(EntryType::GNULongLink, b"tar\0get")
            .link(EntryType::Symlink, "l", "placeholder"),
    ];
    for (i, t) in cases.into_iter().enumerate() {
        let e = refused(&s, &t.bytes());
        assert!(e.message.contains("NUL"), "case {i}: {}", e.message);
        assert!(
            layer_dirs(&dir).is_empty(),
            "case {i}: {:?}",
            layer_dirs(&dir)
        );
    }
}
