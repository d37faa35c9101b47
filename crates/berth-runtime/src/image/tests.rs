//! Store tests: import, extraction, references, removal, the built-in busybox. Extraction of
//! owners, devices and whiteouts is checked when running as root (as these machines do).

use super::*;
use sha2::{Digest, Sha256};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

pub(super) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

pub(super) fn sha(b: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(b))
}

/// A tar builder for tests: entries with any name, even ones `tar::Builder` refuses.
pub(super) struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    pub fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, name: &str, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1001);
        h.set_mtime(1_600_000_000);
        h.set_size(size);
        h.set_cksum();
        h
    }

    pub fn dir(mut self, name: &str, mode: u32) -> Tar {
        let h = Self::header(tar::EntryType::Directory, name, mode, 0);
        self.0.append(&h, std::io::empty()).unwrap();
        self
    }

    pub fn file(mut self, name: &str, body: &[u8]) -> Tar {
        let h = Self::header(tar::EntryType::Regular, name, 0o644, body.len() as u64);
        self.0.append(&h, body).unwrap();
        self
    }

    pub fn file_mode(mut self, name: &str, body: &[u8], mode: u32) -> Tar {
        let h = Self::header(tar::EntryType::Regular, name, mode, body.len() as u64);
        self.0.append(&h, body).unwrap();
        self
    }

    pub fn link(mut self, kind: tar::EntryType, name: &str, target: &str) -> Tar {
        let mut h = Self::header(kind, name, 0o777, 0);
        // raw, like the name: `set_link_name` refuses the targets a hostile archive has
        let raw = &mut h.as_old_mut().linkname;
        raw[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        self.0.append(&h, std::io::empty()).unwrap();
        self
    }

    pub fn device(mut self, kind: tar::EntryType, name: &str, major: u32, minor: u32) -> Tar {
        let mut h = Self::header(kind, name, 0o666, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.0.append(&h, std::io::empty()).unwrap();
        self
    }

    /// A GNU long name (`L`) or long link (`K`) record: the next entry's name or target, any
    /// bytes at all.
    pub fn gnu_long(mut self, kind: tar::EntryType, data: &[u8]) -> Tar {
        let h = Self::header(kind, "././@LongLink", 0o644, data.len() as u64);
        self.0.append(&h, data).unwrap();
        self
    }

    pub fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

pub(super) fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

pub(super) fn store(dir: &tempfile::TempDir) -> ImageStore {
    ImageStore::open(dir.path(), None).unwrap()
}

fn rootfs() -> Vec<u8> {
    Tar::new()
        .dir("./", 0o755)
        .dir("./bin/", 0o755)
        .file_mode("./bin/tool", b"#!/bin/sh\necho hi\n", 0o4755)
        .link(tar::EntryType::Symlink, "./bin/alias", "tool")
        .link(tar::EntryType::Link, "./bin/hard", "./bin/tool")
        .file("etc/hostname", b"box\n")
        .dir("./secret/", 0o700)
        .device(tar::EntryType::Char, "dev/null", 1, 3)
        .device(tar::EntryType::Fifo, "run/pipe", 0, 0)
        .bytes()
}

pub(super) fn layer_dirs(dir: &tempfile::TempDir) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.path().join("layers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn import_extracts_a_layer_and_names_the_image_by_its_config_digest() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let tar = rootfs();
    let img = s
        .import(&mut tar.as_slice(), Some("docker.io/me/app:1"), &[])
        .unwrap();
    assert_eq!(img.repo_tags, ["me/app:1"]);
    assert_eq!(
        img.layers,
        [dir.path().join("layers").join(&sha(&tar)[7..])]
    );
    assert_eq!(img.size, 18 + 4);

    let d = s.inspect("me/app:1").unwrap();
    assert_eq!(d.diff_ids, [sha(&tar)]);
    let raw = std::fs::read(
        dir.path()
            .join("images")
            .join(&img.id[7..])
            .join("config.json"),
    )
    .unwrap();
    assert_eq!(img.id, sha(&raw));
    assert_eq!(d.document["rootfs"]["type"], "layers");
    assert_eq!(d.document["os"], "linux");
    assert_eq!(d.document["comment"], "Imported from -");
    assert_eq!(d.document["config"]["Cmd"], serde_json::Value::Null);

    let l = &img.layers[0];
    let tool = std::fs::metadata(l.join("bin/tool")).unwrap();
    assert_eq!(
        std::fs::read_to_string(l.join("bin/tool")).unwrap(),
        "#!/bin/sh\necho hi\n"
    );
    assert_eq!(
        std::fs::read_link(l.join("bin/alias")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(
        std::fs::metadata(l.join("bin/hard")).unwrap().ino(),
        tool.ino()
    );
    assert_eq!(
        std::fs::metadata(l.join("secret"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o700
    );
    assert_eq!(
        std::fs::read_to_string(l.join("etc/hostname")).unwrap(),
        "box\n"
    );
    assert_eq!(tool.mtime(), 1_600_000_000);
    if is_root() {
        assert_eq!((tool.uid(), tool.gid()), (1000, 1001));
        assert_eq!(tool.permissions().mode() & 0o7777, 0o4755);
        let null = std::fs::metadata(l.join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), libc::makedev(1, 3));
        assert!(std::fs::metadata(l.join("run/pipe"))
            .unwrap()
            .file_type()
            .is_fifo());
    }
}

#[test]
fn gzip_imports_share_the_layer_and_untagged_imports_have_no_tags() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let tar = rootfs();
    let a = s.import(&mut tar.as_slice(), Some("a"), &[]).unwrap();
    let b = s.import(&mut gzip(&tar).as_slice(), None, &[]).unwrap();
    assert_eq!(a.layers, b.layers);
    assert!(b.repo_tags.is_empty());
    assert_eq!(layer_dirs(&dir), [&sha(&tar)[7..]]);
    assert_eq!(s.list().len(), 2);
}

#[test]
fn import_applies_changes_and_refuses_bad_ones_without_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let tar = rootfs();
    let changes: Vec<String> = [
        "CMD [\"sh\"]",
        "ENV A=1",
        "WORKDIR /srv",
        "EXPOSE 80",
        "USER nobody",
        "LABEL k=v",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    let img = s
        .import_with_message(&mut tar.as_slice(), Some("x:y"), &changes, "hello")
        .unwrap();
    let c = &img.config;
    assert_eq!(c.cmd.as_deref(), Some(&["sh".to_string()][..]));
    assert_eq!(c.env, ["A=1"]);
    assert_eq!(c.working_dir, "/srv");
    assert_eq!(c.user, "nobody");
    assert!(c.exposed_ports.contains_key("80/tcp"));
    assert_eq!(c.labels["k"], "v");
    assert_eq!(s.inspect("x:y").unwrap().document["comment"], "hello");

    let err = s
        .import(&mut tar.as_slice(), Some("z"), &["RUN true".to_string()])
        .unwrap_err();
    assert_eq!(err.message, "run is not a valid change command");
    assert_eq!(err.kind, crate::ErrorKind::InvalidParameter);
    assert!(s.resolve("z").is_err());
}

#[test]
fn a_moved_tag_leaves_the_old_image_dangling() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let old = s
        .import(&mut rootfs().as_slice(), Some("app"), &[])
        .unwrap();
    let new = s
        .import(
            &mut Tar::new().file("f", b"1").bytes().as_slice(),
            Some("app:latest"),
            &[],
        )
        .unwrap();
    assert_ne!(old.id, new.id);
    assert_eq!(s.resolve("app").unwrap().id, new.id);
    let dangling = s.list().into_iter().find(|i| i.id == old.id).unwrap();
    assert!(dangling.repo_tags.is_empty());
}

#[test]
fn references_resolve_by_name_full_id_and_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let img = s
        .import(&mut rootfs().as_slice(), Some("library/app"), &[])
        .unwrap();
    let hex = &img.id[7..];
    for r in [
        "app",
        "app:latest",
        "docker.io/library/app",
        &img.id,
        hex,
        &hex[..5],
        &format!("sha256:{}", &hex[..12]),
    ] {
        assert_eq!(s.resolve(r).unwrap().id, img.id, "{r}");
    }
    let e = s.resolve("busybox").unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (crate::ErrorKind::NotFound, "No such image: busybox:latest")
    );
    assert_eq!(
        s.resolve("docker.io/library/nope:1").unwrap_err().message,
        "No such image: nope:1"
    );
    assert_eq!(
        s.resolve(&"0".repeat(64)).unwrap_err().kind,
        crate::ErrorKind::NotFound
    );
    assert_eq!(
        s.resolve("Bad").unwrap_err().kind,
        crate::ErrorKind::InvalidParameter
    );
}

#[test]
fn whiteouts_become_overlayfs_whiteouts() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let tar = Tar::new()
        .file(".wh.gone", b"")
        .dir("etc/", 0o755)
        .file("etc/.wh..wh..opq", b"")
        .file("etc/new", b"n")
        .file(".wh..wh.plnk", b"")
        .bytes();
    let img = s.import(&mut tar.as_slice(), None, &[]).unwrap();
    let l = &img.layers[0];
    let gone = std::fs::symlink_metadata(l.join("gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert!(!l.join(".wh.gone").exists() && !l.join("etc/.wh..wh..opq").exists());
    assert!(!l.join(".wh..wh.plnk").exists());
    let mut buf = [0u8; 8];
    let n = rustix::fs::lgetxattr(l.join("etc"), "trusted.overlay.opaque", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"y");
}

#[test]
fn path_traversal_is_refused_and_nothing_is_left() {
    let outside = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let evil = Tar::new().file("ok", b"1").file("../escaped", b"x").bytes();
    let e = s
        .import(&mut evil.as_slice(), Some("evil"), &[])
        .unwrap_err();
    assert_eq!(e.kind, crate::ErrorKind::InvalidParameter);
    assert!(e.message.contains("escapes"), "{}", e.message);
    assert!(layer_dirs(&dir).is_empty());
    assert!(!dir.path().join("escaped").exists());

    let hard = Tar::new()
        .link(tar::EntryType::Link, "h", "../../etc/passwd")
        .bytes();
    assert!(s.import(&mut hard.as_slice(), None, &[]).is_err());

    // a symlink pointing out is followed as if the layer were `/`
    let target = outside.path().join("victim");
    let sneaky = Tar::new()
        .link(
            tar::EntryType::Symlink,
            "out",
            outside.path().to_str().unwrap(),
        )
        .file("out/victim", b"x")
        .link(tar::EntryType::Symlink, "up", "../../../..")
        .file("up/also", b"y")
        .bytes();
    let img = s.import(&mut sneaky.as_slice(), None, &[]).unwrap();
    assert!(!target.exists());
    let l = &img.layers[0];
    assert!(l
        .join(outside.path().strip_prefix("/").unwrap())
        .join("victim")
        .is_file());
    assert!(l.join("also").is_file());
    assert!(s.import(&mut b"this is not a tar archive, just some text that is long enough to fill a header block perhaps".repeat(8).as_slice(), None, &[]).is_err());
}

fn never(_: &str) -> Option<String> {
    None
}

#[test]
fn remove_untags_then_deletes_with_docker_messages() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let tar = rootfs();
    let img = s.import(&mut tar.as_slice(), Some("a"), &[]).unwrap();
    s.tag("a", "b:2").unwrap();
    let short = &img.id[7..19];
    let e = s.remove(&img.id[7..19], false, &never).unwrap_err();
    assert_eq!(e.kind, crate::ErrorKind::Conflict);
    assert_eq!(
        e.message,
        format!("conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories")
    );
    assert_eq!(
        s.remove("a", false, &never).unwrap(),
        [("Untagged".to_string(), "a:latest".to_string())]
    );
    let r = s.remove("b:2", false, &never).unwrap();
    assert_eq!(
        r,
        [
            ("Untagged".to_string(), "b:2".to_string()),
            ("Deleted".to_string(), img.id.clone()),
            ("Deleted".to_string(), sha(&tar)),
        ]
    );
    assert!(layer_dirs(&dir).is_empty());
    assert_eq!(
        s.remove("a", false, &never).unwrap_err().message,
        "No such image: a:latest"
    );

    // forced removal by id untags every tag
    let img = s.import(&mut tar.as_slice(), Some("a"), &[]).unwrap();
    s.tag(&img.id, "c").unwrap();
    let r = s.remove(&img.id, true, &never).unwrap();
    assert_eq!(r.len(), 4);
    assert!(s.list().is_empty());
}

#[test]
fn images_in_use_keep_their_layers() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let img = s
        .import(&mut rootfs().as_slice(), Some("busybox"), &[])
        .unwrap();
    let cid = "c0ffee".repeat(10) + "abcd";
    let used = |id: &str| (id == img.id).then(|| cid.clone());
    let e = s.remove("busybox", false, &used).unwrap_err();
    assert_eq!(
        e.message,
        format!(
            "conflict: unable to remove repository reference \"busybox\" (must force) - container {} is using its referenced image {}",
            &cid[..12],
            &img.id[7..19]
        )
    );
    let e = s.remove(&img.id, true, &used).unwrap_err();
    assert_eq!(
        e.message,
        format!(
            "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
            &img.id[7..19],
            &cid[..12]
        )
    );
    let r = s.remove("busybox", true, &used).unwrap();
    assert_eq!(r, [("Untagged".to_string(), "busybox:latest".to_string())]);
    assert!(s.resolve(&img.id).unwrap().layers[0].is_dir());
}

