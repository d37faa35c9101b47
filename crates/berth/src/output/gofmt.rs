//! Printing a JSON value the way Go's `fmt` prints the Docker struct it came from (`%v`):
//! structs as `{v1 v2}`, maps as `map[k:v]` with sorted keys, slices as `[a b]`.

use serde_json::{Map, Value};

/// Fields that are Go maps in Docker's types (their keys are data, not field names).
const MAP_FIELDS: [&str; 8] = [
    "Labels",
    "Options",
    "Containers",
    "AuxiliaryAddresses",
    "Ports",
    "Networks",
    "DriverOpts",
    "ExposedPorts",
];

/// Docker structs whose JSON omits empty fields; Go still prints every field.
const STRUCTS: [&[&str]; 1] = [&["Subnet", "IPRange", "Gateway", "AuxiliaryAddresses"]];

fn is_struct(key: Option<&str>, m: &Map<String, Value>) -> bool {
    if key.is_some_and(|k| MAP_FIELDS.contains(&k)) {
        return false;
    }
    !m.is_empty()
        && m.keys()
            .all(|k| k.starts_with(|c: char| c.is_ascii_uppercase()))
}

pub fn format(v: &Value) -> String {
    format_keyed(None, v)
}

fn format_keyed(key: Option<&str>, v: &Value) -> String {
    match v {
        Value::Null if key.is_some_and(|k| MAP_FIELDS.contains(&k)) => "map[]".into(),
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(|x| format_keyed(None, x))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Value::Object(m) if is_struct(key, m) => {
            let known = STRUCTS
                .iter()
                .find(|fields| m.keys().all(|k| fields.contains(&k.as_str())));
            let parts: Vec<String> = match known {
                Some(fields) => fields
                    .iter()
                    .map(|f| match m.get(*f) {
                        Some(x) => format_keyed(Some(f), x),
                        None if MAP_FIELDS.contains(f) => "map[]".into(),
                        None => String::new(),
                    })
                    .collect(),
                None => m.iter().map(|(k, x)| format_keyed(Some(k), x)).collect(),
            };
            format!("{{{}}}", parts.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", format_keyed(None, &m[*k])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ipam_like_docker() {
        let cfg = json!([{"Subnet":"10.0.1.0/24","IPRange":"10.0.1.128/25","Gateway":"10.0.1.254","AuxiliaryAddresses":{"a":"10.0.1.130"}}]);
        assert_eq!(
            format(&cfg),
            "[{10.0.1.0/24 10.0.1.128/25 10.0.1.254 map[a:10.0.1.130]}]"
        );
        let auto = json!([{"Subnet":"172.18.0.0/16","Gateway":"172.18.0.1"}]);
        assert_eq!(format(&auto), "[{172.18.0.0/16  172.18.0.1 map[]}]");
        let ipam = json!({"Driver":"default","Options":{},"Config":cfg});
        assert_eq!(
            format(&ipam),
            "{default map[] [{10.0.1.0/24 10.0.1.128/25 10.0.1.254 map[a:10.0.1.130]}]}"
        );
    }

    #[test]
    fn maps_sorted_and_nil() {
        assert_eq!(
            format_keyed(Some("Labels"), &json!({"b":"2","a":"1"})),
            "map[a:1 b:2]"
        );
        assert_eq!(format_keyed(Some("Options"), &Value::Null), "map[]");
        assert_eq!(format(&Value::Null), "<nil>");
    }
}
