//! docker-py's own integration suite (tag 7.2.0, `../shared/vendor/docker-py-tests`, never
//! edited) run against a lab's berthd, and compared with a checked-in list of the tests
//! expected not to pass (`tests/docker-py-expected.txt`, each with its reason).
//!
//! The venv comes from `.ci/install` (`/opt/berth-dockerpy`, or `$DOCKER_PY_PYTHON`); the
//! suite from `$DOCKER_PY_TESTS` or the shared vendor folder. Missing either is a failure,
//! never a skip. `$DOCKER_PY_LOG_DIR` keeps pytest's whole report of each file there.

use crate::lab::Lab;
use crate::{run, OutputExt};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How one test of the suite ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

/// `$DOCKER_PY_PYTHON`, else the venv `.ci/install` makes.
pub fn python() -> PathBuf {
    let p = std::env::var_os("DOCKER_PY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/berth-dockerpy/bin/python"));
    assert!(
        p.is_file(),
        "docker-py's venv not found at {} (run .ci/install, or point DOCKER_PY_PYTHON at it)",
        p.display()
    );
    p
}

/// `$DOCKER_PY_TESTS`, else `<repo>/../shared/vendor/docker-py-tests`.
pub fn suite_dir() -> PathBuf {
    let p = std::env::var_os("DOCKER_PY_TESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vendor/docker-py-tests")
        });
    assert!(
        p.join("tests/integration").is_dir(),
        "docker-py's suite not found at {} (point DOCKER_PY_TESTS at it)",
        p.display()
    );
    p
}

/// The checked-in list: `file.py::Class::test` → reason. Lines are `ID<TAB or spaces>REASON`;
/// `#` starts a comment. Every entry must have a reason.
pub fn expected_failures() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docker-py-expected.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, reason) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        assert!(
            !reason.trim().is_empty(),
            "{}:{}: {id} has no reason",
            path.display(),
            n + 1
        );
        out.insert(id.to_string(), reason.trim().to_string());
    }
    out
}

/// Makes the images the suite asks for: the built-in busybox tagged `alpine:3.10` and
/// `alpine:latest` (the suite only runs shell tools busybox has).
pub fn tag_images(lab: &Lab) {
    // creating a container builds the built-in busybox image on first use
    let (st, v) = lab.api(
        "POST",
        "/containers/create",
        Some(serde_json::json!({"Image": "busybox", "Cmd": ["true"]})),
    );
    assert_eq!(st, 201, "create busybox container: {v}");
    let id = v["Id"].as_str().unwrap().to_string();
    let (st, v) = lab.api("DELETE", &format!("/containers/{id}"), None);
    assert_eq!(st, 204, "remove: {v}");
    for tag in ["3.10", "latest"] {
        let (st, v) = lab.api(
            "POST",
            &format!("/images/busybox/tag?repo=alpine&tag={tag}"),
            None,
        );
        assert_eq!(st, 201, "tag alpine:{tag}: {v}");
    }
}

/// The pytest outcomes of one file against a lab's berthd: `file.py::Class::test` → outcome.
pub fn run_file(lab: &Lab, file: &str, timeout: Duration) -> BTreeMap<String, Outcome> {
    run_file_on(&lab.host_uri(), lab.root(), file, timeout)
}