#[test]
fn shared_layers_outlive_one_of_their_images() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let tar = rootfs();
    let a = s.import(&mut tar.as_slice(), Some("a"), &[]).unwrap();
    let b = s
        .import(&mut tar.as_slice(), Some("b"), &["CMD [\"x\"]".to_string()])
        .unwrap();
    let r = s.remove("a", false, &never).unwrap();
    // the layer's chain id is still b's: only the image is reported deleted
    assert_eq!(r.len(), 2);
    assert!(b.layers[0].is_dir());
    assert_eq!(a.layers, b.layers);
}

#[test]
fn the_store_survives_a_restart_and_sweeps_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let img = {
        let s = store(&dir);
        s.import(&mut rootfs().as_slice(), Some("keep"), &[])
            .unwrap()
    };
    std::fs::create_dir_all(dir.path().join("layers/.tmp-0123")).unwrap();
    std::fs::create_dir_all(dir.path().join("layers").join("ab".repeat(32))).unwrap();
    std::fs::create_dir_all(dir.path().join("images/.tmp-77")).unwrap();
    let s = store(&dir);
    let again = s.resolve("keep").unwrap();
    assert_eq!((again.id, again.size), (img.id, img.size));
    assert_eq!(layer_dirs(&dir).len(), 1);
    assert!(!dir.path().join("images/.tmp-77").exists());
}

