//! End-to-end test harness for berth.
//!
//! Every test builds a [`Lab`]: a private network namespace (`berthlab-<pid>-<n>`) with its own
//! `berthd`, temp data/exec roots and API socket. Tests talk to it over the Engine API
//! ([`Lab::api`]), through the `berth` CLI ([`Lab::cli`]) and the real docker CLI
//! ([`Lab::docker`]), and check the kernel with `ip -j` and `nft -j` run inside the namespace.
//! Nothing touches the machine's own namespace. Multi-host tests (overlays) build a
//! [`cluster::Cluster`]: several lab hosts on an underlay bridge, with a real etcd.
//!
//! The tests run the real binaries, so build them first (as root):
//!
//! ```text
//! cargo build --workspace && cargo nextest run --workspace
//! ```
//!
//! `BERTHD_BIN`, `BERTH_BIN`, `DOCKER_BIN` override the binaries; `BERTH_E2E_LOG_LEVEL` sets the
//! daemon's `--log-level` (default `debug`); `BERTH_E2E_KEEP=1` keeps a failed lab's temp dir.

pub mod cluster;
pub mod compose;
pub mod diag;
pub mod dns;
pub mod dockerpy;
pub mod http;
pub mod invariants;
pub mod lab;
pub mod net;
pub mod nft;
pub mod plug;

pub use lab::{berth_bin, berthd_bin, docker_bin, Lab, Snapshot};

use serde_json::Value;
use std::io::Read;
use std::net::Ipv4Addr;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs a command with captured stdout/stderr; kills it after `timeout` (then panics).
/// The child gets SIGKILL when the thread that spawned it ends: a daemon, plugin or etcd
/// started by a test never outlives it, even when the test process is SIGKILLed.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls prctl, which is
    // async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out_pipe.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err_pipe.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// Asserts that a finished command succeeded (showing its output if not); its stdout, trimmed.
pub fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Asserts that a finished command failed; its stdout and stderr.
pub fn fails(o: &Output) -> String {
    assert!(!o.status.success(), "expected a failure");
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs a command that must succeed; returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd, lab::CMD_TIMEOUT);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Conveniences on a command's [`Output`].
pub trait OutputExt {
    /// Asserts exit status 0; returns stdout.
    fn ok(&self) -> String;
    /// Asserts a non-zero exit; returns stderr.
    fn fails(&self) -> String;
    fn code(&self) -> Option<i32>;
    fn out(&self) -> String;
    fn err(&self) -> String;
}

impl OutputExt for Output {
    fn ok(&self) -> String {
        assert!(
            self.status.success(),
            "command failed ({}):\nstdout: {}\nstderr: {}",
            self.status,
            stdout_of(self),
            stderr_of(self)
        );
        stdout_of(self)
    }
    fn fails(&self) -> String {
        assert!(
            !self.status.success(),
            "command succeeded but should have failed:\nstdout: {}\nstderr: {}",
            stdout_of(self),
            stderr_of(self)
        );
        stderr_of(self)
    }
    fn code(&self) -> Option<i32> {
        self.status.code()
    }
    fn out(&self) -> String {
        stdout_of(self)
    }
    fn err(&self) -> String {
        stderr_of(self)
    }
}

/// `{"message": "..."}` → the message (or the text body, or "" when none).
pub fn msg(v: &Value) -> String {
    match v {
        Value::Object(o) => o
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("")
            .to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    }
}

/// True if `s` is exactly `len` lowercase hex digits.
pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The bridge name of a user-defined network: `br-` + first 12 hex of the id.
pub fn bridge_name(id: &str) -> String {
    format!("br-{}", &id[..12])
}

