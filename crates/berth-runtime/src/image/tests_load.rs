//! `docker save` archives of both flavours, built here, loaded into a store.

use super::tests::{gzip, is_root, sha, store, Tar};
use super::*;
use serde_json::json;

/// Two layers (the second deletes a file of the first) and a config naming them.
fn image_parts() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let base = Tar::new()
        .dir("etc/", 0o755)
        .file("etc/os", b"test\n")
        .file("etc/old", b"x")
        .bytes();
    let top = Tar::new()
        .dir("etc/", 0o755)
        .file("etc/.wh.old", b"")
        .file("app", b"run\n")
        .bytes();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/app"], "Labels": null},
        "created": "2024-05-06T07:08:09.123456789Z",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha(&base), sha(&top)]},
    }))
    .unwrap();
    (base, top, config)
}

/// `docker save` before Docker 25: `<id>.json`, `<layer>/layer.tar`, a repeated layer as a
/// symlink to the first copy.
fn legacy_archive(tags: &[&str]) -> (Vec<u8>, String) {
    let (base, top, config) = image_parts();
    let id = sha(&config);
    let cfg_name = format!("{}.json", &id[7..]);
    let manifest = json!([{
        "Config": cfg_name,
        "RepoTags": tags,
        "Layers": ["aaa/layer.tar", "bbb/layer.tar"],
    }]);
    let tar = Tar::new()
        .dir("aaa/", 0o755)
        .file("aaa/VERSION", b"1.0")
        .file("aaa/layer.tar", &base)
        .dir("bbb/", 0o755)
        .file("bbb/layer.tar", &top)
        .dir("ccc/", 0o755)
        .link(tar::EntryType::Symlink, "ccc/layer.tar", "../aaa/layer.tar")
        .file(&cfg_name, &config)
        .file("manifest.json", &serde_json::to_vec(&manifest).unwrap())
        .file("repositories", b"{}")
        .bytes();
    (tar, id)
}

/// Docker 25+: an OCI layout (gzip layers here) plus `manifest.json` into the blobs;
/// `with_manifest_json: false` gives a bare OCI layout with containerd's name annotation.
fn oci_archive(with_manifest_json: bool) -> (Vec<u8>, String) {
    let (base, top, config) = image_parts();
    let (base_gz, top_gz) = (gzip(&base), gzip(&top));
    let blob = |b: &[u8]| format!("blobs/sha256/{}", &sha(b)[7..]);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(&base_gz), "size": base_gz.len()},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(&top_gz), "size": top_gz.len()},
        ],
    }))
    .unwrap();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(&manifest),
            "size": manifest.len(),
            "annotations": {"io.containerd.image.name": "docker.io/library/oci:v1", "org.opencontainers.image.ref.name": "v1"},
        }],
    });
    let mut t = Tar::new()
        .dir("blobs/", 0o755)
        .dir("blobs/sha256/", 0o755)
        .file(&blob(&config), &config)
        .file(&blob(&base_gz), &base_gz)
        .file(&blob(&top_gz), &top_gz)
        .file(&blob(&manifest), &manifest)
        .file("index.json", &serde_json::to_vec(&index).unwrap())
        .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    if with_manifest_json {
        let m = json!([{"Config": blob(&config), "RepoTags": ["oci:v1"], "Layers": [blob(&base_gz), blob(&top_gz)]}]);
        t = t.file("manifest.json", &serde_json::to_vec(&m).unwrap());
    }
    (t.bytes(), sha(&config))
}

fn check_loaded(s: &ImageStore, reference: &str, id: &str) {
    let img = s.resolve(reference).unwrap();
    assert_eq!(img.id, id);
    assert_eq!(img.created, "2024-05-06T07:08:09.123456789Z");
    assert_eq!(img.config.cmd.as_deref(), Some(&["/app".to_string()][..]));
    assert_eq!(img.layers.len(), 2);
    assert!(img.layers[0].join("etc/os").is_file());
    assert!(img.layers[1].join("app").is_file());
    if is_root() {
        use std::os::unix::fs::FileTypeExt;
        let wh = std::fs::symlink_metadata(img.layers[1].join("etc/old")).unwrap();
        assert!(wh.file_type().is_char_device());
    }
    assert_eq!(img.size, 5 + 1 + 4);
}

