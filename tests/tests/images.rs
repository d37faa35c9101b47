//! Images brought without a registry (`import`), run as containers (issue 3).

use berth_e2e::Lab;
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn imported_image_runs_with_its_changes() {
    let lab = Lab::start();
    // A root filesystem of the static busybox and two applet links, as a tar on stdin.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    for a in ["sh", "echo", "cat"] {
        std::os::unix::fs::symlink("busybox", bin.join(a)).unwrap();
    }
    let tar = Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(tar.status.success());
    let mut child = Command::new(berth_e2e::berth_bin())
        .args([
            "-H",
            &lab.host_uri(),
            "import",
            "--change",
            r#"CMD ["sh", "-c", "echo imported $GREETING"]"#,
        ])
        .args(["--change", "ENV GREETING=hello", "-", "mini:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    let images = lab.cli(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        String::from_utf8_lossy(&images.stdout).contains("mini:1"),
        "{images:?}"
    );

    let run = lab.cli(&["run", "--rm", "mini:1"]);
    assert!(run.status.success(), "{run:?}");
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "imported hello"
    );
    // The same image through the docker CLI, with the command overridden.
    let run = lab.docker(&["run", "--rm", "mini:1", "cat", "/bin/../bin/sh"]);
    assert!(run.status.success(), "{run:?}");

    let missing = lab.docker(&["run", "--rm", "nosuchimage"]);
    assert!(!missing.status.success());
    let rmi = lab.cli(&["rmi", "mini:1"]);
    assert!(rmi.status.success(), "{rmi:?}");
    assert!(
        String::from_utf8_lossy(&rmi.stdout).contains("Untagged: mini:1"),
        "{rmi:?}"
    );
}
