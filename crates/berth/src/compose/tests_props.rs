//! Property tests: compose files and interpolation from any text end in a project or an
//! error, never a panic; bounded to run in seconds.

use super::interpolate::{parse_dotenv, substitute, Env};
use super::load::from_texts;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

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

/// YAML made of compose keys, indentation, anchors and flow syntax more often than not.
fn compose_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\n".to_string()),
        Just("  ".to_string()),
        Just("services:".to_string()),
        Just("networks:".to_string()),
        Just("web:".to_string()),
        Just("image: busybox".to_string()),
        Just("ports: [\"80:80\", 53/udp]".to_string()),
        Just("environment:".to_string()),
        Just("- A=${X:-d}".to_string()),
        Just("depends_on: [db]".to_string()),
        Just("networks: {front: {aliases: [a]}}".to_string()),
        Just("version: \"3.8\"".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("<<: *a".to_string()),
        Just("- ".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("$$".to_string()),
        Just("${".to_string()),
        Just("!!str ".to_string()),
        "[a-z0-9:_ ./${}\\[\\]-]{0,8}",
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn env() -> Env {
    Env::new(
        BTreeMap::new(),
        [("X", "1"), ("EMPTY", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn compose_files_load_without_panic(text in compose_text()) {
        let files = vec![("docker-compose.yml".to_string(), text)];
        let _ = from_texts(&files, Path::new("/srv/app"), None, env());
    }

    #[test]
    fn interpolation_never_panics(s in "([$]{1,2}|[{}]|:-|:\\?|-|\\?|[A-Z_]{1,3}|[a-z ]{1,3}){0,20}") {
        let _ = substitute(&s, &env(), &mut |_| {});
    }

    #[test]
    fn dotenv_never_panics(s in "([A-Z_]{1,4}|=|\"|'|#|\\\\|\n|[a-z ]{1,4}|export ){0,20}") {
        let _ = parse_dotenv(&s);
    }
}