/// Go's `text/tabwriter` as the docker CLI sets it up for tables
/// (`NewWriter(out, 10, 1, 3, ' ', 0)`): each column but the last is padded to
/// `max(10, widest cell + 3)`; the last cell of a line is not padded.
pub fn tabwrite(rows: &[Vec<String>]) -> String {
    const MINWIDTH: usize = 10;
    const PADDING: usize = 3;
    let ncols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                widths[i] = widths[i].max(MINWIDTH).max(c.chars().count() + PADDING);
            }
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                out.push_str(&" ".repeat(widths[i] - c.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// True for Go's RFC3339Nano in UTC: `2026-11-23T07:14:06.167643676Z` (fraction optional).
pub fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || !s.ends_with('Z') {
        return false;
    }
    let shape = b"dddd-dd-ddTdd:dd:dd";
    for (i, c) in shape.iter().enumerate() {
        let ok = match c {
            b'd' => b[i].is_ascii_digit(),
            other => b[i] == *other,
        };
        if !ok {
            return false;
        }
    }
    let rest = &s[19..s.len() - 1];
    rest.is_empty()
        || (rest.starts_with('.')
            && (2..=10).contains(&rest.len())
            && rest[1..].bytes().all(|c| c.is_ascii_digit()))
}

/// True if one of the rendered nft elements (see [`nft::render`]) names `bridge` or `subnet`,
/// alone or as a part of a concatenation / map key or value.
pub fn set_has(elems: &[String], bridge: &str, subnet: &str) -> bool {
    elems.iter().any(|e| {
        e.split(" : ")
            .flat_map(|p| p.split(" . "))
            .any(|t| t == bridge || t == subnet)
    })
}

/// Parses an IPv4 CIDR `a.b.c.d/n` into (network address as u32, prefix length).
pub fn cidr4(s: &str) -> (u32, u8) {
    let (a, p) = s
        .split_once('/')
        .unwrap_or_else(|| panic!("{s:?} is not a CIDR"));
    let addr: Ipv4Addr = a.parse().unwrap_or_else(|_| panic!("{s:?} is not IPv4"));
    let p: u8 = p.parse().unwrap();
    let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
    (u32::from(addr) & mask, p)
}

/// True if two IPv4 CIDRs share any address.
pub fn overlaps4(a: &str, b: &str) -> bool {
    let (na, pa) = cidr4(a);
    let (nb, pb) = cidr4(b);
    let p = pa.min(pb);
    let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
    na & mask == nb & mask
}

/// `network create` with every IPAM flag, an option and a label: the same words for the berth
/// CLI and the docker CLI, which must produce the same network.
pub const FULL_CREATE_ARGS: &[&str] = &[
    "network",
    "create",
    "--subnet",
    "10.211.0.0/24",
    "--gateway",
    "10.211.0.1",
    "--ip-range",
    "10.211.0.0/25",
    "--aux-address",
    "a=10.211.0.200",
    "-o",
    "com.docker.network.bridge.name=rschbr0",
    "--label",
    "x=y",
    "rsch-cli1",
];

/// What `FULL_CREATE_ARGS` must have made, whichever CLI sent it.
pub fn assert_full_create(lab: &Lab, id_or_name: &str) {
    let n = lab.inspect(id_or_name);
    assert_eq!(n["Name"], "rsch-cli1");
    assert_eq!(
        n["IPAM"],
        serde_json::json!({"Driver": "default", "Options": {}, "Config": [{"Subnet": "10.211.0.0/24",
               "IPRange": "10.211.0.0/25", "Gateway": "10.211.0.1",
               "AuxiliaryAddresses": {"a": "10.211.0.200"}}]})
    );
    assert_eq!(
        n["Options"],
        serde_json::json!({"com.docker.network.bridge.name": "rschbr0"})
    );
    assert_eq!(n["Labels"], serde_json::json!({"x": "y"}));
    lab.assert_bridge_up("rschbr0");
    assert_eq!(lab.addrs("rschbr0"), ["10.211.0.1/24"]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabwriter_matches_docker_header() {
        let rows = vec![
            vec!["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
            vec!["0123456789ab", "bridge", "bridge", "local"],
            vec!["0123456789ac", "a-long-network-name", "null", "local"],
        ]
        .into_iter()
        .map(|r| r.into_iter().map(String::from).collect())
        .collect::<Vec<Vec<String>>>();
        let s = tabwrite(&rows[..2]);
        assert_eq!(
            s,
            "NETWORK ID     NAME      DRIVER    SCOPE\n0123456789ab   bridge    bridge    local\n"
        );
        let s = tabwrite(&rows);
        let header = format!("NETWORK ID     NAME{}DRIVER    SCOPE\n", " ".repeat(22 - 4));
        assert!(s.starts_with(&header), "{s}");
    }

    #[test]
    fn cidr_overlap() {
        assert!(overlaps4("172.18.0.0/16", "172.18.5.0/24"));
        assert!(overlaps4("172.18.5.0/24", "172.18.0.0/16"));
        assert!(!overlaps4("172.18.0.0/16", "172.19.0.0/16"));
        assert_eq!(
            cidr4("10.0.1.7/24"),
            (u32::from(Ipv4Addr::new(10, 0, 1, 0)), 24)
        );
    }

    #[test]
    fn rfc3339() {
        assert!(is_rfc3339_utc("2026-11-23T07:14:06.167643676Z"));
        assert!(is_rfc3339_utc("2026-11-23T07:14:06Z"));
        assert!(!is_rfc3339_utc("2026-11-23T07:14:06+01:00"));
        assert!(!is_rfc3339_utc("2026-11-23 07:14:06Z"));
    }

    #[test]
    fn hex() {
        assert!(is_hex("0123abcd", 8));
        assert!(!is_hex("0123ABCD", 8));
        assert!(!is_hex("0123", 8));
    }
}
