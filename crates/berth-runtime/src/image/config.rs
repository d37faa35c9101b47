//! Docker's image config JSON (`application/vnd.docker.container.image.v1+json`): building it for
//! images berth makes, and reading the parts berth needs from any image's.

use super::ImageConfig;
use crate::{Error, Result};
use serde_json::{json, Map, Value};

/// The fields of Docker's `container.Config` in Go's field order, with the zero values Go's
/// encoder writes; `None` marks `omitempty` fields, written only when set.
/// A field's zero value, `None` for `omitempty` fields.
type Zero = Option<fn() -> Value>;

const CONTAINER_CONFIG_FIELDS: &[(&str, Zero)] = &[
    ("Hostname", Some(empty_str)),
    ("Domainname", Some(empty_str)),
    ("User", Some(empty_str)),
    ("AttachStdin", Some(falsy)),
    ("AttachStdout", Some(falsy)),
    ("AttachStderr", Some(falsy)),
    ("ExposedPorts", None),
    ("Tty", Some(falsy)),
    ("OpenStdin", Some(falsy)),
    ("StdinOnce", Some(falsy)),
    ("Env", Some(null)),
    ("Cmd", Some(null)),
    ("Healthcheck", None),
    ("ArgsEscaped", None),
    ("Image", Some(empty_str)),
    ("Volumes", Some(null)),
    ("WorkingDir", Some(empty_str)),
    ("Entrypoint", Some(null)),
    ("NetworkDisabled", None),
    ("MacAddress", None),
    ("OnBuild", Some(null)),
    ("Labels", Some(null)),
    ("StopSignal", None),
    ("StopTimeout", None),
    ("Shell", None),
];

fn empty_str() -> Value {
    Value::from("")
}
fn falsy() -> Value {
    Value::Bool(false)
}
fn null() -> Value {
    Value::Null
}

/// `c` (a `config` object from any image, possibly partial or null) in the shape Docker's
/// daemon prints it: every field present, Go's order, unknown extra fields kept at the end.
pub fn container_config(c: &Value) -> Value {
    let empty = Map::new();
    let src = c.as_object().unwrap_or(&empty);
    let mut out = Map::new();
    for (k, zero) in CONTAINER_CONFIG_FIELDS {
        match (src.get(*k), zero) {
            (Some(v), Some(_)) => out.insert(k.to_string(), v.clone()),
            (Some(v), None) if !is_empty(v) => out.insert(k.to_string(), v.clone()),
            (None, Some(z)) => out.insert(k.to_string(), z()),
            _ => None,
        };
    }
    for (k, v) in src {
        if !out.contains_key(k) && !CONTAINER_CONFIG_FIELDS.iter().any(|(f, _)| f == k) {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
    }
}

/// The runtime config of an image config document (its `config` object).
pub fn parse_image_config(doc: &Value) -> ImageConfig {
    serde_json::from_value(doc.get("config").cloned().unwrap_or(Value::Null)).unwrap_or_default()
}

/// `sha256:...` diff ids of `doc`'s `rootfs`.
pub fn diff_ids(doc: &Value) -> Result<Vec<String>> {
    let rootfs = &doc["rootfs"];
    if rootfs["type"].as_str() != Some("layers") {
        return Err(Error::invalid(
            "invalid image config: rootfs type must be \"layers\"",
        ));
    }
    let ids = rootfs["diff_ids"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    ids.iter()
        .map(|v| match v.as_str() {
            Some(s)
                if s.strip_prefix("sha256:")
                    .is_some_and(super::reference::is_full_id) =>
            {
                Ok(s.to_string())
            }
            _ => Err(Error::invalid(format!(
                "invalid image config: bad diff id {v}"
            ))),
        })
        .collect()
}

/// The platform berth runs images for, in Go's GOARCH spelling.
pub fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// A new image's config document, as Docker's `import` writes one: `config` is the (possibly
/// partial) runtime config, `comment` goes to the image and its one history entry.
pub fn new_image_config(
    config: &Value,
    diff_ids: &[String],
    created: &str,
    comment: &str,
) -> Value {
    let mut doc = Map::new();
    if !comment.is_empty() {
        doc.insert("comment".into(), json!(comment));
    }
    doc.insert("created".into(), json!(created));
    doc.insert("container_config".into(), container_config(&Value::Null));
    doc.insert(
        "docker_version".into(),
        json!(concat!("berth-", env!("CARGO_PKG_VERSION"))),
    );
    doc.insert("config".into(), container_config(config));
    doc.insert("architecture".into(), json!(architecture()));
    doc.insert("os".into(), json!("linux"));
    doc.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": diff_ids}),
    );
    let mut history = Map::new();
    history.insert("created".into(), json!(created));
    if !comment.is_empty() {
        history.insert("comment".into(), json!(comment));
    }
    doc.insert("history".into(), json!([history]));
    Value::Object(doc)
}

/// Deserialises a field that Go may have written as `null` into its default.
pub(super) fn null_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    use serde::Deserialize;
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_config_has_docker_shape() {
        let c = container_config(&json!({"Cmd": ["sh"], "ExposedPorts": {"80/tcp": {}}, "X": 1}));
        let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            &keys[..7],
            [
                "Hostname",
                "Domainname",
                "User",
                "AttachStdin",
                "AttachStdout",
                "AttachStderr",
                "ExposedPorts"
            ]
        );
        assert_eq!(keys.last(), Some(&"X"));
        assert_eq!(c["Cmd"], json!(["sh"]));
        assert_eq!(c["Env"], Value::Null);
        assert!(c.get("StopSignal").is_none());
    }

    #[test]
    fn image_config_tolerates_nulls() {
        let doc =
            json!({"config": {"Env": null, "Cmd": ["sh"], "Labels": null, "WorkingDir": "/w"}});
        let c = parse_image_config(&doc);
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
        assert!(c.env.is_empty() && c.labels.is_empty());
        assert_eq!(c.working_dir, "/w");
    }
}
