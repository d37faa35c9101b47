//! Input the process never reads: the stream still ends cleanly. berthd closed the hijacked
//! connection with the client's bytes unread in it, which made the client's last read fail
//! with "connection reset by peer" after the output (`echo x | compose exec -T svc nc …`).

use berth_e2e::lab::{berth_bin, docker_bin};
use berth_e2e::{ok, Lab};
use std::process::Command;

/// `head -c 300000 /dev/zero | <client> -H <sock> <args>`: (status code, stdout, stderr).
fn piped(lab: &Lab, client: &std::path::Path, args: &str) -> (Option<i32>, String, String) {
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c 300000 /dev/zero | {} -H {} {args}",
            client.display(),
            lab.host_uri()
        ))
        .env("DOCKER_CONFIG", lab.root().join("docker-config"))
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn unread_input_ends_exec_and_attach_cleanly() {
    let lab = Lab::start();
    ok(
        &lab.cli(&["run", "-d", "--name", "sink", "busybox", "sleep", "1d"]),
        "run",
    );
    for client in [berth_bin(), docker_bin()] {
        for _ in 0..5 {
            let (code, out, err) = piped(&lab, &client, "exec -i sink sh -c 'echo hi; exit 3'");
            assert_eq!(
                (code, out.as_str(), err.as_str()),
                (Some(3), "hi\n", ""),
                "exec with {}",
                client.display()
            );
            let (code, out, err) = piped(&lab, &client, "run -i --rm busybox sh -c 'echo hi'");
            assert_eq!(
                (code, out.as_str(), err.as_str()),
                (Some(0), "hi\n", ""),
                "run -i with {}",
                client.display()
            );
        }
    }
}
