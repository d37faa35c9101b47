//! Property tests of extraction: archives made of hostile names (`..`, whiteouts of `.` and
//! `..`, links out, absolute paths) never write outside their layer, never panic, and leave
//! no temporary layer when refused. Bounded to run in seconds.

use super::tests::{layer_dirs, store, Tar};
use proptest::prelude::*;
use std::os::unix::fs::PermissionsExt;
use tar::EntryType;

#[derive(Debug, Clone)]
enum Entry {
    Dir(String, u32),
    File(String),
    Symlink(String, String),
    Hardlink(String, String),
    Fifo(String),
}

fn name() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        Just("a"),
        Just("b"),
        Just(".."),
        Just("."),
        Just(".wh.a"),
        Just(".wh.."),
        Just(".wh..."),
        Just(".wh..wh..opq"),
        Just(".wh..wh.plnk"),
        Just(""),
    ];
    (any::<bool>(), proptest::collection::vec(part, 1..4)).prop_map(|(abs, parts)| {
        let p = parts.join("/");
        if abs {
            format!("/{p}")
        } else {
            p
        }
    })
}

/// Link targets: names as above, or the directory outside (`OUT`, filled in per case).
fn target() -> impl Strategy<Value = String> {
    prop_oneof![name(), Just("OUT".to_string()), Just("OUT/x".to_string())]
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        (
            name(),
            prop_oneof![Just(0o755u32), Just(0o777), Just(0o000)]
        )
            .prop_map(|(n, m)| Entry::Dir(n, m)),
        name().prop_map(Entry::File),
        (name(), target()).prop_map(|(n, t)| Entry::Symlink(n, t)),
        (name(), target()).prop_map(|(n, t)| Entry::Hardlink(n, t)),
        name().prop_map(Entry::Fifo),
    ]
}

fn build(entries: &[Entry], out: &str) -> Vec<u8> {
    let fill = |t: &str| t.replace("OUT", out);
    let mut t = Tar::new();
    for e in entries {
        t = match e {
            Entry::Dir(n, m) => t.dir(n, *m),
            Entry::File(n) => t.file(n, b"x"),
            Entry::Symlink(n, to) => t.link(EntryType::Symlink, n, &fill(to)),
            Entry::Hardlink(n, to) => t.link(EntryType::Link, n, &fill(to)),
            Entry::Fifo(n) => t.device(EntryType::Fifo, n, 0, 0),
        };
    }
    t.bytes()
}

fn snapshot(dir: &std::path::Path) -> Vec<(String, u32)> {
    let mut v = vec![(
        String::new(),
        std::fs::metadata(dir).unwrap().permissions().mode(),
    )];
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        v.push((
            e.file_name().to_string_lossy().into_owned(),
            m.permissions().mode(),
        ));
    }
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES=N for a longer campaign than CI's
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn nothing_escapes_the_layer(entries in proptest::collection::vec(entry(), 1..8)) {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("x"), b"keep").unwrap();
        std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let before = snapshot(outside.path());
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        let tar = build(&entries, outside.path().to_str().unwrap());
        match s.import(&mut tar.as_slice(), None, &[]) {
            Ok(img) => prop_assert!(img.layers[0].starts_with(dir.path())),
            Err(e) => {
                prop_assert!(layer_dirs(&dir).is_empty(), "{}: {:?}", e.message, layer_dirs(&dir));
            }
        }
        prop_assert_eq!(snapshot(outside.path()), before);
        prop_assert_eq!(std::fs::read(outside.path().join("x")).unwrap(), b"keep");
        prop_assert!(!layer_dirs(&dir).iter().any(|d| d.contains(".tmp-")));
    }

    #[test]
    fn any_bytes_are_an_error_or_an_image(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        if s.import(&mut bytes.as_slice(), None, &[]).is_err() {
            prop_assert!(layer_dirs(&dir).is_empty());
        }
    }
}
