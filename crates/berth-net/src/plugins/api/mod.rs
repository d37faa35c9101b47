//! The protocol's messages, with JSON field names exactly as libnetwork's `drivers/remote/api`
//! and `ipams/remote/api`, and decoding the way Go's `encoding/json` decodes them: `null` is an
//! all-zero message, `null` fields keep their zero value, field names match case-insensitively,
//! unknown fields are ignored, and a type mismatch is an error.

pub mod ipam;
pub mod net;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// A message's canonical field names, for Go's case-insensitive matching.
pub trait Fields: DeserializeOwned + Default {
    const FIELDS: &'static [&'static str];
    /// Folds the field names of nested messages (after the top level is folded).
    fn fold_nested(_obj: &mut Map<String, Value>) {}
}

/// A reply whose in-band error field (`Err` or `Error`) may be set.
pub trait Reply: Fields {
    fn error(&self) -> &str;
}

/// Renames keys that match a canonical name case-insensitively (an exact match wins) and
/// drops `null` values (Go leaves the field at zero).
pub fn fold(obj: &mut Map<String, Value>, fields: &[&str]) {
    let keys: Vec<String> = obj.keys().cloned().collect();
    for k in keys {
        if obj.get(&k).is_some_and(Value::is_null) {
            obj.remove(&k);
            continue;
        }
        if fields.contains(&k.as_str()) {
            continue;
        }
        if let Some(canon) = fields.iter().find(|f| f.eq_ignore_ascii_case(&k)) {
            if let Some(v) = obj.remove(&k) {
                obj.entry(canon.to_string()).or_insert(v);
            }
        }
    }
}

/// Folds a nested object (or each object of a nested array) under `key`.
pub fn fold_at(obj: &mut Map<String, Value>, key: &str, fields: &[&str]) {
    match obj.get_mut(key) {
        Some(Value::Object(o)) => fold(o, fields),
        Some(Value::Array(items)) => {
            for i in items {
                if let Value::Object(o) = i {
                    fold(o, fields);
                }
            }
        }
        _ => {}
    }
}

/// Decodes a message as Go would; the error is serde's text (an empty body is Go's `EOF`).
pub fn decode<T: Fields>(body: &[u8]) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("EOF".into());
    }
    let mut v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    match &mut v {
        Value::Null => return Ok(T::default()),
        Value::Object(o) => {
            fold(o, T::FIELDS);
            T::fold_nested(o);
        }
        _ => {}
    }
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// A request body as Go's `json.Encoder` writes it: compact JSON and a newline.
pub fn encode<T: Serialize>(req: &T) -> Vec<u8> {
    let mut b = serde_json::to_vec(req).unwrap_or_else(|_| b"null".to_vec());
    b.push(b'\n');
    b
}

/// A message with no fields but the error (`{}`/`null` replies).
macro_rules! empty_reply {
    ($name:ident, $err:literal) => {
        #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            #[serde(rename = $err, default, skip_serializing_if = "String::is_empty")]
            pub err: String,
        }
        impl $crate::plugins::api::Fields for $name {
            const FIELDS: &'static [&'static str] = &[$err];
        }
        impl $crate::plugins::api::Reply for $name {
            fn error(&self) -> &str {
                &self.err
            }
        }
    };
}
pub(crate) use empty_reply;

#[cfg(test)]
mod tests {
    use super::net::*;
    use super::*;

    #[test]
    fn decodes_like_go() {
        let r: CapabilitiesResponse = decode(b"null").unwrap();
        assert_eq!(r, CapabilitiesResponse::default());
        let r: CapabilitiesResponse =
            decode(br#"{"scope":"global","CONNECTIVITYSCOPE":null,"Extra":[1,2]}"#).unwrap();
        assert_eq!(r.scope, "global");
        assert_eq!(r.connectivity_scope, "");
        assert_eq!(decode::<CapabilitiesResponse>(b"").unwrap_err(), "EOF");
        assert!(decode::<CapabilitiesResponse>(br#"{"Scope":5}"#).is_err());
        assert!(decode::<CapabilitiesResponse>(b"<html>").is_err());
        assert!(decode::<CapabilitiesResponse>(b"[1]").is_err());
        // nested names fold too, user map keys do not
        let j: JoinResponse = decode(
            br#"{"interfacename":{"srcname":"tmp0","DSTPREFIX":"eth"},"staticroutes":[{"destination":"10.0.0.0/8","routetype":0,"nexthop":"10.1.1.1"}]}"#,
        )
        .unwrap();
        let n = j.interface_name.unwrap();
        assert_eq!(
            (n.src_name.as_str(), n.dst_prefix.as_str()),
            ("tmp0", "eth")
        );
        assert_eq!(j.static_routes[0].next_hop, "10.1.1.1");
        let o: EndpointOperInfoResponse = decode(br#"{"value":{"Scope":"x"}}"#).unwrap();
        assert_eq!(o.value.get("Scope").unwrap(), "x");
        // deep nesting is refused by serde's recursion limit, not a stack overflow
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(decode::<CapabilitiesResponse>(deep.as_bytes()).is_err());
    }

    #[test]
    fn encodes_like_go() {
        let b = encode(&NetworkRequest {
            network_id: "n".into(),
        });
        assert_eq!(b, b"{\"NetworkID\":\"n\"}\n");
    }
}
