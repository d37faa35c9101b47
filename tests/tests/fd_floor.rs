//! berthd must survive holding more than 1,024 descriptors: libnftables, which it uses inside
//! every new sandbox, waits with `select()`, and glibc aborts the process on a descriptor
//! numbered 1,024 or more. berthd keeps what it holds long (port sockets, DNS sockets, pidfds,
//! output pipes) above that range, so the low numbers stay free for libnftables.

use berth_e2e::{ok, Lab};

fn fds(pid: u32) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

#[test]
fn thousands_of_held_descriptors_leave_the_select_range_free() {
    let lab = Lab::start();
    let pid = lab.pid().expect("berthd pid");
    ok(&lab.cli(&["network", "create", "fdnet"]), "network create");
    // 1,500 published ports: 1,500 held sockets
    ok(
        &lab.cli(&[
            "run",
            "-d",
            "--net",
            "fdnet",
            "--name",
            "wide",
            "-p",
            "20000-21499:20000-21499",
            "busybox",
            "sleep",
            "1d",
        ]),
        "run with 1,500 ports",
    );
    // past a few ports, the rest are held in the background after the start answers
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut held = fds(pid);
    while held.len() <= 1500 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        held = fds(pid);
    }
    assert!(held.len() > 1500, "berthd holds {} fds", held.len());
    let low = held.iter().filter(|&&n| n < 1024).count();
    assert!(
        low < 200,
        "{low} of berthd's {} fds are below 1024",
        held.len()
    );
    // a new sandbox (libnftables inside it for the DNS redirect) and its DNS still work
    for i in 0..5 {
        ok(
            &lab.cli(&[
                "run",
                "-d",
                "--net",
                "fdnet",
                "--name",
                &format!("after{i}"),
                "busybox",
                "sleep",
                "1d",
            ]),
            "run after",
        );
    }
    let out = ok(
        &lab.cli(&["exec", "after4", "nslookup", "wide"]),
        "the embedded DNS answers",
    );
    assert!(out.contains("Address"), "{out}");
    assert_eq!(lab.api("GET", "/_ping", None).0, 200, "berthd is alive");
}
