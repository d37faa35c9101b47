//! Property tests: `--format` templates and `-p` specs from any text end in a value or an
//! error, never a panic or a hang. Bounded (a few hundred cases each) to run in seconds.

use super::template::Template;
use crate::cmd::container::ports;
use proptest::prelude::*;
use serde_json::json;

fn config() -> ProptestConfig {
    ProptestConfig {
        // PROPTEST_CASES=N for a longer campaign than CI's
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text made of template syntax more often than not.
fn template_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{{".to_string()),
        Just("}}".to_string()),
        Just("{{-".to_string()),
        Just(" -}}".to_string()),
        Just(".Name".to_string()),
        Just(".Config.Env".to_string()),
        Just("range ".to_string()),
        Just("if ".to_string()),
        Just("else".to_string()),
        Just("end".to_string()),
        Just("with ".to_string()),
        Just("json ".to_string()),
        Just("index ".to_string()),
        Just("printf \"%s %d %v %q\" ".to_string()),
        Just("define \"a\"".to_string()),
        Just("template \"a\" .".to_string()),
        Just("$x := ".to_string()),
        Just("$x".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("|".to_string()),
        Just(" ".to_string()),
        Just("\"".to_string()),
        Just("`".to_string()),
        Just("1".to_string()),
        Just("-1".to_string()),
        "[a-zA-Z0-9 .,:{}()$|\"'\\\\-]{0,6}",
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn templates_parse_and_run_without_panic(src in template_text()) {
        let data = json!({
            "Name": "/web",
            "Config": {"Env": ["A=1", "B=2"], "Labels": {"x": "y"}},
            "List": [1, 2, [3, {"k": null}]],
        });
        if let Ok(t) = Template::parse(&src) {
            let _ = t.execute(&data);
        }
    }

    #[test]
    fn port_specs_parse_without_panic(spec in "[0-9a-f:.\\[\\]/-]{0,40}|(([0-9.]{0,15}:)?[0-9]{0,6}(-[0-9]{0,6})?:)?[0-9]{0,6}(-[0-9]{0,6})?(/(tcp|udp|sctp|x))?") {
        if let Ok(bindings) = ports::parse_spec(&spec) {
            // a range expands to at most one binding per port
            prop_assert!(bindings.len() <= 65536);
        }
        let _ = ports::parse_range(&spec);
    }
}

#[test]
fn deeply_nested_pipelines_are_refused_not_a_stack_overflow() {
    let deep = format!("{{{{{}1{}}}}}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(Template::parse(&deep).is_err());
}
