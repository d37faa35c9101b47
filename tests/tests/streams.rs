//! Attach, exec, logs and wait through hijacked connections, with both CLIs (issue 3).

use berth_e2e::Lab;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `cli` is "docker" or "berth"; stdin is fed when given.
fn run(lab: &Lab, cli: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let Some(input) = stdin else {
        return if cli == "docker" {
            lab.docker(args)
        } else {
            lab.cli(args)
        };
    };
    let bin = if cli == "docker" {
        berth_e2e::docker_bin()
    } else {
        berth_e2e::berth_bin()
    };
    let mut child = Command::new(bin)
        .env("DOCKER_CONFIG", lab.root().join("docker-config"))
        .arg("-H")
        .arg(lab.host_uri())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    // A hung stream must fail the test, not the whole run.
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if rx.recv_timeout(berth_e2e::lab::CMD_TIMEOUT).is_err() {
            // SAFETY: kill takes no pointers.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = tx.send(());
    out
}

fn streams(lab: &Lab, cli: &str) {
    // Foreground run: stdout and stderr kept apart, the exit code passed on.
    let o = run(
        lab,
        cli,
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(3), "{cli}: {o:?}");
    assert_eq!(text(&o.stdout), "out\n", "{cli}");
    assert!(text(&o.stderr).contains("err\n"), "{cli}: {o:?}");
    // stdin through attach, closed at EOF.
    let o = run(
        lab,
        cli,
        &["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done"],
        Some(b"line1\nline2\n"),
    );
    assert!(o.status.success(), "{cli}: {o:?}");
    assert_eq!(text(&o.stdout), "line1\nline2\ndone\n", "{cli}");
    // exec with stdin, stdout, stderr and an exit code.
    let name = format!("s-{cli}");
    assert!(run(
        lab,
        cli,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "busybox",
            "sh",
            "-c",
            "echo started; sleep 600"
        ],
        None
    )
    .status
    .success());
    let o = run(
        lab,
        cli,
        &[
            "exec",
            "-i",
            &name,
            "sh",
            "-c",
            "read x; echo got $x; echo e >&2; exit 7",
        ],
        Some(b"abc\n"),
    );
    assert_eq!(o.status.code(), Some(7), "{cli}: {o:?}");
    assert_eq!(text(&o.stdout), "got abc\n", "{cli}");
    assert!(text(&o.stderr).contains("e\n"), "{cli}: {o:?}");
    // A command that does not exist: 127 as from a shell, the reason on stderr or stdout.
    let o = run(lab, cli, &["exec", &name, "nosuchcommand"], None);
    assert_eq!(o.status.code(), Some(127), "{cli}: {o:?}");
    // logs and wait.
    let o = run(lab, cli, &["logs", &name], None);
    assert_eq!(text(&o.stdout), "started\n", "{cli}: {o:?}");
    assert!(run(lab, cli, &["kill", &name], None).status.success());
    let o = run(lab, cli, &["wait", &name], None);
    assert_eq!(text(&o.stdout).trim(), "137", "{cli}: {o:?}");
    let o = run(
        lab,
        cli,
        &[
            "ps",
            "-a",
            "--filter",
            &format!("name={name}"),
            "--format",
            "{{.Status}}",
        ],
        None,
    );
    assert!(text(&o.stdout).starts_with("Exited (137)"), "{cli}: {o:?}");
    assert!(run(lab, cli, &["rm", &name], None).status.success());
    // A terminal's output is complete when `run -t` returns (the console is drained first).
    let o = run(
        lab,
        cli,
        &[
            "run",
            "--rm",
            "-t",
            "busybox",
            "sh",
            "-c",
            "seq 1 2000 | tail -1",
        ],
        None,
    );
    assert!(o.status.success(), "{cli}: {o:?}");
    assert_eq!(text(&o.stdout).trim(), "2000", "{cli}");
    // Errors in Docker's words.
    let o = run(lab, cli, &["exec", "nosuch", "true"], None);
    assert!(
        text(&o.stderr).contains("No such container: nosuch"),
        "{cli}: {o:?}"
    );
}

#[test]
fn streams_with_docker_cli() {
    let lab = Lab::start();
    streams(&lab, "docker");
}

#[test]
fn streams_with_berth_cli() {
    let lab = Lab::start();
    streams(&lab, "berth");
}