#[test]
fn legacy_save_archives_load_with_their_ids() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let (tar, id) = legacy_archive(&["docker.io/library/app:1", "me/app:latest"]);
    let lines = s.load(&mut tar.as_slice()).unwrap();
    assert_eq!(
        lines,
        ["Loaded image: app:1", "Loaded image: me/app:latest"]
    );
    check_loaded(&s, "app:1", &id);
    assert_eq!(
        s.resolve("me/app").unwrap().repo_tags,
        ["app:1", "me/app:latest"]
    );
    // loading again is harmless; a gzip'd archive loads too
    assert_eq!(s.load(&mut gzip(&tar).as_slice()).unwrap().len(), 2);
    assert_eq!(s.list().len(), 1);
    assert!(!dir.path().join("tmp").read_dir().unwrap().any(|_| true));
}

#[test]
fn oci_save_archives_load_with_their_ids() {
    for with_manifest_json in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        let (tar, id) = oci_archive(with_manifest_json);
        assert_eq!(
            s.load(&mut tar.as_slice()).unwrap(),
            ["Loaded image: oci:v1"]
        );
        check_loaded(&s, "oci:v1", &id);
    }
}

#[test]
fn untagged_loads_report_the_id_and_moved_tags_are_announced() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let (tar, id) = legacy_archive(&[]);
    assert_eq!(
        s.load(&mut tar.as_slice()).unwrap(),
        [format!("Loaded image ID: {id}")]
    );
    let other = s
        .import(
            &mut Tar::new().file("f", b"").bytes().as_slice(),
            Some("app:1"),
            &[],
        )
        .unwrap();
    let (tar, _) = legacy_archive(&["app:1"]);
    assert_eq!(
        s.load(&mut tar.as_slice()).unwrap(),
        [
            format!(
                "The image app:1 already exists, renaming the old one with ID {} to empty string",
                other.id
            ),
            "Loaded image: app:1".to_string()
        ]
    );
}

#[test]
fn bad_archives_are_refused_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let no_manifest = Tar::new().file("hello.txt", b"hi").bytes();
    let e = s.load(&mut no_manifest.as_slice()).unwrap_err();
    assert_eq!(e.kind, crate::ErrorKind::InvalidParameter);
    assert!(
        e.message.contains("not an archive made by `docker save`"),
        "{}",
        e.message
    );

    // a layer that is not what the config says: its extracted copy is dropped again
    let (base, top, _) = image_parts();
    let config = serde_json::to_vec(&json!({
        "rootfs": {"type": "layers", "diff_ids": [sha(&base), sha(b"something else")]},
    }))
    .unwrap();
    let manifest =
        json!([{"Config": "c.json", "RepoTags": ["bad:1"], "Layers": ["a.tar", "b.tar"]}]);
    let tar = Tar::new()
        .file("a.tar", &base)
        .file("b.tar", &top)
        .file("c.json", &config)
        .file("manifest.json", &serde_json::to_vec(&manifest).unwrap())
        .bytes();
    let e = s.load(&mut tar.as_slice()).unwrap_err();
    assert!(e.message.contains("the image config says"), "{}", e.message);

    let escaping = json!([{"Config": "../../etc/passwd", "RepoTags": [], "Layers": []}]);
    let tar = Tar::new()
        .file("manifest.json", &serde_json::to_vec(&escaping).unwrap())
        .bytes();
    assert_eq!(
        s.load(&mut tar.as_slice()).unwrap_err().kind,
        crate::ErrorKind::InvalidParameter
    );

    assert!(s.load(&mut &b"garbage"[..]).is_err());
    assert!(s.list().is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("layers"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}

#[test]
fn junk_gets_a_readable_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let e = s.load(&mut junk.as_slice()).unwrap_err();
    assert!(
        e.message.starts_with("invalid tar archive: "),
        "{}",
        e.message
    );
    assert!(
        e.message.chars().all(|c| c.is_ascii_graphic() || c == ' '),
        "{}",
        e.message
    );
}
