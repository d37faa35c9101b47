//! `GET /berth/v1/diagnose` from a test, and the parts of its report the tests read.

use crate::Lab;
use serde_json::Value;

/// The report of `from → to` (`probe`: with real traffic), as JSON; the call must succeed.
pub fn diag(lab: &Lab, from: &str, to: &str, probe: bool) -> Value {
    let q = |s: &str| s.replace('/', "%2F").replace(':', "%3A");
    let (code, v) = lab.api(
        "GET",
        &format!(
            "/berth/v1/diagnose?from={}&to={}&probe={probe}",
            q(from),
            q(to)
        ),
        None,
    );
    assert_eq!(code, 200, "{v}");
    v
}

/// The report's lines of one kind (`path`, `kernel`, `fix`, …; `""`: the verdict's), joined.
pub fn lines(v: &Value, kind: &str) -> String {
    v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == kind)
        .map(|l| l["text"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The whole report, for assertion messages.
pub fn all(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap()
}