/// The same against any daemon (`host`: a `DOCKER_HOST`), with the suite copied into and its
/// reports written under `work`.
pub fn run_file_on(
    host: &str,
    work: &Path,
    file: &str,
    timeout: Duration,
) -> BTreeMap<String, Outcome> {
    let copy = work.join("docker-py");
    if !copy.exists() {
        let st = Command::new("cp")
            .arg("-r")
            .arg(suite_dir())
            .arg(&copy)
            .status()
            .unwrap();
        assert!(st.success(), "cp of the suite failed");
    }
    let junit = work.join(format!("{file}.xml"));
    let mut cmd = Command::new(python());
    cmd.current_dir(&copy)
        .env("DOCKER_HOST", host)
        .env_remove("DOCKER_TEST_API_VERSION")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env("DOCKER_CONFIG", work.join("docker-config"))
        .args(["-m", "pytest", "-p", "no:cacheprovider", "--timeout", "60"])
        .arg(format!("--junitxml={}", junit.display()))
        .arg(format!("tests/integration/{file}"));
    let out = run(&mut cmd, timeout);
    // pytest: 0 all passed, 1 some failed; anything else is a broken run
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "pytest on {file} did not run ({:?}):\n{}\n{}",
        out.status,
        out.out(),
        out.err()
    );
    let outcomes = parse_junit(&junit, file);
    eprintln!("{}", tail(&out.out(), 80));
    // the whole report, for working through the list
    if let Some(dir) = std::env::var_os("DOCKER_PY_LOG_DIR") {
        let p = Path::new(&dir).join(format!("{file}.log"));
        std::fs::write(&p, format!("{}{}", out.out(), out.err()))
            .unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
    }
    outcomes
}

/// Reads pytest's JUnit XML with Python's own parser (the venv has it; no XML crate needed).
fn parse_junit(path: &Path, file: &str) -> BTreeMap<String, Outcome> {
    const SCRIPT: &str = r#"
import sys, xml.etree.ElementTree as ET
for tc in ET.parse(sys.argv[1]).iter('testcase'):
    cls = tc.get('classname').rsplit('.', 1)[-1]
    kinds = {c.tag for c in tc}
    o = 'failed' if kinds & {'failure', 'error'} else 'skipped' if 'skipped' in kinds else 'passed'
    print(o, cls + '::' + tc.get('name'))
"#;
    let out = run(
        Command::new(python()).args(["-c", SCRIPT]).arg(path),
        Duration::from_secs(30),
    )
    .ok();
    let mut m = BTreeMap::new();
    for line in out.lines() {
        let (o, id) = line.split_once(' ').unwrap();
        let o = match o {
            "passed" => Outcome::Passed,
            "skipped" => Outcome::Skipped,
            _ => Outcome::Failed,
        };
        // a test whose setup failed and teardown failed appears twice: the worst wins
        let e = m.entry(format!("{file}::{id}")).or_insert(o);
        if o == Outcome::Failed {
            *e = o;
        }
    }
    assert!(!m.is_empty(), "no test outcomes in {}", path.display());
    m
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs `file` and asserts that exactly the listed tests did not pass: a failure not on the
/// list fails the job, and so does a listed test that passes now (the list must stay honest),
/// unless its reason starts with "flaky".
pub fn check_file(file: &str, timeout: Duration) {
    let lab = Lab::start();
    tag_images(&lab);
    let outcomes = run_file(&lab, file, timeout);
    let expected = expected_failures();
    let prefix = format!("{file}::");
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    for (id, o) in &outcomes {
        // a reason starting with "flaky" accepts either outcome (a known race, to be fixed)
        let flaky = expected.get(id).is_some_and(|r| r.starts_with("flaky"));
        match (o, expected.contains_key(id)) {
            (Outcome::Failed, false) => unexpected.push(id.clone()),
            (Outcome::Passed, true) if !flaky => fixed.push(id.clone()),
            _ => {}
        }
    }
    let stale: Vec<&String> = expected
        .keys()
        .filter(|k| k.starts_with(&prefix) && !outcomes.contains_key(*k))
        .collect();
    let count = |want: Outcome| outcomes.values().filter(|o| **o == want).count();
    eprintln!(
        "{file}: {} passed, {} failed, {} skipped",
        count(Outcome::Passed),
        count(Outcome::Failed),
        count(Outcome::Skipped)
    );
    assert!(
        unexpected.is_empty() && fixed.is_empty() && stale.is_empty(),
        "{file}: failed but not on tests/docker-py-expected.txt: {unexpected:#?}\n\
         listed but passed now (remove them from the list): {fixed:#?}\n\
         listed but not in the suite: {stale:#?}\nberthd.log:\n{}",
        lab.log_tail(40)
    );
}