#[test]
fn busybox_is_built_from_the_host_binary_on_first_use() {
    let bin = Path::new("/bin/busybox");
    if !bin.exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = ImageStore::open(dir.path(), Some(bin.to_path_buf())).unwrap();
    assert!(s.list().is_empty());
    let img = s.resolve("docker.io/library/busybox").unwrap();
    assert_eq!(img.repo_tags, ["busybox:latest"]);
    assert_eq!(img.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
    assert_eq!(
        img.config.env,
        ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    );
    let l = &img.layers[0];
    for applet in ["sh", "ping", "nslookup", "ls"] {
        assert_eq!(
            std::fs::read_link(l.join("bin").join(applet)).unwrap(),
            Path::new("busybox"),
            "{applet}"
        );
    }
    assert!(std::fs::metadata(l.join("bin/busybox")).unwrap().len() > 100_000);
    assert!(std::fs::read_to_string(l.join("etc/passwd"))
        .unwrap()
        .starts_with("root:x:0:0:root:/root:/bin/sh\n"));
    assert!(std::fs::read_to_string(l.join("etc/group"))
        .unwrap()
        .contains("root:x:0:"));
    assert_eq!(
        std::fs::metadata(l.join("tmp"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o1777
    );
    for d in [
        "proc", "sys", "dev", "root", "var", "home", "usr/bin", "usr/sbin", "sbin",
    ] {
        assert!(l.join(d).is_dir(), "{d}");
    }
    assert_eq!(s.list().len(), 1);
    assert_eq!(s.resolve("busybox:latest").unwrap().id, img.id);

    // the same binary gives the same image anywhere
    let dir2 = tempfile::tempdir().unwrap();
    let s2 = ImageStore::open(dir2.path(), Some(bin.to_path_buf())).unwrap();
    assert_eq!(s2.resolve("busybox").unwrap().id, img.id);
    // other tags are not built in
    assert_eq!(
        s2.resolve("busybox:1.36").unwrap_err().kind,
        crate::ErrorKind::NotFound
    );
}

#[test]
fn list_filters_by_dangling_reference_label_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let f = |k: &str, v: &str| berth_api::Filters::from([(k.to_string(), vec![v.to_string()])]);
    let a = s
        .import(
            &mut rootfs().as_slice(),
            Some("app:1"),
            &["LABEL tier=web".to_string()],
        )
        .unwrap();
    s.tag("app:1", "other:2").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let b = s
        .import(&mut Tar::new().file("x", b"").bytes().as_slice(), None, &[])
        .unwrap();
    let ids = |v: Vec<Image>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_filtered(&Default::default()).unwrap()),
        [b.id.as_str(), a.id.as_str()]
    );
    assert_eq!(
        ids(s.list_filtered(&f("dangling", "true")).unwrap()),
        [b.id.as_str()]
    );
    assert_eq!(
        ids(s.list_filtered(&f("dangling", "false")).unwrap()),
        [a.id.as_str()]
    );
    let narrowed = s.list_filtered(&f("reference", "app")).unwrap();
    assert_eq!(narrowed[0].repo_tags, ["app:1"]);
    assert!(s
        .list_filtered(&f("reference", "nothing*"))
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(s.list_filtered(&f("label", "tier=web")).unwrap()),
        [a.id.as_str()]
    );
    assert_eq!(
        ids(s.list_filtered(&f("label", "tier")).unwrap()),
        [a.id.as_str()]
    );
    assert_eq!(
        ids(s.list_filtered(&f("since", "app:1")).unwrap()),
        [b.id.as_str()]
    );
    assert_eq!(
        ids(s.list_filtered(&f("before", &b.id)).unwrap()),
        [a.id.as_str()]
    );
    assert_eq!(
        s.list_filtered(&f("bogus", "1")).unwrap_err().message,
        "invalid filter 'bogus'"
    );
    assert!(s.list_filtered(&f("dangling", "maybe")).is_err());
}
